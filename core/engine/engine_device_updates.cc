// WindowedEngine::Impl (core/engine/engine_impl.h): the buffers whose AdamW
// runs on the device (the embedding with offload.device_embedding_optimizer,
// block layers 0..K-1 with offload.device_resident_layers), the order the
// host updates run in, and the speculative updates' backups and roll-back.
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/engine/engine_impl.h"
#include "core/plan/planner.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

using engine_internal::Since;

absl::Status WindowedEngine::Impl::AllocateDeviceOptimizer(int b,
                                                           void* weights) {
  const int64_t n = buffers_[b].layout.count;
  const bool fp32 = precision_ == Precision::kFp32;
  std::vector<float*> arrays;
  for (int i = 0; i < DeviceOptimizerArrays(precision_); ++i) {
    static const char* const kWhat[] = {"exp_avg", "exp_avg_sq",
                                        "gradient accumulator", "master"};
    ASSIGN_OR_RETURN(void* p,
                     device_->Allocate(
                         n * static_cast<int64_t>(sizeof(float)),
                         absl::StrCat(buffers_[b].layout.name, " ", kWhat[i])));
    arrays.push_back(static_cast<float*>(p));
  }
  DeviceAdamWState& st = dev_opt_[b];
  st.exp_avg = arrays[0];
  st.exp_avg_sq = arrays[1];
  st.accumulator = arrays[2];
  st.master = fp32 ? static_cast<float*>(weights) : arrays[3];
  st.working = fp32 ? nullptr : weights;
  st.working_dtype = ToDType(precision_);
  st.count = n;
  st.decay_count = buffers_[b].layout.decay_count;
  if (device_adamw_ == nullptr)
    device_adamw_ = DeviceAdamW::ForDevice(device_, optimizer_);
  return absl::OkStatus();
}

void WindowedEngine::Impl::CopyDeviceState(bool to_device) {
  const Queue queue = to_device ? Queue::kH2D : Queue::kD2H;
  if (!to_device) device_->QueueWait(queue, device_->Record(Queue::kCompute));
  for (int b = 0; b < num_buffers(); ++b) {
    if (!OnDevice(b)) continue;
    const HostBuffer& h = buffers_[b];
    const DeviceAdamWState& st = dev_opt_[b];
    auto copy = [&](void* dev, void* host, int64_t bytes) {
      if (host == nullptr || dev == nullptr) return;
      // Unlabelled (-1): not a weight fetch, so out of the automatic
      // window's H2D profile.
      device_->Copy(queue, to_device ? dev : host, to_device ? host : dev,
                    bytes, -1);
      if (to_device) stats_.h2d_bytes += bytes;
    };
    const int64_t bytes = h.layout.count * static_cast<int64_t>(sizeof(float));
    copy(st.master, h.param, bytes);
    copy(st.exp_avg, h.exp_avg, bytes);
    copy(st.exp_avg_sq, h.exp_avg_sq, bytes);
    copy(st.working, h.working, h.layout.count * elem_);
  }
  if (!to_device) device_->HostWait(device_->Record(queue));
}

void WindowedEngine::Impl::UpdateOnDevice(const AdamWStep& hyper) {
  // Never speculative: the norm is known, and nothing is left to overlap.
  for (int b = 0; b < num_buffers(); ++b) {
    if (!OnDevice(b)) continue;
    const int64_t start = Timeline::NowNs();
    device_adamw_->Step(dev_opt_[b], hyper);
    stats_.optimizer_s += Since(start);  // the host device's update runs here
    if (timeline_ != nullptr)
      timeline_->Add({"adamw", Lane::kOptimizer, b, start, Timeline::NowNs()});
  }
  dev_dirty_ = true;
}

void WindowedEngine::Impl::PlanUpdateOrders() {
  for (int b : {0, last()}) {
    if (!OnDevice(b)) update_order_.push_back(b);
  }
  for (int b = 1; b < last(); ++b) {
    if (!OnDevice(b)) update_order_.push_back(b);
  }
  for (int b = last() - 1; b >= 0; --b) {
    if (!OnDevice(b)) backup_order_.push_back(b);
  }
  backup_order_.push_back(last());
}

void WindowedEngine::Impl::RollBack(int b, const AdamWStep* redo) {
  GradWorker::Task task{
      Event{}, nullptr, DType::kFloat32, &buffers_[b],
      b,       false,   redo != nullptr, redo != nullptr ? *redo : hyper_};
  task.backup = &backups_[b];
  task.restore = true;
  update_task_[b] = worker_.Submit(task);
}

absl::Status WindowedEngine::Impl::AllocateBackups() {
  // Host memory; the pool first-touches it with the first backup.
  for (const HostBuffer& b : buffers_) {
    const int64_t n = b.count();  // sharded: the slice
    const bool working =
        b.working != nullptr;  // restored too: a skipped step resends it
    RETURN_IF_ERROR(Charge("host.speculative_backup",
                           3 * n * 4 + (working ? n * elem_ : 0)));
    backup_storage_.push_back(std::make_unique<float[]>(3 * n));
    float* base = backup_storage_.back().get();
    ParamBuffer backup = ToParamBuffer(b, precision_);
    backup.param = base;
    backup.exp_avg = base + n;
    backup.exp_avg_sq = base + 2 * n;
    backup.working = nullptr;
    if (working) {
      backup_working_.push_back(std::make_unique<uint16_t[]>(n));
      backup.working = backup_working_.back().get();
    }
    backups_.push_back(backup);
  }
  return absl::OkStatus();
}

}  // namespace stronghold::core
