// A job's private directory for its NVMe tier files, under one of its
// offload.ssd_dirs:
//
//   <ssd_dir>/stronghold-job-<job id>-<12 random hex digits>/<file>
//
// Created 0700 with mkdirat, which fails if the name exists: never a
// directory someone prepared, never one reached through a symlink planted
// at its name. Its files are created O_CREAT | O_EXCL | O_NOFOLLOW, so a
// symlink at a file's name is neither followed nor truncated (there can be
// none in a new 0700 directory; the flags refuse one anyway). The directory
// is held flock(LOCK_EX) while it exists and is removed, files first, when
// the TierDir is destroyed (the job ends, however it ends).
//
// A process killed with its tier open (kill -9, a crash, the OOM killer)
// leaves the directory behind, unlocked: RemoveStaleTierDirs, which the
// daemon runs over its ssd roots at start-up, removes every such directory
// whose lock is free, and leaves those of live processes (another daemon
// sharing the drive) alone.
//
// Thread safety: a TierDir is used by one thread at a time.
#ifndef STRONGHOLD_STORAGE_TIER_DIR_H_
#define STRONGHOLD_STORAGE_TIER_DIR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stronghold::storage {

inline constexpr char kTierDirPrefix[] = "stronghold-job-";

class TierDir {
 public:
  // Creates a directory for job `job_id` under the directory `parent_fd`
  // (not taken: a duplicate is kept to remove it later); `parent_path`
  // names the parent in paths and messages. Errors name the parent and the
  // errno (NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED for ENOSPC).
  static absl::StatusOr<std::unique_ptr<TierDir>> Create(
      int parent_fd, const std::string& parent_path, int64_t job_id);
  // Opens `parent_path` (a directory; its path is the caller's) and creates
  // the directory under it, as above.
  static absl::StatusOr<std::unique_ptr<TierDir>> Create(
      const std::string& parent_path, int64_t job_id);
  ~TierDir();
  TierDir(const TierDir&) = delete;
  TierDir& operator=(const TierDir&) = delete;

  // Creates file `name` in the directory: O_RDWR | O_CREAT | O_EXCL |
  // O_NOFOLLOW | O_CLOEXEC | `extra_flags`, mode 0600. Returns the
  // descriptor (the caller's to close) or -errno. Removed with the directory.
  int CreateFile(const std::string& name, int extra_flags);
  // Removes a file CreateFile made (for a retry with other flags).
  void RemoveFile(const std::string& name);

  // <parent_path>/<the directory's name>
  const std::string& path() const { return path_; }

 private:
  TierDir() = default;

  // Constant after Create.
  int parent_fd_ = -1;  // a duplicate of the caller's
  int dir_fd_ = -1;     // the directory, flock'ed
  std::string name_;
  std::string path_;
  std::vector<std::string> files_;  // created in it
};

// Removes every tier directory (kTierDirPrefix, a job id, 12 hex digits)
// at most `max_depth` directories below `root_fd` whose lock is free, with
// the regular files in it; follows no symlink. `root_path` names the root
// in messages. Returns how many were removed; errors of single entries are
// logged and skipped, an error opening the root is returned.
absl::StatusOr<int> RemoveStaleTierDirs(int root_fd,
                                        const std::string& root_path,
                                        int max_depth = 8);

// Whether `name` is a tier directory's name.
bool IsTierDirName(absl::string_view name);

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_TIER_DIR_H_
