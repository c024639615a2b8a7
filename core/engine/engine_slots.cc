// WindowedEngine::Impl (core/engine/engine_impl.h): the window's slots on
// the device. Which block layer each slot holds, the H2D copies that fill
// them (from host memory or the NVMe tier's read-ahead,
// core/engine/tier_reader.h) in a fixed order per step, the waits that keep
// a slot from being refilled before its last compute and D2H are done, and
// the staging of the spilled optimizer state ahead of the updates.
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/engine/engine_impl.h"
#include "glog/logging.h"
#include "storage/spill_streamer.h"

namespace stronghold::core {

using engine_internal::Since;
using engine_internal::Slot;

std::vector<int> WindowedEngine::Impl::FetchOrder(int micro_batches) const {
  std::vector<int> order;
  const int stay = std::max(window_, 1);
  for (int mb = 0; mb < micro_batches; ++mb) {
    for (int i = resident_layers_; i < layers_; ++i) order.push_back(i + 1);
    for (int i = layers_ - 1 - stay; i >= resident_layers_; --i)
      order.push_back(i + 1);
  }
  return order;
}

void WindowedEngine::Impl::StageSpilled(bool forward) {
  if (spill_ == nullptr) return;
  std::vector<int> order;
  for (int i = 0; i < num_buffers(); ++i) {
    const int b = forward ? i : num_buffers() - 1 - i;
    if (buffers_[b].spill_item >= 0) order.push_back(buffers_[b].spill_item);
  }
  spill_->Prefetch(order);
}

Slot* WindowedEngine::Impl::Resident(int layer) {
  if (layer < resident_layers_) return &resident_[layer];
  for (Slot& s : slots_) {
    if (s.buffer == layer + 1) return &s;
  }
  return nullptr;
}

void WindowedEngine::Impl::WaitForUpdate(int b) {
  const int64_t start = Timeline::NowNs();
  if (update_task_[b] != 0) worker_.WaitFor(update_task_[b]);
  const double waited = Since(start);
  stats_.optimizer_s += waited;
  if (waited > 1e-4 && timeline_ != nullptr) {
    timeline_->Add({"wait_update", Lane::kWait, b, start, Timeline::NowNs()});
  }
}

void WindowedEngine::Impl::Fetch(int layer, bool with_input) {
  if (Resident(layer) != nullptr) return;
  Slot* slot = &slots_[(layer - resident_layers_) % slots_.size()];
  CHECK_EQ(slot->buffer, -1)
      << "slot of layer " << layer << " busy (window " << window_ << ")";
  const int b = layer + 1;
  WaitForUpdate(b);
  // The slot is reused only after its last compute and its last D2H.
  device_->QueueWait(Queue::kH2D, slot->compute_done);
  device_->QueueWait(Queue::kH2D, slot->d2h_done);
  if (timeline_ != nullptr) {
    const int64_t now = Timeline::NowNs();
    timeline_->Add({"issue_h2d", Lane::kWait, b, now, now});
  }
  const bool tier = tier_->on_tier(b);
  const void* source = tier ? tier_->Take(b, &tier_error_) : Source(b);
  // Sharded: this rank's slice, into its piece; Ensure() gathers the rest.
  device_->Copy(Queue::kH2D,
                static_cast<char*>(slot->param) + PieceOffset(b) * elem_,
                source, buffers_[b].count() * elem_, b);
  stats_.h2d_bytes += buffers_[b].count() * elem_;
  slot->gathered = !sharded_;
  // Backward: the layer's input comes back from the host with it.
  if (with_input && host_ckpt_mode_) RestoreInput(layer, b);
  slot->h2d_done = device_->Record(Queue::kH2D);
  slot->buffer = b;
  if (tier) tier_->Sent(slot->h2d_done);
  tier_->Pump(updated_);
}

void WindowedEngine::Impl::PrefetchReady(int first, int last) {
  for (int i = first; i <= std::min(last, layers_ - 1); ++i) {
    if (Resident(i) != nullptr) continue;
    if (!updated_(i + 1)) return;
    Fetch(i);
  }
}

Slot* WindowedEngine::Impl::Ensure(int layer, bool with_input) {
  tier_->Pump(updated_);
  Fetch(layer, with_input);
  Slot* slot = Resident(layer);
  const int64_t start = Timeline::NowNs();
  if (l2l_) device_->HostWait(slot->h2d_done);  // L2L: synchronous copies
  device_->QueueWait(Queue::kCompute, slot->h2d_done);
  // Here, in compute order on every rank, not at the timing-dependent
  // prefetch: the collectives' order is the schedule's.
  if (!slot->gathered) {
    GatherLayer(slot->param, slot->buffer, slot->h2d_done);
    slot->gathered = true;
  }
  const double waited = Since(start);
  stats_.h2d_wait_s += waited;
  if (waited > 1e-4 && timeline_ != nullptr) {
    timeline_->Add(
        {"wait_h2d", Lane::kWait, layer + 1, start, Timeline::NowNs()});
  }
  return slot;
}

void WindowedEngine::Impl::Release(Slot* slot) {
  slot->compute_done = device_->Record(Queue::kCompute);
  slot->buffer = -1;
}

torch::Tensor WindowedEngine::Impl::Weights(const Slot& slot,
                                            const torch::TensorOptions& dev) {
  return torch::from_blob(slot.param, {buffers_[slot.buffer].layout.count},
                          dev);
}

}  // namespace stronghold::core
