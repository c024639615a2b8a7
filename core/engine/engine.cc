#include "core/engine/engine.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/optim/device_adamw.h"
#include "core/model/gpt.h"
#include "core/engine/grad_worker.h"
#include "core/optim/float16.h"
#include "core/plan/planner.h"
#include "core/util/exception_status.h"
#include "core/util/status_macros.h"
#include "core/engine/tier_reader.h"
#include "glog/logging.h"
#include "storage/spill_streamer.h"

namespace stronghold::core {

AdamWStep AdamWHyper(const TrainingConfig& t, int64_t step, int64_t adam_step,
                     double grad_scale) {
  AdamWStep h;
  h.lr = static_cast<float>(LearningRate(t, step));
  h.beta1 = static_cast<float>(t.beta1);
  h.beta2 = static_cast<float>(t.beta2);
  h.eps = static_cast<float>(t.eps);
  h.weight_decay = static_cast<float>(t.weight_decay);
  h.step = adam_step;
  h.grad_scale = static_cast<float>(grad_scale);
  return h;
}

void ToComputePrecision(const float* src, int64_t n, Precision precision, void* dst) {
  uint16_t* out = static_cast<uint16_t*>(dst);
  if (precision == Precision::kBf16) {
    for (int64_t i = 0; i < n; ++i) out[i] = BFloat16FromFloat(src[i]);
  } else {
    CHECK(precision == Precision::kFp16);
    for (int64_t i = 0; i < n; ++i) out[i] = HalfFromFloat(src[i]);
  }
}

double ClipFactor(const TrainingConfig& t, double norm) {
  return (t.clip_norm > 0 && norm > t.clip_norm) ? t.clip_norm / (norm + 1e-6) : 1.0;
}

absl::Status NonFiniteGradient(int64_t step, const std::vector<BufferLayout>& layouts,
                               const std::vector<StepStats>& stats) {
  for (size_t b = 0; b < stats.size() && b < layouts.size(); ++b) {
    if (stats[b].nonfinite_count > 0 || !std::isfinite(stats[b].grad_sq_sum)) {
      std::string where = layouts[b].name;
      for (const TensorSlice& t : layouts[b].tensors) {
        if (stats[b].first_nonfinite >= t.offset &&
            stats[b].first_nonfinite < t.offset + t.numel()) {
          where = absl::StrCat(layouts[b].name, ".", t.name, " element ",
                               stats[b].first_nonfinite - t.offset);
        }
      }
      return absl::InternalError(absl::StrCat(
          "step ", step, ": the gradient is not finite in ", where, " (", stats[b].nonfinite_count,
          " non-finite elements in ", layouts[b].name,
          "); the training diverged: lower training.lr or set training.clip_norm"));
    }
  }
  return absl::InternalError(absl::StrCat("step ", step, ": the gradient norm is not finite"));
}

namespace {

// What follows a layer's gradient accumulation on the host in a micro-batch.
enum class GradTail {
  kNone,     // more micro-batches to come
  kUpdate,   // the last one: the layer's AdamW step right away
  kMeasure,  // the last one, updates deferred: measure it for the global norm
};

double Since(int64_t start_ns) { return (Timeline::NowNs() - start_ns) / 1e9; }

torch::ScalarType ToTorch(Precision p) {
  switch (p) {
    case Precision::kBf16: return torch::kBFloat16;
    case Precision::kFp16: return torch::kHalf;
    default: return torch::kFloat32;
  }
}

// A device slot holding one block: its weights and its gradient.
struct Slot {
  void* param = nullptr;  // in the compute precision
  void* grad = nullptr;
  int buffer = -1;       // the buffer it holds, -1 when free
  Event h2d_done;        // its weights have arrived
  Event compute_done;    // the last compute that read it
  Event d2h_done;        // its gradient has left
};

}  // namespace

class WindowedEngine::Impl {
 public:
  Impl(const JobConfig& config, const ExecutionPlan& plan, Device* device, FusedAdamW* optimizer,
       std::vector<HostBuffer> buffers, LossScaleState* state, Timeline* timeline,
       storage::SpillStreamer* spill, HostLedger* ledger)
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
        host_ckpt_mode_(plan.host_checkpoints),
        kept_from_(layers_ - (l2l_ ? 0 : std::clamp(plan.kept_activation_layers, 0,
                                                       layers_))),
        kept_(layers_),
        update_task_(buffers_.size(), 0),
        speculate_(plan.speculative_updates),
        emb_on_device_(plan.device_embedding_optimizer),
        resident_layers_(plan.device_resident_layers),
        worker_(device, optimizer, timeline, static_cast<int>(buffers_.size()), spill,
                precision_) {}

  ~Impl() {
    try {
      (void)Drain();
    } catch (...) {  // a destructor must not throw; the job has failed already
      LOG(ERROR) << StatusFromException("draining the engine at its end");
    }
    // A step that threw leaves copies queued: none may land in memory freed
    // below.
    for (Queue q : {Queue::kH2D, Queue::kD2H}) device_->HostWait(device_->Record(q));
    device_->set_timeline(nullptr);
    for (void* s : staging_) device_->FreeHost(s);
    tier_.reset();  // waits for its reads and H2D copies
    if (host_ckpt_ != nullptr) device_->FreeHost(host_ckpt_);
    device_->Reset();
    for (const auto& [name, bytes] : charged_) ledger_->Release(name, bytes);
  }

  // Charges host memory about to be allocated to its planned buffer
  // (core/plan/host_ledger.h); released when the engine goes.
  absl::Status Charge(const char* name, int64_t bytes) {
    if (ledger_ == nullptr || bytes == 0) return absl::OkStatus();
    RETURN_IF_ERROR(ledger_->Charge(name, bytes));
    charged_.emplace_back(name, bytes);
    return absl::OkStatus();
  }

  absl::Status Allocate() {
    const ModelConfig& m = config_.model;
    const int64_t block = m.parameters_per_layer();
    const int slots = slots_count_;
    if (resident_layers_ > 0 && host_ckpt_mode_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "offload.device_resident_layers: ", resident_layers_,
          " layers do not fit the device beside the activation checkpoints (they would have to go "
          "to the host); lower it or raise the device budget"));
    }
    // Block layers 0..K-1 stay on the device (offload.device_resident_layers).
    for (int i = 0; i < resident_layers_; ++i) {
      Slot slot;
      ASSIGN_OR_RETURN(slot.param, device_->Allocate(block * elem_, absl::StrCat("layer ", i, " weights")));
      ASSIGN_OR_RETURN(slot.grad, device_->Allocate(block * elem_, absl::StrCat("layer ", i, " gradient")));
      slot.buffer = i + 1;
      resident_.push_back(slot);
    }
    for (int s = 0; s < slots; ++s) {
      Slot slot;
      ASSIGN_OR_RETURN(slot.param, device_->Allocate(block * elem_, absl::StrCat("slot ", s, " weights")));
      ASSIGN_OR_RETURN(slot.grad, device_->Allocate(block * elem_, absl::StrCat("slot ", s, " gradient")));
      slots_.push_back(slot);
    }
    // What H2D sends but the NVMe tier holds: a bf16/fp16 working copy, or
    // an fp32 master (HostBuffer::sent_array).
    std::vector<TierReader::Source> sources;
    int64_t largest_sent = 0;
    for (const HostBuffer& b : buffers_) {
      sources.push_back(b.sent_array >= 0
                            ? TierReader::Source{b.spill_item, b.sent_array, b.layout.count * elem_}
                            : TierReader::Source{});
      if (b.sent_array >= 0) largest_sent = std::max(largest_sent, b.layout.count * elem_);
    }
    RETURN_IF_ERROR(Charge("host.staging.ssd_weights",
                           (slots + 1) * TierReader::RingEntryBytes(largest_sent)));
    ASSIGN_OR_RETURN(tier_, TierReader::Create(device_, spill_, std::move(sources),
                                               slots + 1));  // TierReadRing
    if (spill_ != nullptr) traffic_seen_ = spill_->traffic();  // an earlier engine's is not ours
    for (int b : {0, static_cast<int>(buffers_.size()) - 1}) {
      const int64_t n = buffers_[b].layout.count;
      ASSIGN_OR_RETURN(void* p, device_->Allocate(n * elem_, buffers_[b].layout.name + " weights"));
      ASSIGN_OR_RETURN(void* g, device_->Allocate(n * elem_, buffers_[b].layout.name + " gradient"));
      (b == 0 ? emb_param_ : fin_param_) = p;
      (b == 0 ? emb_grad_ : fin_grad_) = g;
    }
    dev_opt_.assign(buffers_.size(), DeviceAdamWState{});
    if (emb_on_device_) RETURN_IF_ERROR(AllocateDeviceOptimizer(0, emb_param_));
    for (int i = 0; i < resident_layers_; ++i) {
      RETURN_IF_ERROR(AllocateDeviceOptimizer(i + 1, resident_[i].param));
    }
    if (speculate_) {  // host memory; the pool first-touches it with the first backup
      for (const HostBuffer& b : buffers_) {
        const int64_t n = b.layout.count;
        const bool working = b.working != nullptr;  // restored too: a skipped step resends it
        RETURN_IF_ERROR(Charge("host.speculative_backup", 3 * n * 4 + (working ? n * elem_ : 0)));
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
    }
    const int64_t act = BoundaryActivationBytes(config_);
    const int boundaries = host_ckpt_mode_ ? slots + 1 : layers_ + 1;
    ASSIGN_OR_RETURN(ckpt_, device_->Allocate(boundaries * act, "activation checkpoints"));
    if (host_ckpt_mode_) {
      RETURN_IF_ERROR(Charge("host.activations.checkpoints", (layers_ + 1) * act));
      ASSIGN_OR_RETURN(host_ckpt_, device_->AllocateHost((layers_ + 1) * act));
      boundary_d2h_.resize(boundaries);
    }
    // Host staging for gradients leaving the device: one per slot, one each
    // for the embedding and the final norm.
    for (int s = 0; s < slots + 2; ++s) {
      const int64_t n = s < slots ? block : buffers_[s == slots ? 0 : buffers_.size() - 1].layout.count;
      RETURN_IF_ERROR(Charge("host.staging.gradients", n * elem_));
      ASSIGN_OR_RETURN(void* h, device_->AllocateHost(n * elem_));
      staging_.push_back(h);
    }
    staging_task_.assign(staging_.size(), 0);
    PlanUpdateOrders();
    device_->set_timeline(timeline_);
    return absl::OkStatus();
  }

  absl::StatusOr<StepMetrics> Step(int64_t step, const BatchSource& batches) {
    const TrainingConfig& t = config_.training;
    const int micro_batches = t.batch / t.micro_batch;
    // Clipping needs the global norm before any update; fp16 needs to know
    // that no layer overflowed (else the whole step is skipped).
    const bool fp16 = precision_ == Precision::kFp16;
    // Speculative updates run as gradients land, as if the step were not
    // clipped and finite, after saving each layer's state; a step that turns
    // out clipped or overflowed is rolled back and redone (docs/engine.md).
    const bool defer = (t.clip_norm > 0 || fp16) && !speculate_;
    const double scale = state_->scale;  // 1 unless fp16
    const int64_t adam_step = state_->optimizer_step + 1;
    stats_ = StepMetrics();
    // The last step planned this one as soon as its updates were queued.
    if (!std::exchange(tier_planned_, false) && tier_->active()) {
      tier_->Plan(FetchOrder(micro_batches), updated_);
    }
    const bool profile = std::exchange(profile_, false);
    stats_.loss_scale = scale;
    worker_.reset_stats();
    step_ = step;
    hyper_ = AdamWHyper(t, step, adam_step, 1.0 / scale);  // as if not clipped
    auto scope = device_->ComputeScope();
    const auto dev = torch::TensorOptions().dtype(ToTorch(precision_)).device(device_->torch_device());

    // The embedding and final norm live on the device: bring their updates.
    // Buffers updated on the device: uploaded after the host state was read.
    if (std::exchange(dev_upload_, false)) CopyDeviceState(/*to_device=*/true);
    for (int b : {0, last()}) {
      if (OnDevice(b)) continue;
      WaitForUpdate(b);
      void* dst = b == 0 ? emb_param_ : fin_param_;
      device_->Copy(Queue::kH2D, dst, Source(b), buffers_[b].layout.count * elem_, b);
      stats_.h2d_bytes += buffers_[b].layout.count * elem_;
    }
    device_->QueueWait(Queue::kCompute, device_->Record(Queue::kH2D));
    if (speculate_) {
      // The backups need no gradient: the worker saves each buffer while it
      // has nothing else to do (forward, mostly), in the order backward
      // updates them, after the last step's updates (queued before). This
      // takes 24-28 bytes per parameter of copying off backward's path.
      ++epoch_;
      for (int b : backup_order_) {
        GradWorker::Task save{.buffer = &buffers_[b], .index = b, .backup = &backups_[b]};
        save.epoch = epoch_;
        worker_.SubmitBackground(save);
      }
    }

    torch::Tensor inputs = torch::empty({t.micro_batch, config_.model.seq_len}, torch::kInt64);
    torch::Tensor targets = torch::empty_like(inputs);
    double loss_sum = 0;
    for (int mb = 0; mb < micro_batches; ++mb) {
      if (absl::Status filled = batches(mb, inputs.data_ptr<int64_t>(),
                                        targets.data_ptr<int64_t>());
          !filled.ok()) {
        worker_.WaitAll();
        return filled;
      }
      const torch::Tensor tokens = inputs.to(device_->torch_device());
      const torch::Tensor labels = targets.to(device_->torch_device());
      const bool last_mb = mb + 1 == micro_batches;
      const int64_t fwd_start = Timeline::NowNs();
      // Spilled optimizer state is needed in backward order, during the
      // last micro-batch: its reads start halfway through that forward, so
      // they overlap it without delaying the reads forward needs first
      // (what H2D sends from the tier, core/engine/tier_reader.h).
      Forward(tokens, dev, profile, last_mb && !defer ? layers_ / 2 : -1);
      const int64_t bwd_start = Timeline::NowNs();
      stats_.layer_forward_s += (bwd_start - fwd_start) / 1e9 / layers_;
      // The last micro-batch: each layer's update follows its gradient, or,
      // deferred, its accumulation measures the gradient for the global norm.
      const GradTail tail = !last_mb ? GradTail::kNone : defer ? GradTail::kMeasure : GradTail::kUpdate;
      loss_sum += Backward(tokens, labels, dev, mb == 0, tail, micro_batches, scale);
    }
    // Gradients must all have landed before the step's updates are decided.
    // The device finishes backward first: on a GPU the host is ahead of it
    // by as many layers as there are slots, and that wait is compute, not
    // the optimizer (with W = L it was most of backward).
    device_->HostWait(device_->Record(Queue::kCompute));
    const int64_t wait_start = Timeline::NowNs();
    worker_.WaitAll();
    RETURN_IF_ERROR(tier_error_);      // the NVMe tier failed a read for H2D
    RETURN_IF_ERROR(worker_.error());  // or an update
    RETURN_IF_ERROR(device_->status());  // or the device a copy: no update from its gradients
    // The tier's traffic since this point in the last step: each spilled
    // update's state staged and written back (with the working copy it
    // wrote, where that is there), each fetch's read of what H2D sends from
    // there.
    // Deferred updates run after this and count for the next step (but for
    // the first slots' staging, which starts in the last backward), as do
    // the reads the next step's plan starts at this step's end.
    if (spill_ != nullptr) {
      const storage::SpillStreamer::Traffic traffic = spill_->traffic();
      stats_.nvme_read_bytes = traffic.read - traffic_seen_.read;
      stats_.nvme_reused_bytes = traffic.reused - traffic_seen_.reused;
      stats_.nvme_write_bytes = traffic.written - traffic_seen_.written;
      traffic_seen_ = traffic;
    }
    // Deferred: the last accumulation measured each gradient (scaled by
    // 1 / loss scale), so the global norm needs no second pass.
    std::vector<StepStats> grads = defer ? worker_.measured() : worker_.stats();
    for (int b = 0; b < num_buffers(); ++b) {
      if (OnDevice(b)) grads[b] = device_adamw_->Measure(dev_opt_[b], static_cast<float>(1.0 / scale));
    }
    double sum_sq = 0;  // buffer order, as the reference sums it
    for (const StepStats& g : grads) sum_sq += g.grad_sq_sum;
    stats_.optimizer_s += Since(wait_start);
    stats_.grad_norm = std::sqrt(sum_sq);
    const bool finite = std::isfinite(stats_.grad_norm);
    // fp16: an overflow skips the step and halves the scale, down to
    // kMinLossScale; below, the gradient is not finite at any scale.
    // A speculative step is kept only if its clip factor is 1 and it is
    // finite: then it is exactly the step the deferred path would take.
    const bool roll_back =
        speculate_ && (!finite || ClipFactor(t, stats_.grad_norm) != 1.0);
    stats_.rolled_back = roll_back;
    if (!finite && !(fp16 && scale / kLossScaleFactor >= kMinLossScale)) {
      if (roll_back) {  // the job fails; its host state is left as before the step
        for (int b : update_order_) RollBack(b, nullptr);
        worker_.WaitAll();
      }
      std::vector<BufferLayout> layouts;
      for (const HostBuffer& b : buffers_) layouts.push_back(b.layout);
      return NonFiniteGradient(step, layouts, grads);
    }
    AdvanceLossScale(precision_, finite, state_);
    cut_ns_ = Timeline::NowNs();  // the next step's timeline starts here
    if (!finite) {  // skipped: nothing was updated (the updates were deferred or are undone)
      stats_.skipped = true;
      stats_.grad_norm = 0;
      if (roll_back) {
        for (int b : update_order_) RollBack(b, nullptr);
      }
    } else if (roll_back) {  // clipped: undo each layer and update it again, in forward order
      const AdamWStep hyper = AdamWHyper(t, step, adam_step, ClipFactor(t, stats_.grad_norm) / scale);
      for (int b : update_order_) RollBack(b, &hyper);
    } else if (defer) {
      // Forward order, so the next step's forward waits only for its layer
      // (update_order_).
      const double grad_scale = ClipFactor(t, stats_.grad_norm) / scale;
      const AdamWStep hyper = AdamWHyper(t, step, adam_step, grad_scale);
      StageSpilled(/*forward=*/true);
      for (int b : update_order_) {
        update_task_[b] =
            worker_.Submit({Event{}, nullptr, DType::kFloat32, &buffers_[b], b, false, true, hyper});
      }
    }
    if (device_adamw_ != nullptr && finite) {
      // Never speculative: the norm is known, and nothing is left to overlap.
      const AdamWStep hyper = AdamWHyper(t, step, adam_step, ClipFactor(t, stats_.grad_norm) / scale);
      for (int b = 0; b < num_buffers(); ++b) {
        if (!OnDevice(b)) continue;
        const int64_t start = Timeline::NowNs();
        device_adamw_->Step(dev_opt_[b], hyper);
        stats_.optimizer_s += Since(start);  // the host device's update runs here
        if (timeline_ != nullptr) timeline_->Add({"adamw", Lane::kOptimizer, b, start, Timeline::NowNs()});
      }
      dev_dirty_ = true;
    }
    stats_.loss = loss_sum / micro_batches;
    stats_.layer_forward_s /= micro_batches;
    if (!profiled_forward_s_.empty()) {  // ProfileNextStep: the median layer
      auto mid = profiled_forward_s_.begin() + profiled_forward_s_.size() / 2;
      std::nth_element(profiled_forward_s_.begin(), mid, profiled_forward_s_.end());
      stats_.layer_forward_s = *mid;
      profiled_forward_s_.clear();
    }
    stats_.layer_backward_s /= micro_batches;
    stats_.layer_optimizer_s = worker_.optimizer_s() / num_buffers();
    const TierReader::Stats& tier = tier_->stats();
    stats_.nvme_wait_s = tier.wait_s - tier_seen_.wait_s;
    stats_.nvme_unplanned_reads = tier.unplanned - tier_seen_.unplanned;
    tier_seen_ = tier;
    // The next step fetches in the same order: its first reads from the
    // tier start now, as their layers' updates finish (they count for it).
    if (tier_->active()) {
      tier_->Plan(FetchOrder(micro_batches), updated_);
      tier_planned_ = true;
    }
    device_->FlushTimeline();  // CUDA: the step's finished copies, timed on the GPU
    RETURN_IF_ERROR(device_->status());
    return stats_;
  }

  int64_t cut_ns() const { return cut_ns_; }
  void ProfileNextStep() { profile_ = true; }

  void StopReadingAhead() {
    tier_->Plan({}, updated_);  // waits for the reads in flight
    tier_planned_ = false;
  }

  absl::Status Drain() {
    worker_.WaitAll();
    if (std::exchange(dev_dirty_, false)) CopyDeviceState(/*to_device=*/false);
    dev_upload_ = true;  // the caller may write the host state next
    RETURN_IF_ERROR(device_->status());
    RETURN_IF_ERROR(worker_.error());
    return spill_ != nullptr ? spill_->Flush() : absl::OkStatus();
  }

 private:
  int last() const { return static_cast<int>(buffers_.size()) - 1; }
  int num_buffers() const { return static_cast<int>(buffers_.size()); }

  bool OnDevice(int b) const { return !dev_opt_.empty() && dev_opt_[b].count > 0; }

  // Buffer b's AdamW on the device (core/optim/device_adamw.h): the fp32 arrays
  // beside its weights and gradient there; in fp32 the weights are the
  // master. The embedding (offload.device_embedding_optimizer) and block
  // layers 0..K-1 (offload.device_resident_layers).
  absl::Status AllocateDeviceOptimizer(int b, void* weights) {
    const int64_t n = buffers_[b].layout.count;
    const bool fp32 = precision_ == Precision::kFp32;
    std::vector<float*> arrays;
    for (int i = 0; i < DeviceOptimizerArrays(precision_); ++i) {
      static const char* const kWhat[] = {"exp_avg", "exp_avg_sq", "gradient accumulator", "master"};
      ASSIGN_OR_RETURN(void* p, device_->Allocate(n * static_cast<int64_t>(sizeof(float)),
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
    if (device_adamw_ == nullptr) device_adamw_ = DeviceAdamW::ForDevice(device_, optimizer_);
    return absl::OkStatus();
  }
  // The state (master, moments, working copy) of the buffers updated on the
  // device: to it (`to_device`) before the first step and after the host
  // state was read or written (Drain); from it, once its updates are done,
  // so that the host state is current (checkpoints, Weights()).
  void CopyDeviceState(bool to_device) {
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
        device_->Copy(queue, to_device ? dev : host, to_device ? host : dev, bytes, -1);
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

  // The order in which the next step's forward needs the buffers: the
  // embedding and the final norm (both copied at its start), then the
  // block layers. Updates that run after backward (deferred, or redone
  // after a roll-back) are queued in it, so the forward of layer i waits
  // for the updates of the buffers before it and no others. (Buffer order
  // would put the final norm last: the next step would wait for every
  // update before its first layer, as it did until 2026-11-27.)
  // The host-updated buffers in that order (update_order_), and in the
  // order backward updates them, the block layers down, the embedding, the
  // final norm (backup_order_: speculative backups). Fixed once Allocate()
  // knows which buffers the device updates.
  void PlanUpdateOrders() {
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

  // Queues buffer b's restore from its backup and, with `redo`, its update
  // again with those hyper-parameters; the next forward waits for it.
  void RollBack(int b, const AdamWStep* redo) {
    GradWorker::Task task{Event{}, nullptr, DType::kFloat32, &buffers_[b], b, false,
                          redo != nullptr, redo != nullptr ? *redo : hyper_};
    task.backup = &backups_[b];
    task.restore = true;
    update_task_[b] = worker_.Submit(task);
  }

  // The buffers Fetch() copies to the device this step, in order: per
  // micro-batch, forward 0..L-1, then backward from below the layers that
  // stay from forward (the last W) down to 0.
  std::vector<int> FetchOrder(int micro_batches) const {
    std::vector<int> order;
    const int stay = std::max(window_, 1);
    for (int mb = 0; mb < micro_batches; ++mb) {
      for (int i = resident_layers_; i < layers_; ++i) order.push_back(i + 1);
      for (int i = layers_ - 1 - stay; i >= resident_layers_; --i) order.push_back(i + 1);
    }
    return order;
  }
  // Starts reading the spilled moments in the order the updates will want
  // them (the streamer's bounded slots limit how far ahead).
  void StageSpilled(bool forward) {
    if (spill_ == nullptr) return;
    std::vector<int> order;
    for (int i = 0; i < num_buffers(); ++i) {
      const int b = forward ? i : num_buffers() - 1 - i;
      if (buffers_[b].spill_item >= 0) order.push_back(buffers_[b].spill_item);
    }
    spill_->Prefetch(order);
  }

  // What H2D sends for buffer b: the working copy, or the fp32 masters.
  const void* Source(int b) const {
    return buffers_[b].working != nullptr ? buffers_[b].working : buffers_[b].param;
  }

  // Where the input of block layer i (i = L: of the head) is on the device.
  // With the checkpoints on the host, the device holds one boundary per
  // slot, layer i's in its slot's (i mod slots), and the head's apart.
  int BoundaryIndex(int i) const {
    if (!host_ckpt_mode_) return i;
    return i == layers_ ? static_cast<int>(slots_.size()) : i % static_cast<int>(slots_.size());
  }
  torch::Tensor Checkpoint(int i, const torch::TensorOptions& dev) {
    const int64_t act = BoundaryActivationBytes(config_);  // bytes
    return torch::from_blob(static_cast<char*>(ckpt_) + BoundaryIndex(i) * act,
                            {config_.training.micro_batch, config_.model.seq_len, config_.model.hidden},
                            dev);
  }
  // Host checkpoints, forward: before compute overwrites layer i's device
  // boundary, the copy of its previous content to the host must be done.
  void BeforeWriting(int i) {
    if (host_ckpt_mode_) device_->QueueWait(Queue::kCompute, boundary_d2h_[BoundaryIndex(i)]);
  }
  // ... and after compute wrote it, it goes to the host (the head's input
  // stays on the device until backward).
  void AfterWriting(int i) {
    if (!host_ckpt_mode_ || i == layers_) return;
    const int64_t act = BoundaryActivationBytes(config_);
    device_->QueueWait(Queue::kD2H, device_->Record(Queue::kCompute));
    device_->Copy(Queue::kD2H, static_cast<char*>(host_ckpt_) + i * act,
                  static_cast<char*>(ckpt_) + BoundaryIndex(i) * act, act, i + 1);
    stats_.d2h_bytes += act;
    boundary_d2h_[BoundaryIndex(i)] = device_->Record(Queue::kD2H);
  }
  // Block layer i is buffer i + 1 (buffer 0 is the embedding).
  Slot* Resident(int layer) {
    if (layer < resident_layers_) return &resident_[layer];
    for (Slot& s : slots_) {
      if (s.buffer == layer + 1) return &s;
    }
    return nullptr;
  }

  // Blocks until the pending AdamW update of buffer b (if any) is done.
  void WaitForUpdate(int b) {
    const int64_t start = Timeline::NowNs();
    if (update_task_[b] != 0) worker_.WaitFor(update_task_[b]);
    const double waited = Since(start);
    stats_.optimizer_s += waited;
    if (waited > 1e-4 && timeline_ != nullptr) {
      timeline_->Add({"wait_update", Lane::kWait, b, start, Timeline::NowNs()});
    }
  }

  // Issues the H2D copy of block `layer` into its slot. Layer i always uses
  // slot i mod slots: the window keeps layers i..i+W resident going up and
  // i..i-W going down, W + 1 consecutive layers, so that slot is free when
  // the layer is fetched, and a layer whose activations were kept finds its
  // weights at the addresses its autograd graph saved.
  void Fetch(int layer, bool with_input = false) {
    if (Resident(layer) != nullptr) return;
    Slot* slot = &slots_[(layer - resident_layers_) % slots_.size()];
    CHECK_EQ(slot->buffer, -1) << "slot of layer " << layer << " busy (window " << window_ << ")";
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
    device_->Copy(Queue::kH2D, slot->param, source, buffers_[b].layout.count * elem_, b);
    stats_.h2d_bytes += buffers_[b].layout.count * elem_;
    if (with_input && host_ckpt_mode_) {
      // Backward: the layer's input comes back from the host with it (the
      // boundary's last reader was this slot's previous layer; its last
      // writer, forward's copy to the host).
      const int64_t act = BoundaryActivationBytes(config_);
      device_->QueueWait(Queue::kH2D, boundary_d2h_[BoundaryIndex(layer)]);
      device_->Copy(Queue::kH2D, static_cast<char*>(ckpt_) + BoundaryIndex(layer) * act,
                    static_cast<char*>(host_ckpt_) + layer * act, act, b);
      stats_.h2d_bytes += act;
    }
    slot->h2d_done = device_->Record(Queue::kH2D);
    slot->buffer = b;
    if (tier) tier_->Sent(slot->h2d_done);
    tier_->Pump(updated_);
  }

  // Fetches block layers first..last (those that exist) that are not
  // resident yet, in order, up to the first whose update is still running
  // (`first` is the lowest layer not fetched yet, so the order is Fetch's).
  // Forward prefetches this way so that compute is held up only by the
  // layer it needs now: with updates deferred to after backward, the
  // optimizer is still working through the layers when the next forward
  // starts, and Ensure() waits for the layer at hand alone. When nothing
  // is pending (updates overlapped backward) it prefetches the whole window.
  void PrefetchReady(int first, int last) {
    for (int i = first; i <= std::min(last, layers_ - 1); ++i) {
      if (Resident(i) != nullptr) continue;
      if (!updated_(i + 1)) return;
      Fetch(i);
    }
  }

  // Makes compute wait for block `layer`'s weights (fetching it if needed).
  Slot* Ensure(int layer, bool with_input = false) {
    tier_->Pump(updated_);
    Fetch(layer, with_input);
    Slot* slot = Resident(layer);
    const int64_t start = Timeline::NowNs();
    if (l2l_) device_->HostWait(slot->h2d_done);  // L2L: synchronous copies
    device_->QueueWait(Queue::kCompute, slot->h2d_done);
    const double waited = Since(start);
    stats_.h2d_wait_s += waited;
    if (waited > 1e-4 && timeline_ != nullptr) {
      timeline_->Add({"wait_h2d", Lane::kWait, layer + 1, start, Timeline::NowNs()});
    }
    return slot;
  }

  void Release(Slot* slot) {
    slot->compute_done = device_->Record(Queue::kCompute);
    slot->buffer = -1;
  }

  torch::Tensor Weights(const Slot& slot, const torch::TensorOptions& dev) {
    return torch::from_blob(slot.param, {buffers_[slot.buffer].layout.count}, dev);
  }

  // Layers kept_from_.. keep their autograd graph from forward to backward.
  struct KeptLayer {
    torch::Tensor weights;  // the leaf over the slot's weights
    torch::Tensor input;    // x_i, the leaf whose gradient backward passes down
    torch::Tensor output;   // x_{i+1} with its graph
  };

  // Stages the spilled optimizer state (backward order) at layer `stage_at`
  // (< 0: not).
  void Forward(const torch::Tensor& tokens, const torch::TensorOptions& dev, bool profile,
               int stage_at) {
    torch::NoGradGuard no_grad;
    const int heads = config_.model.heads;
    const int64_t n = buffers_[0].layout.count;
    const int ahead = l2l_ ? 0 : window_;
    PrefetchReady(0, ahead - 1);  // fill the window
    BeforeWriting(0);
    Checkpoint(0, dev).copy_(gpt::Embed(torch::from_blob(emb_param_, {n}, dev), buffers_[0].layout, tokens));
    AfterWriting(0);
    for (int i = 0; i < layers_; ++i) {
      if (i == stage_at) StageSpilled(/*forward=*/false);
      PrefetchReady(i, i + ahead);
      Slot* slot = Ensure(i);
      const int64_t start = Timeline::NowNs();
      const BufferLayout& layout = buffers_[slot->buffer].layout;
      if (i >= kept_from_) {
        // Backward will use this graph instead of recomputing the layer.
        torch::AutoGradMode grad(true);
        KeptLayer& k = kept_[i];
        k.weights = Weights(*slot, dev).requires_grad_(true);
        k.input = Checkpoint(i, dev).detach().requires_grad_(true);
        k.output = gpt::Block(k.weights, layout, k.input, heads);
        BeforeWriting(i + 1);
        Checkpoint(i + 1, dev).copy_(k.output.detach());
      } else {
        torch::Tensor y = gpt::Block(Weights(*slot, dev), layout, Checkpoint(i, dev), heads);
        BeforeWriting(i + 1);
        Checkpoint(i + 1, dev).copy_(y);
      }
      AfterWriting(i + 1);
      if (profile) {
        device_->HostWait(device_->Record(Queue::kCompute));
        profiled_forward_s_.push_back(Since(start));
      }
      Span span{"fwd", Lane::kCompute, i + 1, start, 0};
      const bool keep = i >= layers_ - std::max(window_, 1);  // the last W stay for backward
      if (!keep && i >= resident_layers_) Release(slot);
      span.end_ns = Timeline::NowNs();
      stats_.compute_s += (span.end_ns - start) / 1e9;
      if (timeline_ != nullptr) timeline_->Add(span);
    }
  }

  // Copies a device gradient to host staging after the compute that made it,
  // and queues its accumulation (and update) on the CPU worker.
  Event HandOff(int b, const void* device_grad, int staging, bool first, GradTail tail) {
    const bool update = tail == GradTail::kUpdate;
    const int64_t start = Timeline::NowNs();
    if (staging_task_[staging] != 0) worker_.WaitFor(staging_task_[staging]);  // staging reuse
    stats_.d2h_wait_s += Since(start);
    device_->QueueWait(Queue::kD2H, device_->Record(Queue::kCompute));
    device_->Copy(Queue::kD2H, staging_[staging], device_grad, buffers_[b].layout.count * elem_, b);
    stats_.d2h_bytes += buffers_[b].layout.count * elem_;
    const Event landed = device_->Record(Queue::kD2H);
    if (l2l_) {
      const int64_t s = Timeline::NowNs();
      device_->HostWait(landed);  // L2L: synchronous copies
      stats_.d2h_wait_s += Since(s);
    }
    GradWorker::Task task{landed, staging_[staging], ToDType(precision_), &buffers_[b], b, first,
                          update, hyper_, tail == GradTail::kMeasure,
                          static_cast<float>(1.0 / state_->scale)};
    if (update && speculate_) {  // saved before the update, unless in the background already
      task.backup = &backups_[b];
      task.epoch = epoch_;
    }
    staging_task_[staging] = worker_.Submit(task);
    if (update) update_task_[b] = staging_task_[staging];
    return landed;
  }

  double Backward(const torch::Tensor& tokens, const torch::Tensor& labels,
                  const torch::TensorOptions& dev, bool first, GradTail tail, int micro_batches,
                  double loss_scale) {
    const int heads = config_.model.heads;
    const BufferLayout& emb_layout = buffers_[0].layout;
    const BufferLayout& fin_layout = buffers_[last()].layout;
    torch::Tensor emb = torch::from_blob(emb_param_, {emb_layout.count}, dev).requires_grad_(true);
    torch::Tensor fin = torch::from_blob(fin_param_, {fin_layout.count}, dev).requires_grad_(true);
    // Their gradients' previous D2H copies must have left before compute
    // zeroes them (the layers' slots get the same order through Fetch).
    device_->QueueWait(Queue::kCompute, emb_d2h_);
    device_->QueueWait(Queue::kCompute, fin_d2h_);
    emb.mutable_grad() = torch::from_blob(emb_grad_, {emb_layout.count}, dev).zero_();
    fin.mutable_grad() = torch::from_blob(fin_grad_, {fin_layout.count}, dev).zero_();

    int64_t start = Timeline::NowNs();
    torch::Tensor x = Checkpoint(layers_, dev).detach().requires_grad_(true);
    torch::Tensor loss = gpt::HeadLoss(fin, fin_layout, emb, emb_layout, x, labels);
    const double loss_value = loss.item<double>();
    gpt::LossObjective(loss, micro_batches, loss_scale).backward();
    torch::Tensor dy = x.grad();
    stats_.compute_s += Since(start);

    const int ahead = l2l_ ? 0 : window_;
    for (int i = layers_ - 1; i >= 0; --i) {
      // Deferred updates run in forward order once the global norm is
      // known; staging their state needs no norm, so the first ones' reads
      // start halfway through the last backward, while the slots are idle.
      if (tail == GradTail::kMeasure && i == layers_ / 2) StageSpilled(/*forward=*/true);
      if (ahead > 0 && i - ahead >= 0) Fetch(i - ahead, /*with_input=*/true);
      Slot* slot = Ensure(i, /*with_input=*/true);
      const BufferLayout& layout = buffers_[slot->buffer].layout;
      start = Timeline::NowNs();
      torch::Tensor grad = torch::from_blob(slot->grad, {layout.count}, dev).zero_();
      if (i >= kept_from_) {
        // The slot holds the same bytes as in forward (same slot, same step).
        KeptLayer k = std::move(kept_[i]);
        k.weights.mutable_grad() = grad;
        k.output.backward(dy);
        dy = k.input.grad();
      } else {
        torch::Tensor w = Weights(*slot, dev).requires_grad_(true);
        w.mutable_grad() = grad;
        torch::Tensor xi = Checkpoint(i, dev).detach().requires_grad_(true);
        gpt::Block(w, layout, xi, heads).backward(dy);
        dy = xi.grad();
      }
      const int64_t end = Timeline::NowNs();
      stats_.compute_s += (end - start) / 1e9;
      stats_.layer_backward_s += (end - start) / 1e9 / layers_;
      if (timeline_ != nullptr) timeline_->Add({"bwd", Lane::kCompute, i + 1, start, end});
      if (i < resident_layers_) {  // stays; its gradient is accumulated there
        device_adamw_->Accumulate(dev_opt_[i + 1], slot->grad, ToDType(precision_), first);
        continue;
      }
      const int staging = static_cast<int>(slot - slots_.data());
      slot->d2h_done = HandOff(slot->buffer, slot->grad, staging, first, tail);
      Release(slot);
    }
    start = Timeline::NowNs();
    gpt::Embed(emb, emb_layout, tokens).backward(dy);
    stats_.compute_s += Since(start);
    const int slots = static_cast<int>(slots_.size());
    if (OnDevice(0)) {  // accumulated there (measured once every micro-batch is in)
      device_adamw_->Accumulate(dev_opt_[0], emb_grad_, ToDType(precision_), first);
    } else {
      emb_d2h_ = HandOff(0, emb_grad_, slots, first, tail);
    }
    fin_d2h_ = HandOff(last(), fin_grad_, slots + 1, first, tail);
    return loss_value;
  }

  const JobConfig config_;
  HostLedger* const ledger_;  // not owned; null: host memory not accounted
  std::vector<std::pair<const char*, int64_t>> charged_;  // to release
  const int window_;
  const int slots_count_;  // ExecutionPlan::slots
  const bool l2l_;
  const int layers_;
  const Precision precision_;
  const int64_t elem_;  // bytes of one device element (ComputeElementBytes)
  Device* const device_;
  FusedAdamW* const optimizer_;
  Timeline* const timeline_;
  storage::SpillStreamer* const spill_;  // null: nothing spilled
  // What H2D sends from the NVMe tier, read ahead (core/engine/tier_reader.h). A
  // failed read is kept in tier_error_, which fails the step (the layer
  // then computes with undefined weights, but the job ends with the error).
  std::unique_ptr<TierReader> tier_;
  // Whether buffer b has no update pending: its newest data is where the
  // tier reader reads it.
  const std::function<bool(int)> updated_ = [this](int b) {
    return update_task_[b] == 0 || worker_.Completed(update_task_[b]);
  };
  bool tier_planned_ = false;  // the next Step's fetch order is planned already
  TierReader::Stats tier_seen_;  // tier_->stats() at the last step's end
  storage::SpillStreamer::Traffic traffic_seen_;  // spill_->traffic() likewise
  absl::Status tier_error_;
  std::vector<HostBuffer> buffers_;   // embedding, layers..., final_norm
  LossScaleState* const state_;       // not owned

  // Device memory, allocated once by Allocate().
  // Weights, gradients and activations are in the compute precision.
  std::vector<Slot> slots_;
  void* emb_param_ = nullptr;
  void* emb_grad_ = nullptr;
  void* fin_param_ = nullptr;
  void* fin_grad_ = nullptr;
  Event emb_d2h_, fin_d2h_;  // the last D2H copies of emb_grad_ and fin_grad_
  // Activation checkpoints [L+1, micro_batch, seq_len, hidden] on the
  // device, or with host_ckpt_mode_ in host_ckpt_ and one boundary per slot
  // plus the head's on the device.
  const bool host_ckpt_mode_;
  void* ckpt_ = nullptr;
  void* host_ckpt_ = nullptr;
  std::vector<Event> boundary_d2h_;   // each device boundary's last copy to the host
  // Block layers from kept_from_ on keep their activations (no recompute).
  int kept_from_;
  std::vector<KeptLayer> kept_;
  std::vector<void*> staging_;        // host, one per slot + embedding + final norm
  std::vector<uint64_t> staging_task_;  // last worker task reading each staging buffer

  // The worker task that updates each buffer (0: none yet).
  std::vector<uint64_t> update_task_;
  // Speculative updates (offload.speculative_updates): each buffer's param,
  // exp_avg, exp_avg_sq (and 16-bit working copy) as they were before this
  // step's update.
  const bool speculate_;  // SpeculativeUpdates(): every step's updates are speculative
  std::vector<std::unique_ptr<float[]>> backup_storage_;
  std::vector<std::unique_ptr<uint16_t[]>> backup_working_;  // bf16/fp16 working copies
  std::vector<ParamBuffer> backups_;
  int64_t epoch_ = 0;  // speculative steps begun: a backup is saved once per epoch
  std::vector<int> update_order_;  // PlanUpdateOrders()
  std::vector<int> backup_order_;
  // offload.device_embedding_optimizer: buffer 0's AdamW runs on the device
  // (no worker task, backup or host copy each step).
  const bool emb_on_device_;
  // offload.device_resident_layers: block layers 0..K-1 stay on the device
  // (weights and gradient in resident_, never fetched or released) and are
  // updated there like the embedding.
  const int resident_layers_;
  std::vector<Slot> resident_;
  std::unique_ptr<DeviceAdamW> device_adamw_;  // null: every buffer is updated on the host
  std::vector<DeviceAdamWState> dev_opt_;      // per buffer; count 0: updated on the host
  bool dev_upload_ = true;   // the host's state is newer than the device's
  bool dev_dirty_ = false;   // the device's state is newer than the host's
  GradWorker worker_;
  bool profile_ = false;                    // ProfileNextStep
  std::vector<double> profiled_forward_s_;  // its layers' forward seconds

  int64_t step_ = 0;
  int64_t cut_ns_ = Timeline::NowNs();
  AdamWStep hyper_;
  StepMetrics stats_;
};

absl::StatusOr<std::unique_ptr<WindowedEngine>> WindowedEngine::Create(
    const JobConfig& config, const ExecutionPlan& plan, Device* device, FusedAdamW* optimizer,
    std::vector<HostBuffer> buffers, LossScaleState* state, Timeline* timeline,
    storage::SpillStreamer* spill, HostLedger* ledger) {
  if (plan.reference || plan.window < 1 || plan.slots < 1) {
    return absl::InvalidArgumentError(
        "the windowed engine needs an engine plan with a window and slots (core/plan/planner.h)");
  }
  const bool fp32 = config.training.precision == Precision::kFp32;
  for (const HostBuffer& b : buffers) {
    if (b.spill_item >= 0 && spill == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(b.layout.name, ": state spilled, but no SpillStreamer"));
    }
    if ((b.param == nullptr || b.sent_array >= 0) && b.spill_item < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          b.layout.name, ": masters (and what H2D sends) may be left out of host memory only "
                         "when the buffer's state is spilled"));
    }
    // H2D sends exactly one thing: the fp32 master, or the 16-bit working copy.
    const bool sent_ok = fp32 ? b.working == nullptr && (b.param == nullptr) == (b.sent_array == 2)
                              : (b.working != nullptr) != (b.sent_array == 3);
    if (!sent_ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          b.layout.name, ": H2D sends the fp32 master in fp32 and a working copy in bf16 or "
                         "fp16, each from host memory or the NVMe tier"));
    }
  }
  CHECK(state != nullptr);
  try {
    auto impl = std::make_unique<Impl>(config, plan, device, optimizer, std::move(buffers),
                                       state, timeline, spill, ledger);
    RETURN_IF_ERROR(impl->Allocate());
    return std::unique_ptr<WindowedEngine>(new WindowedEngine(std::move(impl), plan.window));
  } catch (...) {
    return StatusFromException(absl::StrCat("creating the engine (window ", plan.window, ")"));
  }
}

WindowedEngine::WindowedEngine(std::unique_ptr<Impl> impl, int window)
    : impl_(std::move(impl)), window_(window) {}
WindowedEngine::~WindowedEngine() = default;

absl::StatusOr<StepMetrics> WindowedEngine::Step(int64_t step, const BatchSource& batches) {
  RETURN_IF_ERROR(broken_);
  try {
    return impl_->Step(step, batches);
  } catch (...) {
    // The step stopped half way: its queued work and plans are unknown.
    const absl::Status error = StatusFromException(absl::StrCat("step ", step));
    broken_ = absl::FailedPreconditionError(
        absl::StrCat("the engine cannot step after an exception in ", error.message()));
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
