// Byte sizes on the command line: "8GiB", "512MiB", "1.5GiB", "4GB" or plain
// bytes "1073741824". Binary suffixes (KiB..TiB) are powers of 1024, decimal
// ones (KB..TB) powers of 1000, because both are common and mean different
// amounts; "B" means bytes. Suffixes are case-insensitive ("gib" == "GiB").
#ifndef STRONGHOLD_CORE_UTIL_SIZE_H_
#define STRONGHOLD_CORE_UTIL_SIZE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stronghold::core {

// Parses `text` as a size in bytes for the flag `--<flag>`. Fractions are
// allowed with a suffix and rounded to the nearest byte; plain byte counts
// must be whole. Errors (INVALID_ARGUMENT) name the flag and the bad text.
absl::StatusOr<int64_t> ParseSize(absl::string_view flag,
                                  absl::string_view text);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_UTIL_SIZE_H_
