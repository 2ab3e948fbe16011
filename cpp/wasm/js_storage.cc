#include "js_storage.h"

#include <cmath>

namespace seqsync {

using emscripten::val;

Result<std::vector<SqlRow>> JsStorage::Exec(std::string_view sql,
                                            const std::vector<SqlValue>& params) {
  val args = val::array();
  for (const SqlValue& p : params) {
    switch (p.kind) {
      case SqlValue::Kind::kNull: args.call<void>("push", val::null()); break;
      case SqlValue::Kind::kInteger: args.call<void>("push", static_cast<double>(p.integer)); break;
      case SqlValue::Kind::kReal: args.call<void>("push", p.real); break;
      case SqlValue::Kind::kText: args.call<void>("push", val(p.text)); break;
    }
  }
  val out = bridge_.call<val>("exec", val(std::string(sql)), args);
  val error = out["error"];
  if (!error.isUndefined() && !error.isNull()) return Status::Internal(error.as<std::string>());
  val rows = out["rows"];
  std::vector<SqlRow> result;
  const unsigned n = rows["length"].as<unsigned>();
  result.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    val row = rows[i];
    const unsigned m = row["length"].as<unsigned>();
    SqlRow r;
    r.reserve(m);
    for (unsigned j = 0; j < m; ++j) {
      val cell = row[j];
      std::string type = cell.typeOf().as<std::string>();
      if (type == "number") {
        double d = cell.as<double>();
        if (std::trunc(d) == d && std::fabs(d) < 9007199254740992.0) {
          r.push_back(SqlValue::Integer(static_cast<std::int64_t>(d)));
        } else {
          r.push_back(SqlValue::Real(d));
        }
      } else if (type == "string") {
        r.push_back(SqlValue::Text(cell.as<std::string>()));
      } else {
        r.push_back(SqlValue::Null());
      }
    }
    result.push_back(std::move(r));
  }
  return result;
}

bool JsStorage::Send(const std::vector<std::string>& to, std::string_view frame) {
  std::string ids;
  for (const std::string& id : to) {
    if (!ids.empty()) ids.push_back('\n');
    ids += id;
  }
  bridge_.call<void>("send", val(ids), val(std::string(frame)));
  return true;
}

}  // namespace seqsync
