#include "core/train/trainer.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/checkpoint/checkpoint.h"
#include "core/checkpoint/checkpoint_reader.h"
#include "core/data/dataset.h"
#include "core/engine/engine.h"
#include "core/model/gpt.h"
#include "core/model/gpt_init.h"
#include "core/model/gpt_layout.h"
#include "core/device/host_device.h"
#include "core/engine/loss_scale.h"
#include "core/plan/host_ledger.h"
#include "core/plan/planner.h"
#include "core/train/ssd_tier.h"
#include "core/util/exception_status.h"
#include "core/util/status_macros.h"
#include "glog/logging.h"

namespace stronghold::core {

std::string TorchVersion() { return TORCH_VERSION; }

namespace {

double Since(int64_t start_ns) { return (Timeline::NowNs() - start_ns) / 1e9; }

// One buffer's host training state: flat fp32 tensors of layout.count.
// Undefined where the state is on the NVMe tier: the moments of a spilled
// layer, its master in bf16/fp16 (SsdTier::MasterSpilled) and perhaps its
// working copy (SsdTier::WeightSpilled).
struct LayerState {
  BufferLayout layout;
  torch::Tensor param;  // leaf, requires_grad (RESIDENT); its .grad is `grad`
  torch::Tensor grad;
  torch::Tensor exp_avg;
  torch::Tensor exp_avg_sq;
  // bf16/fp16 only: the weights in the compute precision, written by the
  // optimizer with each update, sent to the device (2 bytes per parameter).
  torch::Tensor working;

  ParamBuffer buffer() const {
    ParamBuffer b;
    b.param = param.data_ptr<float>();
    b.exp_avg = exp_avg.data_ptr<float>();
    b.exp_avg_sq = exp_avg_sq.data_ptr<float>();
    b.grad = grad.data_ptr<float>();
    b.count = layout.count;
    b.decay_count = layout.decay_count;
    return b;
  }
};

// The job's data: the token file the caller opened (TrainerOptions::
// data_fd), else data.source as a path (or the builtin corpus).
absl::StatusOr<std::unique_ptr<Dataset>> OpenData(const JobConfig& config,
                                                  const TrainerOptions& options) {
  const int64_t vocab = config.model.padded_vocab();
  if (options.data_fd < 0 || config.data.source == "builtin") {
    return Dataset::Open(config.data, vocab, config.model.seq_len);
  }
  UniqueFd file = UniqueFd::Dup(options.data_fd);
  if (!file.valid()) {
    return absl::InternalError(absl::StrCat("data.source: cannot duplicate the opened token "
                                            "file's descriptor: ", strerror(errno)));
  }
  return Dataset::OpenFile(std::move(file), config.data, vocab, config.model.seq_len);
}

const char* MethodName(OffloadMethod m) {
  switch (m) {
    case OffloadMethod::kL2L: return "L2L";
    case OffloadMethod::kStronghold: return "STRONGHOLD";
    default: return "RESIDENT";
  }
}

}  // namespace

class Trainer::Impl {
 public:
  Impl(const JobConfig& config, const ExecutionPlan& plan, const TrainerOptions& options,
       std::unique_ptr<Dataset> data, std::unique_ptr<FusedAdamW> optimizer)
      : config_(config), plan_(plan), options_(options), data_(std::move(data)),
        optimizer_(std::move(optimizer)), ledger_(plan), tier_(config, plan, options) {
    const int micro = config.training.micro_batch, seq = config.model.seq_len;
    inputs_ = torch::empty({micro, seq}, torch::kInt64);
    targets_ = torch::empty({micro, seq}, torch::kInt64);
  }

  ~Impl() {
    engine_.reset();  // frees its device memory before the device goes
  }

  // Sets up what the plan runs: the host state, and the windowed engine, or
  // for the reference (RESIDENT in fp32 on the host device) plain autograd,
  // which needs nothing more. Elsewhere RESIDENT is the engine with every
  // layer kept: plain autograd would need its own copy of the
  // mixed-precision machinery (working copies, fp32 accumulation, loss
  // scale, skipped steps); with W = L the engine is that reference, and the
  // fp32 parity tests (plain autograd == engine, bit for bit) make the
  // engine trustworthy as one.
  absl::Status Prepare() {
    if (!plan_.fits) return absl::ResourceExhaustedError(plan_.reason);
    const bool gpu = options_.device != nullptr && options_.device->name() != "cpu";
    RETURN_IF_ERROR(tier_.CheckPlan());
    if (plan_.reference && gpu) {
      return absl::InvalidArgumentError(
          "the reference plan (RESIDENT, fp32) runs on the host device, not on a GPU");
    }
    if (!plan_.reference) {
      device_ = options_.device;
      if (device_ == nullptr) {
        owned_device_ = std::make_unique<HostDevice>(
            plan_.budget_device_bytes > 0 ? plan_.budget_device_bytes : INT64_MAX);
        device_ = owned_device_.get();
      }
    }
    RETURN_IF_ERROR(AllocateHostState(gpu));
    InitWeights();
    if (plan_.reference) {
      for (LayerState& s : layers_) {
        s.param.set_requires_grad(true);
        s.param.mutable_grad() = s.grad;  // backward accumulates in place
      }
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(tier_.Open(&ledger_));
    return MakeEngine();
  }

  // Every buffer's host state, each array charged to its planned buffer
  // (core/plan/host_ledger.h) before it is allocated. Undefined where the
  // NVMe tier holds it. On a GPU what H2D copies every step is pinned (the
  // blocks come from the device's cache, which keeps them for the next job,
  // core/device/host_buffer_cache.h), which makes those copies asynchronous
  // and full speed: the fp32 masters and gradients, or in bf16/fp16 the
  // working copy (unless on the NVMe tier: the engine stages it in pinned
  // memory).
  absl::Status AllocateHostState(bool gpu) {
    const bool fp32 = config_.training.precision == Precision::kFp32;
    // The reference's state is the (host) device's; the engine's the host's.
    const std::string prefix = plan_.reference ? "" : "host.";
    const std::vector<BufferLayout> layouts = ModelLayout(config_.model);
    for (size_t b = 0; b < layouts.size(); ++b) {
      const int i = static_cast<int>(b);
      LayerState s;
      s.layout = layouts[b];
      const int64_t n = s.layout.count;
      if (!tier_.MasterSpilled(i)) {
        ASSIGN_OR_RETURN(s.param, Allocate(prefix + "weights.fp32", n, torch::kFloat32,
                                           gpu && fp32, /*zero=*/false));
      }
      ASSIGN_OR_RETURN(s.grad, Allocate(prefix + "grads.fp32", n, torch::kFloat32, gpu && fp32,
                                        /*zero=*/true));
      if (!tier_.Spilled(i)) {
        ASSIGN_OR_RETURN(s.exp_avg, Allocate(prefix + "adam.exp_avg.fp32", n, torch::kFloat32,
                                             false, /*zero=*/true));
        ASSIGN_OR_RETURN(s.exp_avg_sq, Allocate(prefix + "adam.exp_avg_sq.fp32", n,
                                                torch::kFloat32, false, /*zero=*/true));
      }
      if (!fp32 && !tier_.WeightSpilled(i)) {
        // 16-bit raw storage: only our converters (core/optim/float16.h)
        // read and write it.
        ASSIGN_OR_RETURN(s.working,
                         Allocate(absl::StrCat(prefix, "weights.",
                                               PrecisionName(config_.training.precision)),
                                  n, torch::kInt16, gpu, /*zero=*/false));
      }
      layers_.push_back(std::move(s));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<torch::Tensor> Allocate(const std::string& name, int64_t count,
                                         torch::ScalarType dtype, bool pinned, bool zero) {
    const auto options = torch::TensorOptions().dtype(dtype);
    RETURN_IF_ERROR(ledger_.Charge(name, count * static_cast<int64_t>(c10::elementSize(dtype))));
    if (!pinned) return zero ? torch::zeros({count}, options) : torch::empty({count}, options);
    ASSIGN_OR_RETURN(void* p, device_->AllocateHost(count * c10::elementSize(dtype)));
    Device* device = device_;  // outlives the job's tensors (the daemon's)
    torch::Tensor t =
        torch::from_blob(p, {count}, [device](void* q) { device->FreeHost(q); }, options);
    if (zero) t.zero_();  // the cache hands out used blocks
    return t;
  }

  // The initial weights (of spilled masters: SsdTier::Open). Each buffer is
  // its own counter-based stream (core/model/gpt_init.h), so buffers are
  // drawn in parallel with the same result; serially, a log, a sine and a
  // cosine per value add up for the seed's 1B-parameter models, which
  // gpu_bench creates several times.
  void InitWeights() {
    std::atomic<size_t> next{0};
    std::vector<std::thread> pool;
    const size_t threads =
        std::min<size_t>(layers_.size(), std::max(1u, std::thread::hardware_concurrency()));
    for (size_t t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (size_t i = next++; i < layers_.size(); i = next++) {
          if (!layers_[i].param.defined()) continue;
          InitBuffer(layers_[i].layout, config_.model, config_.training.seed,
                     static_cast<int>(i), layers_[i].param.data_ptr<float>());
        }
      });
    }
    for (std::thread& t : pool) t.join();
  }

  // The host state as checkpoints see it, with the spilled layers' state
  // streamed through the tier's staging buffer (SsdTier::StageSpilled).
  std::vector<CheckpointBuffer> Buffers() {
    std::vector<CheckpointBuffer> out;
    for (int i = 0; i < static_cast<int>(layers_.size()); ++i) {
      LayerState& s = layers_[i];
      if (!tier_.Spilled(i)) {
        out.push_back({s.layout, s.param.data_ptr<float>(), s.exp_avg.data_ptr<float>(),
                       s.exp_avg_sq.data_ptr<float>()});
        continue;
      }
      out.push_back(tier_.SpilledCheckpointBuffer(
          i, s.param.defined() ? s.param.data_ptr<float>() : nullptr));
    }
    return out;
  }

  // The working copies follow the masters (after the initialization, a
  // Restore() or a test's edit of the masters); the optimizer keeps them so.
  // Spilled masters are read from the tier one layer at a time, and working
  // copies there are written through one layer-sized buffer.
  absl::Status RefreshWorkingCopies() {
    if (config_.training.precision == Precision::kFp32) return absl::OkStatus();
    std::vector<float> master;
    std::vector<int16_t> tier_working;
    for (int i = 0; i < static_cast<int>(layers_.size()); ++i) {
      LayerState& s = layers_[i];
      const float* p = nullptr;
      if (tier_.MasterSpilled(i)) {
        master.resize(s.layout.count);
        RETURN_IF_ERROR(tier_.ReadMaster(i, master.data()));
        p = master.data();
      } else {
        p = s.param.data_ptr<float>();
      }
      if (!tier_.WeightSpilled(i)) {
        ToComputePrecision(p, s.layout.count, config_.training.precision, s.working.data_ptr());
        continue;
      }
      tier_working.resize(s.layout.count);
      ToComputePrecision(p, s.layout.count, config_.training.precision, tier_working.data());
      RETURN_IF_ERROR(tier_.WriteWorking(i, tier_working.data()));
    }
    return absl::OkStatus();
  }

  absl::Status Run(TrainerObserver* observer) {
    const TrainingConfig& t = config_.training;
    observer->OnMessage(absl::StrFormat(
        "training %d parameters, method %s, %s, %d steps of %d sequences (%d micro-batches of "
        "%d)%s",
        config_.model.parameters(), MethodName(config_.offload.method),
        PrecisionName(t.precision), t.steps, t.batch,
        t.batch / t.micro_batch, t.micro_batch,
        engine_ ? absl::StrCat(", window ", engine_->window(),
                               plan_.automatic_window ? " (profiling)" : "",
                               ActivationsText(plan_, config_.model.layers), " on ",
                               device_->name(), " with a budget of ", device_->budget_bytes(),
                               " bytes")
                : ""));
    if (restore_failed_) {
      return absl::FailedPreconditionError(
          "the last Restore() failed: the host state is not a checkpoint's; not training from it");
    }
    if (engine_) {
      RETURN_IF_ERROR(engine_->Drain());
      engine_->StopReadingAhead();  // RefreshWorkingCopies writes the tier
    }
    RETURN_IF_ERROR(RefreshWorkingCopies());
    for (int64_t step = start_step_ + 1; step <= t.steps; ++step) {
      StepMetrics report;
      const int64_t start = Timeline::NowNs();
      absl::Status s = engine_ ? EngineStep(step, observer, &report)
                               : ReferenceStep(step, observer, &report);
      if (!s.ok()) return s;
      report.step = step;
      report.steps = t.steps;
      report.lr = LearningRate(t, step);
      report.step_s = Since(start);
      report.samples_per_s = t.batch / report.step_s;
      report.tokens_per_s = report.samples_per_s * config_.model.seq_len;
      report.model_tflops = config_.model.model_flops_per_step(t.batch) / report.step_s / 1e12;
      observer->OnStep(report);
      if (engine_ && Traced(step)) observer->OnTrace(step, timeline_.ToChromeTraceJson());

      const bool last = step == t.steps;
      const bool periodic = config_.checkpoint.every_steps > 0 &&
                            step % config_.checkpoint.every_steps == 0;
      const StopRequest stop = observer->StopRequested();
      const bool stop_with_checkpoint =
          stop == StopRequest::kShutdown || stop == StopRequest::kCheckpointAndCancel;
      if (last || periodic || stop_with_checkpoint) {
        RETURN_IF_ERROR(Checkpoint(step, observer));
      }
      if (stop == StopRequest::kShutdown) {
        return absl::AbortedError(absl::StrCat("daemon shutting down; stopped after step ", step,
                                               ", checkpoint ", CheckpointName(step)));
      }
      if (stop == StopRequest::kCheckpointAndCancel) {
        return absl::CancelledError(absl::StrCat("stopped after step ", step, ", checkpoint ",
                                                 CheckpointName(step)));
      }
      if (stop == StopRequest::kCancel) return absl::CancelledError("cancelled");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Restore(const std::string& checkpoint_dir) {
    if (engine_) {
      RETURN_IF_ERROR(engine_->Drain());
      engine_->StopReadingAhead();  // the restore writes the tier
    }
    restore_failed_ = true;  // until every byte is in
    tier_.StageSpilled();
    absl::StatusOr<CheckpointManifest> loaded =
        LoadCheckpoint(checkpoint_dir, config_.model, Buffers());
    tier_.UnstageSpilled();
    ASSIGN_OR_RETURN(const CheckpointManifest manifest, std::move(loaded));
    restore_failed_ = false;
    start_step_ = manifest.position.step;
    // The loss scale continues where it was; a checkpoint without one (fp32,
    // bf16, or older) starts fp16's policy afresh.
    loss_scale_ = InitialLossScale(config_.training.precision);
    loss_scale_.optimizer_step = manifest.position.optimizer_step;
    if (config_.training.precision == Precision::kFp16 && manifest.position.loss_scale > 0) {
      loss_scale_.scale = manifest.position.loss_scale;
      loss_scale_.good_steps = manifest.position.loss_scale_good_steps;
    }
    return start_step_;
  }

  float* HostWeights(int index) {
    CHECK(!tier_.MasterSpilled(index)) << "buffer " << index << "'s master is on the NVMe tier";
    return layers_.at(index).param.data_ptr<float>();
  }
  void SetLossScale(double scale) { loss_scale_.scale = scale; }
  const HostLedger& ledger() const { return ledger_; }

  absl::StatusOr<std::vector<std::vector<float>>> Weights() {
    if (engine_) RETURN_IF_ERROR(engine_->Drain());
    std::vector<std::vector<float>> out;
    for (int i = 0; i < static_cast<int>(layers_.size()); ++i) {
      const LayerState& s = layers_[i];
      if (tier_.MasterSpilled(i)) {
        out.emplace_back(s.layout.count);
        RETURN_IF_ERROR(tier_.ReadMaster(i, out.back().data()));
        continue;
      }
      const float* p = s.param.data_ptr<float>();
      out.emplace_back(p, p + s.layout.count);
    }
    return out;
  }

 private:
  bool Traced(int64_t step) const {
    return step <= 2 || (options_.trace_every > 0 && step % options_.trace_every == 0);
  }

  static std::string ActivationsText(const ExecutionPlan& p, int layers) {
    return absl::StrCat(", ", std::max(0, p.kept_activation_layers), " of ", layers,
                        " layers keep their activations (the others are recomputed)",
                        p.host_checkpoints ? ", activation checkpoints on the host" : "");
  }

  // (Re)builds the engine for plan_ (the automatic window's settled plan
  // after profiling).
  absl::Status MakeEngine() {
    std::vector<HostBuffer> buffers;
    for (size_t i = 0; i < layers_.size(); ++i) {
      LayerState& s = layers_[i];
      const bool spilled = tier_.Spilled(static_cast<int>(i));
      buffers.push_back({s.layout, s.param.defined() ? s.param.data_ptr<float>() : nullptr,
                         s.grad.data_ptr<float>(),
                         spilled ? nullptr : s.exp_avg.data_ptr<float>(),
                         spilled ? nullptr : s.exp_avg_sq.data_ptr<float>(),
                         spilled ? static_cast<int>(i) - 1 : -1,
                         s.working.defined() ? s.working.data_ptr() : nullptr,
                         tier_.SentArray(static_cast<int>(i))});
    }
    engine_.reset();
    ASSIGN_OR_RETURN(engine_, WindowedEngine::Create(config_, plan_, device_,
                                                     optimizer_.get(), std::move(buffers),
                                                     &loss_scale_, &timeline_,
                                                     tier_.streamer(), &ledger_));
    return absl::OkStatus();
  }

  absl::Status FillBatch(int64_t step, int micro, int64_t* inputs, int64_t* targets) {
    const TrainingConfig& t = config_.training;
    const int64_t first = (step - 1) * t.batch + static_cast<int64_t>(micro) * t.micro_batch;
    return data_->Fill(t.seed, first, t.micro_batch, inputs, targets);
  }

  absl::Status EngineStep(int64_t step, TrainerObserver* observer, StepMetrics* metrics) {
    // Keep the previous step's deferred updates: they run during this one
    // (or, when the automatic window rebuilt the engine, while the old one
    // drained).
    timeline_.DropBefore(trace_cut_ns_);
    if (plan_.automatic_window && step == start_step_ + 1) engine_->ProfileNextStep();  // ChooseWindow's
    ASSIGN_OR_RETURN(*metrics, engine_->Step(step, [&](int micro, int64_t* in, int64_t* tg) {
      if (observer->StopRequested() == StopRequest::kCancel) {
        return absl::CancelledError("cancelled");
      }
      return FillBatch(step, micro, in, tg);
    }));
    StepMetrics& s = *metrics;
    trace_cut_ns_ = engine_->trace_cut_ns();
    // The engine filled its fields; these are the trainer's.
    s.window = engine_->window();
    s.device_peak_bytes = device_->peak_bytes();
    if (s.skipped) {
      observer->OnMessage(absl::StrFormat(
          "step %d: fp16 gradient overflow at loss scale %g; step skipped (no update), loss "
          "scale now %g",
          step, s.loss_scale, loss_scale_.scale));
    }
    if (plan_.automatic_window && step == start_step_ + 1) {
      RETURN_IF_ERROR(ChooseWindow(s, observer));
    }
    return absl::OkStatus();
  }

  // The smallest window whose prefetch hides a layer's copy behind the
  // compute of the layers before it: W * forward(layer) >= H2D(layer), with
  // 25% margin, within what the budget allows. forward(layer) is the median
  // layer of the profiling step with the compute drained after each layer
  // (ProfileNextStep), H2D(layer) the copies' own times (GPU-timed on CUDA).
  absl::Status ChooseWindow(const StepMetrics& s, TrainerObserver* observer) {
    const int max_window = engine_->window();
    double h2d = 0;  // the measured copy time of one layer, from the timeline
    int copies = 0;
    for (const Span& span : timeline_.spans()) {
      if (span.lane == Lane::kH2D && span.layer > 0 && span.layer <= config_.model.layers) {
        h2d += (span.end_ns - span.start_ns) / 1e9;
        ++copies;
      }
    }
    h2d = copies > 0 ? h2d / copies : 0;
    const double fwd = std::max(s.layer_forward_s, 1e-9);
    int window = std::max(1, static_cast<int>(std::ceil(1.25 * h2d / fwd)));
    std::string why = "copies hidden";
    if (window > max_window) {
      window = max_window;
      why = "copies are bandwidth-bound: the largest window that fits is used";
    }
    observer->OnMessage(absl::StrFormat(
        "window %d chosen (largest that fits: %d): per layer forward %.2f ms, backward %.2f ms, "
        "H2D %.2f ms, AdamW %.2f ms; %s%s",
        window, max_window, 1e3 * s.layer_forward_s, 1e3 * s.layer_backward_s, 1e3 * h2d,
        1e3 * s.layer_optimizer_s, why,
        ActivationsText(SettleWindow(config_, plan_, window), config_.model.layers)));
    if (window != max_window) {
      plan_ = SettleWindow(config_, plan_, window);
      RETURN_IF_ERROR(MakeEngine());
    }
    return absl::OkStatus();
  }

  absl::Status ReferenceStep(int64_t step, TrainerObserver* observer, StepMetrics* report) {
    const TrainingConfig& t = config_.training;
    const int64_t start = Timeline::NowNs();
    for (LayerState& s : layers_) s.grad.zero_();
    const int micro_batches = t.batch / t.micro_batch;
    double loss_sum = 0.0;
    for (int j = 0; j < micro_batches; ++j) {
      if (observer->StopRequested() == StopRequest::kCancel) return absl::CancelledError("cancelled");
      RETURN_IF_ERROR(
          FillBatch(step, j, inputs_.data_ptr<int64_t>(), targets_.data_ptr<int64_t>()));
      try {
        const LayerState& emb = layers_.front();
        const LayerState& fin = layers_.back();
        torch::Tensor x = gpt::Embed(emb.param, emb.layout, inputs_);
        for (size_t i = 1; i + 1 < layers_.size(); ++i) {
          x = gpt::Block(layers_[i].param, layers_[i].layout, x, config_.model.heads);
        }
        torch::Tensor loss = gpt::HeadLoss(fin.param, fin.layout, emb.param, emb.layout, x, targets_);
        loss_sum += loss.item<double>();
        (loss / micro_batches).backward();
      } catch (...) {
        return StatusFromException(absl::StrCat("step ", step));
      }
    }
    report->compute_s = Since(start);

    const int64_t opt_start = Timeline::NowNs();
    double sum_sq = 0.0;  // buffer order, as the engine sums it
    std::vector<StepStats> grads;
    for (const LayerState& s : layers_) {
      ASSIGN_OR_RETURN(StepFuture f, optimizer_->SubmitMeasure(s.buffer(), 1.0f));
      grads.push_back(f.Wait());
      sum_sq += grads.back().grad_sq_sum;
    }
    const double norm = std::sqrt(sum_sq);
    if (!std::isfinite(norm)) {
      std::vector<BufferLayout> layouts;
      for (const LayerState& s : layers_) layouts.push_back(s.layout);
      return NonFiniteGradient(step, layouts, grads);
    }
    const AdamWStep hyper =
        AdamWHyper(t, step, loss_scale_.optimizer_step + 1, ClipFactor(t, norm));
    for (LayerState& s : layers_) optimizer_->Step(s.buffer(), hyper);
    AdvanceLossScale(t.precision, /*finite=*/true, &loss_scale_);
    report->optimizer_s = Since(opt_start);
    report->loss = loss_sum / micro_batches;
    report->grad_norm = norm;
    return absl::OkStatus();
  }

  absl::Status Checkpoint(int64_t step, TrainerObserver* observer) {
    if (engine_) RETURN_IF_ERROR(engine_->Drain());  // host masters current
    const TrainingConfig& t = config_.training;
    TrainingPosition position;
    position.step = step;
    position.optimizer_step = loss_scale_.optimizer_step;  // below step by skipped fp16 steps
    if (t.precision == Precision::kFp16) {
      position.loss_scale = loss_scale_.scale;
      position.loss_scale_good_steps = loss_scale_.good_steps;
    }
    position.seed = t.seed;
    position.batch = t.batch;
    position.next_sample = step * t.batch;  // FillBatch: samples of step s start at (s-1)*batch
    position.lr = LearningRate(t, step);
    position.next_lr = LearningRate(t, step + 1);
    const std::string dir = (std::filesystem::path(options_.job_dir) / "checkpoints").string();
    tier_.StageSpilled();
    absl::StatusOr<std::string> written =
        WriteCheckpoint(dir, config_.model, position, Buffers(), options_.job_spec_json);
    tier_.UnstageSpilled();
    ASSIGN_OR_RETURN(std::string name, std::move(written));
    RETURN_IF_ERROR(PruneCheckpoints(dir, config_.checkpoint.keep_last));
    observer->OnCheckpoint(name);
    return absl::OkStatus();
  }

  const JobConfig config_;
  // The execution plan; an automatic window's is settled after profiling.
  ExecutionPlan plan_;
  const TrainerOptions options_;
  std::unique_ptr<Dataset> data_;
  std::unique_ptr<FusedAdamW> optimizer_;
  // The host memory of the training state, charged against the plan.
  HostLedger ledger_;
  std::vector<LayerState> layers_;  // embedding, blocks..., final_norm
  torch::Tensor inputs_;            // [micro_batch, seq_len] int64
  torch::Tensor targets_;           // [micro_batch, seq_len] int64

  // Windowed methods only.
  Device* device_ = nullptr;
  std::unique_ptr<Device> owned_device_;
  // The NVMe tier (options_.ssd_layers > 0), destroyed after the engine.
  SsdTier tier_;
  Timeline timeline_;
  std::unique_ptr<WindowedEngine> engine_;
  int64_t trace_cut_ns_ = 0;  // spans that ended before belong to earlier steps

  // Resume: the last step the restored checkpoint finished (0 = fresh).
  int64_t start_step_ = 0;
  // fp16's loss scale and AdamW's update count: checkpointed, and kept
  // across engine rebuilds.
  LossScaleState loss_scale_ = InitialLossScale(config_.training.precision);
  bool restore_failed_ = false;
};

// No exception leaves the public methods: each becomes a status with
// context (core/util/exception_status.h), a job's failure, not the daemon's.
absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const JobConfig& config,
                                                         const ExecutionPlan& plan,
                                                         const TrainerOptions& options) {
  try {
    ASSIGN_OR_RETURN(std::unique_ptr<Dataset> data, OpenData(config, options));
    FusedAdamWOptions opt;
    opt.threads = options.optimizer_threads;
    ASSIGN_OR_RETURN(std::unique_ptr<FusedAdamW> optimizer, FusedAdamW::Create(opt));
    auto impl =
        std::make_unique<Impl>(config, plan, options, std::move(data), std::move(optimizer));
    RETURN_IF_ERROR(impl->Prepare());
    return std::unique_ptr<Trainer>(new Trainer(std::move(impl)));
  } catch (...) {
    return StatusFromException("creating the trainer (host state, device buffers)");
  }
}

Trainer::Trainer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Trainer::~Trainer() = default;

absl::Status Trainer::Run(TrainerObserver* observer) {
  try {
    return impl_->Run(observer);
  } catch (...) {
    return StatusFromException("training");
  }
}

absl::StatusOr<int64_t> Trainer::Restore(const std::string& checkpoint_dir) {
  try {
    return impl_->Restore(checkpoint_dir);
  } catch (...) {
    return StatusFromException(absl::StrCat("restoring ", checkpoint_dir));
  }
}

absl::StatusOr<std::vector<std::vector<float>>> Trainer::Weights() {
  try {
    return impl_->Weights();
  } catch (...) {
    return StatusFromException("reading the weights");
  }
}

float* TrainerTestPeer::HostWeights(Trainer& trainer, int index) {
  return trainer.impl_->HostWeights(index);
}

void TrainerTestPeer::SetLossScale(Trainer& trainer, double scale) {
  trainer.impl_->SetLossScale(scale);
}

std::vector<std::string> TrainerTestPeer::HostLedgerDifferences(Trainer& trainer) {
  return trainer.impl_->ledger().Differences();
}

}  // namespace stronghold::core
