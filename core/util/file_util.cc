#include "core/util/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

namespace {

absl::Status ErrnoError(absl::string_view op, const std::string& path,
                        int err) {
  std::string message = absl::StrCat(op, " ", path, ": ", strerror(err));
  if (err == ENOSPC || err == EDQUOT)
    return absl::ResourceExhaustedError(message);
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM)
    return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

}  // namespace

absl::StatusOr<WritableFile> WritableFile::Create(const std::string& path) {
  const int fd =
      open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", path, errno);
  return WritableFile(path, fd);
}

WritableFile::WritableFile(WritableFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

WritableFile::~WritableFile() {
  if (fd_ >= 0) close(fd_);
}

absl::Status WritableFile::Append(const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = write(fd_, p, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write", path_, errno);
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status WritableFile::SyncAndClose() {
  if (fsync(fd_) != 0) return ErrnoError("cannot fsync", path_, errno);
  const int fd = fd_;
  fd_ = -1;
  if (close(fd) != 0) return ErrnoError("cannot close", path_, errno);
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory", dir, errno);
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) return ErrnoError("cannot fsync directory", dir, err);
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  ASSIGN_OR_RETURN(WritableFile file, WritableFile::Create(tmp));
  RETURN_IF_ERROR(file.Append(contents.data(), contents.size()));
  RETURN_IF_ERROR(file.SyncAndClose());
  if (rename(tmp.c_str(), path.c_str()) != 0)
    return ErrnoError("cannot rename", tmp, errno);
  std::string dir = std::filesystem::path(path).parent_path().string();
  return SyncDir(dir.empty() ? "." : dir);
}

absl::StatusOr<std::string> ReadFileRange(const std::string& path,
                                          int64_t offset, int64_t bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path, errno);
  std::string out(static_cast<size_t>(bytes), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = pread(fd, out.data() + done, out.size() - done,
                            static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      close(fd);
      return ErrnoError("cannot read", path, err);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  close(fd);
  out.resize(done);
  return out;
}

absl::StatusOr<int64_t> FileSize(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return ErrnoError("cannot stat", path, errno);
  return static_cast<int64_t>(st.st_size);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  ASSIGN_OR_RETURN(int64_t size, FileSize(path));
  return ReadFileRange(path, 0, size);
}

}  // namespace stronghold::core
