// WebSocket close codes the core puts in Plan::close_code (docs/protocol.md
// §8). They are on the wire: each equals the member of the same name in
// CloseCode, worker/src/protocol/codes.ts (a doctest compares the two files).
// The 44xx codes are terminal: a client must not reconnect after them.

#ifndef SEQSYNC_CLOSE_CODES_H_
#define SEQSYNC_CLOSE_CODES_H_

namespace seqsync {

inline constexpr int kCloseNormal = 1000;        // NORMAL
inline constexpr int kCloseTooLarge = 1009;      // TOO_LARGE: over the platform's receive limit
// INTERNAL: a committed write whose changes could not be read to send, or a
// unit that failed after some of its frames had left. The client resumes
// from its cursor.
inline constexpr int kCloseInternal = 1011;
inline constexpr int kCloseReset = 1012;         // RESET: the storage was reset (a new epoch)
// REAUTH: the socket's claims expired; the shell closes it (the core never
// does). Not terminal: the client dials again with fresh credentials.
inline constexpr int kCloseReauth = 4001;
// SLOW_READER: more than maxUnreadBytesPerSocket sent and not reported read
// (unread.cc). Not terminal: the client reconnects and resumes by cursor.
inline constexpr int kCloseSlowReader = 4008;
inline constexpr int kCloseProtocol = 4400;      // PROTOCOL: a violation the socket cannot survive
inline constexpr int kCloseUnauthorized = 4401;  // UNAUTHORIZED, at the upgrade
inline constexpr int kCloseForbidden = 4403;     // FORBIDDEN

}  // namespace seqsync

#endif  // SEQSYNC_CLOSE_CODES_H_
