// Small, careful file primitives: every write is checked for short writes
// and errno, durability comes from fsync of the file and its directory, and
// errors name the path. Used by checkpoints and the daemon's job records.
#ifndef STRONGHOLD_CORE_UTIL_FILE_UTIL_H_
#define STRONGHOLD_CORE_UTIL_FILE_UTIL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stronghold::core {

// An append-only file. Not thread-safe. Closing without SyncAndClose()
// leaves the data's durability unknown.
class WritableFile {
 public:
  static absl::StatusOr<WritableFile> Create(const std::string& path);
  WritableFile(WritableFile&& other) noexcept;
  WritableFile& operator=(WritableFile&&) = delete;
  ~WritableFile();

  absl::Status Append(const void* data, size_t bytes);
  absl::Status SyncAndClose();

 private:
  WritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

// Writes `contents` to `path` atomically: a temporary file in the same
// directory, fsync, rename over `path`, fsync of the directory.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents);

// fsyncs a directory so renames and creations in it are durable.
absl::Status SyncDir(const std::string& dir);

absl::StatusOr<std::string> ReadFile(const std::string& path);
// Reads up to `bytes` bytes at `offset` (fewer only at the end of the file).
absl::StatusOr<std::string> ReadFileRange(const std::string& path,
                                          int64_t offset, int64_t bytes);
absl::StatusOr<int64_t> FileSize(const std::string& path);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_UTIL_FILE_UTIL_H_
