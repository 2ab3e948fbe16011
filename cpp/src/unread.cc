#include "unread.h"

#include <algorithm>

#include "seqsync/close_codes.h"

namespace seqsync {

void Unread::ChargeFlushed(const Delivery& delivery) {
  for (const std::string& id : delivery.to) {
    Socket* sock = sockets_->Find(id);
    if (sock == nullptr) continue;
    if (sock->flushed_bytes == 0) flushed_.push_back(id);
    sock->flushed_bytes += delivery.frame.size();
  }
}

void Unread::ChargePlan(std::uint64_t limit, Plan* plan) {
  // Judged first, on the counts before this call; charged after.
  std::vector<std::string> slow;
  auto judge = [&](const std::string& id) {
    Socket* sock = sockets_->Find(id);
    if (sock == nullptr || sock->unread_bytes <= limit) return;
    if (std::find(slow.begin(), slow.end(), id) == slow.end()) slow.push_back(id);
  };
  for (const std::string& id : flushed_) judge(id);
  for (const Delivery& d : plan->deliveries) {
    for (const std::string& id : d.to) judge(id);
  }
  for (const std::string& id : flushed_) {
    if (Socket* sock = sockets_->Find(id)) {
      sock->unread_bytes += sock->flushed_bytes;
      sock->flushed_bytes = 0;
    }
  }
  flushed_.clear();
  for (const Delivery& d : plan->deliveries) {
    for (const std::string& id : d.to) {
      if (Socket* sock = sockets_->Find(id)) sock->unread_bytes += d.frame.size();
    }
  }
  if (slow.empty() || plan->close_code != 0) return;
  plan->close_code = kCloseSlowReader;
  plan->close_reason = "too much unread data (maxUnreadBytesPerSocket); reconnect to resume";
  plan->close = std::move(slow);
}

void Unread::CreditRead(Socket* sock, std::uint64_t bytes) {
  sock->unread_bytes -= std::min(bytes, sock->unread_bytes);
}

}  // namespace seqsync
