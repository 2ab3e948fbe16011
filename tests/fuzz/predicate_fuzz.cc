// libFuzzer target: arbitrary JSON as a subscription `where`. Parsing must
// never crash; a predicate that parses must select in the core exactly the
// rows its SQL form selects in SQLite.

#include <cstdint>
#include <set>
#include <string>

#include "json_util.h"
#include "seqsync/predicate.h"
#include "seqsync/sqlite_storage.h"

namespace {

struct Fixture {
  seqsync::SqliteStorage db;
  seqsync::JsonDocument rows;
  Fixture() {
    db.MustExec(
        "CREATE TABLE t(id TEXT PRIMARY KEY, body TEXT, n INTEGER, r REAL);"
        "INSERT INTO t VALUES('a',NULL,1,1.5),('b','hello',NULL,-2),('c','HELLO',2,NULL),"
        "('d','',0,0),('e','10',10,10.0),('f','a_c',-1,2.5),('g','%',3,'x'),('h',5,'5',NULL);");
    auto r = db.Exec("SELECT json_group_array(json_object('id',id,'body',body,'n',n,'r',r)) FROM t", {});
    if (!r.ok() || !seqsync::ParseBounded((*r)[0][0].text, 8, &rows).ok()) __builtin_trap();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  seqsync::JsonDocument ir;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (!seqsync::ParseBounded(text, 32, &ir).ok()) return 0;
  auto p = seqsync::Predicate::Parse(ir, {"id", "body", "n", "r"}, seqsync::PredicateLimits{16, 256});
  if (!p.ok()) return 0;
  std::set<std::string> eval;
  for (const seqsync::JsonValue& row : f.rows.GetArray()) {
    if (p->Matches(row)) eval.insert(std::string(seqsync::View(row["id"])));
  }
  std::string literals;
  std::string where = p->ToSql(1, &literals);
  auto r = f.db.Exec("SELECT json_group_array(id) FROM t WHERE " + where,
                     {seqsync::SqlValue::Text(literals)});
  if (!r.ok()) __builtin_trap();  // compiled SQL must always be valid
  seqsync::JsonDocument ids;
  if (!seqsync::ParseBounded((*r)[0][0].text, 4, &ids).ok()) __builtin_trap();
  std::set<std::string> sql;
  for (const seqsync::JsonValue& id : ids.GetArray()) sql.insert(std::string(seqsync::View(id)));
  if (sql != eval) __builtin_trap();
  return 0;
}
