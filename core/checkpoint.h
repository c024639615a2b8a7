// Checkpoint directories, written atomically: files go into a hidden
// temporary directory, are fsynced, a manifest with every file's size and
// SHA-256 is written last, and the directory is renamed into place (and its
// parent fsynced). A checkpoint is either complete or invisible.
//
// Layout (docs/checkpoints.md):
//   <checkpoints_dir>/step-000030/model.safetensors   fp32 weights
//   <checkpoints_dir>/step-000030/manifest.json       sizes and digests
#ifndef STRONGHOLD_CORE_CHECKPOINT_H_
#define STRONGHOLD_CORE_CHECKPOINT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gpt_layout.h"

namespace stronghold::core {

inline constexpr char kModelFile[] = "model.safetensors";
inline constexpr char kManifestFile[] = "manifest.json";

// "step-000030"
std::string CheckpointName(int64_t step);

// Writes the weights of every buffer (params[i] holds layouts[i].count
// floats) as <checkpoints_dir>/<CheckpointName(step)>. Returns its name.
absl::StatusOr<std::string> WriteCheckpoint(
    const std::string& checkpoints_dir, int64_t step,
    const std::vector<BufferLayout>& layouts,
    const std::vector<const float*>& params,
    const std::map<std::string, std::string>& metadata);

// Complete checkpoints in `checkpoints_dir`, oldest first.
std::vector<std::string> ListCheckpoints(const std::string& checkpoints_dir);

// Removes all but the newest `keep_last` checkpoints (0 = keep all).
absl::Status PruneCheckpoints(const std::string& checkpoints_dir, int keep_last);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_CHECKPOINT_H_
