// Every BlockDevice implementation, by name, for the parameterized suites
// (block_device_conformance_test, extent_store_test): a new backend is added
// here once and is then held to the whole contract.
#ifndef STRONGHOLD_TESTS_STORAGE_TEST_DEVICES_H_
#define STRONGHOLD_TESTS_STORAGE_TEST_DEVICES_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "storage/block_device.h"
#include "storage/block_device_factory.h"
#include "storage/fault_injecting_block_device.h"
#include "storage/memory_block_device.h"

namespace stronghold::storage::testing {

// Small blocks and a shallow queue, so that modest test data is split into
// many pieces, striped over files and queued beyond the ring's depth.
inline constexpr int64_t kTestBlockBytes = 64 << 10;
inline constexpr int kTestQueueDepth = 4;

struct DeviceFactory {
  std::string name;
  // Opens a device of at least `capacity` bytes with its files in `dir`.
  std::function<absl::StatusOr<std::unique_ptr<BlockDevice>>(
      const std::string& dir, int64_t capacity)>
      open;
};

inline DeviceFactory FileDevice(std::string name, FileBackend backend,
                                int files) {
  return {std::move(name),
          [backend, files](const std::string& dir, int64_t capacity) {
            FileBlockDeviceOptions options(std::vector<std::string>(files, dir),
                                           capacity);
            options.block_bytes = kTestBlockBytes;
            options.queue_depth = kTestQueueDepth;
            options.backend = backend;
            return OpenFileBlockDevice(options);
          }};
}

inline std::vector<DeviceFactory> AllBlockDevices() {
  return {
      {"memory",
       [](const std::string&,
          int64_t capacity) -> absl::StatusOr<std::unique_ptr<BlockDevice>> {
         return NewMemoryBlockDevice(MemoryBlockDeviceOptions(capacity));
       }},
      FileDevice("pread", FileBackend::kPread, 1),
      FileDevice("pread_striped3", FileBackend::kPread, 3),
      FileDevice("io_uring", FileBackend::kIoUring, 1),
      FileDevice("io_uring_striped3", FileBackend::kIoUring, 3),
      // The wrapper with no fault armed must be indistinguishable.
      {"faulty_io_uring",
       [](const std::string& dir,
          int64_t capacity) -> absl::StatusOr<std::unique_ptr<BlockDevice>> {
         auto base =
             FileDevice("", FileBackend::kIoUring, 2).open(dir, capacity);
         if (!base.ok()) return base.status();
         return std::unique_ptr<BlockDevice>(
             new FaultInjectingBlockDevice(*std::move(base)));
       }},
  };
}

inline std::string DeviceName(const DeviceFactory& factory) {
  return factory.name;
}

// A fresh directory under the test's temporary directory.
inline std::string MakeTempDir(const std::string& label) {
  const char* root = std::getenv("TEST_TMPDIR");
  static int counter = 0;
  const std::string dir = absl::StrCat(root != nullptr ? root : "/tmp", "/",
                                       label, "-", getpid(), "-", counter++);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace stronghold::storage::testing

#endif  // STRONGHOLD_TESTS_STORAGE_TEST_DEVICES_H_
