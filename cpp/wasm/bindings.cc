// The embind surface of the core: the only file that includes
// <emscripten/bind.h>. One class, RawCore, whose methods take whole frames
// and return plain JS objects (nothing to .delete() but the core itself).
// Errors cross as {code, message}; no method throws. The typed wrapper is
// worker/src/do/core.ts; the declarations are cpp/wasm/core.d.mts.

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
  RawCore(val bridge, const std::string& options_json) : storage_(std::move(bridge)) {
    auto options = ParseOptions(options_json);
    status_ = options.ok() ? Status::Ok() : options.status();
    core_ = std::make_unique<Core>(&storage_, options.ok() ? *options : Options());
  }

  val status() const { return StatusValue(status_); }

  val Register(const std::string& registration, const std::string& fresh_epoch) {
    return StatusValue(core_->Register(registration, fresh_epoch));
  }

  val RestoreSockets(val ids) {
    std::vector<std::string> live;
    const unsigned n = ids["length"].as<unsigned>();
    for (unsigned i = 0; i < n; ++i) live.push_back(ids[i].as<std::string>());
    Plan refusals;
    val out = StatusValue(core_->RestoreSockets(live, &refusals));
    out.set("deliveries", PlanValue(std::move(refusals))["deliveries"]);
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
  JsStorage storage_;
  Status status_;
  std::unique_ptr<Core> core_;
};

std::string VersionString() { return Version(); }

}  // namespace
}  // namespace seqsync

EMSCRIPTEN_BINDINGS(seqsync_core) {
  using seqsync::RawCore;
  emscripten::class_<RawCore>("RawCore")
      .constructor<emscripten::val, const std::string&>()
      .function("status", &RawCore::status)
      .function("register", &RawCore::Register)
      .function("restoreSockets", &RawCore::RestoreSockets)
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
