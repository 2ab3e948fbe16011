// Reading inbound frames.
//
// Invariant: nothing a client sends reaches the rest of the core unchecked.
// Every frame is parsed under the byte, depth and value bounds before any
// field is read (so a hostile frame costs at most a bounded parse), every
// field is type-checked before it is used, and every name that will be
// spliced into SQL is checked against the registered schema here. What the
// rest of the core gets is a typed request, or the typed error the client
// is owed (docs/protocol.md §11).

#include "frame_reader.h"

#include <set>

#include "frame_writer.h"
#include "windows.h"

namespace seqsync {

Status ReadFrame(std::string_view text, const Options& options, JsonDocument* doc, FrameType* type) {
  // Before parsing: a frame costs the heap a few times its size.
  if (text.size() > options.max_frame_bytes) {
    return Status::TooLarge("frame is " + std::to_string(text.size()) + " bytes; the limit is " +
                            std::to_string(options.max_frame_bytes));
  }
  SEQSYNC_RETURN_IF_ERROR(ParseBounded(text, options.max_json_depth, doc, options.max_json_values));
  const JsonValue* t = Member(*doc, "t");
  if (!doc->IsObject() || t == nullptr || !t->IsString()) {
    return Status::MalformedFrame("a frame must be a JSON object with a string t");
  }
  std::string_view name = View(*t);
  if (name == "hello") *type = FrameType::kHello;
  else if (name == "sub") *type = FrameType::kSub;
  else if (name == "unsub") *type = FrameType::kUnsub;
  else if (name == "mut") *type = FrameType::kMut;
  else if (name == "call") *type = FrameType::kCall;
  else if (name == "recv") *type = FrameType::kRecv;
  else if (name == "presence") *type = FrameType::kPresence;
  else if (name == "page") *type = FrameType::kPage;
  else return Status::UnknownFrame("unknown frame type '" + std::string(name.substr(0, 64)) + "'");
  return Status::Ok();
}

Status TooManySubs(const Options& options) {
  return Status::TooMany("a socket may hold at most " + std::to_string(options.max_subs_per_socket) +
                         " subscriptions");
}

Result<HelloRequest> ReadHello(const JsonValue& frame, const Options& options) {
  const JsonValue* v = Member(frame, "v");
  if (v == nullptr || !v->IsInt() || v->GetInt() != kProtocolVersion) {
    return Status::VersionMismatch("this server speaks seqsync protocol " + std::to_string(kProtocolVersion) +
                                   "; upgrade the client");
  }
  const JsonValue* epoch = Member(frame, "epoch");
  const JsonValue* since = Member(frame, "since");
  const JsonValue* subs = Member(frame, "subs");
  const JsonValue* inline_acks = Member(frame, "inlineAcks");
  const JsonValue* compact_changes = Member(frame, "compactChanges");
  if ((epoch != nullptr && !epoch->IsString() && !epoch->IsNull()) ||
      (since != nullptr && !since->IsNull() && !IsSafeUnsigned(*since)) ||
      (subs != nullptr && !subs->IsArray() && !subs->IsNull()) || (inline_acks != nullptr && !inline_acks->IsBool()) ||
      (compact_changes != nullptr && !compact_changes->IsBool())) {
    return Status::InvalidField(
        "hello: epoch must be a string, since a non-negative integer, subs an array, inlineAcks and compactChanges "
        "booleans");
  }
  HelloRequest hello;
  hello.inline_acks = inline_acks != nullptr && inline_acks->GetBool();
  hello.compact_changes = compact_changes != nullptr && compact_changes->GetBool();
  if (epoch != nullptr && epoch->IsString()) hello.epoch = View(*epoch);
  if (since != nullptr && !since->IsNull()) {
    hello.since = since->IsUint64() ? since->GetUint64() : static_cast<Seq>(since->GetDouble());
  }
  if (subs == nullptr || !subs->IsArray()) return hello;
  if (subs->Size() > options.max_subs_per_socket) {
    return Status::TooMany("hello has " + std::to_string(subs->Size()) + " subs; " +
                           TooManySubs(options).message());
  }
  std::set<std::string_view> ids;
  for (const JsonValue& body : subs->GetArray()) {
    const JsonValue* id = Member(body, "id");
    if (id != nullptr && id->IsString() && !ids.insert(View(*id)).second) {
      return Status::InvalidField("hello lists subscription '" + std::string(View(*id)).substr(0, 128) + "' twice");
    }
    const JsonValue* resume = Member(body, "resume");
    hello.subs.push_back({&body, resume != nullptr && resume->IsBool() && resume->GetBool()});
  }
  return hello;
}

std::string_view SubIdOf(const JsonValue& body) {
  const JsonValue* id = Member(body, "id");
  return id != nullptr && id->IsString() ? View(*id) : std::string_view();
}

std::string StoredBody(const Subscription& s) {
  return "{\"id\":" + JsonQuote(s.id) + ",\"c\":" + JsonQuote(s.collection) + ",\"where\":" + s.where_json + "}";
}

Result<Subscription> ReadSub(const JsonValue& body, const Options& options, Storage* storage, Schema* schema) {
  const JsonValue* id = Member(body, "id");
  if (id == nullptr || !id->IsString() || id->GetStringLength() == 0) {
    return Status::InvalidField("sub needs a non-empty string id");
  }
  Subscription s;
  s.id.assign(View(*id));
  if (s.id.size() > options.max_id_bytes) {
    return Status::TooLarge("sub id is longer than " + std::to_string(options.max_id_bytes) + " bytes");
  }
  const JsonValue* c = Member(body, "c");
  if (c == nullptr || !c->IsString()) return Status::InvalidField("sub needs a string collection c");
  s.collection.assign(View(*c));
  const Collection* coll = schema->Find(s.collection);
  if (coll == nullptr) {
    return Status::UnknownCollection("collection '" + s.collection.substr(0, 128) + "' is not registered");
  }
  const JsonValue* where = Member(body, "where");
  s.where_json = "null";
  if (where != nullptr && !where->IsNull()) {
    PredicateLimits limits{options.max_predicate_depth, options.max_predicate_nodes,
                           options.max_predicate_literal_bytes, options.max_like_pattern_bytes,
                           options.max_like_wildcards};
    auto p = Predicate::Parse(*where, coll->columns, limits);
    if (!p.ok() && p.status().code() == Code::kUnknownColumn) {  // maybe an ALTER TABLE ADD COLUMN since
      SEQSYNC_RETURN_IF_ERROR(schema->RefreshIfChanged(storage));
      coll = schema->Find(s.collection);
      p = Predicate::Parse(*where, coll->columns, limits);
    }
    if (!p.ok()) return p.status();
    s.predicate = std::move(p).value();
    s.where_json = ToJson(*where);
  }
  Status windowed = ParseWindow(body, *schema->Find(s.collection), &s.window);
  if (windowed.code() == Code::kUnknownColumn) {  // likewise
    SEQSYNC_RETURN_IF_ERROR(schema->RefreshIfChanged(storage));
    windowed = ParseWindow(body, *schema->Find(s.collection), &s.window);
  }
  SEQSYNC_RETURN_IF_ERROR(windowed);
  s.body = StoredBody(s);
  return s;
}

Status ParseStoredBody(std::string_view body, const Options& options, JsonDocument* doc) {
  // Two levels more than a frame: a resolved window wraps the client's
  // where in one `and` (a func object and its args array).
  return ParseBounded(body, options.max_json_depth + 2, doc);
}

Result<std::string_view> ReadUnsub(const JsonValue& frame) {
  const JsonValue* id = Member(frame, "id");
  if (id == nullptr || !id->IsString()) return Status::InvalidField("unsub needs a string id");
  return View(*id);
}

Result<std::uint64_t> ReadRecv(const JsonValue& frame) {
  const JsonValue* bytes = Member(frame, "bytes");
  if (bytes == nullptr || !IsSafeUnsigned(*bytes)) {
    return Status::InvalidField("recv needs bytes, a non-negative integer");
  }
  return bytes->IsUint64() ? bytes->GetUint64() : static_cast<std::uint64_t>(bytes->GetDouble());
}

Result<PresenceRequest> ReadPresence(const JsonValue& frame) {
  const JsonValue* watch = Member(frame, "watch");
  const JsonValue* tab = Member(frame, "tab");
  const JsonValue* state = Member(frame, "state");
  PresenceRequest request;
  if (watch != nullptr) {
    if (!watch->IsBool() || tab != nullptr || state != nullptr) {
      return Status::InvalidField("presence: watch is a boolean, sent without tab and state");
    }
    request.watch = watch->GetBool();
    return request;
  }
  if (tab == nullptr || !tab->IsString() || tab->GetStringLength() == 0 || state == nullptr) {
    return Status::InvalidField("presence needs watch, or a non-empty string tab and a state (null clears it)");
  }
  if (tab->GetStringLength() > kMaxPresenceTabIdBytes) {
    return Status::TooLarge("presence tab is longer than " + std::to_string(kMaxPresenceTabIdBytes) + " bytes");
  }
  request.tab = View(*tab);
  request.state = state;
  return request;
}

Result<std::string> ReadMutationId(const JsonValue& frame, bool is_call, const Options& options) {
  const JsonValue* id = Member(frame, "id");
  if (id == nullptr || !id->IsString() || id->GetStringLength() == 0) {
    return Status::InvalidField(std::string(is_call ? "call" : "mut") + " needs a non-empty string id");
  }
  if (id->GetStringLength() > options.max_id_bytes) {
    return Status::TooLarge("mutation id is longer than " + std::to_string(options.max_id_bytes) + " bytes");
  }
  return std::string(View(*id));
}

}  // namespace seqsync
