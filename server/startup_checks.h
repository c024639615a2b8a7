// Start-up checks of the host: the locked-memory limit (pinned host buffers),
// io_uring (the NVMe tier's fast path) and the compute device. Each check
// yields one plain sentence saying what was found and, when something is
// missing, what the daemon falls back to; main.cc logs them before serving.
// Nothing here refuses to start: every shortfall has a fallback.
#ifndef STRONGHOLD_SERVER_STARTUP_CHECKS_H_
#define STRONGHOLD_SERVER_STARTUP_CHECKS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace stronghold::server {

struct StartupNote {
  bool warning = false;  // log as a warning: the daemon runs degraded
  std::string text;
};

// RLIMIT_MEMLOCK's soft limit in bytes (UINT64_MAX for unlimited) against the
// compute device: pinning matters only for CUDA devices.
StartupNote DescribeMemlock(uint64_t soft_limit_bytes,
                            absl::string_view device);

// The io_uring probe's result: 0 when a ring could be set up, else its errno.
StartupNote DescribeIoUring(int error);

// What --device resolves to. `gpu_present`: /dev/nvidia0 exists.
StartupNote DescribeDevice(absl::string_view requested,
                           absl::string_view device, bool gpu_present);

// Sets up (and closes) a tiny io_uring: 0, or the errno of io_uring_setup.
int ProbeIoUring();

// Runs every check on this host.
std::vector<StartupNote> RunStartupChecks(absl::string_view requested_device,
                                          absl::string_view device);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_STARTUP_CHECKS_H_
