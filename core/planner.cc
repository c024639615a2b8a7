#include "core/planner.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace stronghold::core {

namespace {

constexpr int64_t kFloat = 4;

std::string Human(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return absl::StrFormat("%.1f %s", v, units[u]);
}

}  // namespace

int64_t BoundaryActivationBytes(const JobConfig& c) {
  return static_cast<int64_t>(c.training.micro_batch) * c.model.seq_len *
         c.model.hidden * kFloat;
}

int64_t LayerWorkingBytes(const JobConfig& c) {
  // Saved tensors of one block for backward, in units of [b, s, h] fp32:
  // ln1 out, qkv (3), attention out, proj out, residual, ln2 out, fc1 out (4),
  // gelu out (4), fc2 out, plus their gradients during backward: ~34 x, and
  // the attention's per-head softmax statistics (b*heads*s).
  const int64_t bsh = BoundaryActivationBytes(c);
  const int64_t stats = static_cast<int64_t>(c.training.micro_batch) * c.model.heads *
                        c.model.seq_len * kFloat;
  return 34 * bsh + stats;
}

MemoryPlan PlanMemory(const JobConfig& c, const NodeBudgets& node) {
  const ModelConfig& m = c.model;
  MemoryPlan plan;
  plan.device = node.device;
  plan.parameters = m.parameters();
  plan.parameters_per_layer = m.parameters_per_layer();
  plan.model_flops_per_step = m.model_flops_per_step(c.training.batch);
  plan.budget_device_bytes = node.device_bytes;
  if (c.offload.gpu_memory_budget_bytes > 0) {
    plan.budget_device_bytes = node.device_bytes > 0
                                   ? std::min(node.device_bytes, c.offload.gpu_memory_budget_bytes)
                                   : c.offload.gpu_memory_budget_bytes;
  }
  plan.budget_host_bytes = node.host_bytes;
  if (c.offload.host_memory_budget_bytes > 0) {
    plan.budget_host_bytes = node.host_bytes > 0
                                 ? std::min(node.host_bytes, c.offload.host_memory_budget_bytes)
                                 : c.offload.host_memory_budget_bytes;
  }

  auto add = [&](std::string name, const char* tier, int64_t bytes, std::string shape) {
    plan.buffers.push_back({std::move(name), tier, bytes, std::move(shape)});
    if (tier == std::string(kTierDevice)) plan.bytes_device += bytes;
    if (tier == std::string(kTierPinned)) plan.bytes_pinned += bytes;
    if (tier == std::string(kTierHost)) plan.bytes_host += bytes;
    if (tier == std::string(kTierSsd)) plan.bytes_ssd += bytes;
  };

  // RESIDENT: the whole training state on the compute device, and the full
  // autograd graph of one micro-batch (no recomputation).
  const int64_t p = plan.parameters;
  const std::string params = absl::StrFormat("%d params fp32", p);
  add("weights.fp32", kTierDevice, p * kFloat, params);
  add("grads.fp32", kTierDevice, p * kFloat, params);
  add("adam.exp_avg.fp32", kTierDevice, p * kFloat, params);
  add("adam.exp_avg_sq.fp32", kTierDevice, p * kFloat, params);
  add("activations.layers", kTierDevice, m.layers * (LayerWorkingBytes(c)),
      absl::StrFormat("%d layers x [%d, %d, %d] x ~34 fp32", m.layers,
                      c.training.micro_batch, m.seq_len, m.hidden));
  const int64_t logits = static_cast<int64_t>(c.training.micro_batch) * m.seq_len *
                         m.padded_vocab() * kFloat;
  add("activations.logits", kTierDevice, 3 * logits,
      absl::StrFormat("3 x [%d, %d, %d] fp32 (logits, softmax, grad)",
                      c.training.micro_batch, m.seq_len, m.padded_vocab()));
  plan.fits = true;
  if (plan.budget_device_bytes > 0 && plan.bytes_device > plan.budget_device_bytes) {
    plan.fits = false;
    plan.reason = absl::StrCat("device memory: needs ", Human(plan.bytes_device), " (",
                               plan.bytes_device, " bytes), budget ",
                               Human(plan.budget_device_bytes), " (", plan.budget_device_bytes,
                               " bytes); the smallest budget that works is ", plan.bytes_device,
                               " bytes");
  }
  const int64_t host_need = plan.bytes_host + plan.bytes_pinned;
  if (plan.fits && plan.budget_host_bytes > 0 && host_need > plan.budget_host_bytes) {
    plan.fits = false;
    plan.reason = absl::StrCat("host memory: needs ", Human(host_need), ", budget ",
                               Human(plan.budget_host_bytes));
  }
  return plan;
}

}  // namespace stronghold::core
