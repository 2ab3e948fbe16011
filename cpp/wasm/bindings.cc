// The embind surface of the core: the only file that includes
// <emscripten/bind.h>. One class, RawCore, made only by RawCore.open (there
// is no constructor: a core exists only registered), whose methods take
// whole frames and return plain JS objects (nothing to .delete() but the
// core itself). Errors cross as {code, message}; no method throws. The typed
// wrapper is worker/src/do/core.ts; the declarations are cpp/wasm/core.d.mts.

#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <memory>

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

val PlanValue(Plan plan) {
  val deliveries = val::array();
  for (Delivery& d : plan.deliveries) {
    // The recipients cross as one string (ids one per line), not one call
    // per socket: a broadcast to 1,000 sockets is one crossing, not 1,000.
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
  val out = val::object();
  out.set("deliveries", deliveries);
  if (plan.mutation) {
    val m = val::object();
    m.set("id", plan.mutation->id);
    m.set("ops", plan.mutation->ops_json);
    m.set("command", plan.mutation->command);
    m.set("args", plan.mutation->args_json);
    out.set("mutation", m);
  } else {
    out.set("mutation", val::null());
  }
  out.set("closeCode", plan.close_code);
  out.set("closeReason", plan.close_reason);
  val close = val::array();
  for (const std::string& id : plan.close) close.call<void>("push", val(id));
  out.set("close", close);
  return out;
}

class RawCore {
 public:
  // {code, message, core, deliveries}: on success `core` is a new RawCore,
  // owned by the caller (.delete() it), and `deliveries` the sub-errors of
  // the stored subscriptions the registration no longer allows; otherwise
  // `core` is null and code/message say why (options first, then the
  // registration and the restore).
  static val Open(val bridge, const std::string& options_json, const std::string& registration,
                  const std::string& fresh_epoch, val live_ids) {
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
    val out = Opened(Status::Ok());
    out.set("deliveries", PlanValue(std::move(refusals))["deliveries"]);
    out.set("core", val(std::move(raw)));  // JS owns it from here
    return out;
  }

  val OnMessage(const std::string& socket, const std::string& scope, const std::string& frame,
                double now_ms) {
    return PlanValue(core_->OnMessage(socket, scope, frame, static_cast<std::int64_t>(now_ms)));
  }

  val CommitMutation(const std::string& scope, const std::string& id, const std::string& result,
                     double now_ms) {
    auto seq = core_->CommitMutation(scope, id, result, static_cast<std::int64_t>(now_ms));
    val out = StatusValue(seq.ok() ? Status::Ok() : seq.status());
    out.set("seq", seq.ok() ? static_cast<double>(*seq) : 0.0);
    return out;
  }

  val FinishMutation(const std::string& scope, const std::string& id, double now_ms) {
    return PlanValue(core_->FinishMutation(scope, id, static_cast<std::int64_t>(now_ms)));
  }

  val RejectMutation(const std::string& scope, const std::string& id, int code,
                     const std::string& message, double now_ms) {
    Code c = IsKnownCode(code) && code != 0 ? static_cast<Code>(code) : Code::kInternal;
    return PlanValue(core_->RejectMutation(scope, id, Status(c, message),
                                           static_cast<std::int64_t>(now_ms)));
  }

  val Drain(double now_ms) { return PlanValue(core_->Drain(static_cast<std::int64_t>(now_ms))); }

  void OnClose(const std::string& socket) { core_->OnClose(socket); }

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

  JsStorage storage_;
  std::unique_ptr<Core> core_;
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
      .function("rejectMutation", &RawCore::RejectMutation)
      .function("drain", &RawCore::Drain)
      .function("onClose", &RawCore::OnClose)
      .function("housekeep", &RawCore::Housekeep)
      .function("state", &RawCore::State)
      .function("epoch", &RawCore::Epoch)
      .function("limitsJson", &RawCore::Limits);
  emscripten::function("version", &seqsync::VersionString);
}
