// Windows: orderBy + limit/offset, resolved once into a range.
//
// Invariant: a resolved window selects at least every row the window asked
// for when it was resolved (a superset is safe; a missing row is not), and
// from then on it is a plain predicate, so live changes move rows in and out
// of it exactly as for any `where`.
//
// Why a range and not "the top N": the core matches live changes row by row
// without reading the table, and "is this row among the first N" cannot be
// answered from one row. "Is its leading value between V[offset] and
// V[offset + limit - 1]" can, so the window is resolved into that range,
// ties included, against the rows as they are when it is answered. A window
// can then grow past `limit` as rows move in; the client's live query trims
// it (docs/protocol.md §4.2).
//
// A bound the predicate IR cannot hold (a BLOB, an infinite REAL) is left
// off: the range is open at that end, a superset.

#include "windows.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "frame_reader.h"
#include "sql_ident.h"
#include "too_big.h"

namespace seqsync {
namespace {

// Reads an optional count (limit or offset) into `*out`.
Status ReadCount(const JsonValue* v, const char* name, std::int64_t* out) {
  if (v == nullptr || v->IsNull()) return Status::Ok();
  if (!v->IsInt64() || v->GetInt64() < 0 || v->GetInt64() > (std::int64_t{1} << 31)) {
    return Status::InvalidField(std::string(name) + " must be an integer from 0 to 2^31");
  }
  *out = v->GetInt64();
  return Status::Ok();
}

// The leading value of a window at one position, as a bound's literal.
struct Edge {
  bool found = false;     // false: the position is past the last row
  bool open = false;      // true: the value cannot be a bound (BLOB, ±Inf)
  Predicate::Literal value;
};

Edge EdgeOf(const SqlRow& row) {
  Edge e;
  e.found = true;
  e.open = row[0].text == "blob";
  e.value.kind = Predicate::Literal::Kind::kNull;
  if (row[0].text == "integer" && row[1].kind == SqlValue::Kind::kText) {
    const std::string& digits = row[1].text;
    auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), e.value.integer);
    // Defensive: SQLite's text of an INTEGER always parses; else no bound (a superset).
    if (err != std::errc() || end != digits.data() + digits.size()) e.open = true;
    e.value.kind = Predicate::Literal::Kind::kNumber;
    e.value.is_int = true;
  } else if (row[1].kind == SqlValue::Kind::kInteger) {
    e.value.kind = Predicate::Literal::Kind::kNumber;
    e.value.is_int = true;
    e.value.integer = row[1].integer;
  } else if (row[1].kind == SqlValue::Kind::kReal) {
    e.value.kind = Predicate::Literal::Kind::kNumber;
    e.value.is_int = false;
    e.value.real = row[1].real;
    // JSON has no ±Inf: like a BLOB, the bound is left off (a superset).
    if (!std::isfinite(e.value.real)) e.open = true;
  } else if (row[1].kind == SqlValue::Kind::kText) {
    e.value.kind = Predicate::Literal::Kind::kText;
    e.value.text = row[1].text;
  }
  return e;
}

}  // namespace

Status ParseWindow(const JsonValue& body, const Collection& coll, std::optional<Window>* window) {
  const JsonValue* order = Member(body, "orderBy");
  Window w;
  SEQSYNC_RETURN_IF_ERROR(ReadCount(Member(body, "limit"), "limit", &w.limit));
  SEQSYNC_RETURN_IF_ERROR(ReadCount(Member(body, "offset"), "offset", &w.offset));
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
      std::string name(View(*col));
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
      w.terms.push_back({name, desc, nulls_first});
      // Later terms only order rows among ties, which a range includes
      // whole: only the leading term decides which rows are served.
      if (i == 0) {
        w.column = name;
        w.descending = desc;
        w.nulls_first = nulls_first;
      }
    }
  }
  if (w.limit < 0 && w.offset == 0) return Status::Ok();  // every matching row
  if (!has_order) w.column = coll.pk;  // a stable order for a bare limit
  *window = w;
  return Status::Ok();
}

Status ResolveWindow(const Options& options, Storage* storage, Schema* schema, Subscription* s) {
  if (!s->window) return Status::Ok();
  const Window w = *s->window;
  const Collection* coll = schema->Find(s->collection);
  if (coll == nullptr) return Status::UnknownCollection("collection '" + s->collection + "' is not registered");
  std::string literals;
  std::string where = s->predicate.ToSql(1, &literals);
  std::string col = QuoteIdent(w.column);
  // An INTEGER is read as its text: the DO's SQLite hands numbers to JS as
  // doubles, and an edge beyond 2^53 rounded would move the bound.
  std::string sql = "SELECT typeof(" + col + "), CASE WHEN typeof(" + col + ")='integer' THEN CAST(" + col +
                    " AS TEXT) ELSE " + col + " END FROM " + QuoteIdent(coll->table) + " WHERE " +
                    where + " ORDER BY " + col + (w.descending ? " DESC" : " ASC") +
                    (w.nulls_first ? " NULLS FIRST" : " NULLS LAST") + " LIMIT 1 OFFSET ?2";
  // The leading value at `position`.
  auto edge_at = [&](std::int64_t position, Edge* out) -> Status {
    auto r = storage->Exec(sql, {SqlValue::Text(literals), SqlValue::Integer(position)});
    if (!r.ok()) return Classified(r.status());
    if (r->empty()) {
      *out = Edge{};
      return Status::Ok();
    }
    if ((*r)[0].size() != 2) return Status::Internal("unexpected window bound shape");
    *out = EdgeOf((*r)[0]);
    return Status::Ok();
  };
  Predicate resolved = s->predicate;
  bool empty = w.limit == 0;
  Predicate::SortBound bound{w.column, w.descending, w.nulls_first, true, {}};
  Edge edge;
  if (!empty && w.offset > 0) {
    SEQSYNC_RETURN_IF_ERROR(edge_at(w.offset, &edge));
    empty = !edge.found;  // the offset skips every row
    if (edge.found && !edge.open) {
      bound.through = false;
      bound.value = edge.value;
      resolved = resolved.WithBound(bound);
    }
  }
  if (!empty && w.limit > 0) {
    SEQSYNC_RETURN_IF_ERROR(edge_at(w.offset + w.limit - 1, &edge));
    if (edge.found && !edge.open) {
      bound.through = true;
      bound.value = edge.value;
      resolved = resolved.WithBound(bound);
    }
  }
  if (empty) resolved = Predicate::None(w.column);
  s->predicate = std::move(resolved);
  s->where_json = s->predicate.ToIr();
  s->body = StoredBody(*s);
  s->window.reset();
  s->windowed = true;
  // The resolved where is the core's, not the client's: the bounds add nodes,
  // a level of nesting and the edge values as literals, which can take it
  // past the limits the client's where was held to. A wake reads it back
  // under those limits, and a body it cannot read is dropped there, so it is
  // refused now, with the reason, rather than lost later.
  JsonDocument doc;
  Status readable = ParseStoredBody(s->body, options, &doc);
  if (readable.ok()) readable = ReadSub(doc, options, storage, schema).status();
  if (!readable.ok()) {
    return Status(readable.code(), "the window resolves to a where over the limits: " + readable.message());
  }
  return Status::Ok();
}

}  // namespace seqsync
