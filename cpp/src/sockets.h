// What the core holds for each socket: whether it said hello, its
// subscriptions, and the budgets that bound them. Internal.
//
// All of it is a cache of SQLite (_sync_sockets, _sync_subs): a wake rebuilds
// it from there (Core::Open), so nothing here has to survive an eviction.

#ifndef SEQSYNC_SOCKETS_H_
#define SEQSYNC_SOCKETS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "seqsync/predicate.h"

namespace seqsync {

// An ordered window of a subscription (orderBy/limit/offset), as requested.
// ResolveWindow (windows.h) turns it into a plain predicate: the rows from
// the window's first through its last leading-column value, ties included.
struct Window {
  std::string column;  // the leading orderBy column
  bool descending = false;
  bool nulls_first = true;
  std::int64_t limit = -1;  // -1: no limit
  std::int64_t offset = 0;
};

struct Subscription {
  std::string id;
  std::string collection;
  std::string where_json;  // "null" when absent
  Predicate predicate;
  std::string body;              // as persisted in _sync_subs
  std::optional<Window> window;  // set until ResolveWindow runs
  bool windowed = false;         // its predicate came from a window
};

struct Socket {
  bool hello = false;
  std::vector<Subscription> subs;
  // Token bucket for sub frames; -1: not started (full).
  double sub_tokens = -1;
  std::int64_t sub_tokens_ms = 0;
  std::size_t sub_bytes = 0;  // bodies of `subs`, counted against the budgets
};

using SocketMap = std::map<std::string, Socket, std::less<>>;

}  // namespace seqsync

#endif  // SEQSYNC_SOCKETS_H_
