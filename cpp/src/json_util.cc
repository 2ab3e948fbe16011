// Bounded JSON parsing. RapidJSON's DOM parser has no depth limit, so the
// reader drives a handler that counts depth and forwards every event to the
// document; returning false past the limit stops the parse with
// kParseErrorTermination, which we report as kTooDeep.

#include "json_util.h"

#include <cmath>

namespace seqsync {
namespace {

class DepthLimitedHandler {
 public:
  DepthLimitedHandler(JsonDocument* doc, int max_depth)
      : doc_(doc), max_depth_(max_depth) {}

  bool Null() { return doc_->Null(); }
  bool Bool(bool b) { return doc_->Bool(b); }
  bool Int(int i) { return doc_->Int(i); }
  bool Uint(unsigned u) { return doc_->Uint(u); }
  bool Int64(int64_t i) { return doc_->Int64(i); }
  bool Uint64(uint64_t u) { return doc_->Uint64(u); }
  bool Double(double d) { return doc_->Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return doc_->RawNumber(s, n, copy);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    return doc_->String(s, n, copy);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    return doc_->Key(s, n, copy);
  }
  bool StartObject() { return Enter() && doc_->StartObject(); }
  bool EndObject(rapidjson::SizeType n) { --depth_; return doc_->EndObject(n); }
  bool StartArray() { return Enter() && doc_->StartArray(); }
  bool EndArray(rapidjson::SizeType n) { --depth_; return doc_->EndArray(n); }

  bool too_deep() const { return too_deep_; }

 private:
  bool Enter() {
    if (++depth_ > max_depth_) {
      too_deep_ = true;
      return false;
    }
    return true;
  }

  JsonDocument* doc_;
  int max_depth_;
  int depth_ = 0;
  bool too_deep_ = false;
};

}  // namespace

Status ParseBounded(std::string_view text, int max_depth, JsonDocument* doc) {
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                              rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseStopWhenDoneFlag;
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
  DepthLimitedHandler handler(doc, max_depth);
  rapidjson::ParseResult parsed;
  auto generate = [&](JsonDocument&) {
    rapidjson::Reader reader;
    parsed = reader.Parse<kFlags>(in, handler);
    return static_cast<bool>(parsed);
  };
  doc->Populate(generate);
  if (handler.too_deep()) {
    return Status::TooDeep("JSON nesting exceeds " + std::to_string(max_depth) +
                           " levels");
  }
  if (!parsed) {
    return Status::MalformedFrame(
        std::string("invalid JSON: ") + rapidjson::GetParseError_En(parsed.Code()) +
        " at offset " + std::to_string(parsed.Offset()));
  }
  // kParseStopWhenDoneFlag lets us see trailing garbage ourselves.
  size_t end = in.Tell();
  while (end < text.size() && (text[end] == ' ' || text[end] == '\n' ||
                               text[end] == '\r' || text[end] == '\t')) {
    ++end;
  }
  if (end != text.size()) {
    return Status::MalformedFrame("invalid JSON: trailing characters at offset " +
                                  std::to_string(end));
  }
  return Status::Ok();
}

void WriteValue(const JsonValue& v, JsonWriter* w) { v.Accept(*w); }

const JsonValue* Member(const JsonValue& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

bool IsSafeUnsigned(const JsonValue& v) {
  if (v.IsUint64()) return v.GetUint64() <= ((uint64_t{1} << 53) - 1);
  if (v.IsDouble()) {
    double d = v.GetDouble();
    return d >= 0 && d <= 9007199254740991.0 && std::floor(d) == d;
  }
  return false;
}

std::string ToJson(const JsonValue& v) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace seqsync
