// Presence (cpp/src/presence.cc): ephemeral per-tab state outside the change
// log, named by the shell, bounded, restored from the attachment at a wake.

#include "presence.h"

#include <doctest/doctest.h>

#include "seqsync/close_codes.h"
#include "test_util.h"

namespace seqsync {
namespace {

std::string Set(const std::string& tab, const std::string& state) {
  return R"({"t":"presence","tab":")" + tab + R"(","state":)" + state + "}";
}
constexpr char kWatch[] = R"({"t":"presence","watch":true})";

// Plays the shell for a set: the hook accepts, and the core commits under `user`.
Plan SetAs(Harness& h, const std::string& socket, const std::string& user, const std::string& tab,
           const std::string& state) {
  Plan asked = h.Send(socket, Set(tab, state));
  REQUIRE_MESSAGE(asked.presence.has_value(), "refused: " << (asked.deliveries.empty() ? "" : asked.deliveries[0].frame));
  return h.core->CommitPresence(socket, user);
}

// The log's and the tables' state, which presence must never change.
std::string Durable(Harness& h) {
  return std::to_string(h.Count("SELECT count(*) FROM _sync_changes")) + "/" +
         std::to_string(h.Count("SELECT count(*) FROM messages")) + "/" +
         std::to_string(h.Count("SELECT total_changes()"));
}

}  // namespace

TEST_SUITE("presence") {
  TEST_CASE("a set reaches every watching socket under the user the shell named, and writes nothing") {
    Harness h;
    h.Connect("a");
    h.Connect("b");
    h.Connect("c");  // says hello but does not watch
    REQUIRE(Harness::FramesFor(h.Send("b", kWatch), "b").size() == 1);
    const std::string before = Durable(h);
    const long statements = h.db.exec_count();

    Plan asked = h.Send("a", Set("t1", R"({"typing":true})"));
    REQUIRE(asked.presence.has_value());
    CHECK(asked.presence->tab == "t1");
    CHECK(asked.presence->state_json == R"({"typing":true})");
    CHECK(asked.deliveries.empty());  // nothing leaves before the hook judged it
    Plan sent = h.core->CommitPresence("a", "ann");
    CHECK(Harness::FramesFor(sent, "b") ==
          std::vector<std::string>{R"({"t":"presence","entries":[{"socket":"a","tab":"t1","user":"ann","state":{"typing":true}}]})"});
    CHECK(Harness::FramesFor(sent, "a").empty());
    CHECK(Harness::FramesFor(sent, "c").empty());
    REQUIRE(sent.keep_presence.has_value());
    CHECK(*sent.keep_presence == R"({"user":"ann","watch":false,"tabs":[["t1",{"typing":true}]]})");
    CHECK(h.db.exec_count() == statements);  // not one SQL statement
    CHECK(Durable(h) == before);
  }

  TEST_CASE("a watch gets everyone's entries with its own socket id; last write wins per tab") {
    Harness h;
    h.Connect("a");
    h.Connect("b");
    SetAs(h, "a", "ann", "t1", "1");
    SetAs(h, "a", "ann", "t1", "2");
    SetAs(h, "a", "ann", "t2", R"("x")");
    SetAs(h, "b", "bob", "t1", R"({"at":3})");
    auto view = Harness::FramesFor(h.Send("b", kWatch), "b");
    REQUIRE(view.size() == 1);
    CHECK(view[0] ==
          R"({"t":"presence","all":true,"you":"b","entries":[{"socket":"a","tab":"t1","user":"ann","state":2},)"
          R"({"socket":"a","tab":"t2","user":"ann","state":"x"},{"socket":"b","tab":"t1","user":"bob","state":{"at":3}}]})");
  }

  TEST_CASE("a client cannot speak for another: the user is the shell's, whatever the frame says") {
    Harness h;
    h.Connect("a");
    h.Connect("w");
    h.Send("w", kWatch);
    Plan asked = h.Send("a", R"({"t":"presence","tab":"t1","state":1,"user":"bob","socket":"w"})");
    REQUIRE(asked.presence.has_value());
    auto got = Harness::FramesFor(h.core->CommitPresence("a", "ann"), "w");
    REQUIRE(got.size() == 1);
    CHECK(got[0] == R"({"t":"presence","entries":[{"socket":"a","tab":"t1","user":"ann","state":1}]})");
  }

  TEST_CASE("a refused set changes nothing and tells its socket why") {
    Harness h;
    h.Connect("a");
    h.Connect("w");
    h.Send("w", kWatch);
    SetAs(h, "a", "ann", "t1", "1");
    REQUIRE(h.Send("a", Set("t1", "2")).presence.has_value());
    Plan refused = h.core->RefusePresence("a", Status::Unauthorized("not while muted"));
    CHECK(Harness::FramesFor(refused, "a") ==
          std::vector<std::string>{R"({"t":"presence-error","tab":"t1","code":10,"error":"UNAUTHORIZED","message":"not while muted"})"});
    CHECK(Harness::FramesFor(refused, "w").empty());
    CHECK(!refused.keep_presence.has_value());
    // Nothing is held any more: a late commit sends nothing.
    CHECK(h.core->CommitPresence("a", "ann").deliveries.empty());
    CHECK(Harness::FramesFor(h.Send("w", kWatch), "w")[0].find(R"("state":1})") != std::string::npos);
  }

  TEST_CASE("a clear and a close remove entries for the others; a closed socket costs nothing more") {
    Harness h;
    h.Connect("a");
    h.Connect("w");
    h.Send("w", kWatch);
    h.Send("a", kWatch);
    SetAs(h, "a", "ann", "t1", "1");
    SetAs(h, "a", "ann", "t2", "2");
    Plan cleared = h.Send("a", Set("t2", "null"));
    CHECK(!cleared.presence.has_value());  // a clear needs no hook
    CHECK(Harness::FramesFor(cleared, "w") ==
          std::vector<std::string>{R"({"t":"presence","entries":[{"socket":"a","tab":"t2","user":"ann"}]})"});
    CHECK(*cleared.keep_presence == R"({"user":"ann","watch":true,"tabs":[["t1",1]]})");
    CHECK(h.Send("a", Set("never-set", "null")).deliveries.empty());

    Plan closed = h.core->OnClose("a");
    CHECK(Harness::FramesFor(closed, "w") ==
          std::vector<std::string>{R"({"t":"presence","entries":[{"socket":"a","tab":"t1","user":"ann"}]})"});
    CHECK(Harness::FramesFor(closed, "a").empty());
    auto view = Harness::FramesFor(h.Send("w", kWatch), "w");
    CHECK(view[0] == R"({"t":"presence","all":true,"you":"w","entries":[]})");
  }

  TEST_CASE("limits: bytes and tabs per socket at N and N+1, the object's budget; past them nothing changes") {
    Options o;
    o.max_presence_bytes_per_socket = 25;
    o.max_presence_tabs_per_socket = 2;
    Harness h(o);
    h.Connect("a");
    h.Connect("w");
    h.Send("w", kWatch);
    SUBCASE("bytes") {
      // ["t1",<state>] stored: "t1" (4) + a state of 18 bytes ("" around 16) + 3 = 25: accepted.
      SetAs(h, "a", "ann", "t1", R"("0123456789abcdef")");
      Plan over = h.Send("a", Set("t1", R"("0123456789abcdefg")"));
      CHECK(!over.presence.has_value());
      CHECK(CodeOf(over, "a") == Code::kTooLarge);
      CHECK(TypeOf(Harness::FramesFor(over, "a")[0]) == "presence-error");
      CHECK(Harness::FramesFor(over, "w").empty());
      CHECK(!over.keep_presence.has_value());
      CHECK(Harness::FramesFor(h.Send("w", kWatch), "w")[0].find("0123456789abcdef\"}") != std::string::npos);
    }
    SUBCASE("tabs") {
      SetAs(h, "a", "ann", "t1", "1");
      SetAs(h, "a", "ann", "t2", "2");
      Plan over = h.Send("a", Set("t3", "3"));
      CHECK(CodeOf(over, "a") == Code::kTooMany);
      CHECK(!over.presence.has_value());
      SetAs(h, "a", "ann", "t2", "4");  // replacing a held tab is not a new one
    }
    SUBCASE("tab id") {
      Harness wide;  // the default byte budget holds a tab id at its limit
      wide.Connect("a");
      CHECK(wide.Send("a", Set(std::string(kMaxPresenceTabIdBytes, 'x'), "1")).presence.has_value());
      CHECK(CodeOf(wide.Send("a", Set(std::string(kMaxPresenceTabIdBytes + 1, 'x'), "1")), "a") == Code::kTooLarge);
    }
    SUBCASE("malformed") {
      for (const char* bad : {R"({"t":"presence"})", R"({"t":"presence","tab":"","state":1})",
                              R"({"t":"presence","tab":1,"state":1})", R"({"t":"presence","tab":"t"})",
                              R"({"t":"presence","watch":1})", R"({"t":"presence","watch":true,"tab":"t","state":1})"}) {
        CAPTURE(bad);
        Plan p = h.Send("a", bad);
        CHECK(CodeOf(p, "a") == Code::kInvalidField);
        CHECK(!p.presence.has_value());
      }
    }
    SUBCASE("a user over kMaxPresenceUserBytes") {
      REQUIRE(h.Send("a", Set("t1", "1")).presence.has_value());
      Plan p = h.core->CommitPresence("a", std::string(kMaxPresenceUserBytes + 1, 'u'));
      CHECK(CodeOf(p, "a") == Code::kInternal);
      CHECK(Harness::FramesFor(p, "w").empty());
    }
  }

  TEST_CASE("the object's budget: kMaxPresenceBytesPerObject in all is accepted, a byte more is TOO_MANY") {
    Options o;
    o.max_presence_bytes_per_socket = kPresenceAttachmentBytes;
    o.presence_rate_burst = 4;
    Harness h(o);
    // Each socket's one tab stores exactly kPresenceAttachmentBytes: ["t",<state>] is 3 + 3 + the state.
    const std::size_t sockets = kMaxPresenceBytesPerObject / kPresenceAttachmentBytes;
    const std::string full = "\"" + std::string(kPresenceAttachmentBytes - 8, 'x') + "\"";
    for (std::size_t i = 0; i < sockets; ++i) {
      const std::string id = "s" + std::to_string(i);
      h.Connect(id);
      REQUIRE(h.Send(id, Set("t", full)).presence.has_value());
      REQUIRE(h.core->CommitPresence(id, "u").keep_presence.has_value());
    }
    h.Connect("last");
    Plan over = h.Send("last", Set("t", "1"));
    CHECK(CodeOf(over, "last") == Code::kTooMany);
    CHECK(!over.presence.has_value());
    // A socket that closes frees its share for the next.
    (void)h.core->OnClose("s0");
    CHECK(h.Send("last", Set("t", "1")).presence.has_value());
  }

  TEST_CASE("presence frames: a burst of presenceRateBurst, then presenceRatePerSecond; past it RATE_LIMITED") {
    Options o;
    o.presence_rate_burst = 3;
    o.presence_rate_per_second = 2;
    Harness h(o);
    h.Connect("a");
    for (int i = 0; i < 3; ++i) CHECK(h.Send("a", Set("t1", std::to_string(i))).presence.has_value());
    Plan limited = h.Send("a", Set("t1", "9"));
    CHECK(!limited.presence.has_value());
    CHECK(CodeOf(limited, "a") == Code::kRateLimited);
    CHECK(CodeOf(h.Send("a", kWatch), "a") == Code::kRateLimited);  // a watch takes a token too
    h.now += 500;
    CHECK(h.Send("a", Set("t1", "9")).presence.has_value());
    CHECK(!h.Send("a", Set("t1", "9")).presence.has_value());
  }

  TEST_CASE("presence before hello is a PROTOCOL_ORDER error") {
    Harness h;
    CHECK(CodeOf(h.Send("a", Set("t1", "1")), "a") == Code::kProtocolOrder);
  }

  TEST_CASE("presence survives a wake: a new core restores it from what the attachments kept") {
    Harness h;
    h.Connect("a");
    h.Connect("w");
    Plan watched = h.Send("w", kWatch);
    const std::string kept_w = *watched.keep_presence;
    const std::string kept_a = *SetAs(h, "a", "ann", "t1", R"({"typing":true})").keep_presence;
    h.Reopen(kChatRegistration, {"a", "w"});
    REQUIRE(h.core->RestorePresence("a", kept_a).ok());
    REQUIRE(h.core->RestorePresence("w", kept_w).ok());
    // w still watches: a's next set reaches it without a new watch.
    auto got = Harness::FramesFor(SetAs(h, "a", "ann", "t1", R"({"typing":false})"), "w");
    CHECK(got == std::vector<std::string>{R"({"t":"presence","entries":[{"socket":"a","tab":"t1","user":"ann","state":{"typing":false}}]})"});
    // And a's close after the wake still removes it.
    CHECK(Harness::FramesFor(h.core->OnClose("a"), "w").size() == 1);
    CHECK(!h.core->RestorePresence("x", "not json").ok());
  }

  TEST_CASE("presence deliveries count as unread bytes: a watcher that stopped reading is closed SLOW_READER") {
    Options o;
    o.max_unread_bytes_per_socket = kMinMaxUnreadBytesPerSocket;
    o.presence_rate_burst = 1'000'000;
    Harness h(o);
    h.Connect("a");
    h.Connect("slow");
    h.Send("slow", kWatch);
    const std::string big = "\"" + std::string(1500, 'x') + "\"";
    bool closed = false;
    for (int i = 0; i < 100 && !closed; ++i) {
      Plan p = SetAs(h, "a", "ann", "t1", big);
      closed = p.close_code == kCloseSlowReader && p.close == std::vector<std::string>{"slow"};
    }
    CHECK(closed);
  }
}

}  // namespace seqsync
