// Fanout: sending changes and snapshots.
//
// Invariant: every frame the core sends implies "you hold every change up to
// here" (docs/architecture.md). It holds because the drain runs before
// anything else a call sends: a handler first drains the log to the head,
// and only then adds its own frames, read at that same head. So an ack at
// seq S follows the changes up to S, and a snapshot read at the head is
// contiguous with the live stream that continues from it.
//
// Cost. A page of the log is read once, its keys' rows are read once per
// table (one statement each, the rows built as JSON inside SQLite), and
// each row is encoded once however many groups of sockets it goes to.
// Plans are flushed to the shell as they grow, so a unit larger than the
// heap can still be sent; the price is that a unit can fail after part of
// it left (see Unsend and the callers' CloseMidUnit).

#include "fanout.h"

#include <algorithm>
#include <map>
#include <set>

#include "frame_writer.h"
#include "json_util.h"
#include "sql_ident.h"
#include "too_big.h"

namespace seqsync {

void Reply(Plan* plan, std::string_view socket, std::string frame) {
  plan->deliveries.push_back({{std::string(socket)}, std::move(frame)});
}

void ReplyError(Plan* plan, std::string_view socket, const Status& why) { Reply(plan, socket, ErrorFrame(why)); }

void ReplySubError(Plan* plan, std::string_view socket, std::string_view sub, const Status& why) {
  Reply(plan, socket, SubErrorFrame(sub, why));
}

void ReplyReject(Plan* plan, std::string_view socket, std::string_view mutation_id, const Status& why) {
  Reply(plan, socket, RejectFrame(mutation_id, why));
}

Plan ErrorPlan(std::string_view socket, const Status& why) {
  Plan plan;
  ReplyError(&plan, socket, why);
  return plan;
}

std::vector<Group> Fanout::GroupSockets(const SocketMap& sockets) const {
  std::map<std::string, std::size_t> index;
  std::vector<Group> groups;
  for (const auto& [id, sock] : sockets) {
    if (!sock.hello || sock.subs.empty()) continue;
    // The set of (collection, where) it holds; ids do not change what a
    // socket is sent.
    std::vector<std::string> parts;
    for (const Subscription& s : sock.subs) parts.push_back(s.collection + '\x1f' + s.where_json);
    std::sort(parts.begin(), parts.end());
    parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
    std::string signature;
    for (const std::string& p : parts) signature += p + '\x1e';
    auto [it, fresh] = index.try_emplace(signature, groups.size());
    if (fresh) groups.push_back({{}, &sock.subs});
    groups[it->second].sockets.push_back(id);
  }
  return groups;
}

Status Fanout::Drain(const SocketMap& sockets, std::int64_t now_ms, Plan* plan, Seq known_head) {
  Seq head = known_head;
  if (head == 0) {
    SEQSYNC_ASSIGN_OR_RETURN(head, log_->Head());
  }
  if (head <= log_->drained()) {
    SEQSYNC_RETURN_IF_ERROR(schema_->RefreshIfChanged(storage_));
  } else {
    SEQSYNC_RETURN_IF_ERROR(CollectChanges(log_->drained(), head, 0, true, GroupSockets(sockets), plan));
    log_->MarkDrained(head, now_ms);
  }
  return log_->MaybeHousekeep(now_ms, head);
}

Status Fanout::Hydrate(const Collection& c, const std::vector<std::string>& keys, JsonDocument* doc,
                       std::map<std::string, const JsonValue*, std::less<>>* rows) {
  const std::string sql = "SELECT json_group_array(" + c.row_sql + ") FROM " + QuoteIdent(c.table) + " WHERE " +
                          QuoteIdent(c.pk) + " IN (SELECT value FROM json_each(?1))";
  for (std::size_t start = 0; start < keys.size();) {
    const std::size_t wanted = std::min(options_->read_page_rows, keys.size() - start);
    std::size_t page = wanted;
    auto r = ReadHalvingPage(&page, [&](std::size_t n) {
      rapidjson::StringBuffer sb;
      JsonWriter w(sb);
      w.StartArray();
      for (std::size_t i = start; i < start + n; ++i) WriteString(keys[i], &w);
      w.EndArray();
      return storage_->Exec(sql, {SqlValue::Text(std::string(sb.GetString(), sb.GetSize()))});
    });
    // A page that was too big once will be again: later reads start smaller.
    if (page < wanted) options_->read_page_rows = page;
    if (!r.ok()) return r.status();
    JsonDocument part(&doc->GetAllocator());
    SEQSYNC_RETURN_IF_ERROR(ParseBounded((*r)[0][0].text, kCeilingMaxJsonDepth, &part));
    if (!doc->IsArray()) doc->SetArray();
    for (JsonValue& row : part.GetArray()) doc->PushBack(row, doc->GetAllocator());
    start += page;
  }
  if (!doc->IsArray()) return Status::Ok();
  for (const JsonValue& row : doc->GetArray()) {
    const JsonValue* k = Member(row, c.pk.c_str());
    if (k != nullptr && k->IsString()) rows->emplace(std::string(View(*k)), &row);
  }
  return Status::Ok();
}

Status Fanout::CollectChanges(Seq after, Seq upto, Seq unit_seq, bool end_units, const std::vector<Group>& groups,
                              Plan* plan) {
  Seq last_seq = after;
  for (bool first_page = true;; first_page = false) {
    SEQSYNC_ASSIGN_OR_RETURN(std::vector<Change> page,
                             log_->Read(last_seq, upto, 4 * options_->read_page_rows, first_page));
    if (page.empty()) break;
    const Seq page_seq = page.back().seq;
    last_seq = page_seq;
    // Keep each key's last entry, in seq order: the row is read now, so an
    // earlier entry of the same key would only send it twice.
    std::map<std::pair<std::string, std::string>, std::size_t> last;
    for (std::size_t i = 0; i < page.size(); ++i) last[{page[i].table, page[i].key}] = i;
    std::vector<const Change*> unique;
    for (std::size_t i = 0; i < page.size(); ++i) {
      if (last[{page[i].table, page[i].key}] == i) unique.push_back(&page[i]);
    }
    // Hydrate the keys of every table someone subscribes to.
    std::set<std::string> wanted_tables;
    for (const Group& g : groups) {
      for (const Subscription& s : *g.subs) wanted_tables.insert(s.collection);
    }
    std::map<std::string, std::vector<std::string>> keys_by_table;
    for (const Change* c : unique) {
      if (wanted_tables.count(c->table)) keys_by_table[c->table].push_back(c->key);
    }
    std::map<std::string, JsonDocument> docs;
    std::map<std::string, std::map<std::string, const JsonValue*, std::less<>>> rows;
    for (auto& [table, keys] : keys_by_table) {
      const Collection* coll = schema_->Find(table);
      if (coll == nullptr) continue;  // unregistered since: nothing to send
      SEQSYNC_RETURN_IF_ERROR(Hydrate(*coll, keys, &docs[table], &rows[table]));
    }
    // Row text is encoded once and shared by every group.
    std::map<const JsonValue*, std::string> row_text;
    const Seq frame_seq = unit_seq != 0 ? unit_seq : page_seq;
    for (const Group& g : groups) {
      ChunkedFrames frames("{\"t\":\"changes\",\"seq\":" + std::to_string(frame_seq) + ",\"changes\":[",
                           options_->snapshot_chunk_bytes);
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
        // Covered but not matched: a removal, so a row that moved out of
        // every subscription (or was deleted) leaves the client.
        std::string entry = "{\"c\":" + JsonQuote(c->table) + ",\"k\":" + JsonQuote(c->key);
        if (matched) {
          auto [it, fresh] = row_text.try_emplace(row);
          if (fresh) it->second = ToJson(*row);
          entry += ",\"row\":" + it->second;
        }
        entry += "}";
        frames.Add(entry);
      }
      std::vector<std::string> out;
      frames.Finish(end_units, false, &out);
      for (std::string& f : out) plan->deliveries.push_back({g.sockets, std::move(f)});
    }
    MaybeFlush(plan);
    if (page_seq >= upto) break;
  }
  return Status::Ok();
}

Status Fanout::Snapshot(const Subscription& sub, Seq seq, bool ends_unit, const std::vector<std::string>& to,
                        Plan* plan) {
  const Collection* c = schema_->Find(sub.collection);
  if (c == nullptr) return Status::UnknownCollection("collection '" + sub.collection + "' is not registered");
  std::string literals;
  std::string where = sub.predicate.ToSql(2, &literals);
  // The row is built in the outer query: a JSON value read back from a
  // subquery column loses its JSON subtype and would be quoted as text.
  // Pages follow rowid, so a page boundary never splits or repeats a row.
  std::string sql = "SELECT json_group_array(" + c->row_sql +
                    "), MAX(_sync_rowid), COUNT(*) FROM (SELECT rowid AS _sync_rowid, * FROM " +
                    QuoteIdent(c->table) + " WHERE rowid > ?1 AND " + where + " ORDER BY rowid LIMIT ?3)";
  // A windowed sub's frames name the predicate it resolved to, so the
  // client can resume it later without reloading (docs/protocol.md §5.3).
  std::string resolved = sub.windowed ? ",\"where\":" + sub.where_json : "";
  ChunkedFrames frames("{\"t\":\"snapshot\",\"sub\":" + JsonQuote(sub.id) + ",\"c\":" + JsonQuote(sub.collection) +
                           ",\"seq\":" + std::to_string(seq) + resolved + ",\"rows\":[",
                       options_->snapshot_chunk_bytes);
  std::int64_t after = 0;
  std::size_t page = options_->read_page_rows;
  while (true) {
    auto r = ReadHalvingPage(&page, [&](std::size_t n) {
      return storage_->Exec(sql, {SqlValue::Integer(after), SqlValue::Text(literals),
                                  SqlValue::Integer(static_cast<std::int64_t>(n))});
    });
    if (!r.ok()) return Classified(r.status());
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
    if (text.size() > options_->snapshot_chunk_bytes && page > 1) {
      page /= 2;
    } else if (text.size() * 2 < options_->snapshot_chunk_bytes && page < 8 * options_->read_page_rows) {
      page *= 2;
    }
  }
  std::vector<std::string> last;
  frames.Finish(ends_unit, /*emit_if_empty=*/true, &last);
  for (std::string& f : last) plan->deliveries.push_back({to, std::move(f)});
  return Status::Ok();
}

void Fanout::MaybeFlush(Plan* plan) {
  std::size_t bytes = 0;
  for (const Delivery& d : plan->deliveries) bytes += d.frame.size();
  if (bytes < kPlanFlushBytes) return;
  std::size_t sent = 0;
  while (sent < plan->deliveries.size() && storage_->Send(plan->deliveries[sent].to, plan->deliveries[sent].frame)) {
    ++sent;
  }
  plan->deliveries.erase(plan->deliveries.begin(), plan->deliveries.begin() + static_cast<std::ptrdiff_t>(sent));
  flushed_ += sent;
}

bool Fanout::Unsend(Plan* plan, std::uint64_t mark) {
  if (flushed_ > mark) return false;
  plan->deliveries.resize(static_cast<std::size_t>(mark - flushed_));
  return true;
}

}  // namespace seqsync
