// Reading checkpoints back (core/checkpoint/checkpoint.h writes them). A resume
// must never start from damaged state, so every byte is checked against the
// manifest, and each error names the file it found wrong:
//   DATA_LOSS         a missing or truncated file, a size or SHA-256 that
//                     differs from the manifest, a damaged manifest;
//   INVALID_ARGUMENT  an intact checkpoint of another model shape;
//   FAILED_PRECONDITION  a v1 checkpoint (weights only: no exact resume).
#ifndef STRONGHOLD_CORE_CHECKPOINT_CHECKPOINT_READER_H_
#define STRONGHOLD_CORE_CHECKPOINT_CHECKPOINT_READER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/checkpoint/checkpoint.h"
#include "core/checkpoint/checkpoint_manifest.h"
#include "core/plan/job_config.h"

namespace stronghold::core {

// Reads manifest.json of `checkpoint_dir` and checks that every file it
// lists is there with the listed size, and that the step matches the
// directory's name. Reads no tensor data: cheap enough for an RPC.
absl::StatusOr<CheckpointManifest> ReadCheckpointManifest(
    const std::string& checkpoint_dir);

// INVALID_ARGUMENT naming the manifest when the checkpoint is of another
// model shape than `model`, or not a resumable (v2, fp32) checkpoint.
absl::Status CheckResumable(const CheckpointManifest& manifest,
                            const ModelConfig& model,
                            const std::string& checkpoint_dir);

// Loads the checkpoint in `checkpoint_dir` into `buffers` (ModelLayout of
// `model`, all of them): the manifest is checked first, then
// model.safetensors and optimizer.safetensors stream straight into the
// buffers while their SHA-256 is computed, and job.json is hashed. Returns
// the manifest. On any error the buffers hold partial data and must not be
// trained from.
absl::StatusOr<CheckpointManifest> LoadCheckpoint(
    const std::string& checkpoint_dir, const ModelConfig& model,
    const std::vector<CheckpointBuffer>& buffers);

// Hashes every file of the checkpoint against its manifest (for fetched
// copies and tools). DATA_LOSS naming the first file that differs.
absl::StatusOr<CheckpointManifest> VerifyCheckpoint(
    const std::string& checkpoint_dir);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_CHECKPOINT_CHECKPOINT_READER_H_
