// Tokens, a CA and a sweepd for the security tests; see secure_sweepd.h.
#include "tests/support/secure_sweepd.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/sqlite_rows.h"

namespace sweepd::testing {
namespace {

const std::string kOpenssl = "/usr/bin/openssl";  // RunCommand wants a path

void Run(const std::vector<std::string>& argv) {
  std::string out;
  ASSERT_EQ(RunCommand(argv, &out), 0) << out;
}

}  // namespace

void WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

TestTokens::TestTokens(const std::string& dir, std::string sweepctl)
    : auth_file(dir + "/auth"), dir_(dir), sweepctl_(std::move(sweepctl)) {
  WriteTextFile(auth_file, "# sweepd tokens, made by the test\n");
}

std::string TestTokens::Add(const std::string& role, const std::string& name) {
  std::string out;
  EXPECT_EQ(RunCommand({sweepctl_, "--output", "json", "auth", "new-token", "--role", role, "--name", name}, &out), 0)
      << out;
  const nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  EXPECT_TRUE(j.is_object()) << out;
  if (!j.is_object()) return "";
  tokens[name] = j.value("token", "");
  std::ofstream(auth_file, std::ios::app) << j.value("auth_file_line", "") << "\n";
  const std::string path = dir_ + "/" + name + ".token";
  WriteTextFile(path, tokens[name] + "\n");
  return path;
}

TestPki::TestPki(std::string dir) : dir_(std::move(dir)) {
  Run({kOpenssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir_ + "/ca.key", "-out", ca(), "-days",
       "2", "-subj", "/CN=sweepd-test-ca"});
  WriteTextFile(dir_ + "/server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
}

void TestPki::Sign(const std::string& n, const std::string& days, bool server) {
  Run({kOpenssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key(n), "-out", dir_ + "/" + n + ".csr", "-subj",
       "/CN=" + n});
  std::vector<std::string> argv = {kOpenssl, "x509", "-req", "-in", dir_ + "/" + n + ".csr", "-CA", ca(),
                                   "-CAkey", dir_ + "/ca.key", "-CAcreateserial", "-out", cert(n), "-days", days};
  if (server) argv.insert(argv.end(), {"-extfile", dir_ + "/server.ext"});
  Run(argv);
}

TestSweepd::TestSweepd(const std::string& bin_dir, const std::string& dir, const std::vector<std::string>& extra)
    : db(dir + "/sweepd.db"), log(dir + "/sweepd.log") {
  using namespace std::chrono_literals;
  const std::string port_file = dir + "/sweepd.addr";
  std::filesystem::remove(port_file);
  std::vector<std::string> argv = {bin_dir + "/sweepd", "--db", db, "--listen", "127.0.0.1:0", "--port-file",
                                   port_file};
  argv.insert(argv.end(), extra.begin(), extra.end());
  process = std::make_unique<ChildProcess>(argv, log);
  address = WaitForPortFile(port_file, 30s);
  EXPECT_FALSE(address.empty()) << ReadFile(log);
}

int64_t TestSweepd::Count(const std::string& table) const {
  const auto rows = QueryRows(db, "SELECT COUNT(*) FROM " + table);
  return rows.empty() ? 0 : std::stoll(rows[0][0]);
}

}  // namespace sweepd::testing
