// SqliteStorage: Storage over a real SQLite connection, for native tests and
// the wasm test build. Not part of the wasm module (there, the DO's own
// SQLite is reached through the shell's bridge).

#ifndef SEQSYNC_SQLITE_STORAGE_H_
#define SEQSYNC_SQLITE_STORAGE_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "seqsync/storage.h"

struct sqlite3;
struct sqlite3_stmt;

namespace seqsync {

class SqliteStorage : public Storage {
 public:
  // Opens `path` (":memory:" for a private in-memory database).
  // REQUIRES: ok() before use.
  explicit SqliteStorage(const std::string& path = ":memory:");
  ~SqliteStorage() override;
  SqliteStorage(const SqliteStorage&) = delete;
  SqliteStorage& operator=(const SqliteStorage&) = delete;

  bool ok() const { return db_ != nullptr; }

  Result<std::vector<SqlRow>> Exec(std::string_view sql,
                                   const std::vector<SqlValue>& params) override;

  // Runs `sql` (may hold several statements) and fails the process on error:
  // for test fixtures. Not cached.
  void MustExec(const std::string& sql);

  // Test hooks for fault injection: the next `n` Exec calls succeed, then
  // every call fails until the budget is reset with -1 (no faults).
  void FailAfter(int n) { fail_after_ = n; }
  // The next Exec whose SQL contains `needle` fails, once; "" disarms it.
  void FailNextMatching(std::string needle) { fail_matching_ = std::move(needle); }

  // Counts Exec calls, to check that the core crosses in batches.
  long exec_count() const { return exec_count_; }

  sqlite3* db() { return db_; }

  // Test hook: when set, Send appends here (as the shell would send) and
  // succeeds, so tests see frames a core flushed ahead of its plan.
  // `execs_before`: exec_count() when it was sent, to tell which statements
  // ran after it.
  struct Sent {
    std::vector<std::string> to;
    std::string frame;
    long execs_before = 0;
  };
  std::vector<Sent>* sent = nullptr;
  bool Send(const std::vector<std::string>& to, std::string_view frame) override {
    if (sent == nullptr) return false;
    sent->push_back({to, std::string(frame), exec_count_});
    return true;
  }

 private:
  void ForgetStatements();

  // Prepared statements by their SQL, kept between runs as the DO's
  // sql.exec keeps them, so a statement costs here what it costs there.
  static constexpr std::size_t kMaxStatements = 256;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
  sqlite3* db_ = nullptr;
  int fail_after_ = -1;
  std::string fail_matching_;
  long exec_count_ = 0;
};

}  // namespace seqsync

#endif  // SEQSYNC_SQLITE_STORAGE_H_
