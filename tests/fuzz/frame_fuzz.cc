// libFuzzer target: arbitrary bytes as inbound frames on a live core. The
// core must never crash, and must answer every frame (a valid one with its
// normal reply, anything else with a typed error) while the tables and the
// change log stay consistent. Seeded from tests/vectors/ by scripts/fuzz.sh.

#include <cstdint>
#include <memory>
#include <string>

#include "seqsync/core.h"
#include "seqsync/sqlite_storage.h"

namespace {

struct Fixture {
  seqsync::SqliteStorage db;
  std::unique_ptr<seqsync::Core> core;
  Fixture() {
    db.MustExec(
        "CREATE TABLE messages(id TEXT PRIMARY KEY, author TEXT NOT NULL, content TEXT NOT NULL,"
        " created_at INTEGER NOT NULL);"
        "CREATE TABLE tasks(id TEXT PRIMARY KEY, title TEXT, done INTEGER, rank REAL);"
        "CREATE TABLE notes(id TEXT PRIMARY KEY, body TEXT);");
    seqsync::Options o;
    o.read_page_rows = 4;
    core = std::make_unique<seqsync::Core>(&db, o);
    if (!core->Register(R"({"collections":[{"table":"messages","pk":"id","ops":["insert","update","delete"]},)"
                        R"({"table":"tasks","pk":"id","ops":["insert","update","delete"]},)"
                        R"({"table":"notes","pk":"id","ops":["insert"]}],"commands":["echo"]})",
                        "fuzz").ok()) {
      __builtin_trap();
    }
    core->OnMessage("s", "u", R"({"t":"hello","v":1,"subs":[{"id":"m","c":"messages"}]})", 0);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  std::string frame(reinterpret_cast<const char*>(data), size);
  seqsync::Plan plan = f.core->OnMessage("s", "u", frame, 1);
  if (plan.mutation) {
    // Play the shell with an execute that writes nothing: the mutation must
    // still commit and ack exactly once.
    f.db.MustExec("BEGIN");
    auto seq = f.core->CommitMutation("u", plan.mutation->id, "", 1);
    f.db.MustExec(seq.ok() ? "COMMIT" : "ROLLBACK");
    seqsync::Plan done = seq.ok() ? f.core->FinishMutation("u", plan.mutation->id, 1)
                                  : f.core->RejectMutation("u", plan.mutation->id, seq.status(), 1);
    if (done.deliveries.empty()) __builtin_trap();
  }
  // A second socket's hello exercises the resume path over whatever the
  // fuzzer built up.
  f.core->OnMessage("r", "u", frame, 1);
  f.core->OnClose("r");
  return 0;
}
