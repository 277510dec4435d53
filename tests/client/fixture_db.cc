// Builds test databases through the real schema and sweepd's own migrations, so that a
// schema change that breaks sweepctl's queries fails these tests.
#include "tests/client/fixture_db.h"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "store/database.h"
#include "store/migrations.h"

namespace sweepd::client::testing {
namespace {

using nlohmann::json;

struct Db {
  explicit Db(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK) << path;
    sqlite3_busy_timeout(db, 5000);
  }
  ~Db() { sqlite3_close(db); }
  void Exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "") << "\n" << sql;
    sqlite3_free(err);
  }
  // Binds strings as text, numbers as integers/reals, null as NULL.
  void Run(const std::string& sql, const std::vector<json>& params) {
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    for (size_t i = 0; i < params.size(); ++i) {
      const json& p = params[i];
      const int idx = static_cast<int>(i + 1);
      if (p.is_null()) {
        sqlite3_bind_null(stmt, idx);
      } else if (p.is_number_integer()) {
        sqlite3_bind_int64(stmt, idx, p.get<int64_t>());
      } else if (p.is_number()) {
        sqlite3_bind_double(stmt, idx, p.get<double>());
      } else {
        const std::string text = p.is_string() ? p.get<std::string>() : p.dump();
        sqlite3_bind_text(stmt, idx, text.c_str(), -1, SQLITE_TRANSIENT);
      }
    }
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db) << "\n" << sql;
    sqlite3_finalize(stmt);
  }
  sqlite3* db = nullptr;
};

}  // namespace

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void BuildFixtureDb(const std::string& db_path, const std::string& fixture_path) {
  std::filesystem::remove(db_path);
  const json fixture = json::parse(ReadTextFile(fixture_path));
  {
    // The schema as sweepd applies it: schema/*.sql in order, recorded in schema_version.
    auto store_db = store::Database::Open(db_path);
    ASSERT_TRUE(store_db.ok()) << store_db.status().message();
    ASSERT_FALSE(store::EmbeddedMigrations().empty());
    const Status applied = store::ApplyMigrations(**store_db, store::EmbeddedMigrations(), 0);
    ASSERT_TRUE(applied.ok()) << applied.message();
  }
  Db db(db_path);

  db.Exec("BEGIN");
  const int64_t t0 = fixture.at("sweeps").at(0).at("submitted_ms").get<int64_t>();
  for (const auto& s : fixture.at("sweeps")) {
    db.Run("INSERT INTO sweeps (name, spec_yaml, submitted_ms) VALUES (?, ?, ?)",
           {s.at("name"), "# from " + fixture_path, s.at("submitted_ms")});
  }
  for (const auto& w : fixture.value("workers", json::array())) {
    db.Run("INSERT INTO workers (worker_id, hostname, slots_json, labels_json, registered_ms, "
           "last_heartbeat_ms) VALUES (?, ?, ?, ?, ?, ?)",
           {w.at("worker_id"), w.at("hostname"), w.at("slots").dump(), w.at("labels").dump(), t0,
            w.at("last_heartbeat_ms")});
  }
  const std::string worker = fixture.value("workers", json::array()).empty()
                                 ? std::string("w-test")
                                 : fixture["workers"][0].at("worker_id").get<std::string>();
  int ordinal = 0;
  int64_t token = 0;
  for (const auto& j : fixture.at("jobs")) {
    const json& c = j.at("config");
    const std::string id = j.at("job_id");
    const std::string sweep = c.value("sweep", fixture["sweeps"][0].at("name").get<std::string>());
    db.Run("INSERT INTO jobs (job_id, kind, config_json, method, track, seed, trainable_params, state, "
           "attempts, last_outcome, last_error, created_ms, updated_ms) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
           {id, j.at("kind"), c.dump(), j.value("method", ""), c.at("track").at("name"), c.at("seed"),
            j.value("trainable_params", 0), j.at("state"), j.contains("metrics") ? 1 : 0,
            j.value("last_outcome", j.at("state") == "succeeded" ? "succeeded" : ""), j.value("last_error", ""),
            t0, t0 + 1000 * ordinal});
    db.Run("INSERT INTO sweep_jobs (sweep, job_id, ordinal) VALUES (?, ?, ?)", {sweep, id, ordinal});
    if (!c.value("base_eval_job", "").empty()) {
      db.Run("INSERT INTO job_deps (job_id, depends_on) VALUES (?, ?)", {id, c["base_eval_job"]});
    }
    if (j.contains("metrics") || !j.at("result").is_null()) {
      const std::string attempt = id + "-a1";
      const bool live = j.at("state") == "running" || j.at("state") == "leased";
      db.Run("INSERT INTO attempts (attempt_id, job_id, number, worker_id, fencing_token, state, leased_ms, "
             "lease_expires_ms, outcome, stderr_tail) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
             {attempt, id, worker, ++token, live ? "running" : "finished", t0, t0 + 60000,
              j.value("last_outcome", live ? "" : "succeeded"), j.value("stderr_tail", "")});
      int64_t seq = 0;
      for (const auto& line : j.value("metrics", json::array())) {
        const json m = json::parse(line.get<std::string>());
        db.Run("INSERT INTO metric_points (attempt_id, seq, job_id, type, step, json, stored_ms) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)",
               {attempt, ++seq, id, m.at("type"), m.contains("step") ? m["step"] : json(nullptr), line, t0});
      }
      if (!j.at("result").is_null()) {
        db.Run("INSERT INTO results (job_id, attempt_id, result_json, finished_ms) VALUES (?, ?, ?, ?)",
               {id, attempt, j.at("result").dump(), t0 + 1000 * ordinal});
      }
    }
    ++ordinal;
  }
  db.Exec("COMMIT");
}

void ExecSql(const std::string& db_path, const std::string& sql, const std::vector<std::string>& params) {
  Db db(db_path);
  std::vector<json> p(params.begin(), params.end());
  db.Run(sql, p);
}

}  // namespace sweepd::client::testing
