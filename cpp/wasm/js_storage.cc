#include "js_storage.h"

#include "bridge_codec.h"

namespace seqsync {

using emscripten::val;

int JsStorage::StatementId(std::string_view sql) {
  std::string text(sql);
  auto it = statements_.find(text);
  if (it != statements_.end()) return it->second;
  // Statement texts are few (the core's own, one per table and predicate
  // shape); a bound keeps hostile predicate shapes from growing the table.
  if (statements_.size() >= kMaxStatements) return -1;
  const int id = bridge_.call<int>("prepare", text);
  statements_.emplace(std::move(text), id);
  return id;
}

Result<std::vector<SqlRow>> JsStorage::Exec(std::string_view sql, const std::vector<SqlValue>& params) {
  std::string encoded;
  if (!EncodeSqlParams(params, &encoded)) return Status::Internal("a SQL parameter is not valid UTF-8");
  const int id = StatementId(sql);
  std::string result = id >= 0 ? bridge_.call<std::string>("exec", id, encoded)
                               : bridge_.call<std::string>("execText", val(std::string(sql)), encoded);
  return DecodeSqlResult(result);
}

bool JsStorage::Send(const std::vector<std::string>& to, std::string_view frame) {
  std::string ids;
  for (const std::string& id : to) {
    if (!ids.empty()) ids.push_back('\n');
    ids += id;
  }
  bridge_.call<void>("send", ids, std::string(frame));
  return true;
}

}  // namespace seqsync
