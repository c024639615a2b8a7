#include "storage/tier_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace stronghold::storage {
namespace {

constexpr int kRandomHexDigits = 12;

absl::Status DirError(absl::string_view what, absl::string_view path, int err) {
  const absl::StatusCode code =
      err == ENOENT || err == ENOTDIR  ? absl::StatusCode::kNotFound
      : err == EACCES || err == EPERM  ? absl::StatusCode::kPermissionDenied
      : err == ENOSPC || err == EDQUOT ? absl::StatusCode::kResourceExhausted
                                       : absl::StatusCode::kInternal;
  return absl::Status(code, absl::StrCat("cannot ", what, " ", path, ": ",
                                         strerror(err), " (errno ", err, ")"));
}

std::string RandomHex() {
  unsigned char bytes[kRandomHexDigits / 2] = {};
  if (getrandom(bytes, sizeof(bytes), 0) !=
      static_cast<ssize_t>(sizeof(bytes))) {
    // Uniqueness, not secrecy: mkdirat refuses a name that exists anyway.
    const uint64_t mixed =
        static_cast<uint64_t>(getpid()) * 0x9E3779B97F4A7C15ull ^
        static_cast<uint64_t>(reinterpret_cast<uintptr_t>(&bytes));
    std::memcpy(bytes, &mixed, sizeof(bytes));
  }
  std::string hex;
  for (unsigned char b : bytes) absl::StrAppendFormat(&hex, "%02x", b);
  return hex;
}

// Removes the tier directory `name` under `parent_fd` unless a live
// process holds its lock. True if it is gone.
bool RemoveIfStale(int parent_fd, const std::string& name,
                   const std::string& path) {
  const int fd = openat(parent_fd, name.c_str(),
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    PLOG(WARNING) << "cannot open " << path
                  << " to check whether it is a leftover";
    return false;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    LOG(INFO) << path << " belongs to a running process; left alone";
    close(fd);
    return false;
  }
  DIR* dir = fdopendir(fd);  // takes fd
  if (dir == nullptr) {
    close(fd);
    return false;
  }
  while (const dirent* e = readdir(dir)) {
    const std::string entry = e->d_name;
    if (entry == "." || entry == "..") continue;
    struct stat st;
    if (fstatat(dirfd(dir), entry.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))) {
      if (unlinkat(dirfd(dir), entry.c_str(), 0) != 0) {
        PLOG(WARNING) << "cannot remove " << path << "/" << entry;
      }
    } else {
      LOG(WARNING) << path << "/" << entry
                   << " is not a tier file; left in place";
    }
  }
  closedir(dir);  // and its lock
  if (unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0) {
    PLOG(WARNING) << "cannot remove " << path;
    return false;
  }
  return true;
}

int Scan(int dir_fd, const std::string& path, int depth_left) {
  const int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    close(fd);
    return 0;
  }
  std::vector<std::string> tiers, subdirs;
  while (const dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (fstatat(dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISDIR(st.st_mode)) {
      continue;  // files, and symlinks, which are never followed
    }
    (IsTierDirName(name) ? tiers : subdirs).push_back(name);
  }
  int removed = 0;
  for (const std::string& name : tiers) {
    removed +=
        RemoveIfStale(dirfd(dir), name, absl::StrCat(path, "/", name)) ? 1 : 0;
  }
  if (depth_left > 0) {
    for (const std::string& name : subdirs) {
      const int child = openat(dirfd(dir), name.c_str(),
                               O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child < 0) continue;
      removed += Scan(child, absl::StrCat(path, "/", name), depth_left - 1);
      close(child);
    }
  }
  closedir(dir);
  return removed;
}

}  // namespace

bool IsTierDirName(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kTierDirPrefix)) return false;
  const size_t dash = name.find('-');
  if (dash == 0 || dash == absl::string_view::npos) return false;
  for (char c : name.substr(0, dash)) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  const absl::string_view random = name.substr(dash + 1);
  if (random.size() != kRandomHexDigits) return false;
  for (char c : random) {
    if (!absl::ascii_isxdigit(c) || absl::ascii_isupper(c)) return false;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<TierDir>> TierDir::Create(
    const std::string& parent_path, int64_t job_id) {
  const int fd = open(parent_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return DirError("open the directory", parent_path, errno);
  absl::StatusOr<std::unique_ptr<TierDir>> dir =
      Create(fd, parent_path, job_id);
  close(fd);
  return dir;
}

absl::StatusOr<std::unique_ptr<TierDir>> TierDir::Create(
    int parent_fd, const std::string& parent_path, int64_t job_id) {
  std::unique_ptr<TierDir> dir(new TierDir());
  dir->parent_fd_ = fcntl(parent_fd, F_DUPFD_CLOEXEC, 0);
  if (dir->parent_fd_ < 0)
    return DirError("use the directory", parent_path, errno);
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string name = absl::StrCat(kTierDirPrefix, job_id, "-", RandomHex());
    if (mkdirat(dir->parent_fd_, name.c_str(), 0700) != 0) {
      if (errno == EEXIST) continue;
      return DirError("create a tier directory in", parent_path, errno);
    }
    const int fd = openat(dir->parent_fd_, name.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      return DirError("open the tier directory in", parent_path, errno);
    // Locked before anything goes in; a scan that removed it in the moment
    // between (another process's start-up) shows as another inode here.
    struct stat held, named;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &held) != 0 ||
        fstatat(dir->parent_fd_, name.c_str(), &named, AT_SYMLINK_NOFOLLOW) !=
            0 ||
        held.st_ino != named.st_ino || held.st_dev != named.st_dev) {
      close(fd);
      continue;
    }
    dir->dir_fd_ = fd;
    dir->name_ = std::move(name);
    dir->path_ = absl::StrCat(parent_path, "/", dir->name_);
    return dir;
  }
  return absl::InternalError(absl::StrCat("cannot create a tier directory in ",
                                          parent_path, " after 8 attempts"));
}

TierDir::~TierDir() {
  for (const std::string& file : files_) {
    if (unlinkat(dir_fd_, file.c_str(), 0) != 0 && errno != ENOENT) {
      PLOG(WARNING) << "cannot remove " << path_ << "/" << file;
    }
  }
  if (dir_fd_ >= 0 && unlinkat(parent_fd_, name_.c_str(), AT_REMOVEDIR) != 0) {
    PLOG(WARNING) << "cannot remove " << path_;
  }
  if (dir_fd_ >= 0) close(dir_fd_);
  if (parent_fd_ >= 0) close(parent_fd_);
}

int TierDir::CreateFile(const std::string& name, int extra_flags) {
  const int fd = openat(
      dir_fd_, name.c_str(),
      O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | extra_flags, 0600);
  if (fd < 0) return -errno;
  files_.push_back(name);
  return fd;
}

void TierDir::RemoveFile(const std::string& name) {
  unlinkat(dir_fd_, name.c_str(), 0);
}

absl::StatusOr<int> RemoveStaleTierDirs(int root_fd,
                                        const std::string& root_path,
                                        int max_depth) {
  const int fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return DirError("read the directory", root_path, errno);
  close(fd);
  return Scan(root_fd, root_path, max_depth);
}

}  // namespace stronghold::storage
