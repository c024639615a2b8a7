// The window rule and the device-side sizes of a window (core/plan/window.h).
#include "core/plan/window.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace stronghold::core {

int HidingWindow(double forward_s, double h2d_s, int max_window) {
  const double fwd = std::max(forward_s, 1e-9);
  const double w = std::ceil(1.25 * std::max(h2d_s, 0.0) / fwd);
  return std::clamp(w > max_window ? max_window : static_cast<int>(w), 1,
                    std::max(1, max_window));
}
namespace {

constexpr int64_t kFloat = 4;

// Activation checkpoints the arena holds: every layer boundary, or with the
// checkpoints on the host one per slot plus the head's input.
int DeviceBoundaries(const JobConfig& c, int window, bool host_checkpoints) {
  return host_checkpoints ? WindowSlots(c, window) + 1 : c.model.layers + 1;
}

}  // namespace

ResolvedWindow ResolveWindow(const JobConfig& c, int64_t device_budget) {
  const OffloadMethod method = c.offload.method;
  ResolvedWindow resolved;
  resolved.window = method == OffloadMethod::kL2L        ? 1
                    : method == OffloadMethod::kResident ? c.model.layers
                                                         : c.offload.window;
  if (resolved.window == 0) {
    resolved.automatic = true;
    // No device budget (0) is no limit: the largest window.
    resolved.window = std::max(
        1, MaxWindow(c, device_budget > 0 ? device_budget : INT64_MAX));
  }
  return resolved;
}

int64_t BoundaryActivationBytes(const JobConfig& c) {
  return static_cast<int64_t>(c.training.micro_batch) * c.model.seq_len *
         c.model.hidden * ComputeElementBytes(c.training.precision);
}

int64_t LayerWorkingBytes(const JobConfig& c) {
  // Saved tensors of one block for backward and their gradients
  // (ModelConfig::layer_activation_elements_per_token: 34h for the GPT), in
  // the compute precision, and the attention's per-head softmax statistics
  // (b*heads*s).
  const int64_t tokens =
      static_cast<int64_t>(c.training.micro_batch) * c.model.seq_len;
  const int64_t stats = tokens * c.model.heads * kFloat;
  return tokens * c.model.layer_activation_elements_per_token() *
             ComputeElementBytes(c.training.precision) +
         stats;
}

int KeptActivationLayers(const JobConfig& c, int64_t free_device_bytes) {
  const int layers = c.model.layers;
  if (c.offload.method == OffloadMethod::kResident) return layers;
  if (c.offload.method != OffloadMethod::kStronghold) return 0;
  const int k = c.offload.kept_activation_layers;
  if (k != 0) return std::clamp(k, 0, layers);
  if (free_device_bytes < 0) return layers;
  return static_cast<int>(
      std::min<int64_t>(layers, free_device_bytes / LayerWorkingBytes(c)));
}

int KeptActivationLayersForDevice(const JobConfig& config, int window,
                                  int64_t device_budget) {
  if (device_budget <= 0 || device_budget == INT64_MAX)
    return KeptActivationLayers(config, -1);
  const int64_t used =
      WindowedArenaBytes(config, window,
                         CheckpointsOnHost(config, device_budget)) +
      WorkingBytes(config);
  return KeptActivationLayers(config,
                              std::max<int64_t>(0, device_budget - used));
}

int WindowSlots(const JobConfig& c, int window) {
  // L2L copies synchronously: its one layer has no slot for the next one's
  // copy. The others fetch one layer beyond the window.
  if (c.offload.method == OffloadMethod::kL2L) return 1;
  return std::min(window + 1, c.model.layers - DeviceResidentLayers(c));
}

int DeviceResidentLayers(const JobConfig& c) {
  return c.offload.method == OffloadMethod::kStronghold
             ? c.offload.device_resident_layers
             : 0;
}

int TierReadRing(const JobConfig& c, int window) {
  return WindowSlots(c, window) + 1;
}

int64_t ArenaAlignedBytes(int64_t b) { return (b + 63) / 64 * 64; }

int64_t WindowedArenaBytes(const JobConfig& c, int window,
                           bool host_checkpoints) {
  const ModelConfig& m = c.model;
  const int64_t e = ComputeElementBytes(c.training.precision);
  const int64_t emb = m.embedding_parameters() * e;
  const int64_t fin = m.final_parameters() * e;
  return WindowSlots(c, window) * 2 *
             ArenaAlignedBytes(m.parameters_per_layer() * e) +
         2 * ArenaAlignedBytes(emb) + 2 * ArenaAlignedBytes(fin) +
         DeviceEmbeddingOptimizerBytes(c) + DeviceResidentLayersBytes(c) +
         ArenaAlignedBytes(DeviceBoundaries(c, window, host_checkpoints) *
                           BoundaryActivationBytes(c));
}

int DeviceOptimizerArrays(Precision precision) {
  return precision == Precision::kFp32 ? 3 : 4;
}

int64_t DeviceEmbeddingOptimizerBytes(const JobConfig& c) {
  if (!c.offload.device_embedding_optimizer) return 0;
  return DeviceOptimizerArrays(c.training.precision) *
         ArenaAlignedBytes(c.model.embedding_parameters() * kFloat);
}

int64_t DeviceResidentLayersBytes(const JobConfig& c) {
  const int64_t layer = c.model.parameters_per_layer();
  return DeviceResidentLayers(c) *
         (2 * ArenaAlignedBytes(layer *
                                ComputeElementBytes(c.training.precision)) +
          DeviceOptimizerArrays(c.training.precision) *
              ArenaAlignedBytes(layer * kFloat));
}

bool CheckpointsOnHost(const JobConfig& c, int64_t device_budget) {
  if (c.offload.method == OffloadMethod::kResident || device_budget <= 0)
    return false;
  return WindowedArenaBytes(c, 1, /*host_checkpoints=*/false) +
             WorkingBytes(c) >
         device_budget;
}

int64_t SmallestDeviceBudget(const JobConfig& c) {
  return WindowedArenaBytes(c, 1, /*host_checkpoints=*/c.offload.method !=
                                      OffloadMethod::kResident) +
         WorkingBytes(c);
}

int64_t WorkingBytes(const JobConfig& c) {
  // The loss is computed in fp32 in every precision (gpt::HeadLoss), so
  // the logits' softmax and gradient are fp32.
  const int64_t logits = static_cast<int64_t>(c.training.micro_batch) *
                         c.model.seq_len * c.model.padded_vocab() * kFloat;
  return LayerWorkingBytes(c) + 3 * logits;
}

int MaxWindow(const JobConfig& c, int64_t device_budget) {
  const bool host_checkpoints = CheckpointsOnHost(c, device_budget);
  int best = 0;
  for (int w = 1; w <= c.model.layers; ++w) {
    if (WindowedArenaBytes(c, w, host_checkpoints) + WorkingBytes(c) >
        device_budget)
      break;
    best = w;
    if (WindowSlots(c, w) >= c.model.layers - DeviceResidentLayers(c)) break;
  }
  return best;
}

}  // namespace stronghold::core
