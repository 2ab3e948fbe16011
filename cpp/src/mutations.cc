// Mutations: exactly once.
//
// Invariant: a mutation id (scoped by the caller's identity) is applied at
// most once, and every socket that sent it gets the one outcome. It holds
// because:
//
//  * A duplicate of an in-flight mutation waits for its outcome.
//  * The outcome is recorded by Commit inside the mutation's own
//    transaction, after the user's execute, by an INSERT that does nothing
//    if the id is already recorded: the write and its record commit
//    together or not at all, so a crash between them cannot apply it
//    twice, and a replay of a committed id finds its record there, is
//    rolled back, and is answered with the stored ack byte for byte.
//  * The record is not looked up before a mutation runs (that read cost
//    every write a statement): instead every refusal first looks it up, so
//    a replay of a committed id is never reported as rejected, whatever
//    payload it carries now and whatever authorize says of it today.
//  * Only committed outcomes are recorded. A rejection applied nothing, so a
//    replay may be judged again; and a hostile client cannot grow
//    _sync_mutations with refusals.
//
// What one socket may hold in flight is bounded in count and bytes (the
// shell holds each one's parsed ops while authorize awaits), and at most
// kMaxWaitersPerMutation other sockets may wait on one id.

#include "mutations.h"

#include <algorithm>

#include "fanout.h"
#include "frame_writer.h"
#include "too_big.h"

namespace seqsync {
namespace {

// "-?[0-9]{1,19}": an integer a 64-bit column may hold (SQLite keeps text
// beyond that as text, never rounded).
bool IsIntegerText(std::string_view s) {
  std::string_view digits = !s.empty() && s[0] == '-' ? s.substr(1) : s;
  return !digits.empty() && digits.size() <= 19 &&
         std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace


std::string Mutations::DedupKey(std::string_view scope, std::string_view id) {
  std::string k(scope);
  k += '\x1f';
  k += id;
  return k;
}

Plan Mutations::Admit(std::string_view socket, std::string_view scope, const std::string& id,
                      const JsonValue& frame, bool is_call) {
  Plan plan;
  std::string key = DedupKey(scope, id);
  // 1. Exactly once: an in-flight id wins over the payload (a committed
  // one is found by Commit, or by the refusals below).
  if (auto it = in_flight_.find(key); it != in_flight_.end()) {
    std::vector<std::string>& waiters = it->second.waiters;
    bool waiting = it->second.owner == socket || std::find(waiters.begin(), waiters.end(), socket) != waiters.end();
    if (waiting) return plan;  // it gets the one answer already due
    if (waiters.size() >= kMaxWaitersPerMutation) {
      // Not a reject: the outcome is still unknown. The client may retry.
      return ErrorPlan(socket, Status::TooMany("mutation '" + id + "' already has " +
                                               std::to_string(kMaxWaitersPerMutation) + " sockets waiting on it"));
    }
    waiters.emplace_back(socket);
    return plan;
  }
  // 2. The per-socket caps are transient, so their refusals are not recorded.
  Load& load = load_[std::string(socket)];
  if (load.count >= options_->max_in_flight_per_socket) {
    return Refuse(socket, scope, id, Status::TooMany("more than " + std::to_string(options_->max_in_flight_per_socket) +
                                " mutations in flight on this socket"));
  }
  // 3. The payload.
  PendingMutation pending;
  pending.id = id;
  if (is_call) {
    const JsonValue* name = Member(frame, "name");
    if (name == nullptr || !name->IsString() || name->GetStringLength() == 0) {
      return Refuse(socket, scope, id, Status::InvalidField("call needs a non-empty string name"));
    }
    if (!schema_->HasCommand(View(*name))) {
      return Refuse(socket, scope, id, Status::NoHandler("unknown command '" + std::string(View(*name)).substr(0, 128) + "'"));
    }
    pending.command.assign(View(*name));
    const JsonValue* args = Member(frame, "args");
    pending.args_json = args == nullptr ? "null" : ToJson(*args);
    pending.ops_json = "[]";
  } else {
    const JsonValue* ops = Member(frame, "ops");
    rapidjson::StringBuffer sb;
    JsonWriter w(sb);
    Status valid = ops == nullptr ? Status::InvalidField("mut needs a non-empty ops array") : ValidateOps(*ops, &w);
    if (!valid.ok()) {
      return Refuse(socket, scope, id, valid);
    }
    pending.ops_json.assign(sb.GetString(), sb.GetSize());
  }
  // The shell holds the pending ops (parsed, a few times their size) while
  // authorize awaits, so their bytes are bounded per socket too; one
  // mutation alone is always let in, or a large one could never run.
  std::size_t bytes = pending.ops_json.size() + pending.args_json.size();
  if (load.count > 0 && load.bytes + bytes > options_->max_in_flight_bytes_per_socket) {
    return Refuse(socket, scope, id, Status::TooMany("more than " + std::to_string(options_->max_in_flight_bytes_per_socket) +
                                " bytes of mutations in flight on this socket"));
  }
  InFlight entry;
  entry.owner.assign(socket);
  entry.bytes = bytes;
  in_flight_[key] = std::move(entry);
  ++load.count;
  load.bytes += bytes;
  plan.mutation = std::move(pending);
  return plan;
}

Result<std::string> Mutations::StoredReply(std::string_view scope, std::string_view id) {
  auto stored = storage_->Exec("SELECT reply FROM _sync_mutations WHERE scope=?1 AND id=?2",
                               {SqlValue::Text(std::string(scope)), SqlValue::Text(std::string(id))});
  if (!stored.ok()) return stored.status();
  if (stored->empty() || stored->front().empty()) return std::string();
  return std::move(stored->front().front().text);
}

Plan Mutations::Refuse(std::string_view socket, std::string_view scope, std::string_view id, const Status& why) {
  Plan plan;
  auto stored = StoredReply(scope, id);
  // The outcome is unknown (it may have committed): an error, never a reject.
  if (!stored.ok()) return ErrorPlan(socket, stored.status());
  if (!stored->empty()) {
    Reply(&plan, socket, std::move(*stored));
  } else {
    ReplyReject(&plan, socket, id, why);
  }
  return plan;
}

Status Mutations::ValidateOps(const JsonValue& ops, JsonWriter* w) {
  if (!ops.IsArray() || ops.Size() == 0) return Status::InvalidField("mut needs a non-empty ops array");
  if (ops.Size() > options_->max_ops_per_mutation) {
    return Status::TooMany("mutation has " + std::to_string(ops.Size()) + " ops; the limit is " +
                           std::to_string(options_->max_ops_per_mutation));
  }
  bool refreshed = false;
  w->StartArray();
  for (rapidjson::SizeType i = 0; i < ops.Size(); ++i) {
    const JsonValue& op = ops[i];
    std::string where = "op " + std::to_string(i) + ": ";
    if (!op.IsObject()) return Status::InvalidField(where + "must be an object");
    const JsonValue* c = Member(op, "c");
    const JsonValue* kind = Member(op, "op");
    const JsonValue* k = Member(op, "k");
    const JsonValue* cols = Member(op, "cols");
    if (c == nullptr || !c->IsString()) return Status::InvalidField(where + "needs a string collection c");
    const Collection* coll = schema_->Find(View(*c));
    if (coll == nullptr) {
      return Status::UnknownCollection(where + "collection '" + std::string(View(*c)).substr(0, 128) +
                                       "' is not registered");
    }
    if (kind == nullptr || !kind->IsString() ||
        (View(*kind) != "insert" && View(*kind) != "update" && View(*kind) != "delete")) {
      return Status::InvalidField(where + "op must be \"insert\", \"update\" or \"delete\"");
    }
    std::string op_name(View(*kind));
    if (!coll->ops.count(op_name)) {
      return Status::NoHandler(where + "no mutation handler for '" + coll->table + ":" + op_name + "'");
    }
    if (k == nullptr || !k->IsString()) return Status::InvalidKey(where + "key k must be a string");
    if (k->GetStringLength() == 0) return Status::InvalidKey(where + "key k must be a non-empty string");
    if (k->GetStringLength() > options_->max_key_bytes) {
      return Status::TooLarge(where + "key is longer than " + std::to_string(options_->max_key_bytes) + " bytes");
    }
    bool needs_cols = op_name != "delete";
    if (needs_cols && (cols == nullptr || !cols->IsObject())) {
      return Status::InvalidField(where + op_name + " needs a cols object");
    }
    if (!needs_cols && cols != nullptr && !cols->IsNull()) return Status::InvalidField(where + "delete takes no cols");
    w->StartObject();
    w->Key("c");
    WriteString(coll->table, w);
    w->Key("op");
    WriteString(op_name, w);
    w->Key("k");
    WriteValue(*k, w);
    if (needs_cols) {
      w->Key("cols");
      w->StartObject();
      // Indexed, not range-for: RapidJSON 1.1's iterator != is ambiguous in C++20.
      for (rapidjson::SizeType ci = 0; ci < cols->MemberCount(); ++ci) {
        const auto& m = cols->MemberBegin()[ci];
        std::string_view name = View(m.name);
        if (std::find(coll->columns.begin(), coll->columns.end(), name) == coll->columns.end()) {
          if (!refreshed) {  // maybe an ALTER TABLE ADD COLUMN since we looked
            SEQSYNC_RETURN_IF_ERROR(schema_->RefreshIfChanged(storage_));
            refreshed = true;
            coll = schema_->Find(View(*c));
          }
          if (std::find(coll->columns.begin(), coll->columns.end(), name) == coll->columns.end()) {
            return Status::UnknownColumn(where + "unknown column '" + std::string(name.substr(0, 128)) + "' in '" +
                                         coll->table + "'");
          }
        }
        const JsonValue& v = m.value;
        // The key is the row's identity on the client: a row whose pk
        // differs from k would be confirmed under another key.
        if (name == coll->pk && !(v.IsString() && View(v) == View(*k))) {
          return Status::InvalidKey(where + "cols." + coll->pk + " must equal the key k");
        }
        w->Key(m.name.GetString(), m.name.GetStringLength());
        const JsonValue* big = v.IsObject() && v.MemberCount() == 1 ? Member(v, "$int") : nullptr;
        if (big != nullptr && big->IsString() && IsIntegerText(View(*big))) {
          // A client's bigint (docs/protocol.md §2): its decimal text, which an
          // INTEGER column stores exactly; a JS number could not hold it.
          WriteString(View(*big), w);
        } else if (v.IsObject() || v.IsArray()) {
          std::string text = ToJson(v);  // stored as JSON text
          if (text.size() > options_->max_value_bytes) {
            return Status::TooLarge(where + "value of '" + std::string(name) + "' exceeds " +
                                    std::to_string(options_->max_value_bytes) + " bytes");
          }
          WriteString(text, w);
        } else if (v.IsBool()) {
          w->Int(v.GetBool() ? 1 : 0);  // SQLite has no booleans
        } else {
          if (v.IsString() && v.GetStringLength() > options_->max_value_bytes) {
            return Status::TooLarge(where + "value of '" + std::string(name) + "' exceeds " +
                                    std::to_string(options_->max_value_bytes) + " bytes");
          }
          WriteValue(v, w);
        }
      }
      w->EndObject();
    }
    w->EndObject();
  }
  w->EndArray();
  return Status::Ok();
}

Result<Seq> Mutations::Commit(std::string_view scope, std::string_view id, std::string_view result_json,
                              std::int64_t now_ms, std::string_view also, const std::vector<SqlValue>& also_params,
                              SqlRow* also_values) {
  auto it = in_flight_.find(DedupKey(scope, id));
  if (it == in_flight_.end()) return Status::Internal("no mutation in flight with this id");
  const bool has_result = !result_json.empty() && result_json != "null";
  if (has_result) {
    JsonDocument doc;  // the ack carries it verbatim: it must be JSON
    SEQSYNC_RETURN_IF_ERROR(ParseBounded(result_json, kCeilingMaxJsonDepth, &doc));
  }
  // The ack's seq is the head its writes brought the log to. One statement
  // reads it and records the ack, built around it by SQLite, for replays.
  // Retention may have pruned every entry: the floor still says how far
  // seqs went.
  // An id already recorded inserts nothing and returns no row: a replay
  // of a committed mutation, which the caller rolls back.
  static constexpr std::string_view kRecord =
      "INSERT INTO _sync_mutations(scope,id,reply,ts)"
      " VALUES(?1,?2,?3||(SELECT MAX(COALESCE(MAX(seq),0),?6) FROM _sync_changes)||?4,?5)"
      " ON CONFLICT DO NOTHING RETURNING (SELECT MAX(COALESCE(MAX(seq),0),?6) FROM _sync_changes)";
  std::vector<SqlValue> params{SqlValue::Text(std::string(scope)), SqlValue::Text(std::string(id)),
                               SqlValue::Text(AckFramePrefix(id)),
                               SqlValue::Text(AckFrameSuffix(has_result ? result_json : "")),
                               SqlValue::Integer(now_ms), SqlValue::Integer(static_cast<std::int64_t>(log_->floor()))};
  const std::size_t own_params = params.size();
  params.insert(params.end(), also_params.begin(), also_params.end());
  auto recorded = also.empty() ? storage_->Exec(kRecord, params)
                               : storage_->Exec(std::string(kRecord) + "," + std::string(also), params);
  if (!also.empty() && !recorded.ok() && Classified(recorded.status()).code() == Code::kTooLarge) {
    // A failed statement changed nothing: record the outcome alone.
    params.resize(own_params);
    recorded = storage_->Exec(kRecord, params);
  } else if (!also.empty() && recorded.ok() && recorded->size() == 1 && !(*recorded)[0].empty()) {
    if (also_values != nullptr) also_values->assign((*recorded)[0].begin() + 1, (*recorded)[0].end());
    (*recorded)[0].resize(1);
  }
  if (!recorded.ok()) return recorded.status();
  if (recorded->empty()) return Status::Internal("mutation '" + std::string(id) + "' was committed before");
  if (recorded->size() != 1 || (*recorded)[0].size() != 1) return Status::Internal("unexpected mutation record shape");
  const Seq head = static_cast<Seq>((*recorded)[0][0].AsInteger());
  if (head > kMaxSeq) return Status::Internal("seq space exhausted (2^53)");
  std::string ack = std::move(params[2].text);
  ack += std::to_string(head);
  ack += params[3].text;
  it->second.ack = std::move(ack);
  it->second.head = head;
  return head;
}

bool Mutations::Find(std::string_view scope, std::string_view id, std::string* ack, Seq* head) const {
  auto it = in_flight_.find(DedupKey(scope, id));
  if (it == in_flight_.end()) return false;
  *ack = it->second.ack;
  *head = it->second.head;
  return true;
}

std::vector<std::string> Mutations::Forget(std::string_view scope, std::string_view id) {
  auto it = in_flight_.find(DedupKey(scope, id));
  if (it == in_flight_.end()) return {};
  std::vector<std::string> to;
  to.push_back(it->second.owner);
  for (const std::string& w : it->second.waiters) {
    if (std::find(to.begin(), to.end(), w) == to.end()) to.push_back(w);
  }
  if (auto load = load_.find(it->second.owner); load != load_.end() && load->second.count > 0) {
    --load->second.count;
    load->second.bytes -= std::min(load->second.bytes, it->second.bytes);
  }
  in_flight_.erase(it);
  return to;
}

void Mutations::Settle(std::string_view scope, std::string_view id, const std::string& frame, Plan* plan) {
  std::vector<std::string> to = Forget(scope, id);
  if (!to.empty()) plan->deliveries.push_back({std::move(to), frame});
}

void Mutations::OnClose(std::string_view socket) {
  for (auto& [key, f] : in_flight_) {
    f.waiters.erase(std::remove(f.waiters.begin(), f.waiters.end(), socket), f.waiters.end());
  }
  if (auto load = load_.find(socket); load != load_.end()) load_.erase(load);
}

}  // namespace seqsync
