#include "client/cli.h"

#include <cmath>
#include <memory>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/arg_parser.h"
#include "client/channel_security.h"
#include "client/commands.h"
#include "client/daemon_client.h"
#include "client/terminal_text.h"
#include "core/util/status_macros.h"

namespace stronghold::client {
namespace {

constexpr char kProgram[] = "strongholdctl";
constexpr double kDefaultTimeoutS = 30;

const std::vector<FlagSpec>& GlobalFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"daemon", "ADDRESS",
       "socket path, unix:PATH or host:port (default: $STRONGHOLD_DAEMON, else "
       "the default socket)"},
      {"output", "table|json", "output format (default table)"},
      {"timeout", "SECONDS",
       "deadline per request, not for watch/fetch (default 30; 0 = none)"},
      {"tls-ca", "FILE",
       "TCP: PEM CA certificates the daemon's certificate must chain to "
       "(default: the system's)"},
      {"tls-cert", "FILE", "TCP: PEM client certificate (with --tls-key)"},
      {"tls-key", "FILE", "TCP: PEM private key of --tls-cert"},
      {"token-file", "FILE",
       "TCP: file whose first line is a bearer token (default: "
       "$STRONGHOLD_TOKEN)"},
      {"help", "", "show help"},
  };
  return *flags;
}

void PrintFlags(const std::vector<FlagSpec>& flags, std::ostream& out) {
  for (const FlagSpec& flag : flags) {
    std::string left = absl::StrCat("  --", flag.name);
    if (!flag.value_name.empty()) absl::StrAppend(&left, " ", flag.value_name);
    if (left.size() < 30)
      left.resize(30, ' ');
    else
      absl::StrAppend(&left, "\n", std::string(30, ' '));
    out << left << flag.help << "\n";
  }
}

void PrintUsage(std::ostream& out) {
  out << "Usage: " << kProgram << " [global flags] COMMAND [args] [flags]\n"
      << "\nControls strongholdd, the training daemon of this node.\n"
      << "\nCommands:\n";
  for (const Command& command : AllCommands()) {
    std::string left =
        absl::StrCat("  ", command.name, " ", command.args_usage);
    left.resize(std::max<size_t>(left.size(), 16), ' ');
    out << left << command.summary << "\n";
  }
  out << "\nGlobal flags (before or after COMMAND):\n";
  PrintFlags(GlobalFlags(), out);
  out << "\nWithout --daemon: $STRONGHOLD_DAEMON, else "
         "$XDG_RUNTIME_DIR/stronghold/strongholdd.sock\nwhen XDG_RUNTIME_DIR "
         "is set, else /run/stronghold/strongholdd.sock.\n"
      << "\nFlags take a value as --name VALUE or --name=VALUE.\nRun '"
      << kProgram << " COMMAND --help' for a command's flags.\n"
      << "Exit codes: 0 ok; 1 error from the daemon, or a watched job that did "
         "not succeed;\n2 usage error.\n";
}

void PrintCommandUsage(const Command& command, std::ostream& out) {
  out << "Usage: " << kProgram << " [global flags] " << command.name;
  if (!command.args_usage.empty()) out << " " << command.args_usage;
  if (!command.flags.empty()) out << " [flags]";
  out << "\n\n" << command.summary << ".\n";
  if (!command.args_usage.empty()) {
    out << "JOB is a job id such as 7 or jobs/7.\n";
  }
  if (!command.flags.empty()) {
    out << "\nFlags:\n";
    PrintFlags(command.flags, out);
  }
  out << "\nGlobal flags:\n";
  PrintFlags(GlobalFlags(), out);
}

const Command* FindCommand(absl::string_view name) {
  for (const Command& command : AllCommands()) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

// The global flags after merging those before and after COMMAND.
struct GlobalOptions {
  std::optional<std::string> daemon;
  OutputFormat output = OutputFormat::kTable;
  absl::Duration timeout = absl::Seconds(kDefaultTimeoutS);
  SecurityFlags security;
};

absl::StatusOr<GlobalOptions> ParseGlobalOptions(const ParsedArgs& before,
                                                 const ParsedArgs& after) {
  auto get = [&](absl::string_view name)
      -> absl::StatusOr<std::optional<std::string>> {
    if (before.Has(name) && after.Has(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, " given more than once"));
    }
    return after.Has(name) ? after.Get(name) : before.Get(name);
  };
  GlobalOptions options;
  ASSIGN_OR_RETURN(options.daemon, get("daemon"));
  ASSIGN_OR_RETURN(std::optional<std::string> output, get("output"));
  if (output.has_value()) {
    if (*output == "json") {
      options.output = OutputFormat::kJson;
    } else if (*output != "table") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--output: invalid value \"", *output, "\" (expected table|json)"));
    }
  }
  ASSIGN_OR_RETURN(options.security.tls_ca, get("tls-ca"));
  ASSIGN_OR_RETURN(options.security.tls_cert, get("tls-cert"));
  ASSIGN_OR_RETURN(options.security.tls_key, get("tls-key"));
  ASSIGN_OR_RETURN(options.security.token_file, get("token-file"));
  ASSIGN_OR_RETURN(std::optional<std::string> timeout, get("timeout"));
  if (timeout.has_value()) {
    double seconds = 0;
    if (!absl::SimpleAtod(*timeout, &seconds) || !std::isfinite(seconds) ||
        seconds < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--timeout: invalid value \"", *timeout,
                       "\" (expected seconds, e.g. 30 or 2.5; 0 = none)"));
    }
    options.timeout =
        seconds == 0 ? absl::InfiniteDuration() : absl::Seconds(seconds);
  }
  return options;
}

int UsageError(const absl::Status& status, std::ostream& err,
               absl::string_view command = "") {
  err << kProgram << ": " << status.message() << "\n"
      << "Run '" << kProgram << (command.empty() ? "" : " ") << command
      << " --help' for usage.\n";
  return 2;
}

}  // namespace

void ReportError(const absl::Status& status, const std::string& address,
                 std::ostream& err, const ChannelSecurity& security) {
  err << kProgram << ": " << absl::StatusCodeToString(status.code()) << ": ";
  if (std::optional<std::string> advice =
          SecurityAdvice(status, address, security)) {
    err << TerminalSafe(*advice) << "\n";
    return;
  }
  const std::string message = TerminalSafe(status.message());
  if (status.code() != absl::StatusCode::kUnavailable) {
    err << message << "\n";
    return;
  }
  if (IsInterruptedStream(status)) {
    err << "lost the connection to strongholdd at " << address << " ("
        << message << ")\n";
    return;
  }
  const std::optional<std::string> socket = UnixSocketPath(address);
  err << "cannot reach strongholdd at " << address << " (" << message << ")\n"
      << "Is the daemon running? Start it with\n";
  if (socket.has_value() || address.find(':') == std::string::npos) {
    err << "  strongholdd --socket " << socket.value_or("PATH")
        << " --state_dir DIR\n";
  } else {
    err << "  strongholdd --listen " << address << " --state_dir DIR\n";
  }
  err << "or, where it is installed as a service,\n"
      << "  systemctl start strongholdd\n"
      << "or point " << kProgram
      << " at a running daemon with --daemon ADDRESS or $STRONGHOLD_DAEMON.\n";
}

int RunCli(const std::vector<std::string>& args, const CliOptions& options) {
  std::ostream& out = *options.out;
  std::ostream& err = *options.err;
  absl::StatusOr<ParsedArgs> global = ParseArgs(
      args, GlobalFlags(), {.stop_at_positional = true, .context = ""});
  if (!global.ok()) return UsageError(global.status(), err);
  if (global->positional().empty()) {
    if (global->Has("help")) {
      PrintUsage(out);
      return 0;
    }
    PrintUsage(err);
    return 2;
  }

  std::string name = global->positional()[0];
  std::vector<std::string> rest = global->rest();
  if (name == "help") {
    if (rest.empty()) {
      PrintUsage(out);
      return 0;
    }
    name = rest[0];
    rest = {"--help"};
  }
  const Command* command = FindCommand(name);
  if (command == nullptr) {
    return UsageError(absl::InvalidArgumentError(
                          absl::StrCat("unknown command \"", name, "\"")),
                      err);
  }

  std::vector<FlagSpec> flags = command->flags;
  flags.insert(flags.end(), GlobalFlags().begin(), GlobalFlags().end());
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(
      rest, flags, {.context = absl::StrCat("command ", command->name)});
  if (!parsed.ok()) return UsageError(parsed.status(), err, command->name);
  if (parsed->Has("help") || global->Has("help")) {
    PrintCommandUsage(*command, out);
    return 0;
  }
  if (parsed->positional().size() != command->positional_args) {
    const std::string expected =
        command->args_usage.empty()
            ? "no arguments"
            : absl::StrCat("one argument: ", command->args_usage);
    return UsageError(absl::InvalidArgumentError(
                          absl::StrCat(command->name, " takes ", expected,
                                       ", got ", parsed->positional().size())),
                      err, command->name);
  }
  absl::StatusOr<GlobalOptions> global_options =
      ParseGlobalOptions(*global, *parsed);
  if (!global_options.ok()) {
    return UsageError(global_options.status(), err, command->name);
  }
  absl::StatusOr<std::string> address =
      ResolveDaemonAddress(global_options->daemon, options.address_env);
  if (!address.ok()) return UsageError(address.status(), err, command->name);
  SecurityFlags security_flags = global_options->security;
  security_flags.token_env = options.token_env;
  absl::StatusOr<ChannelSecurity> security =
      ResolveChannelSecurity(security_flags, *address);
  if (!security.ok()) return UsageError(security.status(), err, command->name);
  absl::StatusOr<Action> action = command->parse(*parsed);
  if (!action.ok()) return UsageError(action.status(), err, command->name);

  DaemonClient client({.address = *address,
                       .timeout = global_options->timeout,
                       .security = *security});
  CommandContext context{
      .client = &client,
      .output = global_options->output,
      .out = &out,
      .err = &err,
      .interactive = options.out_is_terminal,
      .connect = [&](const std::string& other)
          -> absl::StatusOr<std::unique_ptr<DaemonClient>> {
        ASSIGN_OR_RETURN(const std::string target,
                         ResolveDaemonAddress(other, options.address_env));
        ASSIGN_OR_RETURN(ChannelSecurity other_security,
                         ResolveChannelSecurity(security_flags, target));
        return std::make_unique<DaemonClient>(
            DaemonClientOptions{.address = target,
                                .timeout = global_options->timeout,
                                .security = std::move(other_security)});
      }};
  absl::StatusOr<int> exit_code = (*action)(context);
  out.flush();
  if (!exit_code.ok()) {
    ReportError(exit_code.status(), *address, err, *security);
    return 1;
  }
  return *exit_code;
}

}  // namespace stronghold::client
