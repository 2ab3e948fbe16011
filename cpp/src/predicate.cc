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
#include <functional>
#include <vector>

#include "json_util.h"
#include "like_match.h"
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

}  // namespace

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
  //
  // A window's rows are in SQLite's order, which ranks kinds: NULL <
  // numbers < text < BLOBs (or the reverse, descending; NULLs go where
  // nulls_first says). The predicate's comparisons are true only between
  // values of one kind, so "at or after 7" is not gte(7), which leaves out
  // the text and BLOBs sorted after every number. Each bound is written so
  // that it holds exactly the values on its side of V in that order:
  //
  //   at or before V            at or after V
  //   V a number: lte(V)        not(lt(V))                   (+ text, BLOBs)
  //   V text:     or(lte(V),    not(or(lt(V), <a number>)))  (+ BLOBs)
  //                  <a number>)
  //
  // with <a number> = gte(0) or lt(0). A BLOB cannot be named by the IR, so
  // "not(a lower value)" is how the BLOBs past a bound are kept. NULLs sit at
  // one end, so they are inside the bound iff that end is the one it reaches.
  struct Tree {
    Op op;
    std::vector<Literal> literals;
    std::vector<Tree> children;
  };
  Literal zero;
  zero.kind = Literal::Kind::kNumber;
  zero.is_int = true;
  zero.integer = 0;
  const Tree is_number{Op::kOr, {}, {{Op::kGte, {zero}, {}}, {Op::kLt, {zero}, {}}}};
  Tree tree;
  if (b.value.kind == Literal::Kind::kNull) {
    // Through the NULL group at the end, or from the NULL group at the
    // start: every row. Otherwise only the NULL group itself.
    if (b.through != b.nulls_first) return *this;
    tree = {Op::kIsNull, {}, {}};
  } else {
    const bool text = b.value.kind == Literal::Kind::kText;
    // At or before V in ascending order; descending flips the side.
    const bool before = b.through != b.descending;
    std::vector<Tree> terms;
    if (before) {
      terms.push_back({Op::kLte, {b.value}, {}});
      if (text) terms.insert(terms.end(), is_number.children.begin(), is_number.children.end());
    } else {
      Tree lower{Op::kLt, {b.value}, {}};
      if (text) lower = {Op::kOr, {}, {lower, is_number.children[0], is_number.children[1]}};
      terms.push_back({Op::kNot, {}, {lower}});
    }
    if (b.through == b.nulls_first) terms.push_back({Op::kIsNull, {}, {}});
    tree = terms.size() == 1 ? terms[0] : Tree{Op::kOr, {}, terms};
  }
  // Pre-order, as the parser lays nodes out: the root first, and every
  // child after its parent.
  std::vector<Node> bound;
  std::function<int(const Tree&)> emit = [&](const Tree& t) {
    int index = static_cast<int>(bound.size());
    bound.emplace_back();
    bound[index].op = t.op;
    if (t.op != Op::kAnd && t.op != Op::kOr && t.op != Op::kNot) bound[index].column = b.column;
    bound[index].literals = t.literals;
    for (const Tree& c : t.children) {
      int child = emit(c);
      bound[index].children.push_back(child);
    }
    return index;
  };
  emit(tree);
  // Conjoined with this predicate: a bound joins a top-level `and` as one
  // more child rather than nesting it one level deeper, so a window's two
  // bounds add one level at most to the client's where.
  Predicate out = *this;
  int offset = static_cast<int>(out.nodes_.size());
  if (!nodes_.empty() && nodes_[0].op != Op::kAnd) {
    Node conj;
    conj.op = Op::kAnd;
    out.nodes_.clear();
    out.nodes_.push_back(std::move(conj));
    for (Node n : nodes_) {
      for (int& c : n.children) c += 1;
      out.nodes_.push_back(std::move(n));
    }
    offset = static_cast<int>(out.nodes_.size());
    out.nodes_[0].children = {1};
  }
  if (!out.nodes_.empty()) out.nodes_[0].children.push_back(offset);
  for (Node n : bound) {
    for (int& c : n.children) c += offset;
    out.nodes_.push_back(std::move(n));
  }
  return out;
}

}  // namespace seqsync
