// engine_bench: RESIDENT vs STRONGHOLD vs L2L step time on the host device,
// the same model and data in one run, with ratios against RESIDENT, the
// device-arena peak and the chosen window. Not a test: it prints figures.
//
//   bazel run -c opt //core:engine_bench -- [layers hidden heads seq batch steps budget_layers
//                                            precision]
//
// precision: fp32 (default), bf16 or fp16 (RESIDENT is then the engine
// with W = L, as in the trainer).
//
// budget_layers sets the device budget to hold that many layers' worth of
// windowed state (default: half the model), so STRONGHOLD really offloads.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/planner.h"
#include "core/trainer.h"

namespace stronghold::core {
namespace {

class Meter : public TrainerObserver {
 public:
  void OnStep(const StepReport& r) override {
    reports.push_back(r);
  }
  void OnMessage(const std::string& m) override {
    if (m.find("chosen") != std::string::npos) std::printf("    %s\n", m.c_str());
  }
  void OnCheckpoint(const std::string&) override {}
  StopRequest StopRequested() override { return StopRequest::kNone; }
  std::vector<StepReport> reports;
};

struct Figures {
  double step_s = 0, compute_s = 0, h2d_wait_s = 0, d2h_wait_s = 0, optimizer_s = 0;
  int window = 0;
  int64_t peak = 0;
};

Figures Measure(const JobConfig& c, int64_t budget, int warmup) {
  const std::string dir = std::filesystem::temp_directory_path() / "engine_bench";
  auto trainer = Trainer::Create(c, {.job_dir = dir, .device_budget_bytes = budget, .trace_every = 0});
  if (!trainer.ok()) {
    std::fprintf(stderr, "engine_bench: %s\n", std::string(trainer.status().message()).c_str());
    std::exit(1);
  }
  Meter m;
  const absl::Status s = (*trainer)->Run(&m);
  if (!s.ok()) {
    std::fprintf(stderr, "engine_bench: %s\n", std::string(s.message()).c_str());
    std::exit(1);
  }
  Figures f;
  int n = 0;
  for (size_t i = warmup; i < m.reports.size(); ++i, ++n) {
    const StepReport& r = m.reports[i];
    f.step_s += r.step_s;
    f.compute_s += r.compute_s;
    f.h2d_wait_s += r.h2d_wait_s;
    f.d2h_wait_s += r.d2h_wait_s;
    f.optimizer_s += r.optimizer_s;
  }
  for (double* v : {&f.step_s, &f.compute_s, &f.h2d_wait_s, &f.d2h_wait_s, &f.optimizer_s}) *v /= n;
  f.window = m.reports.back().window;
  f.peak = m.reports.back().device_peak_bytes;
  return f;
}

int Main(int argc, char** argv) {
  auto arg = [&](int i, int fallback) { return argc > i ? std::atoi(argv[i]) : fallback; };
  JobConfig c;
  c.model = {.layers = arg(1, 8), .hidden = arg(2, 512), .heads = arg(3, 8),
             .seq_len = arg(4, 256), .vocab = 256};
  c.training.batch = c.training.micro_batch = arg(5, 4);
  c.training.steps = arg(6, 8);
  c.training.clip_norm = 1.0;
  const std::string precision = argc > 8 ? argv[8] : "fp32";
  if (precision == "bf16") {
    c.training.precision = Precision::kBf16;
  } else if (precision == "fp16") {
    c.training.precision = Precision::kFp16;
  } else if (precision != "fp32") {
    std::fprintf(stderr, "engine_bench: precision %s: expected fp32, bf16 or fp16\n",
                 precision.c_str());
    return 2;
  }
  const int budget_layers = arg(7, std::max(1, c.model.layers / 2));
  const int warmup = 2;  // step 1 profiles the window; step 2 settles

  JobConfig sh = c;
  sh.offload.method = OffloadMethod::kStronghold;
  sh.offload.window = 0;
  const int64_t budget = WindowedArenaBytes(sh, budget_layers - 1) + WorkingBytes(sh);
  std::printf("model: %d layers, hidden %d, heads %d, seq %d, batch %d; %lld parameters "
              "(%.1f MiB fp32); %s; %d steps, %d warm-up steps not counted\n",
              c.model.layers, c.model.hidden, c.model.heads, c.model.seq_len, c.training.batch,
              static_cast<long long>(c.model.parameters()), c.model.parameters() * 4 / 1048576.0,
              precision.c_str(), c.training.steps, warmup);
  std::printf("device budget for the windowed methods: %.1f MiB (room for %d layer slots)\n\n",
              budget / 1048576.0, budget_layers);

  std::printf("  RESIDENT ...\n");
  const Figures resident = Measure(c, 0, warmup);
  std::printf("  STRONGHOLD (automatic window) ...\n");
  const Figures stronghold = Measure(sh, budget, warmup);
  JobConfig l2l = c;
  l2l.offload.method = OffloadMethod::kL2L;
  std::printf("  L2L ...\n");
  const Figures l2l_f = Measure(l2l, budget, warmup);
  // The same engine with every layer kept (W = L): what activation
  // checkpointing alone costs, without any offloading.
  JobConfig all = sh;
  all.offload.window = c.model.layers;
  std::printf("  STRONGHOLD with W = L (recompute, no offload) ...\n");
  const Figures all_f = Measure(all, 0, warmup);

  std::printf("\n%-12s %7s %9s %9s %9s %9s %9s %10s %12s\n", "method", "window", "step_s",
              "compute_s", "h2d_wait", "d2h_wait", "opt_wait", "vs RESID.", "arena peak");
  auto row = [&](const char* name, const Figures& f) {
    std::printf("%-12s %7d %9.4f %9.4f %9.4f %9.4f %9.4f %9.3fx %8.1f MiB\n", name, f.window,
                f.step_s, f.compute_s, f.h2d_wait_s, f.d2h_wait_s, f.optimizer_s,
                f.step_s / resident.step_s, f.peak / 1048576.0);
  };
  row("RESIDENT", resident);
  row("STRONGHOLD", stronghold);
  row("L2L", l2l_f);
  row("W=L", all_f);
  std::printf("\nSTRONGHOLD step time / RESIDENT: %.3f (target <= 1.15 when copies are hidden)\n",
              stronghold.step_s / resident.step_s);
  std::printf("STRONGHOLD step time / W=L (same recomputation, nothing offloaded): %.3f\n",
              stronghold.step_s / all_f.step_s);
  return 0;
}

}  // namespace
}  // namespace stronghold::core

int main(int argc, char** argv) { return stronghold::core::Main(argc, argv); }
