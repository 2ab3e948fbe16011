// Ordered windows: a subscription's orderBy/limit/offset (docs/protocol.md
// §4.2), read from its body and resolved once into a plain predicate.
// Internal.

#ifndef SEQSYNC_WINDOWS_H_
#define SEQSYNC_WINDOWS_H_

#include <optional>

#include "json_util.h"
#include "schema.h"
#include "seqsync/options.h"
#include "seqsync/storage.h"
#include "sockets.h"

namespace seqsync {

// Reads orderBy/limit/offset of a subscription `body` on `coll` into
// `*window`, which stays empty unless the body asks for a window that can
// leave rows out (a limit or an offset). Errors: kInvalidField, kTooMany
// (over 8 terms), kUnknownColumn (an orderBy column `coll` lacks).
Status ParseWindow(const JsonValue& body, const Collection& coll, std::optional<Window>* window);

// If `s` has a window, replaces it by the predicate it selects now (its
// where AND the range of the window's leading values), and rewrites
// s->where_json and s->body to match. Runs at most two SQL statements.
// Fails with the reader's error (kTooDeep, kTooMany, kTooLarge) if the
// resolved body could not be read back under `options` (ReadSub on
// ParseStoredBody), as a wake reads it: a stored body is always readable.
Status ResolveWindow(const Options& options, Storage* storage, Schema* schema, Subscription* s);

}  // namespace seqsync

#endif  // SEQSYNC_WINDOWS_H_
