// One-off pages (docs/protocol.md §4.8): keyset reads over (orderBy, key)
// from a cursor naming both halves of the boundary, the rest of the
// boundary's ties first, that hold no subscription, read at the head.
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

namespace seqsync {
namespace {

struct PageReply {
  std::vector<std::string> ids;  // in the order they arrived
  std::vector<std::string> rows;  // each row's JSON
  Seq seq = 0;
  bool cut = false;
  int frames = 0;
};

// The page frames `socket` got in `plan`, assembled (every one but the last says more).
PageReply PageOf(const Plan& plan, const std::string& socket) {
  PageReply out;
  for (const std::string& f : Harness::FramesFor(plan, socket)) {
    JsonDocument d = Json(f);
    if (View(d["t"]) != "page") continue;
    out.frames++;
    out.seq = d["seq"].GetUint64();
    out.cut = d.HasMember("cut");
    for (const JsonValue& row : d["rows"].GetArray()) {
      out.ids.emplace_back(View(row["id"]));
      out.rows.push_back(ToJson(row));
    }
  }
  return out;
}

std::string PageFrame(const std::string& id, const std::string& order, long limit, const std::string& cursor = "") {
  return R"({"t":"page","id":")" + id + R"(","c":"tasks","orderBy":)" + order + R"(,"limit":)" + std::to_string(limit) +
         (cursor.empty() ? "" : R"(,"cursor":)" + cursor) + "}";
}

}  // namespace

TEST_SUITE("page") {

TEST_CASE("pages from each last row walk the table in (orderBy, key) order, no row twice or missed (SQL oracle, fixed seed)") {
  const unsigned seed = 11;
  CAPTURE(seed);
  std::mt19937 rng(seed);
  Options o;
  o.read_page_rows = 2;  // every page continues across chunks
  Harness h(o);
  const char* ranks[] = {"NULL", "1", "2", "2", "3", "3", "3", "4.5", "-1", "2.0"};
  const char* titles[] = {"'a'", "'b'", "'b'", "NULL", "'c'"};
  for (int i = 0; i < 30; ++i) {
    h.db.MustExec("INSERT INTO tasks(id, title, rank) VALUES('t" + std::to_string(i) + "'," + titles[rng() % 5] + "," +
                  ranks[rng() % 10] + ")");
  }
  h.Connect("s");
  int pages = 0;
  for (bool desc : {false, true}) {
    for (bool nulls_first : {false, true}) {
      const std::string dir = desc ? "DESC" : "ASC";
      const std::string nulls = nulls_first ? "NULLS FIRST" : "NULLS LAST";
      const std::string order = R"([{"col":"rank","dir":")" + std::string(desc ? "desc" : "asc") + R"(","nulls":")" +
                                (nulls_first ? "first" : "last") + R"("},{"col":"title"}])";
      auto oracle = h.db.Exec("SELECT json_group_array(id) FROM (SELECT id FROM tasks ORDER BY rank " + dir + " " + nulls +
                                  ", title ASC NULLS FIRST, id)",
                              {});
      REQUIRE(oracle.ok());
      JsonDocument expected_doc = Json((*oracle)[0][0].text);
      std::vector<std::string> expected;
      for (const JsonValue& id : expected_doc.GetArray()) expected.emplace_back(View(id));

      std::vector<std::string> walked;
      std::string cursor;
      for (int guard = 0; guard < 40; ++guard) {
        const long limit = 1 + static_cast<long>(rng() % 4);
        std::string frame = PageFrame("p" + std::to_string(pages++), order, limit, cursor);
        CAPTURE(frame);
        PageReply page = PageOf(h.Send("s", frame), "s");
        h.now += 1000;  // under the sub rate
        REQUIRE(page.frames >= 1);
        CHECK_FALSE(page.cut);
        if (page.ids.empty()) break;
        // Past the boundary's ties, at most `limit` rows.
        walked.insert(walked.end(), page.ids.begin(), page.ids.end());
        JsonDocument last = Json(page.rows.back());
        cursor = R"({"values":[)" + ToJson(last["rank"]) + "," + ToJson(last["title"]) + R"(],"k":")" +
                 std::string(View(last["id"])) + R"("})";
      }
      CHECK(walked == expected);
    }
  }
}

TEST_CASE("a page serves the rest of the boundary's ties, then limit rows after them") {
  Harness h;
  h.db.MustExec("INSERT INTO tasks(id, rank) VALUES('a',1),('b',2),('c',2),('d',2),('e',3),('f',4),('g',5)");
  h.Connect("s");
  const std::string order = R"([{"col":"rank"}])";
  PageReply page = PageOf(h.Send("s", PageFrame("p1", order, 2, R"({"values":[2],"k":"b"})")), "s");
  CHECK(page.ids == std::vector<std::string>{"c", "d", "e", "f"});
  // Without a cursor: the first `limit` rows.
  CHECK(PageOf(h.Send("s", PageFrame("p2", order, 2)), "s").ids == std::vector<std::string>{"a", "b"});
  // No orderBy: the key alone orders it.
  CHECK(PageOf(h.Send("s", R"({"t":"page","id":"p3","c":"tasks","limit":2,"cursor":{"values":[],"k":"e"}})"), "s").ids ==
        std::vector<std::string>{"f", "g"});
}

TEST_CASE("ties that fill kMaxPageRows cut the page; the next page from its last row goes on through the group") {
  Harness h;
  h.db.MustExec(
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1001) "
      "INSERT INTO tasks(id, rank) SELECT printf('t%05d', i), 7 FROM n");
  h.db.MustExec("INSERT INTO tasks(id, rank) VALUES('z', 8)");
  h.Connect("s");
  const std::string order = R"([{"col":"rank"}])";
  PageReply first = PageOf(h.Send("s", PageFrame("p1", order, 5, R"({"values":[7],"k":"t"})")), "s");
  CHECK(first.cut);
  CHECK(first.ids.size() == static_cast<std::size_t>(kMaxPageRows));
  CHECK(first.ids.back() == "t01000");
  PageReply next = PageOf(h.Send("s", PageFrame("p2", order, 5, R"({"values":[7],"k":"t01000"})")), "s");
  CHECK_FALSE(next.cut);
  CHECK(next.ids == std::vector<std::string>{"t01001", "z"});
}

TEST_CASE("a page is read at the head and holds no subscription: later changes to its rows are not sent") {
  Harness h;
  h.Connect("s");
  h.SendAndRun("s", R"({"t":"mut","id":"m1","ops":[{"c":"tasks","op":"insert","k":"a","cols":{"id":"a","rank":1}}]})");
  PageReply page = PageOf(h.Send("s", PageFrame("p1", R"([{"col":"rank"}])", 10)), "s");
  auto head = h.core->State();
  REQUIRE(head.ok());
  CHECK(page.seq == head->head);
  CHECK(page.ids == std::vector<std::string>{"a"});
  Plan later = h.SendAndRun("s", R"({"t":"mut","id":"m2","ops":[{"c":"tasks","op":"update","k":"a","cols":{"rank":2}}]})");
  for (const std::string& f : Harness::FramesFor(later, "s")) CHECK(TypeOf(f) != "changes");
  CHECK(h.Count("SELECT COUNT(*) FROM _sync_subs") == 0);
}

TEST_CASE("bad pages are typed refusals that change nothing, never an empty page") {
  Options o;
  o.sub_rate_burst = 40;
  Harness h(o);
  h.db.MustExec("INSERT INTO tasks(id, rank) VALUES('a',1)");
  h.Connect("s");
  const long subs_before = h.Count("SELECT COUNT(*) FROM _sync_subs");
  const std::string order = R"("orderBy":[{"col":"rank"}])";
  struct Case {
    const char* name;
    std::string frame;
    Code code;
  };
  const Case cases[] = {
      {"unknown collection", R"({"t":"page","id":"p","c":"nope","limit":1})", Code::kUnknownCollection},
      {"no id", R"({"t":"page","c":"tasks","limit":1})", Code::kInvalidField},
      {"no limit", R"({"t":"page","id":"p","c":"tasks"})", Code::kInvalidField},
      {"limit 0", R"({"t":"page","id":"p","c":"tasks","limit":0})", Code::kInvalidField},
      {"limit over the cap", R"({"t":"page","id":"p","c":"tasks","limit":)" + std::to_string(kMaxPageRows + 1) + "}",
       Code::kTooMany},
      {"an offset", R"({"t":"page","id":"p","c":"tasks","limit":1,"offset":3})", Code::kInvalidField},
      {"unknown orderBy column", R"({"t":"page","id":"p","c":"tasks","limit":1,"orderBy":[{"col":"x"}]})",
       Code::kUnknownColumn},
      {"cursor values of the wrong length", R"({"t":"page","id":"p","c":"tasks","limit":1,)" + order +
                                                R"(,"cursor":{"values":[],"k":"a"}})",
       Code::kInvalidField},
      {"cursor without a key", R"({"t":"page","id":"p","c":"tasks","limit":1,)" + order + R"(,"cursor":{"values":[1]}})",
       Code::kInvalidField},
      {"cursor value an object", R"({"t":"page","id":"p","c":"tasks","limit":1,)" + order +
                                     R"(,"cursor":{"values":[{"$hex":"00"}],"k":"a"}})",
       Code::kInvalidField},
      {"cursor values over maxPredicateLiteralBytes",
       R"({"t":"page","id":"p","c":"tasks","limit":1,)" + order + R"(,"cursor":{"values":[")" +
           std::string(kDefaultMaxPredicateLiteralBytes + 1, 'x') + R"("],"k":"a"}})",
       Code::kTooLarge},
      {"cursor key over maxKeyBytes",
       R"({"t":"page","id":"p","c":"tasks","limit":1,)" + order + R"(,"cursor":{"values":[1],"k":")" +
           std::string(kDefaultMaxKeyBytes + 1, 'k') + R"("}})",
       Code::kTooLarge},
      {"bad where", R"({"t":"page","id":"p","c":"tasks","limit":1,"where":{"type":"func","name":"nope","args":[]}})",
       Code::kUnsupportedPredicate},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Plan plan = h.Send("s", c.frame);
    std::vector<std::string> frames = Harness::FramesFor(plan, "s");
    REQUIRE(frames.size() == 1);
    CHECK(TypeOf(frames[0]) == "page-error");
    CHECK(CodeOf(plan, "s") == c.code);
    CHECK(h.Count("SELECT COUNT(*) FROM _sync_subs") == subs_before);
  }
  // At the cap, accepted.
  PageReply full = PageOf(h.Send("s", R"({"t":"page","id":"p","c":"tasks","limit":)" + std::to_string(kMaxPageRows) + "}"), "s");
  CHECK(full.ids == std::vector<std::string>{"a"});
}

TEST_CASE("page frames share the sub frames' rate limit") {
  Options o;
  o.sub_rate_burst = 2;
  o.sub_rate_per_second = 1;
  Harness h(o);
  h.Connect("s");
  const std::string frame = R"({"t":"page","id":"p","c":"tasks","limit":1})";
  CHECK(TypeOf(Harness::FramesFor(h.Send("s", frame), "s").back()) == "page");
  CHECK(TypeOf(Harness::FramesFor(h.Send("s", frame), "s").back()) == "page");
  Plan limited = h.Send("s", frame);
  CHECK(CodeOf(limited, "s") == Code::kRateLimited);
  CHECK(TypeOf(Harness::FramesFor(limited, "s").back()) == "page-error");
}

}  // TEST_SUITE

}  // namespace seqsync
