#include "client/checkpoint_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/util/status_macros.h"

namespace stronghold::client {
namespace {

absl::Status ErrnoError(int error, absl::string_view what,
                        absl::string_view path) {
  return absl::ErrnoToStatus(error, absl::StrCat(what, " ", path));
}

// mkdir -p.
absl::Status MakeDirs(const std::string& path) {
  std::string prefix;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    absl::StrAppend(&prefix, part, "/");
    if (part.empty() || part == ".") continue;
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "cannot create directory", prefix);
    }
  }
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    return ErrnoError(errno, "cannot stat", path);
  }
  if (!S_ISDIR(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a directory"));
  }
  return absl::OkStatus();
}

absl::Status FsyncPath(const std::string& path, int flags) {
  const int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "cannot open", path);
  const int rc = fsync(fd);
  const int error = errno;
  close(fd);
  if (rc != 0) return ErrnoError(error, "fsync failed for", path);
  return absl::OkStatus();
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

absl::StatusOr<std::unique_ptr<CheckpointWriter>> CheckpointWriter::Open(
    const std::string& dir, const std::string& file) {
  if (file.empty() || file[0] == '/' || absl::EndsWith(file, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad checkpoint file name \"", file, "\""));
  }
  for (absl::string_view part : absl::StrSplit(file, '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint file name \"", file, "\" must not contain \"..\""));
    }
  }
  const std::string final_path =
      absl::StrCat(dir.empty() ? "." : dir, "/", file);
  RETURN_IF_ERROR(MakeDirs(DirName(final_path)));
  const std::string part_path = absl::StrCat(final_path, ".part");
  const int fd =
      open(part_path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, "cannot open", part_path);
  std::unique_ptr<CheckpointWriter> writer(
      new CheckpointWriter(fd, part_path, final_path));
  RETURN_IF_ERROR(writer->HashExisting());
  return writer;
}

CheckpointWriter::CheckpointWriter(int fd, std::string part_path,
                                   std::string final_path)
    : fd_(fd),
      part_path_(std::move(part_path)),
      final_path_(std::move(final_path)) {}

CheckpointWriter::~CheckpointWriter() {
  if (fd_ >= 0) close(fd_);
}

absl::Status CheckpointWriter::HashExisting() {
  std::vector<char> buffer(1 << 20);
  for (;;) {
    const ssize_t n = pread(fd_, buffer.data(), buffer.size(), size_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "cannot read", part_path_);
    }
    if (n == 0) break;
    hasher_.Update(buffer.data(), static_cast<size_t>(n));
    size_ += n;
  }
  resumed_ = size_ > 0;
  return absl::OkStatus();
}

absl::Status CheckpointWriter::Append(int64_t offset, absl::string_view data) {
  RETURN_IF_ERROR(sticky_error_);
  if (offset != size_) {
    return absl::DataLossError(absl::StrCat("the daemon sent bytes at offset ",
                                            offset, " but ", part_path_,
                                            " holds ", size_, " bytes"));
  }
  hasher_.Update(data.data(), data.size());
  while (!data.empty()) {
    const ssize_t n = write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // a zero-byte write would loop forever; treat as an error
      sticky_error_ =
          ErrnoError(n < 0 ? errno : EIO, "cannot write", part_path_);
      return sticky_error_;
    }
    data.remove_prefix(n);
    size_ += n;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CheckpointWriter::Commit(
    absl::string_view expected_sha256) {
  RETURN_IF_ERROR(sticky_error_);
  const std::string actual = hasher_.HexDigest();
  if (!absl::EqualsIgnoreCase(actual,
                              absl::StripAsciiWhitespace(expected_sha256))) {
    sticky_error_ = absl::DataLossError(absl::StrCat(
        "SHA-256 mismatch for ", final_path_, ": the daemon says ",
        expected_sha256, ", the ", size_, " bytes received hash to ", actual,
        "; removed ", part_path_,
        ", run the command again to download from the start"));
    unlink(part_path_.c_str());
    return sticky_error_;
  }
  if (fsync(fd_) != 0) {
    sticky_error_ = ErrnoError(errno, "fsync failed for", part_path_);
    return sticky_error_;
  }
  close(fd_);
  fd_ = -1;
  if (rename(part_path_.c_str(), final_path_.c_str()) != 0) {
    sticky_error_ = ErrnoError(errno, "cannot rename", part_path_);
    return sticky_error_;
  }
  // The rename is durable only once the directory entry is.
  RETURN_IF_ERROR(FsyncPath(DirName(final_path_), O_RDONLY | O_DIRECTORY));
  sticky_error_ = absl::FailedPreconditionError("already committed");
  return actual;
}

}  // namespace stronghold::client
