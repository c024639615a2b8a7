// Checkpoint directories: everything needed to continue training exactly,
// written atomically. Files go into a hidden temporary directory and are
// fsynced, the manifest (every file's size and SHA-256, the model's shape,
// the training position) is written last, and the directory is renamed into
// place (and its parent fsynced). A checkpoint is either complete or
// invisible; a crash at any moment leaves at most a hidden ".tmp-" or
// ".del-" directory, which RemoveIncompleteCheckpoints() clears.
//
// Layout (docs/checkpoints.md):
//   <checkpoints_dir>/step-000030/model.safetensors      fp32 master weights
//   <checkpoints_dir>/step-000030/optimizer.safetensors  AdamW m and v
//   <checkpoints_dir>/step-000030/job.json               the effective job spec
//   <checkpoints_dir>/step-000030/manifest.json          sizes, digests,
//   position
//
// Loading (core/checkpoint/checkpoint_reader.h) streams the same files back
// into the same host buffers.
//
// Thread safety: one writer per checkpoints directory.
#ifndef STRONGHOLD_CORE_CHECKPOINT_CHECKPOINT_H_
#define STRONGHOLD_CORE_CHECKPOINT_CHECKPOINT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/checkpoint/checkpoint_files.h"
#include "core/checkpoint/checkpoint_manifest.h"
#include "core/checkpoint/safetensors.h"
#include "core/model/gpt_layout.h"
#include "core/plan/job_config.h"

namespace stronghold::core {

// One buffer's training state in host memory (core/model/gpt_layout.h): what a
// checkpoint stores and what a resume fills. Gradients are not stored: every
// step starts them from zero.
struct CheckpointBuffer {
  BufferLayout layout;
  float* param = nullptr;       // fp32 master weights, layout.count
  float* exp_avg = nullptr;     // AdamW m, layout.count
  float* exp_avg_sq = nullptr;  // AdamW v, layout.count
  // Moments held elsewhere (the NVMe tier), streamed through exp_avg and
  // exp_avg_sq, which may then be a buffer shared with other such buffers:
  // a save calls load_moments to fill them just before this buffer's
  // moments are written, a load calls store_moments to take them just after
  // the last of them was read. Empty for moments in host memory.
  std::function<absl::Status()> load_moments;
  std::function<absl::Status()> store_moments;
  // The same for masters held elsewhere, streamed through `param`.
  std::function<absl::Status()> load_param;
  std::function<absl::Status()> store_param;
};

// The shape of `model` as the manifest records it.
ManifestModel ManifestModelOf(const ModelConfig& model);
// The ModelConfig a manifest describes.
ModelConfig ModelConfigOf(const ManifestModel& model);

// A tensor's name in model.safetensors: the embedding's and the final
// norm's tensors keep their own names (wte, wpe, lnf); a block's get its
// buffer's name in front (layers.3.attn...).
std::string CheckpointTensorName(const BufferLayout& buffer,
                                 const TensorSlice& tensor);

// The tensors of model.safetensors and optimizer.safetensors over `buffers`,
// in file order. Names: docs/checkpoints.md. A buffer's load_param and
// store_param become the fill hook of its first and the done hook of its
// last model tensor, load_moments and store_moments those of its optimizer
// tensors.
std::vector<SafetensorsTarget> ModelTensors(
    const std::vector<CheckpointBuffer>& buffers);
std::vector<SafetensorsTarget> OptimizerTensors(
    const std::vector<CheckpointBuffer>& buffers);

// Writes <checkpoints_dir>/<CheckpointName(position.step)>, streaming the
// tensors straight from `buffers` (no copy of the model is made), and
// returns its name. `job_json` is stored as job.json when not empty. An
// older checkpoint of the same step is replaced atomically.
absl::StatusOr<std::string> WriteCheckpoint(
    const std::string& checkpoints_dir, const ModelConfig& model,
    const TrainingPosition& position,
    const std::vector<CheckpointBuffer>& buffers, const std::string& job_json);

// Complete checkpoints in `checkpoints_dir` (those with a manifest), oldest
// first. Empty when the directory does not exist.
std::vector<std::string> ListCheckpoints(const std::string& checkpoints_dir);

// Removes all but the newest `keep_last` checkpoints (0 = keep all). Each is
// renamed to a hidden name first, so a crash never leaves a listed
// checkpoint with files missing.
absl::Status PruneCheckpoints(const std::string& checkpoints_dir,
                              int keep_last);

// Removes the hidden leftovers of writes or prunes a crash interrupted.
// Call before the directory's writer starts. Returns how many were removed.
absl::StatusOr<int> RemoveIncompleteCheckpoints(
    const std::string& checkpoints_dir);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_CHECKPOINT_CHECKPOINT_H_
