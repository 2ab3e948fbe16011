// The text the wasm core and the Durable Object's JS bridge exchange for one
// SQL statement, so a statement crosses the boundary once each way instead
// of once per parameter and per cell (worker/src/do/core.ts is the other
// side). Lengths count UTF-16 code units, which is what JS strings index by.
//
//   params   per value: `n` NULL · `i<int>;` · `f<double>;` · `t<len>:<text>`
//   result   `E<message>` an error · `T<text>` exactly one row of one TEXT
//            cell · `R<rows>,<cols>;` then the cells row by row, as params
//
// Internal.

#ifndef SEQSYNC_BRIDGE_CODEC_H_
#define SEQSYNC_BRIDGE_CODEC_H_

#include <string>
#include <string_view>
#include <vector>

#include "seqsync/result.h"
#include "seqsync/storage.h"

namespace seqsync {

// Appends `params` in the params format to `out`. False iff a text is not
// valid UTF-8 (its UTF-16 length would not be what JS sees): `out` is then
// unusable and the caller must pass the values another way.
bool EncodeSqlParams(const std::vector<SqlValue>& params, std::string* out);

// The rows (or the error) a bridge result stands for. A malformed result is
// kInternal.
Result<std::vector<SqlRow>> DecodeSqlResult(std::string_view result);

}  // namespace seqsync

#endif  // SEQSYNC_BRIDGE_CODEC_H_
