// Parsing a where: the predicate IR (docs/protocol.md §7) read into nodes,
// under the limits that bound what one subscription costs.
//
// Invariant: a Predicate that Parse returns is within every limit it was
// given, names only the given columns (each a plain identifier, so it can be
// spliced into SQL), and compiles to at most kMaxPredicateSqlBytes of SQL.
// The parser is the only way to build one from client input; the core's own
// constructions (None, WithBound) only append bounds of its own.

#include <algorithm>

#include "json_util.h"
#include "like_match.h"
#include "predicate_literal.h"
#include "seqsync/predicate.h"
#include "sql_ident.h"

namespace seqsync {
namespace {

using Op = Predicate::Op;
using Literal = Predicate::Literal;

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
  size_t literal_bytes_ = 0;
};

}  // namespace

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

}  // namespace seqsync
