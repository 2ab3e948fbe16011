// Registration and change capture.
//
// Every registered table gets three triggers, named _sync_changes_<table>_ins,
// _upd and _del. Each appends (table, key, op) to _sync_changes, whose
// AUTOINCREMENT seq is assigned inside the writing transaction, so the log's
// order is commit order and a rolled-back write leaves no entry. Triggers
// record only the key: rows are read when they are sent, which is why an
// ALTER TABLE ADD COLUMN reaches clients without re-registering.
//
// Keys must have TEXT affinity. An INTEGER PRIMARY KEY aliases the rowid,
// which SQLite assigns, so a client-minted id could be replaced by the
// server's and the optimistic row would never be confirmed under its own key.

#include "schema.h"

#include <algorithm>
#include <cctype>

#include "frame_writer.h"
#include "sql_ident.h"

namespace seqsync {
namespace {

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// SQLite's affinity rules (https://sqlite.org/datatype3.html §3.1), in order.
bool HasTextAffinity(const std::string& declared) {
  std::string t = Upper(declared);
  if (t.find("INT") != std::string::npos) return false;
  return t.find("CHAR") != std::string::npos || t.find("CLOB") != std::string::npos ||
         t.find("TEXT") != std::string::npos;
}

}  // namespace

// The row as one JSON object. DO SQLite allows 32 arguments per function, so
// json_object takes the first 15 columns and json_insert adds the rest 15 at
// a time. JSON cannot hold bytes or infinities: BLOBs become {"$hex": "..."}
// and ±Inf REALs {"$real": "Infinity"} / {"$real": "-Infinity"}.
std::string RowSql(const std::vector<std::string>& columns,
                   const std::map<std::string, std::string, std::less<>>& types) {
  // Values JSON cannot hold, tagged: a BLOB {"$hex"}, ±Inf {"$real"}, an
  // integer beyond ±(2^53-1), which JS would round, {"$int":"…"}. A declared
  // type encodes its column's values: boolean true/false, date {"$date":ms},
  // json the parsed value (text that is not JSON stays text), bigint every
  // integer as {"$int"}.
  auto value = [&types](const std::string& c) {
    const std::string q = QuoteIdent(c);
    auto type = types.find(c);
    const std::string declared = type == types.end() ? "" : type->second;
    std::string integer = "CASE WHEN " + q + " BETWEEN -9007199254740991 AND 9007199254740991 THEN " + q +
                          " ELSE json_object('$int',CAST(" + q + " AS TEXT)) END";
    std::string text = q;
    if (declared == "boolean") integer = "json(CASE WHEN " + q + " THEN 'true' ELSE 'false' END)";
    if (declared == "date") integer = "json_object('$date'," + q + ")";
    if (declared == "bigint") integer = "json_object('$int',CAST(" + q + " AS TEXT))";
    if (declared == "json") text = "CASE WHEN json_valid(" + q + ") THEN json(" + q + ") ELSE " + q + " END";
    return "CASE typeof(" + q + ") WHEN 'blob' THEN json_object('$hex',hex(" + q + "))" +
           " WHEN 'integer' THEN " + integer + " WHEN 'text' THEN " + text +
           " WHEN 'real' THEN CASE WHEN abs(" + q + ") = 9e999 THEN json_object('$real',CASE WHEN " + q +
           " > 0 THEN 'Infinity' ELSE '-Infinity' END) ELSE " + (declared == "date" ? "json_object('$date'," + q + ")" : q) +
           " END ELSE " + q + " END";
  };
  constexpr size_t kPerCall = 15;
  std::string sql = "json_object(";
  size_t i = 0;
  for (; i < columns.size() && i < kPerCall; ++i) {
    if (i > 0) sql += ",";
    sql += "'" + columns[i] + "'," + value(columns[i]);
  }
  sql += ")";
  while (i < columns.size()) {
    std::string next = "json_insert(" + sql;
    for (size_t j = 0; j < kPerCall && i < columns.size(); ++j, ++i) {
      next += ",'$.\"" + columns[i] + "\"'," + value(columns[i]);
    }
    sql = next + ")";
  }
  return sql;
}

namespace {

struct TriggerDef {
  std::string name;
  std::string sql;
};

std::vector<TriggerDef> TriggersFor(const Collection& c) {
  std::string t = c.table, k = QuoteIdent(c.pk), qt = QuoteIdent(c.table);
  std::string log = "INSERT INTO _sync_changes(tbl,key,op) VALUES('" + t + "',";
  return {
      {"_sync_changes_" + t + "_ins",
       "CREATE TRIGGER _sync_changes_" + t + "_ins AFTER INSERT ON " + qt +
           " BEGIN " + log + "NEW." + k + ",1); END"},
      // An update that changes the key removes the old key and writes the new.
      {"_sync_changes_" + t + "_upd",
       "CREATE TRIGGER _sync_changes_" + t + "_upd AFTER UPDATE ON " + qt +
           " BEGIN INSERT INTO _sync_changes(tbl,key,op) SELECT '" + t + "',OLD." + k +
           ",3 WHERE OLD." + k + " IS NOT NEW." + k + "; " + log + "NEW." + k + ",2); END"},
      {"_sync_changes_" + t + "_del",
       "CREATE TRIGGER _sync_changes_" + t + "_del AFTER DELETE ON " + qt +
           " BEGIN " + log + "OLD." + k + ",3); END"},
  };
}


// seqsync's own tables.
struct InternalTable {
  const char* name;
  const char* ddl;
};
const InternalTable kInternalTables[] = {
    {"_sync_changes",
     "CREATE TABLE IF NOT EXISTS _sync_changes(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
     " tbl TEXT NOT NULL, key TEXT NOT NULL, op INTEGER NOT NULL)"},
    // The tables keyed by text are WITHOUT ROWID: a row lives in its key's
    // b-tree alone, so a write dirties one page where a rowid table and its
    // key's index dirty two (a confirmed write records its outcome in
    // _sync_mutations). Storage made before keeps its rowid tables, which
    // the same statements serve.
    {"_sync_meta", "CREATE TABLE IF NOT EXISTS _sync_meta(name TEXT PRIMARY KEY, value) WITHOUT ROWID"},
    // Retention marks: at time ts (ms), the log's head was seq.
    {"_sync_marks", "CREATE TABLE IF NOT EXISTS _sync_marks(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL)"},
    // Mutation outcomes, for exactly-once replays, scoped by identity.
    {"_sync_mutations",
     "CREATE TABLE IF NOT EXISTS _sync_mutations(scope TEXT NOT NULL, id TEXT NOT NULL,"
     " reply TEXT NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY(scope, id)) WITHOUT ROWID"},
    {"_sync_sockets", "CREATE TABLE IF NOT EXISTS _sync_sockets(socket TEXT PRIMARY KEY) WITHOUT ROWID"},
    {"_sync_subs",
     "CREATE TABLE IF NOT EXISTS _sync_subs(socket TEXT NOT NULL, sub TEXT NOT NULL,"
     " body TEXT NOT NULL, PRIMARY KEY(socket, sub))"},
};

bool IsInternalTable(const std::string& name) {
  for (const InternalTable& t : kInternalTables) {
    if (name == t.name) return true;
  }
  return false;
}

// Everything registration compares against, in one read: seqsync's tables
// (by prefix; reserved for it), the registered tables' DDL (?1: their names
// as a JSON array) and the change-capture triggers. Table names match as
// SQLite matches them, case-insensitively.
constexpr const char* kObjectsSql =
    "SELECT type, name, sql FROM sqlite_master WHERE (type = 'table' AND (lower(name) IN"
    " (SELECT lower(value) FROM json_each(?1)) OR name LIKE '\\_sync\\_%' ESCAPE '\\'))"
    " OR (type = 'trigger' AND name LIKE '\\_sync\\_changes\\_%' ESCAPE '\\') ORDER BY name";

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Status Schema::ReadColumns(Storage* storage, Collection* c, const std::string* ddl) {
  auto rows = storage->Exec("PRAGMA table_info(" + QuoteIdent(c->table) + ")", {});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) {
    return Status::Schema("table not found: '" + c->table +
                          "'. Create it (CREATE TABLE) before calling registerSync.");
  }
  std::vector<std::string> columns;
  std::vector<std::string> pks;
  std::string pk_type;
  for (const SqlRow& row : *rows) {
    // cid, name, type, notnull, dflt_value, pk
    if (row.size() < 6) return Status::Internal("unexpected PRAGMA table_info shape");
    const std::string& name = row[1].text;
    if (!IsPlainIdentifier(name)) {
      return Status::Schema("column '" + name + "' of '" + c->table +
                            "' is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)");
    }
    if (ddl != nullptr && Upper(name) == "ROWID") {
      return Status::Schema("table '" + c->table + "' has a column named rowid; rename it");
    }
    columns.push_back(name);
    if (row[5].AsInteger() > 0) {
      pks.push_back(name);
      pk_type = row[2].text;
    }
  }
  if (ddl != nullptr) {
    if (pks.size() != 1 || pks[0] != c->pk) {
      return Status::Schema(
          "'" + c->pk + "' must be the sole PRIMARY KEY of '" + c->table + "'" +
          (pks.size() > 1 ? " (composite keys are not supported)" : "") +
          ". Declare it as `" + c->pk + " TEXT PRIMARY KEY`.");
    }
    if (!HasTextAffinity(pk_type)) {
      return Status::Schema(
          "primary key '" + c->table + "." + c->pk + "' is declared '" + pk_type +
          "' but must have TEXT affinity (TEXT, VARCHAR, CHAR, …): clients mint ids "
          "(ULID/UUIDv7) and an INTEGER key aliases the server-assigned rowid. "
          "Declare it as `" + c->pk + " TEXT PRIMARY KEY`.");
    }
    if (Upper(*ddl).find("WITHOUT ROWID") != std::string::npos) {
      return Status::Schema("table '" + c->table +
                            "' is WITHOUT ROWID; seqsync needs a rowid table");
    }
  }
  c->columns = std::move(columns);
  c->row_sql = RowSql(c->columns, c->types);
  ++generation_;
  return Status::Ok();
}

Status Schema::Register(Storage* storage, const JsonValue& reg) {
  std::map<std::string, Collection, std::less<>> collections;
  std::set<std::string, std::less<>> commands;
  const JsonValue* list = Member(reg, "collections");
  if (list == nullptr || !list->IsArray()) {
    return Status::Schema("registration needs a \"collections\" array");
  }
  for (const JsonValue& entry : list->GetArray()) {
    const JsonValue* table = Member(entry, "table");
    const JsonValue* pk = Member(entry, "pk");
    if (table == nullptr || !table->IsString() || pk == nullptr || !pk->IsString()) {
      return Status::Schema("each collection needs a string table and pk");
    }
    Collection c;
    c.table.assign(View(*table));
    c.pk.assign(View(*pk));
    if (!IsPlainIdentifier(c.table) || !IsPlainIdentifier(c.pk)) {
      return Status::Schema("table and pk names must match [A-Za-z_][A-Za-z0-9_]*: '" +
                            c.table + "." + c.pk + "'");
    }
    // SQLite identifiers are case-insensitive: _SYNC_changes is _sync_changes.
    std::string lower = c.table;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lower.rfind("_sync_", 0) == 0 || lower.rfind("_cf_", 0) == 0 || lower.rfind("sqlite_", 0) == 0) {
      return Status::Schema("table name '" + c.table + "' is reserved");
    }
    if (collections.count(c.table)) {
      return Status::Schema("collection '" + c.table + "' is defined twice");
    }
    if (const JsonValue* types = Member(entry, "types"); types != nullptr) {
      if (!types->IsObject()) return Status::Schema("a collection's types must be an object of column -> type");
      for (auto& m : types->GetObject()) {
        std::string_view type = m.value.IsString() ? View(m.value) : "";
        if (!IsPlainIdentifier(View(m.name)) ||
            (type != "boolean" && type != "date" && type != "json" && type != "bigint")) {
          return Status::Schema("column '" + std::string(View(m.name)).substr(0, 64) + "' of '" + c.table +
                                "': a type is boolean, date, json or bigint");
        }
        c.types.emplace(View(m.name), type);
      }
    }
    if (const JsonValue* ops = Member(entry, "ops"); ops != nullptr && ops->IsArray()) {
      for (const JsonValue& op : ops->GetArray()) {
        if (op.IsString()) c.ops.emplace(View(op));
      }
    }
    collections.emplace(c.table, std::move(c));
  }
  if (const JsonValue* cmds = Member(reg, "commands"); cmds != nullptr && cmds->IsArray()) {
    for (const JsonValue& name : cmds->GetArray()) {
      if (!name.IsString()) return Status::Schema("command names must be strings");
      if (!commands.emplace(View(name)).second) {
        return Status::Schema("command '" + std::string(View(name)) + "' is defined twice");
      }
    }
  }
  std::string table_names_json = "[";
  for (const auto& [name, c] : collections) {
    if (table_names_json.size() > 1) table_names_json += ",";
    table_names_json += JsonQuote(name);
  }
  table_names_json += "]";

  auto objects = storage->Exec(kObjectsSql, {SqlValue::Text(table_names_json)});
  if (!objects.ok()) return objects.status();
  int internal_tables = 0;
  std::set<std::string> registered_lower;
  for (const auto& [name, c] : collections) registered_lower.insert(Lower(name));
  std::map<std::string, std::string> ddl_by_lower_name;  // registered tables
  std::map<std::string, std::string> triggers;           // name -> sql
  std::string fingerprint;
  std::string stored_names;  // the registered tables' names as sqlite_master spells them
  for (const SqlRow& row : *objects) {
    if (row.size() != 3) return Status::Internal("unexpected sqlite_master shape");
    const std::string& type = row[0].text;
    const std::string& name = row[1].text;
    if (type == "trigger") {
      triggers.emplace(name, row[2].text);
    } else if (IsInternalTable(name)) {
      ++internal_tables;
    } else if (registered_lower.count(Lower(name))) {
      ddl_by_lower_name.emplace(Lower(name), row[2].text);
      if (!fingerprint.empty()) fingerprint += '\x1e';
      fingerprint += name + '\x1f' + row[2].text;
      if (!stored_names.empty()) stored_names += ",";
      stored_names += "'" + name + "'";  // a registered name: a plain identifier
    }
  }
  // On a wake they all exist. A no-op CREATE ... IF NOT EXISTS would still
  // make the wake a write in a Durable Object.
  if (internal_tables != static_cast<int>(std::size(kInternalTables))) {
    for (const InternalTable& t : kInternalTables) {
      auto r = storage->Exec(t.ddl, {});
      if (!r.ok()) return r.status();
    }
  }
  for (auto& [name, c] : collections) {
    auto ddl = ddl_by_lower_name.find(Lower(name));
    static const std::string kNoDdl;
    SEQSYNC_RETURN_IF_ERROR(ReadColumns(storage, &c, ddl == ddl_by_lower_name.end() ? &kNoDdl : &ddl->second));
  }

  // Make the triggers match the registry.
  std::map<std::string, std::string> wanted;
  for (const auto& [name, c] : collections) {
    for (TriggerDef& t : TriggersFor(c)) wanted.emplace(t.name, t.sql);
  }
  for (const auto& [name, sql] : triggers) {
    auto it = wanted.find(name);
    if (it != wanted.end() && it->second == sql) {
      wanted.erase(it);  // already installed as wanted
      continue;
    }
    auto dropped = storage->Exec("DROP TRIGGER IF EXISTS " + QuoteIdent(name), {});
    if (!dropped.ok()) return dropped.status();
  }
  for (const auto& [name, sql] : wanted) {
    auto created = storage->Exec(sql, {});
    if (!created.ok()) return created.status();
  }
  collections_ = std::move(collections);
  commands_ = std::move(commands);
  // name US sql, joined by RS, in name order: exactly the string built above
  // from kObjectsSql's rows. The names are spliced (no json_each): this runs
  // with every drain.
  fingerprint_sql_ = "SELECT group_concat(name || char(31) || sql, char(30)) FROM (SELECT name, sql FROM sqlite_master"
                     " WHERE type = 'table' AND name IN (" + stored_names + ") ORDER BY name)";
  // The columns were just read from the DDL fingerprinted here.
  fingerprint_ = std::move(fingerprint);
  return Status::Ok();
}

Status Schema::RefreshIfChanged(Storage* storage) {
  // One small query: the registered tables' CREATE statements, which
  // ALTER TABLE rewrites.
  auto r = storage->Exec(fingerprint_sql_, {});
  if (!r.ok()) return r.status();
  std::string fingerprint = !r->empty() && !(*r)[0].empty() ? std::move((*r)[0][0].text) : "";
  if (!fingerprint_.empty() && fingerprint == fingerprint_) return Status::Ok();
  for (auto& [name, c] : collections_) {
    SEQSYNC_RETURN_IF_ERROR(ReadColumns(storage, &c, /*ddl=*/nullptr));
  }
  fingerprint_ = std::move(fingerprint);
  return Status::Ok();
}

const Collection* Schema::Find(std::string_view table) const {
  auto it = collections_.find(table);
  return it == collections_.end() ? nullptr : &it->second;
}

bool Schema::HasCommand(std::string_view name) const {
  return commands_.find(name) != commands_.end();
}

}  // namespace seqsync
