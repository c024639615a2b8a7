// Measuring a node's hardware profile (core/profile/measure.h).
#include "core/profile/measure.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/model/gpt.h"
#include "core/model/gpt_init.h"
#include "core/model/gpt_layout.h"
#include "core/optim/cpu_budget.h"
#include "core/optim/fused_adamw.h"
#include "core/util/exception_status.h"
#include "core/util/status_macros.h"

namespace stronghold::core {
namespace {

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Best time of `repeats` runs of `fn` after one warm-up.
template <typename Fn>
double Best(int repeats, Fn fn) {
  fn();
  double best = 1e30;
  for (int i = 0; i < std::max(1, repeats); ++i) {
    const double start = Now();
    fn();
    best = std::min(best, Now() - start);
  }
  return std::max(best, 1e-9);
}

double MemTotalBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kib = 0;
  while (in >> key >> kib) {
    if (key == "MemTotal:") return kib * 1024;
    in.ignore(256, '\n');
  }
  return 0;
}

torch::ScalarType ToTorch(Precision p) {
  return p == Precision::kBf16   ? torch::kBFloat16
         : p == Precision::kFp16 ? torch::kHalf
                                 : torch::kFloat32;
}

// Copies of `bytes` from a host buffer to a device buffer and back; sets
// the profile's copy figures.
absl::Status MeasureCopies(Device& device, const MeasureOptions& o,
                           HardwareProfile& p) {
  ASSIGN_OR_RETURN(void* host, device.AllocateHost(o.copy_bytes));
  std::shared_ptr<void> free_host(host, [&](void* h) { device.FreeHost(h); });
  ASSIGN_OR_RETURN(void* dev, device.Allocate(o.copy_bytes, "profile copy"));
  std::memset(host, 1, o.copy_bytes);
  const auto copy = [&](Queue q, int64_t bytes) {
    if (q == Queue::kH2D) {
      device.Copy(q, dev, host, bytes, -1);
    } else {
      device.Copy(q, host, dev, bytes, -1);
    }
    device.HostWait(device.Record(q));
  };
  const double h2d =
      Best(o.copy_repeats, [&] { copy(Queue::kH2D, o.copy_bytes); });
  const double d2h =
      Best(o.copy_repeats, [&] { copy(Queue::kD2H, o.copy_bytes); });
  const double small = Best(5, [&] { copy(Queue::kH2D, 64); });
  RETURN_IF_ERROR(device.status());
  p.copy_latency_s = small;
  p.h2d_gbps = o.copy_bytes / std::max(h2d - small, 1e-9) / 1e9;
  p.d2h_gbps = o.copy_bytes / std::max(d2h - small, 1e-9) / 1e9;
  // The engine never copies from pageable memory; the seed's L2L did.
  p.pageable_copy_gbps = std::min(p.h2d_gbps, p.d2h_gbps);
  p.sources["h2d_gbps"] =
      absl::StrFormat("measured: H2D copies of %d bytes on %s, best of %d",
                      o.copy_bytes, device.name(), o.copy_repeats);
  p.sources["d2h_gbps"] =
      absl::StrFormat("measured: D2H copies of %d bytes on %s, best of %d",
                      o.copy_bytes, device.name(), o.copy_repeats);
  p.sources["copy_latency_s"] = "measured: a 64-byte H2D copy, best of 5";
  p.sources["pageable_copy_gbps"] = "not measured: the slower pinned direction";
  device.Reset();  // frees the device buffer
  return absl::OkStatus();
}

// FusedAdamW's passes over `o.optimizer_params` fp32 parameters.
absl::Status MeasureOptimizer(const MeasureOptions& o, HardwareProfile& p) {
  const int64_t n = o.optimizer_params;
  std::vector<float> param(n, 0.5f), m(n, 0.f), v(n, 0.f), g(n, 1e-3f),
      staging(n, 1e-3f);
  std::vector<uint16_t> working(n);
  ParamBuffer buffer{param.data(), m.data(), v.data(), g.data(), n, n};
  const AdamWStep hyper{.lr = 1e-4f, .weight_decay = 0.1f};
  const int threads =
      o.optimizer_threads > 0 ? o.optimizer_threads : UsableCpuCount();
  ASSIGN_OR_RETURN(std::unique_ptr<FusedAdamW> pool,
                   FusedAdamW::Create({.threads = threads}));
  ASSIGN_OR_RETURN(std::unique_ptr<FusedAdamW> one,
                   FusedAdamW::Create({.threads = 1}));
  absl::Status error;
  const auto run = [&](absl::StatusOr<StepFuture> f) {
    if (!f.ok()) {
      error.Update(f.status());
      return;
    }
    f->Wait();
  };
  const double adamw =
      Best(o.optimizer_repeats, [&] { run(pool->Submit(buffer, hyper)); });
  ParamBuffer lowp = buffer;
  lowp.working = working.data();
  lowp.working_dtype = DType::kBFloat16;
  const double adamw_lowp =
      Best(o.optimizer_repeats, [&] { run(pool->Submit(lowp, hyper)); });
  // buffer.grad += staging: reads 8 B, writes 4 per parameter.
  ParamBuffer accum = buffer;
  float* grad = g.data();
  accum.grad = grad;
  const double add = Best(o.optimizer_repeats, [&] {
    run(pool->SubmitAccumulate(accum, staging.data(), DType::kFloat32,
                               /*first=*/false, /*measure=*/false, 1.0f));
  });
  const double add_one = Best(o.optimizer_repeats, [&] {
    run(one->SubmitAccumulate(accum, staging.data(), DType::kFloat32,
                              /*first=*/false, /*measure=*/false, 1.0f));
  });
  RETURN_IF_ERROR(error);
  p.cpu_threads = threads;
  p.cpu_adamw_gbps = n * 28.0 / adamw / 1e9;
  p.cpu_adamw_lowp_gbps = n * 30.0 / adamw_lowp / 1e9;
  p.cpu_copy_gbps = n * 12.0 / add / 1e9;
  p.cpu_single_thread_gbps = n * 12.0 / add_one / 1e9;
  const std::string of =
      absl::StrFormat("%d fp32 params at %d threads, best of %d", n, threads,
                      o.optimizer_repeats);
  p.sources["cpu_adamw_gbps"] = "measured: FusedAdamW, " + of;
  p.sources["cpu_adamw_lowp_gbps"] =
      "measured: FusedAdamW with a bf16 working copy, " + of;
  p.sources["cpu_copy_gbps"] = "measured: SubmitAccumulate (12 B), " + of;
  p.sources["cpu_single_thread_gbps"] =
      "measured: SubmitAccumulate (12 B) on one thread";
  p.sources["cpu_threads"] = "the optimizer pool's size";
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LayerTiming> MeasureLayer(Device& device,
                                         const JobConfig& config, int repeats) {
  try {
    const ModelConfig& model = config.model;
    const BufferLayout layout = BlockLayout(model, 0);
    std::vector<float> init(layout.count);
    InitBuffer(layout, model, /*seed=*/1, /*index=*/1, init.data());
    auto scope = device.ComputeScope();
    const auto dev = torch::TensorOptions()
                         .dtype(ToTorch(config.training.precision))
                         .device(device.torch_device());
    torch::Tensor weights =
        torch::from_blob(init.data(), {layout.count}).to(dev).clone();
    torch::Tensor x =
        torch::randn({config.training.micro_batch, model.seq_len, model.hidden},
                     torch::TensorOptions().dtype(torch::kFloat32))
            .to(dev);
    const auto drain = [&] { device.HostWait(device.Record(Queue::kCompute)); };
    std::vector<double> forward, backward;
    for (int i = 0; i <= std::max(1, repeats); ++i) {
      torch::Tensor w = weights.detach().requires_grad_(true);
      torch::Tensor xi = x.detach().requires_grad_(true);
      drain();
      double start = Now();
      torch::Tensor y;
      {
        torch::NoGradGuard no_grad;
        y = gpt::Block(w, layout, xi, model.heads);
      }
      drain();
      const double f = Now() - start;
      y = gpt::Block(w, layout, xi, model.heads);  // with autograd
      torch::Tensor dy = torch::ones_like(y);
      drain();
      start = Now();
      y.backward(dy);
      drain();
      const double b = Now() - start;
      if (i == 0) continue;  // warm-up
      forward.push_back(f);
      backward.push_back(b);
    }
    std::sort(forward.begin(), forward.end());
    std::sort(backward.begin(), backward.end());
    RETURN_IF_ERROR(device.status());
    return LayerTiming{config.training.precision,
                       model.hidden,
                       model.heads,
                       model.seq_len,
                       config.training.micro_batch,
                       std::max(forward[forward.size() / 2], 1e-9),
                       std::max(backward[backward.size() / 2], 1e-9)};
  } catch (...) {
    return StatusFromException("measuring a layer");
  }
}

absl::StatusOr<HardwareProfile> MeasureNodeProfile(Device& device,
                                                   const MeasureOptions& o) {
  HardwareProfile p;
  p.name = o.name;
  p.device_is_host = device.name() == "cpu";
  p.description = absl::StrCat("measured on this node (", device.name(), ")");
  RETURN_IF_ERROR(MeasureCopies(device, o, p));
  RETURN_IF_ERROR(MeasureOptimizer(o, p));
  // On the host device the "device" optimizer is the same pool.
  p.device_adamw_gbps = p.device_is_host ? p.cpu_adamw_gbps : 10 * p.h2d_gbps;
  p.sources["device_adamw_gbps"] = p.device_is_host
                                       ? "the optimizer pool (the host device)"
                                       : "not measured: 10x the H2D bandwidth";
  p.layer_overhead_s = p.device_is_host ? 1e-6 : 5e-5;
  p.sources["layer_overhead_s"] = "estimate";
  p.nvme_read_gbps = o.nvme_read_gbps;
  p.nvme_write_gbps = o.nvme_write_gbps;
  p.sources["nvme_read_gbps"] = "not measured at start-up (io_bench does)";
  p.sources["nvme_write_gbps"] = "not measured at start-up (io_bench does)";
  p.host_memory_bytes =
      o.host_memory_bytes > 0 ? o.host_memory_bytes : MemTotalBytes();
  p.sources["host_memory_bytes"] = "/proc/meminfo MemTotal";
  p.device_memory_bytes = device.budget_bytes() > 0
                              ? static_cast<double>(device.budget_bytes())
                              : p.host_memory_bytes;
  p.sources["device_memory_bytes"] = "the device's budget";

  // One point of the compute curve per precision: a small block's forward.
  JobConfig probe;
  probe.model = {.layers = 1,
                 .hidden = o.probe_hidden,
                 .heads = 4,
                 .seq_len = 128,
                 .vocab = 256};
  probe.training.batch = probe.training.micro_batch = 2;
  const double estimate = p.cpu_threads * 32 * 2.5e9 / 1e12;
  for (Precision precision : {Precision::kFp32, Precision::kBf16}) {
    probe.training.precision = precision;
    ASSIGN_OR_RETURN(const LayerTiming t, MeasureLayer(device, probe, 2));
    DeviceCompute c;
    c.precision = precision;
    const bool fp32 = precision == Precision::kFp32;
    c.peak_tflops =
        fp32 ? (o.peak_tflops_fp32 > 0 ? o.peak_tflops_fp32 : estimate)
             : (o.peak_tflops_bf16 > 0 ? o.peak_tflops_bf16 : 2 * estimate);
    const double achieved = LayerForwardFlops(probe) / t.forward_s / 1e12;
    c.achieved.push_back({o.probe_hidden, std::min(achieved, c.peak_tflops)});
    c.source = absl::StrFormat(
        "measured: one block forward at hidden %d, seq 128, micro-batch 2 "
        "(a job's own shape is measured when it is planned); peak: %s",
        o.probe_hidden,
        (fp32 ? o.peak_tflops_fp32 : o.peak_tflops_bf16) > 0
            ? "given"
            : "estimated, threads x 32 FLOP/cycle x 2.5 GHz");
    p.compute.push_back(c);
  }
  RETURN_IF_ERROR(ValidateHardwareProfile(p));
  return p;
}

}  // namespace stronghold::core
