#include "seqsync/core.h"

#include "frame_writer.h"
#include "seqsync/close_codes.h"
#include "test_util.h"

namespace seqsync {

namespace {

// Sends `socket`'s call `id` (scope u1), runs `statements` as its execute in
// one transaction, commits it, and returns the plan that finishes it: one
// unit that may touch several collections, as no `mut` frame can.
Plan CallWrites(Harness& h, const std::string& socket, const std::string& id, std::initializer_list<const char*> statements) {
  Plan sent = h.Send(socket, R"({"t":"call","id":")" + id + R"(","name":"echo","args":{}})");
  REQUIRE(sent.mutation.has_value());
  h.db.MustExec("BEGIN");
  for (const char* statement : statements) h.db.MustExec(statement);
  REQUIRE(h.core->CommitMutation("u1", id, R"({"ok":true})", h.now).ok());
  h.db.MustExec("COMMIT");
  return h.core->FinishMutation("u1", id, h.now);
}

}  // namespace

TEST_SUITE("core") {

TEST_CASE("hello answers welcome and a resume unit ending in synced") {
  Harness h;
  auto frames = h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  REQUIRE(frames.size() == 3);
  CHECK(TypeOf(frames[0]) == "welcome");
  CHECK(frames[1] == R"({"t":"snapshot","sub":"m","c":"messages","seq":0,"rows":[],"more":true})");
  CHECK(frames[2] == R"({"t":"synced","seq":0})");
}

TEST_CASE("a fresh socket must say hello, in this protocol version, first") {
  Harness h;
  SUBCASE("a version mismatch is refused with an error frame and close 4400") {
    Plan p = h.Send("s1", R"({"t":"hello","v":2})");
    REQUIRE(p.deliveries.size() == 1);
    CHECK(CodeOf(p, "s1") == Code::kVersionMismatch);
    CHECK(p.close_code == kCloseProtocol);
  }
  SUBCASE("a frame before hello is a protocol-order error") {
    Plan p = h.Send("s1", InsertMessage("m1", "a"));
    REQUIRE(p.deliveries.size() == 1);
    CHECK(CodeOf(p, "s1") == Code::kProtocolOrder);
    CHECK_FALSE(p.mutation.has_value());
  }
}

TEST_CASE("an insert is broadcast before its ack, and the ack carries its seq") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  h.Connect("s2", R"([{"id":"m","c":"messages"}])");
  Plan p = h.SendAndRun("s1", InsertMessage("m1", "a"));
  auto s1 = Harness::FramesFor(p, "s1");
  auto s2 = Harness::FramesFor(p, "s2");
  REQUIRE(s1.size() == 2);
  CHECK(s1[0] == R"({"t":"changes","seq":1,"changes":[{"c":"messages","k":"a","row":{"id":"a","author":"u1","content":"hi","created_at":1}}]})");
  CHECK(s1[1] == R"({"t":"ack","id":"m1","seq":1})");
  REQUIRE(s2.size() == 1);
  CHECK(s2[0] == s1[0]);
  // Encoded once: both sockets share one delivery.
  CHECK(p.deliveries[0].to.size() == 2);
}

TEST_CASE("a socket whose hello asks for inline acks gets its ack inside the frame that ends its write's unit") {
  Harness h;
  h.Send("s1", R"({"t":"hello","v":1,"inlineAcks":true,"subs":[{"id":"m","c":"messages"}]})");
  h.Connect("s2", R"([{"id":"m","c":"messages"}])");
  h.Send("s3", R"({"t":"hello","v":1,"inlineAcks":true,"subs":[{"id":"t","c":"tasks"}]})");
  Plan p = h.SendAndRun("s1", InsertMessage("m1", "a"));
  const std::string change = R"({"t":"changes","seq":1,"changes":[{"c":"messages","k":"a","row":{"id":"a","author":"u1","content":"hi","created_at":1}}])";
  // One frame to the writer, the others' frame unchanged and still shared.
  CHECK(Harness::FramesFor(p, "s1") == std::vector<std::string>{change + R"(,"ack":"m1"})"});
  CHECK(Harness::FramesFor(p, "s2") == std::vector<std::string>{change + "}"});

  SUBCASE("a writer the unit's frame does not reach gets the ack as a frame of its own") {
    Plan other = h.SendAndRun("s3", InsertMessage("m2", "b"));
    CHECK(Harness::FramesFor(other, "s3") == std::vector<std::string>{R"({"t":"ack","id":"m2","seq":2})"});
  }
  SUBCASE("a replay of a committed id is answered with its recorded ack frame") {
    Plan again = h.SendAndRun("s1", InsertMessage("m1", "a"));
    CHECK(Harness::FramesFor(again, "s1") == std::vector<std::string>{R"({"t":"ack","id":"m1","seq":1})"});
  }
  SUBCASE("a call's ack, which carries a result, stays a frame of its own") {
    auto f = Harness::FramesFor(CallWrites(h, "s1", "c1", {"INSERT INTO messages VALUES('c','u1','by a call',2)"}), "s1");
    REQUIRE(f.size() == 2);
    CHECK(f[0].find(R"("ack")") == std::string::npos);
    CHECK(f[1] == R"({"t":"ack","id":"c1","seq":2,"result":{"ok":true}})");
  }
}

TEST_CASE("a socket whose hello asks for compact changes is sent one collection per frame, rows and removed keys") {
  Harness h;
  h.Send("s1", R"({"t":"hello","v":1,"compactChanges":true,"subs":[{"id":"m","c":"messages"},{"id":"t","c":"tasks"}]})");
  h.Connect("s2", R"([{"id":"m","c":"messages"},{"id":"t","c":"tasks"}])");
  h.SendAndRun("s2", InsertMessage("m1", "gone"));
  // One unit that touches two collections, and a key removed in it.
  Plan p = CallWrites(h, "s2", "c1",
                      {"INSERT INTO messages VALUES('a','u1','hi',1)", "INSERT INTO tasks VALUES('t1','write',0,1.5)",
                       "DELETE FROM messages WHERE id='gone'"});
  // Only the frame that ends the unit goes without "more".
  CHECK(Harness::FramesFor(p, "s1") == std::vector<std::string>{
      R"({"t":"changes","seq":4,"c":"messages","pk":"id","rows":[{"id":"a","author":"u1","content":"hi","created_at":1},"gone"],"more":true})",
      R"({"t":"changes","seq":4,"c":"tasks","pk":"id","rows":[{"id":"t1","title":"write","done":0,"rank":1.5}]})"});
  // A socket that did not ask is sent the full form, as before.
  auto full = Harness::FramesFor(p, "s2");
  REQUIRE(full.size() == 2);
  CHECK(full[0] == R"({"t":"changes","seq":4,"changes":[{"c":"messages","k":"a","row":{"id":"a","author":"u1","content":"hi","created_at":1}},{"c":"tasks","k":"t1","row":{"id":"t1","title":"write","done":0,"rank":1.5}},{"c":"messages","k":"gone"}]})");

  SUBCASE("a resume's catch-up takes the compact form too, and an inline ack rides in the frame that ends the unit") {
    Plan hello = h.Send("s3", R"({"t":"hello","v":1,"compactChanges":true,"inlineAcks":true,"epoch":"epoch-1","since":1,"subs":[{"id":"m","c":"messages","resume":true}]})");
    auto resumed = Harness::FramesFor(hello, "s3");
    REQUIRE(resumed.size() == 3);
    CHECK(resumed[1] == R"({"t":"changes","seq":4,"c":"messages","pk":"id","rows":[{"id":"a","author":"u1","content":"hi","created_at":1},"gone"],"more":true})");
    CHECK(resumed[2] == R"({"t":"synced","seq":4})");
    Plan caught = h.SendAndRun("s3", InsertMessage("m2", "b"));
    CHECK(Harness::FramesFor(caught, "s3") == std::vector<std::string>{
        R"({"t":"changes","seq":5,"c":"messages","pk":"id","rows":[{"id":"b","author":"u1","content":"hi","created_at":1}],"ack":"m2"})"});
  }
}

TEST_CASE("a collection whose key column has a declared type keeps the full form for a compact socket") {
  // json shows a key that is JSON text parsed ("7" as 7): the row no longer shows the key as it is.
  const std::string registration = R"({"collections":[{"table":"messages","pk":"id","ops":["insert"]},)"
                                   R"({"table":"tasks","pk":"id","types":{"id":"json"},"ops":["insert"]}],"commands":["echo"]})";
  Harness h(Options(), kChatSchema, registration.c_str());
  h.Send("s1", R"({"t":"hello","v":1,"compactChanges":true,"subs":[{"id":"m","c":"messages"},{"id":"t","c":"tasks"}]})");
  Plan p = CallWrites(h, "s1", "c1", {"INSERT INTO tasks VALUES('7','write',0,1.5)", "INSERT INTO messages VALUES('a','u1','hi',1)"});
  auto frames = Harness::FramesFor(p, "s1");
  REQUIRE(frames.size() == 3);
  CHECK(frames[0] == R"({"t":"changes","seq":2,"c":"messages","pk":"id","rows":[{"id":"a","author":"u1","content":"hi","created_at":1}],"more":true})");
  CHECK(frames[1] == R"({"t":"changes","seq":2,"changes":[{"c":"tasks","k":"7","row":{"id":7,"title":"write","done":0,"rank":1.5}}]})");
  CHECK(frames[2] == R"({"t":"ack","id":"c1","seq":2,"result":{"ok":true}})");
}

TEST_CASE("hello's compactChanges must be a boolean") {
  Harness h;
  Plan p = h.Send("s1", R"({"t":"hello","v":1,"compactChanges":1})");
  CHECK(CodeOf(p, "s1") == Code::kInvalidField);
}

TEST_CASE("hello's inlineAcks must be a boolean") {
  Harness h;
  Plan p = h.Send("s1", R"({"t":"hello","v":1,"inlineAcks":"yes"})");
  CHECK(CodeOf(p, "s1") == Code::kInvalidField);
}

TEST_CASE("update and delete reach subscribers as row and removal") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  h.SendAndRun("s1", InsertMessage("m1", "a"));
  Plan up = h.SendAndRun("s1", R"({"t":"mut","id":"m2","ops":[{"c":"messages","op":"update","k":"a","cols":{"content":"edited"}}]})");
  auto f = Harness::FramesFor(up, "s1");
  REQUIRE(f.size() == 2);
  CHECK(f[0].find(R"("content":"edited")") != std::string::npos);
  Plan del = h.SendAndRun("s1", R"({"t":"mut","id":"m3","ops":[{"c":"messages","op":"delete","k":"a"}]})");
  f = Harness::FramesFor(del, "s1");
  REQUIRE(f.size() == 2);
  CHECK(f[0] == R"({"t":"changes","seq":3,"changes":[{"c":"messages","k":"a"}]})");
  CHECK(f[1] == R"({"t":"ack","id":"m3","seq":3})");
}

TEST_CASE("a key holding the page's separators, quotes and non-ASCII reaches subscribers intact") {
  // Pages of the log cross as text with RS and US between fields; the key
  // is JSON-quoted there, so no key can split an entry.
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  const std::string key = "a\x1e b\x1f \"c\" \\ d é 💬";
  const std::string quoted = JsonQuote(key);
  const std::string frame = R"({"t":"mut","id":"m1","ops":[{"c":"messages","op":"insert","k":)" + quoted +
                            R"(,"cols":{"id":)" + quoted + R"(,"author":"u1","content":"x\u001ey","created_at":1}}]})";
  auto f = Harness::FramesFor(h.SendAndRun("s1", frame), "s1");
  REQUIRE(f.size() == 2);
  JsonDocument changes = Json(f[0]);
  REQUIRE(changes["changes"].Size() == 1);
  const JsonValue& change = changes["changes"][0];
  CHECK(View(change["k"]) == key);
  CHECK(View(change["row"]["id"]) == key);
  CHECK(View(change["row"]["content"]) == "x\x1ey");
  CHECK(TypeOf(f[1]) == "ack");
}

TEST_CASE("a write no subscription covers gets only the ack") {
  Harness h;
  h.Connect("s1", R"([{"id":"t","c":"tasks"}])");
  Plan p = h.SendAndRun("s1", InsertMessage("m1", "a"));
  auto f = Harness::FramesFor(p, "s1");
  REQUIRE(f.size() == 1);
  CHECK(f[0] == R"({"t":"ack","id":"m1","seq":1})");
}

TEST_CASE("a replayed mutation id gets the original ack and applies once") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  Plan first = h.SendAndRun("s1", InsertMessage("m1", "a"));
  Plan again = h.SendAndRun("s1", InsertMessage("m1", "a"));
  // It runs again (nothing looks the id up before a write), its INSERT
  // fails on the row it wrote, and the refusal finds the stored ack.
  auto f = Harness::FramesFor(again, "s1");
  REQUIRE(f.size() == 1);
  CHECK(f[0] == R"({"t":"ack","id":"m1","seq":1})");
  CHECK(h.Count("SELECT COUNT(*) FROM messages") == 1);
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_changes") == 1);

  SUBCASE("the stored outcome wins over a different payload") {
    Plan odd = h.Send("s1", R"({"t":"mut","id":"m1","ops":[{"c":"messages","op":"delete","k":""}]})");
    CHECK_FALSE(odd.mutation.has_value());
    CHECK(Harness::FramesFor(odd, "s1")[0] == R"({"t":"ack","id":"m1","seq":1})");
  }
}

TEST_CASE("a replay of a committed id that would apply again is rolled back and answered with its ack") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  h.SendAndRun("s1", InsertMessage("m1", "a", "u1", "first"));
  // The same id, now an update that would succeed: Commit finds the record.
  Plan replay = h.SendAndRun(
      "s1", R"({"t":"mut","id":"m1","ops":[{"c":"messages","op":"update","k":"a","cols":{"content":"again"}}]})");
  REQUIRE(replay.mutation.has_value());  // it ran
  auto f = Harness::FramesFor(replay, "s1");
  REQUIRE(f.size() == 1);
  CHECK(f[0] == R"({"t":"ack","id":"m1","seq":1})");
  CHECK(h.Count("SELECT COUNT(*) FROM messages WHERE content = 'first'") == 1);  // rolled back
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_changes") == 1);
}

TEST_CASE("a replay of a committed id refused for any reason gets its ack, never a reject") {
  Options options;
  options.max_in_flight_per_socket = 1;
  Harness h(options);
  h.Connect("s1");
  h.SendAndRun("s1", InsertMessage("m1", "a"));

  SUBCASE("refused by authorize or execute") {
    Plan run = h.Send("s1", InsertMessage("m1", "a"));
    REQUIRE(run.mutation.has_value());
    Plan denied = h.core->RejectMutation("u1", "m1", Status::Unauthorized("not any more"), h.now);
    auto f = Harness::FramesFor(denied, "s1");
    REQUIRE(f.size() == 1);
    CHECK(f[0] == R"({"t":"ack","id":"m1","seq":1})");
    CHECK(denied.replayed);  // so the shell does not log it as a failure
  }
  SUBCASE("refused by the socket's cap before it runs") {
    REQUIRE(h.Send("s1", InsertMessage("m2", "b")).mutation.has_value());  // holds the one slot
    Plan capped = h.Send("s1", InsertMessage("m1", "a"));
    CHECK_FALSE(capped.mutation.has_value());
    auto f = Harness::FramesFor(capped, "s1");
    REQUIRE(f.size() == 1);
    CHECK(f[0] == R"({"t":"ack","id":"m1","seq":1})");
  }
  SUBCASE("if its record cannot be read, the outcome is unknown: no reject, the socket reconnects") {
    Plan run = h.Send("s1", InsertMessage("m1", "a"));
    REQUIRE(run.mutation.has_value());
    h.db.FailNextMatching("SELECT reply FROM _sync_mutations");
    Plan unknown = h.core->RejectMutation("u1", "m1", Status::ExecuteFailed("UNIQUE constraint failed"), h.now);
    CHECK(Harness::FramesFor(unknown, "s1").empty());
    CHECK(unknown.close_code == kCloseInternal);
    CHECK(unknown.close == std::vector<std::string>{"s1"});
  }
  SUBCASE("an id that never committed is rejected") {
    Plan run = h.Send("s1", InsertMessage("m9", "z"));
    REQUIRE(run.mutation.has_value());
    Plan denied = h.core->RejectMutation("u1", "m9", Status::Unauthorized("no"), h.now);
    CHECK(CodeOf(denied, "s1") == Code::kUnauthorized);
    CHECK_FALSE(denied.replayed);
  }
}

TEST_CASE("a duplicate arriving while the original is in flight waits for its outcome") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  h.Connect("s2");
  Plan original = h.Send("s1", InsertMessage("m1", "a"));
  REQUIRE(original.mutation.has_value());
  Plan dup = h.Send("s2", InsertMessage("m1", "a"));
  CHECK_FALSE(dup.mutation.has_value());
  CHECK(dup.deliveries.empty());
  h.db.MustExec("BEGIN");
  REQUIRE(ExecuteOps(&h.db, original.mutation->ops_json));
  REQUIRE(h.core->CommitMutation("u1", "m1", "", h.now).ok());
  h.db.MustExec("COMMIT");
  Plan done = h.core->FinishMutation("u1", "m1", h.now);
  CHECK(Harness::FramesFor(done, "s2") == std::vector<std::string>{R"({"t":"ack","id":"m1","seq":1})"});
  CHECK(Harness::FramesFor(done, "s1").back() == R"({"t":"ack","id":"m1","seq":1})");
  CHECK(h.Count("SELECT COUNT(*) FROM messages") == 1);
}

TEST_CASE("mutation ids are scoped by identity") {
  Harness h;
  h.Connect("s1");
  h.Connect("s2");
  h.SendAndRun("s1", InsertMessage("m1", "a"), "alice");
  // Bob presenting alice's id neither gets her result nor is blocked.
  Plan bob = h.SendAndRun("s2", InsertMessage("m1", "b"), "bob");
  auto f = Harness::FramesFor(bob, "s2");
  REQUIRE(f.size() == 1);
  CHECK(f[0] == R"({"t":"ack","id":"m1","seq":2})");
  CHECK(h.Count("SELECT COUNT(*) FROM messages") == 2);
}

TEST_CASE("a failed execute rolls back every op and rejects with EXECUTE_FAILED") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  std::string two = R"({"t":"mut","id":"m1","ops":[)"
                    R"({"c":"messages","op":"insert","k":"a","cols":{"id":"a","author":"u1","content":"x","created_at":1}},)"
                    R"({"c":"tasks","op":"insert","k":"t","cols":{"id":"t","title":"x"}}]})";
  Plan p = h.SendAndRun("s1", two, "u1", /*fail_execute=*/true);
  auto f = Harness::FramesFor(p, "s1");
  REQUIRE(f.size() == 1);
  CHECK(f[0] == R"({"t":"reject","id":"m1","code":12,"error":"EXECUTE_FAILED","message":"mutation failed"})");
  CHECK(h.Count("SELECT COUNT(*) FROM messages") == 0);
  CHECK(h.Count("SELECT COUNT(*) FROM tasks") == 0);
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_changes") == 0);
  // A rejection is not recorded (it applied nothing): a replay is judged
  // again, and runs again, and _sync_mutations holds nothing for it.
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_mutations") == 0);
  CHECK(h.Send("s1", two).mutation.has_value());
}

TEST_CASE("a multi-collection transaction commits together under one ack") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"},{"id":"t","c":"tasks"}])");
  std::string two = R"({"t":"mut","id":"m1","ops":[)"
                    R"({"c":"messages","op":"insert","k":"a","cols":{"id":"a","author":"u1","content":"x","created_at":1}},)"
                    R"({"c":"tasks","op":"insert","k":"t","cols":{"id":"t","title":"x","done":false}}]})";
  auto f = Harness::FramesFor(h.SendAndRun("s1", two), "s1");
  REQUIRE(f.size() == 2);
  CHECK(f[0].find(R"("c":"messages")") != std::string::npos);
  CHECK(f[0].find(R"("c":"tasks","k":"t","row":{"id":"t","title":"x","done":0,"rank":null})") != std::string::npos);
  CHECK(f[1] == R"({"t":"ack","id":"m1","seq":2})");
}

TEST_CASE("a where subscription gets matching rows and removals for rows that move out") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages","where":{"type":"func","name":"eq","args":[{"type":"ref","path":["author"]},{"type":"val","value":"ann"}]}}])");
  auto f = Harness::FramesFor(h.SendAndRun("s1", InsertMessage("m1", "a", "ann")), "s1");
  CHECK(f[0].find(R"("row")") != std::string::npos);
  f = Harness::FramesFor(h.SendAndRun("s1", InsertMessage("m2", "b", "bob")), "s1");
  CHECK(f[0] == R"({"t":"changes","seq":2,"changes":[{"c":"messages","k":"b"}]})");
  f = Harness::FramesFor(h.SendAndRun("s1", R"({"t":"mut","id":"m3","ops":[{"c":"messages","op":"update","k":"a","cols":{"author":"bob"}}]})"), "s1");
  CHECK(f[0] == R"({"t":"changes","seq":3,"changes":[{"c":"messages","k":"a"}]})");
}

TEST_CASE("a sub answers with a snapshot unit of the matching rows") {
  Harness h;
  h.Connect("w");
  for (int i = 0; i < 5; ++i) {
    h.SendAndRun("w", InsertMessage("m" + std::to_string(i), "k" + std::to_string(i), i % 2 ? "bob" : "ann"));
  }
  h.Connect("s1");
  auto f = Harness::FramesFor(h.Send("s1", R"({"t":"sub","id":"x","c":"messages","where":{"type":"func","name":"eq","args":[{"type":"ref","path":["author"]},{"type":"val","value":"bob"}]}})"), "s1");
  REQUIRE(f.size() == 1);
  CHECK(f[0].rfind(R"({"t":"snapshot","sub":"x","c":"messages","seq":5,"rows":[{"id":"k1")", 0) == 0);
  CHECK(f[0].find("\"more\"") == std::string::npos);
  CHECK(f[0].find(R"("id":"k3")") != std::string::npos);
  CHECK(f[0].find(R"("id":"k0")") == std::string::npos);
}

TEST_CASE("a snapshot read answers as a hello's snapshots do, and holds nothing") {
  Harness h;
  h.Connect("w", R"([{"id":"all","c":"messages"}])");
  for (int i = 0; i < 4; ++i) {
    h.SendAndRun("w", InsertMessage("m" + std::to_string(i), "k" + std::to_string(i), i % 2 ? "bob" : "ann"));
  }
  const std::string subs =
      R"([{"id":"x","c":"messages","where":{"type":"func","name":"eq","args":[{"type":"ref","path":["author"]},{"type":"val","value":"bob"}]}},{"id":"bad","c":"nope"}])";
  auto read = Harness::FramesFor(h.core->ReadSnapshot("reader", R"({"t":"hello","v":1,"subs":)" + subs + "}"), "reader");
  auto hello = Harness::FramesFor(h.Send("s1", R"({"t":"hello","v":1,"subs":)" + subs + "}"), "s1");
  REQUIRE(hello.size() == 4);  // welcome, sub-error, snapshot, synced
  REQUIRE(read.size() == 3);    // in the order of the subs, then synced
  CHECK(read[0] == hello[2]);
  CHECK(read[1] == hello[1]);
  CHECK(read[2] == hello[3]);
  CHECK(TypeOf(read[1]) == "sub-error");
  // Nothing was held for the reader: the next write reaches the socket only.
  auto plan = h.SendAndRun("w", InsertMessage("m9", "k9", "bob"));
  CHECK(Harness::FramesFor(plan, "reader").empty());
  CHECK_FALSE(Harness::FramesFor(plan, "s1").empty());
  SUBCASE("a request that is not a hello, or a list a hello may not carry, is one error") {
    auto f = Harness::FramesFor(h.core->ReadSnapshot("reader", R"({"t":"sub","id":"x","c":"messages"})"), "reader");
    REQUIRE(f.size() == 1);
    CHECK(f[0].find(R"("error":"UNKNOWN_FRAME")") != std::string::npos);
    f = Harness::FramesFor(h.core->ReadSnapshot("reader", R"({"t":"hello","v":1,"subs":[{"id":"a","c":"messages"},{"id":"a","c":"messages"}]})"), "reader");
    REQUIRE(f.size() == 1);
    CHECK(f[0].find(R"("error":"INVALID_FIELD")") != std::string::npos);
  }
}

TEST_CASE("a large snapshot is chunked into a unit of frames") {
  Options o;
  o.snapshot_chunk_bytes = 2000;
  o.read_page_rows = 8;
  Harness h(o);
  h.Connect("w");
  for (int i = 0; i < 100; ++i) {
    h.SendAndRun("w", InsertMessage("m" + std::to_string(i), "k" + std::to_string(100 + i)));
  }
  auto f = Harness::FramesFor(h.Send("w", R"({"t":"sub","id":"x","c":"messages"})"), "w");
  REQUIRE(f.size() > 3);
  int rows = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    CAPTURE(i);
    JsonDocument d = Json(f[i]);
    CHECK(d["seq"].GetInt() == 100);
    CHECK(d.HasMember("more") == (i + 1 < f.size()));
    rows += static_cast<int>(d["rows"].Size());
  }
  CHECK(rows == 100);
}

TEST_CASE("resume inside the retention window catches up with changes, not a snapshot") {
  Harness h;
  h.Connect("w");
  h.SendAndRun("w", InsertMessage("m1", "a"));
  h.SendAndRun("w", InsertMessage("m2", "b"));
  h.SendAndRun("w", R"({"t":"mut","id":"m3","ops":[{"c":"messages","op":"delete","k":"a"}]})");
  auto f = h.Connect("s1", R"([{"id":"m","c":"messages","resume":true}])");
  // Not resumable without since: snapshot.
  CHECK(TypeOf(f[1]) == "snapshot");
  h.core->OnClose("s1");
  std::string hello = R"({"t":"hello","v":1,"epoch":"epoch-1","since":1,"subs":[{"id":"m","c":"messages","resume":true}]})";
  f = Harness::FramesFor(h.Send("s2", hello), "s2");
  REQUIRE(f.size() == 3);
  CHECK(f[1] == R"({"t":"changes","seq":3,"changes":[{"c":"messages","k":"b","row":{"id":"b","author":"u1","content":"hi","created_at":1}},{"c":"messages","k":"a"}],"more":true})");
  CHECK(f[2] == R"({"t":"synced","seq":3})");
}

TEST_CASE("resume with a foreign epoch or a cursor from the future gets a snapshot") {
  Harness h;
  h.Connect("w");
  h.SendAndRun("w", InsertMessage("m1", "a"));
  std::string hello;
  SUBCASE("a foreign epoch") {
    hello = R"({"t":"hello","v":1,"epoch":"other","since":1,"subs":[{"id":"m","c":"messages","resume":true}]})";
  }
  SUBCASE("a cursor past the head") {
    hello = R"({"t":"hello","v":1,"epoch":"epoch-1","since":99,"subs":[{"id":"m","c":"messages","resume":true}]})";
  }
  auto f = Harness::FramesFor(h.Send("r", hello), "r");
  REQUIRE(f.size() == 3);
  CHECK(TypeOf(f[1]) == "snapshot");
}

TEST_CASE("resume from before the retention floor gets a snapshot without deleted rows") {
  Options o;
  o.retention_ms = 1000;
  Harness h(o);
  h.Connect("w");
  h.SendAndRun("w", InsertMessage("m1", "a"));
  h.SendAndRun("w", InsertMessage("m2", "b"));
  h.now += 10;
  h.SendAndRun("w", R"({"t":"mut","id":"m3","ops":[{"c":"messages","op":"delete","k":"a"}]})");
  h.now += 5000;
  h.SendAndRun("w", InsertMessage("m4", "c"));
  h.now += 5000;
  REQUIRE(h.core->Housekeep(h.now).ok());
  auto state = h.core->State();
  REQUIRE(state.ok());
  CHECK(state->floor >= 3);
  std::string hello = R"({"t":"hello","v":1,"epoch":"epoch-1","since":1,"subs":[{"id":"m","c":"messages","resume":true}]})";
  auto f = Harness::FramesFor(h.Send("s2", hello), "s2");
  REQUIRE(f.size() == 3);
  CHECK(TypeOf(f[1]) == "snapshot");
  CHECK(f[1].find(R"("id":"a")") == std::string::npos);
  CHECK(f[1].find(R"("id":"b")") != std::string::npos);
  CHECK(f[1].find(R"("id":"c")") != std::string::npos);
}

TEST_CASE("subscriptions survive a wake: a new core restores them from SQLite") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  h.Connect("gone", R"([{"id":"m","c":"messages"}])");
  h.Reopen(kChatRegistration, {"s1"});
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_subs") == 1);
  auto f = Harness::FramesFor(h.SendAndRun("s1", InsertMessage("m1", "a")), "s1");
  REQUIRE(f.size() == 2);
  CHECK(TypeOf(f[0]) == "changes");
}

TEST_CASE("a committed write whose changes cannot be read is neither acked nor rejected: its sockets close, the replay gets the ack") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  Plan sent = h.Send("s1", InsertMessage("m1", "a"));
  REQUIRE(sent.mutation);
  h.db.MustExec("BEGIN");
  REQUIRE(ExecuteOps(&h.db, sent.mutation->ops_json));
  Result<Seq> seq = h.core->CommitMutation("u1", "m1", "", h.now);
  REQUIRE(seq.ok());
  h.db.MustExec("COMMIT");
  // Commit read the drain's first page ahead; a frame in between drops it,
  // so the drain reads the log itself, and that read fails.
  h.core->OnMessage("s1", "u1", "{", h.now);
  h.db.FailAfter(0);
  Plan finished = h.core->FinishMutation("u1", "m1", h.now);
  h.db.FailAfter(-1);
  CHECK(finished.deliveries.empty());
  CHECK(finished.close_code == kCloseInternal);
  CHECK(finished.close == std::vector<std::string>{"s1"});
  CHECK(h.Count("SELECT COUNT(*) FROM messages WHERE id='a'") == 1);

  // The client comes back from its cursor (before the write) and replays m1.
  h.core->OnClose("s1");
  auto caught_up = Harness::FramesFor(h.Send("s2", R"({"t":"hello","v":1,"epoch":"epoch-1","since":0,)"
                                                   R"("subs":[{"id":"m","c":"messages","resume":true}]})"), "s2");
  REQUIRE(caught_up.size() >= 2);
  CHECK(caught_up[1].find(R"("k":"a")") != std::string::npos);  // after the welcome: the write
  auto replay = Harness::FramesFor(h.SendAndRun("s2", InsertMessage("m1", "a")), "s2");
  REQUIRE(replay.size() == 1);
  CHECK(TypeOf(replay[0]) == "ack");
  CHECK(replay[0].find("\"seq\":" + std::to_string(*seq)) != std::string::npos);
  CHECK(h.Count("SELECT COUNT(*) FROM messages") == 1);
}

TEST_CASE("a confirmed insert to a subscribed socket costs one statement in the core") {
  // The dedup record with the head at commit, which also reads the changes
  // with their rows and the schema fingerprint for the drain. (The other
  // statement is the handler's INSERT.)
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  h.SendAndRun("s1", InsertMessage("warm", "a"));  // the first drain also housekeeps
  const long before = h.db.exec_count();
  auto f = Harness::FramesFor(h.SendAndRun("s1", InsertMessage("m1", "b")), "s1");
  REQUIRE(f.size() == 2);
  CHECK(h.db.exec_count() - before == 2);
}

TEST_CASE("a stored subscription whose collection a deploy dropped is refused at the wake; the others live on") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"},{"id":"n","c":"notes"}])");
  Plan refusals = h.Reopen(R"({"collections":[{"table":"messages","pk":"id","ops":["insert"]}]})", {"s1"});
  auto f = Harness::FramesFor(refusals, "s1");
  REQUIRE(f.size() == 1);
  CHECK(TypeOf(f[0]) == "sub-error");
  CHECK(f[0].find(R"("sub":"n")") != std::string::npos);
  CHECK(f[0].find("UNKNOWN_COLLECTION") != std::string::npos);
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_subs WHERE sub='n'") == 0);
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_subs WHERE sub='m'") == 1);
  auto live = Harness::FramesFor(h.SendAndRun("s1", InsertMessage("m1", "a")), "s1");
  REQUIRE(live.size() == 2);
  CHECK(TypeOf(live[0]) == "changes");
}

TEST_CASE("a stored subscription whose where names a dropped column is refused at the wake") {
  Harness h;
  h.db.MustExec("ALTER TABLE messages ADD COLUMN mood TEXT");
  h.Connect("s1", R"([{"id":"moody","c":"messages","where":{"type":"func","name":"eq",)"
                  R"("args":[{"type":"ref","path":["mood"]},{"type":"val","value":"x"}]}},{"id":"m","c":"messages"}])");
  h.db.MustExec("ALTER TABLE messages DROP COLUMN mood");
  auto f = Harness::FramesFor(h.Reopen(kChatRegistration, {"s1"}), "s1");
  REQUIRE(f.size() == 1);
  CHECK(f[0].find(R"("sub":"moody")") != std::string::npos);
  CHECK(f[0].find("UNKNOWN_COLUMN") != std::string::npos);
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_subs") == 1);
}

TEST_CASE("a write made outside a mutation is delivered by the next drain, even after a wake") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  h.db.MustExec("INSERT INTO messages VALUES('srv','bot','hello',5)");
  h.Reopen(kChatRegistration, {"s1"});
  auto f = Harness::FramesFor(h.core->Drain(h.now), "s1");
  REQUIRE(f.size() == 1);
  CHECK(f[0].find(R"("k":"srv")") != std::string::npos);
  CHECK(h.core->Drain(h.now).deliveries.empty());
}

TEST_CASE("ALTER TABLE ADD COLUMN flows to clients without re-registering") {
  Harness h;
  h.Connect("s1", R"([{"id":"m","c":"messages"}])");
  h.db.MustExec("ALTER TABLE messages ADD COLUMN mood TEXT");
  auto f = Harness::FramesFor(h.SendAndRun("s1", R"({"t":"mut","id":"m1","ops":[{"c":"messages","op":"insert","k":"a","cols":{"id":"a","author":"u1","content":"x","created_at":1,"mood":"happy"}}]})"), "s1");
  REQUIRE(f.size() == 2);
  CHECK(f[0].find(R"("mood":"happy")") != std::string::npos);
}

TEST_CASE("a command is acked with its result") {
  Harness h;
  h.Connect("s1");
  Plan p = h.SendAndRun("s1", R"({"t":"call","id":"c1","name":"echo","args":{"n":7}})");
  CHECK(Harness::FramesFor(p, "s1") == std::vector<std::string>{R"({"t":"ack","id":"c1","seq":0,"result":{"n":7}})"});
  Plan unknown = h.Send("s1", R"({"t":"call","id":"c2","name":"nope"})");
  CHECK(CodeOf(unknown, "s1") == Code::kNoHandler);
}

TEST_CASE("the sub cap refuses one more subscription but not a replacement") {
  Options o;
  o.max_subs_per_socket = 2;
  Harness h(o);
  h.Connect("s1", R"([{"id":"a","c":"messages"},{"id":"b","c":"tasks"}])");
  Plan refused = h.Send("s1", R"({"t":"sub","id":"c","c":"messages"})");
  auto f = Harness::FramesFor(refused, "s1");
  REQUIRE(f.size() == 1);
  CHECK(TypeOf(f[0]) == "sub-error");
  CHECK(f[0].find(R"("sub":"c")") != std::string::npos);
  CHECK(CodeOf(refused, "s1") == Code::kTooMany);
  f = Harness::FramesFor(h.Send("s1", R"({"t":"sub","id":"a","c":"tasks"})"), "s1");
  CHECK(TypeOf(f[0]) == "snapshot");
}

TEST_CASE("the in-flight cap rejects without recording") {
  Options o;
  o.max_in_flight_per_socket = 1;
  Harness h(o);
  h.Connect("s1");
  Plan first = h.Send("s1", InsertMessage("m1", "a"));
  REQUIRE(first.mutation.has_value());
  Plan second = h.Send("s1", InsertMessage("m2", "b"));
  CHECK(TypeOf(Harness::FramesFor(second, "s1")[0]) == "reject");
  CHECK(CodeOf(second, "s1") == Code::kTooMany);
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_mutations WHERE id='m2'") == 0);
}

}  // TEST_SUITE

}  // namespace seqsync
