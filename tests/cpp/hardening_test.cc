// What one hostile socket can make the core do: every bound on its cost, at
// N (accepted) and N+1 (refused with a typed error, nothing changed).

#include "frame_writer.h"
#include "test_util.h"

namespace seqsync {
namespace {

std::string Zeros(std::size_t n) {
  std::string s = "[";
  for (std::size_t i = 0; i < n; ++i) s += i ? ",0" : "0";
  return s + "]";
}

}  // namespace

TEST_SUITE("hardening") {

TEST_CASE("a frame of maxJsonValues values is parsed; one value more is TOO_LARGE before any work") {
  Options o;
  o.max_json_values = 100;
  Harness h(o);
  // The object, "nope" and the array are 3 values; the zeros the rest.
  CHECK(CodeOf(h.Send("s", R"({"t":"nope","x":)" + Zeros(97) + "}"), "s") == Code::kUnknownFrame);
  CHECK(CodeOf(h.Send("s", R"({"t":"nope","x":)" + Zeros(98) + "}"), "s") == Code::kTooLarge);
  // The attack's shape at the default bound: a sub of 1.5M zeros.
  Harness d;
  Plan p = d.Send("s", R"({"t":"sub","id":"x","c":"messages","where":)" + Zeros(1500000) + "}");
  CHECK(CodeOf(p, "s") == Code::kTooLarge);
}

TEST_CASE("hello.subs: the cap and unique ids are checked before any entry is parsed") {
  Options o;
  o.max_subs_per_socket = 2;
  Harness h(o);
  SUBCASE("a list longer than the cap is one TOO_MANY, and the hello is not accepted") {
    // Entries that would each be refused if they were parsed.
    Plan p = h.Send("s", R"({"t":"hello","v":1,"subs":[{"id":"a","c":"x"},{"id":"b","c":"y"},{"id":"c","c":"z"}]})");
    auto frames = Harness::FramesFor(p, "s");
    REQUIRE(frames.size() == 1);
    CHECK(CodeOf(p, "s") == Code::kTooMany);
    CHECK(CodeOf(h.Send("s", R"({"t":"sub","id":"a","c":"messages"})"), "s") == Code::kProtocolOrder);
    CHECK(TypeOf(h.Connect("s", R"([{"id":"a","c":"messages"},{"id":"b","c":"tasks"}])")[0]) == "welcome");
  }
  SUBCASE("a repeated id is INVALID_FIELD; nothing is stored or snapshotted") {
    Plan p = h.Send("s", R"({"t":"hello","v":1,"subs":[{"id":"a","c":"messages"},{"id":"a","c":"messages"}]})");
    auto frames = Harness::FramesFor(p, "s");
    REQUIRE(frames.size() == 1);
    CHECK(CodeOf(p, "s") == Code::kInvalidField);
    CHECK(h.Count("SELECT COUNT(*) FROM _sync_subs") == 0);
  }
}

TEST_CASE("a sub past the cap is refused before its where is parsed") {
  Options o;
  o.max_subs_per_socket = 1;
  Harness h(o);
  h.Connect("s", R"([{"id":"a","c":"messages"}])");
  // An unknown collection would be UNKNOWN_COLLECTION if it were parsed.
  CHECK(CodeOf(h.Send("s", R"({"t":"sub","id":"b","c":"nope"})"), "s") == Code::kTooMany);
  // A replacement of the one it holds is still fine.
  CHECK(CodeOf(h.Send("s", R"({"t":"sub","id":"a","c":"tasks"})"), "s") == Code::kOk);
}

TEST_CASE("a hello sub whose snapshot fails holds nothing: no changes, nothing stored") {
  Harness h;
  h.db.FailNextMatching("MAX(_sync_rowid)");  // the snapshot's read
  Plan p = h.Send("s", R"({"t":"hello","v":1,"subs":[{"id":"m","c":"messages"},{"id":"t","c":"tasks"}]})");
  auto frames = Harness::FramesFor(p, "s");
  int sub_errors = 0, snapshots = 0;
  for (const std::string& f : frames) {
    sub_errors += TypeOf(f) == "sub-error";
    snapshots += TypeOf(f) == "snapshot";
  }
  CHECK(sub_errors == 1);
  CHECK(snapshots == 1);
  CHECK(TypeOf(frames.back()) == "synced");
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_subs WHERE sub='m'") == 0);
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_subs WHERE sub='t'") == 1);
  // A message (only the refused sub would cover it) reaches nobody.
  Plan w = h.SendAndRun("s", InsertMessage("m1", "k1"));
  for (const std::string& f : Harness::FramesFor(w, "s")) CHECK(TypeOf(f) != "changes");
}

TEST_CASE("sub: a burst of subRateBurst, then subRatePerSecond; past it RATE_LIMITED; unsub is free") {
  Options o;
  o.sub_rate_burst = 4;
  o.sub_rate_per_second = 2;
  Harness h(o);
  h.Connect("s");
  auto sub = [&] { return CodeOf(h.Send("s", R"({"t":"sub","id":"a","c":"messages"})"), "s"); };
  for (int i = 0; i < 4; ++i) CHECK(sub() == Code::kOk);
  CHECK(sub() == Code::kRateLimited);
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_subs") == 1);
  // unsub is never limited: it frees; an unknown id runs no statement.
  long before = h.db.exec_count();
  CHECK(h.Send("s", R"({"t":"unsub","id":"nope"})").deliveries.empty());
  CHECK(h.db.exec_count() == before);
  CHECK(h.Send("s", R"({"t":"unsub","id":"a"})").deliveries.empty());
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_subs") == 0);
  h.now += 500;  // one token back
  CHECK(sub() == Code::kOk);
  CHECK(sub() == Code::kRateLimited);
  h.now += 60'000;  // never more than the burst
  for (int i = 0; i < 4; ++i) CHECK(sub() == Code::kOk);
  CHECK(sub() == Code::kRateLimited);
}

TEST_CASE("at most kMaxWaitersPerMutation sockets wait on one in-flight id; the next gets an error, not a reject") {
  Harness h;
  std::string mut = InsertMessage("m1", "k1");
  for (std::size_t i = 0; i <= kMaxWaitersPerMutation + 1; ++i) h.Connect("s" + std::to_string(i));
  REQUIRE(h.Send("s0", mut).mutation.has_value());
  CHECK(h.Send("s0", mut).deliveries.empty());  // the owner already waits: once
  for (std::size_t i = 1; i <= kMaxWaitersPerMutation; ++i) {
    CHECK(h.Send("s" + std::to_string(i), mut).deliveries.empty());
  }
  std::string last = "s" + std::to_string(kMaxWaitersPerMutation + 1);
  auto refused = Harness::FramesFor(h.Send(last, mut), last);
  REQUIRE(refused.size() == 1);
  CHECK(TypeOf(refused[0]) == "error");
  CHECK(CodeOf(h.Send(last, mut), last) == Code::kTooMany);
}

TEST_CASE("rejections are not recorded: refused writes with fresh ids store nothing") {
  Harness h;
  h.Connect("s");
  for (int i = 0; i < 20; ++i) {
    std::string id = "bad" + std::to_string(i);
    Plan p = h.Send("s", R"({"t":"mut","id":")" + id + R"(","ops":[{"c":"nope","op":"insert","k":"k","cols":{}}]})");
    CHECK(CodeOf(p, "s") == Code::kUnknownCollection);
  }
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_mutations") == 0);
  // Committed outcomes still are.
  h.SendAndRun("s", InsertMessage("good", "k1"));
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_mutations") == 1);
}

TEST_CASE("an INTERNAL error reaches the client as a fixed sentence; other codes keep their message") {
  std::string internal = ErrorFrame(Status::Internal("no such table: secret_table: SQLITE_ERROR"));
  CHECK(internal.find("secret_table") == std::string::npos);
  CHECK(internal.find("internal error; the Durable Object logged the detail") != std::string::npos);
  CHECK(RejectFrame("m", Status::Unauthorized("not yours")).find("not yours") != std::string::npos);
}

TEST_CASE("reserved table prefixes are refused in any case") {
  for (const char* table : {"_sync_x", "_SYNC_x", "_Sync_X", "_CF_x"}) {
    CAPTURE(table);
    SqliteStorage db;
    db.MustExec(std::string("CREATE TABLE \"") + table + "\"(id TEXT PRIMARY KEY)");
    Status s = OpenStatus(&db, std::string(R"({"collections":[{"table":")") + table + R"(","pk":"id"}]})");
    CHECK(s.code() == Code::kSchema);
  }
}

TEST_CASE("a snapshot larger than kPlanFlushBytes leaves as it is read: the plan never holds it whole") {
  Options o;
  o.snapshot_chunk_bytes = 64 << 10;
  Harness h(o);
  std::string body(1000, 'x');
  h.db.MustExec("BEGIN");
  for (int i = 0; i < 6000; ++i) {
    h.db.MustExec("INSERT INTO notes(id, body) VALUES('n" + std::to_string(i) + "','" + body + "')");
  }
  h.db.MustExec("COMMIT");
  std::vector<SqliteStorage::Sent> sent;
  h.db.sent = &sent;
  Plan p = h.Send("s", R"({"t":"hello","v":1,"subs":[{"id":"n","c":"notes"}]})");
  h.db.sent = nullptr;
  std::size_t held = 0, early = 0, rows = 0;
  for (const Delivery& d : p.deliveries) held += d.frame.size();
  for (const SqliteStorage::Sent& s : sent) early += s.frame.size();
  CHECK(early > 4 * kPlanFlushBytes);  // ~6 MB went out early, in order
  CHECK(held < kPlanFlushBytes + 2 * o.snapshot_chunk_bytes);
  // Together they are the whole unit, in order, ending in synced.
  std::vector<std::string> unit;
  for (const auto& s : sent) unit.push_back(s.frame);
  for (const Delivery& d : p.deliveries) unit.push_back(d.frame);
  CHECK(TypeOf(unit.front()) == "welcome");
  CHECK(TypeOf(unit.back()) == "synced");
  for (const std::string& f : unit) {
    JsonDocument d = Json(f);
    if (View(d["t"]) == "snapshot") rows += d["rows"].Size();
  }
  CHECK(rows == 6000);
}

TEST_CASE("subscription bodies are budgeted per socket and per object, so many sockets cannot fill the heap") {
  // A where of `n` bytes of literal text.
  auto sub = [](const std::string& id, std::size_t n) {
    return R"({"t":"sub","id":")" + id + R"(","c":"messages","where":{"type":"func","name":"eq","args":[)"
           R"({"type":"ref","path":["content"]},{"type":"val","value":")" + std::string(n, 'x') + R"("}]}})";
  };
  SUBCASE("per socket: maxSubBytesPerSocket") {
    Options o;
    o.max_sub_bytes_per_socket = 4096;
    Harness h(o);
    h.Connect("s");
    CHECK(CodeOf(h.Send("s", sub("a", 1500)), "s") == Code::kOk);
    CHECK(CodeOf(h.Send("s", sub("b", 1500)), "s") == Code::kOk);
    CHECK(CodeOf(h.Send("s", sub("c", 1500)), "s") == Code::kTooLarge);
    CHECK(CodeOf(h.Send("s", sub("b", 100)), "s") == Code::kOk);  // a smaller replacement frees room
    CHECK(CodeOf(h.Send("s", sub("c", 1500)), "s") == Code::kOk);
    h.Send("s", R"({"t":"unsub","id":"a"})");
    CHECK(CodeOf(h.Send("s", sub("d", 1500)), "s") == Code::kOk);
  }
  SUBCASE("per object: kMaxSubBytesPerObject, freed when a socket closes") {
    Options o;
    o.max_predicate_literal_bytes = 64 << 10;
    Harness h(o);
    const std::size_t per_sub = 60 << 10;
    const std::size_t fit = kMaxSubBytesPerObject / (per_sub + 200);
    int refused = 0;
    for (std::size_t i = 0; i < fit + 4; ++i) {
      std::string socket = "s" + std::to_string(i / 4);
      if (i % 4 == 0) h.Connect(socket);
      Code code = CodeOf(h.Send(socket, sub("x" + std::to_string(i), per_sub)), socket);
      if (code == Code::kTooMany) ++refused;
      else CHECK(code == Code::kOk);
    }
    CHECK(refused >= 4);
    CHECK(refused <= 5);
    h.core->OnClose("s0");
    h.Connect("late");
    CHECK(CodeOf(h.Send("late", sub("y", per_sub)), "late") == Code::kOk);
  }
}

TEST_CASE("mutations in flight are bounded in bytes per socket; one alone always gets in") {
  Options o;
  o.max_in_flight_bytes_per_socket = 1000;
  Harness h(o);
  h.Connect("s");
  std::string big(600, 'x');
  REQUIRE(h.Send("s", InsertMessage("m1", "k1", "u1", big)).mutation.has_value());  // alone: in
  Plan second = h.Send("s", InsertMessage("m2", "k2", "u1", big));
  CHECK_FALSE(second.mutation.has_value());
  CHECK(CodeOf(second, "s") == Code::kTooMany);
  CHECK(h.Send("s", InsertMessage("m3", "k3", "u1", "small")).mutation.has_value());  // 600 + ~100
}

TEST_CASE("long strings are escaped byte for byte as RapidJSON's writer escapes them, without its 6x reserve") {
  std::string all;
  for (int round = 0; round < 20; ++round) {
    for (int c = 1; c < 256; ++c) all.push_back(static_cast<char>(c));
  }
  for (std::size_t n : {std::size_t{0}, std::size_t{10}, std::size_t{1024}, std::size_t{1025}, all.size()}) {
    CAPTURE(n);
    std::string s = all.substr(0, n);
    rapidjson::StringBuffer ours, theirs;
    JsonWriter w1(ours), w2(theirs);
    w1.StartObject();
    WriteString(s, &w1);  // as a key
    WriteString(s, &w1);  // and as its value
    w1.EndObject();
    w2.StartObject();
    w2.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    w2.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    w2.EndObject();
    CHECK(std::string(ours.GetString(), ours.GetSize()) == std::string(theirs.GetString(), theirs.GetSize()));
  }
}

}  // TEST_SUITE

}  // namespace seqsync
