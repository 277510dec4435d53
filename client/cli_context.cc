// Source selection and error reporting shared by the commands.
#include "client/cli_context.h"

#include <cstdlib>
#include <iostream>

#include "client/db_source.h"
#include "client/exit_codes.h"
#include "client/rpc_source.h"
#include "common/credentials.h"

namespace sweepd::client {

std::string CliContext::CoordinatorAddress() const {
  if (!coordinator.empty()) return coordinator;
  const char* env = std::getenv("SWEEPD_ADDR");
  if (env != nullptr) {
    // Often set from a port file: `SWEEPD_ADDR=$(cat var/sweepd.addr)`; tolerate spaces.
    std::string addr = env;
    addr.erase(0, addr.find_first_not_of(" \t\r\n"));
    addr.erase(addr.find_last_not_of(" \t\r\n") + 1);
    if (!addr.empty()) return addr;
  }
  return "127.0.0.1:50051";
}

Result<std::unique_ptr<SweepSource>> CliContext::OpenSource() const {
  if (!db.empty()) {
    auto source = DbSource::Open(db);
    if (!source.ok()) return source.status();
    return std::unique_ptr<SweepSource>(std::move(*source));
  }
  Result<std::string> token = credentials::LoadToken(token_file);
  if (!token.ok()) return token.status();
  auto channel = credentials::ChannelCredentialsFor({tls_ca, "", ""});
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<SweepSource>(
      std::make_unique<RpcSource>(CoordinatorAddress(), std::move(*channel), std::move(*token)));
}

int CliContext::Fail(const Status& status) const {
  std::cerr << "sweepctl: " << status.message() << "\n";
  return ExitCodeFor(status);
}

}  // namespace sweepd::client
