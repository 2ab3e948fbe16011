// Predicate evaluation and SQL compilation (the IR writer and the bounds the
// core adds are predicate_ir.cc, the parser predicate_parse.cc).
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
#include "like_match.h"
#include "predicate_literal.h"
#include "sql_ident.h"

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

// Three-way compare of an INTEGER with a REAL, exact as SQLite's (no
// rounding of the integer to a double). REQUIRES: `r` is not NaN.
int CompareIntReal(std::int64_t i, double r) {
  if (r < -9223372036854775808.0) return 1;
  if (r >= 9223372036854775808.0) return -1;
  const auto whole = static_cast<std::int64_t>(r);  // in range: truncates
  if (i != whole) return i < whole ? -1 : 1;
  const double frac = r - static_cast<double>(whole);
  return frac > 0 ? -1 : (frac < 0 ? 1 : 0);
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
  if (a.is_int) return CompareIntReal(a.integer, b.real);
  if (b.is_int) return -CompareIntReal(b.integer, a.real);
  return a.real < b.real ? -1 : (a.real > b.real ? 1 : 0);
}

// The order of an `in` list's set: numbers before text, then by Compare.
bool LiteralLess(const Literal& a, const Literal& b) {
  if (a.kind != b.kind) return a.kind < b.kind;
  return Compare(FromLiteral(a), FromLiteral(b)) < 0;
}

// A value computed by an expression: a Scalar that owns its text.
struct Owned {
  Scalar::Kind kind = Scalar::Kind::kNull;
  bool is_int = false;
  std::int64_t integer = 0;
  double real = 0;
  std::string text;

  static Owned Of(const Scalar& s) {
    Owned o;
    o.kind = s.kind;
    o.is_int = s.is_int;
    o.integer = s.integer;
    o.real = s.real;
    o.text.assign(s.text);
    return o;
  }
  static Owned Number(double r) {
    Owned o;
    if (std::isnan(r)) return o;  // NaN is NULL, as in SQLite
    o.kind = Scalar::Kind::kNumber;
    o.real = r;
    return o;
  }
  Scalar View() const {
    Scalar s;
    s.kind = kind;
    s.is_int = is_int;
    s.integer = integer;
    s.real = real;
    s.text = text;
    return s;
  }
};

// JS's toLowerCase where it can meet ASCII: ASCII letters, İ -> "i\u0307",
// K (Kelvin) -> "k"; other letters stay (see Parser::CheckCaseMapped).
std::string LowerAsciiJs(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c >= 'A' && c <= 'Z') {
      out.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if (text.compare(i, 2, "\xC4\xB0") == 0) {
      out += "i\xCC\x87";
      ++i;
    } else if (text.compare(i, 3, "\xE2\x84\xAA") == 0) {
      out.push_back('k');
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// JS's length of a string (UTF-16 code units) of the text up to its first
// NUL, as like reads text: one per UTF-8 sequence, two for a 4-byte one.
std::int64_t Utf16Length(std::string_view text) {
  std::int64_t n = 0;
  for (char ch : text.substr(0, text.find('\0'))) {
    const auto b = static_cast<unsigned char>(ch);
    if ((b & 0xC0) != 0x80) ++n;
    if (b >= 0xF0) ++n;
  }
  return n;
}

double AsDouble(const Owned& v) {
  return v.kind == Scalar::Kind::kNull ? 0 : v.is_int ? static_cast<double>(v.integer) : v.real;
}

// The value of expression `index` on `row` (TanStack DB's meaning of each
// function, docs/protocol.md §7).
Owned EvalExpr(const std::vector<Predicate::Expr>& exprs, int index, const JsonValue& row) {
  using Fn = Predicate::Fn;
  const Predicate::Expr& e = exprs[static_cast<size_t>(index)];
  switch (e.fn) {
    case Fn::kRef: return Owned::Of(FromJson(Member(row, e.column.c_str())));
    case Fn::kLiteral: return Owned::Of(FromLiteral(e.literal));
    case Fn::kLower: {
      Owned v = EvalExpr(exprs, e.args[0], row);
      if (v.kind == Scalar::Kind::kText) v.text = LowerAsciiJs(v.text);
      return v;
    }
    case Fn::kLength: {
      Owned v = EvalExpr(exprs, e.args[0], row);
      Owned n;
      n.kind = Scalar::Kind::kNumber;
      n.is_int = true;
      n.integer = v.kind == Scalar::Kind::kText ? Utf16Length(v.text) : 0;  // JS: 0 for a non-string
      return n;
    }
    case Fn::kCoalesce:
      for (int a : e.args) {
        Owned v = EvalExpr(exprs, a, row);
        if (v.kind != Scalar::Kind::kNull) return v;
      }
      return Owned{};
    default: break;
  }
  // Arithmetic: NULL counts 0 (TanStack's a ?? 0); a text or BLOB operand
  // gives NULL (JS would coerce it; SQL cannot do so alike); the result is
  // a double, as in JS, and x / 0 is NULL.
  const Owned a = EvalExpr(exprs, e.args[0], row);
  const Owned b = EvalExpr(exprs, e.args[1], row);
  auto numeric = [](const Owned& v) { return v.kind == Scalar::Kind::kNull || v.kind == Scalar::Kind::kNumber; };
  if (!numeric(a) || !numeric(b)) return Owned{};
  const double x = AsDouble(a);
  const double y = AsDouble(b);
  switch (e.fn) {
    case Fn::kAdd: return Owned::Number(x + y);
    case Fn::kSubtract: return Owned::Number(x - y);
    case Fn::kMultiply: return Owned::Number(x * y);
    default: return y == 0 ? Owned{} : Owned::Number(x / y);
  }
}

}  // namespace

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

void SortInList(std::vector<Literal>* list) {
  std::sort(list->begin(), list->end(), LiteralLess);
  auto same = [](const Literal& a, const Literal& b) { return !LiteralLess(a, b) && !LiteralLess(b, a); };
  list->erase(std::unique(list->begin(), list->end(), same), list->end());
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
  Owned computed;
  Scalar col;
  if (n.operand < 0) {
    col = FromJson(Member(row, n.column.c_str()));
  } else {
    computed = EvalExpr(exprs_, n.operand, row);
    col = computed.View();
  }
  if (col.kind == Scalar::Kind::kNull) return Truth::kUnknown;
  if (n.op == Op::kIn) {
    // A set test: the list is sorted at parse (SortInList), so this costs
    // log(list) per row, as SQLite's IN over json_each does.
    if (col.kind != Scalar::Kind::kNumber && col.kind != Scalar::Kind::kText) return Truth::kFalse;
    Literal probe;
    probe.kind = col.kind == Scalar::Kind::kNumber ? Literal::Kind::kNumber : Literal::Kind::kText;
    probe.is_int = col.is_int;
    probe.integer = col.integer;
    probe.real = col.real;
    probe.text.assign(col.text);
    auto it = std::lower_bound(n.literals.begin(), n.literals.end(), probe, LiteralLess);
    return it != n.literals.end() && !LiteralLess(probe, *it) ? Truth::kTrue : Truth::kFalse;
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
      // SQLite parses `a OR b OR c …` into a chain as deep as it is long,
      // and the DO refuses expressions deeper than 100: 95 terms of a valid
      // where came back INTERNAL. Past kTermsPerGroup terms they go in groups
      // of that many, each in parentheses: the depth is then the group size
      // plus the number of groups. (Halving instead would nest parentheses
      // log2(terms) deep, and SQLite's parser stack is shallow too.) The
      // children are still written in order, so literals keep their slots.
      const char* joiner = n.op == Op::kAnd ? " AND " : " OR ";
      const size_t terms = n.children.size();
      const bool grouped = terms > kTermsPerGroup;
      *sql += "(";
      for (size_t i = 0; i < terms; ++i) {
        if (i > 0) *sql += joiner;
        if (grouped && i % kTermsPerGroup == 0) *sql += "(";
        NodeSql(n.children[i], param, sql, next, lits);
        if (grouped && (i % kTermsPerGroup == kTermsPerGroup - 1 || i == terms - 1)) *sql += ")";
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
  std::string col;
  if (n.operand < 0) {
    col = QuoteIdent(n.column);
  } else {
    ExprSql(n.operand, param, &col, next, lits);
  }
  if (n.op == Op::kIn) {
    // One set test, whatever the list's length: the list is one literal (a
    // JSON array) and IN over json_each builds an index of it, so the SQL,
    // its expression depth and the cost per row do not grow with the list.
    // json_each's value has no affinity, nor has +col, so kinds compare as
    // in Compare: 5 = 5.0, text never equals a number.
    std::string list = "[";
    for (const Literal& l : n.literals) AppendLiteral(l, &list);
    list += "]";
    if (lits->size() > 1) lits->push_back(',');
    lits->append(list);
    std::string ref = "?" + std::to_string(param) + ",'$[" + std::to_string((*next)++) + "]'";
    *sql += "(CASE WHEN " + col + " IS NULL THEN NULL ELSE (+" + col +
            " COLLATE BINARY IN (SELECT value FROM json_each(" + ref + "))) END)";
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

}  // namespace seqsync

namespace seqsync {

void Predicate::ExprSql(int index, int param, std::string* sql, int* next, std::string* lits) const {
  const Expr& e = exprs_[static_cast<size_t>(index)];
  auto arg = [&](size_t i) {
    std::string out;
    ExprSql(e.args[i], param, &out, next, lits);
    return out;
  };
  switch (e.fn) {
    case Fn::kRef:
      *sql += QuoteIdent(e.column);
      return;
    case Fn::kLiteral:
      AppendLiteral(e.literal, lits);
      *sql += "json_extract(?" + std::to_string(param) + ",'$[" + std::to_string((*next)++) + "]')";
      return;
    case Fn::kLower: {
      // İ and K first, as JS lowers them (LowerAsciiJs); lower() does ASCII.
      const std::string x = arg(0);
      *sql += "(CASE WHEN typeof(" + x + ")='text' THEN lower(replace(replace(" + x +
              ",char(304),'i'||char(775)),char(8490),'k')) ELSE " + x + " END)";
      return;
    }
    case Fn::kLength: {
      // UTF-16 units up to the first NUL: length() counts characters to
      // there, and each 4-byte sequence (lead byte F0-F4) counts once more.
      const std::string x = arg(0);
      const std::string b = "CAST(" + x + " AS BLOB)";
      const std::string head = "(CASE WHEN instr(" + b + ",X'00')>0 THEN substr(" + b + ",1,instr(" + b +
                               ",X'00')-1) ELSE " + b + " END)";
      std::string stripped = head;
      for (const char* lead : {"F0", "F1", "F2", "F3", "F4"}) {
        stripped = "replace(" + stripped + ",X'" + lead + "','')";
      }
      *sql += "(CASE WHEN typeof(" + x + ")='text' THEN length(" + x + ")+length(" + head + ")-length(CAST(" +
              stripped + " AS BLOB)) ELSE 0 END)";
      return;
    }
    case Fn::kCoalesce: {
      if (e.args.size() == 1) {
        *sql += "(" + arg(0) + ")";
        return;
      }
      *sql += "coalesce(";
      for (size_t i = 0; i < e.args.size(); ++i) *sql += (i ? "," : "") + arg(i);
      *sql += ")";
      return;
    }
    default: break;
  }
  const std::string a = arg(0);
  const std::string b = arg(1);
  const char* op = e.fn == Fn::kAdd ? "+" : e.fn == Fn::kSubtract ? "-" : e.fn == Fn::kMultiply ? "*" : "/";
  // REAL arithmetic is IEEE double, as JS's; SQLite makes x / 0 and NaN NULL.
  *sql += "(CASE WHEN typeof(" + a + ") IN ('integer','real','null') AND typeof(" + b +
          ") IN ('integer','real','null') THEN CAST(coalesce(" + a + ",0) AS REAL)" + op + "coalesce(" + b +
          ",0) END)";
}

}  // namespace seqsync
