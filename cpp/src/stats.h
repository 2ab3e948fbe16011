// Stats: what the core counts for syncStats() and the inspector. Internal.
//
// Counting is a few integer adds on paths the core already walks: every
// frame leaves through Core::Impl::Charged or the fanout's early flush, and
// both hand it here, where its first bytes (written by frame_writer, so
// their shape is known) tell a refusal from the rest. Nothing here runs SQL:
// the sizes that need it (the log, the tables) are read by Core::StatsJson
// only when asked. In memory only: a wake starts every counter at zero.

#ifndef SEQSYNC_STATS_H_
#define SEQSYNC_STATS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>

#include "json_util.h"
#include "seqsync/core.h"

namespace seqsync {

// The last kLatencyWindow samples of one latency, in ms.
class LatencyWindow {
 public:
  static constexpr std::size_t kLatencyWindow = 512;
  void Add(std::int64_t ms);
  // {"p50":…,"p99":…,"samples":n}; p50 and p99 are null with no sample.
  void Write(JsonWriter* w) const;

 private:
  std::array<std::int64_t, kLatencyWindow> samples_{};
  std::size_t next_ = 0;
  std::size_t count_ = 0;
};

class Stats {
 public:
  // How many recent mutations and refusals are kept for the inspector.
  static constexpr std::size_t kRecent = 32;

  // A frame handed to the shell (its first bytes are read, nothing more).
  void CountSent(const Delivery& d, std::int64_t now_ms);
  // Every frame and the close of a plan.
  void CountPlan(const Plan& plan, std::int64_t now_ms);

  // Mutation `key` (scope and id) was handed to the shell to run at `now_ms`.
  void Admitted(std::string key, std::int64_t now_ms);
  // Its transaction is recording its outcome: authorize and execute took
  // the time since Admitted.
  void Committed(const std::string& key, std::int64_t now_ms);
  // Its ack left: the time since Committed is commit → ack.
  void Acked(const std::string& key, std::int64_t now_ms);
  // It ended without an ack (`outcome`: the error name of its rejection,
  // say): nothing more is timed.
  void Dropped(const std::string& key, std::int64_t now_ms, const char* outcome);

  // The counters as members of the object `w` is inside; with `detail`,
  // also the recent mutations and refusals.
  void Write(bool detail, JsonWriter* w) const;

 private:
  struct Timing {
    std::int64_t admitted_ms = 0;
    std::int64_t committed_ms = -1;
  };
  struct RecentMutation {
    std::string id;
    std::string outcome;  // "committed", or the refusal's error name
    std::int64_t at_ms = 0;
    std::int64_t execute_ms = -1;  // -1: not timed
    std::int64_t ack_ms = -1;
  };
  struct RecentRefusal {
    std::string to;     // the first socket it went to
    std::string frame;  // cut to kRefusalFrameBytes
    int code = 0;
    std::int64_t at_ms = 0;
  };
  void Remember(RecentMutation m);

  std::uint64_t frames_ = 0;      // frames handed to the shell
  std::uint64_t deliveries_ = 0;  // frames times their recipients
  std::uint64_t bytes_ = 0;       // bytes times their recipients
  std::uint64_t acks_ = 0;        // ack frames (committed, and replays answered from the record)
  std::uint64_t committed_ = 0;
  std::uint64_t rejects_ = 0;     // reject frames
  std::map<int, std::uint64_t> refusals_;  // error, sub-error and reject frames, by code
  std::map<int, std::uint64_t> closes_;    // sockets closed, by close code
  LatencyWindow execute_;
  LatencyWindow commit_to_ack_;
  // By dedup key; bounded by the writes in flight (the shell finishes or
  // rejects every mutation it runs), and cleared past kMaxTimed anyway.
  std::map<std::string, Timing, std::less<>> timing_;
  std::deque<RecentMutation> recent_mutations_;
  std::deque<RecentRefusal> recent_refusals_;
};

}  // namespace seqsync

#endif  // SEQSYNC_STATS_H_
