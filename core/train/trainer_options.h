// Where and with what the daemon (or a test, or a tool) runs one job's
// Trainer: its files, its device, its NVMe tier's block device. How the job
// runs (window, placements, the NVMe tier's share) is its execution plan's
// (core/plan/execution_plan.h), not an option.
#ifndef STRONGHOLD_CORE_TRAIN_TRAINER_OPTIONS_H_
#define STRONGHOLD_CORE_TRAIN_TRAINER_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace stronghold::storage {
class BlockDevice;
}  // namespace stronghold::storage

namespace stronghold::core {

class Communicator;
class Device;

struct TrainerOptions {
  // Where checkpoints go: <job_dir>/checkpoints/step-NNNNNN/.
  std::string job_dir;
  // Compute device for the windowed engine; null = a HostDevice created for
  // the job with its plan's device budget. Not owned.
  Device* device = nullptr;
  // CPU optimizer threads; 0 = every CPU this process may use.
  int optimizer_threads = 0;
  // Record the timeline of every n-th step (and always step 1 and 2).
  int trace_every = 10;
  // Stored as job.json in every checkpoint; the daemon passes the effective
  // JobSpec in JSON. Empty = no job.json.
  std::string job_spec_json;
  // The token file of data.source, opened by the caller (the daemon opens it
  // inside its data roots: server/path_confinement.h); the trainer reads a
  // duplicate of it and looks nothing up by name. Not owned; used during
  // Create only. -1 = open data.source as a path (tests, tools).
  int data_fd = -1;
  // With data_fd of a Megatron index (data.source "PREFIX.idx"): its .bin,
  // opened by the caller likewise. Not owned; -1 otherwise.
  int data_bin_fd = -1;
  // The directories of offload.ssd_dirs, in order, opened by the caller (the
  // daemon opens them inside its ssd roots); the tier's private directories
  // are created in them and nothing is looked up by those names. Not owned;
  // used during Create only. Empty = open offload.ssd_dirs as paths.
  std::vector<int> ssd_dir_fds;
  // Names the tier's private directories (stronghold-job-<job_id>-<random>,
  // storage/tier_dir.h), so that a leftover one names its job.
  int64_t job_id = 0;
  // The NVMe tier's block device; null = opened on offload.ssd_dirs. Not
  // owned (tests pass a fault-injecting one).
  storage::BlockDevice* ssd_device = nullptr;
  // Applied to the device the trainer opens on offload.ssd_dirs (not to an
  // injected ssd_device): takes it and returns the device the tier uses
  // instead. The daemon's testing-only --ssd_fault_injection wraps it in a
  // FaultInjectingBlockDevice here. Empty = the opened device as it is.
  std::function<std::unique_ptr<storage::BlockDevice>(
      std::unique_ptr<storage::BlockDevice>)>
      wrap_ssd_device;
  // Data parallelism (issue 17): the communicator of the job's N ranks
  // (core/dist/communicator.h; the daemon connects it through the job's
  // c10d store), which the trainer uses from its Run() thread only. Null
  // (or one rank): the job trains alone. With N > 1 every rank runs the
  // same spec with its own rank: the host state is this rank's slice of
  // each buffer (core/plan/shard.h), rank r computes the global
  // micro-batches m * N + r, and the reported loss, samples/s and tokens/s
  // are the whole job's (core/engine/engine.h, Create). training.batch must
  // be a multiple of N x micro_batch. Checkpoints: rank 0 writes them in
  // job_dir, whole tensors gathered from the ranks; a restore reads the
  // whole checkpoint on each rank (core/train/sharded_checkpoint.h). Not
  // owned; outlives the trainer.
  Communicator* comm = nullptr;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_TRAIN_TRAINER_OPTIONS_H_
