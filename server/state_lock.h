// One daemon per state directory. Two daemons on one --state_dir would both
// queue and run the same jobs and write the same records and checkpoints, so
// the daemon takes an exclusive flock(2) on <state_dir>/strongholdd.lock
// before anything else touches the directory and holds it for its life. The
// kernel releases the lock when the process ends however it ends (kill -9
// included), so a stale lock file never blocks a start. The holder's pid is
// written into the file after locking so that a refused daemon can name it.
//
// Thread safety: a StateDirLock is owned by the daemon's main thread.
#ifndef STRONGHOLD_SERVER_STATE_LOCK_H_
#define STRONGHOLD_SERVER_STATE_LOCK_H_

#include <string>

#include "absl/status/statusor.h"

namespace stronghold::server {

class StateDirLock {
 public:
  // Creates `state_dir` if needed and locks it. FAILED_PRECONDITION naming
  // the other daemon's pid when it holds the lock; the OS error, naming the
  // path, when the directory or lock file cannot be created.
  static absl::StatusOr<StateDirLock> Acquire(const std::string& state_dir);

  StateDirLock(StateDirLock&& other) noexcept;
  StateDirLock& operator=(StateDirLock&&) = delete;
  ~StateDirLock();  // releases the lock (the file stays)

  const std::string& path() const { return path_; }

 private:
  StateDirLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

// The lock file's name inside the state directory.
inline constexpr char kStateLockFile[] = "strongholdd.lock";

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_STATE_LOCK_H_
