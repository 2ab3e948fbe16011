// ChangeLog: the DO's change log (_sync_changes) and the cursor state around
// it: the epoch, the head, the drain watermark, the retention floor and the
// marks. Internal.

#ifndef SEQSYNC_CHANGE_LOG_H_
#define SEQSYNC_CHANGE_LOG_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "seqsync/core.h"
#include "seqsync/options.h"
#include "seqsync/storage.h"

namespace seqsync {

class ChangeLog {
 public:
  // Both must outlive the log.
  ChangeLog(Storage* storage, const Options* options) : storage_(storage), options_(options) {}

  // Reads the epoch, floor, watermark, head and newest mark in one
  // statement; a storage with no epoch yet gets `fresh_epoch` (which must
  // not be empty).
  Status Load(std::string_view fresh_epoch);

  const std::string& epoch() const { return epoch_; }
  Seq floor() const { return floor_; }
  Seq drained() const { return drained_; }

  // The highest seq ever assigned (never below the floor).
  Result<Seq> Head();

  // True iff a client of `epoch` at `since` can be caught up from the log
  // up to `head` (docs/protocol.md §4.1): nothing it lacks was pruned.
  bool CanCatchUp(bool same_epoch, Seq since, Seq head) const {
    return same_epoch && since >= floor_ && since <= head;
  }

  // Every change up to `head` was sent at `now_ms`.
  void MarkDrained(Seq head, std::int64_t now_ms);

  // True iff a mark is due (then housekeeping runs), enough was appended
  // since the last compaction, or this instance has not stored the drain
  // watermark yet.
  bool HousekeepingDue(std::int64_t now_ms) const;
  // Lays a mark at the drain watermark and housekeeps when one is due, or
  // compacts when enough was appended since the last compaction, or else
  // stores the watermark if this instance has not (one statement).
  Status MaybeHousekeep(std::int64_t now_ms);

  // Compaction, retention and the dedup sweep, now.
  Status Housekeep(std::int64_t now_ms);

  Result<LogState> State();

  // When Housekeep last finished, in this instance; -1: not yet.
  std::int64_t last_housekeep_ms() const { return last_housekeep_ms_; }

 private:
  bool MarkDue(std::int64_t now_ms) const;
  Status SetMeta(const char* name, const SqlValue& value);
  Status LayMark(Seq seq, std::int64_t ts);
  Status StoreWatermark();

  Storage* storage_;
  const Options* options_;
  std::string epoch_;
  Seq drained_ = 0;
  Seq floor_ = 0;
  // When the newest mark was laid (-1: none yet), and the highest seq a mark
  // holds; both read back at Load.
  std::int64_t last_mark_ms_ = -1;
  Seq marked_ = 0;
  // When `drained_` last advanced; -1: not known in this instance (a wake).
  std::int64_t last_drain_ms_ = -1;
  // Whether this instance has stored `drained_` since Load.
  bool watermark_stored_ = true;
  std::size_t appended_since_compaction_ = 0;
  std::int64_t last_housekeep_ms_ = -1;
};

}  // namespace seqsync

#endif  // SEQSYNC_CHANGE_LOG_H_
