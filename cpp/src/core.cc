// The sync engine: frames in, plans out. This file holds the sockets and
// dispatches each frame to the piece that decides it:
//
//   frame_reader  reads and checks every inbound frame into a typed request
//   change_log    the log's head, its reads, marks, housekeeping, retention
//   windows       orderBy/limit/offset, resolved into a range
//   fanout        sends changes and snapshots, and flushes plans early
//   mutations     writes in flight, dedup, outcomes
//
// Design. The DO is the only writer, so the change log is a total order and
// one number, the seq, locates every client. Three rules keep one cursor
// sound:
//
//  1. Send as soon as it commits. Every handler first drains the log to the
//     head, then sends its own frames (fanout.cc). So when a frame leaves,
//     the socket already holds every earlier change.
//  2. Units. Frames that must be applied together (a chunked snapshot, a
//     resume) carry "more":true until the last; the client moves its cursor
//     only when a unit ends. A drop inside a unit repeats it on resume; a
//     unit that fails after part of it left closes the socket (CloseMidUnit),
//     which is a drop.
//  3. Catch-up or snapshot. A resume from `since` is served from the log iff
//     nothing it lacks was pruned (change_log.cc); otherwise it gets a
//     snapshot, which replaces what it held.
//
// A subscription is held (in memory and in _sync_subs) before its snapshot
// is read and dropped again if the snapshot fails, so a refused subscription
// never receives changes.

#include "seqsync/core.h"

#include <algorithm>

#include "change_log.h"
#include "fanout.h"
#include "frame_reader.h"
#include "frame_writer.h"
#include "json_util.h"
#include "mutations.h"
#include "schema.h"
#include "seqsync/close_codes.h"
#include "sockets.h"
#include "windows.h"

namespace seqsync {
namespace {

constexpr char kVersion[] = "seqsync-core 0.1.0 (protocol 1)";

// A unit failed after some of its frames left: close the sender, so the
// client drops the half unit and resumes from its cursor.
Plan CloseMidUnit(Plan plan) {
  plan.close_code = kCloseInternal;
  plan.close_reason = "could not finish sending; reconnect to resume";
  return plan;
}

}  // namespace

struct Core::Impl {
  Storage* storage;
  Options options;
  Schema schema;
  ChangeLog log{storage, &options, &schema};
  Fanout fanout{storage, &options, &schema, &log};
  Mutations mutations{storage, &options, &schema, &log};
  SocketMap sockets;
  // Bytes of every socket's subscription bodies. A body costs the heap a few
  // times its size (the where text, its parsed literals), so the per-socket
  // and per-object budgets on it are what bound subscription memory.
  std::size_t sub_bytes = 0;

  Impl(Storage* s, Options o) : storage(s), options(std::move(o)) {}

  // ---- subscriptions ----

  // Takes one sub token from `sock`'s bucket; false iff it is empty.
  bool TakeSubToken(Socket* sock, std::int64_t now_ms) {
    const double burst = static_cast<double>(options.sub_rate_burst);
    if (sock->sub_tokens < 0) {
      sock->sub_tokens = burst;
    } else if (now_ms > sock->sub_tokens_ms) {
      double refill = static_cast<double>(now_ms - sock->sub_tokens_ms) / 1000.0 *
                      static_cast<double>(options.sub_rate_per_second);
      sock->sub_tokens = std::min(burst, sock->sub_tokens + refill);
    }
    sock->sub_tokens_ms = std::max(sock->sub_tokens_ms, now_ms);
    if (sock->sub_tokens < 1) return false;
    sock->sub_tokens -= 1;
    return true;
  }

  Status RateLimited() const {
    return Status::RateLimited("more than " + std::to_string(options.sub_rate_burst) + " sub frames at once or " +
                               std::to_string(options.sub_rate_per_second) + " a second on this socket");
  }

  // True iff `sock` has room for a subscription `id` (new, or replacing one).
  bool HasRoomFor(const Socket& sock, std::string_view id) const {
    return sock.subs.size() < options.max_subs_per_socket ||
           std::any_of(sock.subs.begin(), sock.subs.end(), [&](const Subscription& x) { return x.id == id; });
  }

  void Account(Socket* sock, std::size_t added, std::size_t removed) {
    sock->sub_bytes = sock->sub_bytes + added - removed;
    sub_bytes = sub_bytes + added - removed;
  }

  // Adds or replaces `s` on `sock`, in memory and in SQLite; kTooMany past
  // the cap or the object's budget, kTooLarge past the socket's.
  Status AddSub(std::string_view socket_id, Socket* sock, Subscription s) {
    auto it = std::find_if(sock->subs.begin(), sock->subs.end(), [&](const Subscription& x) { return x.id == s.id; });
    if (it == sock->subs.end() && sock->subs.size() >= options.max_subs_per_socket) return TooManySubs(options);
    std::size_t replaced = it == sock->subs.end() ? 0 : it->body.size();
    if (sock->sub_bytes - replaced + s.body.size() > options.max_sub_bytes_per_socket) {
      return Status::TooLarge("this socket's subscriptions would hold more than " +
                              std::to_string(options.max_sub_bytes_per_socket) + " bytes of where");
    }
    if (sub_bytes - replaced + s.body.size() > kMaxSubBytesPerObject) {
      return Status::TooMany("this Durable Object holds " + std::to_string(sub_bytes) +
                             " bytes of subscriptions; the limit is " + std::to_string(kMaxSubBytesPerObject));
    }
    auto stored = storage->Exec("INSERT OR REPLACE INTO _sync_subs(socket,sub,body) VALUES(?1,?2,?3)",
                                {SqlValue::Text(std::string(socket_id)), SqlValue::Text(s.id), SqlValue::Text(s.body)});
    if (!stored.ok()) return stored.status();
    Account(sock, s.body.size(), replaced);
    if (it != sock->subs.end()) *it = std::move(s);
    else sock->subs.push_back(std::move(s));
    return Status::Ok();
  }

  // Forgets subscription `id` of `socket_id`, in memory and in SQLite.
  // An unknown id costs nothing: no statement runs for it.
  void RemoveSub(std::string_view socket_id, Socket* sock, std::string_view id) {
    auto it = std::find_if(sock->subs.begin(), sock->subs.end(), [&](const Subscription& s) { return s.id == id; });
    if (it == sock->subs.end()) return;
    Account(sock, 0, it->body.size());
    sock->subs.erase(it);
    auto r = storage->Exec("DELETE FROM _sync_subs WHERE socket=?1 AND sub=?2",
                           {SqlValue::Text(std::string(socket_id)), SqlValue::Text(std::string(id))});
    (void)r;  // an orphan row is swept on the next wake
  }

  // ---- hello, sub, unsub ----

  Plan OnHello(std::string_view socket_id, Socket* sock, const JsonValue& frame, std::int64_t now_ms) {
    if (sock->hello) return ErrorPlan(socket_id, Status::ProtocolOrder("hello was already received on this socket"));
    auto request = ReadHello(frame, options);
    if (!request.ok()) {
      Plan plan = ErrorPlan(socket_id, request.status());
      if (request.status().code() == Code::kVersionMismatch) {
        plan.close_code = kCloseProtocol;
        plan.close_reason = "protocol version mismatch";
      }
      return plan;
    }
    const HelloRequest& hello = *request;
    // Bring every socket up to the head first, so the resume below starts
    // from a head this socket is contiguous with.
    Plan plan;
    Status drained = fanout.Drain(sockets, now_ms, &plan);
    if (!drained.ok()) {
      ReplyError(&plan, socket_id, drained);
      return plan;
    }
    auto head_r = log.Head();
    if (!head_r.ok()) {
      ReplyError(&plan, socket_id, head_r.status());
      return plan;
    }
    const Seq head = *head_r;
    sock->hello = true;
    auto persisted = storage->Exec("INSERT OR IGNORE INTO _sync_sockets(socket) VALUES(?1)",
                                   {SqlValue::Text(std::string(socket_id))});
    (void)persisted;  // losing it only costs a re-hello after hibernation
    Reply(&plan, socket_id, WelcomeFrame(log.epoch(), head, LimitsJson(options)));

    const Seq since = hello.since.value_or(0);
    const bool can_catch_up = hello.since.has_value() && log.CanCatchUp(hello.epoch == log.epoch(), since, head);
    std::vector<Subscription> resume_subs;
    std::vector<Subscription> snapshot_subs;
    for (const HelloSub& entry : hello.subs) {
      auto s = ReadSub(*entry.body, options, storage, &schema);
      if (!s.ok()) {
        ReplySubError(&plan, socket_id, SubIdOf(*entry.body), s.status());
        continue;
      }
      // A window is resolved against the rows as they are now, so it
      // always starts from a snapshot; its resolved form resumes.
      const bool fresh_window = s->window.has_value();
      Status resolved = ResolveWindow(options, storage, &schema, &*s);
      if (!resolved.ok()) {
        ReplySubError(&plan, socket_id, s->id, resolved);
        continue;
      }
      Status added = AddSub(socket_id, sock, *s);
      if (!added.ok()) {
        ReplySubError(&plan, socket_id, s->id, added);
        continue;
      }
      (entry.resume && !fresh_window && can_catch_up ? resume_subs : snapshot_subs).push_back(std::move(s).value());
    }
    // The resume unit: catch-up, snapshots, then synced. Its frames leave
    // as they are built; if one part fails after some left, the socket is
    // closed, which drops the half unit on the client (it resumes later).
    const std::vector<std::string> to{std::string(socket_id)};
    if (!resume_subs.empty() && since < head) {
      std::uint64_t mark = fanout.Mark(plan);
      Status s = fanout.CollectChanges(since, head, head, /*end_units=*/false, {{to, &resume_subs}}, &plan);
      if (!s.ok()) {
        if (!fanout.Unsend(&plan, mark)) return CloseMidUnit(std::move(plan));
        ReplyError(&plan, socket_id, s);
        return plan;
      }
    }
    for (const Subscription& s : snapshot_subs) {
      std::uint64_t mark = fanout.Mark(plan);
      Status st = fanout.Snapshot(s, head, /*ends_unit=*/false, to, &plan);
      if (st.ok()) continue;
      // Nothing is held for a refused subscription: it gets no changes.
      RemoveSub(socket_id, sock, s.id);
      if (!fanout.Unsend(&plan, mark)) return CloseMidUnit(std::move(plan));
      ReplySubError(&plan, socket_id, s.id, st);
    }
    Reply(&plan, socket_id, SyncedFrame(head));
    return plan;
  }

  Plan OnSub(std::string_view socket_id, Socket* sock, const JsonValue& frame, std::int64_t now_ms) {
    Plan plan;
    // A refusal before the body is read names the id as sent, cut to size.
    const std::string_view sid = SubIdOf(frame).substr(0, options.max_id_bytes);
    if (!TakeSubToken(sock, now_ms)) {
      ReplySubError(&plan, socket_id, sid, RateLimited());
      return plan;
    }
    // The cap is checked before the where is parsed or any row is read.
    if (!HasRoomFor(*sock, sid)) {
      ReplySubError(&plan, socket_id, sid, TooManySubs(options));
      return plan;
    }
    auto s = ReadSub(frame, options, storage, &schema);
    if (!s.ok()) {
      ReplySubError(&plan, socket_id, sid, s.status());
      return plan;
    }
    Status drained = fanout.Drain(sockets, now_ms, &plan);
    auto head = log.Head();
    if (!drained.ok() || !head.ok()) {
      ReplySubError(&plan, socket_id, s->id, drained.ok() ? head.status() : drained);
      return plan;
    }
    Status resolved = ResolveWindow(options, storage, &schema, &*s);
    if (!resolved.ok()) {
      ReplySubError(&plan, socket_id, s->id, resolved);
      return plan;
    }
    // Held before its snapshot is read, so a refusal sends nothing; dropped
    // again if the snapshot fails.
    const std::string sub_id = s->id;
    Subscription sub = *s;
    Status added = AddSub(socket_id, sock, std::move(s).value());
    if (!added.ok()) {
      ReplySubError(&plan, socket_id, sub_id, added);
      return plan;
    }
    std::uint64_t mark = fanout.Mark(plan);
    Status snap = fanout.Snapshot(sub, *head, /*ends_unit=*/true, {std::string(socket_id)}, &plan);
    if (!snap.ok()) {
      RemoveSub(socket_id, sock, sub_id);
      if (!fanout.Unsend(&plan, mark)) return CloseMidUnit(std::move(plan));
      ReplySubError(&plan, socket_id, sub_id, snap);
    }
    return plan;
  }

  Plan OnUnsub(std::string_view socket_id, Socket* sock, const JsonValue& frame) {
    auto id = ReadUnsub(frame);
    if (!id.ok()) return ErrorPlan(socket_id, id.status());
    // Not rate limited: it only frees what a rate-limited sub took, and an
    // unknown id runs no statement.
    RemoveSub(socket_id, sock, *id);
    return Plan();
  }

  // ---- opening: registration, then the sockets a wake kept ----

  Status Register(std::string_view registration_json, std::string_view fresh_epoch) {
    JsonDocument doc;
    SEQSYNC_RETURN_IF_ERROR(ParseBounded(registration_json, 8, &doc));
    SEQSYNC_RETURN_IF_ERROR(schema.Register(storage, doc));
    return log.Load(fresh_epoch);
  }

  Status RestoreSockets(const std::vector<std::string>& live, Plan* refusals) {
    rapidjson::StringBuffer sb;
    JsonWriter w(sb);
    w.StartArray();
    for (const std::string& id : live) WriteString(id, &w);
    w.EndArray();
    SqlValue ids = SqlValue::Text(std::string(sb.GetString(), sb.GetSize()));
    // One read: how many rows belong to sockets that closed while we slept,
    // and the stored sockets and subscriptions.
    auto stored = storage->Exec(
        "SELECT (SELECT count(*) FROM _sync_subs WHERE socket NOT IN (SELECT value FROM json_each(?1))) +"
        " (SELECT count(*) FROM _sync_sockets WHERE socket NOT IN (SELECT value FROM json_each(?1))),"
        " (SELECT json_group_array(socket) FROM _sync_sockets WHERE socket IN (SELECT value FROM json_each(?1))),"
        " (SELECT json_group_array(json_array(socket, body)) FROM _sync_subs"
        "  WHERE socket IN (SELECT value FROM json_each(?1)))",
        {ids});
    if (!stored.ok()) return stored.status();
    if (stored->size() != 1 || (*stored)[0].size() != 3) return Status::Internal("unexpected stored sockets shape");
    // Forget the closed ones. Only then is a wake a write.
    if ((*stored)[0][0].AsInteger() > 0) {
      auto del_subs = storage->Exec("DELETE FROM _sync_subs WHERE socket NOT IN (SELECT value FROM json_each(?1))", {ids});
      if (!del_subs.ok()) return del_subs.status();
      auto del_socks = storage->Exec("DELETE FROM _sync_sockets WHERE socket NOT IN (SELECT value FROM json_each(?1))", {ids});
      if (!del_socks.ok()) return del_socks.status();
    }
    JsonDocument sdoc, bdoc;
    SEQSYNC_RETURN_IF_ERROR(ParseBounded((*stored)[0][1].text, 4, &sdoc));
    SEQSYNC_RETURN_IF_ERROR(ParseBounded((*stored)[0][2].text, kCeilingMaxJsonDepth, &bdoc));
    for (const JsonValue& id : sdoc.GetArray()) {
      if (id.IsString()) sockets[std::string(View(id))].hello = true;
    }
    for (const JsonValue& e : bdoc.GetArray()) {
      if (!e.IsArray() || e.Size() != 2 || !e[0].IsString() || !e[1].IsString()) continue;
      std::string socket(View(e[0]));
      JsonDocument body;
      if (!ParseStoredBody(View(e[1]), options, &body).ok()) {
        // Unreadable under today's limits: forget it rather than keep a row no wake can use.
        auto r = storage->Exec("DELETE FROM _sync_subs WHERE socket=?1 AND body=?2",
                               {SqlValue::Text(socket), SqlValue::Text(std::string(View(e[1])))});
        (void)r;
        continue;
      }
      auto sub = ReadSub(body, options, storage, &schema);
      if (!sub.ok()) {
        // The collection or a column went away since: forget the subscription
        // and tell its socket why, so the client does not wait on it forever.
        const JsonValue* sid = Member(body, "id");
        if (sid != nullptr && sid->IsString()) {
          auto r = storage->Exec("DELETE FROM _sync_subs WHERE socket=?1 AND sub=?2",
                                 {SqlValue::Text(socket), SqlValue::Text(std::string(View(*sid)))});
          (void)r;
          if (refusals != nullptr) ReplySubError(refusals, socket, View(*sid), sub.status());
        }
        continue;
      }
      Socket& restored = sockets[socket];
      Account(&restored, sub->body.size(), 0);  // admitted under the budgets before the wake
      restored.subs.push_back(std::move(sub).value());
    }
    return Status::Ok();
  }
};

Core::Core(Storage* storage, Options options) : impl_(std::make_unique<Impl>(storage, std::move(options))) {}

Core::~Core() = default;

Result<std::unique_ptr<Core>> Core::Open(Storage* storage, Options options, std::string_view registration_json,
                                         std::string_view fresh_epoch, const std::vector<std::string>& live_socket_ids,
                                         Plan* refusals) {
  std::unique_ptr<Core> core(new Core(storage, std::move(options)));
  SEQSYNC_RETURN_IF_ERROR(core->impl_->Register(registration_json, fresh_epoch));
  SEQSYNC_RETURN_IF_ERROR(core->impl_->RestoreSockets(live_socket_ids, refusals));
  return core;
}

Plan Core::OnMessage(std::string_view socket_id, std::string_view scope, std::string_view frame,
                     std::int64_t now_ms) {
  JsonDocument doc;
  FrameType type;
  Status read = ReadFrame(frame, impl_->options, &doc, &type);
  if (!read.ok()) return ErrorPlan(socket_id, read);
  Socket& sock = impl_->sockets[std::string(socket_id)];
  if (type == FrameType::kHello) return impl_->OnHello(socket_id, &sock, doc, now_ms);
  if (!sock.hello) {
    return ErrorPlan(socket_id, Status::ProtocolOrder("send hello before " + std::string(View(doc["t"]))));
  }
  switch (type) {
    case FrameType::kSub: return impl_->OnSub(socket_id, &sock, doc, now_ms);
    case FrameType::kUnsub: return impl_->OnUnsub(socket_id, &sock, doc);
    default: break;
  }
  const bool is_call = type == FrameType::kCall;
  auto id = ReadMutationId(doc, is_call, impl_->options);
  if (!id.ok()) return ErrorPlan(socket_id, id.status());
  return impl_->mutations.Admit(socket_id, scope, *id, doc, is_call);
}

Result<Seq> Core::CommitMutation(std::string_view scope, std::string_view mutation_id,
                                 std::string_view result_json, std::int64_t now_ms) {
  return impl_->mutations.Commit(scope, mutation_id, result_json, now_ms);
}

Plan Core::FinishMutation(std::string_view scope, std::string_view mutation_id, std::int64_t now_ms) {
  Plan plan;
  std::string ack;
  Seq head = 0;
  if (!impl_->mutations.Find(scope, mutation_id, &ack, &head)) return plan;
  if (ack.empty()) {
    impl_->mutations.Settle(scope, mutation_id,
                            RejectFrame(mutation_id, Status::Internal("mutation finished without commit")), &plan);
    return plan;
  }
  // The changes go first: when the ack arrives, the sender already holds them.
  Status drained = impl_->fanout.Drain(impl_->sockets, now_ms, &plan, head);
  if (!drained.ok()) {
    // Committed, but its changes could not be read to send. An ack would
    // move the client's cursor past them, a reject would undo a committed
    // write. Close instead: the client resumes from its cursor and replays
    // the id, and the recorded ack answers it after the catch-up.
    plan.close = impl_->mutations.Forget(scope, mutation_id);
    plan.close_code = kCloseInternal;
    plan.close_reason = "committed; reconnect to resume";
    return plan;
  }
  impl_->mutations.Settle(scope, mutation_id, ack, &plan);
  return plan;
}

Plan Core::RejectMutation(std::string_view scope, std::string_view mutation_id, const Status& why,
                          std::int64_t now_ms) {
  (void)now_ms;  // a rejection applied nothing and is not recorded: a replay is judged again
  Plan plan;
  Status reason = why.ok() ? Status::Internal("rejected with an OK status") : why;
  impl_->mutations.Settle(scope, mutation_id, RejectFrame(mutation_id, reason), &plan);
  return plan;
}

Plan Core::Drain(std::int64_t now_ms) {
  Plan plan;
  Status s = impl_->fanout.Drain(impl_->sockets, now_ms, &plan);
  (void)s;  // a failed drain is retried by the next one; nothing was marked sent
  return plan;
}

void Core::OnClose(std::string_view socket_id) {
  auto it = impl_->sockets.find(socket_id);
  if (it != impl_->sockets.end()) {
    impl_->sub_bytes -= it->second.sub_bytes;
    impl_->sockets.erase(it);
  }
  impl_->mutations.OnClose(socket_id);
  SqlValue id = SqlValue::Text(std::string(socket_id));
  auto a = impl_->storage->Exec("DELETE FROM _sync_subs WHERE socket=?1", {id});
  auto b = impl_->storage->Exec("DELETE FROM _sync_sockets WHERE socket=?1", {id});
  (void)a;
  (void)b;  // orphans are swept on the next wake
}

Status Core::Housekeep(std::int64_t now_ms) { return impl_->log.Housekeep(now_ms); }

Result<LogState> Core::State() { return impl_->log.State(); }

const std::string& Core::epoch() const { return impl_->log.epoch(); }
const Options& Core::options() const { return impl_->options; }

const char* Version() { return kVersion; }

}  // namespace seqsync
