// The embind surface of the core: the only file that includes
// <emscripten/bind.h>. One class, RawCore, made only by RawCore.open (there
// is no constructor: a core exists only registered), whose methods take
// whole frames, send the frames they plan through the bridge (one crossing
// per frame, sent as encoded here), and return the rest as one JSON text or
// a number (nothing to .delete() but the core itself). No method throws. The typed
// wrapper is worker/src/do/core.ts; the declarations are cpp/wasm/core.d.mts.

#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <memory>

#include "frame_writer.h"
#include "js_storage.h"
#include "seqsync/core.h"

namespace seqsync {
namespace {

using emscripten::val;

val StatusValue(const Status& s) {
  val out = val::object();
  out.set("code", static_cast<int>(s.code()));
  out.set("message", s.message());
  return out;
}

// The plan as data, for RawCore.open, whose refusals the shell sends once
// the registration committed.
val DeliveriesValue(const Plan& plan) {
  val deliveries = val::array();
  for (const Delivery& d : plan.deliveries) {
    std::string to;
    for (const std::string& id : d.to) {
      if (!to.empty()) to.push_back('\n');
      to += id;
    }
    val entry = val::object();
    entry.set("to", to);
    entry.set("frame", val(d.frame));
    deliveries.call<void>("push", entry);
  }
  return deliveries;
}

// What is left of a plan once its frames were sent, as JSON for the shell
// to parse once: {"mutation":{"id","ops"|"command","args"},"presence":
// {"tab","state"},"keepPresence","closeCode","closeReason","close"}, each
// only if present; "" if nothing is (the common case). The ops and args are JSON values, not strings, so the one
// JSON.parse of this text is the only parse of a mutation in JS.
std::string Remainder(const Plan& plan) {
  if (!plan.mutation && !plan.presence && !plan.keep_presence && plan.close_code == 0) return "";
  std::string out = "{";
  if (const auto& m = plan.mutation) {
    // Appended piece by piece: the ops or args may be megabytes, and the
    // heap is small.
    out.reserve(m->ops_json.size() + m->args_json.size() + m->id.size() + m->command.size() + 64);
    out += "\"mutation\":{\"id\":";
    out += JsonQuote(m->id);
    if (m->command.empty()) {
      out += ",\"ops\":";
      out += m->ops_json;
    } else {
      out += ",\"command\":";
      out += JsonQuote(m->command);
      out += ",\"args\":";
      out += m->args_json;
    }
    out += "}";
  }
  if (const auto& p = plan.presence) {
    if (out.size() > 1) out += ",";
    out += "\"presence\":{\"tab\":" + JsonQuote(p->tab) + ",\"state\":" + p->state_json + "}";
  }
  if (plan.keep_presence) {
    if (out.size() > 1) out += ",";
    out += "\"keepPresence\":" + JsonQuote(*plan.keep_presence);
  }
  if (plan.close_code != 0) {
    if (out.size() > 1) out += ",";
    out += "\"closeCode\":" + std::to_string(plan.close_code) + ",\"closeReason\":" + JsonQuote(plan.close_reason) +
           ",\"close\":[";
    for (std::size_t i = 0; i < plan.close.size(); ++i) out += (i > 0 ? "," : "") + JsonQuote(plan.close[i]);
    out += "]";
  }
  return out + "}";
}

class RawCore {
 public:
  // {code, message, core, deliveries}: on success `core` is a new RawCore,
  // owned by the caller (.delete() it), and `deliveries` the sub-errors of
  // the stored subscriptions the registration no longer allows; otherwise
  // `core` is null and code/message say why (options first, then the
  // registration and the restore). `live_presence`: [{socket, presence}]
  // for the live sockets whose attachment kept presence.
  static val Open(val bridge, const std::string& options_json, const std::string& registration,
                  const std::string& fresh_epoch, val live_ids, val live_presence) {
    auto options = ParseOptions(options_json);
    if (!options.ok()) {
      return Opened(Status(options.status().code(), "invalid options: " + options.status().message()));
    }
    std::vector<std::string> live;
    const unsigned n = live_ids["length"].as<unsigned>();
    for (unsigned i = 0; i < n; ++i) live.push_back(live_ids[i].as<std::string>());
    // The storage lives in the RawCore, so it outlives the Core it serves.
    std::unique_ptr<RawCore> raw(new RawCore(std::move(bridge)));
    Plan refusals;
    auto core = Core::Open(&raw->storage_, *options, registration, fresh_epoch, live, &refusals);
    if (!core.ok()) return Opened(core.status());
    raw->core_ = std::move(core).value();
    const unsigned kept = live_presence["length"].as<unsigned>();
    for (unsigned i = 0; i < kept; ++i) {
      // One that does not read is dropped: presence is ephemeral, the client sets it again.
      Status restored = raw->core_->RestorePresence(live_presence[i]["socket"].as<std::string>(),
                                                    live_presence[i]["presence"].as<std::string>());
      (void)restored;
    }
    val out = Opened(Status::Ok());
    out.set("deliveries", DeliveriesValue(refusals));
    out.set("core", val(std::move(raw)));  // JS owns it from here
    return out;
  }

  // Each call that plans sends the plan's frames through the bridge, in
  // order, before it returns, and returns the Remainder.
  std::string OnMessage(const std::string& socket, const std::string& scope, const std::string& frame,
                        double now_ms) {
    return Sent(core_->OnMessage(socket, scope, frame, static_cast<std::int64_t>(now_ms)));
  }

  // The seq (>= 0), or minus the code of why not (the message is then
  // lastError()).
  double CommitMutation(const std::string& scope, const std::string& id, const std::string& result,
                        double now_ms) {
    auto seq = core_->CommitMutation(scope, id, result, static_cast<std::int64_t>(now_ms));
    if (seq.ok()) return static_cast<double>(*seq);
    last_error_ = seq.status().message();
    return -static_cast<double>(static_cast<int>(seq.status().code()));
  }

  std::string LastError() const { return last_error_; }

  std::string FinishMutation(const std::string& scope, const std::string& id, double now_ms) {
    return Sent(core_->FinishMutation(scope, id, static_cast<std::int64_t>(now_ms)));
  }

  std::string RejectMutation(const std::string& scope, const std::string& id, int code,
                             const std::string& message, double now_ms) {
    Code c = IsKnownCode(code) && code != 0 ? static_cast<Code>(code) : Code::kInternal;
    return Sent(core_->RejectMutation(scope, id, Status(c, message), static_cast<std::int64_t>(now_ms)));
  }

  std::string Drain(double now_ms) { return Sent(core_->Drain(static_cast<std::int64_t>(now_ms))); }

  std::string OnClose(const std::string& socket) { return Sent(core_->OnClose(socket)); }

  std::string CommitPresence(const std::string& socket, const std::string& user) {
    return Sent(core_->CommitPresence(socket, user));
  }

  std::string RefusePresence(const std::string& socket, int code, const std::string& message) {
    Code c = IsKnownCode(code) && code != 0 ? static_cast<Code>(code) : Code::kInternal;
    return Sent(core_->RefusePresence(socket, Status(c, message)));
  }

  // Sends the read's frames to `reader` through the bridge; returns nothing.
  void ReadSnapshot(const std::string& reader, const std::string& request) {
    (void)Sent(core_->ReadSnapshot(reader, request));
  }

  val Housekeep(double now_ms) {
    return StatusValue(core_->Housekeep(static_cast<std::int64_t>(now_ms)));
  }

  val State() {
    auto s = core_->State();
    val out = StatusValue(s.ok() ? Status::Ok() : s.status());
    out.set("head", s.ok() ? static_cast<double>(s->head) : 0.0);
    out.set("floor", s.ok() ? static_cast<double>(s->floor) : 0.0);
    out.set("rows", s.ok() ? static_cast<double>(s->rows) : 0.0);
    return out;
  }

  // The stats' JSON with the heap's size (wasmMemoryBytes) added, or
  // {"code","message"} if they could not be read.
  std::string Stats(bool detail) {
    auto stats = core_->StatsJson(detail);
    if (!stats.ok()) {
      return "{\"code\":" + std::to_string(static_cast<int>(stats.status().code())) +
             ",\"message\":" + JsonQuote(stats.status().message()) + "}";
    }
    std::string out = std::move(stats).value();
    out.pop_back();  // its closing brace
    out += ",\"wasmMemoryBytes\":" + std::to_string(__builtin_wasm_memory_size(0) * 65536ull) + "}";
    return out;
  }

  std::string Epoch() const { return core_->epoch(); }
  std::string Limits() const { return LimitsJson(core_->options()); }

 private:
  explicit RawCore(val bridge) : storage_(std::move(bridge)) {}

  // What open returns, without a core yet.
  static val Opened(const Status& s) {
    val out = StatusValue(s);
    out.set("core", val::null());
    out.set("deliveries", val::array());
    return out;
  }

  std::string Sent(const Plan& plan) {
    for (const Delivery& d : plan.deliveries) storage_.Send(d.to, d.frame);
    return Remainder(plan);
  }

  JsStorage storage_;
  std::unique_ptr<Core> core_;
  std::string last_error_;
};

std::string VersionString() { return Version(); }

}  // namespace
}  // namespace seqsync

EMSCRIPTEN_BINDINGS(seqsync_core) {
  using seqsync::RawCore;
  emscripten::class_<RawCore>("RawCore")
      .class_function("open", &RawCore::Open)
      .function("onMessage", &RawCore::OnMessage)
      .function("commitMutation", &RawCore::CommitMutation)
      .function("finishMutation", &RawCore::FinishMutation)
      .function("lastError", &RawCore::LastError)
      .function("rejectMutation", &RawCore::RejectMutation)
      .function("drain", &RawCore::Drain)
      .function("onClose", &RawCore::OnClose)
      .function("readSnapshot", &RawCore::ReadSnapshot)
      .function("commitPresence", &RawCore::CommitPresence)
      .function("refusePresence", &RawCore::RefusePresence)
      .function("housekeep", &RawCore::Housekeep)
      .function("state", &RawCore::State)
      .function("statsJson", &RawCore::Stats)
      .function("epoch", &RawCore::Epoch)
      .function("limitsJson", &RawCore::Limits);
  emscripten::function("version", &seqsync::VersionString);
}
