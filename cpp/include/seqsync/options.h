// Options: the runtime knobs of one Core. The shell builds them from the
// user's `SyncDurableObject` statics and passes them as JSON (ParseOptions).

#ifndef SEQSYNC_OPTIONS_H_
#define SEQSYNC_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "seqsync/limits.h"
#include "seqsync/result.h"

namespace seqsync {

struct Options {
  // Default: kDefaultMaxFrameBytes. Clamped to kCeilingMaxFrameBytes.
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;
  // Default: kDefaultMaxValueBytes. Clamped to kCeilingMaxValueBytes.
  std::size_t max_value_bytes = kDefaultMaxValueBytes;
  std::size_t max_key_bytes = kDefaultMaxKeyBytes;
  std::size_t max_id_bytes = kDefaultMaxIdBytes;
  int max_json_depth = kDefaultMaxJsonDepth;
  // Default: kDefaultMaxJsonValues. Clamped to kCeilingMaxJsonValues.
  std::size_t max_json_values = kDefaultMaxJsonValues;
  std::size_t max_ops_per_mutation = kDefaultMaxOpsPerMutation;
  std::size_t max_subs_per_socket = kDefaultMaxSubsPerSocket;
  // Bytes of one socket's subscription bodies together. Clamped to
  // kMaxSubBytesPerObject.
  std::size_t max_sub_bytes_per_socket = kDefaultMaxSubBytesPerSocket;
  std::size_t max_in_flight_per_socket = kDefaultMaxInFlightPerSocket;
  std::size_t max_in_flight_bytes_per_socket = kDefaultMaxInFlightBytesPerSocket;
  // Bytes sent to a socket and not reported read before it is closed as a
  // slow reader. Raised to kMinMaxUnreadBytesPerSocket.
  std::size_t max_unread_bytes_per_socket = kDefaultMaxUnreadBytesPerSocket;
  int max_predicate_depth = kDefaultMaxPredicateDepth;
  std::size_t max_predicate_nodes = kDefaultMaxPredicateNodes;
  std::size_t max_predicate_literal_bytes = kDefaultMaxPredicateLiteralBytes;
  std::size_t max_like_pattern_bytes = kDefaultMaxLikePatternBytes;
  std::size_t max_like_wildcards = kDefaultMaxLikeWildcards;
  // A socket may send sub_rate_burst sub frames at once, then
  // sub_rate_per_second; past that they are refused with RATE_LIMITED.
  std::size_t sub_rate_burst = kDefaultSubRateBurst;
  std::size_t sub_rate_per_second = kDefaultSubRatePerSecond;
  // Bytes of one socket's presence (tab ids and states) together. Clamped
  // to kPresenceAttachmentBytes; tabs clamped to kCeilingMaxPresenceTabsPerSocket.
  std::size_t max_presence_bytes_per_socket = kDefaultMaxPresenceBytesPerSocket;
  std::size_t max_presence_tabs_per_socket = kDefaultMaxPresenceTabsPerSocket;
  // presence frames per socket, as for sub frames.
  std::size_t presence_rate_burst = kDefaultPresenceRateBurst;
  std::size_t presence_rate_per_second = kDefaultPresenceRatePerSecond;
  std::size_t snapshot_chunk_bytes = kDefaultSnapshotChunkBytes;
  std::size_t read_page_rows = kDefaultReadPageRows;
  // Change-log entries older than this are pruned; a client whose cursor is
  // below the pruned range gets a snapshot. Default: 2 days.
  std::int64_t retention_ms = kDefaultRetentionMs;
  // Committed mutation outcomes are kept this long for exactly-once replays.
  // Default: 2 days, independent of retention_ms: a short change log must
  // not shorten exactly-once for a client that replays after long offline.
  std::int64_t dedup_retention_ms = kDefaultRetentionMs;
  // Compaction runs once this many changes were appended since the last run.
  std::size_t compact_every = 1000;
};

// Parses `json` (an object whose keys are the camelCase field names, e.g.
// {"retentionMs": 60000}) over the defaults. Unknown keys are an error, so a
// typo is not silently ignored.
Result<Options> ParseOptions(std::string_view json);

}  // namespace seqsync

#endif  // SEQSYNC_OPTIONS_H_
