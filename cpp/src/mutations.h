// Mutations: the writes in flight, their dedup records and their outcomes
// (docs/protocol.md §4.4, §4.5). Internal.

#ifndef SEQSYNC_MUTATIONS_H_
#define SEQSYNC_MUTATIONS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "change_log.h"
#include "json_util.h"
#include "schema.h"
#include "seqsync/core.h"
#include "seqsync/options.h"
#include "seqsync/storage.h"

namespace seqsync {

class Mutations {
 public:
  // All must outlive this.
  Mutations(Storage* storage, const Options* options, Schema* schema, ChangeLog* log)
      : storage_(storage), options_(options), schema_(schema), log_(log) {}

  // Admits mutation `id` (a mut or a call `frame` from `socket`, after its
  // hello): a plan with the mutation for the shell to run, or the answer
  // when it must not run (a duplicate, a refusal).
  Plan Admit(std::string_view socket, std::string_view scope, const std::string& id, const JsonValue& frame,
             bool is_call);

  // Records the outcome of mutation `id` inside its transaction, after its
  // writes. Returns the head they brought the log to: the seq of its ack.
  // `also`: more RETURNING expressions for the same statement (their params
  // numbered from ?7), whose values go to `also_values`; if SQLite finds
  // them too big, the outcome is recorded without them (`also_values` empty).
  Result<Seq> Commit(std::string_view scope, std::string_view id, std::string_view result_json,
                     std::int64_t now_ms, std::string_view also = {}, const std::vector<SqlValue>& also_params = {},
                     SqlRow* also_values = nullptr);

  // The reply recorded for a committed mutation `id`; "" if none is.
  Result<std::string> StoredReply(std::string_view scope, std::string_view id);
  // The recorded ack of an in-flight mutation and the head after its
  // writes; false iff `id` is not in flight. `ack` is empty until Commit.
  bool Find(std::string_view scope, std::string_view id, std::string* ack, Seq* head) const;

  // Forgets an in-flight mutation; returns its owner and waiters.
  std::vector<std::string> Forget(std::string_view scope, std::string_view id);

  // Sends `frame` to an in-flight mutation's owner and waiters, and forgets it.
  void Settle(std::string_view scope, std::string_view id, const std::string& frame, Plan* plan);

  // Mutations admitted and not yet settled.
  std::size_t InFlightCount() const { return in_flight_.size(); }

  // A closed socket waits on nothing and holds nothing in flight.
  void OnClose(std::string_view socket);

 private:
  struct InFlight {
    std::string owner;
    std::vector<std::string> waiters;
    std::string ack;        // set by Commit
    Seq head = 0;           // the head right after its writes, set by Commit
    std::size_t bytes = 0;  // its ops and args, counted against the owner's load
  };
  // What one socket has in flight.
  struct Load {
    std::size_t count = 0;
    std::size_t bytes = 0;
  };

  static std::string DedupKey(std::string_view scope, std::string_view id);
  // The answer to a mutation refused before it ran: its stored ack if it
  // committed before, else a reject for `why` (an error if the record
  // cannot be read: its outcome is then unknown).
  Plan Refuse(std::string_view socket, std::string_view scope, std::string_view id, const Status& why);
  // Validates the ops of a mut, appending their normalised form to `w`.
  Status ValidateOps(const JsonValue& ops, JsonWriter* w);

  Storage* storage_;
  const Options* options_;
  Schema* schema_;
  ChangeLog* log_;
  std::map<std::string, InFlight, std::less<>> in_flight_;  // by DedupKey
  std::map<std::string, Load, std::less<>> load_;           // by owner socket
};

}  // namespace seqsync

#endif  // SEQSYNC_MUTATIONS_H_
