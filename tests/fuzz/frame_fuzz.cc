// libFuzzer target: arbitrary bytes as inbound frames on a live core. The
// core must never crash, and must answer every frame (a valid one with its
// normal reply, anything else with a typed error) while the tables and the
// change log stay consistent. Seeded from tests/vectors/ by scripts/fuzz.sh.
//
// Input: up to 8 frames, separated by 0x1e (never part of JSON text), sent
// in turn (a 0x1e anywhere splits, even in r below). A frame is its bytes as
// is, unless they start with kRepeat (0x7f): then the next two bytes are a
// big-endian r, the rest is prefix 0x7f element 0x7f suffix, and the frame
// is prefix, then element 1 + 32*r times joined by ',', then suffix (capped
// just past the frame limit). So a 60-byte input is a 3 MB `[0,0,0,…]`:
// frames with far more JSON values than the core allows are reachable at a
// small -max_len.
//
// Checks, each a __builtin_trap() after a message saying which failed:
//  - The parse limits, against an independent SAX scan of the frame: one
//    over max_frame_bytes, not JSON, nested past max_json_depth or holding
//    more than max_json_values values (scalars, arrays and objects; keys do
//    not count) is answered with exactly one `error` of its kind (TOO_LARGE,
//    MALFORMED_FRAME, TOO_DEEP, TOO_LARGE/TOO_MANY) and nothing else: no
//    mutation, no close. A frame within them is never refused by the parser,
//    and every frame gets an answer (unsub and recv excepted).
//  - Memory: the heap an OnMessage call holds at its peak (counted with
//    ASan's malloc/free hooks) stays within 4x the frame, 4x the reply and
//    kBytesPerValue per allowed JSON value, plus 1 MiB: for a 4 MiB frame
//    ~24 MB, which with the frame itself fits kMaxHeapBytes (the 32 MB wasm
//    heap); 8x a frame would not. The 1.5M-zero `sub` that outgrew the wasm
//    heap took ~50 MB for its 3 MB, and fails this even if its value count
//    were let through. scripts/fuzz.sh adds -malloc_limit_mb for single
//    allocations.
//  - Tables vs change log, after every input: a row exists iff its key's
//    latest log entry is an insert or update (every row has an entry while
//    retention has pruned nothing), ops are 1..3, the head never moves back
//    and is the log's highest seq; after Housekeep the log holds at most one
//    entry per (tbl, key).
// Mutations run for real: the harness plays the shell and the user's
// execute (ops as plain SQL, an insert's id from k unless given, values
// over 1 KB refused), so the tables and the log change with the fuzzer's
// writes.

#include <sanitizer/allocator_interface.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rapidjson_config.h"
#include "seqsync/core.h"
#include "seqsync/limits.h"
#include "seqsync/sqlite_storage.h"

namespace {

// Says which check failed, then traps (libFuzzer saves the input).
[[noreturn]] __attribute__((format(printf, 1, 2))) void Fail(const char* fmt, ...) {
  std::va_list args;
  va_start(args, fmt);
  std::fputs("frame_fuzz: CHECK FAILED: ", stderr);
  std::vfprintf(stderr, fmt, args);
  std::fputc('\n', stderr);
  va_end(args);
  __builtin_trap();
}

// The start of `s`, for messages.
std::string Head(std::string_view s) {
  std::string h(s.substr(0, 160));
  for (char& c : h) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '.';
  }
  return s.size() > 160 ? h + "..." : h;
}

constexpr unsigned char kRepeat = 0x7f;
constexpr std::uint8_t kFrameSeparator = 0x1e;  // never in JSON text, not even in a string
constexpr std::size_t kMaxFramesPerInput = 8;
constexpr std::size_t kRepeatUnit = 32;
// The parsed document costs ~16 bytes a value (a member ~32), RapidJSON's
// parse stack as much again while it grows; 64 leaves headroom for both.
constexpr std::int64_t kBytesPerValue = 64;
constexpr std::size_t kMaxHarnessValueBytes = 1024;  // the execute refuses more
constexpr std::int64_t kMaxTableRows = 512;          // then the tables are emptied
// Every this many inputs s reconnects under a fresh scope (the identity that
// scopes mutation ids): otherwise the seeds' few ids are soon all recorded,
// every mut is a replay, and nothing new is written.
constexpr std::uint64_t kSocketResetEvery = 256;
constexpr std::int64_t kStepMs = 100;                // clock per frame
constexpr std::size_t kMaxSecondSocketBytes = 64u << 10;
constexpr std::uint64_t kHousekeepEvery = 4;

// ---- heap accounting: bytes held by the calls inside PeakDuring ----

std::atomic<bool> g_metering{false};
std::atomic<std::int64_t> g_live{0};
std::atomic<std::int64_t> g_peak{0};

void OnMalloc(const volatile void*, std::size_t size) {
  if (!g_metering.load(std::memory_order_relaxed)) return;
  std::int64_t live = g_live.fetch_add(static_cast<std::int64_t>(size), std::memory_order_relaxed) +
                      static_cast<std::int64_t>(size);
  if (live > g_peak.load(std::memory_order_relaxed)) g_peak.store(live, std::memory_order_relaxed);
}

void OnFree(const volatile void* p) {
  // Runs before ASan releases the chunk, so its size is still known. A
  // block allocated before the scope lowers the count: the peak is never
  // overstated.
  if (p == nullptr || !g_metering.load(std::memory_order_relaxed)) return;
  const void* q = const_cast<const void*>(p);
  if (!__sanitizer_get_ownership(q)) return;
  g_live.fetch_sub(static_cast<std::int64_t>(__sanitizer_get_allocated_size(q)),
                   std::memory_order_relaxed);
}

// Peak heap bytes held during `fn`, above what was held before it.
template <typename Fn>
std::int64_t PeakDuring(Fn&& fn) {
  g_live = 0;
  g_peak = 0;
  g_metering = true;
  fn();
  g_metering = false;
  return g_peak.load();
}

// ---- input expansion ----

std::string Expand(const std::uint8_t* data, std::size_t size, std::size_t cap) {
  const char* text = reinterpret_cast<const char*>(data);
  if (size < 3 || data[0] != kRepeat) return std::string(text, size);
  std::size_t n = 1 + kRepeatUnit * ((std::size_t{data[1]} << 8) | data[2]);
  std::string_view rest(text + 3, size - 3);
  std::size_t first = rest.find(static_cast<char>(kRepeat));
  std::size_t last = rest.rfind(static_cast<char>(kRepeat));
  if (first == std::string_view::npos || first == last) return std::string(rest);
  std::string_view prefix = rest.substr(0, first);
  std::string_view element = rest.substr(first + 1, last - first - 1);
  std::string_view suffix = rest.substr(last + 1);
  std::size_t fixed = prefix.size() + suffix.size();
  std::size_t per = element.size() + 1;  // with its ','
  if (fixed + n * per > cap + 1) n = std::max<std::size_t>(1, (cap + 1 - std::min(cap, fixed)) / per);
  std::string out;
  out.reserve(fixed + n * per);
  out.append(prefix);
  for (std::size_t i = 0; i < n; ++i) {
    if (i) out += ',';
    out.append(element);
  }
  out.append(suffix);
  return out;
}

// ---- an independent scan of the frame against the parse limits ----

// What the core's bounded parser must conclude about a frame. Mirrors the
// limits as documented (json_util.h, limits.h), not the parser's code: a
// SAX pass that builds nothing and stops where a limit is crossed.
struct Scan {
  bool over_values = false;  // more than max_json_values values
  bool over_depth = false;   // nested deeper than max_json_depth
  bool invalid = false;      // not one JSON text (after whitespace)
  bool top_object = false;
  bool t_string = false;     // the first top-level "t" is a string…
  std::string t;             // …this one
  bool clean() const { return !over_values && !over_depth && !invalid; }
};

class ScanHandler {
 public:
  ScanHandler(Scan* scan, std::size_t max_values, int max_depth)
      : scan_(scan), max_values_(max_values), max_depth_(max_depth) {}

  bool Null() { return Value(false, {}); }
  bool Bool(bool) { return Value(false, {}); }
  bool Int(int) { return Value(false, {}); }
  bool Uint(unsigned) { return Value(false, {}); }
  bool Int64(std::int64_t) { return Value(false, {}); }
  bool Uint64(std::uint64_t) { return Value(false, {}); }
  bool Double(double) { return Value(false, {}); }
  bool RawNumber(const char*, rapidjson::SizeType, bool) { return Value(false, {}); }
  bool String(const char* s, rapidjson::SizeType n, bool) { return Value(true, {s, n}); }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    // Member() finds the first "t"; only that one decides the type.
    if (depth_ == 1 && !seen_t_ && n == 1 && s[0] == 't') seen_t_ = expect_t_ = true;
    return true;
  }
  bool StartObject() { return Open(true); }
  bool StartArray() { return Open(false); }
  bool EndObject(rapidjson::SizeType) { --depth_; return true; }
  bool EndArray(rapidjson::SizeType) { --depth_; return true; }

 private:
  bool Value(bool is_string, std::string_view s) {
    if (++values_ > max_values_) scan_->over_values = true;
    if (expect_t_) {
      expect_t_ = false;
      scan_->t_string = is_string;
      if (is_string) scan_->t.assign(s.substr(0, 64));
    }
    return !scan_->over_values;
  }
  bool Open(bool object) {
    bool top = values_ == 0;
    bool ok = Value(false, {});
    if (++depth_ > max_depth_) scan_->over_depth = true;
    if (top && object) scan_->top_object = true;
    return ok && !scan_->over_depth;
  }

  Scan* scan_;
  std::size_t max_values_;
  int max_depth_;
  std::size_t values_ = 0;
  int depth_ = 0;
  bool seen_t_ = false;
  bool expect_t_ = false;
};

Scan ScanFrame(std::string_view frame, const seqsync::Options& o) {
  Scan scan;
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseStopWhenDoneFlag;
  rapidjson::MemoryStream ms(frame.data(), frame.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
  ScanHandler handler(&scan, o.max_json_values, o.max_json_depth);
  rapidjson::Reader reader;
  rapidjson::ParseResult parsed = reader.Parse<kFlags>(in, handler);
  if (scan.over_values || scan.over_depth) return scan;
  if (!parsed) {
    scan.invalid = true;
    return scan;
  }
  std::size_t end = in.Tell();
  while (end < frame.size() && std::strchr(" \t\r\n", frame[end]) != nullptr && frame[end] != '\0') ++end;
  scan.invalid = end != frame.size();
  return scan;
}

// ---- reading the core's answers ----

// The wire name of the error a reply frame carries ("TOO_LARGE"), or "" if
// it is not an `error`, `sub-error` or `reject`. The name is the first
// "error":"…" after "code": (inside a JSON string every quote is escaped,
// so the sub or mutation id cannot fake it).
std::string ErrorName(const std::string& frame, bool* plain_error) {
  *plain_error = frame.rfind(R"({"t":"error",)", 0) == 0;
  if (!*plain_error && frame.rfind(R"({"t":"sub-error",)", 0) != 0 &&
      frame.rfind(R"({"t":"reject",)", 0) != 0) {
    return "";
  }
  std::size_t code = frame.find(R"("code":)");
  if (code == std::string::npos) Fail("an error frame without a code: %s", Head(frame).c_str());
  std::size_t at = frame.find(R"("error":")", code);
  if (at == std::string::npos) Fail("an error frame without an error name: %s", Head(frame).c_str());
  at += 9;
  std::size_t end = frame.find('"', at);
  if (end == std::string::npos) Fail("an error frame with a torn error name: %s", Head(frame).c_str());
  return frame.substr(at, end - at);
}

bool OneOf(const std::string& s, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (s == n) return true;
  }
  return false;
}

std::size_t ReplyBytes(const seqsync::Plan& plan) {
  std::size_t n = 0;
  for (const seqsync::Delivery& d : plan.deliveries) n += d.frame.size();
  return n;
}

// The frames of `plan` addressed to `socket`.
std::vector<const std::string*> To(const seqsync::Plan& plan, const std::string& socket) {
  std::vector<const std::string*> out;
  for (const seqsync::Delivery& d : plan.deliveries) {
    if (std::find(d.to.begin(), d.to.end(), socket) != d.to.end()) out.push_back(&d.frame);
  }
  return out;
}

// Checks `plan`, the core's answer to `frame` from `socket` (`hello`: the
// socket had sent its hello before), against what `scan` says of the frame.
void CheckAnswer(const seqsync::Options& o, std::string_view frame, const Scan* scan,
                 const seqsync::Plan& plan, const std::string& socket, bool hello) {
  auto only_error = [&](const char* why, std::initializer_list<const char*> names) {
    std::string expected;
    for (const char* n : names) expected += std::string(expected.empty() ? "" : " or ") + n;
    if (plan.deliveries.size() != 1 || plan.mutation || plan.close_code != 0) {
      Fail("socket %s, a frame %s (%zu bytes: %s) must get exactly one error %s and nothing else;"
           " got %zu deliveries (first: %s), %s, close %d",
           socket.c_str(), why, frame.size(), Head(frame).c_str(), expected.c_str(), plan.deliveries.size(),
           plan.deliveries.empty() ? "-" : Head(plan.deliveries[0].frame).c_str(),
           plan.mutation ? "a mutation" : "no mutation", plan.close_code);
    }
    const seqsync::Delivery& d = plan.deliveries[0];
    if (d.to.size() != 1 || d.to[0] != socket) Fail("an error for socket %s went to others", socket.c_str());
    bool plain = false;
    std::string name = ErrorName(d.frame, &plain);
    if (!plain || !OneOf(name, names)) {
      Fail("socket %s, a frame %s (%zu bytes: %s) must get an error %s; got %s", socket.c_str(), why,
           frame.size(), Head(frame).c_str(), expected.c_str(), Head(d.frame).c_str());
    }
  };
  if (frame.size() > o.max_frame_bytes) return only_error("over max_frame_bytes", {"TOO_LARGE"});
  if (scan->over_values && scan->over_depth) return only_error("over max_json_values and max_json_depth", {"TOO_LARGE", "TOO_MANY", "TOO_DEEP"});
  if (scan->over_values) return only_error("with more JSON values than max_json_values", {"TOO_LARGE", "TOO_MANY"});
  if (scan->over_depth) return only_error("nested deeper than max_json_depth", {"TOO_DEEP"});
  if (scan->invalid) return only_error("that is not JSON", {"MALFORMED_FRAME"});
  if (!scan->top_object || !scan->t_string) return only_error("without a string t", {"MALFORMED_FRAME"});
  const std::string& t = scan->t;
  bool known = t == "sub" || t == "unsub" || t == "mut" || t == "call" || t == "recv" || t == "presence" ||
               t == "page";
  if (t != "hello" && !known) return only_error("of an unknown type", {"UNKNOWN_FRAME"});
  if (known && !hello) return only_error("before hello", {"PROTOCOL_ORDER"});
  if (t == "hello" && hello) return only_error("hello again", {"PROTOCOL_ORDER"});
  // A frame within every parse limit is never refused as if it were not.
  for (const seqsync::Delivery& d : plan.deliveries) {
    bool plain = false;
    std::string name = ErrorName(d.frame, &plain);
    if (plain && OneOf(name, {"MALFORMED_FRAME", "TOO_DEEP"})) {
      Fail("a frame within the parse limits (%s) was refused: %s", Head(frame).c_str(), Head(d.frame).c_str());
    }
  }
  if (plan.presence && t != "presence") Fail("a %s frame asked for a presence set", t.c_str());
  if (plan.keep_presence && t != "presence") Fail("a %s frame changed the socket's presence", t.c_str());
  // Not answered: an unsub, a valid recv, and a presence set (it waits for the
  // shell's hook), clear or unwatch.
  if (t == "unsub" || t == "recv" || t == "presence") return;
  if (plan.mutation && t != "mut" && t != "call") Fail("a %s frame asked for a mutation", t.c_str());
  // A page holds nothing: it is answered with page frames or one page-error, never a subscription's.
  if (t == "page") {
    for (const std::string* f : To(plan, socket)) {
      const std::string head = Head(*f);
      if (head.rfind("{\"t\":\"snapshot\"", 0) == 0 || head.rfind("{\"t\":\"sub-error\"", 0) == 0) {
        Fail("a page frame (%s) was answered as a sub: %s", Head(frame).c_str(), head.c_str());
      }
    }
  }
  if (!plan.mutation && To(plan, socket).empty()) {
    Fail("socket %s got no answer to %s", socket.c_str(), Head(frame).c_str());
  }
}

void CheckPeak(std::int64_t peak, std::int64_t allowed, const std::string& frame, const seqsync::Plan& plan,
               const char* socket) {
  if (peak <= allowed) return;
  Fail("socket %s: OnMessage held %.1f MB of heap at its peak for a %zu-byte frame (%s) with a %zu-byte"
       " reply; allowed: 4x frame + 4x reply + %lld B x max_json_values + 1 MiB = %.1f MB",
       socket, peak / 1e6, frame.size(), Head(frame).c_str(), ReplyBytes(plan),
       static_cast<long long>(kBytesPerValue), allowed / 1e6);
}

// ---- the fixture: a core over SQLite, and the shell's part ----

struct Fixture {
  seqsync::SqliteStorage db;
  std::unique_ptr<seqsync::Core> core;
  std::int64_t now = 1'000;
  std::uint64_t inputs = 0;
  std::uint64_t frames = 0;
  std::string scope = "u0";
  seqsync::Seq last_head = 0;

  Fixture() {
    db.MustExec(
        "CREATE TABLE messages(id TEXT PRIMARY KEY, author TEXT NOT NULL, content TEXT NOT NULL,"
        " created_at INTEGER NOT NULL);"
        "CREATE TABLE tasks(id TEXT PRIMARY KEY, title TEXT, done INTEGER, rank REAL);"
        "CREATE TABLE notes(id TEXT PRIMARY KEY, body TEXT);");
    seqsync::Options o;
    o.read_page_rows = 4;
    auto opened = seqsync::Core::Open(&db, o,
                                      R"({"collections":[{"table":"messages","pk":"id","ops":["insert","update","delete"]},)"
                                      R"({"table":"tasks","pk":"id","ops":["insert","update","delete"]},)"
                                      R"({"table":"notes","pk":"id","ops":["insert"]}],"commands":["echo"]})",
                                      "fuzz", {}, nullptr);
    if (!opened.ok()) Fail("Core::Open failed: %s", opened.status().ToString().c_str());
    core = std::move(opened).value();
    Hello();
  }

  void Hello() {
    seqsync::Plan p = core->OnMessage("s", scope, R"({"t":"hello","v":1,"subs":[{"id":"m","c":"messages"}]})", now);
    if (p.deliveries.empty() || p.deliveries[0].frame.rfind(R"({"t":"welcome",)", 0) != 0) {
      Fail("the fixture's hello got no welcome");
    }
  }

  std::vector<seqsync::SqlRow> Query(const std::string& sql) {
    auto r = db.Exec(sql, {});
    if (!r.ok()) Fail("%s: %s", sql.substr(0, 60).c_str(), r.status().ToString().c_str());
    return std::move(r).value();
  }

  // The user's execute: the normalised ops as plain SQL. False iff SQLite
  // refused one, or a value is over kMaxHarnessValueBytes (an authorize
  // that keeps the fixture's rows small, so snapshots stay cheap).
  bool Execute(const std::string& ops_json) {
    rapidjson::Document ops;
    ops.Parse(ops_json.data(), ops_json.size());
    if (ops.HasParseError() || !ops.IsArray()) Fail("ops_json is not an array: %s", Head(ops_json).c_str());
    for (const rapidjson::Value& op : ops.GetArray()) {
      if (!op.IsObject() || !op.HasMember("c") || !op["c"].IsString() || !op.HasMember("op") ||
          !op["op"].IsString() || !op.HasMember("k") || !op["k"].IsString()) {
        Fail("ops_json holds an op without string c, op and k: %s", Head(ops_json).c_str());
      }
      std::string table = op["c"].GetString(), kind = op["op"].GetString();
      std::vector<seqsync::SqlValue> params;
      bool too_big = false;
      auto bind = [&](const rapidjson::Value& v) {
        if (v.IsString()) {
          too_big |= v.GetStringLength() > kMaxHarnessValueBytes;
          params.push_back(seqsync::SqlValue::Text(std::string(v.GetString(), v.GetStringLength())));
        } else if (v.IsInt64()) {
          params.push_back(seqsync::SqlValue::Integer(v.GetInt64()));
        } else if (v.IsNumber()) {
          params.push_back(seqsync::SqlValue::Real(v.GetDouble()));
        } else if (v.IsNull()) {
          params.push_back(seqsync::SqlValue::Null());
        } else {
          Fail("ops_json holds a non-scalar column value: %s", Head(ops_json).c_str());
        }
      };
      auto quote = [](const char* s, rapidjson::SizeType n) {
        std::string q = "\"";
        for (rapidjson::SizeType i = 0; i < n; ++i) q += s[i] == '"' ? std::string("\"\"") : std::string(1, s[i]);
        return q + "\"";
      };
      std::string sql;
      if (kind == "insert" || kind == "update") {
        if (!op.HasMember("cols") || !op["cols"].IsObject()) Fail("ops_json: %s without cols", kind.c_str());
        std::string names, marks;
        for (auto m = op["cols"].MemberBegin(); m != op["cols"].MemberEnd(); ++m) {
          if (!names.empty()) { names += ","; marks += ","; }
          std::string name = quote(m->name.GetString(), m->name.GetStringLength());
          names += kind == "insert" ? name : name + "=?" + std::to_string(params.size() + 1);
          marks += "?" + std::to_string(params.size() + 1);
          bind(m->value);
        }
        if (kind == "insert") {
          if (!op["cols"].HasMember("id")) {  // the execute binds the key itself
            if (!names.empty()) { names += ","; marks += ","; }
            names += "id";
            marks += "?" + std::to_string(params.size() + 1);
            bind(op["k"]);
          }
          sql = "INSERT INTO \"" + table + "\"(" + names + ") VALUES(" + marks + ")";
        } else {
          if (names.empty()) continue;  // an update of nothing writes nothing
          bind(op["k"]);
          sql = "UPDATE \"" + table + "\" SET " + names + " WHERE id=?" + std::to_string(params.size());
        }
      } else if (kind == "delete") {
        bind(op["k"]);
        sql = "DELETE FROM \"" + table + "\" WHERE id=?1";
      } else {
        Fail("ops_json holds op '%s'", kind.c_str());
      }
      if (too_big || !db.Exec(sql, params).ok()) return false;
    }
    return true;
  }

  // Plays the shell for the mutation `plan` asks for: execute, record and
  // finish inside one transaction, or roll back and reject.
  void RunMutation(const seqsync::PendingMutation& m) {
    db.MustExec("BEGIN");
    bool executed = m.command.empty() ? Execute(m.ops_json) : true;
    seqsync::Result<seqsync::Seq> seq = seqsync::Status::ExecuteFailed("the execute refused the ops");
    if (executed) seq = core->CommitMutation(scope, m.id, m.command.empty() ? "" : m.args_json, now);
    db.MustExec(seq.ok() ? "COMMIT" : "ROLLBACK");
    seqsync::Plan done = seq.ok() ? core->FinishMutation(scope, m.id, now)
                                  : core->RejectMutation(scope, m.id, seq.status(), now);
    // Exactly one answer to the sender, unless the core closes it to resume.
    if (done.close_code == 0 && To(done, "s").empty()) Fail("mutation '%s' got no answer", m.id.c_str());
    if (seq.ok() && done.close_code == 0) {
      std::string ack = R"({"t":"ack",)";
      std::size_t acks = 0;
      for (const std::string* f : To(done, "s")) acks += f->rfind(ack, 0) == 0;
      if (acks != 1) Fail("mutation '%s' committed and got %zu acks", m.id.c_str(), acks);
    }
  }

  // The tables against the change log (see the top comment).
  void CheckLog(bool compacted) {
    auto r = Query(
        "WITH latest AS (SELECT tbl, key, op, MAX(seq) AS seq FROM _sync_changes GROUP BY tbl, key),"
        " live AS (SELECT 'messages' AS tbl, id AS key FROM messages UNION ALL"
        "          SELECT 'tasks', id FROM tasks UNION ALL SELECT 'notes', id FROM notes)"
        " SELECT"
        "  (SELECT COUNT(*) FROM live WHERE NOT EXISTS (SELECT 1 FROM latest l"
        "     WHERE l.tbl = live.tbl AND l.key IS live.key)),"
        "  (SELECT COUNT(*) FROM live JOIN latest l ON l.tbl = live.tbl AND l.key IS live.key WHERE l.op = 3),"
        "  (SELECT COUNT(*) FROM latest l WHERE l.op <> 3 AND NOT EXISTS (SELECT 1 FROM live"
        "     WHERE live.tbl = l.tbl AND live.key IS l.key)),"
        "  (SELECT COUNT(*) FROM _sync_changes WHERE op NOT IN (1, 2, 3)),"
        "  (SELECT COALESCE(MAX(seq), 0) FROM _sync_changes),"
        "  (SELECT COUNT(*) FROM live),"
        "  (SELECT COUNT(*) FROM (SELECT 1 FROM _sync_changes GROUP BY tbl, key HAVING COUNT(*) > 1))");
    const seqsync::SqlRow& row = r.at(0);
    auto state = core->State();
    if (!state.ok()) Fail("State: %s", state.status().ToString().c_str());
    bool pruned = state->floor > 0;
    auto n = [&](int i) { return static_cast<long long>(row[i].AsInteger()); };
    if (!pruned && n(0) != 0) Fail("%lld rows have no change-log entry", n(0));
    if (n(1) != 0) Fail("%lld rows exist though their latest log entry is a delete", n(1));
    if (n(2) != 0) Fail("%lld keys' latest log entry is an insert or update, but the row is gone", n(2));
    if (n(3) != 0) Fail("%lld log entries have an op outside 1..3", n(3));
    seqsync::Seq max_seq = static_cast<seqsync::Seq>(row[4].AsInteger());
    if (state->head < last_head || state->head != std::max(max_seq, state->floor)) {
      Fail("head %llu (was %llu), log max seq %llu, floor %llu", static_cast<unsigned long long>(state->head),
           static_cast<unsigned long long>(last_head), static_cast<unsigned long long>(max_seq),
           static_cast<unsigned long long>(state->floor));
    }
    last_head = state->head;
    if (compacted && n(6) != 0) Fail("after Housekeep, %lld (tbl, key) have more than one log entry", n(6));
    if (row[5].AsInteger() > kMaxTableRows) {
      // Start the tables over (the deletes go through the log like any
      // write), so snapshots and these checks stay cheap in long runs.
      db.MustExec("DELETE FROM messages; DELETE FROM tasks; DELETE FROM notes;");
      seqsync::Plan drained = core->Drain(now);
      (void)drained;
      if (seqsync::Status h = core->Housekeep(now); !h.ok()) Fail("Housekeep: %s", h.ToString().c_str());
      CheckLog(/*compacted=*/true);
    }
  }
};

// One frame from s (then, if short, from r), with every check.
void RunFrame(Fixture& f, const std::uint8_t* data, std::size_t size) {
  const seqsync::Options& o = f.core->options();
  f.now += kStepMs;
  std::string frame = Expand(data, size, o.max_frame_bytes + 64);
  Scan scan;
  if (frame.size() <= o.max_frame_bytes) scan = ScanFrame(frame, o);
  const std::int64_t allowed_values = kBytesPerValue * static_cast<std::int64_t>(o.max_json_values);
  auto allowance = [&](const seqsync::Plan& p) {
    return 4 * static_cast<std::int64_t>(frame.size()) + 4 * static_cast<std::int64_t>(ReplyBytes(p)) +
           allowed_values + (std::int64_t{1} << 20);
  };

  seqsync::Plan plan;
  std::int64_t peak = PeakDuring([&] { plan = f.core->OnMessage("s", f.scope, frame, f.now); });
  CheckPeak(peak, allowance(plan), frame, plan, "s");
  CheckAnswer(o, frame, &scan, plan, "s", /*hello=*/true);
  if (plan.mutation) f.RunMutation(*plan.mutation);
  if (plan.presence) {
    // Plays the shell's hook: every other set is refused, which must answer
    // the sender alone with one presence-error and keep nothing.
    if (f.frames % 2 == 0) {
      seqsync::Plan refused = f.core->RefusePresence("s", seqsync::Status::Unauthorized("fuzz"));
      if (refused.deliveries.size() != 1 || To(refused, "s").size() != 1 || refused.keep_presence ||
          refused.deliveries[0].frame.rfind(R"({"t":"presence-error",)", 0) != 0) {
        Fail("a refused presence set was not answered with exactly one presence-error");
      }
    } else if (!f.core->CommitPresence("s", f.scope).keep_presence) {
      Fail("a committed presence set left the attachment's presence as it was");
    }
  }

  // A second socket's hello exercises the resume path over whatever the
  // fuzzer built up; anything else from it is out of order. (Not for long
  // frames: their parse was just checked, and it halves the exec rate.)
  if (frame.size() <= kMaxSecondSocketBytes) {
    seqsync::Plan other;
    peak = PeakDuring([&] { other = f.core->OnMessage("r", f.scope, frame, f.now); });
    CheckPeak(peak, allowance(other), frame, other, "r");
    CheckAnswer(o, frame, &scan, other, "r", /*hello=*/false);
    f.core->OnClose("r");
  }

  // Housekeep every kHousekeepEvery frames: often enough to check the
  // compaction, seldom enough to leave the log uncompacted in between.
  bool compact = ++f.frames % kHousekeepEvery == 0;
  if (compact) {
    if (seqsync::Status h = f.core->Housekeep(f.now); !h.ok()) Fail("Housekeep: %s", h.ToString().c_str());
  }
  f.CheckLog(compact);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  __sanitizer_install_malloc_and_free_hooks(OnMalloc, OnFree);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture f;
  if (++f.inputs % kSocketResetEvery == 0) {  // also: s fills up with subs otherwise
    f.core->OnClose("s");
    f.scope = "u" + std::to_string(f.inputs / kSocketResetEvery);
    f.Hello();
  }
  // Up to kMaxFramesPerInput frames, split at kFrameSeparator.
  const std::uint8_t* end = data + size;
  for (std::size_t n = 1;; ++n) {
    const std::uint8_t* cut = n < kMaxFramesPerInput ? std::find(data, end, kFrameSeparator) : end;
    RunFrame(f, data, static_cast<std::size_t>(cut - data));
    if (cut == end) break;
    data = cut + 1;
  }
  return 0;
}
