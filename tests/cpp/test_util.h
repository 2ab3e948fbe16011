// Test harness: a Core over real SQLite, plus a tiny stand-in for the JS
// shell (it executes mutation ops as plain SQL inside a transaction), so
// tests drive the core exactly as the Durable Object does.

#ifndef SEQSYNC_TESTS_TEST_UTIL_H_
#define SEQSYNC_TESTS_TEST_UTIL_H_

#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "json_util.h"
#include "seqsync/core.h"
#include "seqsync/sqlite_storage.h"

// Sets of ids print as {a, b, c} in failed checks.
namespace doctest {
template <>
struct StringMaker<std::set<std::string>> {
  static String convert(const std::set<std::string>& ids) {
    std::string out = "{";
    for (const std::string& id : ids) out += (out.size() > 1 ? ", " : "") + id;
    return (out + "}").c_str();
  }
};
template <>
struct StringMaker<seqsync::Code> {
  static String convert(seqsync::Code c) { return seqsync::CodeName(c); }
};
}  // namespace doctest

namespace seqsync {

inline std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.ToString(); }
inline std::ostream& operator<<(std::ostream& os, Code c) { return os << CodeName(c); }

// tests/vectors/schema.sql, the schema the golden session runs on: chat
// messages, tasks (numbers, reals and NULLs for predicates and windows) and
// insert-only notes.
inline constexpr char kChatSchema[] =
    "CREATE TABLE messages(id TEXT PRIMARY KEY, author TEXT NOT NULL, content TEXT NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE tasks(id TEXT PRIMARY KEY, title TEXT, done INTEGER, rank REAL);"
    "CREATE TABLE notes(id TEXT PRIMARY KEY, body TEXT);";

inline constexpr char kChatRegistration[] =
    R"({"collections":[{"table":"messages","pk":"id","ops":["insert","update","delete"]},)"
    R"({"table":"tasks","pk":"id","ops":["insert","update","delete"]},)"
    R"({"table":"notes","pk":"id","ops":["insert"]}],"commands":["echo"]})";

// Parses `text` as JSON; fails the test if it is not.
// The text of `relative` under the source tree (tests/vectors/…).
inline std::string ReadSourceFile(const std::string& relative) {
  std::string path = std::string(SEQSYNC_SOURCE_DIR) + "/" + relative;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE_MESSAGE(f != nullptr, "cannot open " << path);
  std::string text;
  char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  std::fclose(f);
  return text;
}

inline JsonDocument Json(const std::string& text) {
  JsonDocument d;
  Status s = ParseBounded(text, 64, &d);
  REQUIRE_MESSAGE(s.ok(), s.ToString() << " in " << text);
  return d;
}

// Runs normalised ops (the PendingMutation's ops_json) as SQL, like a user's
// execute would. Returns false iff SQLite refused one.
inline bool ExecuteOps(SqliteStorage* db, const std::string& ops_json) {
  JsonDocument ops = Json(ops_json);
  for (const JsonValue& op : ops.GetArray()) {
    std::string table(View(op["c"]));
    std::string kind(View(op["op"]));
    std::vector<SqlValue> params;
    auto bind = [&](const JsonValue& v) {
      if (v.IsString()) params.push_back(SqlValue::Text(std::string(View(v))));
      else if (v.IsInt64()) params.push_back(SqlValue::Integer(v.GetInt64()));
      else if (v.IsNumber()) params.push_back(SqlValue::Real(v.GetDouble()));
      else params.push_back(SqlValue::Null());
    };
    std::string sql;
    if (kind == "insert") {
      std::string names, marks;
      for (rapidjson::SizeType i = 0; i < op["cols"].MemberCount(); ++i) {
        auto m = op["cols"].MemberBegin() + i;
        if (!names.empty()) { names += ","; marks += ","; }
        names += "\"" + std::string(View(m->name)) + "\"";
        marks += "?" + std::to_string(params.size() + 1);
        bind(m->value);
      }
      sql = "INSERT INTO \"" + table + "\"(" + names + ") VALUES(" + marks + ")";
    } else if (kind == "update") {
      std::string sets;
      for (rapidjson::SizeType i = 0; i < op["cols"].MemberCount(); ++i) {
        auto m = op["cols"].MemberBegin() + i;
        if (!sets.empty()) sets += ",";
        sets += "\"" + std::string(View(m->name)) + "\"=?" + std::to_string(params.size() + 1);
        bind(m->value);
      }
      bind(op["k"]);
      sql = "UPDATE \"" + table + "\" SET " + sets + " WHERE id=?" + std::to_string(params.size());
    } else {
      bind(op["k"]);
      sql = "DELETE FROM \"" + table + "\" WHERE id=?1";
    }
    if (!db->Exec(sql, params).ok()) return false;
  }
  return true;
}

// The status of opening a core over `db` with `registration` (no sockets).
inline Status OpenStatus(Storage* db, const std::string& registration, Options options = Options()) {
  auto opened = Core::Open(db, options, registration, "e", {}, nullptr);
  return opened.ok() ? Status::Ok() : opened.status();
}

// A Core over a fresh in-memory database with the chat schema registered.
struct Harness {
  SqliteStorage db;
  Options options;
  std::unique_ptr<Core> core;
  std::int64_t now = 1'700'000'000'000;

  explicit Harness(Options o = Options(), const char* schema = kChatSchema,
                   const char* registration = kChatRegistration)
      : options(o) {
    REQUIRE(db.ok());
    db.MustExec(schema);
    Reopen(registration);
  }

  // Simulates a wake: a new Core over the same storage. Returns the
  // refusals of stored subscriptions the registration no longer allows.
  Plan Reopen(const char* registration = kChatRegistration,
              const std::vector<std::string>& live = {}) {
    core.reset();  // the old instance is gone before the new one reads SQLite
    Plan refusals;
    auto opened = Core::Open(&db, options, registration, "epoch-1", live, &refusals);
    REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    core = std::move(opened).value();
    return refusals;
  }

  // Frames `socket` receives from `plan`.
  static std::vector<std::string> FramesFor(const Plan& plan, const std::string& socket) {
    std::vector<std::string> out;
    for (const Delivery& d : plan.deliveries) {
      for (const std::string& to : d.to) {
        if (to == socket) out.push_back(d.frame);
      }
    }
    return out;
  }

  Plan Send(const std::string& socket, const std::string& frame, const std::string& scope = "u1") {
    return core->OnMessage(socket, scope, frame, now);
  }

  // Sends `frame` and, if it yields a mutation, plays the shell: executes the
  // ops in a transaction and finishes or rejects. Returns every delivery.
  Plan SendAndRun(const std::string& socket, const std::string& frame,
                  const std::string& scope = "u1", bool fail_execute = false) {
    Plan plan = Send(socket, frame, scope);
    if (!plan.mutation) return plan;
    PendingMutation m = *plan.mutation;
    db.MustExec("BEGIN");
    bool ok = !fail_execute && ExecuteOps(&db, m.ops_json);
    Result<Seq> seq = ok ? core->CommitMutation(scope, m.id, m.command.empty() ? "" : m.args_json, now)
                         : Result<Seq>(Status::ExecuteFailed("execute threw"));
    Plan rest;
    if (seq.ok()) {
      db.MustExec("COMMIT");
      rest = core->FinishMutation(scope, m.id, now);
    } else {
      db.MustExec("ROLLBACK");
      rest = core->RejectMutation(scope, m.id, Status::ExecuteFailed("mutation failed"), now);
    }
    for (Delivery& d : rest.deliveries) plan.deliveries.push_back(std::move(d));
    if (rest.close_code != 0) {
      plan.close_code = rest.close_code;
      plan.close_reason = rest.close_reason;
      plan.close = rest.close;
    }
    return plan;
  }

  // Connects `socket` with hello and subscribes it to `collection`.
  std::vector<std::string> Connect(const std::string& socket, const std::string& subs = "[]") {
    return FramesFor(Send(socket, R"({"t":"hello","v":1,"subs":)" + subs + "}"), socket);
  }

  long Count(const std::string& sql) {
    auto r = db.Exec(sql, {});
    REQUIRE(r.ok());
    return static_cast<long>((*r)[0][0].AsInteger());
  }
};

// The code of the first frame for `socket` in `plan` that carries one (an
// error, sub-error or reject), or Code::kOk if none does.
inline Code CodeOf(const Plan& plan, const std::string& socket) {
  for (const std::string& f : Harness::FramesFor(plan, socket)) {
    JsonDocument d = Json(f);
    if (d.HasMember("code")) return static_cast<Code>(d["code"].GetInt());
  }
  return Code::kOk;
}

// The frame's "t".
inline std::string TypeOf(const std::string& frame) {
  JsonDocument d = Json(frame);
  return std::string(View(d["t"]));
}

inline std::string InsertMessage(const std::string& mid, const std::string& key,
                                 const std::string& author = "u1",
                                 const std::string& content = "hi") {
  return R"({"t":"mut","id":")" + mid + R"(","ops":[{"c":"messages","op":"insert","k":")" + key +
         R"(","cols":{"id":")" + key + R"(","author":")" + author + R"(","content":")" + content +
         R"(","created_at":1}}]})";
}

}  // namespace seqsync

#endif  // SEQSYNC_TESTS_TEST_UTIL_H_
