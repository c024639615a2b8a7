// strongholdctl: the command-line client of strongholdd. Everything but
// reading the process's arguments and environment lives in cli.cc.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "client/cli.h"
#include "client/daemon_address.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  return stronghold::client::RunCli(
      args,
      {.address_env = stronghold::client::AddressEnvironment::FromProcess(),
       .out = &std::cout,
       .err = &std::cerr,
       .out_is_terminal = isatty(STDOUT_FILENO) == 1});
}
