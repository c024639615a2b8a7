// gpu_bench's table: one row per run on one model, printed as it is
// measured (window, mean step time, samples/s, optimizer wait, model
// TFLOPS, MFU, samples/s against the first row, GPU peak, copy waits), then
// as csv lines. A row is the engine on a device (bench_run.h) or LibTorch
// with everything on the GPU (all_on_gpu_baseline.h); one that does not run
// prints why instead.
#ifndef STRONGHOLD_CORE_TOOLS_CASE_TABLE_H_
#define STRONGHOLD_CORE_TOOLS_CASE_TABLE_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/device/device.h"
#include "core/plan/job_config.h"
#include "core/train/trainer.h"

namespace stronghold::core {

struct CaseTableOptions {
  // Where the engine's rows run (not owned).
  Device* device = nullptr;
  // The first steps of each run, not counted.
  int warmup_steps = 0;
  // The time box, from the table's creation: rows not started by then are
  // skipped.
  double max_seconds = 0;
  // The peak that MFU is a share of, in TFLOPS; 0 = unknown (MFU 0).
  double peak_tflops = 0;
  // Where each engine row's last step goes as a Chrome trace
  // (<dir>/<row>.json); empty = none.
  std::string trace_dir;
};

// Not thread-safe.
class CaseTable {
 public:
  explicit CaseTable(CaseTableOptions options);

  double elapsed_s() const;
  // True, and a line saying so, once the time box is spent.
  bool Skipped(const std::string& name) const;
  // The column headings.
  void PrintHeader() const;

  // LibTorch all on the GPU, as the row `name`: its samples/s, or why it
  // did not run (not printed).
  absl::StatusOr<double> TryAllOnGpu(const std::string& name,
                                     const JobConfig& config);
  // The same, printing why it did not run; 0 then.
  double AllOnGpu(const std::string& name, const JobConfig& config);
  // The engine on the device as the row `name`, planned with a device
  // budget of `budget_bytes`: its samples/s, 0 if it did not run (saying
  // why) or was skipped. With speculative updates it also prints how many
  // steps were rolled back.
  double Engine(const std::string& name, const JobConfig& config,
                int64_t budget_bytes);

  // samples/s of the row `name`, 0 if there is none.
  double SamplesPerS(const std::string& name) const;
  // The first row's name and samples/s (what "vs RESID." divides by); ""
  // and 0 before any row.
  std::string first_row() const;
  double first_samples_per_s() const;

  // csv,run,... lines, the heading first; `config` is the rows' model.
  void PrintCsv(const JobConfig& config) const;

 private:
  struct Row {
    std::string name;
    StepMetrics step;  // the mean step after the warm-up
  };

  double Mfu(double tflops) const;
  // Stores and prints a row; returns its samples/s.
  double Add(const std::string& name, const StepMetrics& step);

  const CaseTableOptions options_;
  const std::chrono::steady_clock::time_point begin_;
  std::vector<Row> rows_;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_TOOLS_CASE_TABLE_H_
