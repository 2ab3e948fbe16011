#include "seqsync/status.h"

namespace seqsync {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kMalformedFrame: return "MALFORMED_FRAME";
    case Code::kUnknownFrame: return "UNKNOWN_FRAME";
    case Code::kInvalidField: return "INVALID_FIELD";
    case Code::kTooLarge: return "TOO_LARGE";
    case Code::kTooDeep: return "TOO_DEEP";
    case Code::kTooMany: return "TOO_MANY";
    case Code::kUnknownCollection: return "UNKNOWN_COLLECTION";
    case Code::kUnknownColumn: return "UNKNOWN_COLUMN";
    case Code::kInvalidKey: return "INVALID_KEY";
    case Code::kUnauthorized: return "UNAUTHORIZED";
    case Code::kNoHandler: return "NO_HANDLER";
    case Code::kExecuteFailed: return "EXECUTE_FAILED";
    case Code::kVersionMismatch: return "VERSION_MISMATCH";
    case Code::kUnsupportedPredicate: return "UNSUPPORTED_PREDICATE";
    case Code::kProtocolOrder: return "PROTOCOL_ORDER";
    case Code::kNotRegistered: return "NOT_REGISTERED";
    case Code::kSchema: return "SCHEMA";
    case Code::kInternal: return "INTERNAL";
    case Code::kRateLimited: return "RATE_LIMITED";
  }
  return "INTERNAL";
}

bool IsKnownCode(int value) {
  return value >= static_cast<int>(Code::kOk) &&
         value <= static_cast<int>(Code::kRateLimited);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out = CodeName(code_);
  out += ": ";
  out += message_;
  return out;
}

}  // namespace seqsync
