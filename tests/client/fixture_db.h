// Test support: a real sweepd database file made from schema/*.sql and the rows of a
// fixture file (tests/client/fixtures/*.json), and small writes that play sweepd's part.
#pragma once

#include <string>
#include <vector>

namespace sweepd::client::testing {

// Creates `db_path` with every migration of schema/ and the fixture's sweeps, workers,
// jobs (with attempts, metric points and results). Fails the current test on error.
void BuildFixtureDb(const std::string& db_path, const std::string& fixture_path);

// Runs one SQL statement with text parameters ?1, ?2, ... on the file (as sweepd would).
void ExecSql(const std::string& db_path, const std::string& sql, const std::vector<std::string>& params = {});

std::string ReadTextFile(const std::string& path);

}  // namespace sweepd::client::testing
