// The embind surface of the core: the only file that includes
// <emscripten/bind.h>. One class, RawCore, made only by RawCore.open (there
// is no constructor: a core exists only registered), whose methods take
// whole frames, send the frames they plan through the bridge (one crossing
// per frame, sent as encoded here), and return the rest as one JSON text or
// a number (nothing to .delete() but the core itself). The calls a write
// makes take their texts as bytes in the heap (see Inbox). No method
// throws. The typed wrapper is worker/src/do/core.ts; the declarations are
// cpp/wasm/core.d.mts.

#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string_view>

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
// {"tab","state"},"keepPresence","replayed","closeCode","closeReason","close"}, each
// only if present; "" if nothing is (the common case). The ops and args are JSON values, not strings, so the one
// JSON.parse of this text is the only parse of a mutation in JS.
std::string Remainder(const Plan& plan) {
  if (!plan.mutation && !plan.presence && !plan.keep_presence && plan.close_code == 0 && !plan.replayed) return "";
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
  if (plan.replayed) {
    if (out.size() > 1) out += ",";
    out += "\"replayed\":true";
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
  static val Open(const std::string& options_json, const std::string& registration,
                  const std::string& fresh_epoch, val live_ids, val live_presence) {
    auto options = ParseOptions(options_json);
    if (!options.ok()) {
      return Opened(Status(options.status().code(), "invalid options: " + options.status().message()));
    }
    std::vector<std::string> live;
    const unsigned n = live_ids["length"].as<unsigned>();
    for (unsigned i = 0; i < n; ++i) live.push_back(live_ids[i].as<std::string>());
    // The storage lives in the RawCore, so it outlives the Core it serves.
    std::unique_ptr<RawCore> raw(new RawCore());
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

  // The calls a write makes (and drain, onClose) are the hot ones: they
  // read their texts from the inbox, one after another with the lengths
  // given, send the plan's frames through the bridge in order, and leave
  // the Remainder in the outbox, whose address and length are the two
  // int32s at registers() once they return. So no text crosses as a string
  // argument, which embind copies character by character.

  // The inbox's address, with room for `bytes`. It moves only here.
  int Inbox(int bytes) {
    if (bytes > 0 && inbox_.size() < static_cast<std::size_t>(bytes)) inbox_.resize(static_cast<std::size_t>(bytes));
    return Address(inbox_.data());
  }

  int Registers() { return Address(registers_); }

  void OnMessage(int socket_len, int scope_len, int frame_len, double now_ms) {
    Inputs in(inbox_, {socket_len, scope_len, frame_len});
    Sent(core_->OnMessage(in[0], in[1], in[2], static_cast<std::int64_t>(now_ms)));
  }

  // The seq (>= 0), or minus the code of why not (the message is then
  // lastError()).
  double CommitMutation(int scope_len, int id_len, int result_len, double now_ms) {
    Inputs in(inbox_, {scope_len, id_len, result_len});
    auto seq = core_->CommitMutation(in[0], in[1], in[2], static_cast<std::int64_t>(now_ms));
    if (seq.ok()) return static_cast<double>(*seq);
    last_error_ = seq.status().message();
    return -static_cast<double>(static_cast<int>(seq.status().code()));
  }

  std::string LastError() const { return last_error_; }

  void FinishMutation(int scope_len, int id_len, double now_ms) {
    Inputs in(inbox_, {scope_len, id_len});
    Sent(core_->FinishMutation(in[0], in[1], static_cast<std::int64_t>(now_ms)));
  }

  void RejectMutation(int scope_len, int id_len, int message_len, int code, double now_ms) {
    Inputs in(inbox_, {scope_len, id_len, message_len});
    Code c = IsKnownCode(code) && code != 0 ? static_cast<Code>(code) : Code::kInternal;
    Sent(core_->RejectMutation(in[0], in[1], Status(c, std::string(in[2])), static_cast<std::int64_t>(now_ms)));
  }

  void Drain(double now_ms) { Sent(core_->Drain(static_cast<std::int64_t>(now_ms))); }

  void OnClose(int socket_len) {
    Inputs in(inbox_, {socket_len});
    Sent(core_->OnClose(in[0]));
  }

  std::string CommitPresence(const std::string& socket, const std::string& user) {
    Sent(core_->CommitPresence(socket, user));
    return outbox_;
  }

  std::string RefusePresence(const std::string& socket, int code, const std::string& message) {
    Code c = IsKnownCode(code) && code != 0 ? static_cast<Code>(code) : Code::kInternal;
    Sent(core_->RefusePresence(socket, Status(c, message)));
    return outbox_;
  }

  // Sends the read's frames to `reader` through the bridge; returns nothing.
  void ReadSnapshot(const std::string& reader, const std::string& request) {
    Sent(core_->ReadSnapshot(reader, request));
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
  RawCore() = default;

  static int Address(const void* p) { return static_cast<int>(reinterpret_cast<std::uintptr_t>(p)); }

  // The texts of one hot call, views of the inbox in the order written.
  class Inputs {
   public:
    Inputs(const std::string& inbox, std::initializer_list<int> lengths) {
      std::size_t at = 0, i = 0;
      if (lengths.size() > views_.size()) __builtin_trap();
      for (int n : lengths) {
        // Lengths come from the shell, which wrote them: one out of range
        // is a shell bug, and a trap (the shell resets the object) is the
        // only safe answer.
        if (n < 0 || static_cast<std::size_t>(n) > inbox.size() - at) __builtin_trap();
        views_[i++] = std::string_view(inbox.data() + at, static_cast<std::size_t>(n));
        at += static_cast<std::size_t>(n);
      }
    }
    std::string_view operator[](std::size_t i) const { return views_[i]; }

   private:
    std::array<std::string_view, 3> views_;
  };

  // What open returns, without a core yet.
  static val Opened(const Status& s) {
    val out = StatusValue(s);
    out.set("core", val::null());
    out.set("deliveries", val::array());
    return out;
  }

  // Sends the plan's frames, and leaves its Remainder in the outbox.
  void Sent(const Plan& plan) {
    for (const Delivery& d : plan.deliveries) storage_.Send(d.to, d.frame);
    outbox_ = Remainder(plan);
    registers_[0] = Address(outbox_.data());
    registers_[1] = static_cast<std::int32_t>(outbox_.size());
  }

  JsStorage storage_;
  std::unique_ptr<Core> core_;
  std::string last_error_;
  std::string inbox_;
  std::string outbox_;
  std::int32_t registers_[2] = {0, 0};
};

std::string VersionString() { return Version(); }

}  // namespace
}  // namespace seqsync

EMSCRIPTEN_BINDINGS(seqsync_core) {
  using seqsync::RawCore;
  emscripten::class_<RawCore>("RawCore")
      .class_function("open", &RawCore::Open)
      .function("inbox", &RawCore::Inbox)
      .function("registers", &RawCore::Registers)
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
