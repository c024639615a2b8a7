#include "client/human_format.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace stronghold::client {

std::string HumanBytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB",
                                           "TiB", "PiB", "EiB"};
  if (bytes > -1024 && bytes < 1024) return absl::StrCat(bytes, " B");
  double value = static_cast<double>(bytes);
  int unit = -1;
  // Stop before 1023.95 would round up to "1024.0".
  while (std::abs(value) >= 1023.95 && unit + 1 < 6) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

std::string HumanCount(double count) {
  static constexpr struct {
    double scale;
    const char* suffix;
  } kScales[] = {{1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "K"}};
  for (const auto& scale : kScales) {
    if (std::abs(count) >= scale.scale) {
      return absl::StrFormat("%.1f%s", count / scale.scale, scale.suffix);
    }
  }
  return absl::StrFormat("%.0f", count);
}

std::string FormatTimestamp(const google::protobuf::Timestamp& time) {
  if (time.seconds() == 0 && time.nanos() == 0) return "-";
  const absl::Time t =
      absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(time.nanos());
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", t, absl::LocalTimeZone());
}

std::string StateName(v1::Job::State state) {
  if (state == v1::Job::STATE_UNSPECIFIED) return "-";
  const std::string& name = v1::Job::State_Name(state);
  return name.empty() ? absl::StrCat(static_cast<int>(state)) : name;
}

bool IsTerminal(v1::Job::State state) {
  return state == v1::Job::SUCCEEDED || state == v1::Job::FAILED ||
         state == v1::Job::CANCELLED;
}

}  // namespace stronghold::client
