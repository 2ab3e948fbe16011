#include "js_storage.h"

#include <emscripten/emscripten.h>

#include "bridge_codec.h"

// The bridge's functions, imported from the shell's object. Addresses and
// lengths are bytes in the heap; the JS side reads them as views of it.
EM_JS(int, seqsync_bridge_prepare, (const char* sql, int sql_len),
      { return Module["seqsyncBridge"].prepare(sql, sql_len); });
// Runs a statement; returns the byte length of its result, which the next
// seqsync_bridge_take copies to `into`.
EM_JS(int, seqsync_bridge_exec, (int statement, const char* params, int params_len),
      { return Module["seqsyncBridge"].exec(statement, params, params_len); });
EM_JS(int, seqsync_bridge_exec_text, (const char* sql, int sql_len, const char* params, int params_len),
      { return Module["seqsyncBridge"].execText(sql, sql_len, params, params_len); });
EM_JS(void, seqsync_bridge_take, (char* into), { Module["seqsyncBridge"].take(into); });
EM_JS(void, seqsync_bridge_send, (const char* to, int to_len, const char* frame, int frame_len),
      { Module["seqsyncBridge"].send(to, to_len, frame, frame_len); });

namespace seqsync {

int JsStorage::StatementId(std::string_view sql) {
  std::string text(sql);
  auto it = statements_.find(text);
  if (it != statements_.end()) return it->second;
  // Statement texts are few (the core's own, one per table and predicate
  // shape); a bound keeps hostile predicate shapes from growing the table.
  if (statements_.size() >= kMaxStatements) return -1;
  const int id = seqsync_bridge_prepare(text.data(), static_cast<int>(text.size()));
  statements_.emplace(std::move(text), id);
  return id;
}

Result<std::vector<SqlRow>> JsStorage::Exec(std::string_view sql, const std::vector<SqlValue>& params) {
  std::string encoded;
  if (!EncodeSqlParams(params, &encoded)) return Status::Internal("a SQL parameter is not valid UTF-8");
  const int id = StatementId(sql);
  const int params_len = static_cast<int>(encoded.size());
  const int bytes = id >= 0 ? seqsync_bridge_exec(id, encoded.data(), params_len)
                            : seqsync_bridge_exec_text(sql.data(), static_cast<int>(sql.size()), encoded.data(),
                                                       params_len);
  std::string result(static_cast<std::size_t>(bytes), '\0');
  seqsync_bridge_take(result.data());
  return DecodeSqlResult(result);
}

bool JsStorage::Send(const std::vector<std::string>& to, std::string_view frame) {
  ids_.clear();
  for (const std::string& id : to) {
    if (!ids_.empty()) ids_.push_back('\n');
    ids_ += id;
  }
  seqsync_bridge_send(ids_.data(), static_cast<int>(ids_.size()), frame.data(), static_cast<int>(frame.size()));
  return true;
}

}  // namespace seqsync
