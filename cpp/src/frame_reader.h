// The frame reader: inbound frames (docs/protocol.md §4) read and checked
// into typed requests. Internal.
//
// Each Read* function checks what can be checked without the socket's state
// and in the order the protocol answers: a field the protocol checks later
// (a mutation's ops, after the dedup lookup) is left in the document for the
// code that checks it then. Requests hold views into the frame's document,
// which must outlive them.

#ifndef SEQSYNC_FRAME_READER_H_
#define SEQSYNC_FRAME_READER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json_util.h"
#include "schema.h"
#include "seqsync/options.h"
#include "seqsync/storage.h"
#include "sockets.h"

namespace seqsync {

enum class FrameType { kHello, kSub, kUnsub, kMut, kCall, kRecv, kPresence, kPage };

// Parses `text` under the frame limits (bytes, depth, values) into `*doc`
// and reads its type. Errors: kTooLarge, kTooDeep, kMalformedFrame (not
// JSON, not an object, no string t), kUnknownFrame.
Status ReadFrame(std::string_view text, const Options& options, JsonDocument* doc, FrameType* type);

// One entry of hello.subs, not parsed yet: each is read with ReadSub after
// the hello as a whole was accepted.
struct HelloSub {
  const JsonValue* body;
  bool resume;  // "resume": true
};

struct HelloRequest {
  std::optional<std::string_view> epoch;
  std::optional<Seq> since;
  std::vector<HelloSub> subs;
  // "inlineAcks": true — the client reads an ack inside the changes frame
  // that ends its write's unit (docs/protocol.md §5.2).
  bool inline_acks = false;
  // "compactChanges": true — the client reads changes frames in their
  // compact form, one collection per frame (docs/protocol.md §5.2).
  bool compact_changes = false;
};

// Reads a hello. Errors: kVersionMismatch (the socket must then close),
// kInvalidField (a field of the wrong type, or an id twice in subs), and
// kTooMany (more subs than a socket may hold): the list is judged whole
// before any entry is parsed, since every entry can cost a snapshot.
Result<HelloRequest> ReadHello(const JsonValue& frame, const Options& options);

// The id of a sub body if it is a string, else "" (for a sub-error that
// must name the sub before the body was read).
std::string_view SubIdOf(const JsonValue& body);

// Reads a subscription body (a sub frame, an entry of hello.subs, or a
// stored body) on the registered collections. A where or orderBy naming a
// column the schema lacks re-reads the schema once (an ALTER TABLE ADD
// COLUMN since). Errors: kInvalidField, kTooLarge (the id),
// kUnknownCollection, kUnknownColumn, and the predicate's (predicate.h).
Result<Subscription> ReadSub(const JsonValue& body, const Options& options, Storage* storage, Schema* schema);

// Parses a body as stored in _sync_subs into `*doc`, under the depth a
// stored body may have. A body is stored only once it reads back (ReadSub
// on this, for a resolved window too), so it fails only if a deploy
// changed the limits since.
Status ParseStoredBody(std::string_view body, const Options& options, JsonDocument* doc);

// The stored form of `s`: {"id","c","where"}.
std::string StoredBody(const Subscription& s);

// The id of an unsub. Errors: kInvalidField.
Result<std::string_view> ReadUnsub(const JsonValue& frame);

// The bytes a recv frame reports read. Errors: kInvalidField.
Result<std::uint64_t> ReadRecv(const JsonValue& frame);

// A presence frame: either a watch, or a set of one tab's state (null
// clears it). Views into the frame's document.
struct PresenceRequest {
  std::optional<bool> watch;
  std::string_view tab;
  const JsonValue* state = nullptr;  // set iff watch is not
};

// Reads a presence frame. Errors: kInvalidField (neither form, both, a tab
// that is not a non-empty string, a set without state), kTooLarge (a tab
// id over kMaxPresenceTabIdBytes).
Result<PresenceRequest> ReadPresence(const JsonValue& frame);

// The id of a mut or call, checked before the dedup lookup. Everything else
// is judged after it (a replay of a finished id gets its outcome whatever
// else it carries). Errors: kInvalidField, kTooLarge.
Result<std::string> ReadMutationId(const JsonValue& frame, bool is_call, const Options& options);

// The status of a sub refused by the per-socket cap.
Status TooManySubs(const Options& options);

}  // namespace seqsync

#endif  // SEQSYNC_FRAME_READER_H_
