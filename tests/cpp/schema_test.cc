// Registration: which tables can sync, and the change-capture triggers.

#include "schema.h"

#include <sqlite3.h>

#include "test_util.h"

namespace seqsync {
namespace {

// Registers `table` (pk `id`) over `ddl`; returns the status.
Status RegisterOne(const std::string& ddl, const std::string& table = "t", const std::string& pk = "id") {
  SqliteStorage db;
  db.MustExec(ddl);
  return OpenStatus(&db, R"({"collections":[{"table":")" + table + R"(","pk":")" + pk + R"("}]})");
}

// SQLite that records every statement the core runs.
class RecordingStorage : public SqliteStorage {
 public:
  std::vector<std::string> statements;
  Result<std::vector<SqlRow>> Exec(std::string_view sql, const std::vector<SqlValue>& params) override {
    statements.emplace_back(sql);
    return SqliteStorage::Exec(sql, params);
  }
};

}  // namespace

TEST_SUITE("schema") {

TEST_CASE("a core exists only registered: Open refuses a registration it cannot install, with its reason") {
  // So no core ever answers a frame unregistered; a Durable Object that never
  // called registerSync is answered NOT_REGISTERED by the shell.
  SqliteStorage db;
  db.MustExec(kChatSchema);
  Plan refusals;
  auto missing = Core::Open(&db, Options(), R"({"collections":[{"table":"nope","pk":"id"}]})", "e", {"s1"}, &refusals);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == Code::kSchema);
  CHECK(missing.status().message().find("'nope'") != std::string::npos);
  CHECK(OpenStatus(&db, "not json").code() == Code::kMalformedFrame);
  CHECK(refusals.deliveries.empty());
  CHECK(OpenStatus(&db, kChatRegistration).ok());
}

TEST_CASE("a wake is a read: one sqlite_master read, a table_info per collection, two state reads") {
  RecordingStorage db;
  db.MustExec(kChatSchema);
  REQUIRE(OpenStatus(&db, kChatRegistration).ok());
  auto scalar = [&](const char* sql) { return db.Exec(sql, {}).value()[0][0].AsInteger(); };
  const std::int64_t schema_version = scalar("PRAGMA schema_version");
  const int changes = sqlite3_total_changes(db.db());
  db.statements.clear();

  auto woken = Core::Open(&db, Options(), kChatRegistration, "e", {}, nullptr);
  REQUIRE(woken.ok());
  CHECK(db.statements.size() == 6);  // kChatSchema registers three collections
  for (const std::string& sql : db.statements) {
    CAPTURE(sql);
    CHECK((sql.rfind("SELECT ", 0) == 0 || sql.rfind("PRAGMA table_info(", 0) == 0));
  }
  CHECK(scalar("PRAGMA schema_version") == schema_version);
  CHECK(sqlite3_total_changes(db.db()) == changes);

  // The fingerprint taken at registration matches the one the first drain
  // reads, so the columns are not read again.
  db.statements.clear();
  (*woken)->Drain(1);
  for (const std::string& sql : db.statements) CHECK(sql.find("table_info") == std::string::npos);
}

TEST_CASE("keys with TEXT affinity are accepted, column- or table-level") {
  for (const char* ddl : {"CREATE TABLE t(id TEXT PRIMARY KEY, v)",
                          "CREATE TABLE t(id VARCHAR(26) PRIMARY KEY, v)",
                          "CREATE TABLE t(id CHARACTER(20) NOT NULL, v, PRIMARY KEY(id))",
                          "CREATE TABLE t(id text primary key collate nocase)"}) {
    CAPTURE(ddl);
    CHECK(RegisterOne(ddl).ok());
  }
}

TEST_CASE("keys without TEXT affinity are refused with the reason and the fix") {
  for (const char* ddl : {"CREATE TABLE t(id INTEGER PRIMARY KEY, v)",
                          "CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, v)",
                          "CREATE TABLE t(id BLOB PRIMARY KEY, v)",
                          "CREATE TABLE t(id REAL PRIMARY KEY, v)",
                          "CREATE TABLE t(id PRIMARY KEY, v)"}) {
    CAPTURE(ddl);
    Status s = RegisterOne(ddl);
    CHECK(s.code() == Code::kSchema);
    CHECK(s.message().find("TEXT affinity") != std::string::npos);
    CHECK(s.message().find("TEXT PRIMARY KEY") != std::string::npos);
  }
}

TEST_CASE("a composite, missing or misplaced primary key is refused") {
  Status composite = RegisterOne("CREATE TABLE t(id TEXT, b TEXT, PRIMARY KEY(id, b))");
  CHECK(composite.code() == Code::kSchema);
  CHECK(composite.message().find("composite") != std::string::npos);
  CHECK(RegisterOne("CREATE TABLE t(id TEXT, v)").message().find("sole PRIMARY KEY") != std::string::npos);
  CHECK(RegisterOne("CREATE TABLE t(id TEXT, v TEXT PRIMARY KEY)").code() == Code::kSchema);
}

TEST_CASE("WITHOUT ROWID tables, rowid columns, missing tables and reserved names are refused") {
  CHECK(RegisterOne("CREATE TABLE t(id TEXT PRIMARY KEY, v) WITHOUT ROWID").message().find("WITHOUT ROWID") != std::string::npos);
  CHECK(RegisterOne("CREATE TABLE t(id TEXT PRIMARY KEY, rowid TEXT)").message().find("rowid") != std::string::npos);
  CHECK(RegisterOne("CREATE TABLE other(id TEXT PRIMARY KEY)").message().find("table not found") != std::string::npos);
  CHECK(RegisterOne("CREATE TABLE _sync_x(id TEXT PRIMARY KEY)", "_sync_x").message().find("reserved") != std::string::npos);
  CHECK(RegisterOne("CREATE TABLE t(id TEXT PRIMARY KEY)", "t; DROP TABLE t").message().find("[A-Za-z_]") != std::string::npos);
}

TEST_CASE("a collection or command defined twice is refused") {
  SqliteStorage db;
  db.MustExec("CREATE TABLE t(id TEXT PRIMARY KEY)");
  CHECK(OpenStatus(&db, R"({"collections":[{"table":"t","pk":"id"},{"table":"t","pk":"id"}]})").message().find("twice") != std::string::npos);
  CHECK(OpenStatus(&db, R"({"collections":[],"commands":["a","a"]})").message().find("twice") != std::string::npos);
}

TEST_CASE("registering again is idempotent: three triggers per table, one log entry per write") {
  Harness h;
  h.Reopen();
  h.Reopen();
  CHECK(h.Count("SELECT COUNT(*) FROM sqlite_master WHERE type='trigger'") == 9);
  h.db.MustExec("INSERT INTO messages VALUES('a','u','x',1); UPDATE messages SET content='y' WHERE id='a';"
                "DELETE FROM messages WHERE id='a'");
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_changes") == 3);
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_changes WHERE op=1") == 1);
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_changes WHERE op=3") == 1);
}

TEST_CASE("dropping a collection from the registry removes its triggers and keeps the user's") {
  Harness h;
  h.db.MustExec("CREATE TABLE audit(x); CREATE TRIGGER my_audit AFTER INSERT ON tasks BEGIN INSERT INTO audit VALUES(1); END;"
                "CREATE TRIGGER _sync_changesX AFTER INSERT ON notes BEGIN INSERT INTO audit VALUES(2); END;");
  h.Reopen(R"({"collections":[{"table":"messages","pk":"id","ops":["insert"]}]})");
  CHECK(h.Count("SELECT COUNT(*) FROM sqlite_master WHERE type='trigger' AND name LIKE '_sync_changes_tasks%'") == 0);
  CHECK(h.Count("SELECT COUNT(*) FROM sqlite_master WHERE name='my_audit'") == 1);
  CHECK(h.Count("SELECT COUNT(*) FROM sqlite_master WHERE name='_sync_changesX'") == 1);
  h.db.MustExec("INSERT INTO tasks(id) VALUES('t1'); INSERT INTO messages VALUES('a','u','x',1)");
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_changes") == 1);
  CHECK(h.Count("SELECT COUNT(*) FROM audit") == 1);
}

TEST_CASE("an update that changes the key logs the old key's removal") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  h.db.MustExec("INSERT INTO messages VALUES('a','u','x',1)");
  h.core->Drain(h.now);
  h.db.MustExec("UPDATE messages SET id='b' WHERE id='a'");
  auto f = Harness::FramesFor(h.core->Drain(h.now), "s1");
  REQUIRE(f.size() == 1);
  CHECK(f[0].find(R"({"c":"messages","k":"a"})") != std::string::npos);
  CHECK(f[0].find(R"("k":"b","row")") != std::string::npos);
}

TEST_CASE("a rolled-back write leaves no log entry") {
  Harness h;
  h.db.MustExec("BEGIN; INSERT INTO messages VALUES('a','u','x',1); ROLLBACK;");
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_changes") == 0);
}

TEST_CASE("BLOB values and wide tables are read back as JSON") {
  std::string ddl = "CREATE TABLE wide(id TEXT PRIMARY KEY";
  for (int i = 0; i < 40; ++i) ddl += ", c" + std::to_string(i) + " INTEGER";
  ddl += ", data BLOB)";
  Harness h(Options(), ddl.c_str(), R"({"collections":[{"table":"wide","pk":"id","ops":["insert"]}]})");
  h.Connect("s1", R"([{"id":"w","c":"wide"}])");
  h.db.MustExec("INSERT INTO wide(id, c0, c39, data) VALUES('a', 1, 39, x'00ff')");
  auto f = Harness::FramesFor(h.core->Drain(h.now), "s1");
  REQUIRE(f.size() == 1);
  JsonDocument d = Json(f[0]);
  const JsonValue& row = d["changes"][0]["row"];
  CHECK(row.MemberCount() == 42);
  CHECK(row["c39"].GetInt() == 39);
  CHECK(row["c20"].IsNull());
  CHECK(std::string(View(row["data"]["$hex"])) == "00FF");
}

}  // TEST_SUITE

}  // namespace seqsync
