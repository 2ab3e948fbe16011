#include "presence.h"

#include <algorithm>

#include "fanout.h"
#include "frame_reader.h"
#include "frame_writer.h"

namespace seqsync {
namespace {

// The index of `tab` in `p.tabs`, or p.tabs.size().
std::size_t IndexOf(const SocketPresence& p, std::string_view tab) {
  auto it = std::find_if(p.tabs.begin(), p.tabs.end(), [&](const auto& t) { return t.first == tab; });
  return static_cast<std::size_t>(it - p.tabs.begin());
}

// What one tab costs the socket's attachment: its [tab,state] in Stored().
std::size_t EntryBytes(std::string_view tab, std::string_view state) { return JsonQuote(tab).size() + state.size() + 3; }

}  // namespace

std::vector<std::string> Presence::Watchers(std::string_view except) const {
  std::vector<std::string> to;
  for (const auto& [id, sock] : sockets_->all()) {
    if (sock.presence.watch && id != except) to.push_back(id);
  }
  return to;
}

void Presence::Broadcast(const std::string& entries, std::string_view except, Plan* plan) const {
  std::vector<std::string> to = Watchers(except);
  if (to.empty()) return;
  plan->deliveries.push_back({std::move(to), PresenceFrame(entries, /*you=*/{})});
}

Plan Presence::OnFrame(std::string_view socket_id, Socket* sock, const JsonValue& frame, std::int64_t now_ms) {
  Plan plan;
  SocketPresence& p = sock->presence;
  p.pending.reset();
  const JsonValue* tab_v = Member(frame, "tab");
  // A refusal names the tab as sent, cut to size.
  const std::string_view named =
      tab_v != nullptr && tab_v->IsString() ? View(*tab_v).substr(0, kMaxPresenceTabIdBytes) : std::string_view();
  auto refuse = [&](const Status& why) {
    Reply(&plan, socket_id, PresenceErrorFrame(named, why));
    return std::move(plan);
  };
  if (!p.rate.Take(now_ms, options_->presence_rate_burst, options_->presence_rate_per_second)) {
    return refuse(Status::RateLimited("more than " + std::to_string(options_->presence_rate_burst) +
                                      " presence frames at once or " +
                                      std::to_string(options_->presence_rate_per_second) + " a second on this socket"));
  }
  auto request = ReadPresence(frame);
  if (!request.ok()) return refuse(request.status());

  if (request->watch.has_value()) {
    p.watch = *request->watch;
    if (p.watch) {
      // Everyone's entries, this socket's own included; `you` tells it which are its own.
      std::string entries;
      for (const auto& [id, other] : sockets_->all()) {
        for (const auto& [tab, state] : other.presence.tabs) {
          if (!entries.empty()) entries.push_back(',');
          entries += PresenceEntry(id, tab, other.presence.user, state);
        }
      }
      Reply(&plan, socket_id, PresenceFrame(entries, socket_id));
    }
    Keep(p, &plan);
    return plan;
  }

  const std::string_view tab = request->tab;
  const std::size_t at = IndexOf(p, tab);
  const bool held = at < p.tabs.size();
  if (request->state->IsNull()) {  // a clear: the tab closed
    if (!held) return plan;
    const std::size_t freed = EntryBytes(p.tabs[at].first, p.tabs[at].second);
    p.bytes -= freed;
    bytes_ -= freed;
    std::string removal = PresenceEntry(socket_id, tab, p.user, {});
    p.tabs.erase(p.tabs.begin() + static_cast<std::ptrdiff_t>(at));
    Broadcast(removal, {}, &plan);
    Keep(p, &plan);
    return plan;
  }
  std::string state = ToJson(*request->state);
  const std::size_t old_bytes = held ? EntryBytes(p.tabs[at].first, p.tabs[at].second) : 0;
  const std::size_t new_bytes = EntryBytes(tab, state);
  if (p.bytes - old_bytes + new_bytes > options_->max_presence_bytes_per_socket) {
    return refuse(Status::TooLarge("this socket's presence would hold " +
                                   std::to_string(p.bytes - old_bytes + new_bytes) + " bytes; the limit is " +
                                   std::to_string(options_->max_presence_bytes_per_socket)));
  }
  if (!held && p.tabs.size() >= options_->max_presence_tabs_per_socket) {
    return refuse(Status::TooMany("a socket may hold presence for at most " +
                                  std::to_string(options_->max_presence_tabs_per_socket) + " tabs"));
  }
  if (bytes_ - old_bytes + new_bytes > kMaxPresenceBytesPerObject) {
    return refuse(Status::TooMany("this Durable Object holds " + std::to_string(bytes_) +
                                  " bytes of presence; the limit is " + std::to_string(kMaxPresenceBytesPerObject)));
  }
  plan.presence = PendingPresence{std::string(tab), state};
  p.pending.emplace(std::string(tab), std::move(state));
  return plan;
}

Plan Presence::Commit(std::string_view socket_id, std::string_view user) {
  Plan plan;
  Socket* sock = sockets_->Find(socket_id);
  if (sock == nullptr || !sock->presence.pending) return plan;
  SocketPresence& p = sock->presence;
  auto [tab, state] = std::move(*p.pending);
  p.pending.reset();
  if (user.size() > kMaxPresenceUserBytes) {
    // The shell's presenceUser is the app's: a misconfiguration, logged there.
    Reply(&plan, socket_id,
          PresenceErrorFrame(tab, Status::Internal("presenceUser returned more than " +
                                                   std::to_string(kMaxPresenceUserBytes) + " bytes")));
    return plan;
  }
  p.user.assign(user);
  const std::size_t at = IndexOf(p, tab);
  const std::size_t added = EntryBytes(tab, state);
  std::size_t removed = 0;
  std::string entry = PresenceEntry(socket_id, tab, p.user, state);
  if (at < p.tabs.size()) {
    removed = EntryBytes(p.tabs[at].first, p.tabs[at].second);
    p.tabs[at].second = std::move(state);
  } else {
    p.tabs.emplace_back(std::move(tab), std::move(state));
  }
  p.bytes = p.bytes + added - removed;
  bytes_ = bytes_ + added - removed;
  Broadcast(entry, {}, &plan);
  Keep(p, &plan);
  return plan;
}

Plan Presence::Refuse(std::string_view socket_id, const Status& why) {
  Plan plan;
  Socket* sock = sockets_->Find(socket_id);
  if (sock == nullptr || !sock->presence.pending) return plan;
  Reply(&plan, socket_id, PresenceErrorFrame(sock->presence.pending->first, why));
  sock->presence.pending.reset();
  return plan;
}

void Presence::OnClose(std::string_view socket_id, Plan* plan) {
  Socket* sock = sockets_->Find(socket_id);
  if (sock == nullptr) return;
  SocketPresence& p = sock->presence;
  bytes_ -= p.bytes;
  if (p.tabs.empty()) return;
  std::string removals;
  for (const auto& [tab, state] : p.tabs) {
    if (!removals.empty()) removals.push_back(',');
    removals += PresenceEntry(socket_id, tab, p.user, {});
  }
  p.tabs.clear();
  p.bytes = 0;
  Broadcast(removals, socket_id, plan);
}

std::string Presence::Stored(const SocketPresence& p) {
  std::string out = "{\"user\":" + JsonQuote(p.user) + ",\"watch\":" + (p.watch ? "true" : "false") + ",\"tabs\":[";
  for (std::size_t i = 0; i < p.tabs.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += "[" + JsonQuote(p.tabs[i].first) + "," + p.tabs[i].second + "]";
  }
  return out + "]}";
}

Status Presence::Restore(std::string_view socket_id, std::string_view stored) {
  JsonDocument doc;
  // A state was a member of a frame: it is at most maxJsonDepth deep there.
  SEQSYNC_RETURN_IF_ERROR(ParseBounded(stored, options_->max_json_depth + 2, &doc));
  const JsonValue* user = Member(doc, "user");
  const JsonValue* watch = Member(doc, "watch");
  const JsonValue* tabs = Member(doc, "tabs");
  if (user == nullptr || !user->IsString() || watch == nullptr || !watch->IsBool() || tabs == nullptr ||
      !tabs->IsArray()) {
    return Status::InvalidField("stored presence must be {user, watch, tabs}");
  }
  SocketPresence& p = sockets_->Get(socket_id).presence;
  p.user.assign(View(*user));
  p.watch = watch->GetBool();
  for (const JsonValue& t : tabs->GetArray()) {
    if (!t.IsArray() || t.Size() != 2 || !t[0].IsString()) continue;
    std::string tab(View(t[0]));
    std::string state = ToJson(t[1]);
    // Admitted under the budgets before the wake.
    p.bytes += EntryBytes(tab, state);
    bytes_ += EntryBytes(tab, state);
    p.tabs.emplace_back(std::move(tab), std::move(state));
  }
  return Status::Ok();
}

}  // namespace seqsync
