#include "too_big.h"

#include <algorithm>
#include <string>

namespace seqsync {

Status Classified(const Status& s) {
  if (s.code() != Code::kInternal) return s;
  const std::string& m = s.message();
  if (m.find("TOOBIG") != std::string::npos || m.find("too big") != std::string::npos ||
      m.find("too long") != std::string::npos) {
    return Status::TooLarge("the request is too large for the Durable Object's SQLite");
  }
  return s;
}

Result<std::vector<SqlRow>> ReadHalvingPage(
    std::size_t* page, const std::function<Result<std::vector<SqlRow>>(std::size_t)>& read) {
  while (true) {
    auto r = read(*page);
    if (r.ok() || *page <= 1 || r.status().message().find("too big") == std::string::npos) return r;
    *page = std::max<std::size_t>(1, *page / 2);
  }
}

}  // namespace seqsync
