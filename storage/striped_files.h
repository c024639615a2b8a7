// The files behind the file backends (io_uring and pread): one per --ssd_dir,
// with the device's address space striped over them in block-size units so
// that several drives add their bandwidth:
//
//   device block b  ->  file b % n, file offset (b / n) * block_bytes
//
// Each file is created in a private directory of the job under its entry
// (storage/tier_dir.h: mkdirat 0700, then O_CREAT | O_EXCL | O_NOFOLLOW, so
// nothing there is ever truncated or reached through a symlink), opened with
// O_DIRECT, preallocated with fallocate so that a full disk is reported when
// the job starts rather than in the middle of a step, and removed with its
// directory when closed: they hold scratch state of one job, never anything
// to keep.
#ifndef STRONGHOLD_STORAGE_STRIPED_FILES_H_
#define STRONGHOLD_STORAGE_STRIPED_FILES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "storage/block_device.h"
#include "storage/io_status.h"
#include "storage/tier_dir.h"

namespace stronghold::storage {

struct StripedFilesOptions {
  std::vector<std::string> dirs;  // one file per entry (repeats allowed)
  // The entries' directories, opened by the caller (the daemon opens them
  // inside its ssd roots); `dirs` then only names them in paths and
  // messages. Not taken; used during Open only. Empty = open `dirs`.
  std::vector<int> dir_fds;
  // Names each entry's tier directory (stronghold-job-<job_id>-<random>).
  int64_t job_id = 0;
  // Files are <dir>/<tier directory>/<file_name>.<index>.
  std::string file_name = "tier";
  int64_t capacity_bytes = 0;     // rounded up to whole stripes
  int64_t block_bytes = 1 << 20;  // stripe unit and largest single I/O
  bool direct_io = true;          // O_DIRECT; off (warning) where unsupported
};

// Not copyable; thread-safe after Open (only reads its members).
class StripedFiles {
 public:
  // A piece of a request that lies within one block of one file.
  struct Piece {
    int file = 0;
    int64_t file_offset = 0;
    int64_t bytes = 0;
    int64_t buffer_offset = 0;  // from the start of the request's buffer
  };

  // RESOURCE_EXHAUSTED (with the bytes needed and free) when a file cannot be
  // preallocated; other errors name the path and errno.
  static absl::StatusOr<std::unique_ptr<StripedFiles>> Open(
      const StripedFilesOptions& options);
  ~StripedFiles();
  StripedFiles(const StripedFiles&) = delete;
  StripedFiles& operator=(const StripedFiles&) = delete;

  int count() const { return static_cast<int>(fds_.size()); }
  int fd(int file) const { return fds_[file]; }
  const std::string& path(int file) const { return paths_[file]; }
  IoTarget target(int file) const { return {paths_[file], file_bytes_}; }
  int64_t capacity() const { return file_bytes_ * count(); }
  int64_t block_bytes() const { return block_bytes_; }
  int64_t file_bytes() const { return file_bytes_; }
  bool direct_io() const { return direct_io_; }

  // The file and file offset of device byte `offset`.
  IoLocation Locate(int64_t offset) const;

  // Appends the pieces of device range [offset, offset + bytes) to `pieces`.
  void Split(int64_t offset, int64_t bytes, std::vector<Piece>* pieces) const;

  // One transfer a file backend runs: a piece of a request within one file.
  struct FileIo {
    IoTicket ticket = 0;  // the batch it belongs to; set by the backend
    IoOp op = IoOp::kRead;
    int file = 0;
    int64_t file_offset = 0;
    int64_t bytes = 0;
    char* buffer = nullptr;  // this piece's part of the request's buffer
  };
  // Every request of a batch cut into its per-file transfers, in order.
  std::vector<FileIo> SplitRequests(absl::Span<const IoRequest> requests) const;

  // fdatasync of every file; the first error, naming the file.
  absl::Status SyncAll() const;

 private:
  StripedFiles() = default;

  // Constant after Open.
  std::vector<std::unique_ptr<TierDir>>
      tier_dirs_;  // one per file; remove them
  std::vector<std::string> paths_;
  std::vector<int> fds_;
  int64_t block_bytes_ = 0;
  int64_t file_bytes_ = 0;
  bool direct_io_ = true;
};

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_STRIPED_FILES_H_
