// What every sweepctl command shares: where to read from (--coordinator or --db), how to
// print (--output), and the exit status the command leaves.
#pragma once

#include <memory>
#include <string>

#include "client/sweep_source.h"
#include "common/status.h"

namespace sweepd::client {

struct CliContext {
  std::string coordinator;  // HOST:PORT; empty: $SWEEPD_ADDR, then 127.0.0.1:50051
  std::string db;           // a database file, opened read-only; wins over the coordinator
  std::string output = "text";  // text | json
  std::string token_file;       // --token-file; empty: $SWEEPD_TOKEN_FILE, then none
  std::string tls_ca;           // --tls-ca; empty: $SWEEPD_TLS_CA, then plaintext
  int exit_code = 0;

  bool json() const { return output == "json"; }
  std::string CoordinatorAddress() const;
  // The source the flags name: DbSource for --db, RpcSource otherwise.
  Result<std::unique_ptr<SweepSource>> OpenSource() const;
  // Prints "sweepctl: <message>" on stderr and returns the status's exit code.
  int Fail(const Status& status) const;
};

}  // namespace sweepd::client
