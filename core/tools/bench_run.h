// What the benchmark tools share: one job trained for its steps on a
// device, every step's report kept, and the mean step after the warm-up.
// The tests' counterpart is tests/core/training_test_util, which checks as
// it goes; this returns what went wrong instead, since a benchmark case that
// does not fit is a row saying so, not a failure.
#ifndef STRONGHOLD_CORE_TOOLS_BENCH_RUN_H_
#define STRONGHOLD_CORE_TOOLS_BENCH_RUN_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/device/device.h"
#include "core/plan/job_config.h"
#include "core/train/trainer.h"

namespace stronghold::core {

struct BenchRunOptions {
  // The compute device (not owned); null = a host device that the trainer
  // creates with the plan's device budget.
  Device* device = nullptr;
  // The plan's device budget in bytes; 0 = none (the largest automatic
  // window).
  int64_t device_budget_bytes = 0;
  // The trainer's job directory; emptied first. Nothing is left in it: the
  // run writes no checkpoint.
  std::string job_dir;
  // Where the last step's Chrome trace goes; empty = no step is traced
  // (tracing times every copy, which costs a little).
  std::string trace_file;
  // Called with each of the trainer's messages (the automatic window's
  // choice among them); empty = ignored.
  std::function<void(const std::string&)> on_message;
};

// Plans `config` for options.device and trains config.training.steps steps;
// their reports, or the status that stopped the job (RESOURCE_EXHAUSTED
// with the plan's reason when it does not fit). No checkpoint is written
// (the largest models would write many GB each): the run is configured one
// step longer and cancelled once its steps are reported.
absl::StatusOr<std::vector<StepMetrics>> RunSteps(
    const JobConfig& config, const BenchRunOptions& options);

// The last of `reports` (not empty) with its times (step_s, compute_s,
// optimizer_s, h2d_wait_s, d2h_wait_s, nvme_wait_s) replaced by their means
// over the steps after the first `warmup` (the last step alone if none is
// left), and its rates (samples_per_s, tokens_per_s, model_tflops) those of
// `config` at the mean step time.
StepMetrics MeanAfterWarmup(const JobConfig& config,
                            const std::vector<StepMetrics>& reports,
                            int warmup);

// engine_bench's command line, shared with predict_bench (the same cases):
//   LAYERS HIDDEN HEADS SEQ BATCH STEPS BUDGET_PERCENT ROUNDS PRECISION
// with defaults 8 512 8 256 4 `default_steps` `default_budget_percent` 1
// fp32; vocabulary 256, clipping at 1.0, micro-batch = batch.
struct EngineBenchArgs {
  JobConfig config;
  int budget_percent = 0;
  int rounds = 1;
  std::string precision;  // "fp32", "bf16" or "fp16"
};
// INVALID_ARGUMENT for a precision other than fp32, bf16 or fp16.
absl::StatusOr<EngineBenchArgs> ParseEngineBenchArgs(
    int argc, char** argv, int default_steps, int default_budget_percent);

// engine_bench's cases for `config`, the windowed ones on a device budget of
// `budget` bytes: RESIDENT, STRONGHOLD (automatic window and kept
// activations), STRONGHOLD recompute, L2L, W=L recompute, W=L kept,
// STRONGHOLD specul.
struct EngineBenchCase {
  const char* name;
  JobConfig config;
  int64_t budget;  // 0 = none
};
std::vector<EngineBenchCase> EngineBenchCases(const JobConfig& config,
                                              int64_t budget);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_TOOLS_BENCH_RUN_H_
