// The commands of strongholdctl. Each declares its flags and splits its work
// in two: parse (check the arguments; errors are usage errors, exit code 2)
// and the action (talk to the daemon; errors are exit code 1). Parsing
// everything first means a typo never leaves a half-done operation behind.
#ifndef STRONGHOLD_CLIENT_COMMANDS_H_
#define STRONGHOLD_CLIENT_COMMANDS_H_

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/arg_parser.h"
#include "client/daemon_client.h"
#include "google/protobuf/message.h"

namespace stronghold::client {

enum class OutputFormat { kTable, kJson };

// What an action runs against, built from the global flags.
struct CommandContext {
  DaemonClient* client = nullptr;
  OutputFormat output = OutputFormat::kTable;
  std::ostream* out = nullptr;  // results
  std::ostream* err = nullptr;  // diagnostics
  bool interactive = false;     // `out` is a terminal
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

// Every command, in the order --help lists them.
const std::vector<Command>& AllCommands();

// The commands that live in their own files.
Command WatchCommand();
Command FetchCommand();

// "7" or "jobs/7" -> "jobs/7"; INVALID_ARGUMENT for anything else.
absl::StatusOr<std::string> JobName(absl::string_view arg);

// Prints `message` as JSON, or with `print_table` for table output.
absl::Status PrintResult(const google::protobuf::Message& message,
                         const CommandContext& context,
                         const std::function<void(std::ostream&)>& print_table);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_COMMANDS_H_
