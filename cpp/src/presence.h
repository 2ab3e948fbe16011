// Presence: who is here and what they are doing (docs/protocol.md §4.7,
// §5.10). Internal.
//
// Each socket holds up to maxPresenceTabsPerSocket entries, one per tab
// slot the client names; an entry is (socket, tab, user, state). The user is
// never the client's to say: the shell names it from the socket's claims
// when it accepts a set (Commit). Presence is ephemeral: it never touches
// the change log, the user's tables or any SQLite table, and is never
// confirmed like a write. It lives in memory, and in each socket's
// hibernation attachment (the shell stores the text Stored() returns, when a
// plan's keep_presence says so), so a wake restores it from the sockets that
// are still open. A socket's close removes its entries at once.
//
// Every frame is bounded before it costs the room anything: a token bucket
// per socket, the socket's bytes and tabs, and the object's bytes. A set
// past one of them is answered with a presence-error and changes nothing.
// What a set costs the room is one frame to every watching socket, charged
// to each as unread bytes like any other frame (unread.h).

#ifndef SEQSYNC_PRESENCE_H_
#define SEQSYNC_PRESENCE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "json_util.h"
#include "seqsync/core.h"
#include "seqsync/options.h"
#include "sockets.h"

namespace seqsync {

class Presence {
 public:
  // Both must outlive this.
  Presence(Sockets* sockets, const Options* options) : sockets_(sockets), options_(options) {}

  // A presence frame from `socket_id`, which said hello. A watch is answered
  // at once (everyone's entries); a clear (state null) is applied at once;
  // a set within the limits is held and returned as plan.presence, for the
  // shell's hook to judge before Commit or Refuse.
  Plan OnFrame(std::string_view socket_id, Socket* sock, const JsonValue& frame, std::int64_t now_ms);

  // Applies the held set of `socket_id` under `user` and sends it to every
  // watching socket. A socket with nothing held (closed since) gets nothing.
  Plan Commit(std::string_view socket_id, std::string_view user);

  // Drops the held set of `socket_id` and tells its socket why.
  Plan Refuse(std::string_view socket_id, const Status& why);

  // A closed socket: its entries' removals, for every other watching socket,
  // added to `plan`. REQUIRES: called before Sockets::Close forgets it.
  void OnClose(std::string_view socket_id, Plan* plan);

  // After a wake: the presence of `socket_id` as Stored() wrote it.
  Status Restore(std::string_view socket_id, std::string_view stored);

  // `p` as the socket's attachment keeps it: {"user","watch","tabs":[[tab,state]…]}.
  static std::string Stored(const SocketPresence& p);

 private:
  // The sockets that watch presence.
  std::vector<std::string> Watchers(std::string_view except = {}) const;
  // Sends `entries` (JSON array elements) to every watcher but `except`.
  void Broadcast(const std::string& entries, std::string_view except, Plan* plan) const;
  // The sender's attachment must keep its presence as it is now.
  static void Keep(const SocketPresence& p, Plan* plan) { plan->keep_presence = Stored(p); }

  Sockets* sockets_;
  const Options* options_;
  std::size_t bytes_ = 0;  // every socket's SocketPresence::bytes
};

}  // namespace seqsync

#endif  // SEQSYNC_PRESENCE_H_
