// Replays the golden session in tests/vectors/session.json and the golden
// pages in tests/vectors/page.json: every frame the core sends must match,
// byte for byte.

#include "test_util.h"

namespace seqsync {

namespace {

// Every frame the core sends for each step of `file` must match byte for byte.
int Replay(const char* file) {
  Harness h;
  JsonDocument doc = Json(ReadSourceFile(file));
  int step = 0;
  for (const JsonValue& s : doc["steps"].GetArray()) {
    CAPTURE(step);
    std::string socket(View(s["socket"])), frame(View(s["send"]));
    CAPTURE(frame);
    Plan plan = h.SendAndRun(socket, frame, "u1");
    std::map<std::string, std::vector<std::string>> got;
    for (const Delivery& d : plan.deliveries) {
      for (const std::string& to : d.to) got[to].push_back(d.frame);
    }
    std::map<std::string, std::vector<std::string>> want;
    for (rapidjson::SizeType i = 0; i < s["expect"].MemberCount(); ++i) {
      auto m = s["expect"].MemberBegin() + i;
      for (const JsonValue& f : m->value.GetArray()) want[std::string(View(m->name))].push_back(std::string(View(f)));
    }
    CHECK(got == want);
    ++step;
  }
  return step;
}

}  // namespace

TEST_SUITE("session") {

TEST_CASE("the golden session in tests/vectors/session.json replays exactly") {
  CHECK(Replay("tests/vectors/session.json") >= 10);
}

TEST_CASE("the golden pages in tests/vectors/page.json replay exactly") {
  CHECK(Replay("tests/vectors/page.json") >= 7);
}

}  // TEST_SUITE

}  // namespace seqsync
