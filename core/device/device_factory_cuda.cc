// CreateDevice for the CUDA binaries: "cpu" or "cuda:N".
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/device/cuda_device.h"
#include "core/device/device.h"
#include "core/device/host_device.h"

namespace stronghold::core {

absl::StatusOr<std::unique_ptr<Device>> CreateDevice(const std::string& name,
                                                     int64_t budget_bytes) {
  if (name == "cpu") {
    return std::unique_ptr<Device>(
        new HostDevice(budget_bytes > 0 ? budget_bytes : INT64_MAX));
  }
  int index = -1;
  if (name.rfind("cuda:", 0) == 0 && absl::SimpleAtoi(name.substr(5), &index)) {
    return CreateCudaDevice(index, budget_bytes);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--device: expected cpu or cuda:N, got \"", name, "\""));
}

}  // namespace stronghold::core
