// A small command-line parser for `strongholdctl [global flags] COMMAND
// [args/flags]`. absl flags are process-global and awkward for subcommands
// whose flag sets differ, so each command declares its flags as FlagSpecs and
// this parser checks the arguments against them.
//
// Accepted forms: `--name value`, `--name=value`, `--switch`, `-h` (= --help
// when declared), and `--` to end flags. Underscores in flag names are read as
// dashes (`--seq_len` == `--seq-len`). A flag that takes a value always
// consumes the next argument, so `--lr -1` works.
#ifndef STRONGHOLD_CLIENT_ARG_PARSER_H_
#define STRONGHOLD_CLIENT_ARG_PARSER_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace stronghold::client {

// One flag a command accepts.
struct FlagSpec {
  std::string name;         // without the leading "--", e.g. "seq-len"
  std::string value_name;   // e.g. "N" or "SIZE"; empty for a switch
  std::string help;         // one line for --help
  bool repeatable = false;  // may be given several times; values keep order
};

struct ParseOptions {
  // Stop at the first positional argument (the command name): it goes into
  // positional() and everything after it into rest(). Used for the global
  // flags that precede the command.
  bool stop_at_positional = false;
  // Names the context in errors, e.g. "command submit".
  std::string context;
};

// The result of parsing: flag values by name, and positional arguments.
class ParsedArgs {
 public:
  bool Has(absl::string_view name) const;
  // The value of a flag given once (the last one of a repeatable flag);
  // nullopt when absent. Use Has() for switches.
  std::optional<std::string> Get(absl::string_view name) const;
  // Every value of a repeatable flag, in the order given.
  std::vector<std::string> GetAll(absl::string_view name) const;

  const std::vector<std::string>& positional() const { return positional_; }
  // With ParseOptions::stop_at_positional: the arguments after the first
  // positional one, not parsed.
  const std::vector<std::string>& rest() const { return rest_; }

 private:
  friend absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string>,
                                              absl::Span<const FlagSpec>,
                                              const ParseOptions&);

  std::map<std::string, std::vector<std::string>, std::less<>> flags_;
  std::vector<std::string> positional_;
  std::vector<std::string> rest_;
};

// Parses `args` against `flags`. Errors (INVALID_ARGUMENT) name the flag:
// unknown flags, a missing value, a value given to a switch, a
// non-repeatable flag given twice.
absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args,
                                     absl::Span<const FlagSpec> flags,
                                     const ParseOptions& options);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_ARG_PARSER_H_
