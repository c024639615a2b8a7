#include "server/startup_checks.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace stronghold::server {

namespace {

std::string HumanBytes(uint64_t bytes) {
  if (bytes >= (uint64_t{1} << 30)) return absl::StrCat(bytes >> 30, " GiB");
  if (bytes >= (uint64_t{1} << 20)) return absl::StrCat(bytes >> 20, " MiB");
  if (bytes >= (uint64_t{1} << 10)) return absl::StrCat(bytes >> 10, " KiB");
  return absl::StrCat(bytes, " bytes");
}

}  // namespace

StartupNote DescribeMemlock(uint64_t soft_limit_bytes,
                            absl::string_view device) {
  if (soft_limit_bytes == std::numeric_limits<uint64_t>::max()) {
    return {false,
            "RLIMIT_MEMLOCK is unlimited: host staging buffers can be pinned"};
  }
  const bool cuda = absl::StartsWith(device, "cuda");
  return {cuda,
          absl::StrCat(
              "RLIMIT_MEMLOCK is ", HumanBytes(soft_limit_bytes),
              ": at most that much host memory can be pinned; staging buffers "
              "beyond it fall back to pageable memory (slower host-device "
              "copies that cannot overlap compute)",
              cuda ? "" : " (no effect on the cpu device, which pins nothing)",
              ". Raise it with LimitMEMLOCK=infinity (the shipped unit does) "
              "or ulimit -l unlimited")};
}

StartupNote DescribeIoUring(int error) {
  if (error == 0)
    return {false, "io_uring is available: the NVMe tier will use it"};
  std::string why;
  switch (error) {
    case ENOSYS:
      why = "this kernel has no io_uring (older than 5.1, or built without it)";
      break;
    case EPERM:
    case EACCES:
      why =
          "io_uring is disabled here (sysctl kernel.io_uring_disabled, or a "
          "seccomp filter such as a container runtime's)";
      break;
    case ENOMEM:
      why = "the ring's memory could not be locked (RLIMIT_MEMLOCK too low)";
      break;
    default:
      why = absl::StrCat("io_uring_setup failed: ", std::strerror(error));
  }
  return {true,
          absl::StrCat("io_uring is not available: ", why,
                       "; the NVMe tier will fall back to pread/pwrite "
                       "(blocking I/O on worker threads, lower throughput)")};
}

StartupNote DescribeDevice(absl::string_view requested,
                           absl::string_view device, bool gpu_present) {
  if (requested != "auto")
    return {false, absl::StrCat("compute device: ", device)};
  if (gpu_present) {
    return {true,
            absl::StrCat(
                "--device auto: an NVIDIA GPU is present (/dev/nvidia0) but "
                "this build has no CUDA support; training falls back to the ",
                device, " device")};
  }
  return {
      false,
      absl::StrCat("--device auto: no CUDA device found; training runs on the ",
                   device, " device")};
}

int ProbeIoUring() {
#ifdef __NR_io_uring_setup
  io_uring_params params;
  std::memset(&params, 0, sizeof(params));
  const long fd = syscall(__NR_io_uring_setup, 4, &params);
  if (fd < 0) return errno;
  close(static_cast<int>(fd));
  return 0;
#else
  return ENOSYS;
#endif
}

std::vector<StartupNote> RunStartupChecks(absl::string_view requested_device,
                                          absl::string_view device) {
  std::vector<StartupNote> notes;
  rlimit limit{};
  uint64_t memlock = 0;
  if (getrlimit(RLIMIT_MEMLOCK, &limit) == 0) {
    memlock = limit.rlim_cur == RLIM_INFINITY
                  ? std::numeric_limits<uint64_t>::max()
                  : static_cast<uint64_t>(limit.rlim_cur);
  }
  notes.push_back(DescribeMemlock(memlock, device));
  notes.push_back(DescribeIoUring(ProbeIoUring()));
  notes.push_back(DescribeDevice(requested_device, device,
                                 access("/dev/nvidia0", F_OK) == 0));
  return notes;
}

}  // namespace stronghold::server
