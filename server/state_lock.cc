#include "server/state_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace stronghold::server {

namespace {

// The pid the holder wrote, or "unknown" (it may not have written it yet).
std::string HolderPid(int fd) {
  char buf[32] = {};
  const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  int pid = 0;
  if (n <= 0 || !absl::SimpleAtoi(absl::StripAsciiWhitespace(buf), &pid) ||
      pid <= 0) {
    return "unknown";
  }
  return absl::StrCat(pid);
}

}  // namespace

absl::StatusOr<StateDirLock> StateDirLock::Acquire(
    const std::string& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--state_dir: cannot create ", state_dir, ": ", ec.message()));
  }
  const std::string path =
      (std::filesystem::path(state_dir) / kStateLockFile).string();
  // O_NOFOLLOW: a symlink planted in the state directory cannot make the
  // daemon truncate another file.
  const int fd =
      open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--state_dir: cannot open ", path, ": ", std::strerror(errno)));
  }
  int r;
  do {
    r = flock(fd, LOCK_EX | LOCK_NB);
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    const int error = errno;
    const std::string holder = HolderPid(fd);
    close(fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--state_dir: ", state_dir, " is in use by another strongholdd (pid ",
          holder, ", holding ", path, "); one daemon per state directory"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "--state_dir: cannot lock ", path, ": ", std::strerror(error)));
  }
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) !=
                                   static_cast<ssize_t>(pid.size())) {
    const absl::Status s = absl::FailedPreconditionError(absl::StrCat(
        "--state_dir: cannot write ", path, ": ", std::strerror(errno)));
    close(fd);
    return s;
  }
  return StateDirLock(path, fd);
}

StateDirLock::StateDirLock(StateDirLock&& other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

StateDirLock::~StateDirLock() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace stronghold::server
