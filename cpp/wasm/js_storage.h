// JsStorage: Storage over the shell's SQL bridge, a JS object whose
// exec(sql, params) runs one statement on the DO's ctx.storage.sql and
// returns {rows: [[…]…]} or {error: "…"}, and whose send(to, frame) sends
// a frame at once (neither throws: a JS exception unwinding through C++
// frames would leak their handles).

#ifndef SEQSYNC_WASM_JS_STORAGE_H_
#define SEQSYNC_WASM_JS_STORAGE_H_

#include <emscripten/val.h>

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
  emscripten::val bridge_;
};

}  // namespace seqsync

#endif  // SEQSYNC_WASM_JS_STORAGE_H_
