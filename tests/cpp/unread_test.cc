// unread.cc: a socket that stops reporting what it read is closed once its
// unread bytes pass maxUnreadBytesPerSocket; the others are untouched.
#include "unread.h"

#include "seqsync/close_codes.h"
#include "test_util.h"

namespace seqsync {
namespace {

std::size_t BytesFor(const Plan& plan, const std::string& socket) {
  std::size_t n = 0;
  for (const std::string& f : Harness::FramesFor(plan, socket)) n += f.size();
  return n;
}

std::string Recv(std::uint64_t bytes) { return R"({"t":"recv","bytes":)" + std::to_string(bytes) + "}"; }

Options SmallBound() {
  Options o;
  o.max_unread_bytes_per_socket = kMinMaxUnreadBytesPerSocket;
  return o;
}

}  // namespace

TEST_SUITE("unread") {

TEST_CASE("a socket that reports nothing is closed SLOW_READER after the bound; readers are not") {
  Harness h(SmallBound());
  const std::string subs = R"([{"id":"m","c":"messages"}])";
  h.Connect("slow", subs);
  h.Connect("reader", subs);
  const std::string content(4000, 'x');
  std::size_t slow_bytes = 0;  // sent to "slow" before the write that closes it
  int closed_at = -1;
  for (int i = 0; i < 40 && closed_at < 0; ++i) {
    CAPTURE(i);
    Plan p = h.SendAndRun("reader", InsertMessage("m" + std::to_string(i), "k" + std::to_string(i), "u1", content));
    if (p.close_code == kCloseSlowReader) {
      closed_at = i;
      CHECK(p.close == std::vector<std::string>{"slow"});
      // The frames of the closing call still go out: a unit is never cut.
      CHECK(BytesFor(p, "slow") > 0);
    } else {
      CHECK(p.close_code == 0);
      slow_bytes += BytesFor(p, "slow");
    }
    h.Send("reader", Recv(BytesFor(p, "reader")));
  }
  REQUIRE(closed_at > 0);
  // Closed at the first call after it went over, not before.
  CHECK(slow_bytes > kMinMaxUnreadBytesPerSocket);
  CHECK(slow_bytes - 4100 <= kMinMaxUnreadBytesPerSocket);
}

TEST_CASE("a unit larger than the bound arrives whole; the next call closes its socket unless it read") {
  Harness h(SmallBound());
  h.Connect("w");
  const std::string content(4000, 'x');
  for (int i = 0; i < 40; ++i) {
    Plan p = h.SendAndRun("w", InsertMessage("m" + std::to_string(i), "k" + std::to_string(i), "u1", content));
    h.Send("w", Recv(BytesFor(p, "w")));
  }
  Plan hello = h.Send("big", R"({"t":"hello","v":1,"subs":[{"id":"m","c":"messages"}]})");
  REQUIRE(BytesFor(hello, "big") > kMinMaxUnreadBytesPerSocket);
  CHECK(hello.close_code == 0);
  SUBCASE("it reported reading the unit: it stays") {
    h.Send("big", Recv(BytesFor(hello, "big")));
    Plan next = h.SendAndRun("w", InsertMessage("n1", "n1"));
    CHECK(next.close_code == 0);
    CHECK(BytesFor(next, "big") > 0);
  }
  SUBCASE("it did not: closed") {
    Plan next = h.SendAndRun("w", InsertMessage("n1", "n1"));
    CHECK(next.close_code == kCloseSlowReader);
    CHECK(next.close == std::vector<std::string>{"big"});
  }
}

TEST_CASE("a report cannot bank credit beyond what was sent") {
  Harness h(SmallBound());
  h.Connect("liar", R"([{"id":"m","c":"messages"}])");
  h.Send("liar", Recv(std::uint64_t{1} << 40));
  h.Connect("w");
  const std::string content(4000, 'x');
  bool closed = false;
  for (int i = 0; i < 40 && !closed; ++i) {
    Plan p = h.SendAndRun("w", InsertMessage("m" + std::to_string(i), "k" + std::to_string(i), "u1", content));
    closed = p.close_code == kCloseSlowReader;
    h.Send("w", Recv(BytesFor(p, "w")));
  }
  CHECK(closed);
}

TEST_CASE("a recv frame without a count is INVALID_FIELD and changes nothing") {
  Harness h;
  h.Connect("s1");
  for (const char* bad : {R"({"t":"recv"})", R"({"t":"recv","bytes":-1})", R"({"t":"recv","bytes":1.5})",
                          R"({"t":"recv","bytes":"9"})"}) {
    CAPTURE(bad);
    Plan p = h.Send("s1", bad);
    CHECK(CodeOf(p, "s1") == Code::kInvalidField);
    CHECK(p.close_code == 0);
  }
  CHECK(CodeOf(h.Send("fresh", Recv(1)), "fresh") == Code::kProtocolOrder);
}

TEST_CASE("maxUnreadBytesPerSocket is an option, raised to its minimum, reported in the welcome") {
  auto o = ParseOptions(R"({"maxUnreadBytesPerSocket":10})");
  REQUIRE(o.ok());
  CHECK(o->max_unread_bytes_per_socket == kMinMaxUnreadBytesPerSocket);
  CHECK(LimitsJson(Options()).find("\"maxUnreadBytesPerSocket\":8388608") != std::string::npos);
}

}  // TEST_SUITE

}  // namespace seqsync
