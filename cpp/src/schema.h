// Schema: the registered collections, their columns, and the change-capture
// triggers that feed the change log. Internal to the core.

#ifndef SEQSYNC_SCHEMA_H_
#define SEQSYNC_SCHEMA_H_

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "json_util.h"
#include "seqsync/status.h"
#include "seqsync/storage.h"

namespace seqsync {

struct Collection {
  std::string table;
  std::string pk;
  std::set<std::string> ops;         // ops with a mutation handler
  std::vector<std::string> columns;  // as of the last Refresh
  // Declared column types (docs/protocol.md §5.3): column -> boolean, date,
  // json or bigint.
  std::map<std::string, std::string, std::less<>> types;
  std::string row_sql;  // SQL expression: the row as a JSON object
};

// The row of a table with these columns as one JSON object (an SQL
// expression), each value encoded for its declared type in `types`.
std::string RowSql(const std::vector<std::string>& columns,
                   const std::map<std::string, std::string, std::less<>>& types);

class Schema {
 public:
  // Validates `registration` ({"collections":[…],"commands":[…]}), reads each
  // table's columns, and makes the triggers match: creates missing ones,
  // replaces changed ones, drops those of tables no longer registered. Never
  // touches a trigger whose name does not start with "_sync_changes_".
  // It runs one sqlite_master read and one PRAGMA table_info per collection,
  // plus DDL only where something is missing or changed: a wake is a read.
  Status Register(Storage* storage, const JsonValue& registration);

  // Re-reads the columns of every collection if the schema changed since the
  // last read (an ALTER TABLE ADD COLUMN), so rows carry new columns.
  Status RefreshIfChanged(Storage* storage);

  // The same check folded into another statement: FingerprintSql() is a
  // query whose result IS FingerprintValue() iff nothing changed.
  const std::string& FingerprintSql() const { return fingerprint_sql_; }
  SqlValue FingerprintValue() const { return SqlValue::Text(fingerprint_); }

  // Changes whenever a collection's columns are (re)read: SQL built from
  // them is stale once it moved.
  unsigned generation() const { return generation_; }

  // The collection for `table`, or nullptr iff it is not registered.
  const Collection* Find(std::string_view table) const;
  bool HasCommand(std::string_view name) const;
  // The registered collections, by table name.
  const std::map<std::string, Collection, std::less<>>& collections() const { return collections_; }

 private:
  // Reads `c`'s columns. With its DDL (`ddl`), also validates the table for
  // registration: a sole TEXT primary key named c->pk, a rowid table.
  Status ReadColumns(Storage* storage, Collection* c, const std::string* ddl);

  std::map<std::string, Collection, std::less<>> collections_;
  std::set<std::string, std::less<>> commands_;
  // The DDL of the registered tables when columns were last read. A change
  // (ALTER TABLE) makes RefreshIfChanged re-read them. Not PRAGMA
  // schema_version: Durable Object SQLite refuses it (SQLITE_AUTH).
  std::string fingerprint_;
  std::string fingerprint_sql_;  // reads the fingerprint (registered names spliced)
  unsigned generation_ = 0;
};

}  // namespace seqsync

#endif  // SEQSYNC_SCHEMA_H_
