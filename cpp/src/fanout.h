// Fanout: what leaves the core. Changes and snapshots are read from SQLite in
// pages, encoded once per group of sockets that hold the same subscriptions,
// and added to the plan, which is handed to the shell early once it is
// large. Also the small helpers every handler answers with. Internal.

#ifndef SEQSYNC_FANOUT_H_
#define SEQSYNC_FANOUT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "change_log.h"
#include "schema.h"
#include "seqsync/core.h"
#include "seqsync/options.h"
#include "seqsync/storage.h"
#include "sockets.h"

namespace seqsync {

// Adds `frame` for `socket` to `plan`.
void Reply(Plan* plan, std::string_view socket, std::string frame);
// Adds an error, sub-error or reject frame for `socket` to `plan`.
void ReplyError(Plan* plan, std::string_view socket, const Status& why);
void ReplySubError(Plan* plan, std::string_view socket, std::string_view sub, const Status& why);
void ReplyReject(Plan* plan, std::string_view socket, std::string_view mutation_id, const Status& why);
// A plan of one error frame for `socket`.
Plan ErrorPlan(std::string_view socket, const Status& why);

// Sockets that hold the same subscriptions, so their frames are encoded once.
struct Group {
  std::vector<std::string> sockets;
  const std::vector<Subscription>* subs;
  bool compact = false;  // its changes frames take the compact form (Socket::compact_changes)
};

// The first page of a drain, read ahead by the statement that committed a
// mutation (inside its transaction, so it holds what the drain right after
// would read).
struct ReadAhead {
  Seq after = 0;        // the drain watermark it was read from
  std::string tables;   // the tables whose rows it holds
  std::string text;     // the page, as ReadPage reads it
  bool fresh_schema = false;  // the fingerprint matched: its rows have every column
};

class Fanout {
 public:
  // All must outlive the fanout. `options` is not const: a page SQLite finds
  // too big shrinks options->read_page_rows for every later read.
  Fanout(Storage* storage, Options* options, Schema* schema, ChangeLog* log)
      : storage_(storage), options_(options), schema_(schema), log_(log) {}

  // Groups the sockets that said hello by their subscription set (the common
  // case: every socket of a room holds the same).
  std::vector<Group> GroupSockets(const SocketMap& sockets) const;

  // Sends every socket the changes committed since the last drain (the
  // caller housekeeps, once the frames left: Core::Impl::Charged).
  // `known_head`: the head if the caller knows it (a
  // mutation that just committed), which saves reading it again. Either way
  // the columns are fresh afterwards (ADD COLUMN flows), which the snapshots
  // that callers send next rely on.
  // `ahead`: the first page, if a mutation's statement read it ahead (its
  // text is taken, not copied).
  Status Drain(const SocketMap& sockets, std::int64_t now_ms, Plan* plan, Seq known_head = 0,
               ReadAhead* ahead = nullptr);

  // The expressions (and their params, numbered from ?first_param) that read
  // a drain's first page ahead in another statement's RETURNING clause, and
  // what `ahead` must record of it; false iff no one subscribes.
  bool ReadAheadSql(const SocketMap& sockets, int first_param, std::string* returning, std::vector<SqlValue>* params,
                    ReadAhead* ahead);

  // Adds to `plan` the changes in (after, upto] for the subscriptions of
  // each group, page by page as they are read. Frames carry `unit_seq` if
  // non-zero, else each page's last seq, and end a unit per page iff
  // `end_units`.
  Status CollectChanges(Seq after, Seq upto, Seq unit_seq, bool end_units, const std::vector<Group>& groups,
                        Plan* plan, ReadAhead* ahead = nullptr);

  // Adds to `plan` the snapshot of `sub` at `seq` for `to`, as frames added
  // as they are read; the last ends the unit iff `ends_unit`. On failure
  // some frames may have left: see Unsend.
  Status Snapshot(const Subscription& sub, Seq seq, bool ends_unit, const std::vector<std::string>& to,
                  Plan* plan);

  // Hands the plan's frames to the shell once they hold kPlanFlushBytes
  // (Flush: whatever they hold), telling `on_flushed` of each (the unread
  // counts, unread.h). Frames stay in the plan if the storage cannot send.
  void MaybeFlush(Plan* plan);
  void Flush(Plan* plan);
  std::function<void(const Delivery&)> on_flushed;
  // Where the next delivery of `plan` will stand, counting flushed ones.
  std::uint64_t Mark(const Plan& plan) const { return flushed_ + plan.deliveries.size(); }
  // Drops the deliveries added since `mark`; false iff some already left.
  bool Unsend(Plan* plan, std::uint64_t mark);

 private:
  // One entry of a page of the log, with its key's row as it is now (JSON
  // text; empty: deleted, or a table no one subscribes to). Views into the
  // Page that holds it.
  struct PageEntry {
    Seq seq;
    std::string_view table;
    std::string_view key;
    std::string_view row;
    // The table and key as the page quoted them, if that is how JsonQuote
    // writes them too (plain ASCII); else empty.
    std::string_view table_json;
    std::string_view key_json;
  };
  // A page as SQLite wrote it (PageSelect) and its entries.
  struct Page {
    std::string text;
    std::deque<std::string> unescaped;  // a table or key whose JSON string had escapes
    std::vector<PageEntry> entries;
  };
  // Reads the entries in (after, upto], a page at most, with the rows of
  // `tables`, in one statement. With `check_schema`, the same statement
  // checks the schema fingerprint, and the page is read again with fresh
  // columns if it changed (ADD COLUMN flows).
  Status ReadPage(Seq after, Seq upto, bool check_schema, const std::set<std::string>& tables, Page* page);
  // Splits page->text into page->entries.
  static Status ParsePage(Page* page);
  // A page of the log with the rows of `tables`, as a scalar subquery whose
  // params are ?first_param (after), the next (upto) and the next (limit).
  // Its text is the entries joined by RS (0x1e), each its seq, table, key
  // and row joined by US (0x1f): the table and key as JSON strings, the row
  // as JSON text, so neither separator can occur inside a field.
  // Built once per schema generation.
  const std::string& PageSelect(const std::set<std::string>& tables, int first_param);

  Storage* storage_;
  Options* options_;
  Schema* schema_;
  ChangeLog* log_;
  // Deliveries handed to the shell early by MaybeFlush, in all; a plan
  // index i stands for the (flushed_ + i)-th delivery of the current call.
  std::uint64_t flushed_ = 0;
  unsigned page_sql_generation_ = 0;
  std::map<std::string, std::string> page_sql_;  // by check flag and tables
};

}  // namespace seqsync

#endif  // SEQSYNC_FANOUT_H_
