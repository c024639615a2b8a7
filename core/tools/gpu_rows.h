// gpu_bench's rows (core/tools/gpu_bench.cc), declared before any of them
// runs, and their predictions (core/plan/schedule_model.h) on hardware
// profiles: deploy/gpu/check.sh prints every row's prediction before the
// first measurement, then the measured rows against them, and the
// automatic options (core/plan/auto_config.h) against the hand-picked rows.
// Plain C++ (no LibTorch, no CUDA), so that CI tests what the GPU check
// will print.
#ifndef STRONGHOLD_CORE_TOOLS_GPU_ROWS_H_
#define STRONGHOLD_CORE_TOOLS_GPU_ROWS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/plan/hardware_profile.h"
#include "core/plan/job_config.h"
#include "core/plan/schedule_model.h"

namespace stronghold::core {

struct GpuRowsOptions {
  bool quick = false;        // only the first rows and the window sweep
  std::vector<int> windows;  // the STRONGHOLD window sweep
  int64_t budget_bytes = 0;  // the GPU budget (the emulated card)
};

// One row of the table.
struct RowSpec {
  std::string name;
  JobConfig config;
  bool all_on_gpu = false;   // LibTorch all on the GPU; else the engine
  int64_t budget_bytes = 0;  // the engine's device budget
  std::string note;          // printed before the row runs
};

// The rows on `c` (its layers set), in the order they run. The automatic
// options' rows are chosen on `profile` (its error: the options stay off,
// as in a daemon without a profile) for a device named `device_name`.
std::vector<RowSpec> GpuBenchRows(
    const GpuRowsOptions& options, const JobConfig& c,
    const absl::StatusOr<HardwareProfile>& profile,
    const std::string& device_name);

// A row's step on `profile`, planned as the row runs: the engine's rows on
// the row's GPU budget (an automatic window settled from the profile, as
// the trainer settles it from a profiled step), the all-on-GPU rows as the
// planner's reference plan (everything on the device, updated there).
// RESOURCE_EXHAUSTED with the planner's reason when the row does not fit.
absl::StatusOr<StepPrediction> PredictRow(const RowSpec& row,
                                          const std::string& device_name,
                                          const HardwareProfile& profile);

// Each row's prediction on each profile.
struct Predictions {
  std::vector<std::string> profiles;  // their names, the columns
  // [row][profile]: the prediction, or why there is none.
  std::vector<std::vector<absl::StatusOr<StepPrediction>>> steps;
};

// Predicts every row on every profile and prints the table (and csv,
// predicted lines).
Predictions PredictRows(const std::vector<RowSpec>& rows,
                        const std::string& device_name,
                        const std::vector<HardwareProfile>& profiles);

// Prints the measured rows (`samples_per_s` of a row's name; 0 = did not
// run) against their predictions, and each automatic-options row against
// the best hand-picked row of the same budget, precision and clipping.
void PrintComparison(
    const std::vector<RowSpec>& rows, const Predictions& predicted,
    const std::function<double(const std::string&)>& samples_per_s);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_TOOLS_GPU_ROWS_H_
