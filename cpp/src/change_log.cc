// The change log: how one number, the seq, stays enough to resume a client.
//
// Invariant: a client in this epoch at `since` can be caught up iff
// floor <= since <= head, and then the entries in (since, head] name every
// key that changed since. It holds because:
//
//  * Seqs come from SQLite's AUTOINCREMENT inside the writing transaction,
//    so they are assigned in commit order and never reused; a rolled-back
//    write leaves no entry.
//  * Compaction deletes an entry only when a later one names the same key.
//    Rows are read when they are sent, so the latest entry of a key carries
//    its latest state, which is all a state-convergence client needs. The
//    head entry is the latest of its key, so compaction never lowers the
//    head.
//  * Retention deletes the entries up to a cut and raises the floor to it in
//    the same housekeeping run: any client below the floor is refused the
//    catch-up (and gets a snapshot) rather than silently missing them. The
//    cut comes from a mark ("at time T every entry up to S existed") older
//    than the retention window, and never passes the drain watermark, so an
//    entry is never pruned before it reached the live sockets.
//
// The drain watermark is persisted by housekeeping and at an instance's first
// drain only: after a wake a stale watermark re-sends the changes drained
// since, which clients apply idempotently.

#include "change_log.h"

#include <algorithm>

#include "json_util.h"

namespace seqsync {

Status ChangeLog::Load(std::string_view fresh_epoch) {
  // What a wake needs of the cursor state, in one read.
  auto state = storage_->Exec(
      "SELECT (SELECT value FROM _sync_meta WHERE name='epoch'), (SELECT value FROM _sync_meta WHERE name='floor'),"
      " (SELECT value FROM _sync_meta WHERE name='drained'), (SELECT COALESCE(MAX(seq),0) FROM _sync_changes),"
      " (SELECT MAX(seq) FROM _sync_marks), (SELECT MAX(ts) FROM _sync_marks)",
      {});
  if (!state.ok()) return state.status();
  if (state->size() != 1 || (*state)[0].size() != 6) return Status::Internal("unexpected cursor state shape");
  const SqlValue& epoch = (*state)[0][0];
  const SqlValue& drained = (*state)[0][2];
  if (epoch.kind != SqlValue::Kind::kText || epoch.text.empty()) {
    if (fresh_epoch.empty()) return Status::InvalidField("fresh_epoch must not be empty");
    epoch_.assign(fresh_epoch);
    SEQSYNC_RETURN_IF_ERROR(SetMeta("epoch", SqlValue::Text(epoch_)));
  } else {
    epoch_ = epoch.text;
  }
  floor_ = static_cast<Seq>((*state)[0][1].AsInteger());
  Seq head = std::max(static_cast<Seq>((*state)[0][3].AsInteger()), floor_);
  if (head > kMaxSeq) return Status::Internal("seq space exhausted (2^53)");
  // A fresh DO has sent nothing; anything past the stored watermark was
  // committed but maybe not sent before an eviction, and goes out next drain.
  drained_ = drained.is_null() ? head : std::min<Seq>(static_cast<Seq>(drained.AsInteger()), head);
  if (drained.is_null()) {
    SEQSYNC_RETURN_IF_ERROR(SetMeta("drained", SqlValue::Integer(static_cast<std::int64_t>(head))));
  }
  // The mark clock survives a wake, so a DO that wakes often does not lay a
  // mark and compact the whole log at each wake's first write.
  const SqlValue& last_mark_seq = (*state)[0][4];
  const SqlValue& last_mark_ts = (*state)[0][5];
  if (!last_mark_ts.is_null()) {
    marked_ = static_cast<Seq>(last_mark_seq.AsInteger());
    last_mark_ms_ = last_mark_ts.AsInteger();
  }
  watermark_stored_ = false;
  return Status::Ok();
}

Result<Seq> ChangeLog::Head() {
  auto r = storage_->Exec("SELECT COALESCE(MAX(seq),0) FROM _sync_changes", {});
  if (!r.ok()) return r.status();
  // Retention may have pruned every entry: the floor still says how far
  // seqs went.
  Seq head = std::max(static_cast<Seq>((*r)[0][0].AsInteger()), floor_);
  if (head > kMaxSeq) return Status::Internal("seq space exhausted (2^53)");
  return head;
}

Status ChangeLog::SetMeta(const char* name, const SqlValue& value) {
  auto r = storage_->Exec(
      "INSERT INTO _sync_meta(name,value) VALUES(?1,?2) "
      "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
      {SqlValue::Text(name), value});
  return r.ok() ? Status::Ok() : r.status();
}

Status ChangeLog::LayMark(Seq seq, std::int64_t ts) {
  auto r = storage_->Exec("INSERT OR REPLACE INTO _sync_marks(seq,ts) VALUES(?1,?2)",
                          {SqlValue::Integer(static_cast<std::int64_t>(seq)), SqlValue::Integer(ts)});
  return r.ok() ? Status::Ok() : r.status();
}

void ChangeLog::MarkDrained(Seq head, std::int64_t now_ms) {
  appended_since_compaction_ += static_cast<std::size_t>(head - drained_);
  drained_ = head;
  last_drain_ms_ = now_ms;
}

bool ChangeLog::MarkDue(std::int64_t now_ms) const {
  // Marks are the retention clock's resolution: at most every retention/64,
  // capped at a minute, so the marks table stays small.
  const std::int64_t interval = std::clamp<std::int64_t>(options_->retention_ms / 64, 0, 60000);
  // A clock behind the newest mark (one read back after a wake) lays one too.
  return last_mark_ms_ < 0 || now_ms < last_mark_ms_ || now_ms - last_mark_ms_ >= interval;
}

bool ChangeLog::HousekeepingDue(std::int64_t now_ms) const {
  return MarkDue(now_ms) || appended_since_compaction_ >= options_->compact_every || !watermark_stored_;
}

Status ChangeLog::MaybeHousekeep(std::int64_t now_ms) {
  if (MarkDue(now_ms)) {
    SEQSYNC_RETURN_IF_ERROR(LayMark(drained_, now_ms));
    last_mark_ms_ = now_ms;
    marked_ = std::max(marked_, drained_);
    return Housekeep(now_ms);
  }
  if (appended_since_compaction_ >= options_->compact_every) return Housekeep(now_ms);
  if (!watermark_stored_) return StoreWatermark();
  return Status::Ok();
}

Status ChangeLog::StoreWatermark() {
  SEQSYNC_RETURN_IF_ERROR(SetMeta("drained", SqlValue::Integer(static_cast<std::int64_t>(drained_))));
  watermark_stored_ = true;
  return Status::Ok();
}

Status ChangeLog::Housekeep(std::int64_t now_ms) {
  SEQSYNC_RETURN_IF_ERROR(StoreWatermark());
  // Marks are laid at most once an interval, so a burst that ends inside
  // one is covered by no mark, and would never be pruned until a later
  // write laid one. The last drain is a mark too: every entry up to
  // `drained_` had committed by `last_drain_ms_`.
  if (last_drain_ms_ >= 0 && drained_ > marked_) {
    SEQSYNC_RETURN_IF_ERROR(LayMark(drained_, last_drain_ms_));
    marked_ = drained_;
  }
  // Compaction: keep each key's latest entry.
  auto compact = storage_->Exec(
      "DELETE FROM _sync_changes WHERE seq NOT IN "
      "(SELECT MAX(seq) FROM _sync_changes GROUP BY tbl, key)", {});
  if (!compact.ok()) return compact.status();
  appended_since_compaction_ = 0;
  // Retention: the newest mark older than the window gives the cut.
  std::int64_t cutoff = now_ms - options_->retention_ms;
  auto cut = storage_->Exec("SELECT COALESCE(MAX(seq),0) FROM _sync_marks WHERE ts < ?1",
                            {SqlValue::Integer(cutoff)});
  if (!cut.ok()) return cut.status();
  Seq cut_seq = static_cast<Seq>((*cut)[0][0].AsInteger());
  if (cut_seq > floor_) {
    // Defensive: never prune past what was sent; undrained entries must
    // still reach live sockets.
    cut_seq = std::min(cut_seq, drained_);
    if (cut_seq > floor_) {
      auto del = storage_->Exec("DELETE FROM _sync_changes WHERE seq <= ?1",
                                {SqlValue::Integer(static_cast<std::int64_t>(cut_seq))});
      if (!del.ok()) return del.status();
      floor_ = cut_seq;
      SEQSYNC_RETURN_IF_ERROR(SetMeta("floor", SqlValue::Integer(static_cast<std::int64_t>(floor_))));
    }
  }
  auto marks = storage_->Exec("DELETE FROM _sync_marks WHERE seq < ?1",
                              {SqlValue::Integer(static_cast<std::int64_t>(floor_))});
  if (!marks.ok()) return marks.status();
  // Mutation outcomes age out on their own clock (exactly-once replays
  // only need them while a client may still replay).
  auto dedup = storage_->Exec("DELETE FROM _sync_mutations WHERE ts < ?1",
                              {SqlValue::Integer(now_ms - options_->dedup_retention_ms)});
  if (!dedup.ok()) return dedup.status();
  last_housekeep_ms_ = now_ms;
  return Status::Ok();
}

Result<LogState> ChangeLog::State() {
  LogState s;
  SEQSYNC_ASSIGN_OR_RETURN(s.head, Head());
  s.floor = floor_;
  auto rows = storage_->Exec("SELECT COUNT(*) FROM _sync_changes", {});
  if (!rows.ok()) return rows.status();
  s.rows = (*rows)[0][0].AsInteger();
  return s;
}

}  // namespace seqsync
