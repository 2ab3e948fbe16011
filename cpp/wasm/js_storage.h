// JsStorage: Storage over the shell's bridge (worker/src/do/core.ts), the
// object the shell puts at Module.seqsyncBridge before it opens a core. Its
// functions are imported by the module (EM_JS, js_storage.cc) and take their
// texts as UTF-8 bytes in the heap, as (address, length): nothing is copied
// character by character on the way. prepare names a statement text once;
// exec runs it on the DO's ctx.storage.sql (params and result in the text
// format of bridge_codec.h) and keeps the result's bytes for take to copy
// into the heap; send sends a frame at once. None of them throws: a JS
// exception unwinding through C++ frames would leak what they hold.

#ifndef SEQSYNC_WASM_JS_STORAGE_H_
#define SEQSYNC_WASM_JS_STORAGE_H_

#include <string>
#include <unordered_map>

#include "seqsync/storage.h"

namespace seqsync {

class JsStorage : public Storage {
 public:
  Result<std::vector<SqlRow>> Exec(std::string_view sql,
                                   const std::vector<SqlValue>& params) override;

  // Sends `frame` to the sockets `to` (the bridge gets their ids one per line).
  bool Send(const std::vector<std::string>& to, std::string_view frame) override;

 private:
  static constexpr std::size_t kMaxStatements = 256;
  // The bridge's id for `sql`, named on first use; -1 once the table is full.
  int StatementId(std::string_view sql);

  std::unordered_map<std::string, int> statements_;
  std::string ids_;  // reused: Send runs for every frame
};

}  // namespace seqsync

#endif  // SEQSYNC_WASM_JS_STORAGE_H_
