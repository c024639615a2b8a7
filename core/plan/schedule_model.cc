// The schedule model (core/plan/schedule_model.h): the simulator
// (core/plan/schedule_simulator.h) run over a few steps, the reference's
// serial step, and what the figures say (floors, bottleneck, rates).
#include "core/plan/schedule_model.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/plan/schedule_simulator.h"
#include "core/util/status_macros.h"

namespace stronghold::core {
namespace {

using schedule_internal::kCompute;
using schedule_internal::kCpu;
using schedule_internal::kGiga;
using schedule_internal::kNvme;
using schedule_internal::kPcie;
using schedule_internal::Simulator;

constexpr int64_t kSimulatedMicroBatches = 8;

// The reference plan (everything on the compute device): plain autograd,
// then the clip norm's measure and one AdamW over every parameter, on the
// same cores on the host device, on the GPU otherwise.
double ReferenceStep(const JobConfig& c, const ExecutionPlan& p,
                     const HardwareProfile& hw, const LayerCost& cost,
                     double head_s, ResourceSeconds& busy) {
  const int micro_batches = c.training.batch / c.training.micro_batch;
  busy.compute_s =
      micro_batches *
      (c.model.layers * (cost.forward_s + cost.backward_s) + head_s);
  const double n = static_cast<double>(p.parameters);
  if (!hw.device_is_host) {
    // All on a GPU (LibTorch's RESIDENT, gpu_bench's first row): AdamW and
    // the norm's pass over the gradients on the device, at its AdamW rate.
    busy.compute_s += n * (28.0 + (c.training.clip_norm > 0 ? 4.0 : 0)) /
                      (hw.device_adamw_gbps * kGiga);
    return busy.compute_s;
  }
  busy.cpu_optimizer_s =
      n * 28.0 / (hw.cpu_adamw_gbps * kGiga) +
      (c.training.clip_norm > 0 ? n * 4.0 / (hw.cpu_copy_gbps * kGiga) : 0);
  return busy.compute_s + busy.cpu_optimizer_s;
}

}  // namespace

const char* BottleneckName(Bottleneck b) {
  switch (b) {
    case Bottleneck::kCompute:
      return "compute";
    case Bottleneck::kPcie:
      return "pcie";
    case Bottleneck::kCpuOptimizer:
      return "cpu_optimizer";
    case Bottleneck::kNvme:
      return "nvme";
  }
  return "compute";
}

absl::StatusOr<StepPrediction> PredictStep(const JobConfig& c,
                                           const ExecutionPlan& p,
                                           const HardwareProfile& hw,
                                           const ScheduleOptions& o) {
  if (!p.fits)
    return absl::InvalidArgumentError(
        absl::StrCat("cannot predict a plan that does not fit: ", p.reason));
  if (o.steps < 2 || o.steps > 100)
    return absl::InvalidArgumentError("schedule model: steps outside [2, 100]");
  if (!(o.clipped_step_fraction >= 0 && o.clipped_step_fraction <= 1))
    return absl::InvalidArgumentError(
        "schedule model: clipped_step_fraction outside [0, 1]");
  if (c.training.micro_batch < 1 || c.training.batch % c.training.micro_batch)
    return absl::InvalidArgumentError(
        "schedule model: batch is not a multiple of micro_batch");
  RETURN_IF_ERROR(ValidateHardwareProfile(hw));
  ASSIGN_OR_RETURN(const LayerCost cost, LayerComputeCost(hw, c));
  ASSIGN_OR_RETURN(const DeviceCompute* compute,
                   ComputeFor(hw, c.training.precision));
  const double head_rate = AchievedTflops(*compute, c.model.hidden) * 1e12;

  StepPrediction out;
  out.layer_forward_s = cost.forward_s;
  out.layer_backward_s = cost.backward_s;
  out.layer_cost_measured = cost.measured;
  if (p.reference) {
    const double head_s = 3 * HeadForwardFlops(c) / head_rate;
    out.step_s = ReferenceStep(c, p, hw, cost, head_s, out.busy);
    out.floors = out.busy;
    out.critical = out.busy;
  } else {
    const auto run = [&](const JobConfig& job, bool clipped,
                         StepPrediction& into) {
      Simulator sim(job, p, hw, o, cost, head_rate, clipped);
      into.step_s = sim.Run(o.steps);
      into.busy = sim.Busy();
      into.floors = sim.Floors();
      const double* w = sim.waits();
      into.critical.compute_s = into.busy.compute_s;
      into.critical.pcie_s = w[kPcie];
      into.critical.cpu_optimizer_s = w[kCpu];
      into.critical.nvme_s = w[kNvme];
    };
    // Micro-batches between the first and the last repeat the same
    // schedule: beyond kSimulatedMicroBatches the step is extrapolated
    // from two simulations (a hostile batch of 2^20 micro-batches would
    // otherwise take minutes).
    const auto simulate = [&](bool clipped, StepPrediction& into) {
      const int64_t micro_batches = c.training.batch / c.training.micro_batch;
      if (micro_batches <= kSimulatedMicroBatches) {
        run(c, clipped, into);
        return;
      }
      JobConfig shorter = c;
      StepPrediction a, b;
      shorter.training.batch =
          (kSimulatedMicroBatches - 1) * c.training.micro_batch;
      run(shorter, clipped, a);
      shorter.training.batch = kSimulatedMicroBatches * c.training.micro_batch;
      run(shorter, clipped, b);
      const double more = micro_batches - kSimulatedMicroBatches;
      const auto extend = [more](double x7, double x8) {
        return x8 + more * (x8 - x7);
      };
      into.step_s = extend(a.step_s, b.step_s);
      for (auto [to, from7, from8] :
           {std::tuple{&into.busy, &a.busy, &b.busy},
            std::tuple{&into.floors, &a.floors, &b.floors},
            std::tuple{&into.critical, &a.critical, &b.critical}}) {
        for (double ResourceSeconds::*f :
             {&ResourceSeconds::compute_s, &ResourceSeconds::pcie_s,
              &ResourceSeconds::h2d_s, &ResourceSeconds::d2h_s,
              &ResourceSeconds::cpu_optimizer_s, &ResourceSeconds::nvme_s}) {
          to->*f = extend(from7->*f, from8->*f);
        }
      }
    };
    simulate(/*clipped=*/false, out);
    if (p.speculative_updates && o.clipped_step_fraction > 0) {
      StepPrediction clipped;
      simulate(/*clipped=*/true, clipped);
      const double f = o.clipped_step_fraction;
      out.step_s = (1 - f) * out.step_s + f * clipped.step_s;
      out.busy.cpu_optimizer_s =
          (1 - f) * out.busy.cpu_optimizer_s + f * clipped.busy.cpu_optimizer_s;
      out.floors.cpu_optimizer_s = out.busy.cpu_optimizer_s;
      out.critical.cpu_optimizer_s = (1 - f) * out.critical.cpu_optimizer_s +
                                     f * clipped.critical.cpu_optimizer_s;
    }
  }
  out.floor_s = std::max({out.floors.compute_s, out.floors.pcie_s,
                          out.floors.cpu_optimizer_s, out.floors.nvme_s});
  // The bottleneck: on a device of its own, whichever the compute stream
  // spent most time on (computing, or waiting for a resource); on the host
  // device, the largest share of the one timeline.
  const ResourceSeconds& r =
      hw.device_is_host || p.reference ? out.busy : out.critical;
  const double pcie = hw.device_is_host ? r.h2d_s + r.d2h_s : r.pcie_s;
  const std::pair<double, Bottleneck> candidates[] = {
      {r.compute_s, Bottleneck::kCompute},
      {pcie, Bottleneck::kPcie},
      {r.cpu_optimizer_s, Bottleneck::kCpuOptimizer},
      {r.nvme_s, Bottleneck::kNvme}};
  out.bottleneck =
      std::max_element(
          std::begin(candidates), std::end(candidates),
          [](const auto& a, const auto& b) { return a.first < b.first; })
          ->second;
  out.samples_per_s = c.training.batch / out.step_s;
  out.tokens_per_s = out.samples_per_s * c.model.seq_len;
  out.model_tflops = p.model_flops_per_step / out.step_s / 1e12;
  out.mfu = out.model_tflops / compute->peak_tflops;
  return out;
}

}  // namespace stronghold::core
