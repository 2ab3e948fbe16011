// Predicate: a subscription's `where`, parsed from TanStack DB's expression IR
// (docs/protocol.md §7), checked against the table's columns, evaluated on
// rows in the core and compiled to SQL for initial reads.
//
// The same tree drives both, and both follow one semantics: a comparison with
// NULL is unknown; values of different kinds (number, text) never compare
// equal or ordered; numbers compare as numbers, text by bytes (BINARY);
// and/or/not are three-valued; only true matches. The SQL form pins that
// semantics down with explicit type guards and no column affinity, so SQLite
// itself serves as the oracle in tests/cpp/predicate_test.cc.

#ifndef SEQSYNC_PREDICATE_H_
#define SEQSYNC_PREDICATE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "seqsync/limits.h"
#include "seqsync/result.h"

namespace rapidjson {
class CrtAllocator;
template <typename BaseAllocator> class MemoryPoolAllocator;
template <typename Encoding, typename Allocator> class GenericValue;
template <typename CharType> struct UTF8;
}  // namespace rapidjson

namespace seqsync {

using JsonValueRef =
    rapidjson::GenericValue<rapidjson::UTF8<char>,
                            rapidjson::MemoryPoolAllocator<rapidjson::CrtAllocator>>;

// Bytes of the SQL text ToSql may produce. The DO refuses SQL statements
// over 100 KB (SQLITE_TOOBIG); a predicate is refused at parse well below
// that, leaving room for the query around it (columns, ORDER BY, a window's
// bound). Literals are bound, not spliced, so it is the tree's size that
// counts (an `in` list is one set test, whatever its length).
inline constexpr std::size_t kMaxPredicateSqlBytes = 64u << 10;

// An and/or of more terms than this is written to SQL in parenthesized
// groups of this many, so its depth in SQLite's expression tree is the group
// size plus the number of groups, not the number of terms.
inline constexpr std::size_t kTermsPerGroup = 16;

struct PredicateLimits {
  int max_depth = 16;
  std::size_t max_nodes = 256;
  std::size_t max_literal_bytes = kDefaultMaxPredicateLiteralBytes;  // all literals together
  std::size_t max_pattern_bytes = kDefaultMaxLikePatternBytes;       // one like pattern
  std::size_t max_pattern_wildcards = kDefaultMaxLikeWildcards;      // % and _ in one pattern
};

class Predicate {
 public:
  // The predicate that matches every row.
  Predicate() = default;

  // Parses `ir`. Every column reference must be one of `columns`.
  // Errors: kUnsupportedPredicate (unknown operator or operand form),
  // kUnknownColumn, kTooDeep, kTooMany (nodes, like wildcards),
  // kTooLarge (a like pattern, all literals together, or the SQL over
  // kMaxPredicateSqlBytes).
  static Result<Predicate> Parse(const JsonValueRef& ir,
                                 const std::vector<std::string>& columns,
                                 PredicateLimits limits);

  // True iff this predicate matches every row (no `where`).
  bool is_all() const { return nodes_.empty(); }

  // Returns true iff `row` (a JSON object of column → value, as the core
  // reads rows) satisfies the predicate.
  bool Matches(const JsonValueRef& row) const;

  // A SQL boolean expression equivalent to Matches. Literals are not spliced
  // in: they are read with json_extract(?N, '$[i]') from one JSON array
  // parameter, returned in `*literals_json` (so any predicate binds exactly
  // one parameter, far below the DO's 100-parameter limit).
  // `param` is the parameter number N. Returns "1" if is_all().
  std::string ToSql(int param, std::string* literals_json) const;

  // The IR (docs/protocol.md §7) of this predicate as JSON text, or "null"
  // if is_all(). Parse(ToIr()) gives an equivalent predicate; numbers are
  // written so that they read back exactly.
  std::string ToIr() const;

  // A predicate that matches no row (used for a window that is empty).
  // `column` is any column of the table.
  static Predicate None(const std::string& column);

  // One end of a window in sort order (docs/protocol.md §4.2): the rows that
  // sort at or before `value` (`through`), or at or after it (`from`), when
  // ordered by `column` in the given direction and NULL placement. Ties are
  // included. A null `value` stands for the NULL group.
  struct SortBound;

  // Returns `this AND bound`.
  Predicate WithBound(const SortBound& bound) const;

  // The comparison ops, in IR spelling.
  enum class Op { kAnd, kOr, kNot, kEq, kGt, kGte, kLt, kLte, kLike, kIn, kIsNull, kFalse };

  struct Literal {
    enum class Kind { kNull, kNumber, kText } kind = Kind::kNull;
    bool is_int = false;
    std::int64_t integer = 0;
    double real = 0;
    std::string text;
  };

  // A value computed from a row, the left operand of a comparison, like or
  // in when it is not a plain column (docs/protocol.md §7): TanStack DB's
  // functions with one meaning in the core, in SQL and in the client.
  enum class Fn { kRef, kLiteral, kLower, kLength, kCoalesce, kAdd, kSubtract, kMultiply, kDivide };
  struct Expr {
    Fn fn = Fn::kRef;
    std::string column;     // kRef
    Literal literal;        // kLiteral
    std::vector<int> args;  // indexes into the predicate's expressions
  };

  struct Node {
    Op op = Op::kFalse;
    std::string column;             // comparisons, like, in, isNull (when operand < 0)
    int operand = -1;               // else the left operand: an index into exprs_
    std::vector<Literal> literals;  // one for comparisons and like; many for in
    std::vector<int> children;      // and, or, not
  };

  struct SortBound {
    std::string column;
    bool descending = false;
    bool nulls_first = true;
    bool through = true;  // true: at or before `value`; false: at or after it
    Literal value;
  };

 private:
  enum class Truth { kFalse, kTrue, kUnknown };
  Truth Eval(int node, const JsonValueRef& row) const;
  void NodeSql(int node, int param, std::string* sql, int* next_literal,
               std::string* literals) const;
  void NodeIr(int node, std::string* out) const;
  void ExprSql(int expr, int param, std::string* sql, int* next_literal, std::string* literals) const;
  void ExprIr(int expr, std::string* out) const;

  std::vector<Node> nodes_;  // nodes_[0] is the root when non-empty
  std::vector<Expr> exprs_;  // the operands that are not plain columns
};

}  // namespace seqsync

#endif  // SEQSYNC_PREDICATE_H_
