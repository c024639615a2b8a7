// Trains one job: owns its weights, gradients and optimizer state, runs the
// training steps and reports each one to an observer. RESIDENT method: every
// buffer lives on the compute device (here the CPU), fp32.
//
// One step, top to bottom (Trainer::Step):
//   for each micro-batch: embed -> blocks -> head loss -> backward
//     (gradients accumulate into one flat buffer per layer);
//   global gradient norm -> clip factor -> learning rate of this step ->
//   AdamW on every layer's buffer (the clip factor is fused into it).
// Everything is deterministic for a given configuration: the data of step s
// is a function of (seed, s), initialization of (seed, buffer).
//
// Thread safety: Run() is called from one thread; the observer's
// StopRequested() may flip from any thread.
#ifndef STRONGHOLD_CORE_TRAINER_H_
#define STRONGHOLD_CORE_TRAINER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/job_config.h"

namespace stronghold::core {

struct StepReport {
  int64_t step = 0;  // 1-based
  int64_t steps = 0;
  double loss = 0.0;
  double lr = 0.0;
  double grad_norm = 0.0;
  double step_s = 0.0;
  double compute_s = 0.0;    // forward + backward
  double optimizer_s = 0.0;  // norm, clip, AdamW
  double h2d_wait_s = 0.0;
  double d2h_wait_s = 0.0;
  double samples_per_s = 0.0;
  double tokens_per_s = 0.0;
  double model_tflops = 0.0;
  int window = 0;
};

enum class StopRequest {
  kNone,
  kCancel,    // stop as soon as possible, no checkpoint
  kShutdown,  // finish the current step, write a checkpoint, stop
};

class TrainerObserver {
 public:
  virtual ~TrainerObserver() = default;
  virtual void OnStep(const StepReport& stats) = 0;
  virtual void OnMessage(const std::string& message) = 0;
  // A checkpoint named `name` is complete and durable.
  virtual void OnCheckpoint(const std::string& name) = 0;
  virtual StopRequest StopRequested() = 0;
};

struct TrainerOptions {
  // Where checkpoints go: <job_dir>/checkpoints/step-NNNNNN/.
  std::string job_dir;
};

class Trainer {
 public:
  // Validates nothing (the caller did) but the data source, which it opens.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const JobConfig& config,
                                                         const TrainerOptions& options);
  ~Trainer();

  // Trains until config.training.steps, writing checkpoints every
  // checkpoint.every_steps and the final weights at the end. Returns OK when
  // done, CANCELLED on kCancel, ABORTED on kShutdown (after the checkpoint),
  // or the error that stopped training.
  absl::Status Run(TrainerObserver* observer);

  // The fp32 master weights of every buffer of ModelLayout(), for tests.
  std::vector<std::vector<float>> Weights() const;

 private:
  class Impl;
  explicit Trainer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Learning rate of 1-based `step`: linear warm-up to lr over warmup_steps,
// then cosine decay to min_lr at `steps`.
double LearningRate(const TrainingConfig& training, int64_t step);

// LibTorch's version, e.g. "2.11.0".
std::string TorchVersion();

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_TRAINER_H_
