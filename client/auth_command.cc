// sweepctl auth new-token: a fresh random token and the line of sweepd's --auth-file that
// admits it (ROLE NAME SHA256HEX). The only command that ever prints a token: it is the one
// moment it exists outside its file.
#include <iostream>

#include <nlohmann/json.hpp>

#include "client/commands.h"
#include "client/exit_codes.h"
#include "common/credentials.h"

namespace sweepd::client {
namespace {

struct NewTokenOptions {
  std::string role;
  std::string name;
};

int RunNewToken(const CliContext& ctx, const NewTokenOptions& o) {
  if (!credentials::IsCallerName(o.name)) {
    return ctx.Fail(Status::InvalidArgument(
        "--name must be 1-" + std::to_string(credentials::kMaxCallerNameLength) +
        " of [A-Za-z0-9._-] (a worker's name becomes its worker id)"));
  }
  Result<std::string> token = credentials::NewToken();
  if (!token.ok()) return ctx.Fail(token.status());
  const std::string line = o.role + " " + o.name + " " + credentials::Sha256Hex(*token);
  if (ctx.json()) {
    std::cout << nlohmann::json{{"token", *token}, {"auth_file_line", line}}.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "token (put it in a file only " << o.name << " can read; pass it with --token-file):\n"
            << *token << "\n"
            << "line for sweepd's --auth-file (then send sweepd SIGHUP):\n"
            << line << "\n";
  return kExitOk;
}

}  // namespace

void AddAuthCommand(CLI::App& app, CliContext& ctx) {
  CLI::App* auth = app.add_subcommand("auth", "tokens for sweepd's --auth-file");
  auth->require_subcommand(1);
  auto o = std::make_shared<NewTokenOptions>();
  CLI::App* cmd = auth->add_subcommand("new-token", "print a new random token and its --auth-file line");
  cmd->add_option("--role", o->role, "what the token may do")
      ->required()
      ->check(CLI::IsMember({credentials::kRoleNames[0], credentials::kRoleNames[1],
                             credentials::kRoleNames[2], credentials::kRoleNames[3]}));
  cmd->add_option("--name", o->name, "who holds it (a worker: its node name, used as worker id)")->required();
  cmd->callback([&ctx, o] { ctx.exit_code = RunNewToken(ctx, *o); });
}

}  // namespace sweepd::client
