// Trains one job: owns its host training state (fp32 weights, gradients and
// Adam moments, one flat buffer per layer, plus a bf16/fp16 working copy of
// the weights in mixed precision; the optimizer state of layers spilled to
// the NVMe tier, and perhaps their working copies, live there instead), runs
// the steps and reports each one to an observer.
//
// Methods:
//   RESIDENT   every buffer on the compute device (here the CPU), plain
//              autograd over the whole model: the reference the offload
//              engine is checked against, bit for bit. In bf16/fp16 (and on
//              a GPU) it is the engine with every layer kept (W = L).
//   STRONGHOLD the windowed offload engine (core/engine/engine.h) on a device
//   whose
//              memory holds W+1 layers; W = 0 chooses W after profiling the
//              first step (docs/engine.md).
//   L2L        the same engine with one layer and synchronous copies.
// All methods share the data, the loss, the global-norm clipping and the
// optimizer (core/optim/fused_adamw.h), so they train identically.
//
// Errors: no exception leaves a public method. std::bad_alloc and LibTorch's
// out-of-memory become RESOURCE_EXHAUSTED, any other exception INTERNAL,
// with what was being done (core/util/exception_status.h); a device error
// (core/device/device.h: status()) fails the step that meets it, with the
// device's status. The job fails, the daemon goes on; its host state is
// then not a checkpoint's.
//
// Thread safety: Run() is called from one thread; the observer's
// StopRequested() may flip from any thread.
#ifndef STRONGHOLD_CORE_TRAIN_TRAINER_H_
#define STRONGHOLD_CORE_TRAIN_TRAINER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/checkpoint/checkpoint.h"
#include "core/engine/step_metrics.h"
#include "core/plan/execution_plan.h"
#include "core/plan/job_config.h"
#include "core/train/trainer_options.h"

namespace stronghold::core {

class Device;

enum class StopRequest {
  kNone,
  kCancel,               // stop as soon as possible, no checkpoint
  kShutdown,             // finish the current step, write a checkpoint, stop
  kCheckpointAndCancel,  // the same, then end as cancelled
};

class TrainerObserver {
 public:
  virtual ~TrainerObserver() = default;
  virtual void OnStep(const StepMetrics& metrics) = 0;
  virtual void OnMessage(const std::string& message) = 0;
  // A checkpoint named `name` is complete and durable.
  virtual void OnCheckpoint(const std::string& name) = 0;
  virtual StopRequest StopRequested() = 0;
  // The Chrome trace of the step just finished (windowed methods; called
  // every `trace_every` steps). Default: ignored.
  virtual void OnTrace(int64_t step, const std::string& chrome_trace_json) {}
};

class Trainer {
 public:
  // Opens the data and allocates the host state and, for the windowed
  // engine, the device buffers, as `plan` says (PlanExecution(config, ...):
  // the trainer re-derives nothing). RESOURCE_EXHAUSTED with the plan's
  // reason when it does not fit.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(
      const JobConfig& config, const ExecutionPlan& plan,
      const TrainerOptions& options);
  ~Trainer();

  // Loads the checkpoint in `checkpoint_dir` (core/checkpoint/checkpoint.h)
  // into the host state, streaming each file into the buffers and checking
  // every byte against the manifest; Run() then continues with the step after
  // the checkpoint's, exactly as if training had not stopped. Returns that
  // step. DATA_LOSS or INVALID_ARGUMENT naming the file for a damaged
  // checkpoint or one of another model shape
  // (core/checkpoint/checkpoint_reader.h); after an error, Run() refuses to
  // train until a Restore() succeeds. Call before Run().
  absl::StatusOr<int64_t> Restore(const std::string& checkpoint_dir);

  // Replaces the initial weights with what `load` writes into the buffers
  // (every buffer's param, in order, each followed by its store_param: the
  // NVMe tier's buffers stream through a staging buffer), e.g. a Hugging
  // Face model (core/hf/hf_import.h). The moments stay zero and Run()
  // trains from step 1. After an error Run() refuses to train, as after a
  // failed Restore(). FAILED_PRECONDITION for a data-parallel rank (its
  // slices are not loaded yet). Call before Run().
  using WeightLoader =
      std::function<absl::Status(const std::vector<CheckpointBuffer>&)>;
  absl::Status LoadWeights(const WeightLoader& load);

  // Trains from the step after the restored one (else from step 1) until
  // config.training.steps, writing checkpoints every checkpoint.every_steps
  // and at the end. Returns OK when done, CANCELLED on kCancel and
  // kCheckpointAndCancel (after the checkpoint), ABORTED on kShutdown (after
  // the checkpoint), or the error that stopped training.
  absl::Status Run(TrainerObserver* observer);

  // The fp32 master weights of every buffer of ModelLayout(), for tests
  // (after waiting for the queued updates, which may fail). With N > 1 ranks
  // (TrainerOptions::comm), this rank's slice of each (core/plan/shard.h).
  absl::StatusOr<std::vector<std::vector<float>>> Weights();

 private:
  friend class TrainerTestPeer;
  class Impl;
  explicit Trainer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Test access to a trainer's host state (used by tests/ only).
class TrainerTestPeer {
 public:
  // The fp32 master weights of buffer `index` of ModelLayout() (not of a
  // layer whose master is on the NVMe tier).
  static float* HostWeights(Trainer& trainer, int index);
  // Sets fp16's current loss scale (e.g. 2^40, to force an overflow).
  static void SetLossScale(Trainer& trainer, double scale);
  // The planned host buffers the trainer does not hold exactly (core/plan/
  // host_ledger.h: HostLedger::Differences); empty when it holds its plan.
  static std::vector<std::string> HostLedgerDifferences(Trainer& trainer);
  // The host memory the trainer holds now, as charged to its ledger.
  static int64_t HostChargedBytes(Trainer& trainer);
};

// LibTorch's version, e.g. "2.11.0".
std::string TorchVersion();

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_TRAIN_TRAINER_H_
