// gpu_check: the engine on a real GPU. Run by deploy/gpu/check.sh on a GPU
// machine (CI only builds it).
//   1. parity: RESIDENT on the CPU (the reference) against RESIDENT,
//      STRONGHOLD W=1,2,3 and L2L on the GPU, 10 steps with gradient
//      accumulation and clipping; fp32 with TF32 off; a stated tolerance.
//   2. mixed precision: in bf16 and fp16, STRONGHOLD W=1,2 and L2L on the
//      GPU against RESIDENT (W = L) on the GPU in the same precision, and that
//      against the host device's W = L run in that precision. The tolerances
//      are first guesses: this part has not run on a GPU yet.
//   3. benchmark: RESIDENT vs STRONGHOLD (automatic window) vs L2L on a model
//      that fits the GPU, STRONGHOLD with a GPU budget far smaller than the
//      model, and STRONGHOLD in bf16. One table.
//
//   gpu_check [--quick]
#include <ATen/Context.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/cuda_device.h"
#include "core/loss_scale.h"
#include "core/planner.h"
#include "core/trainer.h"

namespace stronghold::core {
namespace {

class Meter : public TrainerObserver {
 public:
  void OnStep(const StepReport& r) override { reports.push_back(r); }
  void OnMessage(const std::string& m) override {
    if (m.find("chosen") != std::string::npos) std::printf("    %s\n", m.c_str());
  }
  void OnCheckpoint(const std::string&) override {}
  StopRequest StopRequested() override { return StopRequest::kNone; }
  std::vector<StepReport> reports;
};

struct Run {
  bool ok = false;
  std::string error;
  std::vector<StepReport> reports;
  std::vector<std::vector<float>> weights;
};

Run Train(const JobConfig& c, Device* device, int64_t budget, const std::string& name) {
  Run run;
  const std::string dir = std::filesystem::temp_directory_path() / ("gpu_check_" + name);
  auto trainer = Trainer::Create(c, {.job_dir = dir, .device = device,
                                     .device_budget_bytes = budget, .trace_every = 0});
  if (!trainer.ok()) {
    run.error = std::string(trainer.status().message());
    return run;
  }
  Meter m;
  const absl::Status s = (*trainer)->Run(&m);
  if (!s.ok()) {
    run.error = std::string(s.message());
    return run;
  }
  run.ok = true;
  run.reports = m.reports;
  run.weights = (*trainer)->Weights();
  return run;
}

double MaxRelDiff(const Run& a, const Run& b) {
  double worst = 0;
  for (size_t i = 0; i < a.reports.size() && i < b.reports.size(); ++i) {
    worst = std::max(worst, std::abs(a.reports[i].loss - b.reports[i].loss) /
                                std::max(1e-12, std::abs(a.reports[i].loss)));
  }
  return worst;
}

double MaxWeightDiff(const Run& a, const Run& b) {
  double worst = 0;
  for (size_t buf = 0; buf < a.weights.size() && buf < b.weights.size(); ++buf) {
    for (size_t i = 0; i < a.weights[buf].size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::abs(a.weights[buf][i] - b.weights[buf][i])));
    }
  }
  return worst;
}

// 6 layers, hidden 256, seq 128, batch 8 in 2 micro-batches, clip 0.5, 10 steps.
JobConfig ParityModel() {
  JobConfig c;
  c.model = {.layers = 6, .hidden = 256, .heads = 4, .seq_len = 128, .vocab = 256};
  c.training.steps = 10;
  c.training.batch = 8;
  c.training.micro_batch = 4;
  c.training.clip_norm = 0.5;
  c.training.warmup_steps = 2;
  return c;
}

int Parity(Device* gpu) {
  const JobConfig c = ParityModel();
  // After 10 steps of AdamW, fp32 kernels that differ between CPU and GPU
  // (summation order) leave losses within this relative tolerance.
  constexpr double kLossTolerance = 1e-3;
  constexpr double kWeightTolerance = 1e-3;

  std::printf("parity (6 layers, hidden 256, seq 128, batch 8 in 2 micro-batches, clip 0.5, 10 steps)\n");
  const Run cpu = Train(c, nullptr, 0, "cpu");
  if (!cpu.ok) {
    std::printf("  CPU reference failed: %s\n", cpu.error.c_str());
    return 1;
  }
  int failures = 0;
  auto check = [&](const char* name, OffloadMethod method, int window) {
    JobConfig g = c;
    g.offload.method = method;
    g.offload.window = window;
    const Run r = Train(g, gpu, 0, name);
    if (!r.ok) {
      std::printf("  %-16s FAILED: %s\n", name, r.error.c_str());
      ++failures;
      return;
    }
    const double loss = MaxRelDiff(cpu, r), weight = MaxWeightDiff(cpu, r);
    const bool pass = loss <= kLossTolerance && weight <= kWeightTolerance;
    failures += pass ? 0 : 1;
    std::printf("  %-16s loss rel diff %.2e  weight abs diff %.2e  %s\n", name, loss, weight,
                pass ? "PASS" : "FAIL");
  };
  check("RESIDENT (GPU)", OffloadMethod::kResident, 0);
  check("STRONGHOLD W=1", OffloadMethod::kStronghold, 1);
  check("STRONGHOLD W=2", OffloadMethod::kStronghold, 2);
  check("STRONGHOLD W=3", OffloadMethod::kStronghold, 3);
  check("L2L", OffloadMethod::kL2L, 0);
  return failures;
}

// The same model as Parity(), in bf16 and fp16.
int MixedParity(Device* gpu) {
  const JobConfig c = ParityModel();
  // The windows run the same kernels on the same data as W = L: only
  // non-deterministic kernels (atomics) can separate them.
  constexpr double kWindowLossTolerance = 1e-3;
  // Host and GPU 16-bit kernels round differently; 10 steps drift apart.
  constexpr double kDeviceLossTolerance = 2e-2;
  int failures = 0;
  for (Precision p : {Precision::kBf16, Precision::kFp16}) {
    JobConfig m = c;
    m.training.precision = p;
    std::printf("\n%s parity (the model above)\n", PrecisionName(p));
    const Run host = Train(m, nullptr, 0, "host_lowp");  // RESIDENT in bf16/fp16 = W = L
    const Run full = Train(m, gpu, 0, "gpu_full_lowp");
    if (!host.ok || !full.ok) {
      std::printf("  W = L FAILED: %s\n", (host.ok ? full.error : host.error).c_str());
      ++failures;
      continue;
    }
    const double device = MaxRelDiff(host, full);
    failures += device <= kDeviceLossTolerance ? 0 : 1;
    std::printf("  %-16s loss rel diff to the host %.2e  %s\n", "W = L (GPU)", device,
                device <= kDeviceLossTolerance ? "PASS" : "FAIL");
    for (int w : {0, 1, 2}) {
      JobConfig g = m;
      g.offload.method = w == 0 ? OffloadMethod::kL2L : OffloadMethod::kStronghold;
      g.offload.window = w;
      const std::string name = w == 0 ? "L2L" : "STRONGHOLD W=" + std::to_string(w);
      const Run r = Train(g, gpu, 0, "gpu_lowp");
      if (!r.ok) {
        std::printf("  %-16s FAILED: %s\n", name.c_str(), r.error.c_str());
        ++failures;
        continue;
      }
      const double loss = MaxRelDiff(full, r), weight = MaxWeightDiff(full, r);
      const bool pass = loss <= kWindowLossTolerance;
      failures += pass ? 0 : 1;
      std::printf("  %-16s loss rel diff to W = L %.2e  weight abs diff %.2e  %s\n", name.c_str(),
                  loss, weight, pass ? "PASS" : "FAIL");
    }
  }
  return failures;
}

void Bench(Device* gpu, bool quick) {
  JobConfig c;
  c.model = {.layers = quick ? 8 : 16, .hidden = 2048, .heads = 16, .seq_len = 1024,
             .vocab = 50304};
  c.training.batch = c.training.micro_batch = 4;
  c.training.steps = quick ? 4 : 6;
  const int warmup = 2;
  std::printf("\nbenchmark: %d layers, hidden 2048, seq 1024, batch 4, fp32 (TF32 off), %d steps "
              "(%d warm-up not counted); %.3fB parameters\n",
              c.model.layers, c.training.steps, warmup, c.model.parameters() / 1e9);
  std::printf("%-28s %6s %9s %9s %9s %9s %10s %11s\n", "method", "window", "step_s", "samples/s",
              "opt_wait", "TFLOPS", "vs RESID.", "GPU arena");
  double resident_s = 0;
  auto bench = [&](const char* name, OffloadMethod method, int window, int64_t budget) {
    JobConfig g = c;
    g.offload.method = method;
    g.offload.window = window;
    const Run r = Train(g, gpu, budget, name);
    if (!r.ok) {
      std::printf("%-28s does not run: %s\n", name, r.error.c_str());
      return;
    }
    double step_s = 0, opt = 0, tflops = 0;
    int n = 0;
    for (size_t i = warmup; i < r.reports.size(); ++i, ++n) {
      step_s += r.reports[i].step_s;
      opt += r.reports[i].optimizer_s;
      tflops += r.reports[i].model_tflops;
    }
    step_s /= n;
    if (resident_s == 0) resident_s = step_s;
    std::printf("%-28s %6d %9.3f %9.3f %9.3f %9.2f %9.3fx %7.2f GiB\n", name,
                r.reports.back().window, step_s, c.training.batch / step_s, opt / n, tflops / n,
                step_s / resident_s, r.reports.back().device_peak_bytes / 1073741824.0);
  };
  bench("RESIDENT", OffloadMethod::kResident, 0, 0);
  bench("STRONGHOLD (auto window)", OffloadMethod::kStronghold, 0, 0);
  bench("L2L", OffloadMethod::kL2L, 0, 0);
  JobConfig small = c;
  small.offload.method = OffloadMethod::kStronghold;
  const int64_t budget = WindowedArenaBytes(small, 3) + WorkingBytes(small);
  std::printf("(GPU budget for the next row: %.2f GiB, the model's fp32 weights alone are %.2f GiB)\n",
              budget / 1073741824.0, c.model.parameters() * 4 / 1073741824.0);
  bench("STRONGHOLD, small budget", OffloadMethod::kStronghold, 0, budget);
  c.training.precision = Precision::kBf16;
  bench("STRONGHOLD bf16 (auto window)", OffloadMethod::kStronghold, 0, 0);
}

int Main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  absl::StatusOr<std::unique_ptr<Device>> gpu = CreateCudaDevice(0, 0);
  if (!gpu.ok()) {
    std::printf("gpu_check: %s\n", std::string(gpu.status().message()).c_str());
    return 2;
  }
  std::printf("device %s, budget %.1f GiB\n\n", (*gpu)->name().c_str(),
              (*gpu)->budget_bytes() / 1073741824.0);
  const int failures = Parity(gpu->get()) + MixedParity(gpu->get());
  Bench(gpu->get(), quick);
  std::printf("\nparity: %s\n", failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace stronghold::core

int main(int argc, char** argv) { return stronghold::core::Main(argc, argv); }
