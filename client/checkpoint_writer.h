// Writes one downloaded checkpoint file so that an interrupted download can
// resume and a corrupt one never appears under its final name.
//
// Bytes go to DIR/NAME.part. If that file already exists (an earlier download
// was cut off), Open() hashes its bytes and the download continues from its
// size. Commit() checks the SHA-256 of the whole file against the daemon's,
// fsyncs, and renames DIR/NAME.part to DIR/NAME (then fsyncs DIR), so DIR/NAME
// is either absent or complete. On a digest mismatch the .part file is removed
// (resuming from bad bytes would fail forever) and Commit() returns DATA_LOSS.
//
// Write errors are sticky: after one, the file's contents are unknown, so
// every later Append() and Commit() fails too and the .part file is kept for
// inspection. Not thread-safe.
#ifndef STRONGHOLD_CLIENT_CHECKPOINT_WRITER_H_
#define STRONGHOLD_CLIENT_CHECKPOINT_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/util/sha256.h"

namespace stronghold::client {

class CheckpointWriter {
 public:
  // Creates `dir` (and its parents) if needed and opens DIR/FILE.part for
  // appending. `file` is a plain name or relative path without "..".
  static absl::StatusOr<std::unique_ptr<CheckpointWriter>> Open(
      const std::string& dir, const std::string& file);

  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Bytes in the file so far: where the download continues.
  int64_t size() const { return size_; }
  // True when Open() found an earlier .part file to continue.
  bool resumed() const { return resumed_; }
  const std::string& part_path() const { return part_path_; }
  const std::string& final_path() const { return final_path_; }

  // Appends `data`, which the daemon says starts at `offset`; DATA_LOSS when
  // that is not where the file ends (a gap or an overlap).
  absl::Status Append(int64_t offset, absl::string_view data);

  // Verifies the digest (hex, either case), fsyncs and renames; returns the
  // lower-case hex digest of the file.
  absl::StatusOr<std::string> Commit(absl::string_view expected_sha256);

 private:
  CheckpointWriter(int fd, std::string part_path, std::string final_path);

  absl::Status HashExisting();

  int fd_;
  const std::string part_path_;
  const std::string final_path_;
  int64_t size_ = 0;
  bool resumed_ = false;
  absl::Status sticky_error_;
  core::Sha256 hasher_;  // over every byte of the file, resumed ones too
};

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_CHECKPOINT_WRITER_H_
