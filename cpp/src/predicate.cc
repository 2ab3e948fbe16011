// Predicate evaluation and SQL compilation.
//
// Design. A subscription's `where` must select the same rows in two places:
// the initial read, which runs as SQL in the DO's SQLite, and every live
// change, which the core tests row by row without a round trip to SQL. Two
// evaluators agree only if the semantics is pinned down on both sides, so:
//
//  * Kinds. A value is NULL, a number (INTEGER or REAL), text, or other (a
//    BLOB, read as {"$hex":…}). A comparison between different kinds is
//    false; SQLite would order them (numbers < text < blobs), but an app
//    asking `price > "abc"` has a bug, and false is the safe answer.
//  * NULL. Any comparison with NULL is unknown; and/or/not are Kleene's
//    three-valued logic; a row matches only if the result is true.
//  * Order. Numbers compare numerically (5 = 5.0), text byte-wise (BINARY),
//    whatever collation the column declares.
//  * like. Text only; % any run, _ one code point, case-sensitive. It compiles
//    to GLOB, which is case-sensitive everywhere (LIKE's case sensitivity
//    depends on a connection-wide pragma).
//
// In SQL every comparison is wrapped as
//   CASE WHEN col IS NULL THEN NULL WHEN typeof(col) IN (<kinds>)
//        THEN +col <op> json_extract(?N,'$[i]') COLLATE BINARY ELSE 0 END
// The unary + strips the column's affinity, so SQLite compares storage
// classes exactly as the evaluator does; json_extract keeps literals out of
// the SQL text and binds all of them through one parameter.
//
// Example: and(eq(status,"open"), not(isNull(due))) on {status:"open",
// due:null} is and(true, not(true)) = false; in SQL the same row gives
// (1 AND NOT 1) = 0.

#include "seqsync/predicate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "json_util.h"

namespace seqsync {
namespace {

using Op = Predicate::Op;
using Literal = Predicate::Literal;

struct Scalar {
  enum class Kind { kNull, kNumber, kText, kOther } kind = Kind::kNull;
  bool is_int = false;
  std::int64_t integer = 0;
  double real = 0;
  std::string_view text;
};

Scalar FromJson(const JsonValue* v) {
  Scalar s;
  if (v == nullptr || v->IsNull()) return s;
  if (v->IsBool()) {
    s.kind = Scalar::Kind::kNumber;
    s.is_int = true;
    s.integer = v->GetBool() ? 1 : 0;
  } else if (v->IsInt64()) {
    s.kind = Scalar::Kind::kNumber;
    s.is_int = true;
    s.integer = v->GetInt64();
  } else if (v->IsNumber()) {
    s.kind = Scalar::Kind::kNumber;
    s.real = v->GetDouble();
  } else if (v->IsString()) {
    s.kind = Scalar::Kind::kText;
    s.text = View(*v);
  } else {
    s.kind = Scalar::Kind::kOther;
  }
  return s;
}

Scalar FromLiteral(const Literal& l) {
  Scalar s;
  switch (l.kind) {
    case Literal::Kind::kNull: break;
    case Literal::Kind::kNumber:
      s.kind = Scalar::Kind::kNumber;
      s.is_int = l.is_int;
      s.integer = l.integer;
      s.real = l.real;
      break;
    case Literal::Kind::kText:
      s.kind = Scalar::Kind::kText;
      s.text = l.text;
      break;
  }
  return s;
}

// Three-way compare of two same-kind, non-null scalars: <0, 0, >0.
// REQUIRES: a.kind == b.kind, kind is kNumber or kText.
int Compare(const Scalar& a, const Scalar& b) {
  if (a.kind == Scalar::Kind::kText) {
    size_t n = std::min(a.text.size(), b.text.size());
    int c = n == 0 ? 0 : std::memcmp(a.text.data(), b.text.data(), n);
    if (c != 0) return c;
    return a.text.size() < b.text.size() ? -1 : (a.text.size() > b.text.size() ? 1 : 0);
  }
  if (a.is_int && b.is_int) {
    return a.integer < b.integer ? -1 : (a.integer > b.integer ? 1 : 0);
  }
  double x = a.is_int ? static_cast<double>(a.integer) : a.real;
  double y = b.is_int ? static_cast<double>(b.integer) : b.real;
  return x < y ? -1 : (x > y ? 1 : 0);
}

bool ParseLiteral(const JsonValue& v, Literal* out) {
  if (v.IsNull()) {
    out->kind = Literal::Kind::kNull;
  } else if (v.IsBool()) {
    out->kind = Literal::Kind::kNumber;
    out->is_int = true;
    out->integer = v.GetBool() ? 1 : 0;
  } else if (v.IsInt64()) {
    out->kind = Literal::Kind::kNumber;
    out->is_int = true;
    out->integer = v.GetInt64();
  } else if (v.IsNumber()) {
    out->kind = Literal::Kind::kNumber;
    out->real = v.GetDouble();
  } else if (v.IsString()) {
    out->kind = Literal::Kind::kText;
    out->text.assign(v.GetString(), v.GetStringLength());
  } else {
    return false;
  }
  return true;
}

bool IsIdentifier(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (!(alpha || (i > 0 && c >= '0' && c <= '9'))) return false;
  }
  return true;
}

class Parser {
 public:
  Parser(const std::vector<std::string>& columns, PredicateLimits limits,
         std::vector<Predicate::Node>* nodes)
      : columns_(columns), limits_(limits), nodes_(nodes) {}

  Result<int> Parse(const JsonValue& ir, int depth) {
    if (depth > limits_.max_depth) {
      return Status::TooDeep("where is nested deeper than " +
                             std::to_string(limits_.max_depth) + " levels");
    }
    if (nodes_->size() >= limits_.max_nodes) {
      return Status::TooMany("where has more than " +
                             std::to_string(limits_.max_nodes) + " nodes");
    }
    const JsonValue* type = Member(ir, "type");
    if (type == nullptr || !type->IsString() || View(*type) != "func") {
      return Status::UnsupportedPredicate("where must be a {\"type\":\"func\"} expression");
    }
    const JsonValue* name = Member(ir, "name");
    const JsonValue* args = Member(ir, "args");
    if (name == nullptr || !name->IsString() || args == nullptr || !args->IsArray()) {
      return Status::UnsupportedPredicate("a func expression needs a string name and an args array");
    }
    std::string_view fn = View(*name);
    int index = static_cast<int>(nodes_->size());
    nodes_->emplace_back();
    auto node = [&]() -> Predicate::Node& { return (*nodes_)[index]; };

    if (fn == "and" || fn == "or" || fn == "not") {
      node().op = fn == "and" ? Op::kAnd : fn == "or" ? Op::kOr : Op::kNot;
      if (args->Size() == 0 || (fn == "not" && args->Size() != 1)) {
        return Status::UnsupportedPredicate(std::string(fn) + " has the wrong number of arguments");
      }
      for (auto& a : args->GetArray()) {
        SEQSYNC_ASSIGN_OR_RETURN(int child, Parse(a, depth + 1));
        node().children.push_back(child);
      }
      return index;
    }
    if (fn == "isNull" || fn == "isUndefined") {
      if (args->Size() != 1) return Status::UnsupportedPredicate(std::string(fn) + " takes one argument");
      SEQSYNC_RETURN_IF_ERROR(ReadColumn((*args)[0], &node().column));
      node().op = fn == "isNull" ? Op::kIsNull : Op::kFalse;
      return index;
    }
    Op op;
    if (fn == "eq") op = Op::kEq;
    else if (fn == "gt") op = Op::kGt;
    else if (fn == "gte") op = Op::kGte;
    else if (fn == "lt") op = Op::kLt;
    else if (fn == "lte") op = Op::kLte;
    else if (fn == "like") op = Op::kLike;
    else if (fn == "in") op = Op::kIn;
    else return Status::UnsupportedPredicate("unsupported operator '" + std::string(fn) + "'");
    if (args->Size() != 2) {
      return Status::UnsupportedPredicate(std::string(fn) + " takes two arguments");
    }
    const JsonValue* ref = &(*args)[0];
    const JsonValue* val = &(*args)[1];
    if (IsKind(*val, "ref") && IsKind(*ref, "val") && op != Op::kLike && op != Op::kIn) {
      std::swap(ref, val);  // 5 < price  ==  price > 5
      op = op == Op::kGt ? Op::kLt : op == Op::kLt ? Op::kGt
         : op == Op::kGte ? Op::kLte : op == Op::kLte ? Op::kGte : op;
    }
    SEQSYNC_RETURN_IF_ERROR(ReadColumn(*ref, &node().column));
    if (!IsKind(*val, "val")) {
      return Status::UnsupportedPredicate(std::string(fn) + " needs a literal {\"type\":\"val\"} operand");
    }
    const JsonValue* value = Member(*val, "value");
    node().op = op;
    if (op == Op::kIn) {
      if (value == nullptr || !value->IsArray()) {
        return Status::UnsupportedPredicate("in needs an array literal");
      }
      if (value->Size() > limits_.max_nodes) {
        return Status::TooMany("in list has more than " + std::to_string(limits_.max_nodes) + " values");
      }
      for (auto& e : value->GetArray()) {
        Literal l;
        if (!ParseLiteral(e, &l)) return Status::UnsupportedPredicate("in list values must be scalars");
        SEQSYNC_RETURN_IF_ERROR(CountLiteral(l));
        // NULL never equals anything, so it can never make `in` true.
        if (l.kind != Literal::Kind::kNull) node().literals.push_back(std::move(l));
      }
      return index;
    }
    Literal l;
    if (value == nullptr || !ParseLiteral(*value, &l)) {
      return Status::UnsupportedPredicate(std::string(fn) + " needs a scalar literal");
    }
    if (op == Op::kLike && l.kind != Literal::Kind::kText) {
      return Status::UnsupportedPredicate("like needs a string pattern");
    }
    // SQLite's GLOB stops at a NUL; no pattern could mean the same in both.
    if (op == Op::kLike && l.text.find('\0') != std::string::npos) {
      return Status::UnsupportedPredicate("a like pattern may not contain NUL");
    }
    if (op == Op::kLike) SEQSYNC_RETURN_IF_ERROR(CheckPattern(l.text));
    SEQSYNC_RETURN_IF_ERROR(CountLiteral(l));
    node().literals.push_back(std::move(l));
    return index;
  }

 private:
  static bool IsKind(const JsonValue& v, const char* kind) {
    const JsonValue* t = Member(v, "type");
    return t != nullptr && t->IsString() && View(*t) == kind;
  }

  // The core matches every live change against each pattern, and SQLite's
  // GLOB every snapshot row, at a cost that grows with the pattern (GLOB's
  // with text x pattern); both are bounded here.
  Status CheckPattern(std::string_view pattern) const {
    if (pattern.size() > limits_.max_pattern_bytes) {
      return Status::TooLarge("like pattern is " + std::to_string(pattern.size()) +
                              " bytes; maxLikePatternBytes is " +
                              std::to_string(limits_.max_pattern_bytes));
    }
    size_t wildcards = static_cast<size_t>(std::count_if(
        pattern.begin(), pattern.end(), [](char c) { return c == '%' || c == '_'; }));
    if (wildcards > limits_.max_pattern_wildcards) {
      return Status::TooMany("like pattern has " + std::to_string(wildcards) +
                             " wildcards (% and _); maxLikeWildcards is " +
                             std::to_string(limits_.max_pattern_wildcards));
    }
    return Status::Ok();
  }

  // Adds `l` to the bytes of all literals: a text its bytes, any other
  // value 8 (its size in the evaluator; a NULL dropped from an `in` list
  // still had to be read).
  Status CountLiteral(const Literal& l) {
    literal_bytes_ += l.kind == Literal::Kind::kText ? l.text.size() : 8;
    if (literal_bytes_ > limits_.max_literal_bytes) {
      return Status::TooLarge("the literals of where exceed maxPredicateLiteralBytes (" +
                              std::to_string(limits_.max_literal_bytes) + " bytes)");
    }
    return Status::Ok();
  }

  Status ReadColumn(const JsonValue& ref, std::string* column) {
    if (!IsKind(ref, "ref")) {
      return Status::UnsupportedPredicate("the left operand must be a column {\"type\":\"ref\"}");
    }
    const JsonValue* path = Member(ref, "path");
    if (path == nullptr || !path->IsArray() || path->Size() != 1 || !(*path)[0].IsString()) {
      return Status::UnsupportedPredicate("a column ref needs a path of exactly one name");
    }
    std::string_view name = View((*path)[0]);
    if (!IsIdentifier(name) ||
        std::find(columns_.begin(), columns_.end(), name) == columns_.end()) {
      return Status::UnknownColumn("unknown column '" + std::string(name.substr(0, 128)) + "'");
    }
    column->assign(name);
    return Status::Ok();
  }

  const std::vector<std::string>& columns_;
  PredicateLimits limits_;
  std::vector<Predicate::Node>* nodes_;
  size_t literal_bytes_ = 0;
};

// Appends `lit` to the JSON array text being built in `out`.
void AppendLiteral(const Literal& lit, std::string* out) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  switch (lit.kind) {
    case Literal::Kind::kNull: w.Null(); break;
    case Literal::Kind::kNumber:
      if (lit.is_int) w.Int64(lit.integer);
      else if (std::isfinite(lit.real)) w.Double(lit.real);
      else w.Null();  // JSON has no ±Inf; callers leave such bounds off
      break;
    case Literal::Kind::kText: WriteString(lit.text, &w); break;
  }
  if (out->size() > 1) out->push_back(',');
  out->append(sb.GetString(), sb.GetSize());
}

std::string QuoteIdent(const std::string& name) { return "\"" + name + "\""; }

// LIKE → GLOB: % → *, _ → ?, and GLOB's own specials made literal.
std::string LikeToGlob(std::string_view like) {
  std::string g;
  for (char c : like) {
    switch (c) {
      case '%': g += '*'; break;
      case '_': g += '?'; break;
      case '*': g += "[*]"; break;
      case '?': g += "[?]"; break;
      case '[': g += "[[]"; break;
      default: g += c;
    }
  }
  return g;
}

// Length in bytes of the UTF-8 sequence starting with `lead`. An invalid
// lead (a continuation byte, 0xF8-0xFF) is a sequence of its own; a valid
// lead takes its following bytes whatever they are, so a truncated sequence
// may reach past the end of the text.
size_t Utf8Length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

}  // namespace

// LikeMatch.
//
// Semantics. With n = text.size() and len(t) = Utf8Length(text[t]), a text
// matches iff M(0, pattern), where
//   M(t, "")     = t >= n
//   M(t, "%" r)  = M(t, r) or (t < n and M(t + len(t), "%" r))
//   M(t, "_" r)  = t < n and M(t + len(t), r)
//   M(t, c r)    = t < n and text[t] == c and M(t + 1, r)
// (t may pass n by up to 3 bytes when the text ends in a truncated sequence).
//
// Design. M is run as a nondeterministic automaton with all of its states
// advanced together, 64 to a machine word (the shift-and or "bitap"
// technique): state j at position t means "the first j pattern bytes match
// text[0, t)". Each text byte is read once and costs O(W) word operations,
// W = ceil((pattern bytes + 1) / 64), so the time is O(n * W): at most 5
// words a byte under the default 256-byte pattern cap, whatever the pattern
// and the text. A backtracking matcher costs O(n * pattern) on patterns
// like '%aaaa…ab'.
//
// There is no greedy choice to justify: the automaton follows every
// alignment of the pattern at once. (Matching the pieces between %s
// leftmost-first would be optimal on valid UTF-8, but not on invalid text:
// % and _ step by sequences decoded from where they stand, so two
// alignments of a piece can leave the text on different sequence
// boundaries, and the earliest end is not always one the rest can follow.
// The backtracking matcher this replaced had that flaw; on valid UTF-8 the
// two agree.)
//
// A % moves to the next sequence and stays (its self-loop) or is skipped
// (an empty run); a _ moves to the next sequence and on; a byte moves on by
// one. Sequences are up to 4 bytes, so moves land in a ring of the state
// sets of the next 4 positions. Runs of % are folded into one % (a run of
// runs is a run), so every % is followed by a non-%, and one shift adds the
// empty runs.
bool LikeMatch(std::string_view text, std::string_view pattern, std::size_t* steps) {
  // Compile: `m` folded pattern bytes, states 0..m, W words per state set.
  // Bytes that occur in the pattern get a class 1..k (at most 254 of them:
  // % and _ are not classes); every other byte is class 0, which never
  // moves a state.
  unsigned char byte_class[256] = {};
  size_t m = 0;
  size_t classes = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(pattern[i]);
    if (c == '%' && i > 0 && pattern[i - 1] == '%') continue;
    ++m;
    if (c != '%' && c != '_' && byte_class[c] == 0) {
      byte_class[c] = static_cast<unsigned char>(++classes);
    }
  }
  const size_t w_count = (m + 1 + 63) / 64;
  // One block: the % positions, the _ positions, a byte-position set per
  // class (class 0 empty), the ring of 4 incoming state sets, the current set.
  std::vector<std::uint64_t> block((2 + (classes + 1) + 4 + 1) * w_count, 0);
  std::uint64_t* const percent = block.data();
  std::uint64_t* const any = percent + w_count;
  std::uint64_t* const by_class = any + w_count;
  std::uint64_t* const ring = by_class + (classes + 1) * w_count;
  std::uint64_t* const s = ring + 4 * w_count;
  auto set_bit = [](std::uint64_t* set, size_t j) { set[j / 64] |= std::uint64_t{1} << (j % 64); };
  auto has_bit = [](const std::uint64_t* set, size_t j) { return (set[j / 64] >> (j % 64)) & 1; };
  size_t j = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(pattern[i]);
    if (c == '%' && i > 0 && pattern[i - 1] == '%') continue;
    if (c == '%') set_bit(percent, j);
    else if (c == '_') set_bit(any, j);
    else set_bit(by_class + byte_class[c] * w_count, j);
    ++j;
  }
  // A trailing % matches whatever is left, so reaching it is a match.
  const bool open_end = m > 0 && has_bit(percent, m - 1);

  const size_t n = text.size();
  set_bit(ring, 0);  // position 0: nothing matched yet
  for (size_t t = 0;; ++t) {
    // s = the states at t, plus the empty runs of the %s among them.
    std::uint64_t* in = ring + (t % 4) * w_count;
    std::uint64_t carry = 0;
    bool live = false;
    for (size_t w = 0; w < w_count; ++w) {
      std::uint64_t p = in[w] & percent[w];
      s[w] = in[w] | (p << 1) | carry;
      carry = p >> 63;
      in[w] = 0;  // the slot now collects position t + 4
      live |= s[w] != 0;
    }
    if (t >= n) {
      if (has_bit(s, m)) return true;
      // Past the end only the moves already made can arrive (up to 3 on).
      if (t >= n + 3) return false;
      continue;
    }
    if (steps != nullptr) *steps += w_count;
    if (!live) {
      bool pending = false;
      for (size_t w = 0; w < 4 * w_count; ++w) pending |= ring[w] != 0;
      if (!pending) return false;  // no alignment is left
      continue;
    }
    if (open_end && has_bit(s, m - 1)) return true;
    unsigned char c = static_cast<unsigned char>(text[t]);
    const std::uint64_t* bytes = by_class + byte_class[c] * w_count;
    // A byte move lands at t + 1, a % or _ move at the next sequence.
    std::uint64_t* next = ring + ((t + 1) % 4) * w_count;
    std::uint64_t* next_seq = ring + ((t + Utf8Length(c)) % 4) * w_count;
    std::uint64_t byte_carry = 0;
    std::uint64_t seq_carry = 0;
    for (size_t w = 0; w < w_count; ++w) {
      std::uint64_t b = s[w] & bytes[w];
      std::uint64_t u = s[w] & any[w];
      next[w] |= (b << 1) | byte_carry;
      next_seq[w] |= (u << 1) | seq_carry | (s[w] & percent[w]);
      byte_carry = b >> 63;
      seq_carry = u >> 63;
    }
  }
}

Result<Predicate> Predicate::Parse(const JsonValue& ir,
                                   const std::vector<std::string>& columns,
                                   PredicateLimits limits) {
  Predicate pred;
  if (ir.IsNull()) return pred;
  Parser parser(columns, limits, &pred.nodes_);
  SEQSYNC_ASSIGN_OR_RETURN(int root, parser.Parse(ir, 1));
  (void)root;  // always 0: the parser appends the root first
  // Refused here, once, rather than by SQLite (SQLITE_TOOBIG) on every read
  // later. The core binds ?1 or ?2, so the parameter number does not change
  // the length.
  std::string literals;
  std::size_t sql_bytes = pred.ToSql(1, &literals).size();
  if (sql_bytes > kMaxPredicateSqlBytes) {
    return Status::TooLarge("where compiles to " + std::to_string(sql_bytes) +
                            " bytes of SQL; the limit is " + std::to_string(kMaxPredicateSqlBytes) +
                            " (a long in list is the usual cause)");
  }
  return pred;
}

bool Predicate::Matches(const JsonValue& row) const {
  return nodes_.empty() || Eval(0, row) == Truth::kTrue;
}

Predicate::Truth Predicate::Eval(int index, const JsonValue& row) const {
  const Node& n = nodes_[index];
  switch (n.op) {
    case Op::kAnd: {
      Truth acc = Truth::kTrue;
      for (int c : n.children) {
        Truth t = Eval(c, row);
        if (t == Truth::kFalse) return Truth::kFalse;
        if (t == Truth::kUnknown) acc = Truth::kUnknown;
      }
      return acc;
    }
    case Op::kOr: {
      Truth acc = Truth::kFalse;
      for (int c : n.children) {
        Truth t = Eval(c, row);
        if (t == Truth::kTrue) return Truth::kTrue;
        if (t == Truth::kUnknown) acc = Truth::kUnknown;
      }
      return acc;
    }
    case Op::kNot: {
      Truth t = Eval(n.children[0], row);
      return t == Truth::kUnknown ? t : (t == Truth::kTrue ? Truth::kFalse : Truth::kTrue);
    }
    case Op::kFalse:
      return Truth::kFalse;
    case Op::kIsNull:
      return FromJson(Member(row, n.column.c_str())).kind == Scalar::Kind::kNull
                 ? Truth::kTrue : Truth::kFalse;
    default:
      break;
  }
  Scalar col = FromJson(Member(row, n.column.c_str()));
  if (col.kind == Scalar::Kind::kNull) return Truth::kUnknown;
  if (n.op == Op::kIn) {
    for (const Literal& l : n.literals) {
      Scalar lit = FromLiteral(l);
      if (lit.kind == col.kind && Compare(col, lit) == 0) return Truth::kTrue;
    }
    return Truth::kFalse;
  }
  Scalar lit = FromLiteral(n.literals[0]);
  if (lit.kind == Scalar::Kind::kNull) return Truth::kUnknown;
  if (lit.kind != col.kind) return Truth::kFalse;
  if (n.op == Op::kLike) {
    // As in SQLite, the text ends at its first NUL for pattern matching.
    std::string_view text(col.text);
    return LikeMatch(text.substr(0, text.find('\0')), lit.text) ? Truth::kTrue : Truth::kFalse;
  }
  int c = Compare(col, lit);
  bool r = n.op == Op::kEq ? c == 0 : n.op == Op::kGt ? c > 0 : n.op == Op::kGte ? c >= 0
         : n.op == Op::kLt ? c < 0 : c <= 0;
  return r ? Truth::kTrue : Truth::kFalse;
}

std::string Predicate::ToSql(int param, std::string* literals_json) const {
  literals_json->assign("[");
  if (nodes_.empty()) {
    literals_json->append("]");
    return "1";
  }
  std::string sql;
  int next = 0;
  NodeSql(0, param, &sql, &next, literals_json);
  literals_json->append("]");
  return sql;
}

void Predicate::NodeSql(int index, int param, std::string* sql, int* next,
                        std::string* lits) const {
  const Node& n = nodes_[index];
  auto literal_ref = [&](const Literal& l) {
    AppendLiteral(l, lits);
    return "json_extract(?" + std::to_string(param) + ",'$[" + std::to_string((*next)++) + "]')";
  };
  auto guarded = [&](const std::string& col, const char* kinds, const std::string& test) {
    *sql += "(CASE WHEN " + col + " IS NULL THEN NULL WHEN typeof(" + col + ") IN (" +
            kinds + ") THEN (" + test + ") ELSE 0 END)";
  };
  const char* kNumberKinds = "'integer','real'";
  const char* kTextKinds = "'text'";
  switch (n.op) {
    case Op::kAnd:
    case Op::kOr: {
      *sql += "(";
      for (size_t i = 0; i < n.children.size(); ++i) {
        if (i > 0) *sql += n.op == Op::kAnd ? " AND " : " OR ";
        NodeSql(n.children[i], param, sql, next, lits);
      }
      *sql += ")";
      return;
    }
    case Op::kNot:
      *sql += "(NOT ";
      NodeSql(n.children[0], param, sql, next, lits);
      *sql += ")";
      return;
    case Op::kFalse:
      *sql += "0";
      return;
    case Op::kIsNull:
      *sql += "(" + QuoteIdent(n.column) + " IS NULL)";
      return;
    default:
      break;
  }
  std::string col = QuoteIdent(n.column);
  if (n.op == Op::kIn) {
    if (n.literals.empty()) {
      *sql += "(CASE WHEN " + col + " IS NULL THEN NULL ELSE 0 END)";
      return;
    }
    std::string any;
    for (const Literal& l : n.literals) {
      if (!any.empty()) any += " OR ";
      const char* kinds = l.kind == Literal::Kind::kText ? kTextKinds : kNumberKinds;
      any += "(typeof(" + col + ") IN (" + kinds + ") AND +" + col + " = " + literal_ref(l) +
             " COLLATE BINARY)";
    }
    *sql += "(CASE WHEN " + col + " IS NULL THEN NULL ELSE (" + any + ") END)";
    return;
  }
  const Literal& l = n.literals[0];
  if (l.kind == Literal::Kind::kNull) {
    *sql += "NULL";
    return;
  }
  if (n.op == Op::kLike) {
    Literal glob = l;
    glob.text = LikeToGlob(l.text);
    guarded(col, kTextKinds, "+" + col + " GLOB " + literal_ref(glob));
    return;
  }
  const char* op = n.op == Op::kEq ? " = " : n.op == Op::kGt ? " > " : n.op == Op::kGte ? " >= "
                 : n.op == Op::kLt ? " < " : " <= ";
  guarded(col, l.kind == Literal::Kind::kText ? kTextKinds : kNumberKinds,
          "+" + col + op + literal_ref(l) + " COLLATE BINARY");
}

namespace {

void AppendIrRef(const std::string& column, std::string* out) {
  *out += "{\"type\":\"ref\",\"path\":[";
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  WriteString(column, &w);
  out->append(sb.GetString(), sb.GetSize());
  *out += "]}";
}

// A literal as a bare JSON value (AppendLiteral writes it as an array entry).
std::string LiteralJson(const Literal& lit) {
  std::string json;
  AppendLiteral(lit, &json);  // no comma: `json` starts empty
  return json;
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kAnd: return "and";
    case Op::kOr: return "or";
    case Op::kNot: return "not";
    case Op::kEq: return "eq";
    case Op::kGt: return "gt";
    case Op::kGte: return "gte";
    case Op::kLt: return "lt";
    case Op::kLte: return "lte";
    case Op::kLike: return "like";
    case Op::kIn: return "in";
    case Op::kIsNull: return "isNull";
    case Op::kFalse: return "isUndefined";
  }
  return "isUndefined";
}

}  // namespace

std::string Predicate::ToIr() const {
  if (nodes_.empty()) return "null";
  std::string out;
  NodeIr(0, &out);
  return out;
}

void Predicate::NodeIr(int index, std::string* out) const {
  const Node& n = nodes_[index];
  *out += "{\"type\":\"func\",\"name\":\"";
  *out += OpName(n.op);
  *out += "\",\"args\":[";
  switch (n.op) {
    case Op::kAnd:
    case Op::kOr:
    case Op::kNot:
      for (size_t i = 0; i < n.children.size(); ++i) {
        if (i > 0) *out += ",";
        NodeIr(n.children[i], out);
      }
      break;
    case Op::kIsNull:
    case Op::kFalse:
      AppendIrRef(n.column, out);
      break;
    case Op::kIn: {
      AppendIrRef(n.column, out);
      *out += ",{\"type\":\"val\",\"value\":[";
      for (size_t i = 0; i < n.literals.size(); ++i) {
        if (i > 0) *out += ",";
        *out += LiteralJson(n.literals[i]);
      }
      *out += "]}";
      break;
    }
    default:
      AppendIrRef(n.column, out);
      *out += ",{\"type\":\"val\",\"value\":" + LiteralJson(n.literals[0]) + "}";
      break;
  }
  *out += "]}";
}

Predicate Predicate::None(const std::string& column) {
  Predicate p;
  Node in;
  in.op = Op::kIn;  // `in []`: never true
  in.column = column;
  p.nodes_.push_back(std::move(in));
  return p;
}

Predicate Predicate::WithBound(const SortBound& b) const {
  // The bound as a small tree, appended after the existing nodes.
  //   through V: rows ordered before V in sort order; from V: after it.
  //   NULLs sit at one end, so they are inside the bound iff that end is
  //   the one the bound reaches.
  bool nulls_inside = b.through == b.nulls_first;
  std::vector<Node> bound;
  auto leaf = [&](Op op, bool with_value) {
    Node n;
    n.op = op;
    n.column = b.column;
    if (with_value) n.literals.push_back(b.value);
    bound.push_back(std::move(n));
    return static_cast<int>(bound.size()) - 1;
  };
  if (b.value.kind == Literal::Kind::kNull) {
    // Through the NULL group at the end, or from the NULL group at the
    // start: every row. Otherwise only the NULL group itself.
    if (b.through != b.nulls_first) return *this;
    leaf(Op::kIsNull, false);
  } else {
    // before V in ascending order is <=, in descending order >=.
    bool less = b.through != b.descending;
    Op cmp = less ? Op::kLte : Op::kGte;
    if (nulls_inside) {
      Node any;
      any.op = Op::kOr;
      bound.push_back(any);
      int c = leaf(cmp, true);
      int z = leaf(Op::kIsNull, false);
      bound[0].children = {c, z};
    } else {
      leaf(cmp, true);
    }
  }
  Predicate out;
  int offset = 0;
  if (!nodes_.empty()) {
    Node conj;
    conj.op = Op::kAnd;
    out.nodes_.push_back(std::move(conj));
    for (Node n : nodes_) {
      for (int& c : n.children) c += 1;
      out.nodes_.push_back(std::move(n));
    }
    offset = static_cast<int>(out.nodes_.size());
    out.nodes_[0].children = {1, offset};
  }
  for (Node n : bound) {
    for (int& c : n.children) c += offset;
    out.nodes_.push_back(std::move(n));
  }
  return out;
}

}  // namespace seqsync
