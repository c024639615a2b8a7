// CreateDevice for binaries built without CUDA: the host device only.
#include "absl/strings/str_cat.h"
#include "core/device/device.h"
#include "core/device/host_device.h"

namespace stronghold::core {

absl::StatusOr<std::unique_ptr<Device>> CreateDevice(const std::string& name,
                                                     int64_t budget_bytes) {
  if (name == "cpu") {
    return std::unique_ptr<Device>(
        new HostDevice(budget_bytes > 0 ? budget_bytes : INT64_MAX));
  }
  return absl::UnimplementedError(absl::StrCat(
      "device \"", name,
      "\": this binary was built without CUDA (use strongholdd_cuda)"));
}

}  // namespace stronghold::core
