// Storage: the one interface through which the core touches the outside world.
//
// In a Durable Object it is the DO's own SQLite (`ctx.storage.sql`), reached
// through a JS bridge (cpp/wasm/js_storage.cc). In native tests it is real
// SQLite (cpp/src/sqlite_storage.cc). The core sends whole statements and
// reads results in bulk: queries that return many rows build one JSON string
// in SQLite (json_group_array) so a read crosses the boundary once.

#ifndef SEQSYNC_STORAGE_H_
#define SEQSYNC_STORAGE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "seqsync/result.h"

namespace seqsync {

// One SQL value: NULL, INTEGER, REAL or TEXT. (BLOBs never cross: the core's
// queries turn them into hex inside SQLite.)
struct SqlValue {
  enum class Kind { kNull, kInteger, kReal, kText };
  Kind kind = Kind::kNull;
  std::int64_t integer = 0;
  double real = 0;
  std::string text;

  static SqlValue Null() { return {}; }
  static SqlValue Integer(std::int64_t v) { SqlValue s; s.kind = Kind::kInteger; s.integer = v; return s; }
  static SqlValue Real(double v) { SqlValue s; s.kind = Kind::kReal; s.real = v; return s; }
  static SqlValue Text(std::string v) { SqlValue s; s.kind = Kind::kText; s.text = std::move(v); return s; }

  bool is_null() const { return kind == Kind::kNull; }
  // The value as an integer: INTEGER as is, REAL truncated, others 0.
  std::int64_t AsInteger() const;
};

using SqlRow = std::vector<SqlValue>;

class Storage {
 public:
  virtual ~Storage() = default;

  // Runs one SQL statement with `params` bound to ?1..?N and returns all of
  // its rows, or the error SQLite reported (as kInternal, message verbatim).
  // `sql` and `params` are only borrowed for the duration of the call.
  virtual Result<std::vector<SqlRow>> Exec(std::string_view sql,
                                           const std::vector<SqlValue>& params) = 0;

  // Sends `frame` to the sockets `to` now, ahead of the rest of the plan
  // being built, so a long snapshot never sits whole in the core's heap.
  // Returns false iff this storage cannot send (the frame then stays in the
  // plan). Frames sent this way precede the plan's own, in order.
  virtual bool Send(const std::vector<std::string>& to, std::string_view frame) {
    (void)to;
    (void)frame;
    return false;
  }
};

}  // namespace seqsync

#endif  // SEQSYNC_STORAGE_H_
