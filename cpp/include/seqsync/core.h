// Start here. Core is seqsync's sync engine: one instance per Durable Object.
//
// The shell (worker/src/do/) owns the Cloudflare APIs and the user's
// callbacks; the core owns every protocol decision. The shell hands the core
// whole inbound frames and gets back a Plan: frames to send and to whom, and
// at most one mutation for the shell to authorize and execute. All reads and
// writes go through the Storage given to Open.
//
// Threading: single-threaded and not reentrant, like the DO that hosts it.
// Nothing in memory is trusted across hibernation: after a wake the shell
// opens a new Core (Core::Open), which rebuilds its state from SQLite. A
// Core exists only registered and restored: there is no half-built one.

#ifndef SEQSYNC_CORE_H_
#define SEQSYNC_CORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "seqsync/limits.h"
#include "seqsync/options.h"
#include "seqsync/result.h"
#include "seqsync/status.h"
#include "seqsync/storage.h"

namespace seqsync {

// One frame, encoded once, for one or more sockets.
struct Delivery {
  std::vector<std::string> to;  // socket ids
  std::string frame;            // JSON text
};

// A write the shell must authorize and execute (docs/protocol.md §4.4, §4.5).
struct PendingMutation {
  std::string id;        // the client's mutation id
  std::string ops_json;  // normalised ops: [{"c","op","k","cols"?}], or "[]" for a call
  std::string command;   // non-empty iff this is a `call`
  std::string args_json; // the call's args as JSON ("null" if absent)
};

// A presence set the core admitted, for the shell's hook to judge
// (docs/protocol.md §4.7), then Core::CommitPresence or RefusePresence.
struct PendingPresence {
  std::string tab;
  std::string state_json;
};

// What the shell must do after a Core call.
struct Plan {
  std::vector<Delivery> deliveries;
  std::optional<PendingMutation> mutation;
  std::optional<PendingPresence> presence;
  // Set iff the sending socket's presence changed: the text its hibernation
  // attachment must keep from now on, for RestorePresence after a wake.
  std::optional<std::string> keep_presence;
  // Set by RejectMutation when the mutation had committed before: its
  // stored ack answered the refusal, so the shell does not log it as one.
  bool replayed = false;
  // Non-zero: after the deliveries, close with this code the sockets in
  // `close`, or the sending socket if `close` is empty.
  int close_code = 0;
  std::string close_reason;
  std::vector<std::string> close;
};

// Head state, for the shell's logs and tests.
struct LogState {
  Seq head = 0;    // highest seq ever assigned
  Seq floor = 0;   // highest seq pruned by retention; catch-up needs since >= floor
  std::int64_t rows = 0;  // entries in the change log
};

class Core {
 public:
  // Opens the core of one Durable Object over `storage`, which must outlive
  // it. In order, it:
  //  * creates seqsync's own tables, validates every registered collection,
  //    installs its change-capture triggers (and removes those of tables no
  //    longer registered), and loads the log's state. Idempotent across
  //    wakes and deploys, and a read when nothing changed.
  //    `registration_json`: {"collections":[{"table","pk","ops":["insert",…]}],
  //                          "commands":["name",…]}.
  //    `fresh_epoch`: a random id, used only if this storage has no epoch yet.
  //  * restores the subscriptions of `live_socket_ids` (the sockets still
  //    open after a wake) and forgets every other socket's. A stored
  //    subscription that no longer fits the registration (its collection or
  //    a column went away in a deploy) is forgotten, and its socket is told
  //    with a `sub-error` added to `refusals` (if not null), for the shell
  //    to send.
  // Errors: the registration's (kSchema, kInvalidField, …) or the storage's.
  static Result<std::unique_ptr<Core>> Open(Storage* storage, Options options, std::string_view registration_json,
                                            std::string_view fresh_epoch,
                                            const std::vector<std::string>& live_socket_ids, Plan* refusals);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  // Handles one inbound frame from `socket_id`. `scope` is the identity that
  // scopes mutation ids (derived from the socket's claims by the shell).
  Plan OnMessage(std::string_view socket_id, std::string_view scope,
                 std::string_view frame, std::int64_t now_ms);

  // Call inside the mutation's transaction, after the user's execute ran:
  // records the outcome so a replay never applies twice. Returns the seq the
  // client must reach (the head after the writes).
  Result<Seq> CommitMutation(std::string_view scope, std::string_view mutation_id,
                             std::string_view result_json, std::int64_t now_ms);

  // Call after the transaction committed: sends the new changes to every
  // subscribed socket, then the ack to the sender and to any duplicate
  // waiting on the same id.
  Plan FinishMutation(std::string_view scope, std::string_view mutation_id,
                      std::int64_t now_ms);

  // Call when authorize or execute failed (the transaction rolled back):
  // records and sends the rejection.
  Plan RejectMutation(std::string_view scope, std::string_view mutation_id,
                      const Status& why, std::int64_t now_ms);

  // Sends every change committed since the last drain (for writes made
  // outside a mutation, e.g. runSyncedWrite), and runs housekeeping when due.
  Plan Drain(std::int64_t now_ms);

  // Forgets a closed socket, its subscriptions, in-flight waits and
  // presence; returns the removal of its presence for the watching sockets.
  Plan OnClose(std::string_view socket_id);

  // The shell's hook accepted the presence set of `socket_id` that the last
  // OnMessage returned: applies it under `user` (named by the shell from the
  // socket's claims, never by the client) and sends it to every watcher.
  Plan CommitPresence(std::string_view socket_id, std::string_view user);

  // The hook refused that set: drops it and tells the socket why.
  Plan RefusePresence(std::string_view socket_id, const Status& why);

  // After a wake (right after Open): the presence of a live socket, as the
  // keep_presence its attachment kept.
  Status RestorePresence(std::string_view socket_id, std::string_view stored);

  // A read of snapshots that holds nothing (docs/protocol.md §5.9): for a
  // server render. `request` is a hello frame; its `subs` are judged as a
  // socket's hello judges them (the list whole, then each entry: ReadSub,
  // windows resolved), and each is answered as a hello answers it, with a
  // snapshot (never a catch-up) or a sub-error, then `synced` at the head the
  // snapshots were read at. Every frame is for `reader`, which names no
  // socket: no subscription is held and nothing is written.
  Plan ReadSnapshot(std::string_view reader, std::string_view request);

  // Compaction and retention, now. Normally run by Drain when due.
  Status Housekeep(std::int64_t now_ms);

  Result<LogState> State();

  // The object's stats as a JSON object (README "Stats"): head, floor, the
  // log's rows and bytes, each table's rows, sockets and subscriptions by
  // collection, writes in flight, mutation outcomes, refusals and closes by
  // code, mutation latency (p50/p99 of the last 512), frames and bytes
  // sent. With `detail`, also each socket's subscriptions, the recent
  // changes, mutations and refusals (the inspector). The counters are kept
  // as frames leave; the sizes are read from SQLite now (3 statements, 4
  // with `detail`), never on a write. The counters start at zero with each Open.
  Result<std::string> StatsJson(bool detail);

  const std::string& epoch() const;
  const Options& options() const;

 private:
  Core(Storage* storage, Options options);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "seqsync-core 0.1.0 (protocol 1)".
const char* Version();

// The effective limits as a JSON object, for the shell's startup log and the
// `welcome` frame.
std::string LimitsJson(const Options& options);

}  // namespace seqsync

#endif  // SEQSYNC_CORE_H_
