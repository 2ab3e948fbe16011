// Compaction, retention and catch-up against a naive reference model.
//
// The model keeps every table state after every seq (no compaction, no
// retention). Random writes run through the core; at random moments a
// client that stopped at a random earlier seq resumes. Whatever the core
// answers (a catch-up or a snapshot), applying it to the client's old state
// must give exactly the current tables, and the core must answer with a
// catch-up whenever the client is inside the retention window.

#include <map>
#include <random>

#include "test_util.h"

namespace seqsync {
namespace {

using TableState = std::map<std::string, std::string>;  // key → row JSON
using State = std::map<std::string, TableState>;         // table → rows

State ReadState(Harness* h) {
  State s;
  for (const char* t : {"messages", "tasks"}) {
    std::string obj = std::string(t) == "messages"
                          ? "json_object('id',id,'author',author,'content',content,'created_at',created_at)"
                          : "json_object('id',id,'title',title,'done',done,'rank',rank)";
    auto r = h->db.Exec(std::string("SELECT json_group_array(") + obj + ") FROM " + t, {});
    REQUIRE(r.ok());
    JsonDocument rows = Json((*r)[0][0].text);
    s[t];
    for (const JsonValue& row : rows.GetArray()) s[t][std::string(View(row["id"]))] = ToJson(row);
  }
  return s;
}

// Applies one resume unit (everything after welcome) to `state`.
// Returns true iff it contained a snapshot.
bool ApplyUnit(const std::vector<std::string>& frames, State* state) {
  bool snapshot = false;
  std::set<std::string> replaced;
  for (const std::string& f : frames) {
    JsonDocument d = Json(f);
    std::string t(View(d["t"]));
    if (t == "changes") {
      for (const JsonValue& c : d["changes"].GetArray()) {
        std::string table(View(c["c"])), key(View(c["k"]));
        if (c.HasMember("row")) (*state)[table][key] = ToJson(c["row"]);
        else (*state)[table].erase(key);
      }
    } else if (t == "snapshot") {
      snapshot = true;
      std::string table(View(d["c"]));
      if (replaced.insert(table).second) (*state)[table].clear();
      for (const JsonValue& row : d["rows"].GetArray()) (*state)[table][std::string(View(row["id"]))] = ToJson(row);
    }
  }
  return snapshot;
}

}  // namespace

TEST_SUITE("change_log") {

TEST_CASE("compaction keeps only each key's latest entry and never lowers the head") {
  Harness h;
  h.db.MustExec("INSERT INTO messages VALUES('a','u','1',1); UPDATE messages SET content='2' WHERE id='a';"
                "UPDATE messages SET content='3' WHERE id='a'; INSERT INTO messages VALUES('b','u','1',1);"
                "DELETE FROM messages WHERE id='b';");
  REQUIRE(h.core->Housekeep(h.now).ok());
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_changes") == 2);
  CHECK(h.Count("SELECT seq FROM _sync_changes WHERE key='a'") == 3);
  CHECK(h.Count("SELECT op FROM _sync_changes WHERE key='b'") == 3);  // the tombstone stays
  CHECK(h.core->State()->head == 5);
}

TEST_CASE("retention prunes by marks: a mark exactly at the cutoff survives, an older one goes") {
  // A mark (seq, ts) says "at ts, every entry up to seq existed"; entries are
  // pruned once a mark covering them is older than the window.
  Options o;
  o.retention_ms = 1000;  // marks at most every 1000/64 ms
  Harness h(o);
  h.Connect("w");
  const std::int64_t t = h.now;
  h.SendAndRun("w", InsertMessage("m1", "a"));
  h.now += 100;
  h.core->Drain(h.now);  // marks (1, t+100)
  h.now += 100;
  h.SendAndRun("w", InsertMessage("m2", "b"));  // drained (2) at t+200
  REQUIRE(h.core->Housekeep(t + 100 + 1000).ok());  // cutoff == the mark: kept
  CHECK(h.core->State()->floor == 0);
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_changes") == 2);
  REQUIRE(h.core->Housekeep(t + 100 + 1001).ok());
  CHECK(h.core->State()->floor == 1);
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_changes") == 1);
  REQUIRE(h.core->Housekeep(t + 200 + 1001).ok());  // the last drain's mark
  CHECK(h.core->State()->floor == 2);
  CHECK(h.core->State()->head == 2);
  // New seqs continue past pruned ones.
  h.SendAndRun("w", InsertMessage("m3", "c"));
  CHECK(h.core->State()->head == 3);
}

TEST_CASE("a burst of writes inside one mark interval, then silence, is pruned once it is older than the window") {
  // All four writes fall in one interval (retention/64 = 15 ms), so only the
  // first laid a mark. Housekeeping must still be able to cut at the last
  // drain: the burst must not wait for a later write to lay a mark.
  Options o;
  o.retention_ms = 1000;
  Harness h(o);
  h.Connect("w");
  for (int i = 0; i < 4; ++i) h.SendAndRun("w", InsertMessage("m" + std::to_string(i), "k" + std::to_string(i)));
  CHECK(h.core->State()->head == 4);
  REQUIRE(h.core->Housekeep(h.now + 10'000).ok());
  CHECK(h.core->State()->floor == 4);
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_changes") == 0);
  // The same after a wake: the stored drained watermark is all it knows.
  Harness w(o);
  w.Connect("w");
  for (int i = 0; i < 3; ++i) w.SendAndRun("w", InsertMessage("m" + std::to_string(i), "k" + std::to_string(i)));
  REQUIRE(w.core->Housekeep(w.now).ok());  // persists drained = 3 and its mark
  w.Reopen();
  REQUIRE(w.core->Housekeep(w.now + 10'000).ok());
  CHECK(w.core->State()->floor == 3);
}

TEST_CASE("mutation outcomes are kept for dedupRetentionMs, survive a wake, and are swept after") {
  Options options;
  options.dedup_retention_ms = 60'000;
  Harness h(options);
  h.Connect("s");
  Plan first = h.SendAndRun("s", InsertMessage("m1", "a"));
  REQUIRE(h.Count("SELECT COUNT(*) FROM _sync_mutations") == 1);

  // A wake inside the window: the replay still gets the stored outcome.
  h.Reopen(kChatRegistration, {"s"});
  h.now += 59'000;
  REQUIRE(h.core->Housekeep(h.now).ok());
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_mutations") == 1);
  Plan replay = h.SendAndRun("s", InsertMessage("m1", "a"));
  auto answer = Harness::FramesFor(replay, "s");
  REQUIRE(answer.size() == 1);
  CHECK(answer[0] == Harness::FramesFor(first, "s").back());  // the stored ack, byte for byte
  CHECK(h.Count("SELECT COUNT(*) FROM messages") == 1);

  // Past the window the record is swept (the client's own timeout must be
  // shorter than dedupRetentionMs: docs/protocol.md §4.4).
  h.now += 2'000;
  REQUIRE(h.core->Housekeep(h.now).ok());
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_mutations") == 0);
}

TEST_CASE("housekeeping holds no reply back: a woken core answers its first write, then housekeeps") {
  Harness h;
  h.Connect("s", R"([{"id":"m","c":"messages"}])");
  h.SendAndRun("s", InsertMessage("m1", "a"));
  h.Reopen(kChatRegistration, {"s"});
  h.now += 60'001;  // a mark is due (the interval is capped at a minute): the first drain housekeeps
  std::vector<SqliteStorage::Sent> sent;
  h.db.sent = &sent;
  // A compaction that fails costs nothing the client waits for.
  h.db.FailNextMatching("GROUP BY tbl, key");
  Plan rest = h.SendAndRun("s", InsertMessage("m2", "b"));
  h.db.sent = nullptr;
  CHECK(rest.close.empty());
  CHECK(rest.deliveries.empty());  // every frame left before housekeeping ran
  REQUIRE(sent.size() >= 2);
  CHECK(TypeOf(sent.front().frame) == "changes");
  CHECK(TypeOf(sent.back().frame) == "ack");
  CHECK(h.db.exec_count() - sent.back().execs_before >= 3);  // a mark, the watermark, the failed compaction
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_marks") >= 1);
  CHECK(h.Count("SELECT COUNT(*) FROM messages") == 2);
  // The failure is not silent: the stats count it.
  JsonDocument stats = Json(h.core->StatsJson(false).value());
  CHECK(stats["housekeepingFailures"].GetUint64() == 1);
}

TEST_CASE("the mark clock survives a wake: a woken core inside the interval only stores its watermark") {
  Harness h;
  h.Connect("s", R"([{"id":"m","c":"messages"}])");
  h.SendAndRun("s", InsertMessage("m1", "a"));  // a fresh core's first drain lays a mark
  REQUIRE(h.Count("SELECT COUNT(*) FROM _sync_marks") == 1);
  h.Reopen(kChatRegistration, {"s"});
  h.now += 1'000;
  std::vector<SqliteStorage::Sent> sent;
  h.db.sent = &sent;
  h.SendAndRun("s", InsertMessage("m2", "b"));
  h.db.sent = nullptr;
  REQUIRE(!sent.empty());
  CHECK(h.db.exec_count() - sent.back().execs_before == 1);  // the watermark; no mark, no compaction
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_marks") == 1);
  CHECK(h.Count("SELECT CAST(value AS INTEGER) FROM _sync_meta WHERE name='drained'") == 2);
  // The next write of that instance stores nothing more.
  const long before = h.db.exec_count();
  h.SendAndRun("s", InsertMessage("m3", "c"));
  CHECK(h.db.exec_count() - before == 2);
  // Once the interval has passed, the next write lays a mark again.
  h.now += 60'000;
  h.SendAndRun("s", InsertMessage("m4", "d"));
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_marks") == 2);
}

TEST_CASE("random writes, compaction and retention match the reference model on resume") {
  const unsigned seed = 42;
  CAPTURE(seed);
  std::mt19937 rng(seed);
  Options o;
  o.retention_ms = 5000;
  o.compact_every = 7;
  o.read_page_rows = 4;          // force paging
  o.snapshot_chunk_bytes = 300;  // force chunking
  Harness h(o);
  h.Connect("w");
  // Log entries beyond the first of their key.
  auto entries_past_one_per_key = [&] {
    return h.Count("SELECT COUNT(*) - (SELECT COUNT(*) FROM (SELECT DISTINCT tbl, key FROM _sync_changes)) FROM _sync_changes");
  };
  std::map<Seq, State> history;  // the model: the full state after each head
  history[0] = ReadState(&h);
  int catchups = 0, snapshots = 0;
  for (int step = 0; step < 400; ++step) {
    CAPTURE(step);
    h.now += static_cast<std::int64_t>(rng() % 200);
    std::string key = "k" + std::to_string(rng() % 12);
    int what = static_cast<int>(rng() % 10);
    std::string mid = "m" + std::to_string(step);
    if (what < 3) {
      h.SendAndRun("w", InsertMessage(mid, key, "u", "v" + std::to_string(step)));
    } else if (what < 5) {
      h.SendAndRun("w", R"({"t":"mut","id":")" + mid + R"(","ops":[{"c":"messages","op":"update","k":")" + key +
                            R"(","cols":{"content":"u)" + std::to_string(step) + R"("}}]})");
    } else if (what < 6) {
      h.SendAndRun("w", R"({"t":"mut","id":")" + mid + R"(","ops":[{"c":"messages","op":"delete","k":")" + key + R"("}]})");
    } else if (what < 8) {
      // A raw server-side write to the other table, delivered by a drain.
      h.db.MustExec("INSERT OR REPLACE INTO tasks(id,title,done) VALUES('" + key + "','t" +
                    std::to_string(step) + "'," + std::to_string(step % 2) + ")");
      h.core->Drain(h.now);
    } else if (what < 9) {
      h.db.MustExec("DELETE FROM tasks WHERE id='" + key + "'");
      h.core->Drain(h.now);
    } else {
      // A client that stopped at an earlier head resumes.
      auto it = history.begin();
      std::advance(it, static_cast<long>(rng() % history.size()));
      Seq since = it->first;
      State client = it->second;
      std::string sock = "c" + std::to_string(step);
      std::string hello = R"({"t":"hello","v":1,"epoch":"epoch-1","since":)" + std::to_string(since) +
                          R"(,"subs":[{"id":"m","c":"messages","resume":true},{"id":"t","c":"tasks","resume":true}]})";
      // The floor the resume is judged by: housekeeping runs after the reply.
      Seq floor = h.core->State()->floor;
      auto frames = Harness::FramesFor(h.Send(sock, hello), sock);
      REQUIRE(frames.size() >= 2);
      CHECK(TypeOf(frames.front()) == "welcome");
      CHECK(TypeOf(frames.back()) == "synced");
      CAPTURE(since);
      CAPTURE(floor);
      bool snapshot = ApplyUnit({frames.begin() + 1, frames.end()}, &client);
      CHECK(snapshot == (since < floor));
      (snapshot ? snapshots : catchups)++;
      CHECK(client == ReadState(&h));
      // Every frame of the unit but the last says more.
      for (size_t i = 1; i + 1 < frames.size(); ++i) CHECK(frames[i].find("\"more\":true") != std::string::npos);
      h.core->OnClose(sock);
      continue;
    }
    auto head = h.core->State();
    REQUIRE(head.ok());
    history[head->head] = ReadState(&h);
    // Compaction runs once compact_every entries were appended since the
    // last run, so only entries appended since then can repeat a key.
    CHECK(entries_past_one_per_key() < static_cast<long>(o.compact_every));
  }
  // Both paths were exercised.
  CHECK(catchups > 5);
  CHECK(snapshots > 5);
  // After a housekeeping run, at most one entry per key.
  REQUIRE(h.core->Housekeep(h.now).ok());
  CHECK(entries_past_one_per_key() == 0);
}

TEST_CASE("storage faults during a mutation never lose a confirmed write or break the log") {
  for (int fail_after = 0; fail_after < 12; ++fail_after) {
    CAPTURE(fail_after);
    Harness h;
    h.Connect("s1", R"([{"id":"m","c":"messages"}])");
    h.SendAndRun("s1", InsertMessage("m0", "a"));
    h.db.FailAfter(fail_after);
    Plan p = h.SendAndRun("s1", InsertMessage("m1", "b"));
    h.db.FailAfter(-1);
    auto frames = Harness::FramesFor(p, "s1");
    bool acked = false;
    for (const std::string& f : frames) acked |= TypeOf(f) == "ack";
    // A confirmed write is present; an unconfirmed one may or may not be,
    // but the log and the table always agree.
    if (acked) CHECK(h.Count("SELECT COUNT(*) FROM messages WHERE id='b'") == 1);
    CHECK(h.Count("SELECT COUNT(*) FROM messages") ==
          h.Count("SELECT COUNT(DISTINCT key) FROM _sync_changes WHERE op <> 3"));
    // The core recovers: a later write goes through and reaches the socket.
    auto after = Harness::FramesFor(h.SendAndRun("s1", InsertMessage("m2", "c")), "s1");
    REQUIRE_FALSE(after.empty());
    CHECK(TypeOf(after.back()) == "ack");
    bool saw_c = false;
    for (const std::string& f : after) saw_c |= f.find(R"("k":"c","row")") != std::string::npos;
    CHECK(saw_c);
  }
}

}  // TEST_SUITE

}  // namespace seqsync
