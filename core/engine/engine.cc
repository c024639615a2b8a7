// WindowedEngine (core/engine/engine.h): creating the engine, its
// allocation of device and host memory (the plan's buffers, in the order the
// arena lays them out), Drain(), and the public wrappers that turn
// exceptions into statuses. WindowedEngine::Impl's other methods are in the
// files core/engine/engine_impl.h lists; the step itself is engine_step.cc.
#include "core/engine/engine.h"

#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/dist/communicator.h"
#include "core/engine/engine_impl.h"
#include "core/optim/float16.h"
#include "core/plan/planner.h"
#include "core/util/exception_status.h"
#include "core/util/status_macros.h"
#include "glog/logging.h"
#include "storage/spill_streamer.h"

namespace stronghold::core {

using engine_internal::Slot;

void ToComputePrecision(const float* src, int64_t n, Precision precision,
                        void* dst) {
  uint16_t* out = static_cast<uint16_t*>(dst);
  if (precision == Precision::kBf16) {
    for (int64_t i = 0; i < n; ++i) out[i] = BFloat16FromFloat(src[i]);
  } else {
    CHECK(precision == Precision::kFp16);
    for (int64_t i = 0; i < n; ++i) out[i] = HalfFromFloat(src[i]);
  }
}

WindowedEngine::Impl::Impl(const JobConfig& config, const ExecutionPlan& plan,
                           Device* device, FusedAdamW* optimizer,
                           std::vector<HostBuffer> buffers,
                           LossScaleState* state, Timeline* timeline,
                           storage::SpillStreamer* spill, HostLedger* ledger,
                           Communicator* comm)
    : config_(config),
      ledger_(ledger),
      window_(plan.window),
      slots_count_(plan.slots),
      l2l_(plan.method == OffloadMethod::kL2L),
      layers_(config.model.layers),
      precision_(config.training.precision),
      elem_(ComputeElementBytes(precision_)),
      device_(device),
      optimizer_(optimizer),
      timeline_(timeline),
      spill_(spill),
      buffers_(std::move(buffers)),
      state_(state),
      comm_(comm),
      sharded_(comm != nullptr && comm->world_size() > 1),
      world_(comm != nullptr ? comm->world_size() : 1),
      rank_(comm != nullptr ? comm->rank() : 0),
      host_ckpt_mode_(plan.host_checkpoints),
      kept_from_(layers_ - std::clamp(plan.kept_activation_layers, 0, layers_)),
      kept_(layers_),
      update_task_(buffers_.size(), 0),
      speculate_(plan.speculative_updates),
      emb_on_device_(plan.device_embedding_optimizer),
      resident_layers_(plan.device_resident_layers),
      worker_(device, optimizer, timeline, static_cast<int>(buffers_.size()),
              spill, precision_) {}

WindowedEngine::Impl::~Impl() {
  try {
    (void)Drain();
  } catch (...) {  // a destructor must not throw; the job has failed already
    LOG(ERROR) << StatusFromException("draining the engine at its end");
  }
  // A step that threw leaves copies queued: none may land in memory freed
  // below.
  for (Queue q : {Queue::kH2D, Queue::kD2H})
    device_->HostWait(device_->Record(q));
  device_->set_timeline(nullptr);
  for (void* s : staging_) device_->FreeHost(s);
  tier_.reset();  // waits for its reads and H2D copies
  if (host_ckpt_ != nullptr) device_->FreeHost(host_ckpt_);
  device_->Reset();
  for (const auto& [name, bytes] : charged_) ledger_->Release(name, bytes);
}

// Charges host memory about to be allocated to its planned buffer
// (core/plan/host_ledger.h); released when the engine goes.
absl::Status WindowedEngine::Impl::Charge(const char* name, int64_t bytes) {
  if (ledger_ == nullptr || bytes == 0) return absl::OkStatus();
  RETURN_IF_ERROR(ledger_->Charge(name, bytes));
  charged_.emplace_back(name, bytes);
  return absl::OkStatus();
}

absl::Status WindowedEngine::Impl::Allocate() {
  RETURN_IF_ERROR(CheckShards());  // engine_shards.cc
  // A block's elements on the device (padded when sharded: all blocks have
  // the same shape).
  const int64_t block = DeviceCount(1);
  const int slots = slots_count_;
  if (resident_layers_ > 0 && host_ckpt_mode_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "offload.device_resident_layers: ", resident_layers_,
        " layers do not fit the device beside the activation checkpoints (they "
        "would have to go to the host); lower it or raise the device budget"));
  }
  // Block layers 0..K-1 stay on the device (offload.device_resident_layers).
  for (int i = 0; i < resident_layers_; ++i) {
    Slot slot;
    ASSIGN_OR_RETURN(slot.param,
                     device_->Allocate(block * elem_,
                                       absl::StrCat("layer ", i, " weights")));
    ASSIGN_OR_RETURN(slot.grad,
                     device_->Allocate(block * elem_,
                                       absl::StrCat("layer ", i, " gradient")));
    slot.buffer = i + 1;
    resident_.push_back(slot);
  }
  for (int s = 0; s < slots; ++s) {
    Slot slot;
    ASSIGN_OR_RETURN(
        slot.param,
        device_->Allocate(block * elem_, absl::StrCat("slot ", s, " weights")));
    ASSIGN_OR_RETURN(slot.grad,
                     device_->Allocate(block * elem_,
                                       absl::StrCat("slot ", s, " gradient")));
    slots_.push_back(slot);
  }
  // What H2D sends but the NVMe tier holds: a bf16/fp16 working copy, or
  // an fp32 master (HostBuffer::sent_array).
  std::vector<TierReader::Source> sources;
  int64_t largest_sent = 0;
  for (const HostBuffer& b : buffers_) {
    sources.push_back(
        b.sent_array >= 0
            ? TierReader::Source{b.spill_item, b.sent_array, b.count() * elem_}
            : TierReader::Source{});
    if (b.sent_array >= 0)
      largest_sent = std::max(largest_sent, b.count() * elem_);
  }
  RETURN_IF_ERROR(
      Charge("host.staging.ssd_weights",
             (slots + 1) * TierReader::RingEntryBytes(largest_sent)));
  ASSIGN_OR_RETURN(tier_,
                   TierReader::Create(device_, spill_, std::move(sources),
                                      slots + 1));  // TierReadRing
  if (spill_ != nullptr)
    traffic_seen_ = spill_->traffic();  // an earlier engine's is not ours
  for (int b : {0, static_cast<int>(buffers_.size()) - 1}) {
    const int64_t n = DeviceCount(b);
    ASSIGN_OR_RETURN(
        void* p,
        device_->Allocate(n * elem_, buffers_[b].layout.name + " weights"));
    ASSIGN_OR_RETURN(
        void* g,
        device_->Allocate(n * elem_, buffers_[b].layout.name + " gradient"));
    (b == 0 ? emb_param_ : fin_param_) = p;
    (b == 0 ? emb_grad_ : fin_grad_) = g;
  }
  dev_opt_.assign(buffers_.size(), DeviceAdamWState{});
  if (emb_on_device_) RETURN_IF_ERROR(AllocateDeviceOptimizer(0, emb_param_));
  for (int i = 0; i < resident_layers_; ++i) {
    RETURN_IF_ERROR(AllocateDeviceOptimizer(i + 1, resident_[i].param));
  }
  if (speculate_)
    RETURN_IF_ERROR(AllocateBackups());    // engine_device_updates.cc
  RETURN_IF_ERROR(AllocateCheckpoints());  // engine_activations.cc
  // Host staging for gradients leaving the device: one per slot, one each
  // for the embedding and the final norm.
  for (int s = 0; s < slots + 2; ++s) {
    const int64_t n = StagingCount(s < slots ? 1 : (s == slots ? 0 : last()));
    RETURN_IF_ERROR(Charge("host.staging.gradients", n * elem_));
    ASSIGN_OR_RETURN(void* h, device_->AllocateHost(n * elem_));
    staging_.push_back(h);
  }
  staging_task_.assign(staging_.size(), 0);
  RETURN_IF_ERROR(AllocateShards());  // engine_shards.cc
  losses_.resize(config_.training.batch / config_.training.micro_batch);
  losses_all_.resize(losses_.size());
  PlanUpdateOrders();
  device_->set_timeline(timeline_);
  return absl::OkStatus();
}

void WindowedEngine::Impl::StopReadingAhead() {
  tier_->Plan({}, updated_);  // waits for the reads in flight
  tier_planned_ = false;
}

absl::Status WindowedEngine::Impl::Drain() {
  worker_.WaitAll();
  if (std::exchange(dev_dirty_, false)) CopyDeviceState(/*to_device=*/false);
  dev_upload_ = true;  // the caller may write the host state next
  RETURN_IF_ERROR(device_->status());
  RETURN_IF_ERROR(worker_.error());
  return spill_ != nullptr ? spill_->Flush() : absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<WindowedEngine>> WindowedEngine::Create(
    const JobConfig& config, const ExecutionPlan& plan, Device* device,
    FusedAdamW* optimizer, std::vector<HostBuffer> buffers,
    LossScaleState* state, Timeline* timeline, storage::SpillStreamer* spill,
    HostLedger* ledger, Communicator* comm) {
  if (plan.reference || plan.window < 1 || plan.slots < 1) {
    return absl::InvalidArgumentError(
        "the windowed engine needs an engine plan with a window and slots "
        "(core/plan/planner.h)");
  }
  const bool fp32 = config.training.precision == Precision::kFp32;
  for (const HostBuffer& b : buffers) {
    if (b.spill_item >= 0 && spill == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(b.layout.name, ": state spilled, but no SpillStreamer"));
    }
    if (b.count() == 0) continue;  // a rank's empty slice: nothing to send
    if ((b.param == nullptr || b.sent_array >= 0) && b.spill_item < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(b.layout.name,
                       ": masters (and what H2D sends) may be left out of host "
                       "memory only when the buffer's state is spilled"));
    }
    // H2D sends exactly one thing: the fp32 master, or the 16-bit working copy.
    const bool sent_ok = fp32 ? b.working == nullptr &&
                                    (b.param == nullptr) == (b.sent_array == 2)
                              : (b.working != nullptr) != (b.sent_array == 3);
    if (!sent_ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          b.layout.name,
          ": H2D sends the fp32 master in fp32 and a working copy in bf16 or "
          "fp16, each from host memory or the NVMe tier"));
    }
  }
  CHECK(state != nullptr);
  try {
    auto impl = std::make_unique<Impl>(config, plan, device, optimizer,
                                       std::move(buffers), state, timeline,
                                       spill, ledger, comm);
    RETURN_IF_ERROR(impl->Allocate());
    return std::unique_ptr<WindowedEngine>(
        new WindowedEngine(std::move(impl), plan.window));
  } catch (...) {
    return StatusFromException(
        absl::StrCat("creating the engine (window ", plan.window, ")"));
  }
}

WindowedEngine::WindowedEngine(std::unique_ptr<Impl> impl, int window)
    : impl_(std::move(impl)), window_(window) {}
WindowedEngine::~WindowedEngine() = default;

absl::StatusOr<StepMetrics> WindowedEngine::Step(int64_t step,
                                                 const BatchSource& batches) {
  RETURN_IF_ERROR(broken_);
  try {
    return impl_->Step(step, batches);
  } catch (...) {
    // The step stopped half way: its queued work and plans are unknown.
    const absl::Status error = StatusFromException(absl::StrCat("step ", step));
    broken_ = absl::FailedPreconditionError(absl::StrCat(
        "the engine cannot step after an exception in ", error.message()));
    return error;
  }
}

absl::Status WindowedEngine::Drain() {
  try {
    return impl_->Drain();
  } catch (...) {
    return StatusFromException("waiting for the engine's updates");
  }
}

void WindowedEngine::StopReadingAhead() { impl_->StopReadingAhead(); }

void WindowedEngine::ProfileNextStep() { impl_->ProfileNextStep(); }

int64_t WindowedEngine::trace_cut_ns() const { return impl_->cut_ns(); }

}  // namespace stronghold::core
