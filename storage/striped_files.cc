#include "storage/striped_files.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace stronghold::storage {
namespace {

absl::Status OpenError(absl::string_view what, const std::string& path,
                       int err) {
  return absl::Status(
      err == ENOSPC || err == EDQUOT  ? absl::StatusCode::kResourceExhausted
      : err == ENOENT                 ? absl::StatusCode::kNotFound
      : err == EIO                    ? absl::StatusCode::kDataLoss
      : err == EACCES || err == EPERM ? absl::StatusCode::kPermissionDenied
                                      : absl::StatusCode::kInternal,
      absl::StrCat("cannot ", what, " ", path, ": ", strerror(err), " (errno ",
                   err, ")"));
}

// Free bytes on the file system of the open file `fd`.
int64_t FreeBytes(int fd) {
  struct statvfs st;
  if (fstatvfs(fd, &st) != 0) return -1;
  return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
}

}  // namespace

absl::StatusOr<std::unique_ptr<StripedFiles>> StripedFiles::Open(
    const StripedFilesOptions& options) {
  if (options.dirs.empty()) {
    return absl::InvalidArgumentError("block device: no directories given");
  }
  if (options.block_bytes <= 0 || options.block_bytes % 4096 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("block device: block size ", options.block_bytes,
                     " is not a positive multiple of 4096"));
  }
  if (options.capacity_bytes <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block device: capacity ", options.capacity_bytes, " is not positive"));
  }
  const int64_t n = static_cast<int64_t>(options.dirs.size());
  const int64_t blocks =
      (options.capacity_bytes + options.block_bytes - 1) / options.block_bytes;
  std::unique_ptr<StripedFiles> files(new StripedFiles());
  files->block_bytes_ = options.block_bytes;
  files->file_bytes_ = (blocks + n - 1) / n * options.block_bytes;
  files->direct_io_ = options.direct_io;
  if (!options.dir_fds.empty() &&
      options.dir_fds.size() != options.dirs.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block device: ", options.dir_fds.size(), " directory descriptors for ",
        options.dirs.size(), " directories"));
  }
  for (size_t i = 0; i < options.dirs.size(); ++i) {
    const std::string& dir = options.dirs[i];
    absl::StatusOr<std::unique_ptr<TierDir>> tier =
        options.dir_fds.empty()
            ? TierDir::Create(dir, options.job_id)
            : TierDir::Create(options.dir_fds[i], dir, options.job_id);
    if (!tier.ok()) return tier.status();
    files->tier_dirs_.push_back(*std::move(tier));
    TierDir& tier_dir = *files->tier_dirs_.back();
    const std::string name = absl::StrCat(options.file_name, ".", i);
    const std::string path = absl::StrCat(tier_dir.path(), "/", name);
    int fd = tier_dir.CreateFile(name, files->direct_io_ ? O_DIRECT : 0);
    if (fd == -EINVAL && files->direct_io_) {
      // tmpfs and some FUSE file systems refuse O_DIRECT (after creating
      // the file: it goes before the retry's O_EXCL).
      LOG(WARNING) << dir << " does not support O_DIRECT; the NVMe tier "
                   << "goes through the page cache there";
      files->direct_io_ = false;
      tier_dir.RemoveFile(name);
      fd = tier_dir.CreateFile(name, 0);
    }
    if (fd < 0) return OpenError("create", path, -fd);
    // Registered before the checks below so that the destructor cleans up.
    files->paths_.push_back(path);
    files->fds_.push_back(fd);
    const int rc = fallocate(fd, 0, 0, files->file_bytes_);
    if (rc != 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) {
      if (ftruncate(fd, files->file_bytes_) != 0) {
        return OpenError("size", path, errno);
      }
    } else if (rc != 0) {
      const int err = errno;
      if (err == ENOSPC || err == EDQUOT) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "cannot reserve ", files->file_bytes_, " bytes for ", path, ": ",
            strerror(err), " (errno ", err, "); ", FreeBytes(fd),
            " bytes free there, and the NVMe tier needs ",
            files->file_bytes_ * n, " bytes across ", n, " director",
            n == 1 ? "y" : "ies"));
      }
      return OpenError("preallocate", path, err);
    }
  }
  return files;
}

StripedFiles::~StripedFiles() {
  for (int fd : fds_) close(fd);
  // tier_dirs_ then remove the files and their directories.
}

std::vector<StripedFiles::FileIo> StripedFiles::SplitRequests(
    absl::Span<const IoRequest> requests) const {
  std::vector<FileIo> out;
  std::vector<Piece> pieces;
  for (const IoRequest& r : requests) {
    pieces.clear();
    Split(r.offset, r.bytes, &pieces);
    for (const Piece& p : pieces) {
      out.push_back(FileIo{0, r.op, p.file, p.file_offset, p.bytes,
                           static_cast<char*>(r.buffer) + p.buffer_offset});
    }
  }
  return out;
}

void StripedFiles::Split(int64_t offset, int64_t bytes,
                         std::vector<Piece>* pieces) const {
  const int64_t n = count();
  int64_t done = 0;
  while (done < bytes) {
    const int64_t at = offset + done;
    const int64_t block = at / block_bytes_;
    const int64_t in_block = at % block_bytes_;
    const int64_t len = std::min(bytes - done, block_bytes_ - in_block);
    pieces->push_back(Piece{static_cast<int>(block % n),
                            (block / n) * block_bytes_ + in_block, len, done});
    done += len;
  }
}

IoLocation StripedFiles::Locate(int64_t offset) const {
  const int64_t block = offset / block_bytes_;
  return {paths_[block % count()],
          (block / count()) * block_bytes_ + offset % block_bytes_,
          file_bytes_};
}

absl::Status StripedFiles::SyncAll() const {
  for (int i = 0; i < count(); ++i) {
    if (fdatasync(fds_[i]) != 0) {
      return OpenError("fdatasync", paths_[i], errno);
    }
  }
  return absl::OkStatus();
}

}  // namespace stronghold::storage
