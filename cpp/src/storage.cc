#include "seqsync/storage.h"

#include <cstdlib>

namespace seqsync {

std::int64_t SqlValue::AsInteger() const {
  switch (kind) {
    case Kind::kInteger: return integer;
    case Kind::kReal: return static_cast<std::int64_t>(real);
    case Kind::kText: return std::strtoll(text.c_str(), nullptr, 10);
    case Kind::kNull: return 0;
  }
  return 0;
}

}  // namespace seqsync
