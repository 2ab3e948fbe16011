// Parsing a where: the predicate IR (docs/protocol.md §7) read into nodes,
// under the limits that bound what one subscription costs.
//
// Invariant: a Predicate that Parse returns is within every limit it was
// given, names only the given columns (each a plain identifier, so it can be
// spliced into SQL), and compiles to at most kMaxPredicateSqlBytes of SQL.
// The parser is the only way to build one from client input; the core's own
// constructions (None, WithBound) only append bounds of its own.

#include <algorithm>
#include <charconv>

#include "json_util.h"
#include "like_match.h"
#include "predicate_literal.h"
#include "seqsync/predicate.h"
#include "sql_ident.h"

namespace seqsync {
namespace {

using Op = Predicate::Op;
using Literal = Predicate::Literal;

// Functions inside functions: like(lower(coalesce(a, add(b, 1)))) is 3.
constexpr int kMaxFunctionNesting = 3;

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
  } else if (const JsonValue* tagged = v.IsObject() && v.MemberCount() == 1 ? Member(v, "$int") : nullptr) {
    // A client's bigint, exact (docs/protocol.md §2); beyond 64 bits it is
    // refused, never rounded.
    if (!tagged->IsString()) return false;
    std::string_view digits = View(*tagged);
    auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), out->integer);
    if (err != std::errc() || end != digits.data() + digits.size() || digits.empty()) return false;
    out->kind = Literal::Kind::kNumber;
    out->is_int = true;
  } else {
    return false;
  }
  return true;
}

class Parser {
 public:
  Parser(const std::vector<std::string>& columns, PredicateLimits limits,
         std::vector<Predicate::Node>* nodes, std::vector<Predicate::Expr>* exprs)
      : columns_(columns), limits_(limits), nodes_(nodes), exprs_(exprs) {}

  Result<int> Parse(const JsonValue& ir, int depth) {
    if (depth > limits_.max_depth) {
      return Status::TooDeep("where is nested deeper than " +
                             std::to_string(limits_.max_depth) + " levels");
    }
    SEQSYNC_RETURN_IF_ERROR(CountNode());
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
    const bool ilike = fn == "ilike";
    if (fn == "eq") op = Op::kEq;
    else if (fn == "gt") op = Op::kGt;
    else if (fn == "gte") op = Op::kGte;
    else if (fn == "lt") op = Op::kLt;
    else if (fn == "lte") op = Op::kLte;
    else if (fn == "like" || ilike) op = Op::kLike;
    else if (fn == "in") op = Op::kIn;
    else return Status::UnsupportedPredicate("unsupported operator '" + std::string(fn) + "'");
    if (args->Size() != 2) {
      return Status::UnsupportedPredicate(std::string(fn) + " takes two arguments");
    }
    const JsonValue* ref = &(*args)[0];
    const JsonValue* val = &(*args)[1];
    if (!IsKind(*val, "val") && IsKind(*ref, "val") && op != Op::kLike && op != Op::kIn) {
      std::swap(ref, val);  // 5 < price  ==  price > 5
      op = op == Op::kGt ? Op::kLt : op == Op::kLt ? Op::kGt
         : op == Op::kGte ? Op::kLte : op == Op::kLte ? Op::kGte : op;
    }
    SEQSYNC_RETURN_IF_ERROR(ReadOperand(*ref, depth + 1, index));
    if (ilike) {
      // ilike(x, p) is TanStack DB's like(lower(x), lower(p)).
      Predicate::Expr lower;
      lower.fn = Predicate::Fn::kLower;
      lower.args.push_back(OperandExpr(index));
      SEQSYNC_RETURN_IF_ERROR(CountNode());
      exprs_->push_back(std::move(lower));
      node().operand = static_cast<int>(exprs_->size()) - 1;
      node().column.clear();
    }
    if (!IsKind(*val, "val")) {
      return Status::UnsupportedPredicate(std::string(fn) + " needs a literal {\"type\":\"val\"} operand");
    }
    const JsonValue* value = Member(*val, "value");
    node().op = op;
    if (op == Op::kIn) {
      if (value == nullptr || !value->IsArray()) {
        return Status::UnsupportedPredicate("in needs an array literal");
      }
      // One node however long: the list is a set (see predicate.cc), so only
      // its literal bytes bound it.
      for (auto& e : value->GetArray()) {
        Literal l;
        if (!ParseLiteral(e, &l)) return Status::UnsupportedPredicate("in list values must be scalars");
        SEQSYNC_RETURN_IF_ERROR(CountLiteral(l));
        // NULL never equals anything, so it can never make `in` true.
        if (l.kind != Literal::Kind::kNull) node().literals.push_back(std::move(l));
      }
      SortInList(&node().literals);
      SEQSYNC_RETURN_IF_ERROR(CheckCaseMapped(index));
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
    if (ilike) {
      for (char& c : l.text) c = AsciiLower(c);
    }
    node().literals.push_back(std::move(l));
    SEQSYNC_RETURN_IF_ERROR(CheckCaseMapped(index));
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

  static char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

  Status CountNode() const {
    if (nodes_->size() + exprs_->size() >= limits_.max_nodes) {
      return Status::TooMany("where has more than " + std::to_string(limits_.max_nodes) + " nodes");
    }
    return Status::Ok();
  }

  // The left operand of node `index`: a plain column, or a function of
  // columns and literals (an expression).
  Status ReadOperand(const JsonValue& v, int depth, int index) {
    if (IsKind(v, "ref")) return ReadColumn(v, &(*nodes_)[index].column);
    if (!IsKind(v, "func")) {
      return Status::UnsupportedPredicate("the left operand must be a column {\"type\":\"ref\"} or a function of columns");
    }
    SEQSYNC_ASSIGN_OR_RETURN(int e, ParseExpr(v, depth));
    (*nodes_)[index].operand = e;
    return Status::Ok();
  }

  // Node `index`'s operand as an expression (a plain column becomes a ref).
  int OperandExpr(int index) {
    Predicate::Node& n = (*nodes_)[index];
    if (n.operand >= 0) return n.operand;
    Predicate::Expr ref;
    ref.column = n.column;
    exprs_->push_back(std::move(ref));
    return static_cast<int>(exprs_->size()) - 1;
  }

  // A function of the row (Predicate::Fn). upper and concat are refused:
  // JS's toUpperCase maps ß to SS and ﬁ to FI (SQLite's upper maps ASCII
  // only), and String() of a REAL is not SQLite's text of it, so neither
  // can select the same rows in SQL as in TanStack DB.
  // `nesting` counts the functions around `v`: the SQL of one repeats its
  // argument up to three times, so it is bounded well below SQLite's
  // parser depth.
  Result<int> ParseExpr(const JsonValue& v, int depth, int nesting = 0) {
    if (depth > limits_.max_depth) {
      return Status::TooDeep("where is nested deeper than " + std::to_string(limits_.max_depth) + " levels");
    }
    if (nesting > kMaxFunctionNesting) {
      return Status::TooDeep("functions nest at most " + std::to_string(kMaxFunctionNesting) + " deep");
    }
    SEQSYNC_RETURN_IF_ERROR(CountNode());
    Predicate::Expr e;
    if (IsKind(v, "ref")) {
      e.fn = Predicate::Fn::kRef;
      SEQSYNC_RETURN_IF_ERROR(ReadColumn(v, &e.column));
    } else if (IsKind(v, "val")) {
      const JsonValue* value = Member(v, "value");
      e.fn = Predicate::Fn::kLiteral;
      if (value == nullptr || !ParseLiteral(*value, &e.literal)) {
        return Status::UnsupportedPredicate("a function's literal arguments must be scalars");
      }
      SEQSYNC_RETURN_IF_ERROR(CountLiteral(e.literal));
    } else {
      const JsonValue* name = Member(v, "name");
      const JsonValue* args = Member(v, "args");
      if (!IsKind(v, "func") || name == nullptr || !name->IsString() || args == nullptr || !args->IsArray()) {
        return Status::UnsupportedPredicate("a function argument must be a ref, a val or a func expression");
      }
      std::string_view fn = View(*name);
      size_t arity = 2;
      if (fn == "lower") e.fn = Predicate::Fn::kLower, arity = 1;
      else if (fn == "length") e.fn = Predicate::Fn::kLength, arity = 1;
      else if (fn == "coalesce") e.fn = Predicate::Fn::kCoalesce, arity = 0;
      else if (fn == "add") e.fn = Predicate::Fn::kAdd;
      else if (fn == "subtract") e.fn = Predicate::Fn::kSubtract;
      else if (fn == "multiply") e.fn = Predicate::Fn::kMultiply;
      else if (fn == "divide") e.fn = Predicate::Fn::kDivide;
      else return Status::UnsupportedPredicate("unsupported function '" + std::string(fn.substr(0, 64)) + "'");
      if (arity == 0 ? args->Size() == 0 : args->Size() != arity) {
        return Status::UnsupportedPredicate(std::string(fn) + " has the wrong number of arguments");
      }
      if (e.fn == Predicate::Fn::kLength && !IsKind((*args)[0], "ref")) {
        return Status::UnsupportedPredicate("length takes a column");
      }
      for (auto& a : args->GetArray()) {
        SEQSYNC_ASSIGN_OR_RETURN(int arg, ParseExpr(a, depth + 1, nesting + 1));
        e.args.push_back(arg);
      }
    }
    exprs_->push_back(std::move(e));
    return static_cast<int>(exprs_->size()) - 1;
  }

  bool HasLower(int e) const {
    const Predicate::Expr& x = (*exprs_)[e];
    if (x.fn == Predicate::Fn::kLower) return true;
    return std::any_of(x.args.begin(), x.args.end(), [&](int a) { return HasLower(a); });
  }
  static bool IsAscii(const Literal& l) {
    return l.kind != Literal::Kind::kText ||
           std::all_of(l.text.begin(), l.text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  }
  bool ExprAscii(int e) const {
    const Predicate::Expr& x = (*exprs_)[e];
    if (x.fn == Predicate::Fn::kLiteral) return IsAscii(x.literal);
    return std::all_of(x.args.begin(), x.args.end(), [&](int a) { return ExprAscii(a); });
  }

  // lower is exact in SQL only against ASCII text: SQLite's lower maps ASCII
  // only, JS's every letter. With every text literal of the comparison
  // ASCII, both select the same rows: a non-ASCII letter stays non-ASCII
  // either way and can only meet a wildcard, except İ and K (Kelvin), which
  // JS lowers to "i̇" and "k" and the SQL replaces first.
  Status CheckCaseMapped(int index) const {
    const Predicate::Node& n = (*nodes_)[index];
    if (n.operand < 0 || !HasLower(n.operand)) return Status::Ok();
    if (ExprAscii(n.operand) && std::all_of(n.literals.begin(), n.literals.end(), IsAscii)) return Status::Ok();
    return Status::UnsupportedPredicate(
        "lower and ilike compare only with ASCII text (SQLite's lower maps ASCII letters only)");
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
    if (!IsPlainIdentifier(name) ||
        std::find(columns_.begin(), columns_.end(), name) == columns_.end()) {
      return Status::UnknownColumn("unknown column '" + std::string(name.substr(0, 128)) + "'");
    }
    column->assign(name);
    return Status::Ok();
  }

  const std::vector<std::string>& columns_;
  PredicateLimits limits_;
  std::vector<Predicate::Node>* nodes_;
  std::vector<Predicate::Expr>* exprs_;
  size_t literal_bytes_ = 0;
};

}  // namespace

Result<Predicate> Predicate::Parse(const JsonValue& ir,
                                   const std::vector<std::string>& columns,
                                   PredicateLimits limits) {
  Predicate pred;
  if (ir.IsNull()) return pred;
  Parser parser(columns, limits, &pred.nodes_, &pred.exprs_);
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

}  // namespace seqsync
