#include "core/checkpoint/checkpoint_files.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace stronghold::core {

std::string CheckpointName(int64_t step) {
  return absl::StrFormat("step-%06d", step);
}

std::optional<int64_t> CheckpointStep(const std::string& name) {
  absl::string_view digits = name;
  if (digits.rfind("step-", 0) != 0) return std::nullopt;
  digits.remove_prefix(5);
  int64_t step = 0;
  if (digits.size() < 6 ||
      !std::all_of(digits.begin(), digits.end(),
                   [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(digits, &step)) {
    return std::nullopt;
  }
  return step;
}

}  // namespace stronghold::core
