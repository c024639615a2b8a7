// A file descriptor that closes itself: one owner, moved not copied, so a
// descriptor handed from the daemon's path confinement to a job's trainer is
// closed exactly once whichever way the job goes.
#ifndef STRONGHOLD_CORE_UTIL_UNIQUE_FD_H_
#define STRONGHOLD_CORE_UTIL_UNIQUE_FD_H_

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace stronghold::core {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership: the caller closes it.
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }
  // A second descriptor of the same open file (close-on-exec), or an
  // invalid one with errno set.
  static UniqueFd Dup(int fd) {
    return UniqueFd(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  }

 private:
  int fd_ = -1;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_UTIL_UNIQUE_FD_H_
