// Includes RapidJSON with the core's settings. Include this, never RapidJSON
// directly, so every translation unit agrees on them.
//
// RAPIDJSON_ASSERT: RapidJSON's accessors assert their type and are undefined
// behaviour in release if wrong. The core checks Is…() before every Get…(),
// so a failing assertion is a core bug: abort loudly rather than corrupt.

#ifndef SEQSYNC_RAPIDJSON_CONFIG_H_
#define SEQSYNC_RAPIDJSON_CONFIG_H_

#include <cstdlib>

#ifndef RAPIDJSON_ASSERT
#define RAPIDJSON_ASSERT(x) ((x) ? (void)0 : std::abort())
#endif
#define RAPIDJSON_HAS_STDSTRING 1

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#endif  // SEQSYNC_RAPIDJSON_CONFIG_H_
