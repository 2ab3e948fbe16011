#include "bridge_codec.h"

#include <charconv>

#include "json_util.h"

namespace seqsync {
namespace {

// The UTF-16 length of `s`, or -1 if it is not valid UTF-8.
long Utf16Length(std::string_view s) {
  long units = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return -1;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return -1;
    }
    units += n == 4 ? 2 : 1;
    i += n;
  }
  return units;
}

// The byte length of the first `units` UTF-16 units of `s` (UTF-8 as JS
// strings encode: a 4-byte sequence is 2 units), or npos if `s` is shorter.
std::size_t BytesOfUnits(std::string_view s, std::size_t units) {
  std::size_t i = 0;
  while (units > 0) {
    if (i >= s.size()) return std::string_view::npos;
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    const std::size_t u = n == 4 ? 2 : 1;
    if (u > units) return std::string_view::npos;
    units -= u;
    i += n;
  }
  return i <= s.size() ? i : std::string_view::npos;
}

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool done() const { return pos_ >= s_.size(); }

  // Reads up to `end`, which it consumes.
  bool Until(char end, std::string_view* out) {
    std::size_t at = s_.find(end, pos_);
    if (at == std::string_view::npos) return false;
    *out = s_.substr(pos_, at - pos_);
    pos_ = at + 1;
    return true;
  }
  bool Count(char end, std::size_t* n) {
    std::string_view digits;
    if (!Until(end, &digits) || digits.empty()) return false;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *n);
    return ec == std::errc() && p == digits.data() + digits.size();
  }
  bool Value(SqlValue* out) {
    if (done()) return false;
    const char tag = s_[pos_++];
    std::string_view text;
    switch (tag) {
      case 'n': *out = SqlValue::Null(); return true;
      case 'i': {
        std::int64_t v = 0;
        if (!Until(';', &text)) return false;
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || p != text.data() + text.size()) return false;
        *out = SqlValue::Integer(v);
        return true;
      }
      case 'f': {
        // As JS prints a number: JSON's grammar, or Infinity, -Infinity, NaN.
        if (!Until(';', &text)) return false;
        JsonDocument d;
        d.Parse<rapidjson::kParseNanAndInfFlag | rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
        if (d.HasParseError() || !d.IsNumber()) return false;
        *out = SqlValue::Real(d.GetDouble());
        return true;
      }
      case 't': {
        std::size_t units = 0;
        if (!Count(':', &units)) return false;
        std::size_t bytes = BytesOfUnits(s_.substr(pos_), units);
        if (bytes == std::string_view::npos) return false;
        *out = SqlValue::Text(std::string(s_.substr(pos_, bytes)));
        pos_ += bytes;
        return true;
      }
      default: return false;
    }
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace

bool EncodeSqlParams(const std::vector<SqlValue>& params, std::string* out) {
  for (const SqlValue& p : params) {
    switch (p.kind) {
      case SqlValue::Kind::kNull: out->push_back('n'); break;
      case SqlValue::Kind::kInteger:
        out->push_back('i');
        *out += std::to_string(p.integer);
        out->push_back(';');
        break;
      case SqlValue::Kind::kReal: {
        // The shortest text that reads back as the same double; JS reads
        // Infinity and NaN as written here.
        rapidjson::StringBuffer sb;
        rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>, rapidjson::CrtAllocator,
                          rapidjson::kWriteNanAndInfFlag>
            w(sb);
        w.Double(p.real);
        out->push_back('f');
        out->append(sb.GetString(), sb.GetSize());
        out->push_back(';');
        break;
      }
      case SqlValue::Kind::kText: {
        long units = Utf16Length(p.text);
        if (units < 0) return false;
        out->push_back('t');
        *out += std::to_string(units);
        out->push_back(':');
        *out += p.text;
        break;
      }
    }
  }
  return true;
}

Result<std::vector<SqlRow>> DecodeSqlResult(std::string_view result) {
  if (result.empty()) return Status::Internal("the SQL bridge returned nothing");
  const char tag = result[0];
  if (tag == 'E') return Status::Internal(std::string(result.substr(1)));
  std::vector<SqlRow> rows;
  if (tag == 'T') {
    rows.push_back({SqlValue::Text(std::string(result.substr(1)))});
    return rows;
  }
  Reader r(result.substr(1));
  std::size_t n = 0, cols = 0;
  if (tag != 'R' || !r.Count(',', &n) || !r.Count(';', &cols)) return Status::Internal("malformed SQL bridge result");
  // Every cell takes at least one character.
  if (cols != 0 && n > result.size() / cols) return Status::Internal("malformed SQL bridge result");
  rows.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    SqlRow row(cols);
    for (SqlValue& v : row) {
      if (!r.Value(&v)) return Status::Internal("malformed SQL bridge result");
    }
    rows.push_back(std::move(row));
  }
  if (!r.done()) return Status::Internal("malformed SQL bridge result");
  return rows;
}

}  // namespace seqsync
