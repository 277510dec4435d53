// Test support: a private temporary folder and a trainer wrapper script that runs
// tests/agent/data/fake_trainer.sh with chosen FAKE_* settings.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace sweepd::agent::testing {

inline std::filesystem::path MakeTempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sweep-agent-test-XXXXXX").string();
  return std::filesystem::path(mkdtemp(tmpl.data()));
}

inline std::filesystem::path FakeTrainer() {
  return std::filesystem::path(SWEEPD_SOURCE_DIR) / "tests/agent/data/fake_trainer.sh";
}

// Writes dir/name, an executable script that sets `env` and runs the fake trainer.
inline std::filesystem::path WriteTrainerScript(const std::filesystem::path& dir,
                                                const std::map<std::string, std::string>& env,
                                                const std::string& name = "trainer.sh") {
  const auto path = dir / name;
  std::ofstream out(path);
  out << "#!/bin/bash\n";
  for (const auto& [k, v] : env) {
    std::string quoted;  // single-quoted for the shell; a ' inside becomes '\''
    for (char c : v) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out << "export " << k << "='" << quoted << "'\n";
  }
  out << "exec '" << FakeTrainer().string() << "' \"$@\"\n";
  out.close();
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path;
}

}  // namespace sweepd::agent::testing
