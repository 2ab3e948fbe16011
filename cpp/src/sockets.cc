// Sockets: what the core holds per socket, and the budgets on it.
//
// Invariant: every subscription held in memory is stored in _sync_subs (it
// is stored first, and held only if that succeeded), and the byte budgets
// count exactly the bodies held. So a wake, which rebuilds the table from
// _sync_subs alone (Restore), serves the same subscriptions, admitted under
// the same budgets; and what a closed socket held is released at once in
// memory and swept from SQLite at the next wake if its rows outlived it.

#include "sockets.h"

#include <algorithm>

#include "fanout.h"
#include "frame_reader.h"
#include "json_util.h"

namespace seqsync {

bool TokenBucket::Take(std::int64_t now_ms, std::size_t burst_count, std::size_t per_second) {
  const double burst = static_cast<double>(burst_count);
  if (tokens < 0) {
    tokens = burst;
  } else if (now_ms > at_ms) {
    double refill = static_cast<double>(now_ms - at_ms) / 1000.0 * static_cast<double>(per_second);
    tokens = std::min(burst, tokens + refill);
  }
  at_ms = std::max(at_ms, now_ms);
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

bool Sockets::TakeSubToken(Socket* sock, std::int64_t now_ms) {
  return sock->sub_rate.Take(now_ms, options_->sub_rate_burst, options_->sub_rate_per_second);
}

Status Sockets::RateLimited() const {
  return Status::RateLimited("more than " + std::to_string(options_->sub_rate_burst) + " sub frames at once or " +
                             std::to_string(options_->sub_rate_per_second) + " a second on this socket");
}

bool Sockets::HasRoomFor(const Socket& sock, std::string_view id) const {
  return sock.subs.size() < options_->max_subs_per_socket ||
         std::any_of(sock.subs.begin(), sock.subs.end(), [&](const Subscription& x) { return x.id == id; });
}

void Sockets::Account(Socket* sock, std::size_t added, std::size_t removed) {
  sock->sub_bytes = sock->sub_bytes + added - removed;
  sub_bytes_ = sub_bytes_ + added - removed;
}

Status Sockets::AddSub(std::string_view socket_id, Socket* sock, Subscription s) {
  auto it = std::find_if(sock->subs.begin(), sock->subs.end(), [&](const Subscription& x) { return x.id == s.id; });
  if (it == sock->subs.end() && sock->subs.size() >= options_->max_subs_per_socket) return TooManySubs(*options_);
  std::size_t replaced = it == sock->subs.end() ? 0 : it->body.size();
  if (sock->sub_bytes - replaced + s.body.size() > options_->max_sub_bytes_per_socket) {
    return Status::TooLarge("this socket's subscriptions would hold more than " +
                            std::to_string(options_->max_sub_bytes_per_socket) + " bytes of where");
  }
  if (sub_bytes_ - replaced + s.body.size() > kMaxSubBytesPerObject) {
    return Status::TooMany("this Durable Object holds " + std::to_string(sub_bytes_) +
                           " bytes of subscriptions; the limit is " + std::to_string(kMaxSubBytesPerObject));
  }
  auto stored = storage_->Exec("INSERT OR REPLACE INTO _sync_subs(socket,sub,body) VALUES(?1,?2,?3)",
                              {SqlValue::Text(std::string(socket_id)), SqlValue::Text(s.id), SqlValue::Text(s.body)});
  if (!stored.ok()) return stored.status();
  Account(sock, s.body.size(), replaced);
  if (it != sock->subs.end()) *it = std::move(s);
  else sock->subs.push_back(std::move(s));
  return Status::Ok();
}

void Sockets::RemoveSub(std::string_view socket_id, Socket* sock, std::string_view id) {
  auto it = std::find_if(sock->subs.begin(), sock->subs.end(), [&](const Subscription& s) { return s.id == id; });
  if (it == sock->subs.end()) return;
  Account(sock, 0, it->body.size());
  sock->subs.erase(it);
  auto r = storage_->Exec("DELETE FROM _sync_subs WHERE socket=?1 AND sub=?2",
                         {SqlValue::Text(std::string(socket_id)), SqlValue::Text(std::string(id))});
  (void)r;  // an orphan row is swept on the next wake
}

void Sockets::Close(std::string_view socket_id) {
  auto it = sockets_.find(socket_id);
  if (it != sockets_.end()) {
    sub_bytes_ -= it->second.sub_bytes;
    sockets_.erase(it);
  }
  SqlValue id = SqlValue::Text(std::string(socket_id));
  auto a = storage_->Exec("DELETE FROM _sync_subs WHERE socket=?1", {id});
  auto b = storage_->Exec("DELETE FROM _sync_sockets WHERE socket=?1", {id});
  (void)a;
  (void)b;  // orphans are swept on the next wake
}

Status Sockets::Restore(const std::vector<std::string>& live, Schema* schema, Plan* refusals) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartArray();
  for (const std::string& id : live) WriteString(id, &w);
  w.EndArray();
  SqlValue ids = SqlValue::Text(std::string(sb.GetString(), sb.GetSize()));
  // One read: how many rows belong to sockets that closed while we slept,
  // and the stored sockets and subscriptions.
  auto stored = storage_->Exec(
      "SELECT (SELECT count(*) FROM _sync_subs WHERE socket NOT IN (SELECT value FROM json_each(?1))) +"
      " (SELECT count(*) FROM _sync_sockets WHERE socket NOT IN (SELECT value FROM json_each(?1))),"
      " (SELECT json_group_array(socket) FROM _sync_sockets WHERE socket IN (SELECT value FROM json_each(?1))),"
      " (SELECT json_group_array(json_array(socket, body)) FROM _sync_subs"
      "  WHERE socket IN (SELECT value FROM json_each(?1)))",
      {ids});
  if (!stored.ok()) return stored.status();
  if (stored->size() != 1 || (*stored)[0].size() != 3) return Status::Internal("unexpected stored sockets shape");
  // Forget the closed ones. Only then is a wake a write.
  if ((*stored)[0][0].AsInteger() > 0) {
    auto del_subs = storage_->Exec("DELETE FROM _sync_subs WHERE socket NOT IN (SELECT value FROM json_each(?1))", {ids});
    if (!del_subs.ok()) return del_subs.status();
    auto del_socks = storage_->Exec("DELETE FROM _sync_sockets WHERE socket NOT IN (SELECT value FROM json_each(?1))", {ids});
    if (!del_socks.ok()) return del_socks.status();
  }
  JsonDocument sdoc, bdoc;
  SEQSYNC_RETURN_IF_ERROR(ParseBounded((*stored)[0][1].text, 4, &sdoc));
  SEQSYNC_RETURN_IF_ERROR(ParseBounded((*stored)[0][2].text, kCeilingMaxJsonDepth, &bdoc));
  for (const JsonValue& id : sdoc.GetArray()) {
    if (id.IsString()) sockets_[std::string(View(id))].hello = true;
  }
  for (const JsonValue& e : bdoc.GetArray()) {
    if (!e.IsArray() || e.Size() != 2 || !e[0].IsString() || !e[1].IsString()) continue;
    std::string socket(View(e[0]));
    JsonDocument body;
    if (!ParseStoredBody(View(e[1]), *options_, &body).ok()) {
      // Unreadable under today's limits: forget it rather than keep a row no wake can use.
      auto r = storage_->Exec("DELETE FROM _sync_subs WHERE socket=?1 AND body=?2",
                             {SqlValue::Text(socket), SqlValue::Text(std::string(View(e[1])))});
      (void)r;
      continue;
    }
    auto sub = ReadSub(body, *options_, storage_, schema);
    if (!sub.ok()) {
      // The collection or a column went away since: forget the subscription
      // and tell its socket why, so the client does not wait on it forever.
      const JsonValue* sid = Member(body, "id");
      if (sid != nullptr && sid->IsString()) {
        auto r = storage_->Exec("DELETE FROM _sync_subs WHERE socket=?1 AND sub=?2",
                               {SqlValue::Text(socket), SqlValue::Text(std::string(View(*sid)))});
        (void)r;
        if (refusals != nullptr) ReplySubError(refusals, socket, View(*sid), sub.status());
      }
      continue;
    }
    Socket& restored = sockets_[socket];
    Account(&restored, sub->body.size(), 0);  // admitted under the budgets before the wake
    restored.subs.push_back(std::move(sub).value());
  }
  return Status::Ok();
}

}  // namespace seqsync
