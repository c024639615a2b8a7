// What a strongholdctl command is. Each declares its flags and splits its
// work in two: parse (check the arguments; errors are usage errors, exit code
// 2) and the action (talk to the daemon; errors are exit code 1). Parsing
// everything first means a typo never leaves a half-done operation behind.
// Apart from commands.h (the list of commands) so that a command in its own
// package (client/bench) can be defined without depending on all the others.
#ifndef STRONGHOLD_CLIENT_COMMAND_H_
#define STRONGHOLD_CLIENT_COMMAND_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/arg_parser.h"
#include "client/daemon_client.h"

namespace stronghold::client {

enum class OutputFormat { kTable, kJson };

// What an action runs against, built from the global flags.
struct CommandContext {
  DaemonClient* client = nullptr;
  OutputFormat output = OutputFormat::kTable;
  std::ostream* out = nullptr;  // results
  std::ostream* err = nullptr;  // diagnostics
  bool interactive = false;     // `out` is a terminal
  // A client of another daemon (a command that drives several, such as
  // `bench --daemons`), with the global flags' timeout and security;
  // INVALID_ARGUMENT names the address when it or its security is bad.
  std::function<absl::StatusOr<std::unique_ptr<DaemonClient>>(
      const std::string& address)>
      connect;
};

// Returns the exit code, or an error (printed as "CODE: message", exit 1).
using Action = std::function<absl::StatusOr<int>(CommandContext&)>;

struct Command {
  std::string name;
  std::string args_usage;  // e.g. "JOB"; empty when it takes none
  std::string summary;
  size_t positional_args = 0;  // exactly this many
  std::vector<FlagSpec> flags;
  std::function<absl::StatusOr<Action>(const ParsedArgs&)> parse;
};

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_COMMAND_H_
