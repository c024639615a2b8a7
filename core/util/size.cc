#include "core/util/size.h"

#include <cstdint>
#include <limits>

#include "absl/numeric/int128.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace stronghold::core {
namespace {

constexpr int kMaxDigits = 20;  // keeps mantissa * 1024^4 well inside 128 bits

struct Suffix {
  const char* name;
  uint64_t multiplier;
};

constexpr uint64_t kKi = 1024;
constexpr Suffix kSuffixes[] = {
    {"", 1},
    {"B", 1},
    {"KiB", kKi},
    {"MiB", kKi* kKi},
    {"GiB", kKi* kKi* kKi},
    {"TiB", kKi* kKi* kKi* kKi},
    {"KB", 1000},
    {"MB", 1000 * 1000},
    {"GB", 1000 * 1000 * 1000},
    {"TB", uint64_t{1000} * 1000 * 1000 * 1000},
};

}  // namespace

absl::StatusOr<int64_t> ParseSize(absl::string_view flag,
                                  absl::string_view text) {
  auto error = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": invalid size \"", text, "\": ", why,
                     " (give bytes, or a number with KiB MiB GiB TiB or KB MB "
                     "GB TB, e.g. 512MiB or 1.5GiB)"));
  };

  const absl::string_view s = absl::StripAsciiWhitespace(text);
  absl::uint128 mantissa = 0;
  int digits = 0;
  int fraction_digits = 0;
  bool seen_dot = false;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (absl::ascii_isdigit(c)) {
      if (++digits > kMaxDigits) return error("too many digits");
      mantissa = mantissa * 10 + static_cast<unsigned>(c - '0');
      if (seen_dot) ++fraction_digits;
    } else if (c == '.' && !seen_dot) {
      seen_dot = true;
    } else {
      break;
    }
  }
  if (digits == 0) return error("expected a non-negative number");
  if (seen_dot && fraction_digits == 0) return error("digits must follow '.'");

  const absl::string_view suffix =
      absl::StripLeadingAsciiWhitespace(s.substr(i));
  const Suffix* match = nullptr;
  for (const Suffix& candidate : kSuffixes) {
    if (absl::EqualsIgnoreCase(suffix, candidate.name)) match = &candidate;
  }
  if (match == nullptr) {
    return error(absl::StrCat("unknown unit \"", suffix, "\""));
  }
  if (fraction_digits > 0 && match->multiplier == 1) {
    return error("a byte count must be a whole number");
  }

  absl::uint128 scale = 1;
  for (int d = 0; d < fraction_digits; ++d) scale *= 10;
  const absl::uint128 bytes =
      (mantissa * match->multiplier + scale / 2) / scale;  // round to nearest
  if (bytes > absl::uint128(std::numeric_limits<int64_t>::max())) {
    return error("too large");
  }
  return static_cast<int64_t>(absl::Uint128Low64(bytes));
}

}  // namespace stronghold::core
