// JSON helpers shared by the core: bounded parsing of untrusted text and
// small writer conveniences. Internal to the core.

#ifndef SEQSYNC_JSON_UTIL_H_
#define SEQSYNC_JSON_UTIL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "rapidjson_config.h"
#include "seqsync/limits.h"
#include "seqsync/result.h"

namespace seqsync {

using JsonDocument = rapidjson::Document;
using JsonValue = rapidjson::Value;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Parses untrusted `text` into `doc`. Fails with kMalformedFrame (message
// holds RapidJSON's reason and the byte offset), kTooDeep when nesting
// exceeds `max_depth`, or kTooLarge when it holds more than `max_values`
// values (scalars, arrays and objects each count one). Parsing is iterative
// and validates UTF-8, so hostile input can neither overflow the stack,
// grow the document far beyond its own size, nor smuggle bad bytes. Text
// the core read from its own SQLite needs no value bound (its size is
// bounded by SQLite's 2 MB string limit); inbound frames always pass one.
Status ParseBounded(std::string_view text, int max_depth, JsonDocument* doc,
                    std::size_t max_values = SIZE_MAX);

// Writes `v` (any JSON value) to `w`. REQUIRES: `v`'s depth was bounded by
// ParseBounded, as Accept recurses.
void WriteValue(const JsonValue& v, JsonWriter* w);

// Appends `s` to `w` as a JSON string (or object key), escaped exactly as
// RapidJSON escapes. A long string is escaped here rather than by RapidJSON's
// writer, which reserves 6 output bytes per input byte before it writes: a
// 4 MB string from a client would take 24 MB of the core's 32 MB heap.
void WriteString(std::string_view s, JsonWriter* w);

// Looks up member `name` of object `obj`; nullptr iff absent.
const JsonValue* Member(const JsonValue& obj, const char* name);

// The string view of a JSON string. REQUIRES: v.IsString().
inline std::string_view View(const JsonValue& v) {
  return {v.GetString(), v.GetStringLength()};
}

// True iff `v` is a number holding an integer in [0, 2^53-1].
bool IsSafeUnsigned(const JsonValue& v);

// The JSON text of `v`.
std::string ToJson(const JsonValue& v);

}  // namespace seqsync

#endif  // SEQSYNC_JSON_UTIL_H_
