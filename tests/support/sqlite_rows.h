// Test support: read rows from a SQLite file that a real sweepd writes, through a read-only
// connection of the test's own (the assertions look at what was stored, not at what was said).
#pragma once

#include <string>
#include <vector>

namespace sweepd::testing {

using Rows = std::vector<std::vector<std::string>>;

// Runs `sql` with text parameters ?1, ?2, ... and returns every row as text (NULL as "").
// A file that cannot be opened (not created yet) gives no rows; SQL that does not prepare
// fails the running test.
Rows QueryRows(const std::string& db_path, const std::string& sql,
               const std::vector<std::string>& params = {});

}  // namespace sweepd::testing
