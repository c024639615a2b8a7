// strongholdctl: the command-line client of strongholdd. Everything but
// reading the process's arguments and environment lives in cli.cc.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "client/cli.h"
#include "client/daemon_address.h"

int main(int argc, char** argv) {
  // gRPC's own log lines (a failed TLS handshake, say) repeat what the
  // command reports with advice; GRPC_VERBOSITY=ERROR brings them back.
  setenv("GRPC_VERBOSITY", "NONE", /*replace=*/0);
  const std::vector<std::string> args(argv + 1, argv + argc);
  const char* token = std::getenv("STRONGHOLD_TOKEN");
  return stronghold::client::RunCli(
      args,
      {.address_env = stronghold::client::AddressEnvironment::FromProcess(),
       .token_env = token != nullptr ? token : "",
       .out = &std::cout,
       .err = &std::cerr,
       .out_is_terminal = isatty(STDOUT_FILENO) == 1});
}
