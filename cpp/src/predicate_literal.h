// A predicate literal as JSON text: the one writer the SQL parameters and the
// IR share, so a literal binds exactly as it is written back. Internal.

#ifndef SEQSYNC_PREDICATE_LITERAL_H_
#define SEQSYNC_PREDICATE_LITERAL_H_

#include <string>
#include <vector>

#include "seqsync/predicate.h"

namespace seqsync {

// Appends `lit` as a JSON value to `out`, after a comma unless `out` is empty
// or just "[" (so it builds an array's text). A non-finite REAL is written as
// null: JSON has none, and callers leave such bounds off.
void AppendLiteral(const Predicate::Literal& lit, std::string* out);

// Sorts an `in` list (no NULLs) into the set order the evaluator searches
// (numbers before text, numbers by value, text by bytes) and drops
// duplicates (5 and 5.0 are one value).
void SortInList(std::vector<Predicate::Literal>* list);

}  // namespace seqsync

#endif  // SEQSYNC_PREDICATE_LITERAL_H_
