#include "client/arg_parser.h"

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace stronghold::client {
namespace {

const FlagSpec* FindFlag(absl::Span<const FlagSpec> flags,
                         absl::string_view name) {
  for (const FlagSpec& flag : flags) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

}  // namespace

bool ParsedArgs::Has(absl::string_view name) const {
  return flags_.find(name) != flags_.end();
}

std::optional<std::string> ParsedArgs::Get(absl::string_view name) const {
  auto it = flags_.find(name);
  if (it == flags_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ParsedArgs::GetAll(absl::string_view name) const {
  auto it = flags_.find(name);
  if (it == flags_.end()) return {};
  return it->second;
}

absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args,
                                     absl::Span<const FlagSpec> flags,
                                     const ParseOptions& options) {
  const std::string where =
      options.context.empty() ? "" : absl::StrCat(" for ", options.context);
  ParsedArgs parsed;
  bool flags_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const bool is_flag = !flags_ended && arg.size() > 1 && arg[0] == '-';
    if (!is_flag) {
      parsed.positional_.push_back(arg);
      if (options.stop_at_positional) {
        parsed.rest_.assign(args.begin() + i + 1, args.end());
        break;
      }
      continue;
    }
    if (arg == "--") {
      flags_ended = true;
      continue;
    }

    std::string name;
    std::optional<std::string> inline_value;
    if (arg == "-h") {
      name = "help";
    } else if (absl::StartsWith(arg, "--")) {
      const size_t eq = arg.find('=');
      name =
          arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos) inline_value = arg.substr(eq + 1);
      std::replace(name.begin(), name.end(), '_', '-');
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag ", arg, where, " (flags start with --)"));
    }

    const FlagSpec* spec = FindFlag(flags, name);
    if (spec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, where));
    }
    std::vector<std::string>& values = parsed.flags_[name];
    if (!values.empty() && !spec->repeatable) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, " given more than once"));
    }
    if (spec->value_name.empty()) {  // a switch
      if (inline_value.has_value()) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " takes no value"));
      }
      values.push_back("");
      continue;
    }
    if (inline_value.has_value()) {
      values.push_back(*inline_value);
    } else if (i + 1 < args.size()) {
      values.push_back(args[++i]);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, " needs a value (--", name, " ",
                       spec->value_name, ")"));
    }
  }
  return parsed;
}

}  // namespace stronghold::client
