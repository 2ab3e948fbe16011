// The sync engine: frames in, plans out. This file answers hello, sub and
// unsub on the sockets, and dispatches each frame to the piece that decides
// it:
//
//   frame_reader  reads and checks every inbound frame into a typed request
//   sockets       each socket's subscriptions and budgets, restored at a wake
//   change_log    the log's head, its reads, marks, housekeeping, retention
//   windows       orderBy/limit/offset, resolved into a range
//   pages         one-off ordered reads from a cursor (no subscription)
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
#include <optional>
#include <utility>

#include "change_log.h"
#include "fanout.h"
#include "frame_reader.h"
#include "frame_writer.h"
#include "json_util.h"
#include "mutations.h"
#include "presence.h"
#include "pages.h"
#include "schema.h"
#include "seqsync/close_codes.h"
#include "sockets.h"
#include "sql_ident.h"
#include "stats.h"
#include "unread.h"
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
  ChangeLog log{storage, &options};
  Fanout fanout{storage, &options, &schema, &log};
  Mutations mutations{storage, &options, &schema, &log};
  Sockets sockets{storage, &options};
  Presence presence{&sockets, &options};
  // The first page of the drain after the mutation (by its dedup key) that
  // CommitMutation read ahead; any other call drops it.
  std::optional<std::pair<std::string, ReadAhead>> read_ahead;
  Unread unread{&sockets};
  Stats stats;
  // The clock of the call running now, for the frames it flushes early and
  // the housekeeping after its drain.
  std::int64_t now_ms = 0;
  bool drained_this_call = false;
  // Housekeeping runs that failed (the stats' housekeepingFailures).
  std::uint64_t housekeeping_failures = 0;

  Impl(Storage* s, Options o) : storage(s), options(std::move(o)) {
    fanout.on_flushed = [this](const Delivery& d) {
      unread.ChargeFlushed(d);
      stats.CountSent(d, now_ms);
    };
  }

  // Every plan leaves through here: its frames count as unread (unread.h)
  // and as sent (stats.h).
  Plan Charged(Plan plan) {
    HousekeepAfterReplies(&plan);
    unread.ChargePlan(options.max_unread_bytes_per_socket, &plan);
    stats.CountPlan(plan, now_ms);
    return plan;
  }

  // Housekeeping holds no reply back: when it is due (the first write after
  // a wake, say), the plan's frames leave first, where the storage can send
  // early. A failure loses nothing: compaction, retention and marks are
  // tried again when next due, and a stale drain watermark only re-sends;
  // the stats count it.
  void HousekeepAfterReplies(Plan* plan) {
    if (!drained_this_call) return;
    drained_this_call = false;
    if (!log.HousekeepingDue(now_ms)) return;
    fanout.Flush(plan);
    if (!log.MaybeHousekeep(now_ms).ok()) ++housekeeping_failures;
  }

  // Every drain goes through here, so the call's plan housekeeps after it.
  Status Drain(Plan* plan, Seq known_head = 0, ReadAhead* ahead = nullptr) {
    Status drained = fanout.Drain(sockets.all(), now_ms, plan, known_head, ahead);
    drained_this_call = drained_this_call || drained.ok();
    return drained;
  }

  // Closes the sockets that sent or wait on a mutation whose answer cannot
  // be given now (kCloseInternal): they reconnect, replay its id, and are
  // answered then. `outcome` is what the stats record.
  Plan CloseForReplay(Plan plan, std::string_view scope, std::string_view id, std::int64_t now_ms,
                      const char* reason, const char* outcome) {
    plan.close = mutations.Forget(scope, id);
    plan.close_code = kCloseInternal;
    plan.close_reason = reason;
    stats.Dropped(MutationKey(scope, id), now_ms, outcome);
    return Charged(std::move(plan));
  }

  // Sends a committed mutation's ack to the sockets that sent or wait on
  // it. A socket that asked for inline acks and is sent the frame that ends
  // the write's unit (seq `head`) in this plan gets the ack inside that
  // frame instead: one frame fewer per write, for the writer and for the
  // DO. An ack with a result (a call) is always a frame of its own.
  void SettleAck(std::string_view scope, std::string_view id, Seq head, const std::string& ack, Plan* plan) {
    std::vector<std::string> plain;
    const bool inlinable = ack == AckFrame(id, head, "");
    const std::string unit_head = "{\"t\":\"changes\",\"seq\":" + std::to_string(head) + ",";
    const std::size_t drained = plan->deliveries.size();
    for (std::string& to : mutations.Forget(scope, id)) {
      const Socket* sock = sockets.Find(to);
      if (!inlinable || sock == nullptr || !sock->inline_acks || !InlineAck(to, id, unit_head, drained, plan)) {
        plain.push_back(std::move(to));
      }
    }
    std::erase_if(plan->deliveries, [](const Delivery& d) { return d.to.empty(); });
    if (!plain.empty()) plan->deliveries.push_back({std::move(plain), ack});
  }

  // Moves `socket` out of the plan's delivery of the frame that ends the
  // unit (it starts `unit_head` and has no "more") into a copy of that frame
  // that carries "ack". False if the plan's first `searched` deliveries
  // send it no such frame (it holds no subscription the write touched, or
  // the frame left early).
  static bool InlineAck(const std::string& socket, std::string_view id, const std::string& unit_head,
                        std::size_t searched, Plan* plan) {
    for (std::size_t i = searched; i-- > 0;) {
      Delivery& d = plan->deliveries[i];
      auto member = std::find(d.to.begin(), d.to.end(), socket);
      if (member == d.to.end()) continue;
      const std::string& f = d.frame;
      if (f.compare(0, unit_head.size(), unit_head) != 0 || f.size() < 2 || f.compare(f.size() - 2, 2, "]}") != 0) {
        return false;  // its last frame here is not the end of the write's unit
      }
      std::string with_ack = f.substr(0, f.size() - 1);
      with_ack += ",\"ack\":";
      with_ack += JsonQuote(id);
      with_ack += '}';
      d.to.erase(member);  // a delivery left with no one is dropped by the caller
      plan->deliveries.push_back({{socket}, std::move(with_ack)});
      return true;
    }
    return false;
  }

  static std::string MutationKey(std::string_view scope, std::string_view id) {
    std::string key(scope);
    key += '\x1f';
    key += id;
    return key;
  }

  Result<std::string> StatsJson(bool detail);

  // ---- subscriptions ----

  // ---- hello, sub, unsub ----

  Plan OnHello(std::string_view socket_id, Socket* sock, const JsonValue& frame) {
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
    Status drained = Drain(&plan);
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
    sock->inline_acks = hello.inline_acks;
    sock->compact_changes = hello.compact_changes;
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
      Status added = sockets.AddSub(socket_id, sock, *s);
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
      Status s = fanout.CollectChanges(since, head, head, /*end_units=*/false, {{to, &resume_subs, sock->compact_changes}}, &plan);
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
      sockets.RemoveSub(socket_id, sock, s.id);
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
    if (!sockets.TakeSubToken(sock, now_ms)) {
      ReplySubError(&plan, socket_id, sid, sockets.RateLimited());
      return plan;
    }
    // The cap is checked before the where is parsed or any row is read.
    if (!sockets.HasRoomFor(*sock, sid)) {
      ReplySubError(&plan, socket_id, sid, TooManySubs(options));
      return plan;
    }
    auto s = ReadSub(frame, options, storage, &schema);
    if (!s.ok()) {
      ReplySubError(&plan, socket_id, sid, s.status());
      return plan;
    }
    Status drained = Drain(&plan);
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
    Status added = sockets.AddSub(socket_id, sock, std::move(s).value());
    if (!added.ok()) {
      ReplySubError(&plan, socket_id, sub_id, added);
      return plan;
    }
    std::uint64_t mark = fanout.Mark(plan);
    Status snap = fanout.Snapshot(sub, *head, /*ends_unit=*/true, {std::string(socket_id)}, &plan);
    if (!snap.ok()) {
      sockets.RemoveSub(socket_id, sock, sub_id);
      if (!fanout.Unsend(&plan, mark)) return CloseMidUnit(std::move(plan));
      ReplySubError(&plan, socket_id, sub_id, snap);
    }
    return plan;
  }

  // A one-off page (pages.h): rate limited with sub frames, since it costs a
  // read as a snapshot does, and it holds nothing afterwards.
  Plan OnPage(std::string_view socket_id, Socket* sock, const JsonValue& frame, std::int64_t now_ms) {
    Plan plan;
    const std::string_view pid = PageIdOf(frame).substr(0, options.max_id_bytes);
    if (!sockets.TakeSubToken(sock, now_ms)) {
      Reply(&plan, socket_id, PageErrorFrame(pid, sockets.RateLimited()));
      return plan;
    }
    auto request = ReadPage(frame, options, storage, &schema);
    if (!request.ok()) {
      Reply(&plan, socket_id, PageErrorFrame(pid, request.status()));
      return plan;
    }
    // Drained first: the page is read at the head this socket now holds.
    Status drained = Drain(&plan);
    auto head = log.Head();
    if (!drained.ok() || !head.ok()) {
      Reply(&plan, socket_id, PageErrorFrame(pid, drained.ok() ? head.status() : drained));
      return plan;
    }
    std::uint64_t mark = fanout.Mark(plan);
    Status served = ServePage(*request, *head, storage, &options, &schema, &fanout, {std::string(socket_id)}, &plan);
    if (!served.ok()) {
      if (!fanout.Unsend(&plan, mark)) return CloseMidUnit(std::move(plan));
      Reply(&plan, socket_id, PageErrorFrame(pid, served));
    }
    return plan;
  }

  Plan OnUnsub(std::string_view socket_id, Socket* sock, const JsonValue& frame) {
    auto id = ReadUnsub(frame);
    if (!id.ok()) return ErrorPlan(socket_id, id.status());
    // Not rate limited: it only frees what a rate-limited sub took, and an
    // unknown id runs no statement.
    sockets.RemoveSub(socket_id, sock, *id);
    return Plan();
  }

  Plan Dispatch(std::string_view socket_id, std::string_view scope, std::string_view frame, std::int64_t now_ms);

  // A hello's snapshots for no socket: the same reading of the subs, the
  // same snapshot frames, nothing held (Core::ReadSnapshot).
  Plan ReadSnapshot(std::string_view reader, std::string_view request) {
    JsonDocument doc;
    FrameType type;
    Status read = ReadFrame(request, options, &doc, &type);
    if (!read.ok()) return ErrorPlan(reader, read);
    if (type != FrameType::kHello) return ErrorPlan(reader, Status::UnknownFrame("a snapshot read is a hello"));
    auto hello = ReadHello(doc, options);
    if (!hello.ok()) return ErrorPlan(reader, hello.status());
    Plan plan;
    // The columns as they are now (an ALTER TABLE since the last drain), as
    // the drain before a socket's snapshot would leave them.
    Status fresh = schema.RefreshIfChanged(storage);
    auto head = log.Head();
    if (!fresh.ok() || !head.ok()) {
      ReplyError(&plan, reader, fresh.ok() ? head.status() : fresh);
      return plan;
    }
    const std::vector<std::string> to{std::string(reader)};
    for (const HelloSub& entry : hello->subs) {
      auto s = ReadSub(*entry.body, options, storage, &schema);
      if (!s.ok()) {
        ReplySubError(&plan, reader, SubIdOf(*entry.body), s.status());
        continue;
      }
      Status resolved = ResolveWindow(options, storage, &schema, &*s);
      if (!resolved.ok()) {
        ReplySubError(&plan, reader, s->id, resolved);
        continue;
      }
      // A failed snapshot whose first frames already left is still refused
      // by its sub-error: the reader drops what it got for that sub.
      std::uint64_t mark = fanout.Mark(plan);
      Status st = fanout.Snapshot(*s, *head, /*ends_unit=*/false, to, &plan);
      if (st.ok()) continue;
      (void)fanout.Unsend(&plan, mark);
      ReplySubError(&plan, reader, s->id, st);
    }
    Reply(&plan, reader, SyncedFrame(*head));
    return plan;
  }

  // ---- opening: registration, then the sockets a wake kept ----

  Status Register(std::string_view registration_json, std::string_view fresh_epoch) {
    JsonDocument doc;
    SEQSYNC_RETURN_IF_ERROR(ParseBounded(registration_json, 8, &doc));
    SEQSYNC_RETURN_IF_ERROR(schema.Register(storage, doc));
    return log.Load(fresh_epoch);
  }

};

Core::Core(Storage* storage, Options options) : impl_(std::make_unique<Impl>(storage, std::move(options))) {}

Core::~Core() = default;

Result<std::unique_ptr<Core>> Core::Open(Storage* storage, Options options, std::string_view registration_json,
                                         std::string_view fresh_epoch, const std::vector<std::string>& live_socket_ids,
                                         Plan* refusals) {
  std::unique_ptr<Core> core(new Core(storage, std::move(options)));
  SEQSYNC_RETURN_IF_ERROR(core->impl_->Register(registration_json, fresh_epoch));
  SEQSYNC_RETURN_IF_ERROR(core->impl_->sockets.Restore(live_socket_ids, &core->impl_->schema, refusals));
  return core;
}

Plan Core::OnMessage(std::string_view socket_id, std::string_view scope, std::string_view frame,
                     std::int64_t now_ms) {
  impl_->read_ahead.reset();
  impl_->now_ms = now_ms;
  Plan plan = impl_->Dispatch(socket_id, scope, frame, now_ms);
  if (plan.mutation) impl_->stats.Admitted(Impl::MutationKey(scope, plan.mutation->id), now_ms);
  return impl_->Charged(std::move(plan));
}

Plan Core::Impl::Dispatch(std::string_view socket_id, std::string_view scope, std::string_view frame,
                          std::int64_t now_ms) {
  JsonDocument doc;
  FrameType type;
  Status read = ReadFrame(frame, options, &doc, &type);
  if (!read.ok()) return ErrorPlan(socket_id, read);
  Socket& sock = sockets.Get(socket_id);
  if (type == FrameType::kHello) return OnHello(socket_id, &sock, doc);
  if (!sock.hello) {
    return ErrorPlan(socket_id, Status::ProtocolOrder("send hello before " + std::string(View(doc["t"]))));
  }
  switch (type) {
    case FrameType::kSub: return OnSub(socket_id, &sock, doc, now_ms);
    case FrameType::kUnsub: return OnUnsub(socket_id, &sock, doc);
    case FrameType::kPresence: return presence.OnFrame(socket_id, &sock, doc, now_ms);
    case FrameType::kPage: return OnPage(socket_id, &sock, doc, now_ms);
    case FrameType::kRecv: {
      auto bytes = ReadRecv(doc);
      if (!bytes.ok()) return ErrorPlan(socket_id, bytes.status());
      Unread::CreditRead(&sock, *bytes);
      return Plan();
    }
    default: break;
  }
  const bool is_call = type == FrameType::kCall;
  auto id = ReadMutationId(doc, is_call, options);
  if (!id.ok()) return ErrorPlan(socket_id, id.status());
  return mutations.Admit(socket_id, scope, *id, doc, is_call);
}

Result<Seq> Core::CommitMutation(std::string_view scope, std::string_view mutation_id,
                                 std::string_view result_json, std::int64_t now_ms) {
  // The drain that FinishMutation runs next reads its first page here, in
  // the statement that records the outcome: one statement fewer a write.
  impl_->read_ahead.reset();
  std::string also;
  std::vector<SqlValue> also_params;
  ReadAhead ahead;
  const bool reads_ahead =
      impl_->fanout.ReadAheadSql(impl_->sockets.all(), /*first_param=*/7, &also, &also_params, &ahead);
  SqlRow read;
  auto seq = impl_->mutations.Commit(scope, mutation_id, result_json, now_ms, reads_ahead ? also : "", also_params,
                                     &read);
  std::string key = Impl::MutationKey(scope, mutation_id);
  if (seq.ok()) impl_->stats.Committed(key, now_ms);
  if (seq.ok() && read.size() == 2 && read[0].kind == SqlValue::Kind::kText) {
    ahead.text = std::move(read[0].text);
    ahead.fresh_schema = read[1].AsInteger() == 1;
    impl_->read_ahead.emplace(std::move(key), std::move(ahead));
  }
  return seq;
}

Plan Core::FinishMutation(std::string_view scope, std::string_view mutation_id, std::int64_t now_ms) {
  impl_->now_ms = now_ms;
  Plan plan;
  std::string ack;
  Seq head = 0;
  const std::string key = Impl::MutationKey(scope, mutation_id);
  if (!impl_->mutations.Find(scope, mutation_id, &ack, &head)) {
    impl_->stats.Dropped(key, now_ms, "forgotten");  // its socket closed while it ran
    return impl_->Charged(std::move(plan));
  }
  if (ack.empty()) {
    impl_->mutations.Settle(scope, mutation_id,
                            RejectFrame(mutation_id, Status::Internal("mutation finished without commit")), &plan);
    impl_->stats.Dropped(key, now_ms, CodeName(Code::kInternal));
    return impl_->Charged(std::move(plan));
  }
  // The changes go first: when the ack arrives, the sender already holds them.
  std::optional<std::pair<std::string, ReadAhead>> ahead = std::move(impl_->read_ahead);
  impl_->read_ahead.reset();
  const bool own = ahead && ahead->first == key;
  Status drained = impl_->Drain(&plan, head, own ? &ahead->second : nullptr);
  if (!drained.ok()) {
    // Committed, but its changes could not be read to send. An ack would
    // move the client's cursor past them, a reject would undo a committed
    // write. Close instead: the client resumes from its cursor and replays
    // the id, and the recorded ack answers it after the catch-up.
    return impl_->CloseForReplay(std::move(plan), scope, mutation_id, now_ms, "committed; reconnect to resume",
                                 "committed, unsent");
  }
  impl_->SettleAck(scope, mutation_id, head, ack, &plan);
  impl_->stats.Acked(key, now_ms);
  return impl_->Charged(std::move(plan));
}

Plan Core::RejectMutation(std::string_view scope, std::string_view mutation_id, const Status& why,
                          std::int64_t now_ms) {
  impl_->read_ahead.reset();
  // A rejection applied nothing and is not recorded: a replay is judged
  // again. `now_ms` only times it.
  impl_->now_ms = now_ms;
  Plan plan;
  const std::string key = Impl::MutationKey(scope, mutation_id);
  std::string ack;
  Seq head = 0;
  if (!impl_->mutations.Find(scope, mutation_id, &ack, &head)) {
    impl_->stats.Dropped(key, now_ms, "forgotten");  // its socket closed while it ran
    return impl_->Charged(std::move(plan));
  }
  // A replay of a committed mutation is refused like any other (authorize
  // may say no today; its execute may fail on the rows it wrote; Commit
  // finds its record): it gets the ack it was given.
  auto stored = impl_->mutations.StoredReply(scope, mutation_id);
  if (!stored.ok()) {
    // Its outcome is unknown, so neither an ack nor a reject.
    return impl_->CloseForReplay(std::move(plan), scope, mutation_id, now_ms, "outcome unknown; reconnect to resume",
                                 "unknown");
  }
  if (!stored->empty()) {
    impl_->mutations.Settle(scope, mutation_id, *stored, &plan);
    plan.replayed = true;
    impl_->stats.Dropped(key, now_ms, "replayed");
    return impl_->Charged(std::move(plan));
  }
  Status reason = why.ok() ? Status::Internal("rejected with an OK status") : why;
  impl_->mutations.Settle(scope, mutation_id, RejectFrame(mutation_id, reason), &plan);
  impl_->stats.Dropped(key, now_ms, CodeName(reason.code()));
  return impl_->Charged(std::move(plan));
}

Plan Core::Drain(std::int64_t now_ms) {
  impl_->read_ahead.reset();
  impl_->now_ms = now_ms;
  Plan plan;
  Status s = impl_->Drain(&plan);
  (void)s;  // a failed drain is retried by the next one; nothing was marked sent
  return impl_->Charged(std::move(plan));
}

Plan Core::ReadSnapshot(std::string_view reader, std::string_view request) {
  impl_->read_ahead.reset();
  return impl_->ReadSnapshot(reader, request);
}

Plan Core::OnClose(std::string_view socket_id) {
  Plan plan;
  impl_->presence.OnClose(socket_id, &plan);
  impl_->sockets.Close(socket_id);
  impl_->mutations.OnClose(socket_id);
  return impl_->Charged(std::move(plan));
}

Plan Core::CommitPresence(std::string_view socket_id, std::string_view user) {
  return impl_->Charged(impl_->presence.Commit(socket_id, user));
}

Plan Core::RefusePresence(std::string_view socket_id, const Status& why) {
  return impl_->Charged(impl_->presence.Refuse(socket_id, why.ok() ? Status::Internal("refused with an OK status") : why));
}

Status Core::RestorePresence(std::string_view socket_id, std::string_view stored) {
  return impl_->presence.Restore(socket_id, stored);
}

Status Core::Housekeep(std::int64_t now_ms) { return impl_->log.Housekeep(now_ms); }

Result<LogState> Core::State() { return impl_->log.State(); }

Result<std::string> Core::StatsJson(bool detail) { return impl_->StatsJson(detail); }

// The sizes are read here, when asked, never on a write: one statement for
// the log and the tables, one more for the recent changes with `detail`.
Result<std::string> Core::Impl::StatsJson(bool detail) {
  SEQSYNC_ASSIGN_OR_RETURN(LogState state, log.State());
  std::string sizes = "SELECT (SELECT COALESCE(SUM(length(tbl)+length(key)+16),0) FROM _sync_changes)";
  for (const auto& [table, c] : schema.collections()) sizes += ", (SELECT COUNT(*) FROM " + QuoteIdent(table) + ")";
  auto read = storage->Exec(sizes, {});
  if (!read.ok()) return read.status();
  if (read->size() != 1 || (*read)[0].size() != schema.collections().size() + 1) {
    return Status::Internal("unexpected shape of the stats' sizes");
  }
  const SqlRow& row = (*read)[0];
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("head");
  w.Uint64(state.head);
  w.Key("floor");
  w.Uint64(state.floor);
  w.Key("log");
  w.StartObject();
  w.Key("rows");
  w.Int64(state.rows);
  // Its entries' table names and keys, plus 16 bytes each for seq and op.
  w.Key("bytes");
  w.Int64(row[0].AsInteger());
  w.EndObject();
  w.Key("tables");
  w.StartObject();
  std::size_t column = 1;
  for (const auto& [table, c] : schema.collections()) {
    w.Key(table.c_str());
    w.Int64(row[column++].AsInteger());
  }
  w.EndObject();
  // Sockets that said hello, and their subscriptions by collection.
  std::size_t live = 0;
  std::map<std::string, std::uint64_t> subs_by_collection;
  for (const auto& [id, sock] : sockets.all()) {
    if (!sock.hello) continue;
    ++live;
    for (const Subscription& s : sock.subs) subs_by_collection[s.collection] += 1;
  }
  w.Key("sockets");
  w.Uint64(live);
  w.Key("subscriptions");
  w.StartObject();
  for (const auto& [collection, n] : subs_by_collection) {
    w.Key(collection.c_str());
    w.Uint64(n);
  }
  w.EndObject();
  w.Key("writesInFlight");
  w.Uint64(mutations.InFlightCount());
  w.Key("lastHousekeepingMs");
  if (log.last_housekeep_ms() < 0) {
    w.Null();
  } else {
    w.Int64(log.last_housekeep_ms());
  }
  w.Key("housekeepingFailures");
  w.Uint64(housekeeping_failures);
  stats.Write(detail, &w);
  if (detail) {
    w.Key("socketList");
    w.StartArray();
    for (const auto& [id, sock] : sockets.all()) {
      if (!sock.hello) continue;
      w.StartObject();
      w.Key("id");
      WriteString(id, &w);
      w.Key("unreadBytes");
      w.Uint64(sock.unread_bytes);
      w.Key("subs");
      w.StartArray();
      for (const Subscription& s : sock.subs) {
        w.StartObject();
        w.Key("id");
        WriteString(s.id, &w);
        w.Key("collection");
        WriteString(s.collection, &w);
        w.Key("where");
        w.RawValue(s.where_json.data(), s.where_json.size(), rapidjson::kObjectType);
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    auto changes = storage->Exec(
        "SELECT seq, tbl, key, op FROM _sync_changes ORDER BY seq DESC LIMIT " + std::to_string(Stats::kRecent), {});
    if (!changes.ok()) return changes.status();
    w.Key("recentChanges");
    w.StartArray();
    for (const SqlRow& c : *changes) {
      if (c.size() != 4) continue;
      w.StartObject();
      w.Key("seq");
      w.Int64(c[0].AsInteger());
      w.Key("table");
      WriteString(c[1].text, &w);
      w.Key("key");
      WriteString(c[2].text, &w);
      w.Key("op");
      w.Int64(c[3].AsInteger());
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

const std::string& Core::epoch() const { return impl_->log.epoch(); }
const Options& Core::options() const { return impl_->options; }

const char* Version() { return kVersion; }

}  // namespace seqsync
