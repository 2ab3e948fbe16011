// A predicate literal as JSON text: the one writer the SQL parameters and the
// IR share, so a literal binds exactly as it is written back. Internal.

#ifndef SEQSYNC_PREDICATE_LITERAL_H_
#define SEQSYNC_PREDICATE_LITERAL_H_

#include <string>

#include "seqsync/predicate.h"

namespace seqsync {

// Appends `lit` as a JSON value to `out`, after a comma unless `out` is empty
// or just "[" (so it builds an array's text). A non-finite REAL is written as
// null: JSON has none, and callers leave such bounds off.
void AppendLiteral(const Predicate::Literal& lit, std::string* out);

}  // namespace seqsync

#endif  // SEQSYNC_PREDICATE_LITERAL_H_
