#include "frame_writer.h"

#include "json_util.h"

namespace seqsync {

std::string JsonQuote(std::string_view s) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  WriteString(s, &w);
  return std::string(sb.GetString(), sb.GetSize());
}

std::string WelcomeFrame(std::string_view epoch, Seq seq, std::string_view limits_json) {
  return "{\"t\":\"welcome\",\"v\":" + std::to_string(kProtocolVersion) +
         ",\"epoch\":" + JsonQuote(epoch) + ",\"seq\":" + std::to_string(seq) +
         ",\"limits\":" + std::string(limits_json) + "}";
}

std::string SyncedFrame(Seq seq) {
  return "{\"t\":\"synced\",\"seq\":" + std::to_string(seq) + "}";
}

std::string AckFrame(std::string_view id, Seq seq, std::string_view result_json) {
  std::string f = AckFramePrefix(id);
  f += std::to_string(seq);
  f += AckFrameSuffix(result_json);
  return f;
}

std::string AckFramePrefix(std::string_view id) { return "{\"t\":\"ack\",\"id\":" + JsonQuote(id) + ",\"seq\":"; }

std::string AckFrameSuffix(std::string_view result_json) {
  if (result_json.empty()) return "}";
  std::string f;
  f.reserve(result_json.size() + 12);
  f += ",\"result\":";
  f += result_json;
  f += "}";
  return f;
}

namespace {
// An INTERNAL status carries text from SQLite or the runtime (table names,
// statements, limits): the client gets a fixed sentence, and the shell's SQL
// bridge has already logged the detail in the Durable Object.
constexpr char kInternalMessage[] = "internal error; the Durable Object logged the detail";

std::string ErrorFields(const Status& why) {
  const std::string& message = why.code() == Code::kInternal ? kInternalMessage : why.message();
  return "\"code\":" + std::to_string(static_cast<int>(why.code())) +
         ",\"error\":\"" + CodeName(why.code()) + "\",\"message\":" + JsonQuote(message) + "}";
}
}  // namespace

std::string RejectFrame(std::string_view id, const Status& why) {
  return "{\"t\":\"reject\",\"id\":" + JsonQuote(id) + "," + ErrorFields(why);
}

std::string SubErrorFrame(std::string_view sub, const Status& why) {
  return "{\"t\":\"sub-error\",\"sub\":" + JsonQuote(sub) + "," + ErrorFields(why);
}

std::string PageErrorFrame(std::string_view id, const Status& why) {
  return "{\"t\":\"page-error\",\"id\":" + JsonQuote(id) + "," + ErrorFields(why);
}

std::string ErrorFrame(const Status& why) { return "{\"t\":\"error\"," + ErrorFields(why); }

std::string PresenceEntry(std::string_view socket, std::string_view tab, std::string_view user,
                          std::string_view state_json) {
  std::string out = "{\"socket\":" + JsonQuote(socket) + ",\"tab\":" + JsonQuote(tab) + ",\"user\":" + JsonQuote(user);
  if (!state_json.empty()) {
    out += ",\"state\":";
    out += state_json;
  }
  return out + "}";
}

std::string PresenceFrame(std::string_view entries, std::string_view you) {
  std::string out = you.empty() ? "{\"t\":\"presence\",\"entries\":["
                                : "{\"t\":\"presence\",\"all\":true,\"you\":" + JsonQuote(you) + ",\"entries\":[";
  out.reserve(out.size() + entries.size() + 2);
  out += entries;
  return out + "]}";
}

std::string PresenceErrorFrame(std::string_view tab, const Status& why) {
  if (tab.empty()) return "{\"t\":\"presence-error\"," + ErrorFields(why);
  return "{\"t\":\"presence-error\",\"tab\":" + JsonQuote(tab) + "," + ErrorFields(why);
}

ChunkedFrames::ChunkedFrames(std::string head, std::size_t chunk_bytes)
    : head_(std::move(head)), chunk_bytes_(chunk_bytes) {}

void ChunkedFrames::Add(std::string_view element) {
  if (!current_.empty() && current_.size() + element.size() > chunk_bytes_) {
    bodies_.push_back(std::move(current_));
    current_.clear();
  }
  if (!current_.empty()) current_ += ',';
  current_ += element;
}

void ChunkedFrames::AddChunk(std::string_view elements) {
  if (elements.empty()) return;
  if (!current_.empty()) {
    bodies_.push_back(std::move(current_));
    current_.clear();
  }
  bodies_.emplace_back(elements);
}

void ChunkedFrames::TakeReady(std::vector<std::string>* out) {
  // The last completed body stays while nothing follows it: it may yet be
  // the frame that ends the unit.
  std::size_t ready = current_.empty() && !bodies_.empty() ? bodies_.size() - 1 : bodies_.size();
  for (std::size_t i = 0; i < ready; ++i) {
    std::string f = head_;
    f += bodies_[i];
    f += "],\"more\":true}";
    out->push_back(std::move(f));
  }
  bodies_.erase(bodies_.begin(), bodies_.begin() + static_cast<std::ptrdiff_t>(ready));
  taken_ += ready;
}

void ChunkedFrames::Finish(bool ends_unit, bool emit_if_empty, std::vector<std::string>* out,
                           std::string_view last_fields) {
  if (!current_.empty()) {
    bodies_.push_back(std::move(current_));
    current_.clear();
  }
  if (bodies_.empty() && taken_ == 0 && emit_if_empty) bodies_.emplace_back();
  for (size_t i = 0; i < bodies_.size(); ++i) {
    bool last = i + 1 == bodies_.size();
    std::string f = head_;
    f += bodies_[i];
    f += ']';
    if (last) f += last_fields;
    f += (last && ends_unit) ? "}" : ",\"more\":true}";
    out->push_back(std::move(f));
  }
  bodies_.clear();
}

}  // namespace seqsync
