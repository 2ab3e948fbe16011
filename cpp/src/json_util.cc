// Bounded JSON parsing. RapidJSON's DOM parser has no depth or size limit,
// so the reader drives a handler that counts depth and values and forwards
// every event to the document; returning false past a limit stops the parse
// with kParseErrorTermination, which we report as kTooDeep or kTooLarge.
// The value count matters as much as the depth: each value costs ~16 bytes
// of document on top of the text, so `[0,0,0,…]` is 8x its own size.

#include "json_util.h"

#include <cmath>

namespace seqsync {
namespace {

class DepthLimitedHandler {
 public:
  DepthLimitedHandler(JsonDocument* doc, int max_depth, std::size_t max_values)
      : doc_(doc), max_depth_(max_depth), max_values_(max_values) {}

  bool Null() { return Count() && doc_->Null(); }
  bool Bool(bool b) { return Count() && doc_->Bool(b); }
  bool Int(int i) { return Count() && doc_->Int(i); }
  bool Uint(unsigned u) { return Count() && doc_->Uint(u); }
  bool Int64(int64_t i) { return Count() && doc_->Int64(i); }
  bool Uint64(uint64_t u) { return Count() && doc_->Uint64(u); }
  bool Double(double d) { return Count() && doc_->Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return Count() && doc_->RawNumber(s, n, copy);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    return Count() && doc_->String(s, n, copy);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    return doc_->Key(s, n, copy);
  }
  bool StartObject() { return Count() && Enter() && doc_->StartObject(); }
  bool EndObject(rapidjson::SizeType n) { --depth_; return doc_->EndObject(n); }
  bool StartArray() { return Count() && Enter() && doc_->StartArray(); }
  bool EndArray(rapidjson::SizeType n) { --depth_; return doc_->EndArray(n); }

  bool too_deep() const { return too_deep_; }
  bool too_many() const { return too_many_; }

 private:
  bool Count() {
    if (++values_ > max_values_) {
      too_many_ = true;
      return false;
    }
    return true;
  }

  bool Enter() {
    if (++depth_ > max_depth_) {
      too_deep_ = true;
      return false;
    }
    return true;
  }

  JsonDocument* doc_;
  int max_depth_;
  std::size_t max_values_;
  int depth_ = 0;
  std::size_t values_ = 0;
  bool too_deep_ = false;
  bool too_many_ = false;
};

}  // namespace

Status ParseBounded(std::string_view text, int max_depth, JsonDocument* doc,
                    std::size_t max_values) {
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                              rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseStopWhenDoneFlag;
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
  DepthLimitedHandler handler(doc, max_depth, max_values);
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
  if (handler.too_many()) {
    return Status::TooLarge("JSON holds more than " + std::to_string(max_values) + " values");
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

namespace {

// Strings up to this size go through RapidJSON's writer (its 6x reserve is
// small); longer ones are escaped by AppendEscaped.
constexpr std::size_t kEscapeHereBytes = 1024;

// RapidJSON's escaping: " and \ backslashed; \b \t \n \f \r short; other
// bytes below 0x20 as \u00XX (uppercase hex); everything else as is.
void AppendEscaped(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->push_back('"');
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\t': out->append("\\t"); break;
      case '\n': out->append("\\n"); break;
      case '\f': out->append("\\f"); break;
      case '\r': out->append("\\r"); break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

// A SAX handler that forwards to a JsonWriter, with strings and keys written
// by WriteString, so that writing a parsed document stays near its size.
class StringSafeWriter {
 public:
  explicit StringSafeWriter(JsonWriter* w) : w_(w) {}
  bool Null() { return w_->Null(); }
  bool Bool(bool b) { return w_->Bool(b); }
  bool Int(int i) { return w_->Int(i); }
  bool Uint(unsigned u) { return w_->Uint(u); }
  bool Int64(int64_t i) { return w_->Int64(i); }
  bool Uint64(uint64_t u) { return w_->Uint64(u); }
  bool Double(double d) { return w_->Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) { return w_->RawNumber(s, n, copy); }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    WriteString({s, n}, w_);
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return String(s, n, copy); }
  bool StartObject() { return w_->StartObject(); }
  bool EndObject(rapidjson::SizeType n) { return w_->EndObject(n); }
  bool StartArray() { return w_->StartArray(); }
  bool EndArray(rapidjson::SizeType n) { return w_->EndArray(n); }

 private:
  JsonWriter* w_;
};

}  // namespace

void WriteString(std::string_view s, JsonWriter* w) {
  if (s.size() <= kEscapeHereBytes) {
    w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    return;
  }
  std::string text;
  text.reserve(s.size() + s.size() / 16 + 2);
  AppendEscaped(s, &text);
  // A raw string value: RapidJSON places it as it would a String (a key in
  // an object, a member value, an array element), reserving only its size.
  w->RawValue(text.data(), text.size(), rapidjson::kStringType);
}

void WriteValue(const JsonValue& v, JsonWriter* w) {
  StringSafeWriter safe(w);
  v.Accept(safe);
}

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
  WriteValue(v, &w);
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace seqsync
