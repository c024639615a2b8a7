// The buffers of a plan, with their tiers and bytes (core/plan/memory_table.h).
#include "core/plan/memory_table.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/model/gpt_layout.h"
#include "core/plan/shard.h"
#include "core/plan/window.h"
#include "core/util/checked_math.h"

namespace stronghold::core {
namespace {

constexpr int64_t kFloat = 4;

}  // namespace

void AddBuffer(ExecutionPlan& plan, std::string name, const char* tier,
               int64_t bytes, std::string shape) {
  plan.buffers.push_back({std::move(name), tier, bytes, std::move(shape)});
  int64_t* total = tier == std::string(kTierDevice)   ? &plan.bytes_device
                   : tier == std::string(kTierPinned) ? &plan.bytes_pinned
                   : tier == std::string(kTierHost)   ? &plan.bytes_host
                                                      : &plan.bytes_ssd;
  *total = SaturatingAdd(*total, bytes);
}

int64_t HostNeedBytes(const ExecutionPlan& plan, bool device_is_host) {
  return plan.bytes_host + plan.bytes_pinned +
         (device_is_host ? plan.bytes_device : 0);
}

void AddWindowedBuffers(const JobConfig& c, ExecutionPlan& plan, bool cuda) {
  const ModelConfig& m = c.model;
  const int slots = plan.slots;
  const int64_t layer = m.parameters_per_layer();
  // With N ranks a block's device buffer is padded to N x slice, and the
  // host holds (and D2H sends) this rank's slice of each buffer only.
  const int world = plan.world_size;
  const RankShare block = BusiestRankShare(layer, world);
  const RankShare emb = BusiestRankShare(EmbeddingLayout(m).count, world);
  const RankShare fin = BusiestRankShare(FinalNormLayout(m).count, world);
  const auto add = [&plan](std::string name, const char* tier, int64_t bytes,
                           std::string shape) {
    AddBuffer(plan, std::move(name), tier, bytes, std::move(shape));
  };
  // Weights, gradients and activations on the device, the working copy and
  // the gradient staging on the host are in the compute precision; masters,
  // the gradient accumulator and the moments are fp32 (docs/engine.md).
  const Precision precision = c.training.precision;
  const int64_t e = ComputeElementBytes(precision);
  const char* lowp = PrecisionName(precision);
  add("window.slots", kTierDevice,
      slots * 2 * ArenaAlignedBytes(block.device * e),
      absl::StrFormat("%d slots x (weights + gradient) x %d params %s", slots,
                      block.device, lowp));
  add("embedding+final_norm", kTierDevice,
      2 * ArenaAlignedBytes(emb.device * e) +
          2 * ArenaAlignedBytes(fin.device * e),
      absl::StrFormat("(weights + gradient) x %d params %s",
                      emb.device + fin.device, lowp));
  if (world > 1) {
    add("shards.gradients", kTierDevice,
        slots * ArenaAlignedBytes(block.slice * e) +
            ArenaAlignedBytes(emb.slice * e) + ArenaAlignedBytes(fin.slice * e),
        absl::StrFormat("%d slots + embedding + final norm: this rank's "
                        "reduce-scattered slice of each gradient, %s",
                        slots, lowp));
  }
  const char* dev_arrays =
      DeviceOptimizerArrays(precision) == 4
          ? "master, exp_avg, exp_avg_sq, gradient accumulator"
          : "exp_avg, exp_avg_sq, gradient accumulator";
  if (plan.device_embedding_optimizer) {
    add("embedding.optimizer", kTierDevice, DeviceEmbeddingOptimizerBytes(c),
        absl::StrFormat(
            "%s x %d params fp32 (offload.device_embedding_optimizer)",
            dev_arrays, m.embedding_parameters()));
  }
  if (const int k = plan.device_resident_layers; k > 0) {
    add("layers.resident", kTierDevice, DeviceResidentLayersBytes(c),
        absl::StrFormat(
            "layers 0..%d stay: %d x ((weights + gradient) x %d params %s + %s "
            "x %d params fp32) (offload.device_resident_layers)",
            k - 1, k, layer, lowp, dev_arrays, layer));
  }
  const std::string boundary = absl::StrFormat(
      "[%d, %d, %d] %s", c.training.micro_batch, m.seq_len, m.hidden, lowp);
  const int64_t act = BoundaryActivationBytes(c);
  if (plan.host_checkpoints) {
    add("activations.boundaries", kTierDevice,
        ArenaAlignedBytes((slots + 1) * act),
        absl::StrFormat("%d x %s: one layer input per slot + the head's",
                        slots + 1, boundary));
  } else {
    add("activations.checkpoints", kTierDevice,
        ArenaAlignedBytes((m.layers + 1) * act),
        absl::StrFormat("%d x %s", m.layers + 1, boundary));
  }
  add("activations.working", kTierDevice, WorkingBytes(c),
      "one layer's forward+backward working set + logits (allocated by "
      "LibTorch)");
  const char* host_tier = cuda ? kTierPinned : kTierHost;
  const bool fp32 = precision == Precision::kFp32;
  // With N ranks: this rank's slices (core/plan/shard.h).
  const int64_t held = plan.rank_parameters;
  const std::string params = absl::StrFormat(
      "%d params fp32%s", held, world > 1 ? " (this rank's slices)" : "");
  // In fp32 the masters themselves are copied to the device (pinned); else
  // the working copy is, and the masters stay in pageable memory.
  add("host.weights.fp32", fp32 ? host_tier : kTierHost, held * kFloat, params);
  if (!fp32) {
    add(absl::StrCat("host.weights.", lowp), host_tier, held * e,
        absl::StrFormat(
            "%d params %s (working copy the optimizer writes, sent H2D)", held,
            lowp));
  }
  add("host.grads.fp32", fp32 ? host_tier : kTierHost, held * kFloat, params);
  add("host.adam.exp_avg.fp32", kTierHost, held * kFloat, params);
  add("host.adam.exp_avg_sq.fp32", kTierHost, held * kFloat, params);
  add("host.staging.gradients", host_tier,
      (slots * block.owned + emb.owned + fin.owned) * e,
      absl::StrFormat("%d slots + embedding + final norm, %s%s", slots, lowp,
                      world > 1 ? " (this rank's slices)" : ""));
  if (plan.speculative_updates) {
    add("host.speculative_backup", kTierHost,
        held * (3 * kFloat + (fp32 ? 0 : e)),
        absl::StrFormat("%d params x (param + exp_avg + exp_avg_sq%s), saved "
                        "before each speculative update",
                        held, fp32 ? "" : absl::StrCat(" + ", lowp)));
  }
  // What each micro-batch of this rank sends to the host: the slices of the
  // gradients of every layer the window rotates through, the embedding's
  // unless its optimizer is on the device, the final norm's; and with host
  // checkpoints each block layer's input.
  const int64_t micro_batches =
      c.training.batch / (c.training.micro_batch * int64_t{world});
  const int64_t d2h_per_micro_batch =
      ((m.layers - plan.device_resident_layers) * block.owned +
       (plan.device_embedding_optimizer ? 0 : emb.owned) + fin.owned) *
          e +
      (plan.host_checkpoints ? m.layers * act : 0);
  plan.d2h_bytes_per_step = micro_batches * d2h_per_micro_batch;
  if (plan.host_checkpoints) {
    add("host.activations.checkpoints", host_tier, (m.layers + 1) * act,
        absl::StrFormat(
            "%d x %s, off the device: the budget has no room for them there",
            m.layers + 1, boundary));
  }
}

void PlanKeptActivations(const JobConfig& c, bool device_is_host,
                         ExecutionPlan& plan) {
  int64_t free = -1;  // unlimited
  if (plan.budget_device_bytes > 0)
    free = std::max<int64_t>(0, plan.budget_device_bytes - plan.bytes_device);
  if (device_is_host && plan.budget_host_bytes > 0) {
    const int64_t host_free =
        std::max<int64_t>(0, plan.budget_host_bytes - plan.bytes_host -
                                 plan.bytes_pinned - plan.bytes_device);
    free = free < 0 ? host_free : std::min(free, host_free);
  }
  const int k = KeptActivationLayers(c, free);
  plan.kept_activation_layers = k;
  if (k == 0) return;
  AddBuffer(plan, "activations.kept", kTierDevice, k * LayerWorkingBytes(c),
            absl::StrFormat("layers %d..%d keep their autograd activations (no "
                            "recompute), [%d, %d] x %d each",
                            c.model.layers - k, c.model.layers - 1,
                            c.training.micro_batch, c.model.seq_len,
                            c.model.layer_activation_elements_per_token()));
}

void AddReferenceBuffers(const JobConfig& c, ExecutionPlan& plan) {
  const ModelConfig& m = c.model;
  const int64_t p = plan.parameters;
  const std::string params = absl::StrFormat("%d params fp32", p);
  AddBuffer(plan, "weights.fp32", kTierDevice, p * kFloat, params);
  AddBuffer(plan, "grads.fp32", kTierDevice, p * kFloat, params);
  AddBuffer(plan, "adam.exp_avg.fp32", kTierDevice, p * kFloat, params);
  AddBuffer(plan, "adam.exp_avg_sq.fp32", kTierDevice, p * kFloat, params);
  AddBuffer(plan, "activations.layers", kTierDevice,
            m.layers * (LayerWorkingBytes(c)),
            absl::StrFormat("%d layers x [%d, %d] x %d fp32", m.layers,
                            c.training.micro_batch, m.seq_len,
                            m.layer_activation_elements_per_token()));
  const int64_t logits = static_cast<int64_t>(c.training.micro_batch) *
                         m.seq_len * m.padded_vocab() * kFloat;
  AddBuffer(
      plan, "activations.logits", kTierDevice, 3 * logits,
      absl::StrFormat("3 x [%d, %d, %d] fp32 (logits, softmax, grad)",
                      c.training.micro_batch, m.seq_len, m.padded_vocab()));
}

}  // namespace stronghold::core
