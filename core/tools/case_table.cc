#include "core/tools/case_table.h"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/tools/all_on_gpu_baseline.h"
#include "core/tools/bench_run.h"

namespace stronghold::core {
namespace {

// The row's name as a file name.
std::string Slug(const std::string& name) {
  std::string slug;
  for (char ch : name)
    slug += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return slug;
}

double Gib(int64_t bytes) { return bytes / 1073741824.0; }

}  // namespace

CaseTable::CaseTable(CaseTableOptions options)
    : options_(std::move(options)), begin_(std::chrono::steady_clock::now()) {}

double CaseTable::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       begin_)
      .count();
}

bool CaseTable::Skipped(const std::string& name) const {
  if (elapsed_s() < options_.max_seconds) return false;
  std::printf("%-28s skipped: the cases' time box of %.0f s is spent\n",
              name.c_str(), options_.max_seconds);
  return true;
}

void CaseTable::PrintHeader() const {
  std::printf("%-28s %6s %9s %9s %9s %9s %6s %10s %11s %7s %7s\n", "method",
              "window", "step_s", "samples/s", "opt_wait", "TFLOPS", "MFU",
              "vs RESID.", "GPU peak", "h2d_w", "d2h_w");
}

absl::StatusOr<double> CaseTable::TryAllOnGpu(const std::string& name,
                                              const JobConfig& config) {
  absl::StatusOr<StepMetrics> r = TrainAllOnGpu(config, options_.warmup_steps);
  if (!r.ok()) return r.status();
  return Add(name, *r);
}

double CaseTable::AllOnGpu(const std::string& name, const JobConfig& config) {
  absl::StatusOr<double> r = TryAllOnGpu(name, config);
  if (!r.ok()) {
    std::printf("%-28s does not run: %s\n", name.c_str(),
                std::string(r.status().message()).c_str());
  }
  return r.value_or(0);
}

double CaseTable::Engine(const std::string& name, const JobConfig& config,
                         int64_t budget_bytes) {
  if (Skipped(name)) return 0;
  BenchRunOptions run{.device = options_.device,
                      .device_budget_bytes = budget_bytes,
                      .job_dir = (std::filesystem::temp_directory_path() /
                                  ("gpu_bench_" + Slug(name)))
                                     .string(),
                      .on_message = [](const std::string& m) {
                        if (m.find("chosen") != std::string::npos)
                          std::printf("    %s\n", m.c_str());
                      }};
  if (!options_.trace_dir.empty()) {
    run.trace_file = options_.trace_dir + "/" + Slug(name) + ".json";
  }
  const absl::StatusOr<std::vector<StepMetrics>> reports =
      RunSteps(config, run);
  if (!reports.ok()) {
    std::printf("%-28s does not run: %s\n", name.c_str(),
                std::string(reports.status().message()).c_str());
    return 0;
  }
  const double samples_per_s =
      Add(name, MeanAfterWarmup(config, *reports, options_.warmup_steps));
  if (config.offload.speculative_updates) {
    int rolled = 0;
    std::string norms;
    for (const StepMetrics& s : *reports) {
      rolled += s.rolled_back;
      absl::StrAppend(&norms, norms.empty() ? "" : " ",
                      absl::StrFormat("%.3g", s.grad_norm));
    }
    std::printf(
        "    %d of %zu steps rolled back (clip %.2g; gradient norms %s)\n",
        rolled, reports->size(), config.training.clip_norm, norms.c_str());
  }
  return samples_per_s;
}

double CaseTable::SamplesPerS(const std::string& name) const {
  for (const Row& r : rows_) {
    if (r.name == name) return r.step.samples_per_s;
  }
  return 0;
}

std::string CaseTable::first_row() const {
  return rows_.empty() ? "" : rows_.front().name;
}

double CaseTable::first_samples_per_s() const {
  return rows_.empty() ? 0 : rows_.front().step.samples_per_s;
}

void CaseTable::PrintCsv(const JobConfig& config) const {
  std::printf(
      "csv,run,method,layers,parameters,window,step_s,samples_per_s,model_"
      "tflops,mfu_percent,gpu_peak_bytes\n");
  for (const Row& r : rows_) {
    std::printf("csv,run,%s,%d,%lld,%d,%.4f,%.4f,%.3f,%.2f,%lld\n",
                r.name.c_str(), config.model.layers,
                static_cast<long long>(config.model.parameters()),
                r.step.window, r.step.step_s, r.step.samples_per_s,
                r.step.model_tflops, Mfu(r.step.model_tflops),
                static_cast<long long>(r.step.device_peak_bytes));
  }
}

double CaseTable::Mfu(double tflops) const {
  return options_.peak_tflops > 0 ? 100 * tflops / options_.peak_tflops : 0.0;
}

double CaseTable::Add(const std::string& name, const StepMetrics& step) {
  rows_.push_back({name, step});
  const double sps = step.samples_per_s,
               first = rows_.front().step.samples_per_s;
  std::printf(
      "%-28s %6d %9.3f %9.3f %9.3f %9.2f %5.1f%% %9.3fx %7.2f GiB %7.3f "
      "%7.3f\n",
      name.c_str(), step.window, step.step_s, sps, step.optimizer_s,
      step.model_tflops, Mfu(step.model_tflops), first > 0 ? sps / first : 0.0,
      Gib(step.device_peak_bytes), step.h2d_wait_s, step.d2h_wait_s);
  std::fflush(stdout);
  return sps;
}

}  // namespace stronghold::core
