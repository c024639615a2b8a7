// The NVMe tier's share of a plan (core/plan/ssd_placement.h).
#include "core/plan/ssd_placement.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/plan/memory_table.h"
#include "storage/extent_store.h"

namespace stronghold::core {
namespace {

constexpr int64_t kFloat = 4;

// The NVMe tier's I/O geometry: O_DIRECT alignment and the block (and CRC32C)
// size of storage/block_device_factory.h's defaults.
constexpr int64_t kSsdAlignment = 4096;
constexpr int64_t kSsdBlockBytes = 1 << 20;

int64_t RoundUp(int64_t x, int64_t unit) {
  return (x + unit - 1) / unit * unit;
}

// With the optimizer state of every block layer on the ssd tier already:
// moves what H2D sends of as few block layers as needed there too, from
// layer 0 up: the bf16/fp16 working copies (2 bytes per parameter), or in
// fp32 the masters (4), which then join the layer's spilled state as its
// third array (bf16/fp16 working copies are its fourth). The engine reads
// them ahead of each fetch into a ring of TierReadRing host buffers (pinned
// on a GPU); the optimizer's kSsdStagingSlots slots grow by that array.
void PlaceWeightsOnSsd(const JobConfig& c, const NodeBudgets& node,
                       ExecutionPlan& plan) {
  const int64_t need = HostNeedBytes(plan, node.device_is_host());
  const bool forced = node.force_ssd_weight_layers >= 0;
  if (forced ? node.force_ssd_weight_layers == 0
             : need <= plan.budget_host_bytes)
    return;
  // One rank's slice of a layer (the whole layer with one rank).
  const int64_t layer = plan.rank_parameters_per_layer;
  const int64_t e = ComputeElementBytes(c.training.precision);
  const bool fp32 = c.training.precision == Precision::kFp32;
  const char* lowp = PrecisionName(c.training.precision);
  const int ring = plan.slots + 1;  // TierReadRing
  const int64_t one = RoundUp(layer * e, kSsdAlignment);
  const int64_t optimizer = kSsdStagingSlots * one;
  // In fp32 the spilled masters pass through the checkpoint staging too.
  const int64_t checkpoint = fp32 ? RoundUp(layer * kFloat, kSsdAlignment) : 0;
  const int64_t excess =
      need - plan.budget_host_bytes + ring * one + optimizer + checkpoint;
  // (Forced beyond the layers whose state is there, the trainer refuses it.)
  const int64_t k =
      forced ? std::min(node.force_ssd_weight_layers, c.model.layers)
             : std::min<int64_t>((excess + layer * e - 1) / (layer * e),
                                 std::min(plan.ssd_layers, c.model.layers));
  const std::string sent = absl::StrCat("host.weights.", lowp);
  for (PlannedBuffer& b : plan.buffers) {
    if (b.name != sent) continue;
    (b.tier == kTierPinned ? plan.bytes_pinned : plan.bytes_host) -=
        k * layer * e;
    b.bytes -= k * layer * e;
    b.shape =
        fp32 ? absl::StrFormat("%d params fp32 (masters, sent H2D)",
                               plan.rank_parameters - k * layer)
             : absl::StrFormat(
                   "%d params %s (working copy the optimizer writes, sent H2D)",
                   plan.rank_parameters - k * layer, lowp);
  }
  AddBuffer(
      plan, "host.staging.ssd_weights", node.cuda() ? kTierPinned : kTierHost,
      ring * one,
      absl::StrFormat("%d read-ahead buffers (window slots + 1) x %d params %s",
                      ring, layer, lowp));
  AddBuffer(
      plan, fp32 ? "host.staging.ssd.master" : "host.staging.ssd.working",
      kTierHost, optimizer,
      absl::StrFormat(
          "%d optimizer slots x %d params %s (%s)", kSsdStagingSlots, layer,
          lowp,
          fp32 ? "the master beside the moments"
               : "the working copy the update writes, written back with them"));
  if (fp32) {
    AddBuffer(plan, "host.staging.checkpoint.master", kTierHost, checkpoint,
              absl::StrFormat("%d params fp32: the spilled master beside them",
                              layer));
  }
  AddBuffer(plan, fp32 ? "ssd.master.fp32" : absl::StrCat("ssd.weights.", lowp),
            kTierSsd,
            k * storage::ExtentStore::StoredBytes(layer * e, kSsdAlignment,
                                                  kSsdBlockBytes),
            absl::StrFormat("layers 0..%d x %d params %s (%s), CRC32C per MiB",
                            k - 1, layer, lowp,
                            fp32 ? "masters, sent H2D" : "working copies"));
  plan.ssd_weight_layers = static_cast<int>(k);
}

}  // namespace

// The Adam moments and, in bf16/fp16, the fp32 masters; DecideFit judges
// the result.
void PlaceOnSsd(const JobConfig& c, const NodeBudgets& node,
                ExecutionPlan& plan) {
  const int64_t need = HostNeedBytes(plan, node.device_is_host());
  const bool forced = node.force_ssd_layers >= 0;
  // Speculative updates save state that the tier would hold, and resident
  // layers are the ones the tier would take first: not together.
  if (forced ? node.force_ssd_layers == 0
             : (!node.ssd_streaming || c.offload.ssd_dirs.empty() ||
                plan.budget_host_bytes <= 0 || need <= plan.budget_host_bytes ||
                plan.speculative_updates || plan.device_resident_layers > 0)) {
    return;
  }
  const bool masters = SsdHoldsMasters(c.training.precision);
  const int arrays = masters ? 3 : 2;
  const bool transient = SsdGradsTransient(c.training, plan.world_size);
  // One rank's slice of a layer (the whole layer with one rank).
  const int64_t layer = plan.rank_parameters_per_layer;
  // Each spilled layer frees its state and, where gradients are consumed as
  // they land, its accumulator; one layer's accumulator serves them all.
  const int64_t state_per_layer =
      (arrays + (transient ? 1 : 0)) * layer * kFloat;
  const int64_t staging =
      kSsdStagingSlots * arrays * RoundUp(layer * kFloat, kSsdAlignment);
  const int64_t grad_scratch = transient ? layer * kFloat : 0;
  // Checkpoints, restores and the initial values move one spilled layer's
  // state at a time through host memory (SsdTier's checkpoint staging).
  const int64_t checkpoint = arrays * RoundUp(layer * kFloat, kSsdAlignment);
  const int64_t excess =
      need - plan.budget_host_bytes + staging + grad_scratch + checkpoint;
  const int64_t k = std::min<int64_t>(
      forced ? node.force_ssd_layers
             : (excess + state_per_layer - 1) / state_per_layer,
      c.model.layers);
  // The host buffers the spilled layers leave shrink in place.
  const int64_t host_params = plan.rank_parameters - k * layer;
  const char* grad_tier = kTierHost;
  for (PlannedBuffer& b : plan.buffers) {
    if (b.name == "host.adam.exp_avg.fp32" ||
        b.name == "host.adam.exp_avg_sq.fp32" ||
        (masters && b.name == "host.weights.fp32") ||
        (transient && b.name == "host.grads.fp32")) {
      (b.tier == kTierPinned ? plan.bytes_pinned : plan.bytes_host) -=
          b.bytes - host_params * kFloat;
      b.bytes = host_params * kFloat;
      b.shape = absl::StrFormat("%d params fp32", host_params);
    }
    if (b.name == "host.grads.fp32" && b.tier == kTierPinned)
      grad_tier = kTierPinned;
  }
  if (transient) {
    AddBuffer(plan, "host.grads.spilled.fp32", grad_tier, grad_scratch,
              absl::StrFormat(
                  "%d params fp32: the gradient of layers 0..%d, one at a "
                  "time (each is consumed by its update as it lands: one "
                  "micro-batch, no clipping)",
                  layer, k - 1));
  }
  plan.ssd_grads_transient = transient;
  const char* slot =
      masters ? "exp_avg + exp_avg_sq + master" : "exp_avg + exp_avg_sq";
  AddBuffer(plan, "host.staging.ssd", kTierHost, staging,
            absl::StrFormat("%d slots x (%s) x %d params fp32",
                            kSsdStagingSlots, slot, layer));
  AddBuffer(plan, "host.staging.checkpoint", kTierHost, checkpoint,
            absl::StrFormat("(%s) x %d params fp32: one spilled layer's "
                            "state on its way to or from a checkpoint",
                            slot, layer));
  const int64_t extent = storage::ExtentStore::StoredBytes(
      layer * kFloat, kSsdAlignment, kSsdBlockBytes);
  // In fp32 the masters are what H2D sends, so they stay in host memory; in
  // bf16/fp16 the working copy is sent and only the optimizer reads them.
  AddBuffer(
      plan,
      masters ? "ssd.adam.exp_avg+exp_avg_sq+master"
              : "ssd.adam.exp_avg+exp_avg_sq",
      kTierSsd, k * arrays * extent,
      absl::StrFormat("layers 0..%d x %d x %d params fp32, CRC32C per MiB%s",
                      k - 1, arrays, layer,
                      masters ? ""
                              : " (the masters, which H2D sends, follow only "
                                "if this is not enough)"));
  plan.ssd_layers = static_cast<int>(k);
  if (forced ? node.force_ssd_weight_layers > 0 : k == c.model.layers) {
    PlaceWeightsOnSsd(c, node, plan);
  }
}

}  // namespace stronghold::core
