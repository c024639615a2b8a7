// Writing and reading the safetensors format
// (https://huggingface.co/docs/safetensors):
//   8 bytes little-endian N | N bytes JSON header, space-padded to 8 | data.
// The header maps each tensor name to {"dtype", "shape", "data_offsets"}
// (offsets relative to the data section); "__metadata__" holds strings.
// The writer streams tensors straight from their buffers (no second copy of
// the model in memory) and fsyncs the file.
#ifndef STRONGHOLD_CORE_CHECKPOINT_SAFETENSORS_H_
#define STRONGHOLD_CORE_CHECKPOINT_SAFETENSORS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace stronghold::core {

struct SafetensorsTensor {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;  // F32, numel(shape) elements
  // Optional: called right before `data` is written, so that a caller can
  // bring the tensor into a reused buffer just in time (the NVMe tier's
  // moments, one layer at a time). Its error stops the write.
  std::function<absl::Status()> fill;
};

// Writes `path` (created or truncated) and fsyncs it. Returns the SHA-256 of
// the file's bytes, computed while writing.
absl::StatusOr<std::string> WriteSafetensors(
    const std::string& path, const std::vector<SafetensorsTensor>& tensors,
    const std::map<std::string, std::string>& metadata);

struct SafetensorsEntry {
  std::string dtype;
  std::vector<int64_t> shape;
  int64_t begin = 0;  // byte offsets in the data section
  int64_t end = 0;
};

struct SafetensorsFile {
  int64_t data_offset = 0;  // where the data section starts in the file
  std::map<std::string, SafetensorsEntry> tensors;
  std::map<std::string, std::string> metadata;
};

// Parses and checks the header of `path` (sizes, offsets within the file).
// DATA_LOSS naming the file when it is malformed or truncated.
absl::StatusOr<SafetensorsFile> ReadSafetensorsHeader(const std::string& path);
// The same for a file already open for reading (`fd`, not taken; `name` for
// messages), e.g. one opened beneath a confined root. INVALID_ARGUMENT when
// it is not a regular file.
absl::StatusOr<SafetensorsFile> ReadSafetensorsHeader(int fd,
                                                      const std::string& name);
// Reads the bytes of `entry` (of `file`, the header of `fd`) into `dst`
// (entry.end - entry.begin bytes, any dtype). DATA_LOSS naming `name` when
// the file is shorter than its header says.
absl::Status ReadSafetensorsBytes(int fd, const std::string& name,
                                  const SafetensorsFile& file,
                                  const SafetensorsEntry& entry, void* dst);

// A tensor to read straight into memory the caller owns.
struct SafetensorsTarget {
  std::string name;
  std::vector<int64_t> shape;
  float* data = nullptr;  // numel(shape) elements
  // Optional, for streaming through a reused buffer: `fill` runs before the
  // tensor is written (WriteCheckpoint passes it on as
  // SafetensorsTensor::fill); `done` runs right after its bytes were read
  // into `data` (ReadSafetensorsInto), so the caller can move them on
  // before the buffer is reused. Their errors stop the transfer.
  std::function<absl::Status()> fill;
  std::function<absl::Status()> done;
};

// Reads `path`, which must hold exactly `tensors` (F32, these shapes, packed
// back to back as WriteSafetensors writes them), into their buffers: every
// byte is read once, straight into place, and hashed on the way, so loading
// needs no second copy of the model. Returns the SHA-256 of the whole file.
// INVALID_ARGUMENT naming the file and the tensor when one is missing, extra,
// or of another shape or dtype; DATA_LOSS when the file is malformed or
// truncated. When a target has a `done` hook, the file's tensors must lie in
// the targets' order (the hooks assume it): INVALID_ARGUMENT otherwise. On
// error the targets hold partial data.
absl::StatusOr<std::string> ReadSafetensorsInto(
    const std::string& path, const std::vector<SafetensorsTarget>& tensors);

// Reads one F32 tensor's data.
absl::StatusOr<std::vector<float>> ReadSafetensorsTensor(
    const std::string& path, const SafetensorsFile& file,
    const std::string& name);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_CHECKPOINT_SAFETENSORS_H_
