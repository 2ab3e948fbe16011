// SQLite's "too big": the DO's SQLite refuses any string or BLOB over ~2 MB
// (SQLITE_TOOBIG), which a page of rows read as one JSON string can reach.
// Internal.

#ifndef SEQSYNC_TOO_BIG_H_
#define SEQSYNC_TOO_BIG_H_

#include <cstddef>
#include <functional>
#include <vector>

#include "seqsync/status.h"
#include "seqsync/storage.h"

namespace seqsync {

// A storage failure as the client should see it: SQLite's "too big" and
// "too long" mean the request was too large (kTooLarge), not that the
// server failed; anything else is returned as is.
Status Classified(const Status& s);

// Runs `read(*page)`, a query of `*page` rows; while SQLite finds its result
// too big and a page holds more than one row, halves `*page` and runs it
// again. A single row SQLite cannot return is an error like any other.
Result<std::vector<SqlRow>> ReadHalvingPage(
    std::size_t* page, const std::function<Result<std::vector<SqlRow>>(std::size_t)>& read);

}  // namespace seqsync

#endif  // SEQSYNC_TOO_BIG_H_
