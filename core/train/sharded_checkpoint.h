// Checkpoints of a data-parallel job (issue 17), in the one checkpoint
// format (core/checkpoint/checkpoint.h: full tensors, loadable as any other
// and by any number of ranks). Every rank holds its slice of each buffer
// (core/plan/shard.h); writing gathers the slices buffer by buffer, so no
// rank ever holds more than three whole buffers beyond its own state, and
// every rank writes the same files in its own job directory (each daemon
// resumes and serves its rank's job alone; N copies on disk). Reading is
// local: each rank reads the whole checkpoint and keeps its slices, so a
// checkpoint of N ranks resumes on any number, including 1, and one rank's
// on N.
#ifndef STRONGHOLD_CORE_TRAIN_SHARDED_CHECKPOINT_H_
#define STRONGHOLD_CORE_TRAIN_SHARDED_CHECKPOINT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/checkpoint/checkpoint.h"
#include "core/checkpoint/checkpoint_manifest.h"
#include "core/dist/communicator.h"
#include "core/plan/job_config.h"
#include "core/plan/shard.h"

namespace stronghold::core {

// Every rank calls this with the same position (a collective): `slices`
// are this rank's views of its state (HostState::CheckpointBuffers(), whose
// hooks stream what the NVMe tier holds), `shards` its slices. Every rank
// writes <checkpoints_dir>/<CheckpointName(step)> (its own directory) with
// the same model and optimizer files; every rank returns its
// name, or an error when it failed on any rank (the same on every rank, so
// the ranks agree on whether the checkpoint exists).
absl::StatusOr<std::string> WriteShardedCheckpoint(
    Communicator* comm, const std::vector<BufferShard>& shards,
    const std::string& checkpoints_dir, const ModelConfig& model,
    const TrainingPosition& position,
    const std::vector<CheckpointBuffer>& slices, const std::string& job_json);

// Loads the checkpoint in `checkpoint_dir` (of any number of ranks) into
// this rank's slices (not a collective).
absl::StatusOr<CheckpointManifest> LoadShardedCheckpoint(
    const std::string& checkpoint_dir, const ModelConfig& model,
    const std::vector<BufferShard>& shards,
    const std::vector<CheckpointBuffer>& slices);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_TRAIN_SHARDED_CHECKPOINT_H_
