#include "core/tools/bench_run.h"

#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/plan/planner.h"

namespace stronghold::core {
namespace {

// Keeps every report and the last trace; asks to cancel once `steps` steps
// are reported.
class ReportLog : public TrainerObserver {
 public:
  ReportLog(int64_t steps, std::function<void(const std::string&)> on_message)
      : steps_(steps), on_message_(std::move(on_message)) {}
  void OnStep(const StepMetrics& r) override { reports.push_back(r); }
  void OnMessage(const std::string& m) override {
    if (on_message_) on_message_(m);
  }
  void OnCheckpoint(const std::string&) override {}
  void OnTrace(int64_t, const std::string& json) override { last_trace = json; }
  StopRequest StopRequested() override {
    return static_cast<int64_t>(reports.size()) >= steps_ ? StopRequest::kCancel
                                                          : StopRequest::kNone;
  }

  std::vector<StepMetrics> reports;
  std::string last_trace;

 private:
  const int64_t steps_;
  const std::function<void(const std::string&)> on_message_;
};

}  // namespace

absl::StatusOr<std::vector<StepMetrics>> RunSteps(
    const JobConfig& config, const BenchRunOptions& options) {
  JobConfig c = config;
  ++c.training.steps;  // cancelled before this one: no final checkpoint
  std::error_code ignored;
  std::filesystem::remove_all(options.job_dir, ignored);
  const ExecutionPlan plan = PlanExecution(
      c, {.device = options.device != nullptr ? options.device->name() : "cpu",
          .device_bytes = options.device_budget_bytes});
  auto trainer =
      Trainer::Create(c, plan,
                      {.job_dir = options.job_dir,
                       .device = options.device,
                       .trace_every = options.trace_file.empty() ? 0 : 1});
  if (!trainer.ok()) return trainer.status();
  ReportLog log(config.training.steps, options.on_message);
  const absl::Status s = (*trainer)->Run(&log);
  if (!s.ok() && !absl::IsCancelled(s)) return s;
  if (static_cast<int64_t>(log.reports.size()) < config.training.steps) {
    return absl::InternalError(absl::StrCat("the run ended after ",
                                            log.reports.size(), " of its ",
                                            config.training.steps, " steps"));
  }
  log.reports.resize(config.training.steps);
  if (!options.trace_file.empty() && !log.last_trace.empty()) {
    std::ofstream(options.trace_file) << log.last_trace;
  }
  return std::move(log.reports);
}

StepMetrics MeanAfterWarmup(const JobConfig& config,
                            const std::vector<StepMetrics>& reports,
                            int warmup) {
  StepMetrics mean = reports.back();
  const size_t first = static_cast<size_t>(warmup) < reports.size()
                           ? warmup
                           : reports.size() - 1;
  double* const times[] = {&mean.step_s,      &mean.compute_s,
                           &mean.optimizer_s, &mean.h2d_wait_s,
                           &mean.d2h_wait_s,  &mean.nvme_wait_s};
  for (double* t : times) *t = 0;
  for (size_t i = first; i < reports.size(); ++i) {
    const StepMetrics& r = reports[i];
    mean.step_s += r.step_s;
    mean.compute_s += r.compute_s;
    mean.optimizer_s += r.optimizer_s;
    mean.h2d_wait_s += r.h2d_wait_s;
    mean.d2h_wait_s += r.d2h_wait_s;
    mean.nvme_wait_s += r.nvme_wait_s;
  }
  for (double* t : times) *t /= static_cast<double>(reports.size() - first);
  const int64_t batch = config.training.batch;
  mean.samples_per_s = mean.step_s > 0 ? batch / mean.step_s : 0;
  mean.tokens_per_s = mean.samples_per_s * config.model.seq_len;
  mean.model_tflops =
      mean.step_s > 0
          ? config.model.model_flops_per_step(batch) / mean.step_s / 1e12
          : 0;
  return mean;
}

}  // namespace stronghold::core
