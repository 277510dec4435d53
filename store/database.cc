// SQLite connection settings and statement handling for the store.
#include "store/database.h"

#include <sqlite3.h>
#include <unistd.h>

namespace sweepd::store {

Query::Query(Database& db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {
  if (stmt_ == nullptr) status_ = Status::Internal("SQL prepare failed: " + db_.ErrorMessage());
}

Query::~Query() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Query& Query::Bind(int index, int64_t value) {
  if (stmt_) sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Query& Query::Bind(int index, const std::string& value) {
  if (stmt_)
    sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  return *this;
}

Query& Query::Bind(int index, double value) {
  if (stmt_) sqlite3_bind_double(stmt_, index, value);
  return *this;
}

Query& Query::BindNull(int index) {
  if (stmt_) sqlite3_bind_null(stmt_, index);
  return *this;
}

bool Query::Step() {
  if (stmt_ == nullptr || !status_.ok()) return false;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) {
    const StatusCode code = (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? StatusCode::kUnavailable
                                                                       : StatusCode::kInternal;
    status_ = Status(code, std::string("SQLite: ") + db_.ErrorMessage());
  }
  return false;
}

Status Query::Run() {
  while (Step()) {
  }
  return status_;
}

int64_t Query::Int(int column) const { return sqlite3_column_int64(stmt_, column); }
double Query::Double(int column) const { return sqlite3_column_double(stmt_, column); }
bool Query::IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

std::string Query::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt_, column));
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::Unavailable("cannot open database " + path + ": " + msg +
                               "; check that the folder exists and is writable");
  }
  std::unique_ptr<Database> out(new Database(db));
  // Several connections (one per thread) write the same file: wait rather than fail.
  sqlite3_busy_timeout(db, 30000);
  // synchronous = NORMAL in WAL mode: a COMMIT has reached the operating system when it
  // returns, so a killed sweepd loses nothing it answered (a power cut may lose the last
  // transactions). Reads map the file instead of copying pages (mmap_size), and the
  // savepoints of group commit keep their journal in memory (temp_store).
  SWEEPD_RETURN_IF_ERROR(out->ExecScript(
      "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; "
      "PRAGMA temp_store = MEMORY; PRAGMA mmap_size = 1073741824;"));
  return out;
}

namespace {

// `path` as the path part of a file: URI (RFC 3986: '%', '?' and '#' percent-encoded).
std::string UriPath(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '%') {
      out += "%25";
    } else if (c == '?') {
      out += "%3f";
    } else if (c == '#') {
      out += "%23";
    } else {
      out += c;
    }
  }
  return out;
}

// Opens `uri` read-only and reads the schema once: SQLite opens files lazily, so this is
// where a file that is not a database, or one it cannot read, says so.
int OpenAndProbe(const std::string& uri, sqlite3** db) {
  int rc = sqlite3_open_v2(uri.c_str(), db,
                           SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(*db, 5000);
    rc = sqlite3_exec(*db, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
  }
  return rc;
}

}  // namespace

Result<std::unique_ptr<Database>> Database::OpenReadOnly(const std::string& path,
                                                       bool follow_writers) {
  const std::string base = "file:" + UriPath(path) + "?mode=ro";
  const bool live = follow_writers || ::access((path + "-wal").c_str(), F_OK) == 0;
  sqlite3* db = nullptr;
  int rc = OpenAndProbe(live ? base : base + "&immutable=1", &db);
  if (rc == SQLITE_CANTOPEN && live) {
    // A read-only folder with a -wal but no -shm: read the file as it is.
    sqlite3_close(db);
    db = nullptr;
    rc = OpenAndProbe(base + "&immutable=1", &db);
  }
  if (rc != SQLITE_OK) {
    const std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    if (rc == SQLITE_NOTADB) {
      return Status::Unavailable(path + " is not a SQLite database (" + msg +
                                 "); --db takes the file sweepd writes, e.g. var/sweepd.db");
    }
    return Status::Unavailable("cannot read database " + path + ": " + msg +
                               "; check that the file is readable");
  }
  return std::unique_ptr<Database>(new Database(db));
}

Database::~Database() {
  for (auto& [_, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Query Database::Prepare(const char* sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return Query(*this, it->second);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
    return Query(*this, nullptr);
  }
  statements_[sql] = stmt;
  return Query(*this, stmt);
}

Status Database::ExecScript(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Status::Internal("SQLite: " + msg);
  }
  return Status::Ok();
}

void Database::SetRowChangeHook(RowChangeHook hook) {
  row_change_hook_ = std::move(hook);
  if (row_change_hook_) {
    sqlite3_update_hook(
        db_,
        [](void* self, int op, const char* database, const char* table, sqlite3_int64 rowid) {
          OnRowChange(self, op, database, table, rowid);
        },
        this);
  } else {
    sqlite3_update_hook(db_, nullptr, nullptr);
  }
}

void Database::OnRowChange(void* self, int, const char*, const char* table, int64_t rowid) {
  static_cast<Database*>(self)->row_change_hook_(table, rowid);
}

int64_t Database::Changes() const { return sqlite3_changes(db_); }
std::string Database::ErrorMessage() const { return sqlite3_errmsg(db_); }

Transaction::Transaction(Database& db) : db_(db) { status_ = db_.Prepare("BEGIN IMMEDIATE").Run(); }

Transaction::~Transaction() {
  if (status_.ok() && !done_) db_.Prepare("ROLLBACK").Run();
}

Status Transaction::Commit() {
  if (!status_.ok()) return status_;
  Status s = db_.Prepare("COMMIT").Run();
  if (s.ok()) done_ = true;
  return s;
}

}  // namespace sweepd::store
