// gpu_bench: the seed's cases on a real GPU, short (docs/benchmarks.md, "GPU
// check"). Run by deploy/gpu/check.sh after the GPU parity test
// (tests/gpu/parity_test.cc); CI only builds it. Not a test: it prints
// figures.
//
// With a GPU budget that emulates a 32 GB card (--budget_gib), the seed's
// model (hidden 2048, 16 heads, seq 1024, batch 4, V 50304, fp32): the
// planner's largest RESIDENT, STRONGHOLD and L2L models under the budgets;
// then, on the largest RESIDENT model, RESIDENT all on the GPU (autograd and
// AdamW on the GPU, the planner's RESIDENT), RESIDENT in the engine (every
// layer kept, W = L), STRONGHOLD (automatic window), RESIDENT (all on the
// GPU) and STRONGHOLD without clipping, STRONGHOLD with speculative updates
// and with the embedding's optimizer (and 4 layers) on the GPU, a window
// sweep, L2L, STRONGHOLD under a small budget, and in bf16, in this order:
// runs that do not start within --max_seconds are skipped. One table, CSV
// lines, and a `peer-args:` line for the DeepSpeed peer
// (deploy/gpu/zero_offload_peer.py).
//
//   gpu_bench [--quick] [--plan_only] [--layers N] [--hidden N] [--heads N]
//             [--seq_len N] [--batch N] [--vocab N] [--steps N] [--warmup N]
//             [--budget_gib X] [--host_budget_gib X] [--windows 2,4,8]
//             [--tf32] [--max_seconds S] [--trace_dir DIR]
//
// Flags may be spelled with hyphens too (--seq-len), as check.sh and the
// docs have always written them.
#include <ATen/Context.h>
#include <cuda_runtime.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/device/cuda_device.h"
#include "core/plan/hardware_profile.h"
#include "core/plan/planner.h"
#include "core/profile/measure.h"
#include "core/tools/all_on_gpu_baseline.h"
#include "core/tools/case_table.h"
#include "core/tools/gpu_rows.h"
#include "core/train/trainer.h"
#include "core/util/file_util.h"

ABSL_FLAG(bool, quick, false,
          "4 steps per run, an 80 s time box, only RESIDENT, STRONGHOLD and "
          "--windows");
ABSL_FLAG(bool, plan_only, false,
          "the planner's part and the rows' predictions on --hardware only "
          "(needs no GPU)");
ABSL_FLAG(std::string, hardware, "",
          "a built-in hardware profile's name or a profile file to predict "
          "the rows on besides this GPU's measured one (default: the card's "
          "built-in profile where there is one; h200 with --plan_only)");
ABSL_FLAG(int, layers, 0,
          "model layers; 0 = the planner's largest RESIDENT model");
ABSL_FLAG(int, hidden, 2048, "model hidden size");
ABSL_FLAG(int, heads, 16, "attention heads (dividing --hidden)");
ABSL_FLAG(int, seq_len, 1024, "sequence length");
ABSL_FLAG(int, batch, 4, "batch (one micro-batch)");
ABSL_FLAG(int, vocab, 50304, "vocabulary");
ABSL_FLAG(int, steps, 0, "steps per run; 0 = 5 (4 with --quick)");
ABSL_FLAG(int, warmup, 2,
          "first steps of each run not counted (fewer than the steps)");
ABSL_FLAG(
    double, budget_gib, 32,
    "GPU budget in GiB, the emulated card: the engine's device budget (within "
    "the free memory) and LibTorch's allocator cap for the all-on-GPU rows");
ABSL_FLAG(double, host_budget_gib, 0,
          "host budget in GiB; 0 = 90% of physical memory");
ABSL_FLAG(std::optional<std::string>, windows, std::nullopt,
          "the STRONGHOLD window sweep, comma-separated (default 2,4,8; none "
          "with --quick)");
ABSL_FLAG(bool, tf32, false,
          "allow TF32 tensor cores (MFU then against the TF32 peak)");
ABSL_FLAG(double, max_seconds, 0,
          "the cases' time box: runs not started by then are skipped; 0 = 140 "
          "(80 with --quick)");
ABSL_FLAG(
    std::string, trace_dir, "",
    "where each engine row's last step goes as a Chrome trace; empty = none");

namespace stronghold::core {
namespace {

// The flags, resolved.
struct BenchOptions {
  bool quick = false;
  bool plan_only = false;
  std::string hardware;  // a named profile or a file, predicted besides
  int layers = 0;        // 0 = the planner's largest RESIDENT model
  int hidden = 0, heads = 0, seq_len = 0, batch = 0, vocab = 0;
  int steps = 0, warmup = 0;
  double budget_gib = 0;  // the emulated card
  int64_t host_budget_bytes = 0;
  std::vector<int> windows;  // the sweep
  bool tf32 = false;
  double max_seconds = 0;  // later runs are skipped
  // Where each engine row's last step goes as a Chrome trace (empty: none);
  // the copies in it are timed on the GPU, compute spans are the host's
  // launches.
  std::string trace_dir;

  int64_t budget_bytes() const {
    return static_cast<int64_t>(budget_gib * (1LL << 30));
  }
};

absl::StatusOr<BenchOptions> OptionsFromFlags() {
  BenchOptions o;
  o.quick = absl::GetFlag(FLAGS_quick);
  o.plan_only = absl::GetFlag(FLAGS_plan_only);
  o.hardware = absl::GetFlag(FLAGS_hardware);
  if (o.plan_only && o.hardware.empty()) o.hardware = "h200";
  o.layers = absl::GetFlag(FLAGS_layers);
  o.hidden = absl::GetFlag(FLAGS_hidden);
  o.heads = absl::GetFlag(FLAGS_heads);
  o.seq_len = absl::GetFlag(FLAGS_seq_len);
  o.batch = absl::GetFlag(FLAGS_batch);
  o.vocab = absl::GetFlag(FLAGS_vocab);
  o.steps = absl::GetFlag(FLAGS_steps) > 0 ? absl::GetFlag(FLAGS_steps)
                                           : (o.quick ? 4 : 5);
  o.warmup = absl::GetFlag(FLAGS_warmup);
  o.budget_gib = absl::GetFlag(FLAGS_budget_gib);
  const double host_gib = absl::GetFlag(FLAGS_host_budget_gib);
  const int64_t phys =
      static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
  o.host_budget_bytes = host_gib > 0
                            ? static_cast<int64_t>(host_gib * (1LL << 30))
                            : phys / 10 * 9;
  o.tf32 = absl::GetFlag(FLAGS_tf32);
  o.max_seconds = absl::GetFlag(FLAGS_max_seconds) > 0
                      ? absl::GetFlag(FLAGS_max_seconds)
                      : (o.quick ? 80 : 140);
  o.trace_dir = absl::GetFlag(FLAGS_trace_dir);
  const std::optional<std::string> windows = absl::GetFlag(FLAGS_windows);
  if (!windows.has_value() && !o.quick) o.windows = {2, 4, 8};
  for (absl::string_view w :
       absl::StrSplit(windows.value_or(""), ',', absl::SkipEmpty())) {
    int v = 0;
    if (!absl::SimpleAtoi(w, &v) || v < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--windows: \"", w, "\" is not a window of 1 layer or more"));
    }
    o.windows.push_back(v);
  }
  const std::pair<const char*, int> sizes[] = {{"--hidden", o.hidden},
                                               {"--heads", o.heads},
                                               {"--seq_len", o.seq_len},
                                               {"--batch", o.batch},
                                               {"--vocab", o.vocab}};
  for (const auto& [name, value] : sizes) {
    if (value < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " ", value, " must be 1 or more"));
    }
  }
  if (o.layers < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--layers ", o.layers,
        " must be 1 or more, or 0 for the largest RESIDENT model"));
  }
  if (o.hidden % o.heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--heads ", o.heads, " must divide --hidden ", o.hidden));
  }
  if (o.warmup < 0 || o.warmup >= o.steps) {
    return absl::InvalidArgumentError(
        absl::StrCat("--warmup ", o.warmup,
                     " must be at least 0 and below the ", o.steps, " steps"));
  }
  if (o.budget_gib <= 0)
    return absl::InvalidArgumentError("--budget_gib must be positive");
  return o;
}

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

double Gib(int64_t b) { return b / 1073741824.0; }

// The built-in profile of a card (deploy/hardware/), "" where there is none.
std::string BuiltinProfileOf(const std::string& card) {
  if (card.find("H200") != std::string::npos) return "h200";
  if (card.find("H100") != std::string::npos &&
      card.find("PCIe") != std::string::npos) {
    return "h100-pcie-gen5";
  }
  return "";
}

// A built-in profile by name, else a profile file.
absl::StatusOr<HardwareProfile> LoadProfile(const std::string& name_or_file) {
  absl::StatusOr<HardwareProfile> named = NamedHardwareProfile(name_or_file);
  if (named.ok() || name_or_file.find('/') == std::string::npos &&
                        name_or_file.find(".json") == std::string::npos) {
    return named;
  }
  absl::StatusOr<std::string> text = ReadFile(name_or_file);
  if (!text.ok()) return text.status();
  return ParseHardwareProfile(*text);
}

void PrintPlan(const char* method, const JobConfig& c,
               const NodeBudgets& node) {
  JobConfig m = c;
  const int layers = MaxTrainableLayers(m, node);
  if (layers == 0) {
    m.model.layers = 1;
    std::printf("  %-12s not even 1 layer fits: %s\n", method,
                PlanExecution(m, node).reason.c_str());
    return;
  }
  m.model.layers = layers;
  const ExecutionPlan plan = PlanExecution(m, node);
  m.model.layers = layers + 1;
  const ExecutionPlan next = PlanExecution(m, node);
  std::printf(
      "  %-12s %4d layers  %6.3fB params  window %3s  device %6.2f / %.2f GiB  "
      "host %7.2f / %.2f GiB\n               one more layer: %s\n",
      method, layers, plan.parameters / 1e9,
      c.offload.method == OffloadMethod::kResident
          ? "-"
          : std::to_string(plan.window).c_str(),
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
JobConfig CasesConfig(const BenchOptions& o) {
  JobConfig c;
  c.model = {.layers = 1,
             .hidden = o.hidden,
             .heads = o.heads,
             .seq_len = o.seq_len,
             .vocab = o.vocab};
  c.training.batch = c.training.micro_batch = o.batch;
  c.training.steps = o.steps;
  c.training.lr =
      1e-4;  // as strongholdctl bench: a fresh fp32 model stays finite
  c.training.clip_norm = 1.0;
  return c;
}

// Prints the planner's largest models under the budgets; returns RESIDENT's
// number of layers.
int PlanSection(const BenchOptions& o) {
  const JobConfig c = CasesConfig(o);
  const NodeBudgets node{.device = "cuda:0",
                         .device_bytes = o.budget_bytes(),
                         .host_bytes = o.host_budget_bytes};
  std::printf(
      "\ncases: hidden %d, %d heads, seq %d, batch %d, vocab %d, fp32 (TF32 "
      "%s); GPU budget %.1f GiB (an emulated %.0f GB card), host budget %.1f "
      "GiB\n",
      o.hidden, o.heads, o.seq_len, o.batch, o.vocab, o.tf32 ? "on" : "off",
      o.budget_gib, o.budget_gib, Gib(node.host_bytes));
  std::printf(
      "largest trainable models (the planner: MaxTrainableLayers / "
      "PlanExecution; not run):\n");
  std::printf(
      "csv,plan,method,layers,parameters,window,device_plan_bytes,device_"
      "budget_bytes,host_plan_bytes,host_budget_bytes\n");
  int resident_layers = 0;
  for (OffloadMethod m : {OffloadMethod::kResident, OffloadMethod::kStronghold,
                          OffloadMethod::kL2L}) {
    JobConfig mc = c;
    mc.offload.method = m;
    const char* name = m == OffloadMethod::kResident ? "RESIDENT"
                       : m == OffloadMethod::kL2L    ? "L2L"
                                                     : "STRONGHOLD";
    // RESIDENT here is LibTorch's all on the GPU (row 1 below): the whole
    // training state on the device, as the planner's reference table plans
    // it on a node whose compute device is the host (on a GPU node the
    // daemon runs RESIDENT as the engine with every layer kept instead).
    const NodeBudgets all_on_device{.device = "cpu",
                                    .device_bytes = o.budget_bytes()};
    const NodeBudgets& planned =
        m == OffloadMethod::kResident ? all_on_device : node;
    PrintPlan(name, mc, planned);
    if (m == OffloadMethod::kResident)
      resident_layers = MaxTrainableLayers(mc, planned);
  }
  return resident_layers;
}

int Cases(Device* gpu, const BenchOptions& o, const Peaks& peaks) {
  const double peak = o.tf32 ? peaks.tf32 : peaks.fp32;
  JobConfig c = CasesConfig(o);
  const int resident_layers = PlanSection(o);
  c.model.layers = o.layers > 0 ? o.layers : resident_layers;
  if (c.model.layers <= 0) {
    std::printf("no RESIDENT model fits the budget; give --layers\n");
    return 1;
  }
  // The profiles the rows are predicted on: this GPU's, measured here as
  // the daemon measures its node (with the rows' layer shape in fp32 and
  // bf16), and the built-in one of this card where there is one; with
  // --plan_only (no GPU) the named --hardware profile alone.
  std::vector<HardwareProfile> profiles;
  absl::StatusOr<HardwareProfile> measured =
      absl::FailedPreconditionError("no GPU: --plan_only");
  if (gpu != nullptr) {
    measured = MeasureNodeProfile(*gpu, {.name = "measured-here",
                                         .peak_tflops_fp32 = peak,
                                         .peak_tflops_bf16 = peaks.bf16});
    for (Precision precision : {Precision::kFp32, Precision::kBf16}) {
      JobConfig shape = c;
      shape.training.precision = precision;
      absl::StatusOr<LayerTiming> layer =
          measured.ok() ? MeasureLayer(*gpu, shape) : measured.status();
      if (layer.ok()) measured->layer_timings.push_back(*layer);
    }
    if (measured.ok()) {
      profiles.push_back(*measured);
      std::printf("\nthis GPU's profile (measured before the rows):\n%s\n",
                  HardwareProfileToJson(*measured).c_str());
    } else {
      std::printf("\nthis GPU's profile: not measured: %s\n",
                  std::string(measured.status().message()).c_str());
    }
  }
  if (!o.hardware.empty()) {
    absl::StatusOr<HardwareProfile> named = LoadProfile(o.hardware);
    if (named.ok()) {
      profiles.push_back(*named);
      if (!measured.ok()) measured = *named;
    } else {
      std::printf("profile %s: %s\n", o.hardware.c_str(),
                  std::string(named.status().message()).c_str());
    }
  }
  const std::string device_name = gpu != nullptr ? gpu->name() : "cuda:0";
  const std::vector<RowSpec> rows =
      GpuBenchRows({.quick = o.quick,
                    .windows = o.windows,
                    .budget_bytes = o.budget_bytes()},
                   c, measured, device_name);
  const Predictions predicted = PredictRows(rows, device_name, profiles);
  if (gpu == nullptr) return 0;

  const int64_t budget = o.budget_bytes();
  CaseTable table({.device = gpu,
                   .warmup_steps = o.warmup,
                   .max_seconds = o.max_seconds,
                   .peak_tflops = peak,
                   .trace_dir = o.trace_dir});
  std::printf(
      "\nruns on %s%d layers (%.3fB parameters), %d steps each, the first %d "
      "not counted; MFU against %s's dense %s peak %.1f TFLOPS (bf16 dense "
      "peak %.1f); model FLOPs (Megatron's formula; the engine's methods "
      "recompute the forward of layers whose activations are not kept, up to "
      "~4/3 of it)\n",
      o.layers > 0 ? "" : "the largest RESIDENT model, ", c.model.layers,
      c.model.parameters() / 1e9, c.training.steps, o.warmup,
      peaks.card.empty() ? "an unknown card" : peaks.card.c_str(),
      o.tf32 ? "TF32 tensor-core" : "fp32 (no tensor cores)", peak, peaks.bf16);
  table.PrintHeader();
  CapTorchCudaAllocator(budget);
  double all_gpu = 0;
  for (const RowSpec& row : rows) {
    if (!row.note.empty()) std::printf("%s\n", row.note.c_str());
    if (!row.all_on_gpu) {
      table.Engine(row.name, row.config, row.budget_bytes);
    } else if (&row != &rows.front()) {
      if (!table.Skipped(row.name)) table.AllOnGpu(row.name, row.config);
    } else {
      // The first row, with LibTorch's allocator capped at the emulated
      // card. Should the planner's estimate be short of what autograd
      // really keeps, it runs once more without the cap and says so, so
      // that the comparison still has its baseline on the same model.
      absl::StatusOr<double> capped = table.TryAllOnGpu(row.name, row.config);
      if (!capped.ok()) {
        std::printf("%-28s does not run under the %.1f GiB cap: %s\n",
                    row.name.c_str(), o.budget_gib,
                    std::string(capped.status().message()).c_str());
        CapTorchCudaAllocator(0);
        capped = table.AllOnGpu("RESIDENT (all GPU, no cap)", row.config);
        CapTorchCudaAllocator(budget);
      }
      all_gpu = *capped;
    }
  }
  std::printf(
      "(GPU peak: LibTorch's allocated high-water mark for the all-on-GPU row; "
      "the engine's arena high-water mark for the others, LibTorch's working "
      "memory not included)\n");
  table.PrintCsv(c);
  PrintComparison(rows, predicted, [&table](const std::string& name) {
    return table.SamplesPerS(name);
  });
  const double stronghold = table.SamplesPerS("STRONGHOLD (auto window)");
  const double engine_resident = table.SamplesPerS("RESIDENT (engine, W=L)");
  if (stronghold > 0 && all_gpu > 0) {
    std::printf("STRONGHOLD / %s: %.3f (target 0.95 or more)\n",
                table.first_row().c_str(), stronghold / all_gpu);
  }
  if (stronghold > 0 && engine_resident > 0) {
    std::printf("STRONGHOLD / RESIDENT (engine, W=L): %.3f\n",
                stronghold / engine_resident);
  }
  const double no_clip = table.SamplesPerS("STRONGHOLD (auto), no clip"),
               all_gpu_no_clip =
                   table.SamplesPerS("RESIDENT (all GPU), no clip");
  if (no_clip > 0 && all_gpu_no_clip > 0) {
    std::printf(
        "STRONGHOLD / RESIDENT (all on GPU), both without clipping: %.3f\n",
        no_clip / all_gpu_no_clip);
  }
  // Clipping 1.0 both sides: the engine's options against the first row.
  for (const char* name :
       {"STRONGHOLD (automatic options)", "STRONGHOLD (auto), speculative",
        "STRONGHOLD (auto), emb. on GPU", "STRONGHOLD, emb. on GPU + spec.",
        "STRONGHOLD, 4 layers+emb. on GPU"}) {
    if (table.SamplesPerS(name) > 0 && all_gpu > 0) {
      std::printf("%s / %s: %.3f (target 0.95 or more)\n", name,
                  table.first_row().c_str(), table.SamplesPerS(name) / all_gpu);
    }
  }
  // bf16 both sides: the engine's rows against PyTorch's AMP all on the GPU.
  const double all_gpu_bf16 =
      table.SamplesPerS("RESIDENT bf16 (all on GPU, AMP)");
  for (const char* name : {"STRONGHOLD bf16 (auto window)",
                           "STRONGHOLD bf16 (automatic options)"}) {
    if (table.SamplesPerS(name) > 0 && all_gpu_bf16 > 0) {
      std::printf(
          "%s / RESIDENT bf16 (all on GPU, AMP): %.3f (target 0.95 or more)\n",
          name, table.SamplesPerS(name) / all_gpu_bf16);
    }
  }
  std::printf(
      "peer-args: --layers %d --hidden %d --heads %d --seq-len %d --batch %d "
      "--vocab %d --peak-tflops %.1f --resident-samples-per-s %.4f "
      "--stronghold-samples-per-s %.4f%s\n",
      c.model.layers, o.hidden, o.heads, o.seq_len, o.batch, o.vocab, peak,
      table.first_samples_per_s(), stronghold, o.tf32 ? " --tf32" : "");
  // The peer again in bf16 (check.sh runs it when time is left), against
  // the bf16 rows; the better of the engine's two bf16 rows is ours.
  const double stronghold_bf16 =
      std::max(table.SamplesPerS("STRONGHOLD bf16 (auto window)"),
               table.SamplesPerS("STRONGHOLD bf16 (automatic options)"));
  if (stronghold_bf16 > 0) {
    std::printf(
        "peer-args-bf16: --dtype bf16 --layers %d --hidden %d --heads %d "
        "--seq-len %d --batch %d --vocab %d --resident-samples-per-s %.4f "
        "--stronghold-samples-per-s %.4f\n",
        c.model.layers, o.hidden, o.heads, o.seq_len, o.batch, o.vocab,
        all_gpu_bf16, stronghold_bf16);
  }
  std::printf("cases: %.0f s\n", table.elapsed_s());
  return 0;
}

// absl's flag names are identifiers (--seq_len); check.sh and the docs write
// them with hyphens (--seq-len). Rewrites the names, not the values.
std::vector<std::string> Underscored(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    if (args[i].rfind("--", 0) != 0) continue;
    const size_t end = std::min(args[i].find('='), args[i].size());
    std::replace(args[i].begin() + 2, args[i].begin() + end, '-', '_');
  }
  return args;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args = Underscored(argc, argv);
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) arg_ptrs.push_back(a.data());
  absl::SetProgramUsageMessage(
      "the seed's cases on a GPU, short (docs/benchmarks.md, \"GPU check\")");
  absl::ParseCommandLine(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());
  const absl::StatusOr<BenchOptions> o = OptionsFromFlags();
  if (!o.ok()) {
    std::fprintf(stderr, "gpu_bench: %s\n",
                 std::string(o.status().message()).c_str());
    return 2;
  }
  if (o->plan_only) return Cases(nullptr, *o, {});
  at::globalContext().setAllowTF32CuBLAS(o->tf32);
  at::globalContext().setAllowTF32CuDNN(o->tf32);
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("gpu_bench: no CUDA device visible (%d); nothing run\n", count);
    return 2;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  // The engine's budget: the emulated card, within what is free.
  absl::StatusOr<std::unique_ptr<Device>> gpu = CreateCudaDevice(
      0, std::min<int64_t>(o->budget_bytes(), static_cast<int64_t>(free_b)));
  if (!gpu.ok()) {
    std::printf("gpu_bench: %s\n", std::string(gpu.status().message()).c_str());
    return 2;
  }
  std::printf(
      "device %s: %s, %.1f GiB (%.1f free); engine budget %.1f GiB; host %.1f "
      "GiB; %s\n",
      (*gpu)->name().c_str(), prop.name, Gib(total_b), Gib(free_b),
      Gib((*gpu)->budget_bytes()), Gib(o->host_budget_bytes),
      o->quick ? "--quick" : "full run");
  BenchOptions with_card = *o;
  if (with_card.hardware.empty())
    with_card.hardware = BuiltinProfileOf(prop.name);
  return Cases(gpu->get(), with_card, DevicePeaks(prop.name));
}

}  // namespace
}  // namespace stronghold::core

int main(int argc, char** argv) { return stronghold::core::Main(argc, argv); }
