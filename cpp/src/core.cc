// The sync engine: frames in, plans out.
//
// Design. The DO is the only writer, so the change log (_sync_changes) is a
// total order and one number, the seq, locates every client. Three rules keep
// one cursor sound:
//
//  1. Send as soon as it commits. After every write the core drains the log
//     past `drained_` and sends each socket the changes its subscriptions
//     cover, before anything else is sent. So when a frame leaves, the socket
//     already holds every earlier change: an ack at seq S implies the socket
//     has all changes <= S, and a snapshot taken at the head is contiguous
//     with the live stream.
//  2. Units. Frames that must be applied together (a chunked snapshot, a
//     resume) carry "more":true until the last; the client moves its cursor
//     only when a unit ends. A drop inside a unit repeats it on resume.
//  3. Catch-up or snapshot. A resume from `since` is served from the log iff
//     the client is in this epoch and floor <= since <= head, where floor is
//     the highest seq retention pruned. The log is compacted to the latest
//     entry per key, which is all a state-convergence client needs: rows are
//     read at send time, so the latest entry carries the latest state.
//
// Exactly-once. A mutation id is looked up (scoped by identity) before any
// check: an in-flight duplicate waits for the original's outcome, a finished
// one gets the stored frame. The outcome is written inside the mutation's own
// transaction (CommitMutation), so a write and its record commit together.

#include "seqsync/core.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "frame_writer.h"
#include "json_util.h"
#include "schema.h"
#include "seqsync/predicate.h"

namespace seqsync {
namespace {

constexpr char kVersion[] = "seqsync-core 0.1.0 (protocol 1)";

std::string Str(const JsonValue& v) { return std::string(v.GetString(), v.GetStringLength()); }

// An ordered window of a subscription (orderBy/limit/offset), as requested.
// ResolveWindow turns it into a plain predicate: the rows from the window's
// first through its last leading-column value, ties included.
struct Window {
  std::string column;  // the leading orderBy column
  bool descending = false;
  bool nulls_first = true;
  std::int64_t limit = -1;  // -1: no limit
  std::int64_t offset = 0;
};

struct Subscription {
  std::string id;
  std::string collection;
  std::string where_json;  // "null" when absent
  Predicate predicate;
  std::string body;        // as persisted in _sync_subs
  std::optional<Window> window;  // set until ResolveWindow runs
  bool windowed = false;         // its predicate came from a window
};

struct Socket {
  bool hello = false;
  std::vector<Subscription> subs;
  std::size_t in_flight = 0;
  std::size_t in_flight_bytes = 0;  // of the pending mutations' ops and args, held by the shell
  // Token bucket for sub/unsub frames; -1: not started (full).
  double sub_tokens = -1;
  std::int64_t sub_tokens_ms = 0;
  std::size_t sub_bytes = 0;  // bodies of `subs`, see Impl::sub_bytes
};

struct InFlight {
  std::string owner;
  std::vector<std::string> waiters;
  std::string ack;  // set by CommitMutation
  Seq head = 0;     // the head right after its writes, set by CommitMutation
  std::size_t bytes = 0;  // its ops and args, counted against the owner's in-flight bytes
};

// One entry of the change log.
struct Change {
  Seq seq;
  std::string table;
  std::string key;
};

}  // namespace

struct Core::Impl {
  Storage* storage;
  Options options;
  Schema schema;
  std::string epoch;
  Seq drained = 0;
  Seq floor = 0;
  std::int64_t last_mark_ms = -1;
  // When `drained` last advanced, and the highest seq a mark holds; -1: not
  // known in this instance (a wake).
  std::int64_t last_drain_ms = -1;
  Seq marked = 0;
  std::size_t appended_since_compaction = 0;
  std::map<std::string, Socket, std::less<>> sockets;
  std::map<std::string, InFlight, std::less<>> in_flight;
  // Deliveries handed to the shell early by MaybeFlush, in all; a plan
  // index i stands for the (flushed + i)-th delivery of the current call.
  std::uint64_t flushed = 0;
  // Bytes of every socket's subscription bodies. A body costs the heap a few
  // times its size (the where text, its parsed literals), so the per-socket
  // and per-object budgets on it are what bound subscription memory.
  std::size_t sub_bytes = 0;

  Impl(Storage* s, Options o) : storage(s), options(std::move(o)) {}

  // Hands the plan's frames to the shell as soon as they hold
  // kPlanFlushBytes, so one call's output (a hello's snapshots, a big
  // catch-up) never sits whole in the heap.
  void MaybeFlush(Plan* plan) {
    std::size_t bytes = 0;
    for (const Delivery& d : plan->deliveries) bytes += d.frame.size();
    if (bytes < kPlanFlushBytes) return;
    std::size_t sent = 0;
    while (sent < plan->deliveries.size() &&
           storage->Send(plan->deliveries[sent].to, plan->deliveries[sent].frame)) {
      ++sent;
    }
    plan->deliveries.erase(plan->deliveries.begin(),
                           plan->deliveries.begin() + static_cast<std::ptrdiff_t>(sent));
    flushed += sent;
  }

  // Where the next delivery of `plan` will stand, counting flushed ones.
  std::uint64_t Mark(const Plan& plan) const { return flushed + plan.deliveries.size(); }

  // Drops the deliveries added since `mark`; false iff some already left.
  bool Unsend(Plan* plan, std::uint64_t mark) {
    if (flushed > mark) return false;
    plan->deliveries.resize(static_cast<std::size_t>(mark - flushed));
    return true;
  }

  // Takes one sub/unsub token from `sock`'s bucket; false iff it is empty.
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
    return Status::RateLimited("more than " + std::to_string(options.sub_rate_burst) +
                               " sub frames at once or " + std::to_string(options.sub_rate_per_second) +
                               " a second on this socket");
  }

  // A storage failure as the client should see it: SQLite's "too big" and
  // "too long" mean the request was too large, not that the server failed.
  static Status Classified(const Status& s) {
    if (s.code() != Code::kInternal) return s;
    const std::string& m = s.message();
    if (m.find("TOOBIG") != std::string::npos || m.find("too big") != std::string::npos ||
        m.find("too long") != std::string::npos) {
      return Status::TooLarge("the request is too large for the Durable Object's SQLite");
    }
    return s;
  }

  // ---- small storage helpers ----

  Result<Seq> Head() {
    auto r = storage->Exec("SELECT COALESCE(MAX(seq),0) FROM _sync_changes", {});
    if (!r.ok()) return r.status();
    Seq head = static_cast<Seq>((*r)[0][0].AsInteger());
    head = std::max(head, floor);
    if (head > kMaxSeq) return Status::Internal("seq space exhausted (2^53)");
    return head;
  }

  Status SetMeta(const char* name, const SqlValue& value) {
    auto r = storage->Exec(
        "INSERT INTO _sync_meta(name,value) VALUES(?1,?2) "
        "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
        {SqlValue::Text(name), value});
    return r.ok() ? Status::Ok() : r.status();
  }

  std::string LimitsJson() const { return seqsync::LimitsJson(options); }

  // ---- reading the log ----

  // Reads up to `limit` changes with seq in (after, upto], in seq order.
  // With `refresh_schema`, the same statement checks the schema fingerprint
  // (in SQL: only a 0/1 crosses) and the columns are re-read if it changed:
  // rows are read after this.
  Result<std::vector<Change>> ReadChanges(Seq after, Seq upto, std::size_t limit, bool refresh_schema) {
    static const std::string kWithFingerprint =
        "SELECT json_group_array(json_array(seq,tbl,key)), (" + Schema::FingerprintSql(4) +
        ") IS ?5 FROM (SELECT seq,tbl,key FROM _sync_changes WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3)";
    std::vector<SqlValue> params{SqlValue::Integer(static_cast<std::int64_t>(after)),
                                 SqlValue::Integer(static_cast<std::int64_t>(upto)),
                                 SqlValue::Integer(static_cast<std::int64_t>(limit))};
    if (refresh_schema) {
      params.push_back(schema.FingerprintParam());
      params.push_back(schema.FingerprintValue());
    }
    auto r = storage->Exec(
        refresh_schema ? std::string_view(kWithFingerprint)
                       : "SELECT json_group_array(json_array(seq,tbl,key)) FROM (SELECT seq,tbl,key FROM "
                         "_sync_changes WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3)",
        params);
    if (!r.ok()) return r.status();
    if (r->empty() || (*r)[0].size() != (refresh_schema ? 2u : 1u)) return Status::Internal("unexpected change log shape");
    if (refresh_schema && (*r)[0][1].AsInteger() != 1) SEQSYNC_RETURN_IF_ERROR(schema.RefreshIfChanged(storage));
    JsonDocument doc;
    SEQSYNC_RETURN_IF_ERROR(ParseBounded((*r)[0][0].text, 4, &doc));
    std::vector<Change> out;
    if (!doc.IsArray()) return Status::Internal("change log read returned no array");
    out.reserve(doc.Size());
    for (const JsonValue& e : doc.GetArray()) {
      if (!e.IsArray() || e.Size() != 3 || !e[0].IsNumber() || !e[1].IsString() ||
          !e[2].IsString()) {
        return Status::Internal("malformed change log entry");
      }
      out.push_back({static_cast<Seq>(e[0].GetInt64()), Str(e[1]), Str(e[2])});
    }
    return out;
  }

  // Reads the current rows of `keys` in `c`; `doc` owns them, `rows` maps
  // key → row. Absent keys (deleted rows) are absent from the map.
  Status Hydrate(const Collection& c, const std::vector<std::string>& keys, JsonDocument* doc,
                 std::map<std::string, const JsonValue*, std::less<>>* rows) {
    for (std::size_t start = 0; start < keys.size();) {
      std::size_t page = std::min(options.read_page_rows, keys.size() - start);
      rapidjson::StringBuffer sb;
      JsonWriter w(sb);
      w.StartArray();
      for (std::size_t i = start; i < start + page; ++i) WriteString(keys[i], &w);
      w.EndArray();
      auto r = storage->Exec("SELECT json_group_array(" + c.row_sql + ") FROM \"" + c.table +
                                 "\" WHERE \"" + c.pk + "\" IN (SELECT value FROM json_each(?1))",
                             {SqlValue::Text(std::string(sb.GetString(), sb.GetSize()))});
      if (!r.ok()) {
        if (page > 1 && r.status().message().find("too big") != std::string::npos) {
          options.read_page_rows = std::max<std::size_t>(1, page / 2);
          continue;
        }
        return r.status();
      }
      JsonDocument part(&doc->GetAllocator());
      SEQSYNC_RETURN_IF_ERROR(ParseBounded((*r)[0][0].text, kCeilingMaxJsonDepth, &part));
      if (!doc->IsArray()) doc->SetArray();
      for (JsonValue& row : part.GetArray()) doc->PushBack(row, doc->GetAllocator());
      start += page;
    }
    if (!doc->IsArray()) return Status::Ok();
    for (const JsonValue& row : doc->GetArray()) {
      const JsonValue* k = Member(row, c.pk.c_str());
      if (k != nullptr && k->IsString()) rows->emplace(Str(*k), &row);
    }
    return Status::Ok();
  }

  // The changes in (after, upto] for the subscriptions of each group, as
  // frames. `groups` maps a group's socket ids to the subscriptions they
  // share. Frames carry `unit_seq` if non-zero, else each page's last seq,
  // and end a unit per page iff `end_units`.
  struct Group {
    std::vector<std::string> sockets;
    const std::vector<Subscription>* subs;
    std::vector<std::string> frames;
  };

  // Each page's frames go to `plan` as they are built (and may be flushed).
  Status CollectChanges(Seq after, Seq upto, Seq unit_seq, bool end_units,
                        std::vector<Group>* groups, Seq* last_seq, Plan* plan) {
    *last_seq = after;
    for (bool first_page = true;; first_page = false) {
      SEQSYNC_ASSIGN_OR_RETURN(std::vector<Change> page,
                               ReadChanges(*last_seq, upto, 4 * options.read_page_rows, first_page));
      if (page.empty()) break;
      Seq page_seq = page.back().seq;
      *last_seq = page_seq;
      // Keep each key's last entry, in seq order.
      std::map<std::pair<std::string, std::string>, std::size_t> last;
      for (std::size_t i = 0; i < page.size(); ++i) last[{page[i].table, page[i].key}] = i;
      std::vector<const Change*> unique;
      for (std::size_t i = 0; i < page.size(); ++i) {
        if (last[{page[i].table, page[i].key}] == i) unique.push_back(&page[i]);
      }
      // Hydrate the keys of every table someone subscribes to.
      std::set<std::string> wanted_tables;
      for (const Group& g : *groups) {
        for (const Subscription& s : *g.subs) wanted_tables.insert(s.collection);
      }
      std::map<std::string, std::vector<std::string>> keys_by_table;
      for (const Change* c : unique) {
        if (wanted_tables.count(c->table)) keys_by_table[c->table].push_back(c->key);
      }
      std::map<std::string, JsonDocument> docs;
      std::map<std::string, std::map<std::string, const JsonValue*, std::less<>>> rows;
      for (auto& [table, keys] : keys_by_table) {
        const Collection* coll = schema.Find(table);
        if (coll == nullptr) continue;  // unregistered since: nothing to send
        SEQSYNC_RETURN_IF_ERROR(Hydrate(*coll, keys, &docs[table], &rows[table]));
      }
      // Row text is encoded once and shared by every group.
      std::map<const JsonValue*, std::string> row_text;
      Seq frame_seq = unit_seq != 0 ? unit_seq : page_seq;
      for (Group& g : *groups) {
        ChunkedFrames frames("{\"t\":\"changes\",\"seq\":" + std::to_string(frame_seq) +
                                 ",\"changes\":[",
                             options.snapshot_chunk_bytes);
        for (const Change* c : unique) {
          bool covered = false, matched = false;
          const JsonValue* row = nullptr;
          auto table_rows = rows.find(c->table);
          if (table_rows != rows.end()) {
            auto it = table_rows->second.find(c->key);
            if (it != table_rows->second.end()) row = it->second;
          }
          for (const Subscription& s : *g.subs) {
            if (s.collection != c->table) continue;
            covered = true;
            if (row != nullptr && s.predicate.Matches(*row)) matched = true;
          }
          if (!covered) continue;
          std::string entry = "{\"c\":" + JsonQuote(c->table) + ",\"k\":" + JsonQuote(c->key);
          if (matched) {
            auto [it, fresh] = row_text.try_emplace(row);
            if (fresh) it->second = ToJson(*row);
            entry += ",\"row\":" + it->second;
          }
          entry += "}";
          frames.Add(entry);
        }
        frames.Finish(end_units, false, &g.frames);
        for (std::string& f : g.frames) plan->deliveries.push_back({g.sockets, std::move(f)});
        g.frames.clear();
      }
      MaybeFlush(plan);
      if (page_seq >= upto) break;
    }
    return Status::Ok();
  }

  // Sends `to` the snapshot of `sub` at `seq`, as frames added to `plan` as
  // they are read (and flushed as they grow); the last ends the unit iff
  // `ends_unit`. On failure some frames may have left: see Unsend.
  Status Snapshot(const Subscription& sub, Seq seq, bool ends_unit,
                  const std::vector<std::string>& to, Plan* plan) {
    const Collection* c = schema.Find(sub.collection);
    if (c == nullptr) return Status::UnknownCollection("collection '" + sub.collection + "' is not registered");
    std::string literals;
    std::string where = sub.predicate.ToSql(2, &literals);
    // The row is built in the outer query: a JSON value read back from a
    // subquery column loses its JSON subtype and would be quoted as text.
    std::string sql = "SELECT json_group_array(" + c->row_sql +
                      "), MAX(_sync_rowid), COUNT(*) FROM (SELECT rowid AS _sync_rowid, * FROM \"" +
                      c->table + "\" WHERE rowid > ?1 AND " + where + " ORDER BY rowid LIMIT ?3)";
    // A windowed sub's frames name the predicate it resolved to, so the
    // client can resume it later without reloading (docs/protocol.md §5.3).
    std::string resolved = sub.windowed ? ",\"where\":" + sub.where_json : "";
    ChunkedFrames frames("{\"t\":\"snapshot\",\"sub\":" + JsonQuote(sub.id) + ",\"c\":" +
                             JsonQuote(sub.collection) + ",\"seq\":" + std::to_string(seq) +
                             resolved + ",\"rows\":[",
                         options.snapshot_chunk_bytes);
    std::int64_t after = 0;
    std::size_t page = options.read_page_rows;
    while (true) {
      auto r = storage->Exec(sql, {SqlValue::Integer(after), SqlValue::Text(literals),
                                   SqlValue::Integer(static_cast<std::int64_t>(page))});
      if (!r.ok()) {
        if (page > 1 && r.status().message().find("too big") != std::string::npos) {
          page = std::max<std::size_t>(1, page / 2);
          continue;
        }
        return Classified(r.status());
      }
      const SqlRow& row = (*r)[0];
      std::int64_t count = row[2].AsInteger();
      if (count == 0) break;
      const std::string& text = row[0].text;  // "[...]"
      frames.AddChunk(std::string_view(text).substr(1, text.size() - 2));
      std::vector<std::string> ready;
      frames.TakeReady(&ready);
      for (std::string& f : ready) plan->deliveries.push_back({to, std::move(f)});
      MaybeFlush(plan);
      after = row[1].AsInteger();
      if (static_cast<std::size_t>(count) < page) break;  // the table is exhausted
      // Aim each page at one frame's worth of bytes.
      if (text.size() > options.snapshot_chunk_bytes && page > 1) {
        page /= 2;
      } else if (text.size() * 2 < options.snapshot_chunk_bytes && page < 8 * options.read_page_rows) {
        page *= 2;
      }
    }
    std::vector<std::string> last;
    frames.Finish(ends_unit, /*emit_if_empty=*/true, &last);
    for (std::string& f : last) plan->deliveries.push_back({to, std::move(f)});
    return Status::Ok();
  }

  // ---- subscriptions ----

  // Parses a subscription body (a `sub` frame or an entry of hello.subs).
  Result<Subscription> ParseSub(const JsonValue& body) {
    const JsonValue* id = Member(body, "id");
    if (id == nullptr || !id->IsString() || id->GetStringLength() == 0) {
      return Status::InvalidField("sub needs a non-empty string id");
    }
    Subscription s;
    s.id = Str(*id);
    if (s.id.size() > options.max_id_bytes) return Status::TooLarge("sub id is longer than " + std::to_string(options.max_id_bytes) + " bytes");
    const JsonValue* c = Member(body, "c");
    if (c == nullptr || !c->IsString()) return Status::InvalidField("sub needs a string collection c");
    s.collection = Str(*c);
    const Collection* coll = schema.Find(s.collection);
    if (coll == nullptr) return Status::UnknownCollection("collection '" + s.collection.substr(0, 128) + "' is not registered");
    const JsonValue* where = Member(body, "where");
    s.where_json = "null";
    if (where != nullptr && !where->IsNull()) {
      PredicateLimits limits{options.max_predicate_depth, options.max_predicate_nodes,
                             options.max_predicate_literal_bytes, options.max_like_pattern_bytes,
                             options.max_like_wildcards};
      auto p = Predicate::Parse(*where, coll->columns, limits);
      if (!p.ok() && p.status().code() == Code::kUnknownColumn) {
        SEQSYNC_RETURN_IF_ERROR(schema.RefreshIfChanged(storage));
        coll = schema.Find(s.collection);
        p = Predicate::Parse(*where, coll->columns, limits);
      }
      if (!p.ok()) return p.status();
      s.predicate = std::move(p).value();
      s.where_json = ToJson(*where);
    }
    Status windowed = ParseWindow(body, *schema.Find(s.collection), &s);
    if (windowed.code() == Code::kUnknownColumn) {  // maybe an ALTER TABLE ADD COLUMN since we looked
      SEQSYNC_RETURN_IF_ERROR(schema.RefreshIfChanged(storage));
      windowed = ParseWindow(body, *schema.Find(s.collection), &s);
    }
    SEQSYNC_RETURN_IF_ERROR(windowed);
    s.body = "{\"id\":" + JsonQuote(s.id) + ",\"c\":" + JsonQuote(s.collection) +
             ",\"where\":" + s.where_json + "}";
    return s;
  }

  // Reads orderBy/limit/offset into s->window. A window exists only if it
  // can leave rows out: a limit or an offset.
  Status ParseWindow(const JsonValue& body, const Collection& coll, Subscription* s) {
    const JsonValue* order = Member(body, "orderBy");
    const JsonValue* limit = Member(body, "limit");
    const JsonValue* offset = Member(body, "offset");
    auto count = [](const JsonValue* v, const char* name, std::int64_t* out) -> Status {
      if (v == nullptr || v->IsNull()) return Status::Ok();
      if (!v->IsInt64() || v->GetInt64() < 0 || v->GetInt64() > (std::int64_t{1} << 31)) {
        return Status::InvalidField(std::string(name) + " must be an integer from 0 to 2^31");
      }
      *out = v->GetInt64();
      return Status::Ok();
    };
    Window w;
    SEQSYNC_RETURN_IF_ERROR(count(limit, "limit", &w.limit));
    SEQSYNC_RETURN_IF_ERROR(count(offset, "offset", &w.offset));
    bool has_order = order != nullptr && !order->IsNull();
    if (has_order) {
      if (!order->IsArray() || order->Size() == 0) return Status::InvalidField("orderBy must be a non-empty array");
      if (order->Size() > 8) return Status::TooMany("orderBy has more than 8 terms");
      for (rapidjson::SizeType i = 0; i < order->Size(); ++i) {
        const JsonValue& term = (*order)[i];
        const JsonValue* col = Member(term, "col");
        const JsonValue* dir = Member(term, "dir");
        const JsonValue* nulls = Member(term, "nulls");
        if (col == nullptr || !col->IsString()) return Status::InvalidField("an orderBy term needs a string col");
        std::string name = Str(*col);
        if (std::find(coll.columns.begin(), coll.columns.end(), name) == coll.columns.end()) {
          return Status::UnknownColumn("unknown orderBy column '" + name.substr(0, 128) + "'");
        }
        bool desc = false;
        if (dir != nullptr && !dir->IsNull()) {
          if (!dir->IsString() || (View(*dir) != "asc" && View(*dir) != "desc")) {
            return Status::InvalidField("orderBy dir must be \"asc\" or \"desc\"");
          }
          desc = View(*dir) == "desc";
        }
        // SQLite's default: NULLs sort as the smallest value.
        bool nulls_first = !desc;
        if (nulls != nullptr && !nulls->IsNull()) {
          if (!nulls->IsString() || (View(*nulls) != "first" && View(*nulls) != "last")) {
            return Status::InvalidField("orderBy nulls must be \"first\" or \"last\"");
          }
          nulls_first = View(*nulls) == "first";
        }
        if (i == 0) {
          w.column = name;
          w.descending = desc;
          w.nulls_first = nulls_first;
        }
      }
    }
    if (w.limit < 0 && w.offset == 0) return Status::Ok();  // every matching row
    if (!has_order) w.column = coll.pk;  // a stable order for a bare limit
    s->window = w;
    return Status::Ok();
  }

  // Replaces s->window by the predicate it selects now: rows from the
  // window's first leading value through its last, ties included, so that
  // live changes move rows in and out of the same range (docs/protocol.md
  // §4.2). A BLOB at either end leaves that end open (a superset is safe).
  Status ResolveWindow(Subscription* s) {
    if (!s->window) return Status::Ok();
    const Window w = *s->window;
    const Collection* coll = schema.Find(s->collection);
    if (coll == nullptr) return Status::UnknownCollection("collection '" + s->collection + "' is not registered");
    std::string literals;
    std::string where = s->predicate.ToSql(1, &literals);
    std::string col = "\"" + w.column + "\"";
    std::string sql = "SELECT typeof(" + col + "), " + col + " FROM \"" + coll->table + "\" WHERE " +
                      where + " ORDER BY " + col + (w.descending ? " DESC" : " ASC") +
                      (w.nulls_first ? " NULLS FIRST" : " NULLS LAST") + " LIMIT 1 OFFSET ?2";
    // The leading value at `position`, or nothing past the end.
    auto value_at = [&](std::int64_t position, bool* found, bool* blob, Predicate::Literal* out) -> Status {
      auto r = storage->Exec(sql, {SqlValue::Text(literals), SqlValue::Integer(position)});
      if (!r.ok()) return Classified(r.status());
      *found = !r->empty();
      if (!*found) return Status::Ok();
      const SqlRow& row = (*r)[0];
      if (row.size() != 2) return Status::Internal("unexpected window bound shape");
      *blob = row[0].text == "blob";
      out->kind = Predicate::Literal::Kind::kNull;
      if (row[1].kind == SqlValue::Kind::kInteger) {
        out->kind = Predicate::Literal::Kind::kNumber;
        out->is_int = true;
        out->integer = row[1].integer;
      } else if (row[1].kind == SqlValue::Kind::kReal) {
        out->kind = Predicate::Literal::Kind::kNumber;
        out->is_int = false;
        out->real = row[1].real;
        // JSON has no ±Inf: like a BLOB, the bound is left off (a superset).
        if (!std::isfinite(out->real)) *blob = true;
      } else if (row[1].kind == SqlValue::Kind::kText) {
        out->kind = Predicate::Literal::Kind::kText;
        out->text = row[1].text;
      }
      return Status::Ok();
    };
    Predicate resolved = s->predicate;
    bool empty = w.limit == 0;
    Predicate::SortBound bound{w.column, w.descending, w.nulls_first, true, {}};
    bool found = false, blob = false;
    if (!empty && w.offset > 0) {
      SEQSYNC_RETURN_IF_ERROR(value_at(w.offset, &found, &blob, &bound.value));
      empty = !found;
      if (found && !blob) {
        bound.through = false;
        resolved = resolved.WithBound(bound);
      }
    }
    if (!empty && w.limit > 0) {
      SEQSYNC_RETURN_IF_ERROR(value_at(w.offset + w.limit - 1, &found, &blob, &bound.value));
      if (found && !blob) {
        bound.through = true;
        resolved = resolved.WithBound(bound);
      }
    }
    if (empty) resolved = Predicate::None(w.column);
    s->predicate = std::move(resolved);
    s->where_json = s->predicate.ToIr();
    s->body = "{\"id\":" + JsonQuote(s->id) + ",\"c\":" + JsonQuote(s->collection) +
              ",\"where\":" + s->where_json + "}";
    s->window.reset();
    s->windowed = true;
    return Status::Ok();
  }

  Status PersistSub(std::string_view socket_id, const Subscription& s) {
    auto r = storage->Exec("INSERT OR REPLACE INTO _sync_subs(socket,sub,body) VALUES(?1,?2,?3)",
                           {SqlValue::Text(std::string(socket_id)), SqlValue::Text(s.id),
                            SqlValue::Text(s.body)});
    return r.ok() ? Status::Ok() : r.status();
  }

  Status TooManySubs() const {
    return Status::TooMany("a socket may hold at most " + std::to_string(options.max_subs_per_socket) + " subscriptions");
  }

  // True iff `sock` has room for a subscription `id` (new, or replacing one).
  bool HasRoomFor(const Socket& sock, std::string_view id) const {
    return sock.subs.size() < options.max_subs_per_socket ||
           std::any_of(sock.subs.begin(), sock.subs.end(), [&](const Subscription& x) { return x.id == id; });
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

  void Account(Socket* sock, std::size_t added, std::size_t removed) {
    sock->sub_bytes = sock->sub_bytes + added - removed;
    sub_bytes = sub_bytes + added - removed;
  }

  // Adds or replaces `s` on `sock`; kTooMany past the cap or the object's
  // budget, kTooLarge past the socket's.
  Status AddSub(std::string_view socket_id, Socket* sock, Subscription s) {
    auto it = std::find_if(sock->subs.begin(), sock->subs.end(),
                           [&](const Subscription& x) { return x.id == s.id; });
    if (it == sock->subs.end() && sock->subs.size() >= options.max_subs_per_socket) return TooManySubs();
    std::size_t replaced = it == sock->subs.end() ? 0 : it->body.size();
    if (sock->sub_bytes - replaced + s.body.size() > options.max_sub_bytes_per_socket) {
      return Status::TooLarge("this socket's subscriptions would hold more than " +
                              std::to_string(options.max_sub_bytes_per_socket) + " bytes of where");
    }
    if (sub_bytes - replaced + s.body.size() > kMaxSubBytesPerObject) {
      return Status::TooMany("this Durable Object holds " + std::to_string(sub_bytes) +
                             " bytes of subscriptions; the limit is " + std::to_string(kMaxSubBytesPerObject));
    }
    SEQSYNC_RETURN_IF_ERROR(PersistSub(socket_id, s));
    Account(sock, s.body.size(), replaced);
    if (it != sock->subs.end()) *it = std::move(s);
    else sock->subs.push_back(std::move(s));
    return Status::Ok();
  }

  // ---- drain ----

  // Groups sockets by their subscription set, so each group's frames are
  // encoded once (the common case: every socket of a room holds the same).
  std::vector<Group> GroupSockets() {
    std::map<std::string, std::size_t> index;
    std::vector<Group> groups;
    for (const auto& [id, sock] : sockets) {
      if (!sock.hello || sock.subs.empty()) continue;
      std::vector<std::string> parts;
      for (const Subscription& s : sock.subs) parts.push_back(s.collection + '\x1f' + s.where_json);
      std::sort(parts.begin(), parts.end());
      parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
      std::string signature;
      for (const std::string& p : parts) signature += p + '\x1e';
      auto [it, fresh] = index.try_emplace(signature, groups.size());
      if (fresh) groups.push_back({{}, &sock.subs, {}});
      groups[it->second].sockets.push_back(id);
    }
    return groups;
  }

  // `known_head`: the head if the caller knows it (a mutation that just
  // committed), which saves reading it again.
  // Either way the columns are fresh afterwards (ADD COLUMN flows), which
  // the snapshots that callers send next rely on.
  Status DrainInto(std::int64_t now_ms, Plan* plan, Seq known_head = 0) {
    Seq head = known_head;
    if (head == 0) {
      SEQSYNC_ASSIGN_OR_RETURN(head, Head());
    }
    if (head <= drained) {
      SEQSYNC_RETURN_IF_ERROR(schema.RefreshIfChanged(storage));
    } else {
      std::vector<Group> groups = GroupSockets();
      Seq last = drained;
      SEQSYNC_RETURN_IF_ERROR(CollectChanges(drained, head, 0, true, &groups, &last, plan));
      appended_since_compaction += static_cast<std::size_t>(head - drained);
      // Persisted by housekeeping, not here: after a wake a stale watermark
      // only re-sends changes, which clients apply idempotently.
      drained = head;
      last_drain_ms = now_ms;
    }
    return MaybeHousekeep(now_ms, head);
  }

  // ---- housekeeping ----

  std::int64_t MarkIntervalMs() const {
    return std::clamp<std::int64_t>(options.retention_ms / 64, 0, 60000);
  }

  Status MaybeHousekeep(std::int64_t now_ms, Seq head) {
    if (last_mark_ms < 0 || now_ms - last_mark_ms >= MarkIntervalMs()) {
      auto r = storage->Exec("INSERT OR REPLACE INTO _sync_marks(seq,ts) VALUES(?1,?2)",
                             {SqlValue::Integer(static_cast<std::int64_t>(head)), SqlValue::Integer(now_ms)});
      if (!r.ok()) return r.status();
      last_mark_ms = now_ms;
      marked = std::max(marked, head);
      return Housekeep(now_ms);
    }
    if (appended_since_compaction >= options.compact_every) return Housekeep(now_ms);
    return Status::Ok();
  }

  Status Housekeep(std::int64_t now_ms) {
    SEQSYNC_RETURN_IF_ERROR(SetMeta("drained", SqlValue::Integer(static_cast<std::int64_t>(drained))));
    // Marks are laid at most once an interval, so a burst that ends inside
    // one is covered by no mark, and would never be pruned until a later
    // write laid one. The last drain is a mark too: every entry up to
    // `drained` had committed by `last_drain_ms`.
    if (last_drain_ms >= 0 && drained > marked) {
      auto r = storage->Exec("INSERT OR REPLACE INTO _sync_marks(seq,ts) VALUES(?1,?2)",
                             {SqlValue::Integer(static_cast<std::int64_t>(drained)), SqlValue::Integer(last_drain_ms)});
      if (!r.ok()) return r.status();
      marked = drained;
    }
    // Compaction: keep each key's latest entry. The head entry is the latest
    // for its key, so MAX(seq) never drops.
    auto compact = storage->Exec(
        "DELETE FROM _sync_changes WHERE seq NOT IN "
        "(SELECT MAX(seq) FROM _sync_changes GROUP BY tbl, key)", {});
    if (!compact.ok()) return compact.status();
    appended_since_compaction = 0;
    // Retention: the newest mark older than the window gives the cut.
    std::int64_t cutoff = now_ms - options.retention_ms;
    auto cut = storage->Exec("SELECT COALESCE(MAX(seq),0) FROM _sync_marks WHERE ts < ?1",
                             {SqlValue::Integer(cutoff)});
    if (!cut.ok()) return cut.status();
    Seq cut_seq = static_cast<Seq>((*cut)[0][0].AsInteger());
    if (cut_seq > floor) {
      // Defensive: never prune past what was sent; undrained entries must
      // still reach live sockets.
      cut_seq = std::min(cut_seq, drained);
      if (cut_seq > floor) {
        auto del = storage->Exec("DELETE FROM _sync_changes WHERE seq <= ?1",
                                 {SqlValue::Integer(static_cast<std::int64_t>(cut_seq))});
        if (!del.ok()) return del.status();
        floor = cut_seq;
        SEQSYNC_RETURN_IF_ERROR(SetMeta("floor", SqlValue::Integer(static_cast<std::int64_t>(floor))));
      }
    }
    auto marks = storage->Exec("DELETE FROM _sync_marks WHERE seq < ?1",
                               {SqlValue::Integer(static_cast<std::int64_t>(floor))});
    if (!marks.ok()) return marks.status();
    auto dedup = storage->Exec("DELETE FROM _sync_mutations WHERE ts < ?1",
                               {SqlValue::Integer(now_ms - options.dedup_retention_ms)});
    return dedup.ok() ? Status::Ok() : dedup.status();
  }

  // ---- mutations ----

  static std::string DedupKey(std::string_view scope, std::string_view id) {
    std::string k(scope);
    k += '\x1f';
    k += id;
    return k;
  }

  Status RecordOutcome(std::string_view scope, std::string_view id, const std::string& frame,
                       std::int64_t now_ms) {
    auto r = storage->Exec(
        "INSERT OR REPLACE INTO _sync_mutations(scope,id,reply,ts) VALUES(?1,?2,?3,?4)",
        {SqlValue::Text(std::string(scope)), SqlValue::Text(std::string(id)),
         SqlValue::Text(frame), SqlValue::Integer(now_ms)});
    return r.ok() ? Status::Ok() : r.status();
  }

  // Validates the ops of a `mut`, appending their normalised form to `w`.
  Status ValidateOps(const JsonValue& ops, JsonWriter* w) {
    if (!ops.IsArray() || ops.Size() == 0) return Status::InvalidField("mut needs a non-empty ops array");
    if (ops.Size() > options.max_ops_per_mutation) {
      return Status::TooMany("mutation has " + std::to_string(ops.Size()) + " ops; the limit is " +
                             std::to_string(options.max_ops_per_mutation));
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
      const Collection* coll = schema.Find(View(*c));
      if (coll == nullptr) return Status::UnknownCollection(where + "collection '" + Str(*c).substr(0, 128) + "' is not registered");
      if (kind == nullptr || !kind->IsString() ||
          (View(*kind) != "insert" && View(*kind) != "update" && View(*kind) != "delete")) {
        return Status::InvalidField(where + "op must be \"insert\", \"update\" or \"delete\"");
      }
      std::string op_name = Str(*kind);
      if (!coll->ops.count(op_name)) {
        return Status::NoHandler(where + "no mutation handler for '" + coll->table + ":" + op_name + "'");
      }
      if (k == nullptr || !k->IsString()) return Status::InvalidKey(where + "key k must be a string");
      if (k->GetStringLength() == 0) return Status::InvalidKey(where + "key k must be a non-empty string");
      if (k->GetStringLength() > options.max_key_bytes) {
        return Status::TooLarge(where + "key is longer than " + std::to_string(options.max_key_bytes) + " bytes");
      }
      bool needs_cols = op_name != "delete";
      if (needs_cols && (cols == nullptr || !cols->IsObject())) {
        return Status::InvalidField(where + op_name + " needs a cols object");
      }
      if (!needs_cols && cols != nullptr && !cols->IsNull()) {
        return Status::InvalidField(where + "delete takes no cols");
      }
      w->StartObject();
      w->Key("c"); WriteString(coll->table, w);
      w->Key("op"); WriteString(op_name, w);
      w->Key("k"); WriteValue(*k, w);
      if (needs_cols) {
        w->Key("cols");
        w->StartObject();
        // Indexed, not range-for: RapidJSON 1.1's iterator != is ambiguous in C++20.
        for (rapidjson::SizeType ci = 0; ci < cols->MemberCount(); ++ci) {
          const auto& m = cols->MemberBegin()[ci];
          std::string_view name = View(m.name);
          if (std::find(coll->columns.begin(), coll->columns.end(), name) == coll->columns.end()) {
            if (!refreshed) {  // maybe an ALTER TABLE ADD COLUMN since we looked
              SEQSYNC_RETURN_IF_ERROR(schema.RefreshIfChanged(storage));
              refreshed = true;
              coll = schema.Find(View(*c));
            }
            if (std::find(coll->columns.begin(), coll->columns.end(), name) == coll->columns.end()) {
              return Status::UnknownColumn(where + "unknown column '" + std::string(name.substr(0, 128)) +
                                           "' in '" + coll->table + "'");
            }
          }
          const JsonValue& v = m.value;
          if (name == coll->pk && !(v.IsString() && View(v) == View(*k))) {
            return Status::InvalidKey(where + "cols." + coll->pk + " must equal the key k");
          }
          w->Key(m.name.GetString(), m.name.GetStringLength());
          if (v.IsObject() || v.IsArray()) {
            std::string text = ToJson(v);  // stored as JSON text
            if (text.size() > options.max_value_bytes) {
              return Status::TooLarge(where + "value of '" + std::string(name) + "' exceeds " +
                                      std::to_string(options.max_value_bytes) + " bytes");
            }
            WriteString(text, w);
          } else if (v.IsBool()) {
            w->Int(v.GetBool() ? 1 : 0);  // SQLite has no booleans
          } else {
            if (v.IsString() && v.GetStringLength() > options.max_value_bytes) {
              return Status::TooLarge(where + "value of '" + std::string(name) + "' exceeds " +
                                      std::to_string(options.max_value_bytes) + " bytes");
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

  // Rejects mutation `id` before it ran. A rejection is not recorded: it
  // applied nothing, so a replay may safely be judged again, and a hostile
  // client cannot grow _sync_mutations with refusals.
  Plan RejectEarly(std::string_view socket_id, std::string_view id, const Status& why) {
    Plan plan;
    plan.deliveries.push_back({{std::string(socket_id)}, RejectFrame(id, why)});
    return plan;
  }

  Plan OnMutation(std::string_view socket_id, Socket* sock, std::string_view scope,
                  const JsonValue& frame, bool is_call) {
    Plan plan;
    const JsonValue* id = Member(frame, "id");
    if (id == nullptr || !id->IsString() || id->GetStringLength() == 0) {
      plan.deliveries.push_back({{std::string(socket_id)},
                                 ErrorFrame(Status::InvalidField(std::string(is_call ? "call" : "mut") +
                                                                 " needs a non-empty string id"))});
      return plan;
    }
    if (id->GetStringLength() > options.max_id_bytes) {
      plan.deliveries.push_back({{std::string(socket_id)},
                                 ErrorFrame(Status::TooLarge("mutation id is longer than " +
                                                             std::to_string(options.max_id_bytes) + " bytes"))});
      return plan;
    }
    std::string mid = Str(*id);
    std::string key = DedupKey(scope, mid);
    // 1. Exactly once: an in-flight or finished id wins over the payload.
    if (auto it = in_flight.find(key); it != in_flight.end()) {
      std::vector<std::string>& waiters = it->second.waiters;
      bool waiting = it->second.owner == socket_id ||
                     std::find(waiters.begin(), waiters.end(), socket_id) != waiters.end();
      if (waiting) return plan;  // it gets the one answer already due
      if (waiters.size() >= kMaxWaitersPerMutation) {
        // Not a reject: the outcome is still unknown. The client may retry.
        plan.deliveries.push_back({{std::string(socket_id)},
                                   ErrorFrame(Status::TooMany("mutation '" + mid + "' already has " +
                                                              std::to_string(kMaxWaitersPerMutation) +
                                                              " sockets waiting on it"))});
        return plan;
      }
      waiters.emplace_back(socket_id);
      return plan;
    }
    auto stored = storage->Exec("SELECT reply FROM _sync_mutations WHERE scope=?1 AND id=?2",
                                {SqlValue::Text(std::string(scope)), SqlValue::Text(mid)});
    if (!stored.ok()) {
      // The outcome is unknown (it may have committed): an error, never a reject.
      plan.deliveries.push_back({{std::string(socket_id)}, ErrorFrame(stored.status())});
      return plan;
    }
    if (!stored->empty()) {
      plan.deliveries.push_back({{std::string(socket_id)}, (*stored)[0][0].text});
      return plan;
    }
    // 2. Per-socket cap: transient, so not recorded.
    if (sock->in_flight >= options.max_in_flight_per_socket) {
      return RejectEarly(socket_id, mid,
                         Status::TooMany("more than " + std::to_string(options.max_in_flight_per_socket) +
                                         " mutations in flight on this socket"));
    }
    PendingMutation pending;
    pending.id = mid;
    if (is_call) {
      const JsonValue* name = Member(frame, "name");
      if (name == nullptr || !name->IsString() || name->GetStringLength() == 0) {
        return RejectEarly(socket_id, mid, Status::InvalidField("call needs a non-empty string name"));
      }
      if (!schema.HasCommand(View(*name))) {
        return RejectEarly(socket_id, mid, Status::NoHandler("unknown command '" + Str(*name).substr(0, 128) + "'"));
      }
      pending.command = Str(*name);
      const JsonValue* args = Member(frame, "args");
      pending.args_json = args == nullptr ? "null" : ToJson(*args);
      pending.ops_json = "[]";
    } else {
      const JsonValue* ops = Member(frame, "ops");
      rapidjson::StringBuffer sb;
      JsonWriter w(sb);
      Status valid = ops == nullptr ? Status::InvalidField("mut needs a non-empty ops array") : ValidateOps(*ops, &w);
      if (!valid.ok()) return RejectEarly(socket_id, mid, valid);
      pending.ops_json.assign(sb.GetString(), sb.GetSize());
    }
    // The shell holds the pending ops (parsed, a few times their size)
    // while authorize awaits, so their bytes are bounded per socket too.
    std::size_t bytes = pending.ops_json.size() + pending.args_json.size();
    if (sock->in_flight > 0 && sock->in_flight_bytes + bytes > options.max_in_flight_bytes_per_socket) {
      return RejectEarly(socket_id, mid,
                         Status::TooMany("more than " + std::to_string(options.max_in_flight_bytes_per_socket) +
                                         " bytes of mutations in flight on this socket"));
    }
    InFlight entry{std::string(socket_id), {}, {}};
    entry.bytes = bytes;
    in_flight[key] = std::move(entry);
    ++sock->in_flight;
    sock->in_flight_bytes += bytes;
    plan.mutation = std::move(pending);
    return plan;
  }

  // Forgets the in-flight mutation `key`; returns its owner and waiters.
  std::vector<std::string> Forget(const std::string& key) {
    auto it = in_flight.find(key);
    if (it == in_flight.end()) return {};
    std::vector<std::string> to;
    to.push_back(it->second.owner);
    for (const std::string& w : it->second.waiters) {
      if (std::find(to.begin(), to.end(), w) == to.end()) to.push_back(w);
    }
    if (auto s = sockets.find(it->second.owner); s != sockets.end() && s->second.in_flight > 0) {
      --s->second.in_flight;
      s->second.in_flight_bytes -= std::min(s->second.in_flight_bytes, it->second.bytes);
    }
    in_flight.erase(it);
    return to;
  }

  // Sends `frame` to the mutation's owner and waiters, and forgets it.
  void Settle(const std::string& key, const std::string& frame, Plan* plan) {
    std::vector<std::string> to = Forget(key);
    if (!to.empty()) plan->deliveries.push_back({std::move(to), frame});
  }

  // ---- hello, sub, unsub ----

  Plan OnHello(std::string_view socket_id, Socket* sock, const JsonValue& frame, std::int64_t now_ms) {
    Plan plan;
    std::vector<std::string> to{std::string(socket_id)};
    if (sock->hello) {
      plan.deliveries.push_back({to, ErrorFrame(Status::ProtocolOrder("hello was already received on this socket"))});
      return plan;
    }
    const JsonValue* v = Member(frame, "v");
    if (v == nullptr || !v->IsInt() || v->GetInt() != kProtocolVersion) {
      plan.deliveries.push_back({to, ErrorFrame(Status::VersionMismatch(
                                         "this server speaks seqsync protocol " + std::to_string(kProtocolVersion) +
                                         "; upgrade the client"))});
      plan.close_code = 4400;
      plan.close_reason = "protocol version mismatch";
      return plan;
    }
    const JsonValue* epoch_v = Member(frame, "epoch");
    const JsonValue* since_v = Member(frame, "since");
    const JsonValue* subs_v = Member(frame, "subs");
    if ((epoch_v != nullptr && !epoch_v->IsString() && !epoch_v->IsNull()) ||
        (since_v != nullptr && !since_v->IsNull() && !IsSafeUnsigned(*since_v)) ||
        (subs_v != nullptr && !subs_v->IsArray() && !subs_v->IsNull())) {
      plan.deliveries.push_back({to, ErrorFrame(Status::InvalidField(
                                         "hello: epoch must be a string, since a non-negative integer, subs an array"))});
      return plan;
    }
    // Before any entry is parsed or resolved: every entry costs a snapshot,
    // so the list is held to the cap and each id may appear once.
    if (subs_v != nullptr && subs_v->IsArray()) {
      if (subs_v->Size() > options.max_subs_per_socket) {
        plan.deliveries.push_back({to, ErrorFrame(Status::TooMany(
                                           "hello has " + std::to_string(subs_v->Size()) + " subs; " +
                                           TooManySubs().message()))});
        return plan;
      }
      std::set<std::string_view> ids;
      for (const JsonValue& body : subs_v->GetArray()) {
        const JsonValue* sid = Member(body, "id");
        if (sid != nullptr && sid->IsString() && !ids.insert(View(*sid)).second) {
          plan.deliveries.push_back({to, ErrorFrame(Status::InvalidField(
                                             "hello lists subscription '" + Str(*sid).substr(0, 128) + "' twice"))});
          return plan;
        }
      }
    }
    // Bring every socket up to the head first, so the resume below starts
    // from a head this socket is contiguous with.
    Status drained_ok = DrainInto(now_ms, &plan);
    if (!drained_ok.ok()) {
      plan.deliveries.push_back({to, ErrorFrame(drained_ok)});
      return plan;
    }
    auto head_r = Head();
    if (!head_r.ok()) {
      plan.deliveries.push_back({to, ErrorFrame(head_r.status())});
      return plan;
    }
    Seq head = *head_r;
    sock->hello = true;
    auto persisted = storage->Exec("INSERT OR IGNORE INTO _sync_sockets(socket) VALUES(?1)",
                                   {SqlValue::Text(std::string(socket_id))});
    (void)persisted;  // losing it only costs a re-hello after hibernation
    plan.deliveries.push_back({to, WelcomeFrame(epoch, head, LimitsJson())});

    Seq since = 0;
    if (since_v != nullptr && !since_v->IsNull()) {
      since = since_v->IsUint64() ? since_v->GetUint64() : static_cast<Seq>(since_v->GetDouble());
    }
    bool same_epoch = epoch_v != nullptr && epoch_v->IsString() && View(*epoch_v) == epoch;
    bool can_resume = same_epoch && since_v != nullptr && !since_v->IsNull() && since >= floor && since <= head;

    std::vector<Subscription> resume_subs;
    std::vector<Subscription> snapshot_subs;
    if (subs_v != nullptr && subs_v->IsArray()) {
      for (const JsonValue& body : subs_v->GetArray()) {
        auto s = ParseSub(body);
        const JsonValue* sid = Member(body, "id");
        if (!s.ok()) {
          plan.deliveries.push_back(
              {to, SubErrorFrame(sid != nullptr && sid->IsString() ? View(*sid) : "", s.status())});
          continue;
        }
        // A window is resolved against the rows as they are now, so it
        // always starts from a snapshot; its resolved form resumes.
        bool fresh_window = s->window.has_value();
        Status resolved = ResolveWindow(&*s);
        if (!resolved.ok()) {
          plan.deliveries.push_back({to, SubErrorFrame(s->id, resolved)});
          continue;
        }
        Status added = AddSub(socket_id, sock, *s);
        if (!added.ok()) {
          plan.deliveries.push_back({to, SubErrorFrame(s->id, added)});
          continue;
        }
        const JsonValue* resume = Member(body, "resume");
        bool wants_resume = resume != nullptr && resume->IsBool() && resume->GetBool() && !fresh_window;
        (wants_resume && can_resume ? resume_subs : snapshot_subs).push_back(std::move(s).value());
      }
    }
    // The resume unit: catch-up, snapshots, then synced. Its frames leave
    // as they are built; if one part fails after some left, the socket is
    // closed, which drops the half unit on the client (it resumes later).
    if (!resume_subs.empty() && since < head) {
      std::vector<Group> one{{{std::string(socket_id)}, &resume_subs, {}}};
      Seq last = since;
      std::uint64_t mark = Mark(plan);
      Status s = CollectChanges(since, head, head, /*end_units=*/false, &one, &last, &plan);
      if (!s.ok()) {
        if (!Unsend(&plan, mark)) return CloseMidUnit(std::move(plan));
        plan.deliveries.push_back({to, ErrorFrame(s)});
        return plan;
      }
    }
    for (const Subscription& s : snapshot_subs) {
      std::uint64_t mark = Mark(plan);
      Status st = Snapshot(s, head, /*ends_unit=*/false, to, &plan);
      if (st.ok()) continue;
      // Nothing is held for a refused subscription: it gets no changes.
      RemoveSub(socket_id, sock, s.id);
      if (!Unsend(&plan, mark)) return CloseMidUnit(std::move(plan));
      plan.deliveries.push_back({to, SubErrorFrame(s.id, st)});
    }
    plan.deliveries.push_back({to, SyncedFrame(head)});
    return plan;
  }

  // A unit failed after some of its frames left: close the sender, so the
  // client drops the half unit and resumes from its cursor.
  static Plan CloseMidUnit(Plan plan) {
    plan.close_code = 1011;
    plan.close_reason = "could not finish sending; reconnect to resume";
    return plan;
  }

  Plan OnSub(std::string_view socket_id, Socket* sock, const JsonValue& frame, std::int64_t now_ms) {
    Plan plan;
    std::vector<std::string> to{std::string(socket_id)};
    const JsonValue* sid = Member(frame, "id");
    std::string_view sid_text = sid != nullptr && sid->IsString() ? View(*sid) : "";
    if (!TakeSubToken(sock, now_ms)) {
      plan.deliveries.push_back({to, SubErrorFrame(sid_text.substr(0, options.max_id_bytes), RateLimited())});
      return plan;
    }
    // The cap is checked before the where is parsed or any row is read.
    if (!HasRoomFor(*sock, sid_text)) {
      plan.deliveries.push_back({to, SubErrorFrame(sid_text.substr(0, options.max_id_bytes), TooManySubs())});
      return plan;
    }
    auto s = ParseSub(frame);
    if (!s.ok()) {
      plan.deliveries.push_back({to, SubErrorFrame(sid_text.substr(0, options.max_id_bytes), s.status())});
      return plan;
    }
    Status drained_ok = DrainInto(now_ms, &plan);
    auto head = Head();
    if (!drained_ok.ok() || !head.ok()) {
      plan.deliveries.push_back({to, SubErrorFrame(s->id, drained_ok.ok() ? head.status() : drained_ok)});
      return plan;
    }
    Status resolved = ResolveWindow(&*s);
    if (!resolved.ok()) {
      plan.deliveries.push_back({to, SubErrorFrame(s->id, resolved)});
      return plan;
    }
    // Held before its snapshot is read, so a refusal sends nothing; dropped
    // again if the snapshot fails.
    std::string sub_id = s->id;
    Subscription sub = *s;
    Status added = AddSub(socket_id, sock, std::move(s).value());
    if (!added.ok()) {
      plan.deliveries.push_back({to, SubErrorFrame(sub_id, added)});
      return plan;
    }
    std::uint64_t mark = Mark(plan);
    Status snap = Snapshot(sub, *head, /*ends_unit=*/true, to, &plan);
    if (!snap.ok()) {
      RemoveSub(socket_id, sock, sub_id);
      if (!Unsend(&plan, mark)) return CloseMidUnit(std::move(plan));
      plan.deliveries.push_back({to, SubErrorFrame(sub_id, snap)});
    }
    return plan;
  }

  Plan OnUnsub(std::string_view socket_id, Socket* sock, const JsonValue& frame) {
    Plan plan;
    const JsonValue* id = Member(frame, "id");
    if (id == nullptr || !id->IsString()) {
      plan.deliveries.push_back({{std::string(socket_id)}, ErrorFrame(Status::InvalidField("unsub needs a string id"))});
      return plan;
    }
    // Not rate limited: it only frees what a rate-limited sub took, and an
    // unknown id runs no statement.
    RemoveSub(socket_id, sock, View(*id));
    return plan;
  }
};

Core::Core(Storage* storage, Options options)
    : impl_(std::make_unique<Impl>(storage, std::move(options))) {}

Core::~Core() = default;

Status Core::Register(std::string_view registration_json, std::string_view fresh_epoch) {
  JsonDocument doc;
  SEQSYNC_RETURN_IF_ERROR(ParseBounded(registration_json, 8, &doc));
  SEQSYNC_RETURN_IF_ERROR(impl_->schema.Register(impl_->storage, doc));
  // What a wake needs of the cursor state, in one read.
  auto state = impl_->storage->Exec(
      "SELECT (SELECT value FROM _sync_meta WHERE name='epoch'), (SELECT value FROM _sync_meta WHERE name='floor'),"
      " (SELECT value FROM _sync_meta WHERE name='drained'), (SELECT COALESCE(MAX(seq),0) FROM _sync_changes)",
      {});
  if (!state.ok()) return state.status();
  if (state->size() != 1 || (*state)[0].size() != 4) return Status::Internal("unexpected cursor state shape");
  const SqlValue& epoch = (*state)[0][0];
  const SqlValue& drained = (*state)[0][2];
  if (epoch.kind != SqlValue::Kind::kText || epoch.text.empty()) {
    if (fresh_epoch.empty()) return Status::InvalidField("fresh_epoch must not be empty");
    impl_->epoch.assign(fresh_epoch);
    SEQSYNC_RETURN_IF_ERROR(impl_->SetMeta("epoch", SqlValue::Text(impl_->epoch)));
  } else {
    impl_->epoch = epoch.text;
  }
  impl_->floor = static_cast<Seq>((*state)[0][1].AsInteger());
  Seq head = std::max(static_cast<Seq>((*state)[0][3].AsInteger()), impl_->floor);
  if (head > kMaxSeq) return Status::Internal("seq space exhausted (2^53)");
  // A fresh DO has sent nothing; anything past the stored watermark was
  // committed but maybe not sent before an eviction, and goes out next drain.
  impl_->drained = drained.is_null() ? head : std::min<Seq>(static_cast<Seq>(drained.AsInteger()), head);
  if (drained.is_null()) {
    SEQSYNC_RETURN_IF_ERROR(impl_->SetMeta("drained", SqlValue::Integer(static_cast<std::int64_t>(head))));
  }
  return Status::Ok();
}

Status Core::RestoreSockets(const std::vector<std::string>& live, Plan* refusals) {
  if (!impl_->schema.registered()) return Status::NotRegistered("call registerSync before restoring sockets");
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartArray();
  for (const std::string& id : live) WriteString(id, &w);
  w.EndArray();
  SqlValue ids = SqlValue::Text(std::string(sb.GetString(), sb.GetSize()));
  Storage* st = impl_->storage;
  // One read: how many rows belong to sockets that closed while we slept,
  // and the stored sockets and subscriptions.
  auto stored = st->Exec(
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
    auto del_subs = st->Exec("DELETE FROM _sync_subs WHERE socket NOT IN (SELECT value FROM json_each(?1))", {ids});
    if (!del_subs.ok()) return del_subs.status();
    auto del_socks = st->Exec("DELETE FROM _sync_sockets WHERE socket NOT IN (SELECT value FROM json_each(?1))", {ids});
    if (!del_socks.ok()) return del_socks.status();
  }
  const std::string& socks_json = (*stored)[0][1].text;
  const std::string& subs_json = (*stored)[0][2].text;
  JsonDocument sdoc, bdoc;
  SEQSYNC_RETURN_IF_ERROR(ParseBounded(socks_json, 4, &sdoc));
  SEQSYNC_RETURN_IF_ERROR(ParseBounded(subs_json, kCeilingMaxJsonDepth, &bdoc));
  for (const JsonValue& id : sdoc.GetArray()) {
    if (id.IsString()) impl_->sockets[Str(id)].hello = true;
  }
  for (const JsonValue& e : bdoc.GetArray()) {
    if (!e.IsArray() || e.Size() != 2 || !e[0].IsString() || !e[1].IsString()) continue;
    std::string socket = Str(e[0]);
    JsonDocument body;
    if (!ParseBounded(View(e[1]), impl_->options.max_json_depth + 2, &body).ok()) {
      // Unreadable under today's limits: forget it rather than keep a row no wake can use.
      auto r = st->Exec("DELETE FROM _sync_subs WHERE socket=?1 AND body=?2",
                        {SqlValue::Text(socket), SqlValue::Text(std::string(View(e[1])))});
      (void)r;
      continue;
    }
    auto sub = impl_->ParseSub(body);
    if (!sub.ok()) {
      // The collection or a column went away since: forget the subscription
      // and tell its socket why, so the client does not wait on it forever.
      const JsonValue* sid = Member(body, "id");
      if (sid != nullptr && sid->IsString()) {
        auto r = st->Exec("DELETE FROM _sync_subs WHERE socket=?1 AND sub=?2",
                          {SqlValue::Text(socket), SqlValue::Text(Str(*sid))});
        (void)r;
        if (refusals != nullptr) refusals->deliveries.push_back({{socket}, SubErrorFrame(View(*sid), sub.status())});
      }
      continue;
    }
    Socket& restored = impl_->sockets[socket];
    impl_->Account(&restored, sub->body.size(), 0);  // admitted under the budgets before the wake
    restored.subs.push_back(std::move(sub).value());
  }
  return Status::Ok();
}

Plan Core::OnMessage(std::string_view socket_id, std::string_view scope, std::string_view frame,
                     std::int64_t now_ms) {
  Plan plan;
  std::vector<std::string> to{std::string(socket_id)};
  if (!impl_->schema.registered()) {
    plan.deliveries.push_back({to, ErrorFrame(Status::NotRegistered(
                                       "the Durable Object did not call registerSync before accepting frames"))});
    plan.close_code = 1011;
    plan.close_reason = "registerSync was not called";
    return plan;
  }
  if (frame.size() > impl_->options.max_frame_bytes) {
    plan.deliveries.push_back({to, ErrorFrame(Status::TooLarge(
                                       "frame is " + std::to_string(frame.size()) + " bytes; the limit is " +
                                       std::to_string(impl_->options.max_frame_bytes)))});
    return plan;
  }
  JsonDocument doc;
  Status parsed = ParseBounded(frame, impl_->options.max_json_depth, &doc, impl_->options.max_json_values);
  if (!parsed.ok()) {
    plan.deliveries.push_back({to, ErrorFrame(parsed)});
    return plan;
  }
  const JsonValue* t = Member(doc, "t");
  if (!doc.IsObject() || t == nullptr || !t->IsString()) {
    plan.deliveries.push_back({to, ErrorFrame(Status::MalformedFrame("a frame must be a JSON object with a string t"))});
    return plan;
  }
  std::string_view type = View(*t);
  Socket& sock = impl_->sockets[std::string(socket_id)];
  if (type == "hello") return impl_->OnHello(socket_id, &sock, doc, now_ms);
  bool known = type == "sub" || type == "unsub" || type == "mut" || type == "call";
  if (!known) {
    plan.deliveries.push_back({to, ErrorFrame(Status::UnknownFrame("unknown frame type '" +
                                                                   std::string(type.substr(0, 64)) + "'"))});
    return plan;
  }
  if (!sock.hello) {
    plan.deliveries.push_back({to, ErrorFrame(Status::ProtocolOrder("send hello before " + std::string(type)))});
    return plan;
  }
  if (type == "sub") return impl_->OnSub(socket_id, &sock, doc, now_ms);
  if (type == "unsub") return impl_->OnUnsub(socket_id, &sock, doc);
  return impl_->OnMutation(socket_id, &sock, scope, doc, type == "call");
}

Result<Seq> Core::CommitMutation(std::string_view scope, std::string_view mutation_id,
                                 std::string_view result_json, std::int64_t now_ms) {
  auto it = impl_->in_flight.find(Impl::DedupKey(scope, mutation_id));
  if (it == impl_->in_flight.end()) return Status::Internal("no mutation in flight with this id");
  std::string result;
  if (!result_json.empty() && result_json != "null") {
    JsonDocument doc;
    SEQSYNC_RETURN_IF_ERROR(ParseBounded(result_json, kCeilingMaxJsonDepth, &doc));
    result.assign(result_json);
  }
  SEQSYNC_ASSIGN_OR_RETURN(Seq head, impl_->Head());
  std::string ack = AckFrame(mutation_id, head, result);
  SEQSYNC_RETURN_IF_ERROR(impl_->RecordOutcome(scope, mutation_id, ack, now_ms));
  it->second.ack = std::move(ack);
  it->second.head = head;
  return head;
}

Plan Core::FinishMutation(std::string_view scope, std::string_view mutation_id, std::int64_t now_ms) {
  Plan plan;
  std::string key = Impl::DedupKey(scope, mutation_id);
  auto it = impl_->in_flight.find(key);
  if (it == impl_->in_flight.end()) return plan;
  if (it->second.ack.empty()) {
    impl_->Settle(key, RejectFrame(mutation_id, Status::Internal("mutation finished without commit")), &plan);
    return plan;
  }
  // The changes go first: when the ack arrives, the sender already holds them.
  Status drained = impl_->DrainInto(now_ms, &plan, it->second.head);
  if (!drained.ok()) {
    // Committed, but its changes could not be read to send. An ack would
    // move the client's cursor past them, a reject would undo a committed
    // write. Close instead: the client resumes from its cursor and replays
    // the id, and the recorded ack answers it after the catch-up.
    plan.close = impl_->Forget(key);
    plan.close_code = 1011;
    plan.close_reason = "committed; reconnect to resume";
    return plan;
  }
  std::string ack = it->second.ack;  // Settle forgets the entry that holds it
  impl_->Settle(key, ack, &plan);
  return plan;
}

Plan Core::RejectMutation(std::string_view scope, std::string_view mutation_id, const Status& why,
                          std::int64_t now_ms) {
  Plan plan;
  std::string key = Impl::DedupKey(scope, mutation_id);
  if (impl_->in_flight.find(key) == impl_->in_flight.end()) return plan;
  Status reason = why.ok() ? Status::Internal("rejected with an OK status") : why;
  // Not recorded (see RejectEarly): a replay is judged again.
  (void)now_ms;
  impl_->Settle(key, RejectFrame(mutation_id, reason), &plan);
  return plan;
}

Plan Core::Drain(std::int64_t now_ms) {
  Plan plan;
  Status s = impl_->DrainInto(now_ms, &plan);
  (void)s;  // a failed drain is retried by the next one; nothing was marked sent
  return plan;
}

void Core::OnClose(std::string_view socket_id) {
  auto it = impl_->sockets.find(socket_id);
  if (it != impl_->sockets.end()) {
    impl_->sub_bytes -= it->second.sub_bytes;
    impl_->sockets.erase(it);
  }
  for (auto& [key, f] : impl_->in_flight) {
    f.waiters.erase(std::remove(f.waiters.begin(), f.waiters.end(), socket_id), f.waiters.end());
  }
  SqlValue id = SqlValue::Text(std::string(socket_id));
  auto a = impl_->storage->Exec("DELETE FROM _sync_subs WHERE socket=?1", {id});
  auto b = impl_->storage->Exec("DELETE FROM _sync_sockets WHERE socket=?1", {id});
  (void)a;
  (void)b;  // orphans are swept by RestoreSockets on the next wake
}

Status Core::Housekeep(std::int64_t now_ms) { return impl_->Housekeep(now_ms); }

Result<LogState> Core::State() {
  LogState s;
  SEQSYNC_ASSIGN_OR_RETURN(s.head, impl_->Head());
  s.floor = impl_->floor;
  auto rows = impl_->storage->Exec("SELECT COUNT(*) FROM _sync_changes", {});
  if (!rows.ok()) return rows.status();
  s.rows = (*rows)[0][0].AsInteger();
  return s;
}

const std::string& Core::epoch() const { return impl_->epoch; }
const Options& Core::options() const { return impl_->options; }

const char* Version() { return kVersion; }

std::string LimitsJson(const Options& o) {
  return "{\"maxFrameBytes\":" + std::to_string(o.max_frame_bytes) +
         ",\"maxValueBytes\":" + std::to_string(o.max_value_bytes) +
         ",\"maxKeyBytes\":" + std::to_string(o.max_key_bytes) +
         ",\"maxIdBytes\":" + std::to_string(o.max_id_bytes) +
         ",\"maxJsonDepth\":" + std::to_string(o.max_json_depth) +
         ",\"maxJsonValues\":" + std::to_string(o.max_json_values) +
         ",\"maxOpsPerMutation\":" + std::to_string(o.max_ops_per_mutation) +
         ",\"maxSubsPerSocket\":" + std::to_string(o.max_subs_per_socket) +
         ",\"maxSubBytesPerSocket\":" + std::to_string(o.max_sub_bytes_per_socket) +
         ",\"maxInFlightPerSocket\":" + std::to_string(o.max_in_flight_per_socket) +
         ",\"maxInFlightBytesPerSocket\":" + std::to_string(o.max_in_flight_bytes_per_socket) +
         ",\"maxPredicateDepth\":" + std::to_string(o.max_predicate_depth) +
         ",\"maxPredicateNodes\":" + std::to_string(o.max_predicate_nodes) +
         ",\"maxPredicateLiteralBytes\":" + std::to_string(o.max_predicate_literal_bytes) +
         ",\"maxLikePatternBytes\":" + std::to_string(o.max_like_pattern_bytes) +
         ",\"maxLikeWildcards\":" + std::to_string(o.max_like_wildcards) +
         ",\"subRateBurst\":" + std::to_string(o.sub_rate_burst) +
         ",\"subRatePerSecond\":" + std::to_string(o.sub_rate_per_second) +
         ",\"retentionMs\":" + std::to_string(o.retention_ms) + "}";
}

}  // namespace seqsync
