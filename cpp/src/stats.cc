#include "stats.h"

#include <algorithm>
#include <charconv>
#include <utility>
#include <vector>

#include "seqsync/status.h"

namespace seqsync {
namespace {

// A refusal is kept with this much of its frame: enough for the message.
constexpr std::size_t kRefusalFrameBytes = 300;
// More mutations timed at once than this means the shell lost some: start over.
constexpr std::size_t kMaxTimed = 4096;

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// The first bytes of `frame`, at most `n`, not ending inside a UTF-8 character.
std::string_view Cut(std::string_view frame, std::size_t n) {
  if (frame.size() <= n) return frame;
  while (n > 0 && (static_cast<unsigned char>(frame[n]) & 0xC0) == 0x80) --n;
  return frame.substr(0, n);
}

// The code of an error, sub-error or reject frame, or 0 for any other frame.
// frame_writer writes `"code":N` right after the type or after the quoted
// id, and a quote inside a JSON string is always escaped, so the first
// `,"code":` is the code's.
int RefusalCode(std::string_view frame) {
  std::size_t at;
  if (StartsWith(frame, "{\"t\":\"error\",\"code\":")) {
    at = sizeof("{\"t\":\"error\",\"code\":") - 1;
  } else if (StartsWith(frame, "{\"t\":\"reject\",") || StartsWith(frame, "{\"t\":\"sub-error\",")) {
    std::size_t found = frame.find(",\"code\":");
    if (found == std::string_view::npos) return 0;
    at = found + sizeof(",\"code\":") - 1;
  } else {
    return 0;
  }
  int code = 0;
  std::from_chars(frame.data() + at, frame.data() + frame.size(), code);
  return code;
}

void WriteCounts(const char* name, const char* key, const std::map<int, std::uint64_t>& counts, bool named,
                 JsonWriter* w) {
  w->Key(name);
  w->StartArray();
  for (const auto& [code, n] : counts) {
    w->StartObject();
    w->Key(key);
    w->Int(code);
    if (named) {
      w->Key("error");
      w->String(IsKnownCode(code) ? CodeName(static_cast<Code>(code)) : "UNKNOWN");
    }
    w->Key("count");
    w->Uint64(n);
    w->EndObject();
  }
  w->EndArray();
}

void WriteMs(std::int64_t ms, JsonWriter* w) {
  if (ms < 0) {
    w->Null();
  } else {
    w->Int64(ms);
  }
}

}  // namespace

void LatencyWindow::Add(std::int64_t ms) {
  samples_[next_] = std::max<std::int64_t>(ms, 0);
  next_ = (next_ + 1) % kLatencyWindow;
  count_ = std::min(count_ + 1, kLatencyWindow);
}

void LatencyWindow::Write(JsonWriter* w) const {
  std::vector<std::int64_t> sorted(samples_.begin(), samples_.begin() + static_cast<std::ptrdiff_t>(count_));
  std::sort(sorted.begin(), sorted.end());
  // The nearest-rank percentile: the smallest sample at or above p% of them.
  auto at = [&](std::size_t p) { return sorted[(sorted.size() * p + 99) / 100 - 1]; };
  w->StartObject();
  w->Key("p50");
  WriteMs(sorted.empty() ? -1 : at(50), w);
  w->Key("p99");
  WriteMs(sorted.empty() ? -1 : at(99), w);
  w->Key("samples");
  w->Uint64(count_);
  w->EndObject();
}

void Stats::CountSent(const Delivery& d, std::int64_t now_ms) {
  const std::uint64_t n = d.to.size();
  frames_ += 1;
  deliveries_ += n;
  bytes_ += n * d.frame.size();
  // Only the rare frames go further than a byte compare.
  if (StartsWith(d.frame, "{\"t\":\"ack\",")) {
    acks_ += 1;
    return;
  }
  const int code = RefusalCode(d.frame);
  if (code == 0) return;
  refusals_[code] += 1;
  if (StartsWith(d.frame, "{\"t\":\"reject\",")) rejects_ += 1;
  recent_refusals_.push_back(
      {d.to.empty() ? "" : d.to.front(), std::string(Cut(d.frame, kRefusalFrameBytes)), code, now_ms});
  if (recent_refusals_.size() > kRecent) recent_refusals_.pop_front();
}

void Stats::CountPlan(const Plan& plan, std::int64_t now_ms) {
  for (const Delivery& d : plan.deliveries) CountSent(d, now_ms);
  if (plan.close_code != 0) closes_[plan.close_code] += plan.close.empty() ? 1 : plan.close.size();
}

void Stats::Admitted(std::string key, std::int64_t now_ms) {
  if (timing_.size() >= kMaxTimed) timing_.clear();
  timing_[std::move(key)] = Timing{now_ms, -1};
}

void Stats::Committed(const std::string& key, std::int64_t now_ms) {
  auto it = timing_.find(key);
  if (it == timing_.end()) return;
  it->second.committed_ms = now_ms;
  execute_.Add(now_ms - it->second.admitted_ms);
}

void Stats::Acked(const std::string& key, std::int64_t now_ms) {
  committed_ += 1;
  auto it = timing_.find(key);
  RecentMutation m{key.substr(key.find('\x1f') + 1), "committed", now_ms, -1, -1};
  if (it != timing_.end()) {
    if (it->second.committed_ms >= 0) {
      m.execute_ms = it->second.committed_ms - it->second.admitted_ms;
      m.ack_ms = now_ms - it->second.committed_ms;
      commit_to_ack_.Add(m.ack_ms);
    }
    timing_.erase(it);
  }
  Remember(std::move(m));
}

void Stats::Dropped(const std::string& key, std::int64_t now_ms, const char* outcome) {
  auto it = timing_.find(key);
  if (it == timing_.end()) return;
  RecentMutation m{key.substr(key.find('\x1f') + 1), outcome, now_ms, -1, -1};
  if (it->second.committed_ms >= 0) m.execute_ms = it->second.committed_ms - it->second.admitted_ms;
  timing_.erase(it);
  Remember(std::move(m));
}

void Stats::Remember(RecentMutation m) {
  recent_mutations_.push_back(std::move(m));
  if (recent_mutations_.size() > kRecent) recent_mutations_.pop_front();
}

void Stats::Write(bool detail, JsonWriter* w) const {
  w->Key("mutations");
  w->StartObject();
  w->Key("committed");
  w->Uint64(committed_);
  w->Key("rejected");
  w->Uint64(rejects_);
  // Acks that no commit of this instance sent: replays answered from the
  // dedup record.
  w->Key("replayed");
  w->Uint64(acks_ > committed_ ? acks_ - committed_ : 0);
  w->EndObject();
  WriteCounts("refusals", "code", refusals_, /*named=*/true, w);
  WriteCounts("closes", "code", closes_, /*named=*/false, w);
  w->Key("latencyMs");
  w->StartObject();
  w->Key("execute");
  execute_.Write(w);
  w->Key("commitToAck");
  commit_to_ack_.Write(w);
  w->EndObject();
  w->Key("sent");
  w->StartObject();
  w->Key("frames");
  w->Uint64(frames_);
  w->Key("deliveries");
  w->Uint64(deliveries_);
  w->Key("bytes");
  w->Uint64(bytes_);
  w->EndObject();
  if (!detail) return;
  w->Key("recentMutations");
  w->StartArray();
  for (const RecentMutation& m : recent_mutations_) {
    w->StartObject();
    w->Key("id");
    WriteString(m.id, w);
    w->Key("outcome");
    w->String(m.outcome.c_str());
    w->Key("atMs");
    w->Int64(m.at_ms);
    w->Key("executeMs");
    WriteMs(m.execute_ms, w);
    w->Key("commitToAckMs");
    WriteMs(m.ack_ms, w);
    w->EndObject();
  }
  w->EndArray();
  w->Key("recentRefusals");
  w->StartArray();
  for (const RecentRefusal& r : recent_refusals_) {
    w->StartObject();
    w->Key("socket");
    WriteString(r.to, w);
    w->Key("code");
    w->Int(r.code);
    w->Key("error");
    w->String(IsKnownCode(r.code) ? CodeName(static_cast<Code>(r.code)) : "UNKNOWN");
    w->Key("frame");
    WriteString(r.frame, w);
    w->Key("atMs");
    w->Int64(r.at_ms);
    w->EndObject();
  }
  w->EndArray();
}

}  // namespace seqsync
