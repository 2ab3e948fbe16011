#include "seqsync/options.h"

#include <algorithm>
#include <cstring>

#include "json_util.h"
#include "seqsync/core.h"

namespace seqsync {
namespace {

// Reads a non-negative integer option into `out`, clamped to `ceiling`.
template <typename T>
Status ReadCount(const JsonValue& v, const char* name, T ceiling, T* out) {
  if (!IsSafeUnsigned(v)) {
    return Status::InvalidField(std::string("option ") + name +
                                " must be a non-negative integer");
  }
  uint64_t n = v.IsUint64() ? v.GetUint64() : static_cast<uint64_t>(v.GetDouble());
  *out = static_cast<T>(std::min<uint64_t>(n, static_cast<uint64_t>(ceiling)));
  return Status::Ok();
}

}  // namespace

Result<Options> ParseOptions(std::string_view json) {
  Options o;
  if (json.empty()) return o;
  JsonDocument doc;
  SEQSYNC_RETURN_IF_ERROR(ParseBounded(json, 4, &doc));
  if (!doc.IsObject()) return Status::InvalidField("options must be a JSON object");
  constexpr std::size_t kBig = std::size_t{1} << 30;  // size_t is 32-bit in wasm
  for (rapidjson::SizeType i = 0; i < doc.MemberCount(); ++i) {
    const auto& m = doc.MemberBegin()[i];
    const char* k = m.name.GetString();
    const JsonValue& v = m.value;
    Status s;
    if (!std::strcmp(k, "maxFrameBytes")) s = ReadCount(v, k, kCeilingMaxFrameBytes, &o.max_frame_bytes);
    else if (!std::strcmp(k, "maxValueBytes")) s = ReadCount(v, k, kCeilingMaxValueBytes, &o.max_value_bytes);
    else if (!std::strcmp(k, "maxKeyBytes")) s = ReadCount(v, k, kBig, &o.max_key_bytes);
    else if (!std::strcmp(k, "maxIdBytes")) s = ReadCount(v, k, kBig, &o.max_id_bytes);
    else if (!std::strcmp(k, "maxJsonDepth")) s = ReadCount(v, k, kCeilingMaxJsonDepth, &o.max_json_depth);
    else if (!std::strcmp(k, "maxJsonValues")) s = ReadCount(v, k, kCeilingMaxJsonValues, &o.max_json_values);
    else if (!std::strcmp(k, "maxOpsPerMutation")) s = ReadCount(v, k, kBig, &o.max_ops_per_mutation);
    else if (!std::strcmp(k, "maxSubsPerSocket")) s = ReadCount(v, k, kBig, &o.max_subs_per_socket);
    else if (!std::strcmp(k, "maxSubBytesPerSocket")) s = ReadCount(v, k, kMaxSubBytesPerObject, &o.max_sub_bytes_per_socket);
    else if (!std::strcmp(k, "maxInFlightPerSocket")) s = ReadCount(v, k, kBig, &o.max_in_flight_per_socket);
    else if (!std::strcmp(k, "maxInFlightBytesPerSocket")) s = ReadCount(v, k, kBig, &o.max_in_flight_bytes_per_socket);
    else if (!std::strcmp(k, "maxUnreadBytesPerSocket")) s = ReadCount(v, k, kBig, &o.max_unread_bytes_per_socket);
    else if (!std::strcmp(k, "maxPredicateDepth")) s = ReadCount(v, k, kCeilingMaxPredicateDepth, &o.max_predicate_depth);
    else if (!std::strcmp(k, "maxPredicateNodes")) s = ReadCount(v, k, kBig, &o.max_predicate_nodes);
    else if (!std::strcmp(k, "maxPredicateLiteralBytes")) s = ReadCount(v, k, kCeilingMaxValueBytes, &o.max_predicate_literal_bytes);
    else if (!std::strcmp(k, "maxLikePatternBytes")) s = ReadCount(v, k, std::size_t{4096}, &o.max_like_pattern_bytes);
    else if (!std::strcmp(k, "maxLikeWildcards")) s = ReadCount(v, k, std::size_t{64}, &o.max_like_wildcards);
    else if (!std::strcmp(k, "subRateBurst")) s = ReadCount(v, k, kBig, &o.sub_rate_burst);
    else if (!std::strcmp(k, "subRatePerSecond")) s = ReadCount(v, k, kBig, &o.sub_rate_per_second);
    else if (!std::strcmp(k, "maxPresenceBytesPerSocket")) s = ReadCount(v, k, kPresenceAttachmentBytes, &o.max_presence_bytes_per_socket);
    else if (!std::strcmp(k, "maxPresenceTabsPerSocket")) s = ReadCount(v, k, kCeilingMaxPresenceTabsPerSocket, &o.max_presence_tabs_per_socket);
    else if (!std::strcmp(k, "presenceRateBurst")) s = ReadCount(v, k, kBig, &o.presence_rate_burst);
    else if (!std::strcmp(k, "presenceRatePerSecond")) s = ReadCount(v, k, kBig, &o.presence_rate_per_second);
    else if (!std::strcmp(k, "snapshotChunkBytes")) s = ReadCount(v, k, kBig, &o.snapshot_chunk_bytes);
    else if (!std::strcmp(k, "readPageRows")) s = ReadCount(v, k, kBig, &o.read_page_rows);
    else if (!std::strcmp(k, "retentionMs")) s = ReadCount<std::int64_t>(v, k, kMaxSeq, &o.retention_ms);
    else if (!std::strcmp(k, "dedupRetentionMs")) s = ReadCount<std::int64_t>(v, k, kMaxSeq, &o.dedup_retention_ms);
    else if (!std::strcmp(k, "compactEvery")) s = ReadCount(v, k, kBig, &o.compact_every);
    else s = Status::InvalidField(std::string("unknown option ") + k);
    if (!s.ok()) return s;
  }
  if (o.max_json_depth < 2) o.max_json_depth = 2;
  if (o.read_page_rows < 1) o.read_page_rows = 1;
  if (o.compact_every < 1) o.compact_every = 1;
  if (o.max_json_values < 16) o.max_json_values = 16;
  o.max_unread_bytes_per_socket = std::max(o.max_unread_bytes_per_socket, kMinMaxUnreadBytesPerSocket);
  return o;
}

std::string LimitsJson(const Options& o) {
  return "{\"maxFrameBytes\":" + std::to_string(o.max_frame_bytes) +
         ",\"maxValueBytes\":" + std::to_string(o.max_value_bytes) +
         ",\"maxKeyBytes\":" + std::to_string(o.max_key_bytes) +
         ",\"maxIdBytes\":" + std::to_string(o.max_id_bytes) +
         ",\"maxJsonDepth\":" + std::to_string(o.max_json_depth) +
         ",\"maxJsonValues\":" + std::to_string(o.max_json_values) +
         ",\"maxOpsPerMutation\":" + std::to_string(o.max_ops_per_mutation) +
         ",\"maxSubsPerSocket\":" + std::to_string(o.max_subs_per_socket) +
         ",\"maxSubBytesPerSocket\":" + std::to_string(o.max_sub_bytes_per_socket) +
         ",\"maxInFlightPerSocket\":" + std::to_string(o.max_in_flight_per_socket) +
         ",\"maxInFlightBytesPerSocket\":" + std::to_string(o.max_in_flight_bytes_per_socket) +
         ",\"maxUnreadBytesPerSocket\":" + std::to_string(o.max_unread_bytes_per_socket) +
         ",\"maxPredicateDepth\":" + std::to_string(o.max_predicate_depth) +
         ",\"maxPredicateNodes\":" + std::to_string(o.max_predicate_nodes) +
         ",\"maxPredicateLiteralBytes\":" + std::to_string(o.max_predicate_literal_bytes) +
         ",\"maxLikePatternBytes\":" + std::to_string(o.max_like_pattern_bytes) +
         ",\"maxLikeWildcards\":" + std::to_string(o.max_like_wildcards) +
         ",\"subRateBurst\":" + std::to_string(o.sub_rate_burst) +
         ",\"subRatePerSecond\":" + std::to_string(o.sub_rate_per_second) +
         ",\"maxPresenceBytesPerSocket\":" + std::to_string(o.max_presence_bytes_per_socket) +
         ",\"maxPresenceTabsPerSocket\":" + std::to_string(o.max_presence_tabs_per_socket) +
         ",\"presenceRateBurst\":" + std::to_string(o.presence_rate_burst) +
         ",\"presenceRatePerSecond\":" + std::to_string(o.presence_rate_per_second) +
         ",\"retentionMs\":" + std::to_string(o.retention_ms) + "}";
}

}  // namespace seqsync
