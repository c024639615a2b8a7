#include "core/plan/planner.h"

#include <algorithm>
#include <cstdint>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "core/util/checked_math.h"
#include "storage/extent_store.h"

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
         c.model.hidden * ComputeElementBytes(c.training.precision);
}

int64_t LayerWorkingBytes(const JobConfig& c) {
  // Saved tensors of one block for backward, in units of [b, s, h] (compute
  // precision):
  // ln1 out, qkv (3), attention out, proj out, residual, ln2 out, fc1 out (4),
  // gelu out (4), fc2 out, plus their gradients during backward: ~34 x, and
  // the attention's per-head softmax statistics (b*heads*s).
  const int64_t bsh = BoundaryActivationBytes(c);
  const int64_t stats = static_cast<int64_t>(c.training.micro_batch) * c.model.heads *
                        c.model.seq_len * kFloat;
  return 34 * bsh + stats;
}

int KeptActivationLayers(const JobConfig& c, int64_t free_device_bytes) {
  const int layers = c.model.layers;
  if (c.offload.method == OffloadMethod::kResident) return layers;
  if (c.offload.method != OffloadMethod::kStronghold) return 0;
  const int k = c.offload.kept_activation_layers;
  if (k != 0) return std::clamp(k, 0, layers);
  if (free_device_bytes < 0) return layers;
  return static_cast<int>(std::min<int64_t>(layers, free_device_bytes / LayerWorkingBytes(c)));
}

int KeptActivationLayersForDevice(const JobConfig& config, int window, int64_t device_budget) {
  if (device_budget <= 0 || device_budget == INT64_MAX) return KeptActivationLayers(config, -1);
  const int64_t used =
      WindowedArenaBytes(config, window, CheckpointsOnHost(config, device_budget)) +
      WorkingBytes(config);
  return KeptActivationLayers(config, std::max<int64_t>(0, device_budget - used));
}

namespace {

// Decides whether the plan fits its budgets; the reason carries the numbers.
void FinishPlan(const JobConfig& c, ExecutionPlan& plan, bool device_is_host) {
  plan.fits = true;
  if (plan.budget_device_bytes > 0 && plan.bytes_device > plan.budget_device_bytes) {
    plan.fits = false;
    int64_t smallest = plan.bytes_device;
    if (c.offload.method != OffloadMethod::kResident) smallest = SmallestDeviceBudget(c);
    plan.reason = absl::StrCat("device memory: needs ", Human(plan.bytes_device), " (",
                               plan.bytes_device, " bytes), budget ",
                               Human(plan.budget_device_bytes), " (", plan.budget_device_bytes,
                               " bytes); the smallest budget that works is ", smallest, " bytes (",
                               Human(smallest), ")");
    return;
  }
  // On the CPU device the device arena is host memory too.
  const int64_t host_need =
      plan.bytes_host + plan.bytes_pinned + (device_is_host ? plan.bytes_device : 0);
  if (plan.budget_host_bytes > 0 && host_need > plan.budget_host_bytes) {
    plan.fits = false;
    plan.reason = absl::StrCat("host memory: needs ", Human(host_need), " (", host_need,
                               " bytes), budget ", Human(plan.budget_host_bytes), " (",
                               plan.budget_host_bytes, " bytes)");
  }
}

}  // namespace

int WindowSlots(const JobConfig& c, int window) {
  if (c.offload.method == OffloadMethod::kL2L) return 1;
  return std::min(window + 1, c.model.layers - DeviceResidentLayers(c));
}

int DeviceResidentLayers(const JobConfig& c) {
  return c.offload.method == OffloadMethod::kStronghold ? c.offload.device_resident_layers : 0;
}

int TierReadRing(const JobConfig& c, int window) { return WindowSlots(c, window) + 1; }

namespace {
int64_t Round64(int64_t b) { return (b + 63) / 64 * 64; }
}  // namespace

int DeviceBoundaries(const JobConfig& c, int window, bool host_checkpoints) {
  return host_checkpoints ? WindowSlots(c, window) + 1 : c.model.layers + 1;
}

int64_t WindowedArenaBytes(const JobConfig& c, int window, bool host_checkpoints) {
  const ModelConfig& m = c.model;
  const int64_t e = ComputeElementBytes(c.training.precision);
  const int64_t emb = m.embedding_parameters() * e;
  const int64_t fin = 2 * static_cast<int64_t>(m.hidden) * e;
  return WindowSlots(c, window) * 2 * Round64(m.parameters_per_layer() * e) +
         2 * Round64(emb) + 2 * Round64(fin) + DeviceEmbeddingOptimizerBytes(c) +
         DeviceResidentLayersBytes(c) +
         Round64(DeviceBoundaries(c, window, host_checkpoints) * BoundaryActivationBytes(c));
}

int DeviceOptimizerArrays(Precision precision) { return precision == Precision::kFp32 ? 3 : 4; }

int64_t DeviceEmbeddingOptimizerBytes(const JobConfig& c) {
  if (!c.offload.device_embedding_optimizer) return 0;
  return DeviceOptimizerArrays(c.training.precision) *
         Round64(c.model.embedding_parameters() * kFloat);
}

int64_t DeviceResidentLayersBytes(const JobConfig& c) {
  const int64_t layer = c.model.parameters_per_layer();
  return DeviceResidentLayers(c) *
         (2 * Round64(layer * ComputeElementBytes(c.training.precision)) +
          DeviceOptimizerArrays(c.training.precision) * Round64(layer * kFloat));
}

bool CheckpointsOnHost(const JobConfig& c, int64_t device_budget) {
  if (c.offload.method == OffloadMethod::kResident || device_budget <= 0) return false;
  return WindowedArenaBytes(c, 1, /*host_checkpoints=*/false) + WorkingBytes(c) > device_budget;
}

int64_t SmallestDeviceBudget(const JobConfig& c) {
  return WindowedArenaBytes(c, 1, /*host_checkpoints=*/c.offload.method != OffloadMethod::kResident) +
         WorkingBytes(c);
}

int64_t WorkingBytes(const JobConfig& c) {
  // The loss is computed in fp32 in every precision (gpt::HeadLoss), so
  // the logits' softmax and gradient are fp32.
  const int64_t logits = static_cast<int64_t>(c.training.micro_batch) * c.model.seq_len *
                         c.model.padded_vocab() * kFloat;
  return LayerWorkingBytes(c) + 3 * logits;
}

int MaxWindow(const JobConfig& c, int64_t device_budget) {
  const bool host_checkpoints = CheckpointsOnHost(c, device_budget);
  int best = 0;
  for (int w = 1; w <= c.model.layers; ++w) {
    if (WindowedArenaBytes(c, w, host_checkpoints) + WorkingBytes(c) > device_budget) break;
    best = w;
    if (WindowSlots(c, w) >= c.model.layers - DeviceResidentLayers(c)) break;
  }
  return best;
}

namespace {

void PlanWindowed(const JobConfig& c, ExecutionPlan& plan,
                  const std::function<void(std::string, const char*, int64_t, std::string)>& add,
                  bool cuda) {
  const ModelConfig& m = c.model;
  const int slots = plan.slots;
  const int64_t layer = m.parameters_per_layer();
  // Weights, gradients and activations on the device, the working copy and
  // the gradient staging on the host are in the compute precision; masters,
  // the gradient accumulator and the moments are fp32 (docs/engine.md).
  const Precision precision = c.training.precision;
  const int64_t e = ComputeElementBytes(precision);
  const char* lowp = PrecisionName(precision);
  add("window.slots", kTierDevice, slots * 2 * Round64(layer * e),
      absl::StrFormat("%d slots x (weights + gradient) x %d params %s", slots, layer, lowp));
  add("embedding+final_norm", kTierDevice,
      2 * Round64(m.embedding_parameters() * e) + 2 * Round64(2 * m.hidden * e),
      absl::StrFormat("(weights + gradient) x %d params %s",
                      m.embedding_parameters() + 2 * m.hidden, lowp));
  const char* dev_arrays = DeviceOptimizerArrays(precision) == 4
                               ? "master, exp_avg, exp_avg_sq, gradient accumulator"
                               : "exp_avg, exp_avg_sq, gradient accumulator";
  if (plan.device_embedding_optimizer) {
    add("embedding.optimizer", kTierDevice, DeviceEmbeddingOptimizerBytes(c),
        absl::StrFormat("%s x %d params fp32 (offload.device_embedding_optimizer)", dev_arrays,
                        m.embedding_parameters()));
  }
  if (const int k = plan.device_resident_layers; k > 0) {
    add("layers.resident", kTierDevice, DeviceResidentLayersBytes(c),
        absl::StrFormat("layers 0..%d stay: %d x ((weights + gradient) x %d params %s + %s x %d "
                        "params fp32) (offload.device_resident_layers)",
                        k - 1, k, layer, lowp, dev_arrays, layer));
  }
  const std::string boundary =
      absl::StrFormat("[%d, %d, %d] %s", c.training.micro_batch, m.seq_len, m.hidden, lowp);
  const int64_t act = BoundaryActivationBytes(c);
  if (plan.host_checkpoints) {
    add("activations.boundaries", kTierDevice, Round64((slots + 1) * act),
        absl::StrFormat("%d x %s: one layer input per slot + the head's", slots + 1, boundary));
  } else {
    add("activations.checkpoints", kTierDevice, Round64((m.layers + 1) * act),
        absl::StrFormat("%d x %s", m.layers + 1, boundary));
  }
  add("activations.working", kTierDevice, WorkingBytes(c),
      "one layer's forward+backward working set + logits (allocated by LibTorch)");
  const char* host_tier = cuda ? kTierPinned : kTierHost;
  const bool fp32 = precision == Precision::kFp32;
  const std::string params = absl::StrFormat("%d params fp32", plan.parameters);
  // In fp32 the masters themselves are copied to the device (pinned); else
  // the working copy is, and the masters stay in pageable memory.
  add("host.weights.fp32", fp32 ? host_tier : kTierHost, plan.parameters * kFloat, params);
  if (!fp32) {
    add(absl::StrCat("host.weights.", lowp), host_tier, plan.parameters * e,
        absl::StrFormat("%d params %s (working copy the optimizer writes, sent H2D)",
                        plan.parameters, lowp));
  }
  add("host.grads.fp32", fp32 ? host_tier : kTierHost, plan.parameters * kFloat, params);
  add("host.adam.exp_avg.fp32", kTierHost, plan.parameters * kFloat, params);
  add("host.adam.exp_avg_sq.fp32", kTierHost, plan.parameters * kFloat, params);
  add("host.staging.gradients", host_tier,
      (slots * layer + m.embedding_parameters() + 2 * m.hidden) * e,
      absl::StrFormat("%d slots + embedding + final norm, %s", slots, lowp));
  if (plan.speculative_updates) {
    add("host.speculative_backup", kTierHost, plan.parameters * (3 * kFloat + (fp32 ? 0 : e)),
        absl::StrFormat("%d params x (param + exp_avg + exp_avg_sq%s), saved before each "
                        "speculative update",
                        plan.parameters, fp32 ? "" : absl::StrCat(" + ", lowp)));
  }
  if (plan.host_checkpoints) {
    add("host.activations.checkpoints", host_tier, (m.layers + 1) * act,
        absl::StrFormat("%d x %s, off the device: the budget has no room for them there",
                        m.layers + 1, boundary));
  }
}

}  // namespace

namespace {

// The NVMe tier's I/O geometry: O_DIRECT alignment and the block (and CRC32C)
// size of storage/block_device_factory.h's defaults.
constexpr int64_t kSsdAlignment = 4096;
constexpr int64_t kSsdBlockBytes = 1 << 20;

int64_t RoundUp(int64_t x, int64_t unit) { return (x + unit - 1) / unit * unit; }

int64_t HostNeed(const ExecutionPlan& plan, bool device_is_host) {
  return plan.bytes_host + plan.bytes_pinned + (device_is_host ? plan.bytes_device : 0);
}

// With the optimizer state of every block layer on the ssd tier already:
// moves what H2D sends of as few block layers as needed there too, from
// layer 0 up: the bf16/fp16 working copies (2 bytes per parameter), or in
// fp32 the masters (4), which then join the layer's spilled state as its
// third array (bf16/fp16 working copies are its fourth). The engine reads
// them ahead of each fetch into a ring of TierReadRing host buffers (pinned
// on a GPU); the optimizer's kSsdStagingSlots slots grow by that array.
void PlaceWeightsOnSsd(
    const JobConfig& c, const NodeBudgets& node, ExecutionPlan& plan, bool cuda,
    const std::function<void(std::string, const char*, int64_t, std::string)>& add) {
  const int64_t need = HostNeed(plan, node.device == "cpu");
  const bool forced = node.force_ssd_weight_layers >= 0;
  if (forced ? node.force_ssd_weight_layers == 0 : need <= plan.budget_host_bytes) return;
  const int64_t layer = c.model.parameters_per_layer();
  const int64_t e = ComputeElementBytes(c.training.precision);
  const bool fp32 = c.training.precision == Precision::kFp32;
  const char* lowp = PrecisionName(c.training.precision);
  const int ring = plan.slots + 1;  // TierReadRing
  const int64_t one = RoundUp(layer * e, kSsdAlignment);
  const int64_t optimizer = kSsdStagingSlots * one;
  const int64_t excess = need - plan.budget_host_bytes + ring * one + optimizer;
  // (Forced beyond the layers whose state is there, the trainer refuses it.)
  const int64_t k = forced ? std::min(node.force_ssd_weight_layers, c.model.layers)
                           : std::min<int64_t>((excess + layer * e - 1) / (layer * e),
                                               std::min(plan.ssd_layers, c.model.layers));
  const std::string sent = absl::StrCat("host.weights.", lowp);
  for (PlannedBuffer& b : plan.buffers) {
    if (b.name != sent) continue;
    (b.tier == kTierPinned ? plan.bytes_pinned : plan.bytes_host) -= k * layer * e;
    b.bytes -= k * layer * e;
    b.shape = fp32 ? absl::StrFormat("%d params fp32 (masters, sent H2D)",
                                     plan.parameters - k * layer)
                   : absl::StrFormat("%d params %s (working copy the optimizer writes, sent H2D)",
                                     plan.parameters - k * layer, lowp);
  }
  add("host.staging.ssd_weights", cuda ? kTierPinned : kTierHost, ring * one,
      absl::StrFormat("%d read-ahead buffers (window slots + 1) x %d params %s", ring, layer,
                      lowp));
  add(fp32 ? "host.staging.ssd.master" : "host.staging.ssd.working", kTierHost, optimizer,
      absl::StrFormat("%d optimizer slots x %d params %s (%s)", kSsdStagingSlots, layer, lowp,
                      fp32 ? "the master beside the moments"
                           : "the working copy the update writes, written back with them"));
  add(fp32 ? "ssd.master.fp32" : absl::StrCat("ssd.weights.", lowp), kTierSsd,
      k * storage::ExtentStore::StoredBytes(layer * e, kSsdAlignment, kSsdBlockBytes),
      absl::StrFormat("layers 0..%d x %d params %s (%s), CRC32C per MiB", k - 1, layer, lowp,
                      fp32 ? "masters, sent H2D" : "working copies"));
  plan.ssd_weight_layers = static_cast<int>(k);
}

// Moves the optimizer state of as few block layers as needed from host to
// the ssd tier (see PlanExecution in planner.h): the Adam moments and, in
// bf16/fp16, the fp32 masters. Leaves the plan alone if the host state fits
// or the tier is not available; FinishPlan judges the result.
void PlaceOnSsd(const JobConfig& c, const NodeBudgets& node, ExecutionPlan& plan,
                const std::function<void(std::string, const char*, int64_t, std::string)>& add) {
  const bool device_is_host = node.device == "cpu";
  const int64_t need = HostNeed(plan, device_is_host);
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
  const int64_t layer = c.model.parameters_per_layer();
  const int64_t state_per_layer = arrays * layer * kFloat;
  const int64_t staging = kSsdStagingSlots * arrays * RoundUp(layer * kFloat, kSsdAlignment);
  const int64_t excess = need - plan.budget_host_bytes + staging;
  const int64_t k = std::min<int64_t>(
      forced ? node.force_ssd_layers : (excess + state_per_layer - 1) / state_per_layer,
      c.model.layers);
  // The host buffers the spilled layers leave shrink in place.
  const int64_t host_params = plan.parameters - k * layer;
  for (PlannedBuffer& b : plan.buffers) {
    if (b.name == "host.adam.exp_avg.fp32" || b.name == "host.adam.exp_avg_sq.fp32" ||
        (masters && b.name == "host.weights.fp32")) {
      plan.bytes_host -= b.bytes - host_params * kFloat;
      b.bytes = host_params * kFloat;
      b.shape = absl::StrFormat("%d params fp32", host_params);
    }
  }
  const char* slot = masters ? "exp_avg + exp_avg_sq + master" : "exp_avg + exp_avg_sq";
  add("host.staging.ssd", kTierHost, staging,
      absl::StrFormat("%d slots x (%s) x %d params fp32", kSsdStagingSlots, slot, layer));
  const int64_t extent = storage::ExtentStore::StoredBytes(layer * kFloat, kSsdAlignment,
                                                           kSsdBlockBytes);
  // In fp32 the masters are what H2D sends, so they stay in host memory; in
  // bf16/fp16 the working copy is sent and only the optimizer reads them.
  add(masters ? "ssd.adam.exp_avg+exp_avg_sq+master" : "ssd.adam.exp_avg+exp_avg_sq", kTierSsd,
      k * arrays * extent,
      absl::StrFormat("layers 0..%d x %d x %d params fp32, CRC32C per MiB%s", k - 1, arrays,
                      layer,
                      masters ? "" : " (the masters, which H2D sends, follow only if this is not enough)"));
  plan.ssd_layers = static_cast<int>(k);
  if (forced ? node.force_ssd_weight_layers > 0 : k == c.model.layers) {
    PlaceWeightsOnSsd(c, node, plan, node.device.rfind("cuda", 0) == 0, add);
  }
}

// What the ssd tier holds of the spilled layers, for the plan's reasons.
std::string SpilledStateName(const ExecutionPlan& plan, Precision precision) {
  if (!SsdHoldsMasters(precision)) {
    return plan.ssd_weight_layers == 0 ? "Adam moments" : "Adam moments and fp32 masters";
  }
  if (plan.ssd_weight_layers == 0) return "fp32 masters and Adam moments";
  return absl::StrCat("fp32 masters, Adam moments and ", PrecisionName(precision),
                      " working copies");
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

namespace {

// Spends what the budgets leave (after the window and the NVMe placement) on
// keeping the last layers' activations, or adds the explicitly asked ones
// (FinishPlan then refuses them if they do not fit).
void PlanKeptActivations(
    const JobConfig& c, bool device_is_host, ExecutionPlan& plan,
    const std::function<void(std::string, const char*, int64_t, std::string)>& add) {
  int64_t free = -1;  // unlimited
  if (plan.budget_device_bytes > 0) free = std::max<int64_t>(0, plan.budget_device_bytes - plan.bytes_device);
  if (device_is_host && plan.budget_host_bytes > 0) {
    const int64_t host_free = std::max<int64_t>(
        0, plan.budget_host_bytes - plan.bytes_host - plan.bytes_pinned - plan.bytes_device);
    free = free < 0 ? host_free : std::min(free, host_free);
  }
  const int k = KeptActivationLayers(c, free);
  plan.kept_activation_layers = k;
  if (k == 0) return;
  add("activations.kept", kTierDevice, k * LayerWorkingBytes(c),
      absl::StrFormat("layers %d..%d keep their autograd activations (no recompute), "
                      "~34 x [%d, %d, %d] fp32 each",
                      c.model.layers - k, c.model.layers - 1, c.training.micro_batch,
                      c.model.seq_len, c.model.hidden));
}

}  // namespace

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
    plan.budget_device_bytes = node.device_bytes > 0
                                   ? std::min(node.device_bytes, o.gpu_memory_budget_bytes)
                                   : o.gpu_memory_budget_bytes;
  }
  plan.budget_host_bytes = node.host_bytes;
  if (o.host_memory_budget_bytes > 0) {
    plan.budget_host_bytes = node.host_bytes > 0
                                 ? std::min(node.host_bytes, o.host_memory_budget_bytes)
                                 : o.host_memory_budget_bytes;
  }

  // Sizes beyond what is checked (core/plan/job_config.h) are never planned:
  // such a plan does not fit and says why.
  if (absl::Status sizes = CheckDerivedSizes(c); !sizes.ok()) {
    plan.reason = std::string(sizes.message());
    return plan;
  }
  // Below that bound no size computed here overflows; the totals saturate
  // all the same (a saturated total never fits).
  auto add = [&](std::string name, const char* tier, int64_t bytes, std::string shape) {
    plan.buffers.push_back({std::move(name), tier, bytes, std::move(shape)});
    int64_t* total = tier == std::string(kTierDevice)   ? &plan.bytes_device
                     : tier == std::string(kTierPinned) ? &plan.bytes_pinned
                     : tier == std::string(kTierHost)   ? &plan.bytes_host
                                                        : &plan.bytes_ssd;
    *total = SaturatingAdd(*total, bytes);
  };

  // Plain autograd needs every state on the compute device and the host's
  // optimizer: the host device in fp32. RESIDENT elsewhere (a GPU, bf16/fp16:
  // the mixed-precision machinery is the engine's) is the engine with every
  // layer kept.
  const bool device_is_host = node.device == "cpu";
  plan.reference = o.method == OffloadMethod::kResident &&
                   c.training.precision == Precision::kFp32 && device_is_host;
  const bool cuda = node.device.rfind("cuda", 0) == 0;
  if (!plan.reference) {
    plan.host_checkpoints = CheckpointsOnHost(c, plan.budget_device_bytes);
    plan.window = o.method == OffloadMethod::kL2L        ? 1
                  : o.method == OffloadMethod::kResident ? m.layers
                                                         : o.window;
    if (plan.window == 0) {
      plan.automatic_window = true;
      // No device budget (0) is no limit: the largest window.
      const int64_t budget =
          plan.budget_device_bytes > 0 ? plan.budget_device_bytes : INT64_MAX;
      plan.window = std::max(1, MaxWindow(c, budget));
    }
    plan.slots = WindowSlots(c, plan.window);
    plan.device_resident_layers = DeviceResidentLayers(c);
    plan.device_embedding_optimizer = o.device_embedding_optimizer;
    plan.speculative_updates = SpeculativeUpdates(o, c.training);
    // On a GPU only the device budget bounds the kept layers, so a window
    // settled smaller leaves room for more; on the host device host memory
    // bounds them too, and the count planned here with both stands.
    plan.kept_follows_window = plan.automatic_window && o.method == OffloadMethod::kStronghold &&
                               o.kept_activation_layers == 0 && !device_is_host;
    PlanWindowed(c, plan, add, cuda);
    PlaceOnSsd(c, node, plan, add);
    PlanKeptActivations(c, device_is_host, plan, add);
    FinishPlan(c, plan, device_is_host);
    if (plan.fits && node.ssd_bytes > 0 && plan.bytes_ssd > node.ssd_bytes) {
      plan.fits = false;
      plan.reason = absl::StrCat("ssd: needs ", Human(plan.bytes_ssd), " (", plan.bytes_ssd,
                                 " bytes) for the ", SpilledStateName(plan, c.training.precision),
                                 " of ", plan.ssd_layers,
                                 " layers, budget ", Human(node.ssd_bytes), " (", node.ssd_bytes,
                                 " bytes)");
    } else if (!plan.fits && plan.ssd_layers == m.layers &&
               absl::StartsWith(plan.reason, "host memory")) {
      absl::StrAppend(&plan.reason, ", even with the ",
                      SpilledStateName(plan, c.training.precision), " of all ", m.layers,
                      " layers on the NVMe tier");
    }
    return plan;
  }
  // RESIDENT: the whole training state on the compute device, and the full
  // autograd graph of one micro-batch (no recomputation). (A forced NVMe
  // share is recorded for the trainer to refuse.)
  plan.ssd_layers = std::max(0, node.force_ssd_layers);
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
  FinishPlan(c, plan, device_is_host);
  return plan;
}

ExecutionPlan SettleWindow(const JobConfig& config, const ExecutionPlan& plan, int window) {
  ExecutionPlan settled = plan;
  settled.window = std::clamp(window, 1, plan.window);
  settled.slots = WindowSlots(config, settled.window);
  if (plan.kept_follows_window) {
    settled.kept_activation_layers =
        KeptActivationLayersForDevice(config, settled.window, plan.budget_device_bytes);
  }
  return settled;
}

}  // namespace stronghold::core
