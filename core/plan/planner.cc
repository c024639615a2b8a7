// Resolves a job's execution plan (core/plan/planner.h): the budgets, the
// engine, the window and the other settings, each by its rule in this
// folder, then the memory table and the fit decision.
#include "core/plan/planner.h"

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "core/model/gpt_layout.h"
#include "core/plan/memory_table.h"
#include "core/plan/shard.h"

namespace stronghold::core {
namespace {

// One rank's share of the training state (ExecutionPlan's data-parallel
// fields): the busiest rank's slices, in the optimizer's chunks.
void PlanShards(const ModelConfig& m, int world, ExecutionPlan& plan) {
  plan.world_size = world;
  const int64_t layer = BusiestRankShare(BlockLayout(m, 0).count, world).owned;
  plan.rank_parameters_per_layer = layer;
  plan.rank_parameters =
      m.layers * layer +
      BusiestRankShare(EmbeddingLayout(m).count, world).owned +
      BusiestRankShare(FinalNormLayout(m).count, world).owned;
}

}  // namespace

int MaxTrainableLayers(const JobConfig& config, const NodeBudgets& node) {
  JobConfig c = config;
  const auto fits = [&](int layers) {
    c.model.layers = layers;
    return PlanExecution(c, node).fits;
  };
  if (!fits(1)) return 0;
  // Plans grow with the number of layers: double, then bisect; at most the
  // largest model.layers a spec may ask for.
  int lo = 1, hi = 2;
  while (hi <= kMaxLayers && fits(hi)) {
    lo = hi;
    hi *= 2;
  }
  if (hi > kMaxLayers) {
    if (lo == kMaxLayers || fits(kMaxLayers)) return kMaxLayers;
    hi = kMaxLayers;
  }
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

ExecutionPlan PlanExecution(const JobConfig& config, const NodeBudgets& node) {
  const JobConfig& c = config;
  const ModelConfig& m = c.model;
  const OffloadConfig& o = c.offload;
  ExecutionPlan plan;
  plan.method = o.method;
  plan.device = node.device;
  plan.parameters = m.parameters();
  plan.parameters_per_layer = m.parameters_per_layer();
  plan.model_flops_per_step = m.model_flops_per_step(c.training.batch);
  plan.budget_device_bytes = node.device_bytes;
  if (o.gpu_memory_budget_bytes > 0) {
    plan.budget_device_bytes =
        node.device_bytes > 0
            ? std::min(node.device_bytes, o.gpu_memory_budget_bytes)
            : o.gpu_memory_budget_bytes;
  }
  plan.budget_host_bytes = node.host_bytes;
  if (o.host_memory_budget_bytes > 0) {
    plan.budget_host_bytes =
        node.host_bytes > 0
            ? std::min(node.host_bytes, o.host_memory_budget_bytes)
            : o.host_memory_budget_bytes;
  }

  // Sizes beyond what is checked (core/plan/job_config.h) are never planned:
  // such a plan does not fit and says why.
  if (absl::Status sizes = CheckDerivedSizes(c); !sizes.ok()) {
    plan.reason = std::string(sizes.message());
    return plan;
  }
  PlanShards(m, std::max(1, c.distributed.world_size), plan);
  // Below that bound no size computed here overflows; the totals saturate
  // all the same (a saturated total never fits).

  // Plain autograd needs every state on the compute device and the host's
  // optimizer: the host device in fp32. RESIDENT elsewhere (a GPU, bf16/fp16:
  // the mixed-precision machinery is the engine's) is the engine with every
  // layer kept.
  const bool device_is_host = node.device_is_host();
  plan.reference = o.method == OffloadMethod::kResident &&
                   c.training.precision == Precision::kFp32 && device_is_host;
  if (plan.reference) {
    // (A forced NVMe share is recorded for the trainer to refuse.)
    plan.ssd_layers = std::max(0, node.force_ssd_layers);
    AddReferenceBuffers(c, plan);
    DecideFit(c, node, plan);
    return plan;
  }
  plan.host_checkpoints = CheckpointsOnHost(c, plan.budget_device_bytes);
  const ResolvedWindow window = ResolveWindow(c, plan.budget_device_bytes);
  plan.window = window.window;
  plan.automatic_window = window.automatic;
  plan.slots = WindowSlots(c, plan.window);
  plan.device_resident_layers = DeviceResidentLayers(c);
  plan.device_embedding_optimizer = o.device_embedding_optimizer;
  plan.speculative_updates = SpeculativeUpdates(o, c.training);
  // On a GPU only the device budget bounds the kept layers, so a window
  // settled smaller leaves room for more; on the host device host memory
  // bounds them too, and the count planned here with both stands.
  plan.kept_follows_window = plan.automatic_window &&
                             o.method == OffloadMethod::kStronghold &&
                             o.kept_activation_layers == 0 && !device_is_host;
  AddWindowedBuffers(c, plan, node.cuda());
  PlaceOnSsd(c, node, plan);
  PlanKeptActivations(c, device_is_host, plan);
  DecideFit(c, node, plan);
  return plan;
}

ExecutionPlan SettleWindow(const JobConfig& config, const ExecutionPlan& plan,
                           int window) {
  ExecutionPlan settled = plan;
  settled.window = std::clamp(window, 1, plan.window);
  settled.slots = WindowSlots(config, settled.window);
  if (plan.kept_follows_window) {
    settled.kept_activation_layers = KeptActivationLayersForDevice(
        config, settled.window, plan.budget_device_bytes);
  }
  return settled;
}

}  // namespace stronghold::core
