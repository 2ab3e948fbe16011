// JsStorage: Storage over the shell's SQL bridge (worker/src/do/core.ts), a
// JS object whose prepare(sql) names a statement text once, exec(id, params)
// runs it on the DO's ctx.storage.sql (params and result in the text format
// of bridge_codec.h, one crossing each way), and send(to, frame) sends a
// frame at once. None of them throws: a JS exception unwinding through C++
// frames would leak their handles.

#ifndef SEQSYNC_WASM_JS_STORAGE_H_
#define SEQSYNC_WASM_JS_STORAGE_H_

#include <emscripten/val.h>

#include <string>
#include <unordered_map>

#include "seqsync/storage.h"

namespace seqsync {

class JsStorage : public Storage {
 public:
  explicit JsStorage(emscripten::val bridge) : bridge_(std::move(bridge)) {}

  Result<std::vector<SqlRow>> Exec(std::string_view sql,
                                   const std::vector<SqlValue>& params) override;

  // Calls bridge.send(ids one per line, frame).
  bool Send(const std::vector<std::string>& to, std::string_view frame) override;

 private:
  static constexpr std::size_t kMaxStatements = 256;
  // The bridge's id for `sql`, named on first use; -1 once the table is full.
  int StatementId(std::string_view sql);

  emscripten::val bridge_;
  std::unordered_map<std::string, int> statements_;
};

}  // namespace seqsync

#endif  // SEQSYNC_WASM_JS_STORAGE_H_
