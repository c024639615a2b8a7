#include "core/tools/bench_run.h"

#include <algorithm>
#include <cstdlib>
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

absl::StatusOr<EngineBenchArgs> ParseEngineBenchArgs(
    int argc, char** argv, int default_steps, int default_budget_percent) {
  auto arg = [&](int i, int fallback) {
    return argc > i ? std::atoi(argv[i]) : fallback;
  };
  EngineBenchArgs a;
  JobConfig& c = a.config;
  c.model = {.layers = arg(1, 8),
             .hidden = arg(2, 512),
             .heads = arg(3, 8),
             .seq_len = arg(4, 256),
             .vocab = 256};
  c.training.batch = c.training.micro_batch = arg(5, 4);
  c.training.steps = arg(6, default_steps);
  c.training.clip_norm = 1.0;
  a.budget_percent = arg(7, default_budget_percent);
  a.rounds = std::max(1, arg(8, 1));
  a.precision = argc > 9 ? argv[9] : "fp32";
  if (a.precision == "bf16") {
    c.training.precision = Precision::kBf16;
  } else if (a.precision == "fp16") {
    c.training.precision = Precision::kFp16;
  } else if (a.precision != "fp32") {
    return absl::InvalidArgumentError(absl::StrCat(
        "precision ", a.precision, ": expected fp32, bf16 or fp16"));
  }
  return a;
}

std::vector<EngineBenchCase> EngineBenchCases(const JobConfig& c,
                                              int64_t budget) {
  JobConfig sh = c;
  sh.offload.method = OffloadMethod::kStronghold;
  sh.offload.window = 0;
  JobConfig recompute = sh;
  recompute.offload.kept_activation_layers = -1;
  JobConfig l2l = c;
  l2l.offload.method = OffloadMethod::kL2L;
  // The same engine with every layer in the window and every layer
  // recomputed: what activation checkpointing alone costs, nothing offloaded.
  JobConfig all = recompute;
  all.offload.window = c.model.layers;
  // And with every layer's activations kept: the engine doing what RESIDENT
  // does (no offload, no recompute), so any gap left is the engine's own.
  JobConfig all_kept = all;
  all_kept.offload.kept_activation_layers = c.model.layers;
  // Updates during backward, undone and redone on clipped steps
  // (offload.speculative_updates): on a CPU the backups compete with compute.
  JobConfig speculative = sh;
  speculative.offload.speculative_updates = true;
  return {
      {"RESIDENT", c, 0},
      {"STRONGHOLD", sh, budget},  // automatic window and kept activations
      {"STRONGHOLD recompute", recompute, budget},
      {"L2L", l2l, budget},
      {"W=L recompute", all, 0},
      {"W=L kept", all_kept, 0},
      {"STRONGHOLD specul.", speculative, budget},
  };
}

}  // namespace stronghold::core
