// Unread bytes: the one bound on what a client that stops reading costs the
// object. Internal.
//
// A Durable Object cannot see a socket's send buffer: workerd's WebSocket
// has no bufferedAmount, and send() queues without bound. So the client
// reports what it read (a `recv` frame with the bytes of the frames it
// received since its last report, docs/protocol.md §4.6), and the core
// counts, per socket, the bytes it sent and the client has not reported.
// A socket whose count is over maxUnreadBytesPerSocket when a call starts
// sending to it again is closed with kCloseSlowReader after that call's
// frames: the frames of one call (a unit) are never cut, so a resume unit
// larger than the bound still arrives whole, and the client resumes by
// cursor. What the object holds for a reader that stalled is the bound plus
// one call's frames. A client that lies about reading defeats the bound;
// the platform gives nothing to check the claim against.

#ifndef SEQSYNC_UNREAD_H_
#define SEQSYNC_UNREAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "seqsync/core.h"
#include "sockets.h"

namespace seqsync {

// The unread counts of one core's sockets, charged as frames leave.
class Unread {
 public:
  // `sockets` must outlive this.
  explicit Unread(Sockets* sockets) : sockets_(sockets) {}

  // Counts a delivery the fanout handed to the shell before the call ended.
  void ChargeFlushed(const Delivery& delivery);

  // Counts the frames of `plan` (the rest of a call) against their sockets,
  // and closes with kCloseSlowReader every socket of the call that was over
  // `limit` before it. A plan that already closes something keeps its
  // close; the slow sockets are then closed by the next call to them.
  void ChargePlan(std::uint64_t limit, Plan* plan);

  // A recv frame: `bytes` more were read (never more than were sent).
  static void CreditRead(Socket* sock, std::uint64_t bytes);

 private:
  Sockets* sockets_;
  std::vector<std::string> flushed_;  // sockets with flushed_bytes this call
};

}  // namespace seqsync

#endif  // SEQSYNC_UNREAD_H_
