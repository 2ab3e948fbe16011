// Pages: one-off ordered reads that hold no subscription (docs/protocol.md
// §4.8), for scrolling back below a live window. Internal.

#ifndef SEQSYNC_PAGES_H_
#define SEQSYNC_PAGES_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fanout.h"
#include "json_util.h"
#include "schema.h"
#include "seqsync/options.h"
#include "seqsync/storage.h"
#include "sockets.h"

namespace seqsync {

// Where the previous page ended: the values of its last row's orderBy
// terms (one per term) and its primary key. Both halves are needed: rows
// tied on every value are told apart by the key. An empty key sorts before
// every key (keys are non-empty): the whole tie group.
struct PageCursor {
  std::vector<SqlValue> values;
  std::string key;
};

struct PageRequest {
  std::string id;
  std::string collection;
  Predicate predicate;
  std::vector<OrderTerm> order;  // then the primary key, ascending
  std::int64_t limit = 0;        // 1..kMaxPageRows
  std::optional<PageCursor> cursor;
};

// The id of a page frame if it is a string, else "" (for a refusal before
// the frame was read).
std::string_view PageIdOf(const JsonValue& frame);

// Reads a page frame on the registered collections. Errors: kInvalidField
// (no id, no limit, an offset, a cursor of the wrong shape), kTooLarge (the
// id, the cursor key over maxKeyBytes, its values over
// maxPredicateLiteralBytes), kTooMany (a limit over kMaxPageRows), kUnknownCollection,
// kUnknownColumn, and the predicate's.
Result<PageRequest> ReadPage(const JsonValue& frame, const Options& options, Storage* storage, Schema* schema);

// Adds to `plan` for `to` the page `request` asks for, read at `seq` (the
// head: the caller drained first): every row tied with the cursor on all
// orderBy values whose key sorts after the cursor's (at most kMaxPageRows),
// then `limit` rows after them in (orderBy, key) order. Frames leave as
// they are read; the last carries "cut":true iff the ties filled
// kMaxPageRows and more remain (the client asks again from the last row).
// On failure some frames may have left (Fanout::Unsend).
Status ServePage(const PageRequest& request, Seq seq, Storage* storage, Options* options, Schema* schema,
                 Fanout* fanout, const std::vector<std::string>& to, Plan* plan);

}  // namespace seqsync

#endif  // SEQSYNC_PAGES_H_
