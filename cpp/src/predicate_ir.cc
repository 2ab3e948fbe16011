// The predicate IR written back (ToIr), and the predicates the core builds
// itself: None, and the window bounds of WithBound.
//
// Invariant: Parse(ToIr(p)) selects the same rows as p, for every p the core
// holds: a window's resolved where travels as IR (in snapshot frames, in
// _sync_subs) and comes back through the parser, so ToIr writes only what
// Parse reads (literals as JSON numbers that read back exactly, never ±Inf,
// whose bounds are left off), and the bounds are built from the ops the IR
// has.

#include <functional>
#include <string>
#include <vector>

#include "json_util.h"
#include "predicate_literal.h"
#include "seqsync/predicate.h"

namespace seqsync {

using Op = Predicate::Op;
using Literal = Predicate::Literal;
using Node = Predicate::Node;

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
// An integer beyond ±(2^53-1) is tagged {"$int":"…"}: the IR goes back to
// clients, whose JSON numbers are doubles.
std::string LiteralJson(const Literal& lit) {
  constexpr std::int64_t kMaxSafe = (std::int64_t{1} << 53) - 1;
  if (lit.kind == Literal::Kind::kNumber && lit.is_int && (lit.integer > kMaxSafe || lit.integer < -kMaxSafe)) {
    return "{\"$int\":\"" + std::to_string(lit.integer) + "\"}";
  }
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

namespace {

const char* FnName(Predicate::Fn fn) {
  switch (fn) {
    case Predicate::Fn::kLower: return "lower";
    case Predicate::Fn::kLength: return "length";
    case Predicate::Fn::kCoalesce: return "coalesce";
    case Predicate::Fn::kAdd: return "add";
    case Predicate::Fn::kSubtract: return "subtract";
    case Predicate::Fn::kMultiply: return "multiply";
    default: return "divide";
  }
}

}  // namespace

void Predicate::ExprIr(int index, std::string* out) const {
  const Expr& e = exprs_[static_cast<size_t>(index)];
  if (e.fn == Fn::kRef) {
    AppendIrRef(e.column, out);
    return;
  }
  if (e.fn == Fn::kLiteral) {
    *out += "{\"type\":\"val\",\"value\":" + LiteralJson(e.literal) + "}";
    return;
  }
  *out += "{\"type\":\"func\",\"name\":\"";
  *out += FnName(e.fn);
  *out += "\",\"args\":[";
  for (size_t i = 0; i < e.args.size(); ++i) {
    if (i > 0) *out += ",";
    ExprIr(e.args[i], out);
  }
  *out += "]}";
}

std::string Predicate::ToIr() const {
  if (nodes_.empty()) return "null";
  std::string out;
  NodeIr(0, &out);
  return out;
}

void Predicate::NodeIr(int index, std::string* out) const {
  const Node& n = nodes_[index];
  auto AppendOperand = [this](const Node& node, std::string* o) {
    if (node.operand < 0) AppendIrRef(node.column, o);
    else ExprIr(node.operand, o);
  };
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
      AppendOperand(n, out);
      *out += ",{\"type\":\"val\",\"value\":[";
      for (size_t i = 0; i < n.literals.size(); ++i) {
        if (i > 0) *out += ",";
        *out += LiteralJson(n.literals[i]);
      }
      *out += "]}";
      break;
    }
    default:
      AppendOperand(n, out);
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
