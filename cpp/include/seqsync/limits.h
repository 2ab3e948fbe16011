// Every bound the core enforces, with its default, its hard ceiling and why.
// Runtime overrides are fields of Options (options.h); an override above the
// ceiling is clamped to it. Each limit has a boundary test at N and N+1:
// the frame and mutation bounds in tests/cpp/frame_reader_test.cc and
// hardening_test.cc, the predicate bounds in predicate_test.cc.

#ifndef SEQSYNC_LIMITS_H_
#define SEQSYNC_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace seqsync {

// Seq: the position of one change in the DO's change log. Assigned by SQLite
// (AUTOINCREMENT) inside the writing transaction, strictly increasing, never
// reused. Seqs cross into JS as numbers, so the core refuses to go past 2^53-1.
using Seq = std::uint64_t;
inline constexpr Seq kMaxSeq = (Seq{1} << 53) - 1;

// The protocol version this core speaks (docs/protocol.md).
inline constexpr int kProtocolVersion = 1;

// Bytes of one inbound frame. Default 4 MiB; ceiling 32 MiB, the largest
// WebSocket message a Durable Object can receive (the runtime closes the
// socket with 1009 past it).
inline constexpr std::size_t kDefaultMaxFrameBytes = 4u << 20;
inline constexpr std::size_t kCeilingMaxFrameBytes = 32u << 20;

// Bytes of one column value (string or JSON text). DO SQLite refuses strings
// and rows over 2 MB, so a larger value could never be stored or read back.
inline constexpr std::size_t kDefaultMaxValueBytes = 2000000;
inline constexpr std::size_t kCeilingMaxValueBytes = 2000000;

// Bytes of a primary key, and of a mutation or subscription id.
inline constexpr std::size_t kDefaultMaxKeyBytes = 512;
inline constexpr std::size_t kDefaultMaxIdBytes = 128;

// JSON nesting of an inbound frame. The ceiling keeps recursive walks of the
// parsed document (RapidJSON's writer) far from the end of the wasm stack,
// which is 256 KB (-sTOTAL_STACK in CMakeLists.txt).
inline constexpr int kDefaultMaxJsonDepth = 32;
inline constexpr int kCeilingMaxJsonDepth = 128;

// Values (scalars, arrays and objects) in one inbound frame. The parsed
// document costs about 16 bytes a value on top of the frame's own bytes, so
// without this bound a 3 MB frame of `[0,0,0,…]` grows the heap by ~25 MB.
// Ceiling: the wasm heap (kMaxHeapBytes) must hold the document.
inline constexpr std::size_t kDefaultMaxJsonValues = 100000;
inline constexpr std::size_t kCeilingMaxJsonValues = 1000000;

// The wasm core's whole heap. Several Durable Objects may share one isolate
// and its 128 MB, and wasm memory never shrinks, so one object pushed to its
// limit must leave room for three others. An allocation past it aborts the
// core (it never returns NULL), and the shell then restarts the object.
inline constexpr std::size_t kMaxHeapBytes = 32u << 20;

// A plan (the frames one core call produces) is handed to the shell to send
// as soon as it holds this many bytes, so a large snapshot never sits whole
// in the heap.
inline constexpr std::size_t kPlanFlushBytes = 1u << 20;

// Bytes of subscription bodies (id, collection and where as stored) one
// socket, and all sockets of one object together, may hold. A body costs
// the heap about four times its size (the text and its parsed literals),
// so the object's budget keeps all subscriptions within ~16 MB of the heap
// however many sockets share them out.
inline constexpr std::size_t kDefaultMaxSubBytesPerSocket = 256u << 10;
inline constexpr std::size_t kMaxSubBytesPerObject = 4u << 20;

// Sockets waiting on one in-flight mutation id (its owner's reconnects, say).
inline constexpr std::size_t kMaxWaitersPerMutation = 8;

// Ops in one mutation: one transaction must stay well inside the DO's 30 s
// CPU budget per message.
inline constexpr std::size_t kDefaultMaxOpsPerMutation = 500;

// Per-socket caps that keep one client from starving a shared DO.
inline constexpr std::size_t kDefaultMaxSubsPerSocket = 64;
inline constexpr std::size_t kDefaultMaxInFlightPerSocket = 32;
// Bytes of one socket's mutations in flight together. The shell holds each
// one's ops, parsed, while its authorize awaits: 32 frames of 4 MiB would be
// far more than the isolate's 128 MB. One mutation alone is always let in.
inline constexpr std::size_t kDefaultMaxInFlightBytesPerSocket = 8u << 20;
// Bytes sent to one socket that its client has not reported reading (a
// `recv` frame, docs/protocol.md §4.6). The runtime gives a Durable Object no
// send-buffer signal (workerd's WebSocket has no bufferedAmount, and send()
// queues without bound), so this is the only bound on what a client that
// stopped reading costs the object: past it the socket is closed with
// kCloseSlowReader and the client resumes by cursor. It must exceed the
// largest resume unit a client asks for, or a healthy client that is still
// reading it is closed when the next change comes. Minimum 64 KiB.
inline constexpr std::size_t kDefaultMaxUnreadBytesPerSocket = 8u << 20;
inline constexpr std::size_t kMinMaxUnreadBytesPerSocket = 64u << 10;

// Predicate trees: the evaluator recurses, so depth is bounded well below the
// wasm stack; nodes bound the work per row.
inline constexpr int kDefaultMaxPredicateDepth = 16;
inline constexpr int kCeilingMaxPredicateDepth = 64;
inline constexpr std::size_t kDefaultMaxPredicateNodes = 256;

// Bytes of all the literals of one predicate together (each live change is
// compared against them), and of one like pattern and its wildcards (% and
// _). The core's matcher is linear in the text, but SQLite's GLOB, which
// runs the same pattern over every row of a snapshot, costs up to
// text x pattern.
inline constexpr std::size_t kDefaultMaxPredicateLiteralBytes = 64u << 10;
inline constexpr std::size_t kDefaultMaxLikePatternBytes = 256;
inline constexpr std::size_t kDefaultMaxLikeWildcards = 16;

// sub frames per socket: a burst, then a steady rate (each one is
// a SQLite write and maybe a snapshot).
inline constexpr std::size_t kDefaultSubRateBurst = 128;
inline constexpr std::size_t kDefaultSubRatePerSecond = 16;

// Presence (docs/protocol.md §4.7): each socket's ephemeral state, one entry
// per tab slot, kept in memory and in the socket's hibernation attachment,
// never in SQLite. The platform limits an attachment to 16 KB, and the
// claims share it, so one socket's presence (tab ids and states, as stored)
// is bounded by kPresenceAttachmentBytes (counted as the attachment stores
// them: each [tab,state] with the tab quoted), which the shell keeps free,
// with the user's name, when it stores the claims at the upgrade. The object's budget keeps all
// sockets' presence (32,768 hibernatable sockets could otherwise hold
// 128 MB) within a small share of the wasm heap.
inline constexpr std::size_t kDefaultMaxPresenceBytesPerSocket = 2u << 10;
inline constexpr std::size_t kPresenceAttachmentBytes = 4u << 10;
inline constexpr std::size_t kDefaultMaxPresenceTabsPerSocket = 4;
inline constexpr std::size_t kCeilingMaxPresenceTabsPerSocket = 16;
inline constexpr std::size_t kMaxPresenceTabIdBytes = 64;
// The identity the shell names a socket's entries with (presenceUser).
inline constexpr std::size_t kMaxPresenceUserBytes = 256;
inline constexpr std::size_t kMaxPresenceBytesPerObject = 4u << 20;
// presence frames per socket: a burst, then a steady rate. Each set is sent
// to every watching socket, so this bounds what one socket's typing costs
// the room. The client throttles each tab to 10 a second.
inline constexpr std::size_t kDefaultPresenceRateBurst = 32;
inline constexpr std::size_t kDefaultPresenceRatePerSecond = 20;
// Rows of one `page` read (docs/protocol.md §4.8): its `limit` at most, and
// at most as many of the boundary's ties again. A page is one answer, built
// in one core call like a snapshot, so its rows are bounded by count as a
// snapshot's are by the table; its frames leave in snapshotChunkBytes pieces
// and count against maxUnreadBytesPerSocket. Not an option: a client pages
// on, and 1000 rows is more than a screen. Tested in page_test.cc (limit
// 1000 accepted, 1001 refused; 1001 tied rows cut at 1000).
inline constexpr std::int64_t kMaxPageRows = 1000;

// Target bytes of one outbound snapshot or catch-up frame. A single larger
// row still goes out whole, alone in its frame.
inline constexpr std::size_t kDefaultSnapshotChunkBytes = 512u << 10;

// Rows read per hydration or snapshot query. A page is read as one JSON
// string, and DO SQLite fails any string over ~2.2 MB (SQLITE_TOOBIG), so a
// page that hits it is halved.
inline constexpr std::size_t kDefaultReadPageRows = 512;

// How long change-log entries (and mutation outcomes) are kept: 2 days.
inline constexpr std::int64_t kDefaultRetentionMs = 2LL * 24 * 60 * 60 * 1000;

}  // namespace seqsync

#endif  // SEQSYNC_LIMITS_H_
