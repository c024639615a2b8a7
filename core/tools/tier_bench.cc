// tier_bench: the step time of one job with its state in RAM, with every
// layer's optimizer state on the NVMe tier, and with what H2D sends there
// too (fp32 masters or bf16/fp16 working copies), next to the floor the
// tier's traffic gives at the tier's bandwidth, measured in the same run on
// the same directory. Not a test: it prints figures (docs/benchmarks.md,
// "NVMe tier (issue 5)").
//
//   bazel-bin/core/tier_bench [--dir=/mnt/nvme] [--layers=8] [--hidden=512]
//       [--heads=8] [--seq_len=64] [--batch=4] [--micro_batch=4]
//       [--window=2] [--steps=12] [--rounds=2] [--precision=fp32]
//       [--clip_norm=0] [--bandwidth_mib=512]
//
// Each case runs once per round, the rounds interleaved (RAM, tier, tier,
// RAM, ...) so that drift on a shared machine hits all alike; each keeps the
// mean step time of its fastest round over the steps after the first two.
// The floor of a case is max(RAM step time, its tier bytes per step at the
// measured read and write bandwidths): the step cannot beat its compute,
// nor the drive. Bytes served from the tier's staging slots instead of read
// (reused_MB) cost no device time.
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "core/plan/planner.h"
#include "core/train/trainer.h"
#include "storage/aligned_buffer.h"
#include "storage/block_device_factory.h"

ABSL_FLAG(std::string, dir, "",
          "the tier's directory (default: a new one under /tmp)");
ABSL_FLAG(int, layers, 8, "model.layers");
ABSL_FLAG(int, hidden, 512, "model.hidden");
ABSL_FLAG(int, heads, 8, "model.heads");
ABSL_FLAG(int, seq_len, 64, "model.seq_len");
ABSL_FLAG(int, batch, 4, "training.batch");
ABSL_FLAG(int, micro_batch, 4, "training.micro_batch");
ABSL_FLAG(int, window, 2, "offload.window (STRONGHOLD)");
ABSL_FLAG(int, steps, 12, "steps per run (the first two are not counted)");
ABSL_FLAG(int, rounds, 2, "runs per case; the fastest is kept");
ABSL_FLAG(std::string, precision, "fp32", "fp32, bf16 or fp16");
ABSL_FLAG(double, clip_norm, 0.0,
          "training.clip_norm (0: updates as gradients land)");
ABSL_FLAG(int64_t, bandwidth_mib, 512,
          "MiB per pass of the bandwidth measurement");

namespace stronghold::core {
namespace {

double Seconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class Meter : public TrainerObserver {
 public:
  void OnStep(const StepMetrics& r) override { reports.push_back(r); }
  void OnMessage(const std::string&) override {}
  void OnCheckpoint(const std::string&) override {}
  StopRequest StopRequested() override { return StopRequest::kNone; }
  std::vector<StepMetrics> reports;
};

struct Figures {
  double step_s = 0, compute_s = 0, nvme_wait_s = 0, optimizer_s = 0;
  double read_bytes = 0, reused_bytes = 0, write_bytes = 0;  // per step
  int64_t unplanned = 0;
};

constexpr int kWarmup = 2;

Figures Measure(const JobConfig& c, const std::string& job_dir, int ssd_layers,
                int ssd_weight_layers) {
  std::filesystem::remove_all(job_dir);
  // The tier's share as the benchmark sets it (a short host budget would
  // make the planner choose it so).
  const ExecutionPlan plan =
      PlanExecution(c, {.device = "cpu",
                        .force_ssd_layers = ssd_layers,
                        .force_ssd_weight_layers = ssd_weight_layers});
  auto trainer =
      Trainer::Create(c, plan, {.job_dir = job_dir, .trace_every = 0});
  Meter m;
  const absl::Status s = trainer.ok() ? (*trainer)->Run(&m) : trainer.status();
  if (!s.ok()) LOG(FATAL) << "tier_bench: " << s;
  Figures f;
  const int n = static_cast<int>(m.reports.size()) - kWarmup;
  CHECK_GT(n, 0) << "--steps must exceed " << kWarmup;
  for (size_t i = kWarmup; i < m.reports.size(); ++i) {
    const StepMetrics& r = m.reports[i];
    f.step_s += r.step_s / n;
    f.nvme_wait_s += r.nvme_wait_s / n;
    f.compute_s += r.compute_s / n;
    f.optimizer_s += r.optimizer_s / n;
    f.read_bytes += static_cast<double>(r.nvme_read_bytes) / n;
    f.reused_bytes += static_cast<double>(r.nvme_reused_bytes) / n;
    f.write_bytes += static_cast<double>(r.nvme_write_bytes) / n;
    f.unplanned += r.nvme_unplanned_reads;
  }
  return f;
}

// Sequential write, then read, GB/s (1e9 bytes/s) of the tier's own block
// device on `dir`: 1 MiB requests, 32 in flight, O_DIRECT, as the tier runs.
std::pair<double, double> Bandwidth(const std::string& dir, int64_t bytes) {
  constexpr int64_t kBlock = 1 << 20;
  constexpr int kDepth = 32;
  bytes = std::max<int64_t>(bytes / kBlock, kDepth) * kBlock;
  storage::FileBlockDeviceOptions options({dir}, bytes);
  options.file_name = "tier_bench-bandwidth";
  auto device = storage::OpenFileBlockDevice(options);
  CHECK(device.ok()) << device.status();
  storage::AlignedBuffer buffers(kDepth * kBlock, 4096);
  std::fill_n(buffers.data(), buffers.size(), 0x5A);
  (*device)->RegisterBuffers({{buffers.data(), buffers.size()}}).IgnoreError();
  double gbps[2];
  for (storage::IoOp op : {storage::IoOp::kWrite, storage::IoOp::kRead}) {
    std::vector<storage::IoRequest> requests;
    for (int64_t i = 0; i < bytes / kBlock; ++i) {
      requests.push_back(
          {op, i * kBlock, kBlock, buffers.data() + (i % kDepth) * kBlock});
    }
    const double start = Seconds();
    auto ticket = (*device)->Submit(requests);
    const absl::Status s =
        ticket.ok() ? (*device)->Wait(*ticket) : ticket.status();
    CHECK(s.ok()) << s;
    gbps[op == storage::IoOp::kRead] = bytes / (Seconds() - start) / 1e9;
  }
  std::printf("# tier bandwidth: %s\n", (*device)->Describe().c_str());
  return {gbps[0], gbps[1]};
}

int Main() {
  JobConfig c;
  c.model = {.layers = absl::GetFlag(FLAGS_layers),
             .hidden = absl::GetFlag(FLAGS_hidden),
             .heads = absl::GetFlag(FLAGS_heads),
             .seq_len = absl::GetFlag(FLAGS_seq_len),
             .vocab = 512};
  c.training.batch = absl::GetFlag(FLAGS_batch);
  c.training.micro_batch = absl::GetFlag(FLAGS_micro_batch);
  c.training.steps = absl::GetFlag(FLAGS_steps);
  c.training.clip_norm = absl::GetFlag(FLAGS_clip_norm);
  c.offload.method = OffloadMethod::kStronghold;
  c.offload.window = absl::GetFlag(FLAGS_window);
  const std::string precision = absl::GetFlag(FLAGS_precision);
  if (precision == "bf16") {
    c.training.precision = Precision::kBf16;
  } else if (precision == "fp16") {
    c.training.precision = Precision::kFp16;
  } else if (precision != "fp32") {
    std::fprintf(stderr,
                 "tier_bench: --precision=%s: expected fp32, bf16 or fp16\n",
                 precision.c_str());
    return 2;
  }
  std::string dir = absl::GetFlag(FLAGS_dir);
  const bool own_dir = dir.empty();
  if (own_dir) {
    char templ[] = "/tmp/tier_bench-XXXXXX";
    CHECK(mkdtemp(templ) != nullptr);
    dir = templ;
  }
  const std::string ssd = dir + "/ssd", jobs = dir + "/jobs";
  std::filesystem::create_directories(ssd);
  c.offload.ssd_dirs = {ssd};
  const int layers = c.model.layers;
  const char* sent = c.training.precision == Precision::kFp32
                         ? "fp32 masters"
                         : "working copies";
  std::printf(
      "# model: %d layers, hidden %d, heads %d, seq %d, batch %d (micro %d), "
      "%s, STRONGHOLD W=%d, clip %g; %d steps, %d not counted; CPU device\n",
      layers, c.model.hidden, c.model.heads, c.model.seq_len, c.training.batch,
      c.training.micro_batch, precision.c_str(), c.offload.window,
      c.training.clip_norm, c.training.steps, kWarmup);
  const auto [write_gbps, read_gbps] =
      Bandwidth(ssd, absl::GetFlag(FLAGS_bandwidth_mib) << 20);
  std::printf("# tier: %s, sequential write %.2f GB/s, read %.2f GB/s\n",
              ssd.c_str(), write_gbps, read_gbps);

  struct Case {
    std::string name;
    int ssd_layers, ssd_weight_layers;
    Figures best;
  };
  std::vector<Case> cases = {
      {"RAM", 0, 0, {}},
      {"optimizer state on tier", layers, 0, {}},
      {absl::StrCat("+ ", sent, " on tier"), layers, layers, {}},
  };
  const int rounds = std::max(1, absl::GetFlag(FLAGS_rounds));
  for (int round = 0; round < rounds; ++round) {
    for (size_t k = 0; k < cases.size(); ++k) {
      // Alternate the order each round: RAM first, then last.
      Case& x = cases[round % 2 == 0 ? k : cases.size() - 1 - k];
      std::fprintf(stderr, "round %d/%d: %s\n", round + 1, rounds,
                   x.name.c_str());
      const Figures f = Measure(c, jobs, x.ssd_layers, x.ssd_weight_layers);
      if (round == 0 || f.step_s < x.best.step_s) x.best = f;
    }
  }
  const double ram = cases[0].best.step_s;
  std::printf("%-30s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n", "case",
              "step_s", "compute_s", "nvme_wait", "opt_wait", "read_MB",
              "reused_MB", "write_MB", "floor_s", "vs floor", "vs RAM");
  for (const Case& x : cases) {
    const Figures& f = x.best;
    const double io_s =
        f.read_bytes / (read_gbps * 1e9) + f.write_bytes / (write_gbps * 1e9);
    const double floor = std::max(ram, io_s);
    std::printf(
        "%-30s %9.4f %9.4f %9.4f %9.4f %9.1f %9.1f %9.1f %9.4f %8.3fx %8.3fx\n",
        x.name.c_str(), f.step_s, f.compute_s, f.nvme_wait_s, f.optimizer_s,
        f.read_bytes / 1e6, f.reused_bytes / 1e6, f.write_bytes / 1e6, floor,
        f.step_s / floor, f.step_s / ram);
    if (f.unplanned > 0) {
      std::printf("  (%lld reads off the engine's plan: a bug)\n",
                  static_cast<long long>(f.unplanned));
    }
  }
  if (own_dir) std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace stronghold::core

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  absl::ParseCommandLine(argc, argv);
  return stronghold::core::Main();
}
