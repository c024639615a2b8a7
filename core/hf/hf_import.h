// Starting a job from a Hugging Face model directory (docs/finetune.md):
//   config.json                               the architecture and sizes
//   model.safetensors                         the weights, or
//   model.safetensors.index.json + model-0000k-of-0000n.safetensors
// Everything is opened beneath the directory's descriptor (no symlink
// followed, no "..": core/util/confined_path.h), because the directory is a
// client's to name and its files a stranger's to write; every size and
// offset in them is checked before it is used (safetensors.h).
//
// Loading streams one tensor at a time: its bytes are read into a scratch
// buffer of that tensor's size, converted (F32, BF16 or F16 to fp32,
// transposed where the layouts differ) straight into the job's buffer, and
// each buffer is handed on (CheckpointBuffer::store_param: the NVMe tier)
// before the next is read. The model is never held twice in host memory.
//
// Errors: INVALID_ARGUMENT naming the file and the tensor (missing, of
// another shape with the expected and the found shape, of an unsupported
// dtype, not finite, or not part of the model) or the shard (listed in the
// index but missing); DATA_LOSS for a malformed or truncated file.
//
// Thread safety: a const HfModelDir may be read from one thread at a time.
#ifndef STRONGHOLD_CORE_HF_HF_IMPORT_H_
#define STRONGHOLD_CORE_HF_HF_IMPORT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/checkpoint/checkpoint.h"
#include "core/checkpoint/safetensors.h"
#include "core/hf/hf_model.h"
#include "core/util/unique_fd.h"

namespace stronghold::core {

inline constexpr char kHfConfigFile[] = "config.json";
inline constexpr char kHfSingleFile[] = "model.safetensors";
inline constexpr char kHfIndexFile[] = "model.safetensors.index.json";
// The most shards an index may name, and its largest size read.
inline constexpr int kMaxHfShards = 4096;
inline constexpr int64_t kMaxHfIndexBytes = int64_t{64} << 20;

class HfModelDir {
 public:
  // Reads config.json, the index if there is one, and every weight file's
  // header (no tensor data). `dir` is the directory, opened (taken);
  // `name` names it in messages.
  static absl::StatusOr<HfModelDir> Open(UniqueFd dir, std::string name);

  HfModelDir(HfModelDir&&) = default;
  HfModelDir& operator=(HfModelDir&&) = default;

  const HfModel& hf() const { return hf_; }

  // Checks, from the headers alone, that the directory holds every tensor
  // `model` (ResolveHfModel of hf()) needs, in its shape and a supported
  // dtype, and nothing else but ignorable tensors.
  absl::Status CheckTensors(const ModelConfig& model) const;

  // CheckTensors, then fills the `param` of every buffer (ModelLayout of
  // `model`, all of them, in order) and calls its store_param. Moments are
  // left as they are (a fresh job's: zero). On error the buffers hold
  // partial data.
  absl::Status LoadInto(const ModelConfig& model,
                        const std::vector<CheckpointBuffer>& buffers) const;

 private:
  struct Shard {
    std::string file;  // its name in the directory
    UniqueFd fd;
    SafetensorsFile header;
  };
  // Where a tensor is: the shard and its entry; null when it is not there.
  struct Found {
    const Shard* shard = nullptr;
    const SafetensorsEntry* entry = nullptr;
  };

  HfModelDir() = default;
  absl::Status OpenShards();
  Found Find(const HfTensor& tensor) const;
  absl::Status CheckTensor(const HfTensor& tensor) const;
  absl::Status ReadTensor(const HfTensor& tensor, const BufferLayout& layout,
                          float* buffer, std::vector<char>& scratch) const;

  std::string name_;
  UniqueFd dir_;
  HfModel hf_;
  std::vector<Shard> shards_;
  std::map<std::string, int> shard_of_;  // tensor name -> index in shards_
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_HF_HF_IMPORT_H_
