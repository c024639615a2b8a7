// The names inside a checkpoints directory: one `step-NNNNNN` directory per
// checkpoint, holding the four files below. Part of the file format
// (//core/checkpoint:format), so a reader that only lists, fetches or checks
// checkpoints (strongholdctl) needs nothing of the writer or the model.
// Layout: docs/checkpoints.md.
#ifndef STRONGHOLD_CORE_CHECKPOINT_CHECKPOINT_FILES_H_
#define STRONGHOLD_CORE_CHECKPOINT_CHECKPOINT_FILES_H_

#include <cstdint>
#include <optional>
#include <string>

namespace stronghold::core {

inline constexpr char kModelFile[] = "model.safetensors";
inline constexpr char kOptimizerFile[] = "optimizer.safetensors";
inline constexpr char kJobSpecFile[] = "job.json";
inline constexpr char kManifestFile[] = "manifest.json";

// "step-000030"
std::string CheckpointName(int64_t step);
// "step-000030" -> 30; nullopt for anything else.
std::optional<int64_t> CheckpointStep(const std::string& name);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_CHECKPOINT_CHECKPOINT_FILES_H_
