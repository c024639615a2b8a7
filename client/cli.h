// strongholdctl's command line: `strongholdctl [global flags] COMMAND
// [args/flags]`. Kept out of main() so tests can run whole command lines.
//
// Exit codes: 0 success; 1 the daemon (or the local file system) reported an
// error, or a watched job did not succeed; 2 a usage error (unknown command or
// flag, bad number or size), found before anything is sent to the daemon.
#ifndef STRONGHOLD_CLIENT_CLI_H_
#define STRONGHOLD_CLIENT_CLI_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/daemon_address.h"
#include "client/daemon_client.h"

namespace stronghold::client {

struct CliOptions {
  AddressEnvironment address_env;  // where --daemon defaults come from
  std::string token_env;        // $STRONGHOLD_TOKEN (client/channel_security.h)
  std::ostream* out = nullptr;  // results
  std::ostream* err = nullptr;  // errors and notes
  bool out_is_terminal = false;  // `out` is a terminal: live progress lines
};

// Runs one command line; `args` excludes the program name. Returns the exit
// code.
int RunCli(const std::vector<std::string>& args, const CliOptions& options);

// Prints "strongholdctl: CODE: message" for an error from `address`, with
// advice on TLS and authentication when they explain it (made with
// `security`), else on starting the daemon when it is UNAVAILABLE. The
// daemon's message is printed TerminalSafe.
void ReportError(const absl::Status& status, const std::string& address,
                 std::ostream& err, const ChannelSecurity& security = {});

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_CLI_H_
