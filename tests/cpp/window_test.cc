// Ordered windows (orderBy + limit/offset): the core serves the prefix
// through the window's last leading value, ties included, and from then on
// moves rows in and out of that range as they change (docs/protocol.md §4.2).
#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <set>

#include "test_util.h"

namespace seqsync {
namespace {

// The ids in every snapshot frame of `frames`, and the last frame's "where".
struct Served {
  std::set<std::string> ids;
  std::string where;
};

Served ServedBy(const std::vector<std::string>& frames) {
  Served out;
  for (const std::string& f : frames) {
    JsonDocument d = Json(f);
    if (View(d["t"]) != "snapshot") continue;
    for (const JsonValue& row : d["rows"].GetArray()) out.ids.insert(std::string(View(row["id"])));
    if (d.HasMember("where")) out.where = ToJson(d["where"]);
  }
  return out;
}

// What a window must serve, computed independently with SQL: every row of
// `table` whose leading value is one of the values at positions
// [offset, offset+limit) in SQLite's own order (NULLs, then numbers, then
// text, then BLOBs), compared with IS so NULL ties with NULL.
std::set<std::string> Oracle(Harness* h, const std::string& table, const std::string& col, bool desc,
                             bool nulls_first, long limit, long offset) {
  const std::string c = "\"" + col + "\"";
  const std::string order = c + (desc ? " DESC" : " ASC") + (nulls_first ? " NULLS FIRST" : " NULLS LAST");
  auto ids = h->db.Exec("SELECT json_group_array(id) FROM " + table + " AS o WHERE EXISTS (SELECT 1 FROM (SELECT " +
                            c + " AS v FROM " + table + " ORDER BY " + order +
                            " LIMIT ?1 OFFSET ?2) w WHERE w.v IS o." + c + ")",
                        {SqlValue::Integer(limit), SqlValue::Integer(offset)});
  REQUIRE(ids.ok());
  std::set<std::string> out;
  JsonDocument d = Json((*ids)[0][0].text);
  for (const JsonValue& id : d.GetArray()) out.insert(std::string(View(id)));
  return out;
}

// The sub frame of window `id` on `table` ordered by `col`.
std::string WindowSub(const std::string& id, const std::string& table, const std::string& col, bool desc,
                      bool nulls_first, long limit, long offset) {
  return R"({"t":"sub","id":")" + id + R"(","c":")" + table + R"(","orderBy":[{"col":")" + col +
         R"(","dir":")" + (desc ? "desc" : "asc") + R"(","nulls":")" + (nulls_first ? "first" : "last") +
         R"("},{"col":"id"}],"limit":)" + std::to_string(limit) + R"(,"offset":)" + std::to_string(offset) + "}";
}

std::string TaskInsert(const std::string& mid, const std::string& id, const std::string& rank,
                       const std::string& title = "t") {
  return R"({"t":"mut","id":")" + mid + R"(","ops":[{"c":"tasks","op":"insert","k":")" + id +
         R"(","cols":{"id":")" + id + R"(","title":")" + title + R"(","rank":)" + rank + "}}]}";
}

std::string TaskRank(const std::string& mid, const std::string& id, const std::string& rank) {
  return R"({"t":"mut","id":")" + mid + R"(","ops":[{"c":"tasks","op":"update","k":")" + id +
         R"(","cols":{"rank":)" + rank + "}}]}";
}

// The keys a socket is told to hold (row) or drop (no row) in `frames`.
std::map<std::string, bool> Changes(const std::vector<std::string>& frames) {
  std::map<std::string, bool> out;
  for (const std::string& f : frames) {
    JsonDocument d = Json(f);
    if (View(d["t"]) != "changes") continue;
    for (const JsonValue& c : d["changes"].GetArray()) out[std::string(View(c["k"]))] = c.HasMember("row");
  }
  return out;
}

}  // namespace

TEST_SUITE("window") {

TEST_CASE("a window serves the prefix through its last leading value, ties included (SQL oracle, fixed seed)") {
  const unsigned seed = 7;
  CAPTURE(seed);
  std::mt19937 rng(seed);
  Harness h;
  // Ranks with many ties and NULLs; titles as a text order column.
  const char* ranks[] = {"NULL", "1", "2", "2", "3", "3", "3", "4.5", "-1", "10"};
  const char* titles[] = {"a", "b", "b", "c", "d", "e", "f"};
  for (int i = 0; i < 40; ++i) {
    h.db.MustExec("INSERT INTO tasks(id, title, rank) VALUES('t" + std::to_string(i) + "','" +
                  titles[rng() % 7] + "'," + ranks[rng() % 10] + ")");
  }
  h.Connect("s");
  int windows = 0;
  for (const char* col : {"rank", "title"}) {
    for (bool desc : {false, true}) {
      for (bool nulls_first : {false, true}) {
        for (int trial = 0; trial < 12; ++trial) {
          long limit = static_cast<long>(rng() % 12);
          long offset = trial % 3 == 0 ? static_cast<long>(rng() % 20) : 0;
          std::string sub = WindowSub("w" + std::to_string(windows++), "tasks", col, desc, nulls_first, limit, offset);
          CAPTURE(sub);
          Served served = ServedBy(Harness::FramesFor(h.Send("s", sub), "s"));
          CHECK(served.ids == Oracle(&h, "tasks", col, desc, nulls_first, limit, offset));
          CHECK(!served.where.empty());
          h.Send("s", R"({"t":"unsub","id":"w)" + std::to_string(windows - 1) + R"("})");  // stay under the cap
          h.now += 1000;  // and under the sub/unsub rate
        }
      }
    }
  }
}

TEST_CASE("a window over a column of mixed types serves every row it selects (SQL oracle)") {
  // A column without affinity keeps what it is given: integers, reals (2.0
  // ties with 2), text that looks like a number, NULLs and BLOBs, which
  // SQLite orders NULL < numbers < text < BLOB. The core's predicate
  // compares kinds strictly, so a bound "from 7" must still reach the text
  // and BLOBs after 7, and "through 'b'" every number before it.
  Harness h(Options(), "CREATE TABLE things(id TEXT PRIMARY KEY, v);",
            R"({"collections":[{"table":"things","pk":"id"}]})");
  const std::vector<std::string> values = {"NULL", "NULL", "-3", "0", "2", "2.0", "1.5", "-0.5", "7", "9.25",
                                           "'a'", "'b'", "'b'", "'10'", "''", "'z'"};
  int n = 0;
  for (const std::string& v : values) {
    h.db.MustExec("INSERT INTO things(id, v) VALUES('r" + std::to_string(n++) + "'," + v + ")");
  }
  const std::vector<long> limits = {1, 2, 3, 5, 8, 30};
  const std::vector<long> offsets = {0, 1, 3, 6, 10, 15};
  auto each_window = [&](const std::function<void(const std::set<std::string>&, const std::set<std::string>&)>& check) {
    h.Connect("s");
    int windows = 0;
    for (bool desc : {false, true}) {
      for (bool nulls_first : {false, true}) {
        for (long limit : limits) {
          for (long offset : offsets) {
            std::string sub = WindowSub("w" + std::to_string(windows++), "things", "v", desc, nulls_first, limit, offset);
            CAPTURE(sub);
            Served served = ServedBy(Harness::FramesFor(h.Send("s", sub), "s"));
            REQUIRE(!served.where.empty());
            check(served.ids, Oracle(&h, "things", "v", desc, nulls_first, limit, offset));
            h.Send("s", R"({"t":"unsub","id":"w)" + std::to_string(windows - 1) + R"("})");
            h.now += 1000;  // under the sub rate
          }
        }
      }
    }
  };
  SUBCASE("integers, reals, text and NULL: exactly the window") {
    REQUIRE(h.Count("SELECT COUNT(DISTINCT typeof(v)) FROM things") == 4);
    each_window([](const std::set<std::string>& served, const std::set<std::string>& oracle) {
      CHECK(served == oracle);
    });
  }
  SUBCASE("and BLOBs: always a superset, and exact unless the window reaches a BLOB (that end is left open)") {
    h.db.MustExec("INSERT INTO things(id, v) VALUES('x0', x'00'), ('x1', x'ff01'), ('x2', x'ff01')");
    REQUIRE(h.Count("SELECT COUNT(DISTINCT typeof(v)) FROM things") == 5);
    int exact = 0;
    each_window([&](const std::set<std::string>& served, const std::set<std::string>& oracle) {
      for (const std::string& id : oracle) CHECK_MESSAGE(served.count(id) == 1, id << " is left out");
      bool reaches_blob = std::any_of(oracle.begin(), oracle.end(), [](const std::string& id) { return id[0] == 'x'; });
      if (!reaches_blob) {
        CHECK(served == oracle);
        ++exact;
      }
    });
    CHECK(exact > 50);  // most windows end before the BLOBs
  }
}

TEST_CASE("live changes move rows into and out of a window") {
  Harness h;
  h.Connect("w");
  for (int i = 1; i <= 5; ++i) {
    auto p = h.SendAndRun("w", TaskInsert("i" + std::to_string(i), "t" + std::to_string(i), std::to_string(i)));
    (void)p;
  }
  h.Connect("watcher");
  // The top three by rank: 5, 4, 3 → the range rank >= 3.
  Served served = ServedBy(Harness::FramesFor(
      h.Send("watcher", R"({"t":"sub","id":"top","c":"tasks","orderBy":[{"col":"rank","dir":"desc"}],"limit":3})"),
      "watcher"));
  CHECK(served.ids == std::set<std::string>{"t3", "t4", "t5"});

  // t1 is voted up past the boundary: it moves in.
  auto in = Changes(Harness::FramesFor(h.SendAndRun("w", TaskRank("m1", "t1", "9")), "watcher"));
  CHECK(in == std::map<std::string, bool>{{"t1", true}});
  // t5 drops below the boundary: it moves out.
  auto out = Changes(Harness::FramesFor(h.SendAndRun("w", TaskRank("m2", "t5", "0")), "watcher"));
  CHECK(out == std::map<std::string, bool>{{"t5", false}});
  // A change below the window is not sent as a row.
  auto below = Changes(Harness::FramesFor(h.SendAndRun("w", TaskRank("m3", "t2", "2.5")), "watcher"));
  bool t2_not_held = below.count("t2") == 0 || !below["t2"];
  CHECK(t2_not_held);
  // A new row inside the range arrives.
  auto fresh = Changes(Harness::FramesFor(h.SendAndRun("w", TaskInsert("m4", "t6", "3")), "watcher"));
  CHECK(fresh == std::map<std::string, bool>{{"t6", true}});
}

TEST_CASE("a window with no row at its end serves everything that matches, and limit 0 serves nothing") {
  Harness h;
  h.Connect("w");
  for (int i = 1; i <= 3; ++i) {
    auto p = h.SendAndRun("w", TaskInsert("i" + std::to_string(i), "t" + std::to_string(i), std::to_string(i)));
    (void)p;
  }
  h.Connect("s");
  Served all = ServedBy(Harness::FramesFor(
      h.Send("s", R"({"t":"sub","id":"a","c":"tasks","orderBy":[{"col":"rank"}],"limit":10})"), "s"));
  CHECK(all.ids.size() == 3);
  h.Connect("e");  // holds only the empty window
  Served none = ServedBy(Harness::FramesFor(
      h.Send("e", R"({"t":"sub","id":"b","c":"tasks","orderBy":[{"col":"rank"}],"limit":0})"), "e"));
  CHECK(none.ids.empty());
  // As rows arrive, the unbounded window gets them and the empty one does not.
  Plan later = h.SendAndRun("w", TaskInsert("i9", "t9", "0"));
  CHECK(Changes(Harness::FramesFor(later, "s"))["t9"] == true);
  auto empty = Changes(Harness::FramesFor(later, "e"));
  bool t9_not_held = empty.count("t9") == 0 || !empty["t9"];
  CHECK(t9_not_held);
}

TEST_CASE("a window whose edge is an infinite REAL is served whole, in valid JSON") {
  Harness h;
  h.db.MustExec("INSERT INTO tasks(id, rank) VALUES('big', 1e999), ('one', 1), ('two', 2)");
  h.Connect("s");
  auto frames = Harness::FramesFor(
      h.Send("s", R"({"t":"sub","id":"top","c":"tasks","orderBy":[{"col":"rank","dir":"desc"}],"limit":1})"), "s");
  Served top = ServedBy(frames);  // Json() fails the test on an invalid frame
  CHECK(top.ids.size() == 3);  // the bound cannot be written in JSON: left off
  CHECK(frames[0].find(R"("rank":{"$real":"Infinity"})") != std::string::npos);
}

TEST_CASE("a resolved window is stored, survives a wake, and resumes without a snapshot") {
  Harness h;
  h.Connect("w");
  for (int i = 1; i <= 6; ++i) {
    auto p = h.SendAndRun("w", TaskInsert("i" + std::to_string(i), "t" + std::to_string(i), std::to_string(i)));
    (void)p;
  }
  h.Connect("s");
  Served served = ServedBy(Harness::FramesFor(
      h.Send("s", R"({"t":"sub","id":"top","c":"tasks","orderBy":[{"col":"rank","dir":"desc"}],"limit":2})"), "s"));
  REQUIRE(served.ids == std::set<std::string>{"t5", "t6"});
  REQUIRE(!served.where.empty());

  // A wake: the socket "s" is still open; its window comes back from SQLite.
  h.Reopen(kChatRegistration, {"s"});
  h.Connect("w2");
  auto moved = Changes(Harness::FramesFor(h.SendAndRun("w2", TaskRank("m1", "t1", "8")), "s"));
  CHECK(moved == std::map<std::string, bool>{{"t1", true}});

  // A reconnect inside the retention window resumes the resolved form:
  // a delta, no snapshot.
  h.Connect("w3");
  auto before = h.core->State();
  REQUIRE(before.ok());
  auto p = h.SendAndRun("w3", TaskRank("m2", "t6", "1"));
  (void)p;
  std::vector<std::string> frames = Harness::FramesFor(
      h.Send("s3", R"({"t":"hello","v":1,"epoch":"epoch-1","since":)" + std::to_string(before->head) +
                       R"(,"subs":[{"id":"top","c":"tasks","where":)" + served.where + R"(,"resume":true}]})"),
      "s3");
  int snapshots = 0;
  for (const std::string& f : frames) snapshots += TypeOf(f) == "snapshot";
  CHECK(snapshots == 0);
  CHECK(Changes(frames) == std::map<std::string, bool>{{"t6", false}});
}

TEST_CASE("a resolved window always reads back at a wake: one past the limits is refused when it is resolved") {
  // The resolved where is stored and read again, under the limits, at every
  // wake. Its bounds add nodes, a level of nesting and the edge values as
  // literals, so it can break a limit the client's where kept.
  auto nested = [](int depth) {  // not(not(…isNull(…)…)), `depth` levels, true on every row below
    std::string w = std::string(R"({"type":"func","name":"isNull","args":[{"type":"ref","path":[")") +
                    (depth % 2 ? "title" : "rank") + R"("]}]})";
    for (int i = 1; i < depth; ++i) w = R"({"type":"func","name":"not","args":[)" + w + "]}";
    return w;
  };
  auto window = [](const std::string& where, const std::string& col) {
    return R"({"t":"sub","id":"win","c":"tasks","where":)" + where + R"(,"orderBy":[{"col":")" + col +
           R"("}],"limit":2,"offset":1})";
  };
  // Subscribes, checks the answer, then wakes: whatever was stored reads back
  // (no refusal, nothing dropped).
  auto expect = [](Harness* h, const std::string& sub, Code refused) {
    for (int i = 1; i <= 5; ++i) {
      h->db.MustExec("INSERT INTO tasks(id, title, rank) VALUES('t" + std::to_string(i) + "', NULL, " +
                     std::to_string(i) + ")");
    }
    h->Connect("s");
    Plan p = h->Send("s", sub);
    auto frames = Harness::FramesFor(p, "s");
    REQUIRE(!frames.empty());
    CHECK(CodeOf(p, "s") == refused);
    if (refused != Code::kOk) CHECK(frames[0].find("the window resolves to a where over the limits") != std::string::npos);
    CHECK(h->Count("SELECT COUNT(*) FROM _sync_subs") == (refused == Code::kOk ? 1 : 0));
    Plan refusals = h->Reopen(kChatRegistration, {"s"});
    CHECK(refusals.deliveries.empty());
    CHECK(h->Count("SELECT COUNT(*) FROM _sync_subs") == (refused == Code::kOk ? 1 : 0));
  };
  Options o;
  SUBCASE("a where at maxPredicateDepth: the bounds nest one deeper, TOO_DEEP") {
    o.max_predicate_depth = 4;
    Harness h(o);
    expect(&h, window(nested(4), "rank"), Code::kTooDeep);
  }
  SUBCASE("a where one level less: kept, and it survives the wake") {
    o.max_predicate_depth = 4;
    Harness h(o);
    expect(&h, window(nested(3), "rank"), Code::kOk);
  }
  SUBCASE("a where at maxPredicateNodes: the bounds add nodes, TOO_MANY") {
    o.max_predicate_nodes = 6;
    Harness h(o);
    const std::string is_null = R"({"type":"func","name":"isNull","args":[{"type":"ref","path":["title"]}]})";
    const std::string five = is_null + "," + is_null + "," + is_null + "," + is_null + "," + is_null;
    expect(&h, window(R"({"type":"func","name":"and","args":[)" + five + "]}", "rank"), Code::kTooMany);
  }
  SUBCASE("an edge value longer than maxPredicateLiteralBytes: TOO_LARGE") {
    o.max_predicate_literal_bytes = 64;
    Harness h(o);
    h.db.MustExec("INSERT INTO tasks(id, title) VALUES('long1', '" + std::string(100, 'a') + "'), ('long2', '" +
                  std::string(100, 'b') + "'), ('long3', '" + std::string(100, 'c') + "')");
    expect(&h, R"({"t":"sub","id":"win","c":"tasks","orderBy":[{"col":"title","nulls":"last"}],"limit":2,"offset":1})",
           Code::kTooLarge);
  }
  SUBCASE("a where near maxJsonDepth: both bounds join one and, so it still reads back") {
    o.max_json_depth = 12;  // the sub frame is 11 deep, the stored body 13, a wake reads 14
    o.max_predicate_depth = 64;
    Harness h(o);
    expect(&h, window(nested(4), "rank"), Code::kOk);
  }
}

TEST_CASE("a window may order by a column added since the last read of the schema") {
  Harness h;
  h.db.MustExec("INSERT INTO tasks(id, rank) VALUES('a', 1), ('b', 2)");
  h.Connect("s");
  h.db.MustExec("ALTER TABLE tasks ADD COLUMN votes INTEGER DEFAULT 0");
  auto frames = Harness::FramesFor(
      h.Send("s", R"({"t":"sub","id":"top","c":"tasks","orderBy":[{"col":"votes","dir":"desc"}],"limit":1})"), "s");
  REQUIRE(!frames.empty());
  CHECK(TypeOf(frames[0]) == "snapshot");
}

}  // TEST_SUITE
}  // namespace seqsync
