// What the security tests set up around a real sweepd: tokens made by `sweepctl auth
// new-token` with their auth file, a CA and certificates made by the openssl command, and a
// sweepd started on a free loopback port with given flags (tests/server/security_test.cc,
// tests/node/node_client_test.cc).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace sweepd::testing {

// Writes `text` to `path` byte for byte.
void WriteTextFile(const std::string& path, const std::string& text);

// Tokens, one per name, and the auth file of their lines, in `dir`.
class TestTokens {
 public:
  TestTokens(const std::string& dir, std::string sweepctl);
  // Adds a token of `role`; returns the path of a file holding it.
  std::string Add(const std::string& role, const std::string& name);
  const std::string auth_file;
  std::map<std::string, std::string> tokens;  // name -> token

 private:
  std::string dir_;
  std::string sweepctl_;
};

// A CA in `dir`, and the certificates it signs: a server's for 127.0.0.1 and localhost, or a
// client's whose CN is its name.
class TestPki {
 public:
  explicit TestPki(std::string dir);
  std::string ca() const { return dir_ + "/ca.pem"; }
  std::string cert(const std::string& n) const { return dir_ + "/" + n + ".pem"; }
  std::string key(const std::string& n) const { return dir_ + "/" + n + ".key"; }
  // `days` -1 makes a certificate that expired before it began.
  void Sign(const std::string& n, const std::string& days, bool server = false);

 private:
  std::string dir_;
};

// sweepd on `dir`/sweepd.db, listening on a free loopback port, with `extra` flags; its log is
// `dir`/sweepd.log. `address` is empty when it did not start serving.
struct TestSweepd {
  TestSweepd(const std::string& bin_dir, const std::string& dir, const std::vector<std::string>& extra);
  int64_t Count(const std::string& table) const;  // rows of a table of its database
  std::string db;
  std::string log;
  std::string address;
  std::unique_ptr<ChildProcess> process;
};

}  // namespace sweepd::testing
