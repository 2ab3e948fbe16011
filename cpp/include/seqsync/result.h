// Result<T>: a value or a non-OK Status. libc++ 14 (Emscripten 3.1.6) has no
// std::expected, and the core has no exceptions, so this is the core's way to
// return "a value, or why not".
//
// A default-constructed Result is an error (kInternal), never a silent success.

#ifndef SEQSYNC_RESULT_H_
#define SEQSYNC_RESULT_H_

#include <cassert>
#include <optional>
#include <utility>

#include "seqsync/status.h"

namespace seqsync {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result() : status_(Status::Internal("uninitialised Result")) {}
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    // An OK status carries no value: that would be a silent success.
    if (status_.ok()) status_ = Status::Internal("Result built from an OK Status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  // REQUIRES: ok().
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;  // OK iff value_ holds a value
};

// Assigns the value of `rexpr` (a Result) to `lhs`, or returns its Status.
#define SEQSYNC_CONCAT_INNER_(a, b) a##b
#define SEQSYNC_CONCAT_(a, b) SEQSYNC_CONCAT_INNER_(a, b)
#define SEQSYNC_ASSIGN_OR_RETURN(lhs, rexpr)                            \
  auto SEQSYNC_CONCAT_(seqsync_result_, __LINE__) = (rexpr);            \
  if (!SEQSYNC_CONCAT_(seqsync_result_, __LINE__).ok())                 \
    return SEQSYNC_CONCAT_(seqsync_result_, __LINE__).status();         \
  lhs = std::move(SEQSYNC_CONCAT_(seqsync_result_, __LINE__)).value()

}  // namespace seqsync

#endif  // SEQSYNC_RESULT_H_
