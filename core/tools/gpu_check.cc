// gpu_check: the engine on a real GPU. Run by deploy/gpu/check.sh on a GPU
// machine (CI only builds it).
//   1. parity: RESIDENT on the CPU (the reference) against RESIDENT,
//      STRONGHOLD W=1,2,3 and L2L on the GPU, 10 steps with gradient
//      accumulation and clipping; fp32 with TF32 off; a stated tolerance.
//   2. mixed precision: in bf16 and fp16, STRONGHOLD W=1,2 and L2L on the
//      GPU against RESIDENT (W = L) on the GPU in the same precision, and that
//      against the host device's W = L run in that precision. The tolerances
//      are first guesses: this part has not run on a GPU yet.
//   3. cases (the seed's, short; docs/benchmarks.md "GPU check"): with a GPU
//      budget that emulates a 32 GB card (--budget-gib), the seed's model
//      (hidden 2048, 16 heads, seq 1024, batch 4, V 50304, fp32): the
//      planner's largest RESIDENT, STRONGHOLD and L2L models under the
//      budgets; then, on the largest RESIDENT model, RESIDENT (all on the
//      GPU: autograd and AdamW on the GPU, the planner's RESIDENT), RESIDENT
//      in the engine (every layer kept, W = L), STRONGHOLD (automatic
//      window), RESIDENT (all on the GPU) and STRONGHOLD without clipping,
//      STRONGHOLD with speculative updates, a window sweep, L2L, STRONGHOLD
//      under a small budget, and in bf16 (in this order: runs that do not
//      start within --max-seconds are skipped).
//      One table, CSV lines, and a `peer-args:` line for the DeepSpeed peer.
//
//   gpu_check [--quick] [--bench-only] [--layers N] [--hidden N] [--heads N]
//             [--seq-len N] [--batch N] [--vocab N] [--steps N] [--warmup N]
//             [--budget-gib X] [--host-budget-gib X] [--windows 2,4,8]
//             [--tf32] [--max-seconds S] [--trace-dir DIR] [--plan-only]
#include <ATen/Context.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

#include "core/device/cuda_device.h"
#include "core/model/gpt.h"
#include "core/model/gpt_layout.h"
#include "core/engine/loss_scale.h"
#include "core/plan/planner.h"
#include "core/train/trainer.h"

namespace stronghold::core {
namespace {

class Meter : public TrainerObserver {
 public:
  void OnStep(const StepReport& r) override { reports.push_back(r); }
  void OnTrace(int64_t, const std::string& json) override { last_trace = json; }
  void OnMessage(const std::string& m) override {
    if (m.find("chosen") != std::string::npos) std::printf("    %s\n", m.c_str());
  }
  void OnCheckpoint(const std::string&) override {}
  // Cancels once `cancel_after` steps are reported (0 = never): the trainer
  // writes no checkpoint for a cancelled run.
  StopRequest StopRequested() override {
    return cancel_after > 0 && static_cast<int64_t>(reports.size()) >= cancel_after
               ? StopRequest::kCancel
               : StopRequest::kNone;
  }
  std::vector<StepReport> reports;
  int64_t cancel_after = 0;
  std::string last_trace;  // the Chrome trace of the last step reported
};

struct Run {
  bool ok = false;
  std::string error;
  std::vector<StepReport> reports;
  std::vector<std::vector<float>> weights;
};

// Trains `c` for c.training.steps steps. checkpoint = false: without the
// final checkpoint (the benchmark's models would write 14 GB each): one more
// step is configured and the run is cancelled before it.
Run Train(const JobConfig& config, Device* device, int64_t budget, const std::string& name,
          bool checkpoint = true, const std::string& trace_file = "") {
  Run run;
  JobConfig c = config;
  if (!checkpoint) ++c.training.steps;
  const std::string dir = std::filesystem::temp_directory_path() / ("gpu_check_" + name);
  const ExecutionPlan plan =
      PlanExecution(c, {.device = device != nullptr ? device->name() : "cpu", .device_bytes = budget});
  auto trainer = Trainer::Create(c, plan, {.job_dir = dir, .device = device,
                                     .trace_every = trace_file.empty() ? 0 : 1});
  if (!trainer.ok()) {
    run.error = std::string(trainer.status().message());
    return run;
  }
  Meter m;
  if (!checkpoint) m.cancel_after = config.training.steps;
  const absl::Status s = (*trainer)->Run(&m);
  if (!s.ok() && !(absl::IsCancelled(s) && !checkpoint &&
                   static_cast<int64_t>(m.reports.size()) == config.training.steps)) {
    run.error = std::string(s.message());
    return run;
  }
  run.ok = true;
  run.reports = m.reports;
  if (!trace_file.empty() && !m.last_trace.empty()) {
    std::ofstream(trace_file) << m.last_trace;
  }
  if (checkpoint) {  // parity only
    auto weights = (*trainer)->Weights();
    if (!weights.ok()) {
      run.ok = false;
      run.error = std::string(weights.status().message());
      return run;
    }
    run.weights = *std::move(weights);
  }
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
  auto check = [&](const char* name, OffloadMethod method, int window, bool emb_on_gpu = false,
                   int resident = 0) {
    JobConfig g = c;
    g.offload.method = method;
    g.offload.window = window;
    g.offload.device_embedding_optimizer = emb_on_gpu;
    g.offload.device_resident_layers = resident;
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
  // The embedding's AdamW in LibTorch ops on the GPU (core/optim/device_adamw.h).
  check("W=2, emb. on GPU", OffloadMethod::kStronghold, 2, /*emb_on_gpu=*/true);
  check("W=2, 2 layers on GPU", OffloadMethod::kStronghold, 2, /*emb_on_gpu=*/true, /*resident=*/2);
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

struct Options {
  bool quick = false;
  bool bench_only = false;
  bool plan_only = false;     // the planner's part only; needs no GPU
  int layers = 0;  // 0 = the planner's largest RESIDENT model
  int hidden = 2048, heads = 16, seq_len = 1024, batch = 4, vocab = 50304;
  int steps = 0, warmup = 2;  // steps 0 = 4 (--quick) or 5
  double budget_gib = 32;     // emulated card
  double host_budget_gib = 0; // 0 = 90% of physical memory
  std::vector<int> windows;   // sweep; empty = 2,4,8 (none with --quick)
  bool windows_given = false;
  bool tf32 = false;
  double max_seconds = 0;     // 0 = 80 (--quick) or 140: later runs are skipped
  // Where each benchmark row's last step goes as a Chrome trace (empty:
  // none); the copies in it are timed on the GPU, compute spans are the
  // host's launches.
  std::string trace_dir;
};

// Dense peaks (no sparsity) from NVIDIA's datasheets, TFLOPS: fp32 without
// tensor cores, TF32 and bf16 tensor cores. 0 = unknown card.
struct Peaks {
  double fp32 = 0, tf32 = 0, bf16 = 0;
  std::string card;
};

Peaks DevicePeaks(const std::string& name) {
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (has("H200")) return {66.9, 494.7, 989.4, "H200 SXM"};
  if (has("H100") && has("PCIe")) return {51.2, 378.0, 756.0, "H100 PCIe"};
  if (has("H100") && has("NVL")) return {60.0, 417.5, 835.0, "H100 NVL"};
  if (has("H100")) return {66.9, 494.7, 989.4, "H100 SXM"};
  if (has("A100")) return {19.5, 156.0, 312.0, "A100"};
  if (has("V100")) return {15.7, 0, 0, "V100 SXM2"};
  return {};
}

int64_t HostBudget(const Options& o) {
  if (o.host_budget_gib > 0) return static_cast<int64_t>(o.host_budget_gib * (1LL << 30));
  const int64_t phys = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
  return phys / 10 * 9;
}

double Gib(int64_t b) { return b / 1073741824.0; }

struct Row {
  std::string name;
  int window = 0;
  double step_s = 0, opt_s = 0, tflops = 0;
  double h2d_wait_s = 0, d2h_wait_s = 0;  // the engine's rows
  int64_t peak_bytes = 0;
  double samples_per_s() const { return step_s > 0 ? batch / step_s : 0; }
  int batch = 0;
};

// RESIDENT as Megatron-LM runs it (the planner's RESIDENT plan): the whole
// training state on the GPU, one autograd graph per step (no
// recomputation), LibTorch's AdamW on the GPU, global-norm clipping. Weights
// are drawn N(0, 0.02) on the GPU (speed only; the engine's runs use
// core/gpt_init). The caching allocator is capped at the emulated budget.
absl::StatusOr<Row> ResidentAllOnGpu(const JobConfig& c, int warmup) {
  Row row{.name = "RESIDENT (all on GPU)", .window = c.model.layers, .batch = c.training.batch};
  try {
    const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCUDA, 0);
    const std::vector<BufferLayout> layout = ModelLayout(c.model);
    std::vector<torch::Tensor> params;
    for (const BufferLayout& l : layout) {
      params.push_back(torch::empty({l.count}, opts).normal_(0.0, 0.02).set_requires_grad(true));
    }
    torch::optim::AdamW adam(params, torch::optim::AdamWOptions(c.training.lr)
                                         .betas({c.training.beta1, c.training.beta2})
                                         .eps(c.training.eps)
                                         .weight_decay(c.training.weight_decay));
    c10::cuda::CUDACachingAllocator::resetPeakStats(0);
    const int64_t b = c.training.batch, s = c.model.seq_len;
    const auto tok = torch::TensorOptions().dtype(torch::kInt64).device(torch::kCUDA, 0);
    double total = 0;
    int n = 0;
    for (int step = 0; step < c.training.steps; ++step) {
      torch::Tensor data = torch::randint(0, c.model.vocab, {b, s + 1}, tok);
      torch::cuda::synchronize();
      const auto t0 = std::chrono::steady_clock::now();
      adam.zero_grad();
      torch::Tensor x = gpt::Embed(params.front(), layout.front(), data.narrow(1, 0, s));
      for (size_t i = 1; i + 1 < layout.size(); ++i) {
        x = gpt::Block(params[i], layout[i], x, c.model.heads);
      }
      torch::Tensor loss = gpt::HeadLoss(params.back(), layout.back(), params.front(),
                                         layout.front(), x, data.narrow(1, 1, s));
      loss.backward();
      if (c.training.clip_norm > 0) torch::nn::utils::clip_grad_norm_(params, c.training.clip_norm);
      adam.step();
      torch::cuda::synchronize();
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (step >= warmup) {
        total += dt;
        ++n;
      }
    }
    row.step_s = total / std::max(n, 1);
    row.tflops = c.model.model_flops_per_step(b) / row.step_s / 1e12;
    row.peak_bytes = c10::cuda::CUDACachingAllocator::getDeviceStats(0)
                         .allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)]
                         .peak;
  } catch (const c10::Error& e) {
    c10::cuda::CUDACachingAllocator::emptyCache();
    std::string what = e.what_without_backtrace();
    return absl::ResourceExhaustedError(what.substr(0, what.find('\n')));
  } catch (const std::exception& e) {
    c10::cuda::CUDACachingAllocator::emptyCache();
    return absl::InternalError(e.what());
  }
  c10::cuda::CUDACachingAllocator::emptyCache();
  return row;
}

void PrintPlan(const char* method, const JobConfig& c, const NodeBudgets& node) {
  JobConfig m = c;
  const int layers = MaxTrainableLayers(m, node);
  if (layers == 0) {
    m.model.layers = 1;
    std::printf("  %-12s not even 1 layer fits: %s\n", method, PlanExecution(m, node).reason.c_str());
    return;
  }
  m.model.layers = layers;
  const ExecutionPlan plan = PlanExecution(m, node);
  m.model.layers = layers + 1;
  const ExecutionPlan next = PlanExecution(m, node);
  std::printf("  %-12s %4d layers  %6.3fB params  window %3s  device %6.2f / %.2f GiB  host %7.2f / "
              "%.2f GiB\n               one more layer: %s\n",
              method, layers, plan.parameters / 1e9,
              c.offload.method == OffloadMethod::kResident ? "-" : std::to_string(plan.window).c_str(),
              Gib(plan.bytes_device), Gib(plan.budget_device_bytes),
              Gib(plan.bytes_host + plan.bytes_pinned), Gib(plan.budget_host_bytes),
              next.reason.c_str());
  std::printf("csv,plan,%s,%d,%lld,%d,%lld,%lld,%lld,%lld\n", method, layers,
              static_cast<long long>(plan.parameters), plan.window,
              static_cast<long long>(plan.bytes_device),
              static_cast<long long>(plan.budget_device_bytes),
              static_cast<long long>(plan.bytes_host + plan.bytes_pinned),
              static_cast<long long>(plan.budget_host_bytes));
}

// The cases' model at one layer, and its training settings.
JobConfig CasesConfig(const Options& o) {
  JobConfig c;
  c.model = {.layers = 1, .hidden = o.hidden, .heads = o.heads, .seq_len = o.seq_len, .vocab = o.vocab};
  c.training.batch = c.training.micro_batch = o.batch;
  c.training.steps = o.steps > 0 ? o.steps : (o.quick ? 4 : 5);
  c.training.lr = 1e-4;  // as strongholdctl bench: a fresh fp32 model stays finite
  c.training.clip_norm = 1.0;
  return c;
}

// Prints the planner's largest models under the budgets; returns RESIDENT's
// number of layers.
int PlanSection(const Options& o) {
  const JobConfig c = CasesConfig(o);
  const int64_t budget = static_cast<int64_t>(o.budget_gib * (1LL << 30));
  const NodeBudgets node{.device = "cuda:0", .device_bytes = budget, .host_bytes = HostBudget(o)};

  std::printf("\ncases: hidden %d, %d heads, seq %d, batch %d, vocab %d, fp32 (TF32 %s); GPU budget "
              "%.1f GiB (an emulated %.0f GB card), host budget %.1f GiB\n",
              o.hidden, o.heads, o.seq_len, o.batch, o.vocab, o.tf32 ? "on" : "off", o.budget_gib,
              o.budget_gib, Gib(node.host_bytes));
  std::printf("largest trainable models (the planner: MaxTrainableLayers / PlanExecution; not run):\n");
  std::printf("csv,plan,method,layers,parameters,window,device_plan_bytes,device_budget_bytes,"
              "host_plan_bytes,host_budget_bytes\n");
  int resident_layers = 0;
  for (OffloadMethod m : {OffloadMethod::kResident, OffloadMethod::kStronghold, OffloadMethod::kL2L}) {
    JobConfig mc = c;
    mc.offload.method = m;
    const char* name = m == OffloadMethod::kResident ? "RESIDENT"
                       : m == OffloadMethod::kL2L    ? "L2L"
                                                     : "STRONGHOLD";
    // RESIDENT here is LibTorch's all on the GPU (row 1 below): the whole
    // training state on the device, as the planner's reference table plans
    // it on a node whose compute device is the host (on a GPU node the
    // daemon runs RESIDENT as the engine with every layer kept instead).
    const NodeBudgets all_on_device{.device = "cpu", .device_bytes = budget};
    const NodeBudgets& planned = m == OffloadMethod::kResident ? all_on_device : node;
    PrintPlan(name, mc, planned);
    if (m == OffloadMethod::kResident) resident_layers = MaxTrainableLayers(mc, planned);
  }
  return resident_layers;
}

int Cases(Device* gpu, const Options& o, const Peaks& peaks) {
  const auto begin = std::chrono::steady_clock::now();
  const double max_s = o.max_seconds > 0 ? o.max_seconds : (o.quick ? 80 : 140);
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  };
  const int64_t budget = static_cast<int64_t>(o.budget_gib * (1LL << 30));
  JobConfig c = CasesConfig(o);
  const int resident_layers = PlanSection(o);
  c.model.layers = o.layers > 0 ? o.layers : resident_layers;
  if (c.model.layers <= 0) {
    std::printf("no RESIDENT model fits the budget; give --layers\n");
    return 1;
  }
  const double peak = o.tf32 ? peaks.tf32 : peaks.fp32;
  std::printf("\nruns on %s%d layers (%.3fB parameters), %d steps each, the first %d not counted; "
              "MFU against %s's dense %s peak %.1f TFLOPS (bf16 dense peak %.1f); model FLOPs "
              "(Megatron's formula; the engine's methods recompute the forward of layers whose "
              "activations are not kept, up to ~4/3 of it)\n",
              o.layers > 0 ? "" : "the largest RESIDENT model, ", c.model.layers,
              c.model.parameters() / 1e9, c.training.steps, o.warmup,
              peaks.card.empty() ? "an unknown card" : peaks.card.c_str(),
              o.tf32 ? "TF32 tensor-core" : "fp32 (no tensor cores)", peak, peaks.bf16);
  std::printf("%-28s %6s %9s %9s %9s %9s %6s %10s %11s %7s %7s\n", "method", "window", "step_s",
              "samples/s", "opt_wait", "TFLOPS", "MFU", "vs RESID.", "GPU peak", "h2d_w", "d2h_w");
  std::vector<Row> rows;
  double resident_sps = 0;
  auto print = [&](const Row& r) {
    const double sps = r.samples_per_s();
    if (resident_sps == 0) resident_sps = sps;
    std::printf("%-28s %6d %9.3f %9.3f %9.3f %9.2f %5.1f%% %9.3fx %7.2f GiB %7.3f %7.3f\n",
                r.name.c_str(), r.window, r.step_s, sps, r.opt_s, r.tflops,
                peak > 0 ? 100 * r.tflops / peak : 0.0, sps / resident_sps, Gib(r.peak_bytes),
                r.h2d_wait_s, r.d2h_wait_s);
    std::fflush(stdout);
    rows.push_back(r);
  };
  auto skipped = [&](const std::string& name) {
    if (elapsed() < max_s) return false;
    std::printf("%-28s skipped: the cases' time box of %.0f s is spent\n", name.c_str(), max_s);
    return true;
  };
  // 1. RESIDENT, all on the GPU, with LibTorch's allocator capped at the
  // emulated card. Should the planner's estimate be short of what autograd
  // really keeps, it runs once more without the cap and says so, so that the
  // comparison still has its baseline on the same model.
  double all_gpu = 0;
  {
    // LibTorch's CUDA allocator exists only after a first CUDA tensor (with
    // --bench-only nothing made one yet); setMemoryFraction asserts it does.
    torch::empty({1}, torch::TensorOptions().device(torch::kCUDA, 0));
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    const double cap = std::min(1.0, static_cast<double>(budget) / static_cast<double>(total_b));
    c10::cuda::CUDACachingAllocator::setMemoryFraction(cap, 0);
    absl::StatusOr<Row> r = ResidentAllOnGpu(c, o.warmup);
    if (!r.ok()) {
      std::printf("%-28s does not run under the %.1f GiB cap: %s\n", "RESIDENT (all on GPU)",
                  o.budget_gib, std::string(r.status().message()).c_str());
      c10::cuda::CUDACachingAllocator::setMemoryFraction(1.0, 0);
      r = ResidentAllOnGpu(c, o.warmup);
      if (r.ok()) r->name = "RESIDENT (all GPU, no cap)";
      c10::cuda::CUDACachingAllocator::setMemoryFraction(cap, 0);
    }
    if (r.ok()) {
      all_gpu = r->samples_per_s();
      print(*r);
    } else {
      std::printf("%-28s does not run: %s\n", "RESIDENT (all on GPU)",
                  std::string(r.status().message()).c_str());
    }
  }
  // 2. The engine's methods.
  auto bench = [&](const std::string& name, OffloadMethod method, int window, int64_t b) -> double {
    if (skipped(name)) return 0;
    JobConfig g = c;
    g.offload.method = method;
    g.offload.window = window;
    std::string file;
    if (!o.trace_dir.empty()) {
      file = o.trace_dir + "/";
      for (char ch : name) file += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
      file += ".json";
    }
    const Run r = Train(g, gpu, b, name.substr(0, name.find(' ')) + std::to_string(window),
                        /*checkpoint=*/false, file);
    if (!r.ok) {
      std::printf("%-28s does not run: %s\n", name.c_str(), r.error.c_str());
      return 0;
    }
    Row row{.name = name, .window = r.reports.back().window, .batch = c.training.batch};
    int n = 0;
    for (size_t i = o.warmup; i < r.reports.size(); ++i, ++n) {
      row.step_s += r.reports[i].step_s;
      row.opt_s += r.reports[i].optimizer_s;
      row.h2d_wait_s += r.reports[i].h2d_wait_s;
      row.d2h_wait_s += r.reports[i].d2h_wait_s;
    }
    n = std::max(n, 1);
    row.step_s /= n;
    row.opt_s /= n;
    row.h2d_wait_s /= n;
    row.d2h_wait_s /= n;
    row.tflops = c.model.model_flops_per_step(c.training.batch) / row.step_s / 1e12;
    row.peak_bytes = r.reports.back().device_peak_bytes;
    print(row);
    if (g.offload.speculative_updates) {
      int rolled = 0;
      std::string norms;
      for (const StepReport& s : r.reports) {
        rolled += s.rolled_back;
        absl::StrAppend(&norms, norms.empty() ? "" : " ", absl::StrFormat("%.3g", s.grad_norm));
      }
      std::printf("    %d of %zu steps rolled back (clip %.2g; gradient norms %s)\n", rolled,
                  r.reports.size(), c.training.clip_norm, norms.c_str());
    }
    return row.samples_per_s();
  };
  const double engine_resident = bench("RESIDENT (engine, W=L)", OffloadMethod::kResident, 0, budget);
  const double stronghold = bench("STRONGHOLD (auto window)", OffloadMethod::kStronghold, 0, budget);
  // First what the targets are judged on (the cases' time box skips the
  // runs that do not start in time): clipping's two remedies, then the
  // window sweep and the other methods.
  if (!o.quick) {
    // Without clipping each layer's update overlaps the backward of the
    // layers before it (docs/engine.md, "Global-norm clipping, honestly"):
    // what the engine does when the CPU AdamW is off the critical path,
    // against the all-GPU baseline without clipping too.
    c.training.clip_norm = 0;
    if (!skipped("RESIDENT (all GPU), no clip")) {
      absl::StatusOr<Row> r = ResidentAllOnGpu(c, o.warmup);
      if (r.ok()) {
        r->name = "RESIDENT (all GPU), no clip";
        print(*r);
      } else {
        std::printf("%-28s does not run: %s\n", "RESIDENT (all GPU), no clip",
                    std::string(r.status().message()).c_str());
      }
    }
    bench("STRONGHOLD (auto), no clip", OffloadMethod::kStronghold, 0, budget);
    c.training.clip_norm = 1.0;
    // Clipping 1.0 with speculative updates: exact, and as fast as no
    // clipping on steps that turn out unclipped (the row says how many).
    c.offload.speculative_updates = true;
    bench("STRONGHOLD (auto), speculative", OffloadMethod::kStronghold, 0, budget);
    c.offload.speculative_updates = false;
    // The embedding's optimizer on the GPU: off the gap between steps.
    c.offload.device_embedding_optimizer = true;
    bench("STRONGHOLD (auto), emb. on GPU", OffloadMethod::kStronghold, 0, budget);
    c.offload.speculative_updates = true;
    bench("STRONGHOLD, emb. on GPU + spec.", OffloadMethod::kStronghold, 0, budget);
    c.offload.speculative_updates = false;
    // Layers 0..3 stay on the GPU too: the next forward starts while the CPU
    // updates the others, and the CPU updates 4 fewer layers.
    c.offload.device_resident_layers = 4;
    bench("STRONGHOLD, 4 layers+emb. on GPU", OffloadMethod::kStronghold, 0, budget);
    c.offload.device_resident_layers = 0;
    c.offload.device_embedding_optimizer = false;
  }
  std::vector<int> windows = o.windows;
  if (!o.windows_given && !o.quick) windows = {2, 4, 8};
  for (int w : windows) {
    if (w >= c.model.layers) continue;
    bench("STRONGHOLD W=" + std::to_string(w), OffloadMethod::kStronghold, w, budget);
  }
  if (!o.quick) {
    bench("L2L", OffloadMethod::kL2L, 0, budget);
    JobConfig small = c;
    small.offload.method = OffloadMethod::kStronghold;
    const int64_t b = WindowedArenaBytes(small, 3) + WorkingBytes(small);
    std::printf("(next row: GPU budget %.2f GiB, the model's fp32 weights alone are %.2f GiB)\n",
                Gib(b), c.model.parameters() * 4 / 1073741824.0);
    bench("STRONGHOLD, budget for W=3", OffloadMethod::kStronghold, 0, b);
    // Mixed precision: bf16 weights, gradients and compute on the GPU.
    c.training.precision = Precision::kBf16;
    bench("STRONGHOLD bf16 (auto window)", OffloadMethod::kStronghold, 0, budget);
    c.training.precision = Precision::kFp32;
  }
  std::printf("(GPU peak: LibTorch's allocated high-water mark for the all-on-GPU row; the engine's "
              "arena high-water mark for the others, LibTorch's working memory not included)\n");
  std::printf("csv,run,method,layers,parameters,window,step_s,samples_per_s,model_tflops,mfu_percent,"
              "gpu_peak_bytes\n");
  for (const Row& r : rows) {
    std::printf("csv,run,%s,%d,%lld,%d,%.4f,%.4f,%.3f,%.2f,%lld\n", r.name.c_str(), c.model.layers,
                static_cast<long long>(c.model.parameters()), r.window, r.step_s,
                r.samples_per_s(), r.tflops, peak > 0 ? 100 * r.tflops / peak : 0.0,
                static_cast<long long>(r.peak_bytes));
  }
  if (stronghold > 0 && all_gpu > 0) {
    std::printf("STRONGHOLD / %s: %.3f (target 0.95 or more)\n", rows.front().name.c_str(),
                stronghold / all_gpu);
  }
  if (stronghold > 0 && engine_resident > 0) {
    std::printf("STRONGHOLD / RESIDENT (engine, W=L): %.3f\n", stronghold / engine_resident);
  }
  auto sps = [&](const std::string& name) {
    for (const Row& r : rows) {
      if (r.name == name) return r.samples_per_s();
    }
    return 0.0;
  };
  if (sps("STRONGHOLD (auto), no clip") > 0 && sps("RESIDENT (all GPU), no clip") > 0) {
    std::printf("STRONGHOLD / RESIDENT (all on GPU), both without clipping: %.3f\n",
                sps("STRONGHOLD (auto), no clip") / sps("RESIDENT (all GPU), no clip"));
  }
  // Clipping 1.0 both sides: the engine's options against the first row.
  for (const char* name : {"STRONGHOLD (auto), speculative", "STRONGHOLD (auto), emb. on GPU",
                           "STRONGHOLD, emb. on GPU + spec.", "STRONGHOLD, 4 layers+emb. on GPU"}) {
    if (sps(name) > 0 && all_gpu > 0) {
      std::printf("%s / %s: %.3f (target 0.95 or more)\n", name, rows.front().name.c_str(),
                  sps(name) / all_gpu);
    }
  }
  std::printf("peer-args: --layers %d --hidden %d --heads %d --seq-len %d --batch %d --vocab %d "
              "--peak-tflops %.1f --resident-samples-per-s %.4f --stronghold-samples-per-s %.4f%s\n",
              c.model.layers, o.hidden, o.heads, o.seq_len, o.batch, o.vocab, peak, resident_sps,
              stronghold, o.tf32 ? " --tf32" : "");
  std::printf("cases: %.0f s\n", elapsed());
  return 0;
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : ""; };
    auto integer = [&](int* out) { return absl::SimpleAtoi(value(), out); };
    auto real = [&](double* out) { return absl::SimpleAtod(value(), out); };
    bool ok = true;
    if (a == "--quick") o->quick = true;
    else if (a == "--bench-only") o->bench_only = true;
    else if (a == "--plan-only") o->plan_only = true;
    else if (a == "--tf32") o->tf32 = true;
    else if (a == "--layers") ok = integer(&o->layers);
    else if (a == "--hidden") ok = integer(&o->hidden);
    else if (a == "--heads") ok = integer(&o->heads);
    else if (a == "--seq-len") ok = integer(&o->seq_len);
    else if (a == "--batch") ok = integer(&o->batch);
    else if (a == "--vocab") ok = integer(&o->vocab);
    else if (a == "--steps") ok = integer(&o->steps);
    else if (a == "--warmup") ok = integer(&o->warmup);
    else if (a == "--budget-gib") ok = real(&o->budget_gib);
    else if (a == "--host-budget-gib") ok = real(&o->host_budget_gib);
    else if (a == "--max-seconds") ok = real(&o->max_seconds);
    else if (a == "--trace-dir") o->trace_dir = value();
    else if (a == "--windows") {
      o->windows_given = true;
      for (absl::string_view w : absl::StrSplit(value(), ',', absl::SkipEmpty())) {
        int v = 0;
        ok = ok && absl::SimpleAtoi(w, &v) && v > 0;
        o->windows.push_back(v);
      }
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "gpu_check: bad argument %s\n", a.c_str());
      return false;
    }
  }
  const int steps = o->steps > 0 ? o->steps : (o->quick ? 4 : 5);
  if (o->warmup < 0 || o->warmup >= steps || o->hidden % o->heads != 0 || o->budget_gib <= 0) {
    std::fprintf(stderr, "gpu_check: need 0 <= --warmup < --steps, heads dividing hidden, a budget\n");
    return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) return 2;
  if (o.plan_only) return PlanSection(o) > 0 ? 0 : 1;
  at::globalContext().setAllowTF32CuBLAS(o.tf32);
  at::globalContext().setAllowTF32CuDNN(o.tf32);
  const int64_t budget = static_cast<int64_t>(o.budget_gib * (1LL << 30));
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("gpu_check: no CUDA device visible (%d); nothing run\n", count);
    return 2;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  // The engine's budget: the emulated card, within what is free.
  absl::StatusOr<std::unique_ptr<Device>> gpu =
      CreateCudaDevice(0, std::min<int64_t>(budget, static_cast<int64_t>(free_b)));
  if (!gpu.ok()) {
    std::printf("gpu_check: %s\n", std::string(gpu.status().message()).c_str());
    return 2;
  }
  const Peaks peaks = DevicePeaks(prop.name);
  std::printf("device %s: %s, %.1f GiB (%.1f free); engine budget %.1f GiB; host %.1f GiB; %s\n",
              (*gpu)->name().c_str(), prop.name, Gib(total_b), Gib(free_b),
              Gib((*gpu)->budget_bytes()), Gib(HostBudget(o)), o.quick ? "--quick" : "full run");
  int failures = 0;
  if (!o.bench_only) {
    failures = Parity(gpu->get()) + MixedParity(gpu->get());
  }
  const int bench = Cases(gpu->get(), o, peaks);
  if (!o.bench_only) std::printf("\nparity: %s\n", failures == 0 ? "PASS" : "FAIL");
  return failures == 0 && bench == 0 ? 0 : 1;
}

}  // namespace
}  // namespace stronghold::core

int main(int argc, char** argv) { return stronghold::core::Main(argc, argv); }
