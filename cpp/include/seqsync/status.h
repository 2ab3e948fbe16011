// Status: the outcome of an operation, as a code plus a human-readable message.
//
// The numeric codes are on the wire (docs/protocol.md §6): clients see them in
// `reject`, `sub-error` and `error` frames. Never renumber a code; add new ones
// at the end. The core is built without exceptions, so every fallible function
// returns a Status or a Result<T> (result.h).

#ifndef SEQSYNC_STATUS_H_
#define SEQSYNC_STATUS_H_

#include <string>
#include <string_view>

namespace seqsync {

// Wire error codes. Keep in step with docs/protocol.md §6 and
// worker/src/protocol/codes.ts.
enum class Code : int {
  kOk = 0,
  kMalformedFrame = 1,
  kUnknownFrame = 2,
  kInvalidField = 3,
  kTooLarge = 4,
  kTooDeep = 5,
  kTooMany = 6,
  kUnknownCollection = 7,
  kUnknownColumn = 8,
  kInvalidKey = 9,
  kUnauthorized = 10,
  kNoHandler = 11,
  kExecuteFailed = 12,
  kVersionMismatch = 13,
  kUnsupportedPredicate = 14,
  kProtocolOrder = 15,
  kNotRegistered = 16,
  kSchema = 17,
  kInternal = 18,
  kRateLimited = 19,
};

// The wire name of `code`, e.g. "TOO_LARGE". Never null.
const char* CodeName(Code code);

// Returns true iff `value` is one of the codes above.
bool IsKnownCode(int value);

class [[nodiscard]] Status {
 public:
  // A default Status is OK.
  Status() = default;
  Status(Code code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status MalformedFrame(std::string m) { return {Code::kMalformedFrame, std::move(m)}; }
  static Status UnknownFrame(std::string m) { return {Code::kUnknownFrame, std::move(m)}; }
  static Status InvalidField(std::string m) { return {Code::kInvalidField, std::move(m)}; }
  static Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status TooDeep(std::string m) { return {Code::kTooDeep, std::move(m)}; }
  static Status TooMany(std::string m) { return {Code::kTooMany, std::move(m)}; }
  static Status UnknownCollection(std::string m) { return {Code::kUnknownCollection, std::move(m)}; }
  static Status UnknownColumn(std::string m) { return {Code::kUnknownColumn, std::move(m)}; }
  static Status InvalidKey(std::string m) { return {Code::kInvalidKey, std::move(m)}; }
  static Status Unauthorized(std::string m) { return {Code::kUnauthorized, std::move(m)}; }
  static Status NoHandler(std::string m) { return {Code::kNoHandler, std::move(m)}; }
  static Status ExecuteFailed(std::string m) { return {Code::kExecuteFailed, std::move(m)}; }
  static Status VersionMismatch(std::string m) { return {Code::kVersionMismatch, std::move(m)}; }
  static Status UnsupportedPredicate(std::string m) { return {Code::kUnsupportedPredicate, std::move(m)}; }
  static Status ProtocolOrder(std::string m) { return {Code::kProtocolOrder, std::move(m)}; }
  static Status NotRegistered(std::string m) { return {Code::kNotRegistered, std::move(m)}; }
  static Status Schema(std::string m) { return {Code::kSchema, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
  static Status RateLimited(std::string m) { return {Code::kRateLimited, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "TOO_LARGE: frame is 5000000 bytes; the limit is 4194304", or "OK".
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Returns early from the calling function iff `expr` is a non-OK Status.
#define SEQSYNC_RETURN_IF_ERROR(expr)        \
  do {                                       \
    ::seqsync::Status seqsync_status_ = (expr); \
    if (!seqsync_status_.ok()) return seqsync_status_; \
  } while (0)

}  // namespace seqsync

#endif  // SEQSYNC_STATUS_H_
