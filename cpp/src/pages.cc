// Pages: one-off ordered reads that hold no subscription.
//
// A page is keyset paging over the total order (orderBy terms, then the
// primary key ascending). The cursor names both halves of the boundary, the
// last row's orderBy values and its key, so a page never repeats or skips a
// row, even among rows tied on every value. A page serves:
//
//   1. the ties: rows whose orderBy values all equal the cursor's and whose
//      key sorts after the cursor's (the rest of the boundary's tie group,
//      which an ordered consumer needs whole), at most kMaxPageRows;
//   2. then `limit` rows strictly after the cursor's values.
//
// If the ties alone fill kMaxPageRows and more remain, the page stops there
// and says "cut": the client asks again from its last row, whose key moves
// the cursor through the group. Without a cursor, a page is the first
// `limit` rows.
//
// Comparisons are written against `+col` (no affinity), so they follow the
// same rules as ORDER BY: NULL, then numbers, then text by bytes, with the
// term's direction and NULL placement. Rows are read in chunks of
// readPageRows (halved when SQLite finds one too big); each chunk continues
// from the last row of the one before, read back from the same statement.
//
// The page is read at `seq`, the head after the core drained every socket:
// the client already holds every change up to it, and every later change
// follows the page. If orderBy names no term, the key alone orders the page. A client that applies a page after a later change (a
// delta it saw first) drops that key's page row (docs/protocol.md §4.8).

#include "pages.h"

#include <algorithm>

#include "frame_reader.h"
#include "frame_writer.h"
#include "sql_ident.h"
#include "too_big.h"
#include "windows.h"

namespace seqsync {
namespace {

// The cursor's key and values are ?3 and ?4…; ?1 holds the predicate's
// literals and ?2 the row count.
constexpr int kKeyParam = 3;
constexpr int kFirstValueParam = 4;

std::string Param(int n) { return "?" + std::to_string(n); }

// A term's column without affinity, so comparisons follow ORDER BY.
std::string Bare(const std::string& column) { return "+" + QuoteIdent(column); }

// Every term equal to the cursor's values.
std::string TieSql(const std::vector<OrderTerm>& order) {
  if (order.empty()) return "1";
  std::string sql;
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (i > 0) sql += " AND ";
    sql += Bare(order[i].column) + " IS " + Param(kFirstValueParam + static_cast<int>(i));
  }
  return sql;
}

// `term` sorts strictly after `value` (the NULL group if `value` is null).
std::string TermAfterSql(const OrderTerm& term, const SqlValue& value, int param) {
  const std::string col = Bare(term.column);
  if (value.is_null()) return term.nulls_first ? col + " IS NOT NULL" : "0";
  std::string after = col + (term.descending ? " < " : " > ") + Param(param);
  return term.nulls_first ? "(" + after + ")" : "(" + after + " OR " + col + " IS NULL)";
}

// The row's orderBy values sort strictly after the cursor's (lexicographically).
std::string ValuesAfterSql(const std::vector<OrderTerm>& order, const std::vector<SqlValue>& values) {
  if (order.empty()) return "0";
  std::string sql = "(";
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (i > 0) sql += " OR ";
    sql += "(";
    for (std::size_t j = 0; j < i; ++j) {
      sql += Bare(order[j].column) + " IS " + Param(kFirstValueParam + static_cast<int>(j)) + " AND ";
    }
    sql += TermAfterSql(order[i], values[i], kFirstValueParam + static_cast<int>(i)) + ")";
  }
  return sql + ")";
}

std::string OrderSql(const std::vector<OrderTerm>& order, const std::string& pk) {
  std::string sql;
  for (const OrderTerm& t : order) {
    sql += QuoteIdent(t.column) + (t.descending ? " DESC" : " ASC") + (t.nulls_first ? " NULLS FIRST, " : " NULLS LAST, ");
  }
  return sql + QuoteIdent(pk) + " ASC";
}

// A cursor value from JSON: a scalar (a boolean is stored as 0 or 1).
bool ToSqlValue(const JsonValue& v, SqlValue* out) {
  if (v.IsNull()) *out = SqlValue::Null();
  else if (v.IsBool()) *out = SqlValue::Integer(v.GetBool() ? 1 : 0);
  else if (v.IsInt64()) *out = SqlValue::Integer(v.GetInt64());
  else if (v.IsNumber()) *out = SqlValue::Real(v.GetDouble());
  else if (v.IsString()) *out = SqlValue::Text(std::string(View(v)));
  else return false;
  return true;
}

std::vector<SqlValue> Params(const std::string& literals, std::size_t rows, const PageCursor* from) {
  std::vector<SqlValue> params{SqlValue::Text(literals), SqlValue::Integer(static_cast<std::int64_t>(rows)),
                               SqlValue::Text(from ? from->key : std::string())};
  if (from) params.insert(params.end(), from->values.begin(), from->values.end());
  return params;
}

}  // namespace

std::string_view PageIdOf(const JsonValue& frame) { return SubIdOf(frame); }

Result<PageRequest> ReadPage(const JsonValue& frame, const Options& options, Storage* storage, Schema* schema) {
  const JsonValue* id = Member(frame, "id");
  if (id == nullptr || !id->IsString() || id->GetStringLength() == 0) {
    return Status::InvalidField("page needs a non-empty string id");
  }
  if (id->GetStringLength() > options.max_id_bytes) {
    return Status::TooLarge("page id is longer than " + std::to_string(options.max_id_bytes) + " bytes");
  }
  const JsonValue* limit = Member(frame, "limit");
  if (limit == nullptr || !limit->IsInt64() || limit->GetInt64() < 1) {
    return Status::InvalidField("page needs a limit, an integer of at least 1");
  }
  if (limit->GetInt64() > kMaxPageRows) {
    return Status::TooMany("a page holds at most " + std::to_string(kMaxPageRows) + " rows");
  }
  const JsonValue* offset = Member(frame, "offset");
  if (offset != nullptr && !offset->IsNull()) return Status::InvalidField("a page starts from a cursor, not an offset");
  // id, collection, where and orderBy are read as a sub's are.
  auto body = ReadSub(frame, options, storage, schema);
  if (!body.ok()) return body.status();
  PageRequest page;
  page.id = std::move(body->id);
  page.collection = std::move(body->collection);
  page.predicate = std::move(body->predicate);
  page.limit = limit->GetInt64();
  if (body->window) page.order = body->window->terms;
  const JsonValue* cursor = Member(frame, "cursor");
  if (cursor == nullptr || cursor->IsNull()) return page;
  const JsonValue* values = Member(*cursor, "values");
  const JsonValue* key = Member(*cursor, "k");
  if (!cursor->IsObject() || values == nullptr || !values->IsArray() || values->Size() != page.order.size() ||
      key == nullptr || !key->IsString()) {
    return Status::InvalidField("a page cursor is {values: one per orderBy term, k: the last row's key or \"\"}");
  }
  if (key->GetStringLength() > options.max_key_bytes) {
    return Status::TooLarge("cursor key is longer than " + std::to_string(options.max_key_bytes) + " bytes");
  }
  PageCursor c;
  c.key.assign(View(*key));
  std::size_t literal_bytes = 0;  // counted as a where's literals are: a text its bytes, any other value 8
  for (const JsonValue& v : values->GetArray()) {
    c.values.emplace_back();
    if (!ToSqlValue(v, &c.values.back())) return Status::InvalidField("a cursor value must be a JSON scalar");
    literal_bytes += v.IsString() ? v.GetStringLength() : 8;
  }
  if (literal_bytes > options.max_predicate_literal_bytes) {
    return Status::TooLarge("cursor values are over maxPredicateLiteralBytes (" +
                            std::to_string(options.max_predicate_literal_bytes) + ")");
  }
  page.cursor = std::move(c);
  return page;
}

Status ServePage(const PageRequest& request, Seq seq, Storage* storage, Options* options, Schema* schema,
                 Fanout* fanout, const std::vector<std::string>& to, Plan* plan) {
  const Collection* c = schema->Find(request.collection);
  if (c == nullptr) return Status::UnknownCollection("collection '" + request.collection + "' is not registered");
  std::string literals;
  const std::string where = request.predicate.ToSql(1, &literals);
  const std::string from_table = " FROM (SELECT * FROM " + QuoteIdent(c->table) + " WHERE " + where + " AND ";
  ChunkedFrames frames("{\"t\":\"page\",\"id\":" + JsonQuote(request.id) + ",\"c\":" + JsonQuote(request.collection) +
                           ",\"seq\":" + std::to_string(seq) + ",\"rows\":[",
                       options->snapshot_chunk_bytes);
  auto emit = [&](const std::string& rows_text) {  // "[...]", non-empty
    // Add, not AddChunk: the ties and the rows after them share a frame while they fit.
    frames.Add(std::string_view(rows_text).substr(1, rows_text.size() - 2));
    std::vector<std::string> ready;
    frames.TakeReady(&ready);
    for (std::string& f : ready) plan->deliveries.push_back({to, std::move(f)});
    fanout->MaybeFlush(plan);
  };
  std::size_t page_rows = options->read_page_rows;
  bool cut = false;

  // 1. The rest of the boundary's tie group, by key. Without orderBy terms
  // the key alone is the order: there is no group, only rows after the key.
  const bool has_ties = request.cursor.has_value() && !request.order.empty();
  if (has_ties) {
    const std::string tie = TieSql(request.order);
    const std::string sql = "SELECT json_group_array(" + c->row_sql + "), MAX(" + QuoteIdent(c->pk) + "), COUNT(*)" +
                            from_table + tie + " AND " + Bare(c->pk) + " > " + Param(kKeyParam) + " ORDER BY " + QuoteIdent(c->pk) +
                            " LIMIT ?2)";
    PageCursor from = *request.cursor;
    std::int64_t ties = 0;
    while (ties < kMaxPageRows) {
      std::size_t asked = 0;
      auto r = ReadHalvingPage(&page_rows, [&](std::size_t n) {
        asked = std::min<std::size_t>(n, static_cast<std::size_t>(kMaxPageRows - ties));
        return storage->Exec(sql, Params(literals, asked, &from));
      });
      if (!r.ok()) return Classified(r.status());
      const SqlRow& row = (*r)[0];
      const std::int64_t count = row[2].AsInteger();
      if (count == 0) break;
      emit(row[0].text);
      ties += count;
      from.key = row[1].text;
      if (static_cast<std::size_t>(count) < asked) break;
    }
    if (ties == kMaxPageRows) {
      auto more = storage->Exec("SELECT EXISTS(SELECT 1" + from_table + tie + " AND " + Bare(c->pk) + " > " + Param(kKeyParam) + " LIMIT ?2))",
                                Params(literals, 1, &from));
      if (!more.ok()) return Classified(more.status());
      cut = (*more)[0][0].AsInteger() == 1;
    }
  }

  // 2. `limit` rows after the boundary, in (orderBy, key) order. Each chunk
  // also reads its rows' orderBy values and keys, to continue from its last.
  std::string keys = "json_array(";
  for (const OrderTerm& t : request.order) {
    const std::string col = QuoteIdent(t.column);
    keys += "CASE typeof(" + col + ") WHEN 'blob' THEN json_object('$hex',hex(" + col + ")) ELSE " + col + " END,";
  }
  keys += QuoteIdent(c->pk) + ")";
  const std::string order = OrderSql(request.order, c->pk);
  std::int64_t remaining = cut ? 0 : request.limit;
  std::optional<PageCursor> from = request.cursor;
  bool after_ties = has_ties;  // the first chunk starts past the whole tie group
  while (remaining > 0) {
    std::string after = "1";
    if (from) {
      after = after_ties ? ValuesAfterSql(request.order, from->values)
                         : "((" + TieSql(request.order) + " AND " + Bare(c->pk) + " > " + Param(kKeyParam) + ") OR " +
                               ValuesAfterSql(request.order, from->values) + ")";
    }
    const std::string sql = "SELECT json_group_array(" + c->row_sql + "), json_group_array(" + keys + "), COUNT(*)" +
                            from_table + after + " ORDER BY " + order + " LIMIT ?2)";
    std::size_t asked = 0;
    auto r = ReadHalvingPage(&page_rows, [&](std::size_t n) {
      asked = std::min<std::size_t>(n, static_cast<std::size_t>(remaining));
      return storage->Exec(sql, Params(literals, asked, from ? &*from : nullptr));
    });
    if (!r.ok()) return Classified(r.status());
    const SqlRow& row = (*r)[0];
    const std::int64_t count = row[2].AsInteger();
    if (count == 0) break;
    emit(row[0].text);
    remaining -= count;
    if (static_cast<std::size_t>(count) < asked || remaining == 0) break;
    // Continue from the chunk's last row (a chunk has at most readPageRows keys).
    JsonDocument doc;
    SEQSYNC_RETURN_IF_ERROR(ParseBounded(row[1].text, 4, &doc));
    if (!doc.IsArray() || doc.Empty()) return Status::Internal("unexpected page key shape");
    const JsonValue& last = doc[doc.Size() - 1];
    if (!last.IsArray() || last.Size() != request.order.size() + 1 || !last[last.Size() - 1].IsString()) {
      return Status::Internal("unexpected page key shape");
    }
    PageCursor next;
    next.key.assign(View(last[last.Size() - 1]));
    for (rapidjson::SizeType i = 0; i + 1 < last.Size(); ++i) {
      next.values.emplace_back();
      // A BLOB cannot be a bound (nor a client's cursor value): the page
      // ends at it, cut.
      if (!ToSqlValue(last[i], &next.values.back())) cut = true;
    }
    if (cut) break;
    from = std::move(next);
    after_ties = false;
  }
  std::vector<std::string> last;
  frames.Finish(/*ends_unit=*/true, /*emit_if_empty=*/true, &last, cut ? ",\"cut\":true" : "");
  for (std::string& f : last) plan->deliveries.push_back({to, std::move(f)});
  return Status::Ok();
}

}  // namespace seqsync
