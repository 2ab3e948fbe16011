#include "seqsync/sqlite_storage.h"

#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>

namespace seqsync {

SqliteStorage::SqliteStorage(const std::string& path) {
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    sqlite3_close(db_);
    db_ = nullptr;
    return;
  }
  // Like the DO: a single string or BLOB may not exceed ~2 MB.
  sqlite3_limit(db_, SQLITE_LIMIT_LENGTH, 2200000);
  // And an expression tree may be at most 100 deep (SQLITE_MAX_EXPR_DEPTH
  // there; SQLite's own default is 1000), so a test sees what the DO refuses.
  sqlite3_limit(db_, SQLITE_LIMIT_EXPR_DEPTH, 100);
}

SqliteStorage::~SqliteStorage() {
  ForgetStatements();
  if (db_ != nullptr) sqlite3_close(db_);
}

void SqliteStorage::ForgetStatements() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  statements_.clear();
}

Result<std::vector<SqlRow>> SqliteStorage::Exec(std::string_view sql,
                                                const std::vector<SqlValue>& params) {
  ++exec_count_;
  if (fail_after_ == 0) return Status::Internal("injected storage fault");
  if (fail_after_ > 0) --fail_after_;
  if (!fail_matching_.empty() && sql.find(fail_matching_) != std::string_view::npos) {
    fail_matching_.clear();
    return Status::Internal("injected storage fault");
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = SQLITE_OK;
  if (auto cached = statements_.find(std::string(sql)); cached != statements_.end()) {
    stmt = cached->second;
  } else {
    const char* tail = nullptr;
    rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
    if (rc != SQLITE_OK) return Status::Internal(sqlite3_errmsg(db_));
    // Statements made from dynamic text (IN lists of any length) could fill it.
    if (statements_.size() >= kMaxStatements) ForgetStatements();
    statements_.emplace(std::string(sql), stmt);
  }
  // Left ready for the next run, and holding no lock or binding meanwhile.
  struct Reset {
    sqlite3_stmt* stmt;
    ~Reset() {
      sqlite3_reset(stmt);
      sqlite3_clear_bindings(stmt);
    }
  } reset{stmt};
  for (size_t i = 0; i < params.size(); ++i) {
    const SqlValue& p = params[i];
    int idx = static_cast<int>(i + 1);
    switch (p.kind) {
      case SqlValue::Kind::kNull: sqlite3_bind_null(stmt, idx); break;
      case SqlValue::Kind::kInteger: sqlite3_bind_int64(stmt, idx, p.integer); break;
      case SqlValue::Kind::kReal: sqlite3_bind_double(stmt, idx, p.real); break;
      case SqlValue::Kind::kText:
        sqlite3_bind_text(stmt, idx, p.text.data(), static_cast<int>(p.text.size()), SQLITE_TRANSIENT);
        break;
    }
  }
  std::vector<SqlRow> rows;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    SqlRow row;
    int n = sqlite3_column_count(stmt);
    for (int c = 0; c < n; ++c) {
      switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_INTEGER: row.push_back(SqlValue::Integer(sqlite3_column_int64(stmt, c))); break;
        case SQLITE_FLOAT: row.push_back(SqlValue::Real(sqlite3_column_double(stmt, c))); break;
        case SQLITE_TEXT: {
          const char* t = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
          row.push_back(SqlValue::Text(std::string(t, sqlite3_column_bytes(stmt, c))));
          break;
        }
        default: row.push_back(SqlValue::Null()); break;  // NULL, and BLOBs never cross
      }
    }
    rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return Status::Internal(sqlite3_errmsg(db_));
  return rows;
}

void SqliteStorage::MustExec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "MustExec failed: %s\n  in: %s\n", err ? err : "?", sql.c_str());
    std::abort();
  }
}

}  // namespace seqsync
