// Core::StatsJson: the counters kept as frames leave, the sizes read when asked.
#include "stats.h"

#include "test_util.h"

namespace seqsync {
namespace {

JsonDocument StatsOf(Harness& h, bool detail = false) {
  auto stats = h.core->StatsJson(detail);
  REQUIRE_MESSAGE(stats.ok(), stats.status().ToString());
  return Json(*stats);
}

// The count of `code` in the stats' array `name` ({code, count} entries); 0 if absent.
std::uint64_t CountFor(const JsonDocument& stats, const char* name, int code) {
  for (const auto& entry : stats[name].GetArray()) {
    if (entry["code"].GetInt() == code) return entry["count"].GetUint64();
  }
  return 0;
}

// Plays the shell for one mutation with the clock moving: `execute_ms`
// between admit and commit, `ack_ms` between commit and the ack.
void InsertTimed(Harness& h, const std::string& mid, const std::string& key, std::int64_t execute_ms,
                 std::int64_t ack_ms) {
  Plan plan = h.Send("s1", InsertMessage(mid, key));
  REQUIRE(plan.mutation);
  h.db.MustExec("BEGIN");
  REQUIRE(ExecuteOps(&h.db, plan.mutation->ops_json));
  h.now += execute_ms;
  REQUIRE(h.core->CommitMutation("u1", mid, "", h.now).ok());
  h.db.MustExec("COMMIT");
  h.now += ack_ms;
  h.core->FinishMutation("u1", mid, h.now);
}

}  // namespace

TEST_SUITE("stats") {
  TEST_CASE("stats count outcomes, refusals by code and latency by the clock the shell passes") {
    Harness h;
    h.Connect("s1", R"([{"id":"m","c":"messages"},{"id":"t","c":"tasks"}])");
    h.Connect("s2", R"([{"id":"m","c":"messages"},{"id":"t","c":"tasks"}])");
    for (int i = 0; i < 10; ++i) InsertTimed(h, "m" + std::to_string(i), "k" + std::to_string(i), i + 1, 2);
    h.SendAndRun("s1", InsertMessage("fails", "x"), "u1", /*fail_execute=*/true);
    h.SendAndRun("s1", InsertMessage("m0", "k0"));  // a replay: answered from the record
    h.Send("s2", "{");                              // malformed
    h.Send("s2", R"({"t":"sub","id":"q","c":"nope"})");

    JsonDocument s = StatsOf(h);
    CHECK(s["head"].GetUint64() == 10);
    CHECK(s["log"]["rows"].GetInt64() == 10);
    CHECK(s["log"]["bytes"].GetInt64() == 10 * (8 + 2 + 16));  // "messages", "k0"…"k9", seq and op
    CHECK(s["tables"]["messages"].GetInt64() == 10);
    CHECK(s["tables"]["tasks"].GetInt64() == 0);
    CHECK(s["sockets"].GetUint64() == 2);
    CHECK(s["subscriptions"]["messages"].GetUint64() == 2);
    CHECK(s["subscriptions"]["tasks"].GetUint64() == 2);
    CHECK(s["writesInFlight"].GetUint64() == 0);
    CHECK(s["mutations"]["committed"].GetUint64() == 10);
    CHECK(s["mutations"]["rejected"].GetUint64() == 1);
    CHECK(s["mutations"]["replayed"].GetUint64() == 1);
    CHECK(CountFor(s, "refusals", static_cast<int>(Code::kExecuteFailed)) == 1);
    CHECK(CountFor(s, "refusals", static_cast<int>(Code::kMalformedFrame)) == 1);
    CHECK(CountFor(s, "refusals", static_cast<int>(Code::kUnknownCollection)) == 1);
    // Execute took 1..10 ms (nearest rank: p50 is the 5th, p99 the 10th);
    // commit → ack 2 ms each time.
    CHECK(s["latencyMs"]["execute"]["p50"].GetInt64() == 5);
    CHECK(s["latencyMs"]["execute"]["p99"].GetInt64() == 10);
    CHECK(s["latencyMs"]["commitToAck"]["p50"].GetInt64() == 2);
    CHECK(s["latencyMs"]["commitToAck"]["samples"].GetUint64() == 10);
    // Each change went to both sockets, in one frame (they hold the same subscriptions).
    CHECK(s["sent"]["deliveries"].GetUint64() > s["sent"]["frames"].GetUint64());
    CHECK(s["lastHousekeepingMs"].IsInt64());  // the first drain housekeeps
    CHECK_FALSE(s.HasMember("recentMutations"));
  }

  TEST_CASE("detailed stats list the sockets' subscriptions and the recent changes, mutations and refusals") {
    Harness h;
    h.Connect("s1", R"([{"id":"mine","c":"messages","where":{"type":"func","name":"eq",)"
                    R"("args":[{"type":"ref","path":["author"]},{"type":"val","value":"u1"}]}}])");
    InsertTimed(h, "m1", "a", 4, 1);
    h.SendAndRun("s1", InsertMessage("m2", "b"), "u1", /*fail_execute=*/true);

    JsonDocument s = StatsOf(h, /*detail=*/true);
    REQUIRE(s["socketList"].Size() == 1);
    const auto& sub = s["socketList"][0]["subs"][0];
    CHECK(View(sub["id"]) == "mine");
    CHECK(View(sub["where"]["name"]) == "eq");
    REQUIRE(s["recentChanges"].Size() == 1);
    CHECK(View(s["recentChanges"][0]["key"]) == "a");
    REQUIRE(s["recentMutations"].Size() == 2);
    CHECK(View(s["recentMutations"][0]["outcome"]) == "committed");
    CHECK(s["recentMutations"][0]["executeMs"].GetInt64() == 4);
    CHECK(s["recentMutations"][0]["commitToAckMs"].GetInt64() == 1);
    CHECK(View(s["recentMutations"][1]["id"]) == "m2");
    CHECK(View(s["recentMutations"][1]["outcome"]) == "EXECUTE_FAILED");
    REQUIRE(s["recentRefusals"].Size() == 1);
    CHECK(View(s["recentRefusals"][0]["error"]) == "EXECUTE_FAILED");
    CHECK(View(s["recentRefusals"][0]["socket"]) == "s1");
  }

  TEST_CASE("stats read the sizes in one statement, and writes run none more for them") {
    Harness h;
    h.Connect("s1", R"([{"id":"m","c":"messages"}])");
    h.SendAndRun("s1", InsertMessage("warm", "a"));
    long before = h.db.exec_count();
    StatsOf(h);
    CHECK(h.db.exec_count() - before == 3);  // the log's state (head, rows), then the sizes
    before = h.db.exec_count();
    StatsOf(h, /*detail=*/true);
    CHECK(h.db.exec_count() - before == 4);  // and the recent changes
  }

  TEST_CASE("a mutation whose socket closed while it ran still counts, and a finish of an unknown id counts nothing") {
    Harness h;
    h.Connect("s1", R"([{"id":"m","c":"messages"}])");
    Plan plan = h.Send("s1", InsertMessage("m1", "a"));
    REQUIRE(plan.mutation);
    h.db.MustExec("BEGIN");
    REQUIRE(ExecuteOps(&h.db, plan.mutation->ops_json));
    REQUIRE(h.core->CommitMutation("u1", "m1", "", h.now).ok());
    h.db.MustExec("COMMIT");
    h.core->OnClose("s1");
    h.core->FinishMutation("u1", "m1", h.now);
    h.core->FinishMutation("u1", "m1", h.now);      // again: no longer in flight
    h.core->FinishMutation("u1", "never", h.now);   // never admitted
    JsonDocument s = StatsOf(h, /*detail=*/true);
    REQUIRE(s["recentMutations"].Size() == 1);
    CHECK(View(s["recentMutations"][0]["outcome"]) == "committed");
    CHECK(s["mutations"]["committed"].GetUint64() == 1);
    CHECK(s["writesInFlight"].GetUint64() == 0);
  }

  TEST_CASE("a latency window keeps the last 512 samples") {
    LatencyWindow window;
    rapidjson::StringBuffer empty;
    JsonWriter w0(empty);
    window.Write(&w0);
    CHECK(Json(empty.GetString())["p50"].IsNull());
    for (int i = 0; i < 1000; ++i) window.Add(i < 488 ? 1000 : 1);
    rapidjson::StringBuffer out;
    JsonWriter w(out);
    window.Write(&w);
    JsonDocument d = Json(out.GetString());
    CHECK(d["samples"].GetUint64() == 512);
    CHECK(d["p99"].GetInt64() == 1);  // the 488 slow ones fell out of the window
  }
}

}  // namespace seqsync
