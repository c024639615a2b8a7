// engine_bench: RESIDENT vs STRONGHOLD vs L2L step time on the host device,
// the same model and data in one run, with ratios against RESIDENT, the
// device-arena peak and the chosen window. Not a test: it prints figures.
//
//   bazel run -c opt //core:engine_bench -- [layers hidden heads seq batch
//   steps budget_percent
//                                            repeats precision]
//
// precision: fp32 (default), bf16 or fp16 (RESIDENT is then the engine
// with W = L, as in the trainer).
//
// The windowed methods get a device budget of budget_percent (default 50) of
// the device memory RESIDENT needs, so STRONGHOLD really offloads; what the
// window leaves of it keeps the last layers' activations (no recompute).
// With repeats > 1 every case runs once per round and reports its fastest
// round (for shared, noisy machines).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/plan/planner.h"
#include "core/tools/bench_run.h"
#include "core/train/trainer.h"

namespace stronghold::core {
namespace {

class Meter : public TrainerObserver {
 public:
  void OnStep(const StepMetrics& r) override { reports.push_back(r); }
  void OnMessage(const std::string& m) override {
    if (m.find("chosen") != std::string::npos)
      std::printf("    %s\n", m.c_str());
  }
  void OnCheckpoint(const std::string&) override {}
  StopRequest StopRequested() override { return StopRequest::kNone; }
  std::vector<StepMetrics> reports;
};

struct Figures {
  double step_s = 0, compute_s = 0, h2d_wait_s = 0, d2h_wait_s = 0,
         optimizer_s = 0;
  int window = 0;
  int64_t peak = 0;
};

Figures Measure(const JobConfig& c, int64_t budget, int warmup) {
  const std::string dir =
      std::filesystem::temp_directory_path() / "engine_bench";
  auto trainer = Trainer::Create(
      c, PlanExecution(c, {.device = "cpu", .device_bytes = budget}),
      {.job_dir = dir, .trace_every = 0});
  if (!trainer.ok()) {
    std::fprintf(stderr, "engine_bench: %s\n",
                 std::string(trainer.status().message()).c_str());
    std::exit(1);
  }
  Meter m;
  const absl::Status s = (*trainer)->Run(&m);
  if (!s.ok()) {
    std::fprintf(stderr, "engine_bench: %s\n",
                 std::string(s.message()).c_str());
    std::exit(1);
  }
  Figures f;
  int n = 0;
  for (size_t i = warmup; i < m.reports.size(); ++i, ++n) {
    const StepMetrics& r = m.reports[i];
    f.step_s += r.step_s;
    f.compute_s += r.compute_s;
    f.h2d_wait_s += r.h2d_wait_s;
    f.d2h_wait_s += r.d2h_wait_s;
    f.optimizer_s += r.optimizer_s;
  }
  for (double* v :
       {&f.step_s, &f.compute_s, &f.h2d_wait_s, &f.d2h_wait_s, &f.optimizer_s})
    *v /= n;
  f.window = m.reports.back().window;
  f.peak = m.reports.back().device_peak_bytes;
  return f;
}

int Main(int argc, char** argv) {
  absl::StatusOr<EngineBenchArgs> args = ParseEngineBenchArgs(
      argc, argv, /*default_steps=*/8, /*default_budget_percent=*/50);
  if (!args.ok()) {
    std::fprintf(stderr, "engine_bench: %s\n",
                 std::string(args.status().message()).c_str());
    return 2;
  }
  const JobConfig& c = args->config;
  const int budget_percent = args->budget_percent;
  const int repeats = args->rounds;
  const std::string& precision = args->precision;
  const int warmup = 2;  // step 1 profiles the window; step 2 settles

  // The windowed methods get a device with budget_percent of the memory
  // RESIDENT needs (its whole training state and every layer's activations).
  const int64_t resident_need =
      PlanExecution(c, {.device = "cpu"}).bytes_device;
  const int64_t budget = resident_need * budget_percent / 100;
  std::printf(
      "model: %d layers, hidden %d, heads %d, seq %d, batch %d; %lld "
      "parameters (%.1f MiB fp32); %s; %d steps, %d warm-up steps not "
      "counted\n",
      c.model.layers, c.model.hidden, c.model.heads, c.model.seq_len,
      c.training.batch, static_cast<long long>(c.model.parameters()),
      c.model.parameters() * 4 / 1048576.0, precision.c_str(), c.training.steps,
      warmup);
  std::printf(
      "device budget for the windowed methods: %.1f MiB, %d%% of the %.1f MiB "
      "RESIDENT needs\n\n",
      budget / 1048576.0, budget_percent, resident_need / 1048576.0);

  // Every case runs once per round; each keeps its fastest round, so a burst
  // of load from other processes on a shared machine hurts all cases alike.
  struct Case {
    const char* name;
    JobConfig config;
    int64_t budget;
    Figures best;
  };
  std::vector<Case> cases;
  for (const EngineBenchCase& k : EngineBenchCases(c, budget))
    cases.push_back({k.name, k.config, k.budget, {}});
  for (int round = 1; round <= repeats; ++round) {
    for (Case& k : cases) {
      std::printf("  round %d/%d: %s ...\n", round, repeats, k.name);
      std::fflush(stdout);
      const Figures f = Measure(k.config, k.budget, warmup);
      if (round == 1 || f.step_s < k.best.step_s) k.best = f;
    }
  }
  const Figures& resident = cases[0].best;
  const Figures& stronghold = cases[1].best;
  const Figures& recompute_f = cases[2].best;
  const Figures& all_f = cases[4].best;

  // The layers whose activations the run kept: its plan, settled on the
  // window it chose.
  auto kept = [&](const JobConfig& j, const Figures& f, int64_t b) {
    const ExecutionPlan plan =
        PlanExecution(j, {.device = "cpu", .device_bytes = b});
    return plan.reference
               ? j.model.layers
               : SettleWindow(j, plan, f.window).kept_activation_layers;
  };
  std::printf("\n%-20s %7s %5s %9s %9s %9s %9s %9s %10s %12s\n", "method",
              "window", "kept", "step_s", "compute_s", "h2d_wait", "d2h_wait",
              "opt_wait", "vs RESID.", "arena peak");
  auto row = [&](const char* name, const Figures& f, int k) {
    std::printf(
        "%-20s %7d %5d %9.4f %9.4f %9.4f %9.4f %9.4f %9.3fx %8.1f MiB\n", name,
        f.window, k, f.step_s, f.compute_s, f.h2d_wait_s, f.d2h_wait_s,
        f.optimizer_s, f.step_s / resident.step_s, f.peak / 1048576.0);
  };
  for (const Case& k : cases)
    row(k.name, k.best, kept(k.config, k.best, k.budget));
  std::printf(
      "\nSTRONGHOLD step time / RESIDENT: %.3f (target <= 1.15 when copies are "
      "hidden)\n",
      stronghold.step_s / resident.step_s);
  std::printf(
      "STRONGHOLD recomputing every layer / W=L (same recomputation, nothing "
      "offloaded): %.3f\n",
      recompute_f.step_s / all_f.step_s);
  std::printf(
      "W=L keeping every layer (nothing offloaded or recomputed) / RESIDENT: "
      "%.3f\n",
      cases[5].best.step_s / resident.step_s);
  std::printf("STRONGHOLD with speculative updates / without: %.3f\n",
              cases[6].best.step_s / stronghold.step_s);
  return 0;
}

}  // namespace
}  // namespace stronghold::core

int main(int argc, char** argv) { return stronghold::core::Main(argc, argv); }
