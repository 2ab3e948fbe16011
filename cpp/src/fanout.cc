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
#include <unordered_set>

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
    // Sockets that read the compact form are sent other frames.
    std::string signature = sock.compact_changes ? "compact\x1e" : "full\x1e";
    for (const std::string& p : parts) signature += p + '\x1e';
    auto [it, fresh] = index.try_emplace(signature, groups.size());
    if (fresh) groups.push_back({{}, &sock.subs, sock.compact_changes});
    groups[it->second].sockets.push_back(id);
  }
  return groups;
}

Status Fanout::Drain(const SocketMap& sockets, std::int64_t now_ms, Plan* plan, Seq known_head,
                     ReadAhead* ahead) {
  Seq head = known_head;
  if (head == 0) {
    SEQSYNC_ASSIGN_OR_RETURN(head, log_->Head());
  }
  if (head <= log_->drained()) {
    SEQSYNC_RETURN_IF_ERROR(schema_->RefreshIfChanged(storage_));
  } else {
    const std::vector<Group> groups = GroupSockets(sockets);
    if (groups.empty()) {
      // No one subscribes: the changes go to no one, so none is read.
      SEQSYNC_RETURN_IF_ERROR(schema_->RefreshIfChanged(storage_));
    } else {
      SEQSYNC_RETURN_IF_ERROR(CollectChanges(log_->drained(), head, 0, true, groups, plan, ahead));
    }
    log_->MarkDrained(head, now_ms);
  }
  return Status::Ok();
}

namespace {

std::string TablesKey(const std::set<std::string>& tables) {
  std::string key;
  for (const std::string& t : tables) key += t + '\x1f';
  return key;
}

}  // namespace

const std::string& Fanout::PageSelect(const std::set<std::string>& tables, int first_param) {
  if (page_sql_generation_ != schema_->generation()) {
    page_sql_.clear();
    page_sql_generation_ = schema_->generation();
  }
  auto [it, fresh] = page_sql_.try_emplace(std::to_string(first_param) + '\x1e' + TablesKey(tables));
  if (!fresh) return it->second;
  // Each entry's current row, built by SQLite in a subquery by key, as JSON
  // text that is sent as it is.
  std::string row = "NULL";
  if (!tables.empty()) {
    row = "CASE tbl";
    for (const std::string& t : tables) {
      const Collection* c = schema_->Find(t);
      if (c == nullptr) continue;  // unregistered since: nothing to send
      row += " WHEN '" + c->table + "' THEN (SELECT " + c->row_sql + " FROM " + QuoteIdent(c->table) + " WHERE " +
             QuoteIdent(c->pk) + " = _sync_changes.key)";
    }
    row += " END";
  }
  auto param = [first_param](int i) { return "?" + std::to_string(first_param + i); };
  // The page is the entries in (after, bound], where bound is the seq of
  // the limit-th entry past `after` (or `upto` if there are fewer). The
  // plainer "FROM (... ORDER BY seq LIMIT n)" costs SQLite about 100 µs
  // more per read, which every write paid.
  const std::string after = param(0), upto = param(1), limit = param(2);
  it->second = "(SELECT COALESCE(group_concat(seq||char(31)||json_quote(tbl)||char(31)||json_quote(key)||char(31)||"
               "COALESCE(" + row + ",''),char(30)),'') FROM _sync_changes WHERE seq > " + after +
               " AND seq <= COALESCE((SELECT seq FROM _sync_changes WHERE seq > " + after + " AND seq <= " + upto +
               " ORDER BY seq LIMIT 1 OFFSET " + limit + " - 1)," + upto + "))";
  return it->second;
}

bool Fanout::ReadAheadSql(const SocketMap& sockets, int first_param, std::string* returning,
                          std::vector<SqlValue>* params, ReadAhead* ahead) {
  std::set<std::string> tables;
  for (const Group& g : GroupSockets(sockets)) {
    for (const Subscription& s : *g.subs) tables.insert(s.collection);
  }
  if (tables.empty()) return false;
  *returning = PageSelect(tables, first_param) + ",(" + schema_->FingerprintSql() + ") IS ?" +
               std::to_string(first_param + 3);
  // Inside the transaction every entry past the watermark is the mutation's
  // (or was committed before it): no upper bound is needed.
  *params = {SqlValue::Integer(static_cast<std::int64_t>(log_->drained())),
             SqlValue::Integer(static_cast<std::int64_t>(kMaxSeq)),
             SqlValue::Integer(static_cast<std::int64_t>(options_->read_page_rows)), schema_->FingerprintValue()};
  ahead->after = log_->drained();
  ahead->tables = TablesKey(tables);
  return true;
}

Status Fanout::ReadPage(Seq after, Seq upto, bool check_schema, const std::set<std::string>& tables, Page* page) {
  const std::size_t wanted = options_->read_page_rows;
  std::size_t limit = wanted;
  while (true) {
    const std::string sql = "SELECT " + PageSelect(tables, 1) +
                            (check_schema ? ",(" + schema_->FingerprintSql() + ") IS ?4" : std::string());
    std::vector<SqlValue> params{SqlValue::Integer(static_cast<std::int64_t>(after)),
                                 SqlValue::Integer(static_cast<std::int64_t>(upto)), SqlValue::Null()};
    if (check_schema) {
      params.push_back(schema_->FingerprintValue());
    }
    auto r = ReadHalvingPage(&limit, [&](std::size_t n) {
      params[2] = SqlValue::Integer(static_cast<std::int64_t>(n));
      return storage_->Exec(sql, params);
    });
    // A page that was too big once will be again: later reads start smaller.
    if (limit < wanted) options_->read_page_rows = limit;
    if (!r.ok()) return r.status();
    if (r->size() != 1 || (*r)[0].size() != (check_schema ? 2u : 1u) || (*r)[0][0].kind != SqlValue::Kind::kText) {
      return Status::Internal("unexpected change log shape");
    }
    if (check_schema && (*r)[0][1].AsInteger() != 1) {
      // An ALTER TABLE since the last look: read the columns, then the page
      // again with them, so its rows carry every column.
      SEQSYNC_RETURN_IF_ERROR(schema_->RefreshIfChanged(storage_));
      check_schema = false;
      continue;
    }
    page->text = std::move((*r)[0][0].text);
    return ParsePage(page);
  }
}

namespace {

// A (table, key) pair's hash, for the set of keys a page holds.
struct TableKeyHash {
  std::size_t operator()(const std::pair<std::string_view, std::string_view>& tk) const {
    const std::hash<std::string_view> h;
    return h(tk.first) * 31 + h(tk.second);
  }
};

// The text of a JSON string field of a page entry, into `out`: a view of
// the page when it has no escapes (table names and keys rarely do), else
// unescaped into `unescaped`. `as_quoted` gets the field itself when
// JsonQuote would write it the same (printable ASCII, no escapes).
// Appends a page's table or key as JSON text: the page's own quoting when
// PageString kept it (`quoted`), else JsonQuote's.
void AppendJson(std::string_view raw, std::string_view quoted, std::string* out) {
  if (quoted.empty()) *out += JsonQuote(raw);
  else *out += quoted;
}

bool PageString(std::string_view quoted, std::deque<std::string>* unescaped, std::string_view* out,
                std::string_view* as_quoted) {
  if (quoted.size() < 2 || quoted.front() != '"' || quoted.back() != '"') return false;
  std::string_view inner = quoted.substr(1, quoted.size() - 2);
  if (std::all_of(inner.begin(), inner.end(), [](char c) { return c >= 0x20 && c < 0x7f && c != '\\'; })) {
    *out = inner;
    *as_quoted = quoted;  // no escapes, nothing JsonQuote would write differently
    return true;
  }
  if (inner.find('\\') == std::string_view::npos) {
    *out = inner;
    return true;
  }
  JsonDocument doc;
  if (!ParseBounded(quoted, 1, &doc).ok() || !doc.IsString()) return false;
  unescaped->emplace_back(doc.GetString(), doc.GetStringLength());
  *out = unescaped->back();
  return true;
}

}  // namespace

Status Fanout::ParsePage(Page* page) {
  const std::string_view text = page->text;
  page->entries.clear();
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = text.find('\x1e', at);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view entry = text.substr(at, end - at);
    at = end + 1;
    std::string_view fields[4];
    std::size_t from = 0;
    for (int f = 0; f < 3; ++f) {
      const std::size_t sep = entry.find('\x1f', from);
      if (sep == std::string_view::npos) return Status::Internal("malformed change log entry");
      fields[f] = entry.substr(from, sep - from);
      from = sep + 1;
    }
    fields[3] = entry.substr(from);  // the row: JSON text, which holds no control characters
    PageEntry e{0, {}, {}, fields[3], {}, {}};
    if (fields[0].empty() || fields[0].size() > 16) return Status::Internal("malformed change log entry");
    for (char c : fields[0]) {
      if (c < '0' || c > '9') return Status::Internal("malformed change log entry");
      e.seq = e.seq * 10 + static_cast<Seq>(c - '0');
    }
    if (!PageString(fields[1], &page->unescaped, &e.table, &e.table_json) ||
        !PageString(fields[2], &page->unescaped, &e.key, &e.key_json)) {
      return Status::Internal("malformed change log entry");
    }
    page->entries.push_back(e);
  }
  std::vector<PageEntry>& entries = page->entries;
  // A rowid range scan keeps the log's order in practice; the protocol needs it.
  const auto by_seq = [](const PageEntry& a, const PageEntry& b) { return a.seq < b.seq; };
  if (!std::is_sorted(entries.begin(), entries.end(), by_seq)) std::sort(entries.begin(), entries.end(), by_seq);
  return Status::Ok();
}

Status Fanout::CollectChanges(Seq after, Seq upto, Seq unit_seq, bool end_units, const std::vector<Group>& groups,
                              Plan* plan, ReadAhead* ahead) {
  // Rows are read for the tables someone subscribes to.
  std::set<std::string> wanted_tables;
  bool any_predicate = false;
  for (const Group& g : groups) {
    for (const Subscription& s : *g.subs) {
      wanted_tables.insert(s.collection);
      any_predicate = any_predicate || !s.predicate.is_all();
    }
  }
  Seq last_seq = after;
  for (bool first_page = true;; first_page = false) {
    Page read;
    // The first page may have been read ahead, by the statement that
    // committed the mutation, if it is the page this read would be.
    if (first_page && ahead != nullptr && ahead->fresh_schema && ahead->after == after &&
        ahead->tables == TablesKey(wanted_tables)) {
      read.text = std::move(ahead->text);
      SEQSYNC_RETURN_IF_ERROR(ParsePage(&read));
    } else {
      SEQSYNC_RETURN_IF_ERROR(ReadPage(last_seq, upto, first_page, wanted_tables, &read));
    }
    const std::vector<PageEntry>& page = read.entries;
    if (page.empty()) break;
    const Seq page_seq = page.back().seq;
    last_seq = page_seq;
    // Keep each key's last entry, in seq order: the row is read now, so an
    // earlier entry of the same key would only send it twice.
    std::vector<const PageEntry*> unique;
    if (page.size() == 1) {
      unique.push_back(&page[0]);
    } else {
      // Newest first, so the first entry seen of a key is its last; then
      // back into seq order. A hash set: a page has hundreds of keys.
      std::unordered_set<std::pair<std::string_view, std::string_view>, TableKeyHash> seen;
      seen.reserve(page.size());
      for (std::size_t i = page.size(); i-- > 0;) {
        if (seen.insert({page[i].table, page[i].key}).second) unique.push_back(&page[i]);
      }
      std::reverse(unique.begin(), unique.end());
    }
    // A row is parsed only if a predicate must look at it; it is sent as
    // SQLite wrote it.
    std::vector<JsonDocument> parsed(any_predicate ? unique.size() : 0);
    const Seq frame_seq = unit_seq != 0 ? unit_seq : page_seq;
    const std::string seq_head = "{\"t\":\"changes\",\"seq\":" + std::to_string(frame_seq) + ",";
    for (const Group& g : groups) {
      ChunkedFrames frames(seq_head + "\"changes\":[", options_->snapshot_chunk_bytes);
      // The compact form: one collection's frames each, in the order its
      // first entry comes (a page holds each key once, so the order between
      // collections changes nothing). A collection whose rows do not show
      // the key as it is keeps the full form, in `frames`.
      struct TableFrames {
        std::string_view table;
        bool keyed_by_row;
        ChunkedFrames frames;
      };
      std::vector<TableFrames> by_table;
      for (std::size_t i = 0; i < unique.size(); ++i) {
        const PageEntry& c = *unique[i];
        bool covered = false, matched = false;
        for (const Subscription& s : *g.subs) {
          if (s.collection != c.table) continue;
          covered = true;
          if (c.row.empty() || matched) continue;
          if (s.predicate.is_all()) {
            matched = true;
            continue;
          }
          JsonDocument& row = parsed[i];
          if (row.IsNull()) SEQSYNC_RETURN_IF_ERROR(ParseBounded(c.row, kCeilingMaxJsonDepth, &row));
          matched = s.predicate.Matches(row);
        }
        if (!covered) continue;
        // Covered but not matched: a removal, so a row that moved out of
        // every subscription (or was deleted) leaves the client.
        if (g.compact) {
          auto table = std::find_if(by_table.begin(), by_table.end(), [&](const auto& t) { return t.table == c.table; });
          if (table == by_table.end()) {
            // A row is keyed by its primary key column: a TEXT key, whose
            // value is the key, unless a declared type (json) shows it
            // parsed, or the collection is no longer registered.
            const Collection* collection = schema_->Find(c.table);
            const bool keyed_by_row = collection != nullptr && !collection->types.contains(collection->pk);
            std::string head;
            if (keyed_by_row) {
              head = seq_head + "\"c\":";
              AppendJson(c.table, c.table_json, &head);
              head += ",\"pk\":" + JsonQuote(collection->pk) + ",\"rows\":[";
            }
            table = by_table.insert(by_table.end(),
                                    {c.table, keyed_by_row, ChunkedFrames(std::move(head), options_->snapshot_chunk_bytes)});
          }
          if (table->keyed_by_row) {
            if (matched) {
              table->frames.Add(c.row);
            } else {
              std::string key;  // a removal is the key alone
              AppendJson(c.key, c.key_json, &key);
              table->frames.Add(key);
            }
            continue;
          }
        }
        std::string entry;
        entry.reserve(16 + c.table.size() + c.key.size() + c.row.size());
        entry += "{\"c\":";
        AppendJson(c.table, c.table_json, &entry);
        entry += ",\"k\":";
        AppendJson(c.key, c.key_json, &entry);
        if (matched) {
          entry += ",\"row\":";
          entry += c.row;
        }
        entry += "}";
        frames.Add(entry);
      }
      // Only the page's last frame may end the unit: the full-form one, if
      // any, comes last.
      std::vector<std::string> out;
      const bool full_form = !frames.empty();
      std::size_t last_compact = by_table.size();
      for (std::size_t t = 0; t < by_table.size(); ++t) if (by_table[t].keyed_by_row) last_compact = t;
      for (std::size_t t = 0; t < by_table.size(); ++t) {
        if (by_table[t].keyed_by_row) by_table[t].frames.Finish(end_units && !full_form && t == last_compact, false, &out);
      }
      if (full_form || by_table.empty()) frames.Finish(end_units, false, &out);
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
  if (bytes >= kPlanFlushBytes) Flush(plan);
}

void Fanout::Flush(Plan* plan) {
  std::size_t sent = 0;
  while (sent < plan->deliveries.size() && storage_->Send(plan->deliveries[sent].to, plan->deliveries[sent].frame)) {
    if (on_flushed) on_flushed(plan->deliveries[sent]);
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
