// How the daemon (or a test, or a tool) runs one job's Trainer: where its
// files go, its device and its NVMe tier.
#ifndef STRONGHOLD_CORE_TRAIN_TRAINER_OPTIONS_H_
#define STRONGHOLD_CORE_TRAIN_TRAINER_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace stronghold::storage {
class BlockDevice;
}  // namespace stronghold::storage

namespace stronghold::core {

class Device;

struct TrainerOptions {
  // Where checkpoints go: <job_dir>/checkpoints/step-NNNNNN/.
  std::string job_dir;
  // Compute device for the windowed methods; null = a HostDevice created for
  // the job with the job's device budget. Not owned.
  Device* device = nullptr;
  // Device memory budget when the trainer creates the device (0 = the
  // job's offload.gpu_memory_budget_bytes, else unlimited).
  int64_t device_budget_bytes = 0;
  // CPU optimizer threads; 0 = every CPU this process may use.
  int optimizer_threads = 0;
  // Record the timeline of every n-th step (and always step 1 and 2).
  int trace_every = 10;
  // Stored as job.json in every checkpoint; the daemon passes the effective
  // JobSpec in JSON. Empty = no job.json.
  std::string job_spec_json;
  // Block layers 0 .. ssd_layers-1 keep their Adam moments, and in
  // bf16/fp16 their fp32 masters, on the NVMe tier (MemoryPlan::ssd_layers;
  // windowed methods only): files in offload.ssd_dirs, streamed through
  // kSsdStagingSlots host slots. An I/O
  // error there fails the job naming the file, offset and errno.
  int ssd_layers = 0;
  // With ssd_layers > 0: block layers 0 .. ssd_weight_layers-1 (at most
  // ssd_layers) keep what H2D sends on the tier too (MemoryPlan::
  // ssd_weight_layers): their 16-bit working copies in bf16/fp16, their
  // fp32 masters in fp32. The engine reads them ahead of every fetch of the
  // layer (core/engine/tier_reader.h); each update writes them back.
  int ssd_weight_layers = 0;
  // STRONGHOLD: the last N block layers keep their activations instead of
  // recomputing them (MemoryPlan::kept_activation_layers, which the daemon
  // plans with both budgets). Unset: resolved from the device budget alone
  // (core/plan/planner.h: KeptActivationLayers).
  std::optional<int> kept_activation_layers;
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
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_TRAIN_TRAINER_OPTIONS_H_
