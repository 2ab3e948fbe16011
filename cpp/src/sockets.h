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
#include <string_view>
#include <vector>

#include "schema.h"
#include "seqsync/core.h"
#include "seqsync/options.h"
#include "seqsync/predicate.h"
#include "seqsync/storage.h"

namespace seqsync {

// An ordered window of a subscription (orderBy/limit/offset), as requested.
// ResolveWindow (windows.h) turns it into a plain predicate: the rows from
// the window's first through its last leading-column value, ties included.
// One term of an orderBy.
struct OrderTerm {
  std::string column;
  bool descending = false;
  bool nulls_first = true;
};

struct Window {
  std::string column;  // the leading orderBy column
  bool descending = false;
  bool nulls_first = true;
  std::vector<OrderTerm> terms;  // every orderBy term (a page orders by all of them)
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

// A token bucket: `burst` frames at once, then `per_second`.
struct TokenBucket {
  double tokens = -1;  // -1: not started (full)
  std::int64_t at_ms = 0;
  // Takes one token; false iff the bucket is empty.
  bool Take(std::int64_t now_ms, std::size_t burst, std::size_t per_second);
};

// One socket's presence (presence.h): ephemeral, outside the change log.
struct SocketPresence {
  bool watch = false;  // the socket receives everyone's presence
  std::string user;    // who its entries are (the shell's presenceUser), set with a state
  // Tab slot -> state (JSON text), in the order first set.
  std::vector<std::pair<std::string, std::string>> tabs;
  std::size_t bytes = 0;  // `tabs` as the attachment stores them ([tab,state] each), against the budgets
  TokenBucket rate;
  // A set the core checked and the shell's hook has not judged yet.
  std::optional<std::pair<std::string, std::string>> pending;
};

struct Socket {
  bool hello = false;
  std::vector<Subscription> subs;
  TokenBucket sub_rate;
  std::size_t sub_bytes = 0;  // bodies of `subs`, counted against the budgets
  // Bytes sent and not reported read, and bytes handed to the shell early in
  // the current call (unread.h). In memory only: a wake starts them at 0.
  std::uint64_t unread_bytes = 0;
  std::uint64_t flushed_bytes = 0;
  SocketPresence presence;
  // From its hello: its acks may ride in the frame that ends the write's
  // unit. In memory only: after a wake its acks are frames of their own,
  // which every client reads too.
  bool inline_acks = false;
  // From its hello: its changes frames take the compact form. In memory
  // only, like inline_acks: after a wake it is sent the full form.
  bool compact_changes = false;
};

using SocketMap = std::map<std::string, Socket, std::less<>>;

// The sockets of one core, their subscriptions, and the budgets on them.
class Sockets {
 public:
  // Both must outlive this.
  Sockets(Storage* storage, const Options* options) : storage_(storage), options_(options) {}

  // The socket `id`, new if unknown.
  Socket& Get(std::string_view id) { return sockets_[std::string(id)]; }
  const SocketMap& all() const { return sockets_; }
  // The socket `id`, or null if unknown.
  Socket* Find(std::string_view id) {
    auto it = sockets_.find(id);
    return it == sockets_.end() ? nullptr : &it->second;
  }

  // Takes one sub token from `sock`'s bucket; false iff it is empty.
  bool TakeSubToken(Socket* sock, std::int64_t now_ms);
  // The refusal of a sub past the bucket.
  Status RateLimited() const;

  // True iff `sock` has room for a subscription `id` (new, or replacing one).
  bool HasRoomFor(const Socket& sock, std::string_view id) const;

  // Adds or replaces `s` on `sock`, in SQLite and then in memory; kTooMany
  // past the cap or the object's budget, kTooLarge past the socket's.
  Status AddSub(std::string_view socket_id, Socket* sock, Subscription s);

  // Forgets subscription `id` of `socket_id`, in memory and in SQLite.
  // An unknown id costs nothing: no statement runs for it.
  void RemoveSub(std::string_view socket_id, Socket* sock, std::string_view id);

  // Forgets a closed socket and what it held (its presence is Presence's,
  // which must forget it first).
  void Close(std::string_view socket_id);

  // After a wake: restores the sockets in `live` and their subscriptions
  // from SQLite, read with ReadSub on `schema`, and deletes every other
  // socket's rows. A stored subscription that no longer reads is deleted,
  // and its socket told with a sub-error added to `refusals` (if not null).
  Status Restore(const std::vector<std::string>& live, Schema* schema, Plan* refusals);

 private:
  void Account(Socket* sock, std::size_t added, std::size_t removed);

  Storage* storage_;
  const Options* options_;
  SocketMap sockets_;
  // Bytes of every socket's subscription bodies. A body costs the heap a few
  // times its size (the where text, its parsed literals), so the per-socket
  // and per-object budgets on it are what bound subscription memory.
  std::size_t sub_bytes_ = 0;
};

}  // namespace seqsync

#endif  // SEQSYNC_SOCKETS_H_
