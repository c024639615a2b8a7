#include "core/trainer.h"

#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/checkpoint.h"
#include "core/dataset.h"
#include "core/gpt.h"
#include "core/gpt_init.h"
#include "core/gpt_layout.h"
#include "core/optim/optimizer.h"
#include "core/status_macros.h"
#include "glog/logging.h"

namespace stronghold::core {

double LearningRate(const TrainingConfig& t, int64_t step) {
  if (t.warmup_steps > 0 && step <= t.warmup_steps) {
    return t.lr * static_cast<double>(step) / t.warmup_steps;
  }
  const int64_t decay_steps = std::max<int64_t>(1, t.steps - t.warmup_steps);
  const double progress =
      std::min(1.0, static_cast<double>(step - t.warmup_steps) / decay_steps);
  return t.min_lr + 0.5 * (t.lr - t.min_lr) * (1.0 + std::cos(M_PI * progress));
}

std::string TorchVersion() { return TORCH_VERSION; }

namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// One layer's training state: flat fp32 buffers of layout.count elements.
struct LayerState {
  BufferLayout layout;
  torch::Tensor param;       // leaf, requires_grad; its .grad is `grad`
  torch::Tensor grad;
  torch::Tensor exp_avg;
  torch::Tensor exp_avg_sq;
};

}  // namespace

class Trainer::Impl {
 public:
  Impl(const JobConfig& config, const TrainerOptions& options,
       std::unique_ptr<Dataset> data)
      : config_(config), options_(options), data_(std::move(data)) {
    const std::vector<BufferLayout> layouts = ModelLayout(config.model);
    for (size_t i = 0; i < layouts.size(); ++i) {
      LayerState s;
      s.layout = layouts[i];
      const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
      s.param = torch::empty({s.layout.count}, f32);
      InitBuffer(s.layout, config.model, config.training.seed, static_cast<int>(i),
                 s.param.data_ptr<float>());
      s.param.set_requires_grad(true);
      s.grad = torch::zeros({s.layout.count}, f32);
      s.param.mutable_grad() = s.grad;
      s.exp_avg = torch::zeros({s.layout.count}, f32);
      s.exp_avg_sq = torch::zeros({s.layout.count}, f32);
      layers_.push_back(std::move(s));
    }
    const int micro = config.training.micro_batch, seq = config.model.seq_len;
    inputs_ = torch::empty({micro, seq}, torch::kInt64);
    targets_ = torch::empty({micro, seq}, torch::kInt64);
  }

  absl::Status Run(TrainerObserver* observer) {
    const TrainingConfig& t = config_.training;
    observer->OnMessage(absl::StrFormat(
        "training %d parameters, method RESIDENT, fp32, %d steps of %d sequences "
        "(%d micro-batches of %d)",
        config_.model.parameters(), t.steps, t.batch, t.batch / t.micro_batch, t.micro_batch));
    for (int64_t step = 1; step <= t.steps; ++step) {
      StepReport stats;
      absl::Status s = Step(step, observer, &stats);
      if (!s.ok()) return s;
      observer->OnStep(stats);
      const bool last = step == t.steps;
      const bool periodic = config_.checkpoint.every_steps > 0 &&
                            step % config_.checkpoint.every_steps == 0;
      const StopRequest stop = observer->StopRequested();
      if (last || periodic || stop == StopRequest::kShutdown) {
        RETURN_IF_ERROR(Checkpoint(step, observer));
      }
      if (stop == StopRequest::kShutdown) {
        return absl::AbortedError(absl::StrCat("daemon shutting down; stopped after step ", step,
                                               ", checkpoint ", CheckpointName(step)));
      }
      if (stop == StopRequest::kCancel) return absl::CancelledError("cancelled");
    }
    return absl::OkStatus();
  }

  std::vector<std::vector<float>> Weights() const {
    std::vector<std::vector<float>> out;
    for (const LayerState& s : layers_) {
      const float* p = s.param.data_ptr<float>();
      out.emplace_back(p, p + s.layout.count);
    }
    return out;
  }

 private:
  absl::Status Step(int64_t step, TrainerObserver* observer, StepReport* stats) {
    const TrainingConfig& t = config_.training;
    const auto start = Clock::now();
    for (LayerState& s : layers_) s.grad.zero_();

    // Forward and backward of every micro-batch; gradients accumulate.
    const int micro_batches = t.batch / t.micro_batch;
    double loss_sum = 0.0;
    for (int j = 0; j < micro_batches; ++j) {
      if (observer->StopRequested() == StopRequest::kCancel) {
        return absl::CancelledError("cancelled");
      }
      const int64_t first = (step - 1) * t.batch + static_cast<int64_t>(j) * t.micro_batch;
      data_->Fill(t.seed, first, t.micro_batch, inputs_.data_ptr<int64_t>(),
                  targets_.data_ptr<int64_t>());
      try {
        torch::Tensor loss = ForwardLoss();
        loss_sum += loss.item<double>();
        (loss / micro_batches).backward();
      } catch (const c10::Error& e) {
        return absl::InternalError(absl::StrCat("step ", step, ": LibTorch: ", e.what_without_backtrace()));
      }
    }
    const auto computed = Clock::now();

    // Global gradient norm over every buffer (fp64 accumulation), clip.
    double sum_sq = 0.0;
    for (const LayerState& s : layers_) {
      sum_sq += s.grad.to(torch::kFloat64).square().sum().item<double>();
    }
    const double norm = std::sqrt(sum_sq);
    if (!std::isfinite(norm)) {
      return absl::InternalError(absl::StrCat("step ", step, ": gradient norm is not finite (", norm,
                                              "); loss ", loss_sum / micro_batches));
    }
    const double clip = (t.clip_norm > 0 && norm > t.clip_norm) ? t.clip_norm / (norm + 1e-6) : 1.0;
    const double lr = LearningRate(t, step);
    AdamWStep hyper;
    hyper.lr = static_cast<float>(lr);
    hyper.beta1 = static_cast<float>(t.beta1);
    hyper.beta2 = static_cast<float>(t.beta2);
    hyper.eps = static_cast<float>(t.eps);
    hyper.weight_decay = static_cast<float>(t.weight_decay);
    hyper.step = step;
    hyper.grad_scale = static_cast<float>(clip);
    for (LayerState& s : layers_) {
      optimizer_.Step({s.param.data_ptr<float>(), s.exp_avg.data_ptr<float>(),
                       s.exp_avg_sq.data_ptr<float>(), s.grad.data_ptr<float>(),
                       s.layout.count, s.layout.decay_count},
                      hyper);
    }
    const auto end = Clock::now();

    stats->step = step;
    stats->steps = t.steps;
    stats->loss = loss_sum / micro_batches;
    stats->lr = lr;
    stats->grad_norm = norm;
    stats->step_s = Seconds(start, end);
    stats->compute_s = Seconds(start, computed);
    stats->optimizer_s = Seconds(computed, end);
    stats->samples_per_s = t.batch / stats->step_s;
    stats->tokens_per_s = stats->samples_per_s * config_.model.seq_len;
    stats->model_tflops = config_.model.model_flops_per_step(t.batch) / stats->step_s / 1e12;
    return absl::OkStatus();
  }

  torch::Tensor ForwardLoss() {
    const LayerState& emb = layers_.front();
    const LayerState& fin = layers_.back();
    torch::Tensor x = gpt::Embed(emb.param, emb.layout, inputs_);
    for (size_t i = 1; i + 1 < layers_.size(); ++i) {
      x = gpt::Block(layers_[i].param, layers_[i].layout, x, config_.model.heads);
    }
    return gpt::HeadLoss(fin.param, fin.layout, emb.param, emb.layout, x, targets_);
  }

  absl::Status Checkpoint(int64_t step, TrainerObserver* observer) {
    std::vector<BufferLayout> layouts;
    std::vector<const float*> params;
    for (const LayerState& s : layers_) {
      layouts.push_back(s.layout);
      params.push_back(s.param.data_ptr<float>());
    }
    const std::string dir = (std::filesystem::path(options_.job_dir) / "checkpoints").string();
    const std::map<std::string, std::string> metadata = {
        {"format", "pt"},
        {"step", absl::StrCat(step)},
        {"layers", absl::StrCat(config_.model.layers)},
        {"hidden", absl::StrCat(config_.model.hidden)},
        {"heads", absl::StrCat(config_.model.heads)},
        {"seq_len", absl::StrCat(config_.model.seq_len)},
        {"vocab", absl::StrCat(config_.model.vocab)},
    };
    ASSIGN_OR_RETURN(std::string name, WriteCheckpoint(dir, step, layouts, params, metadata));
    RETURN_IF_ERROR(PruneCheckpoints(dir, config_.checkpoint.keep_last));
    observer->OnCheckpoint(name);
    return absl::OkStatus();
  }

  const JobConfig config_;
  const TrainerOptions options_;
  std::unique_ptr<Dataset> data_;
  std::vector<LayerState> layers_;  // embedding, blocks..., final_norm
  torch::Tensor inputs_;            // [micro_batch, seq_len] int64
  torch::Tensor targets_;           // [micro_batch, seq_len] int64
  ReferenceAdamW optimizer_;
};

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const JobConfig& config,
                                                         const TrainerOptions& options) {
  if (config.offload.method != OffloadMethod::kResident) {
    return absl::UnimplementedError(
        "offload.method: only RESIDENT is implemented so far (L2L and STRONGHOLD come with "
        "the windowed offload engine)");
  }
  if (config.training.precision != Precision::kFp32) {
    return absl::UnimplementedError("training.precision: only FP32 is implemented so far");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Dataset> data,
                   Dataset::Open(config.data, config.model.padded_vocab(), config.model.seq_len));
  try {
    return std::unique_ptr<Trainer>(
        new Trainer(std::make_unique<Impl>(config, options, std::move(data))));
  } catch (const c10::Error& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate the model: ", e.what_without_backtrace()));
  }
}

Trainer::Trainer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Trainer::~Trainer() = default;

absl::Status Trainer::Run(TrainerObserver* observer) {
  try {
    return impl_->Run(observer);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("LibTorch: ", e.what_without_backtrace()));
  }
}

std::vector<std::vector<float>> Trainer::Weights() const { return impl_->Weights(); }

}  // namespace stronghold::core
