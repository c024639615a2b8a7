// The trainer's run loop: Create (data, optimizer, host state, engine),
// Run (steps, the automatic window's rebuild, checkpoints, stop requests),
// Restore, and the engine step. What it delegates: the host state
// (core/train/host_state.h), the reference step (core/train/reference_step.h),
// the automatic window's choice (core/train/auto_window.h), the NVMe tier
// (core/train/ssd_tier.h).
#include "core/train/trainer.h"

#include <torch/version.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/checkpoint/checkpoint.h"
#include "core/checkpoint/checkpoint_reader.h"
#include "core/data/dataset.h"
#include "core/device/host_device.h"
#include "core/dist/communicator.h"
#include "core/engine/engine.h"
#include "core/engine/loss_scale.h"
#include "core/model/gpt_layout.h"
#include "core/plan/fit.h"
#include "core/plan/host_ledger.h"
#include "core/plan/planner.h"
#include "core/plan/shard.h"
#include "core/train/auto_window.h"
#include "core/train/host_state.h"
#include "core/train/reference_step.h"
#include "core/train/sharded_checkpoint.h"
#include "core/train/ssd_tier.h"
#include "core/util/exception_status.h"
#include "core/util/status_macros.h"
#include "glog/logging.h"

namespace stronghold::core {

std::string TorchVersion() { return TORCH_VERSION; }

namespace {

double Since(int64_t start_ns) { return (Timeline::NowNs() - start_ns) / 1e9; }

// The job's data: the files the caller opened (TrainerOptions::data_fd,
// data_bin_fd), else data.source as a path (or the builtin corpus).
absl::StatusOr<std::unique_ptr<Dataset>> OpenData(
    const JobConfig& config, const TrainerOptions& options) {
  const int64_t vocab = config.model.padded_vocab();
  DataFiles files;
  if (options.data_fd >= 0 && config.data.source != "builtin") {
    for (auto [fd, out] : {std::pair{options.data_fd, &files.file},
                           std::pair{options.data_bin_fd, &files.bin}}) {
      if (fd < 0) continue;
      *out = UniqueFd::Dup(fd);
      if (!out->valid()) {
        return absl::InternalError(absl::StrCat(
            "data.source: cannot duplicate an opened data file's descriptor: ",
            strerror(errno)));
      }
    }
  }
  return Dataset::OpenFiles(std::move(files), config.data, vocab,
                            config.model.seq_len);
}

// Each buffer's slice for this rank (core/plan/shard.h), cut in the
// optimizer's chunks of the whole buffer; empty for one rank.
std::vector<BufferShard> Shards(const JobConfig& config,
                                const FusedAdamW& optimizer,
                                const Communicator* comm) {
  std::vector<BufferShard> shards;
  if (comm == nullptr || comm->world_size() <= 1) return shards;
  for (const BufferLayout& layout : ModelLayout(config.model)) {
    shards.push_back(ShardBuffer(layout.count,
                                 optimizer.ChunkElements(layout.count),
                                 comm->world_size(), comm->rank()));
  }
  return shards;
}

const char* MethodName(OffloadMethod m) {
  switch (m) {
    case OffloadMethod::kL2L:
      return "L2L";
    case OffloadMethod::kStronghold:
      return "STRONGHOLD";
    default:
      return "RESIDENT";
  }
}

}  // namespace

class Trainer::Impl {
 public:
  Impl(const JobConfig& config, const ExecutionPlan& plan,
       const TrainerOptions& options, std::unique_ptr<Dataset> data,
       std::unique_ptr<FusedAdamW> optimizer)
      : config_(config),
        plan_(plan),
        options_(options),
        data_(std::move(data)),
        optimizer_(std::move(optimizer)),
        shards_(Shards(config, *optimizer_, options.comm)),
        ledger_(plan),
        host_(config, &tier_, shards_),
        tier_(config, plan, options, shards_) {}

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
    RETURN_IF_ERROR(CheckFits(plan_));
    RETURN_IF_ERROR(CheckDataParallel());
    const bool gpu =
        options_.device != nullptr && options_.device->name() != "cpu";
    RETURN_IF_ERROR(tier_.CheckPlan());
    if (plan_.reference && gpu) {
      return absl::InvalidArgumentError(
          "the reference plan (RESIDENT, fp32) runs on the host device, not on "
          "a GPU");
    }
    if (!plan_.reference) {
      device_ = options_.device;
      if (device_ == nullptr) {
        owned_device_ = std::make_unique<HostDevice>(
            plan_.budget_device_bytes > 0 ? plan_.budget_device_bytes
                                          : INT64_MAX);
        device_ = owned_device_.get();
      }
    }
    RETURN_IF_ERROR(host_.Allocate(plan_.reference, gpu, &ledger_, device_));
    host_.InitWeights();
    if (plan_.reference) {
      host_.TrackGradients();
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(tier_.Open(&ledger_));
    return MakeEngine();
  }

  absl::Status Run(TrainerObserver* observer) {
    const TrainingConfig& t = config_.training;
    observer->OnMessage(absl::StrFormat(
        "training %d parameters, method %s, %s, %d steps of %d sequences (%d "
        "micro-batches of %d)%s",
        config_.model.parameters(), MethodName(config_.offload.method),
        PrecisionName(t.precision), t.steps, t.batch, t.batch / t.micro_batch,
        t.micro_batch,
        engine_ ? absl::StrCat(", window ", engine_->window(),
                               plan_.automatic_window ? " (profiling)" : "",
                               ActivationsText(plan_, config_.model.layers),
                               " on ", device_->name(), " with a budget of ",
                               device_->budget_bytes(), " bytes")
                : ""));
    if (restore_failed_) {
      return absl::FailedPreconditionError(
          "the last Restore() failed: the host state is not a checkpoint's; "
          "not training from it");
    }
    if (engine_) {
      RETURN_IF_ERROR(engine_->Drain());
      engine_->StopReadingAhead();  // RefreshWorkingCopies writes the tier
    }
    RETURN_IF_ERROR(host_.RefreshWorkingCopies());
    for (int64_t step = start_step_ + 1; step <= t.steps; ++step) {
      StepMetrics report;
      const int64_t start = Timeline::NowNs();
      absl::Status s =
          engine_
              ? EngineStep(step, observer, &report)
              : ReferenceStep(config_, step, Batches(step, observer), &host_,
                              optimizer_.get(), &loss_scale_, &report);
      if (!s.ok()) return s;
      report.step = step;
      report.steps = t.steps;
      report.lr = LearningRate(t, step);
      report.step_s = Since(start);
      report.samples_per_s = t.batch / report.step_s;
      report.tokens_per_s = report.samples_per_s * config_.model.seq_len;
      report.model_tflops =
          config_.model.model_flops_per_step(t.batch) / report.step_s / 1e12;
      observer->OnStep(report);
      if (engine_ && Traced(step))
        observer->OnTrace(step, timeline_.ToChromeTraceJson());

      const bool last = step == t.steps;
      const bool periodic = config_.checkpoint.every_steps > 0 &&
                            step % config_.checkpoint.every_steps == 0;
      const StopRequest stop = observer->StopRequested();
      const bool stop_with_checkpoint =
          stop == StopRequest::kShutdown ||
          stop == StopRequest::kCheckpointAndCancel;
      if (last || periodic || stop_with_checkpoint) {
        RETURN_IF_ERROR(Checkpoint(step, observer));
      }
      if (stop == StopRequest::kShutdown) {
        return absl::AbortedError(
            absl::StrCat("daemon shutting down; stopped after step ", step,
                         ", checkpoint ", CheckpointName(step)));
      }
      if (stop == StopRequest::kCheckpointAndCancel) {
        return absl::CancelledError(absl::StrCat("stopped after step ", step,
                                                 ", checkpoint ",
                                                 CheckpointName(step)));
      }
      if (stop == StopRequest::kCancel)
        return absl::CancelledError("cancelled");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Restore(const std::string& checkpoint_dir) {
    if (engine_) {
      RETURN_IF_ERROR(engine_->Drain());
      engine_->StopReadingAhead();  // the restore writes the tier
    }
    restore_failed_ = true;  // until every byte is in
    // Sharded: this rank keeps its slices of the whole tensors.
    absl::StatusOr<CheckpointManifest> loaded =
        shards_.empty()
            ? LoadCheckpoint(checkpoint_dir, config_.model,
                             host_.CheckpointBuffers())
            : LoadShardedCheckpoint(checkpoint_dir, config_.model, shards_,
                                    host_.CheckpointBuffers());
    ASSIGN_OR_RETURN(const CheckpointManifest manifest, std::move(loaded));
    restore_failed_ = false;
    start_step_ = manifest.position.step;
    // The loss scale continues where it was; a checkpoint without one (fp32,
    // bf16, or older) starts fp16's policy afresh.
    loss_scale_ = InitialLossScale(config_.training.precision);
    loss_scale_.optimizer_step = manifest.position.optimizer_step;
    if (config_.training.precision == Precision::kFp16 &&
        manifest.position.loss_scale > 0) {
      loss_scale_.scale = manifest.position.loss_scale;
      loss_scale_.good_steps = manifest.position.loss_scale_good_steps;
    }
    return start_step_;
  }

  absl::Status LoadWeights(const WeightLoader& load) {
    if (!shards_.empty()) {
      return absl::FailedPreconditionError(
          "loading initial weights into a data-parallel rank's slices is not "
          "supported");
    }
    if (engine_) {
      RETURN_IF_ERROR(engine_->Drain());
      engine_->StopReadingAhead();  // the load writes the tier
    }
    restore_failed_ = true;  // until every byte is in
    absl::Status loaded = load(host_.CheckpointBuffers());
    RETURN_IF_ERROR(loaded);
    restore_failed_ = false;
    return absl::OkStatus();
  }

  float* HostWeights(int index) {
    CHECK(!tier_.MasterSpilled(index))
        << "buffer " << index << "'s master is on the NVMe tier";
    return host_.buffers().at(index).param;
  }
  void SetLossScale(double scale) { loss_scale_.scale = scale; }
  const HostLedger& ledger() const { return ledger_; }

  absl::StatusOr<std::vector<std::vector<float>>> Weights() {
    if (engine_) RETURN_IF_ERROR(engine_->Drain());
    return host_.Masters();
  }

 private:
  int world_size() const {
    return options_.comm != nullptr ? options_.comm->world_size() : 1;
  }

  // What data parallelism needs of the job, and what it does not do yet.
  absl::Status CheckDataParallel() const {
    const int world = world_size();
    if (world <= 1) return absl::OkStatus();
    const TrainingConfig& t = config_.training;
    if (t.batch % (static_cast<int64_t>(world) * t.micro_batch) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "training.batch ", t.batch, " must be a multiple of world_size ",
          world, " x training.micro_batch ", t.micro_batch,
          " (each rank takes the same number of micro-batches)"));
    }
    if (plan_.reference) {
      return absl::FailedPreconditionError(
          "the reference plan (RESIDENT, fp32, plain autograd) with "
          "world_size > 1: it holds the whole model on one rank; use the "
          "windowed engine");
    }
    return absl::OkStatus();
  }

  bool Traced(int64_t step) const {
    return step <= 2 ||
           (options_.trace_every > 0 && step % options_.trace_every == 0);
  }

  // (Re)builds the engine for plan_ (the automatic window's settled plan
  // after profiling).
  absl::Status MakeEngine() {
    engine_.reset();
    ASSIGN_OR_RETURN(engine_, WindowedEngine::Create(
                                  config_, plan_, device_, optimizer_.get(),
                                  host_.buffers(), &loss_scale_, &timeline_,
                                  tier_.streamer(), &ledger_, options_.comm));
    return absl::OkStatus();
  }

  // Step `step`'s micro-batches from the data; CANCELLED as soon as the
  // observer asks for it.
  BatchSource Batches(int64_t step, TrainerObserver* observer) {
    return
        [this, step, observer](int micro, int64_t* inputs, int64_t* targets) {
          if (observer->StopRequested() == StopRequest::kCancel) {
            return absl::CancelledError("cancelled");
          }
          const TrainingConfig& t = config_.training;
          const int64_t first = (step - 1) * t.batch +
                                static_cast<int64_t>(micro) * t.micro_batch;
          return data_->Fill(t.seed, first, t.micro_batch, inputs, targets);
        };
  }

  absl::Status EngineStep(int64_t step, TrainerObserver* observer,
                          StepMetrics* metrics) {
    // Keep the previous step's deferred updates: they run during this one
    // (or, when the automatic window rebuilt the engine, while the old one
    // drained).
    timeline_.DropBefore(trace_cut_ns_);
    const bool profiling = plan_.automatic_window && step == start_step_ + 1;
    if (profiling) engine_->ProfileNextStep();  // for SettleAutomaticWindow
    ASSIGN_OR_RETURN(*metrics, engine_->Step(step, Batches(step, observer)));
    StepMetrics& s = *metrics;
    trace_cut_ns_ = engine_->trace_cut_ns();
    // The engine filled its fields; these are the trainer's.
    s.window = engine_->window();
    s.device_peak_bytes = device_->peak_bytes();
    if (s.skipped) {
      observer->OnMessage(
          absl::StrFormat("step %d: fp16 gradient overflow at loss scale %g; "
                          "step skipped (no update), loss scale now %g",
                          step, s.loss_scale, loss_scale_.scale));
    }
    if (profiling) RETURN_IF_ERROR(SettleAutomaticWindow(s, observer));
    return absl::OkStatus();
  }

  // After the profiling step: the window the rest of the job runs with
  // (core/train/auto_window.h); the engine is rebuilt for it when it is not
  // the profiled one.
  absl::Status SettleAutomaticWindow(const StepMetrics& profiled,
                                     TrainerObserver* observer) {
    const WindowChoice choice =
        ChooseWindow(config_, plan_, engine_->window(), profiled, timeline_);
    observer->OnMessage(choice.message);
    if (choice.window != engine_->window()) {
      plan_ = SettleWindow(config_, plan_, choice.window);
      RETURN_IF_ERROR(MakeEngine());
    }
    return absl::OkStatus();
  }

  absl::Status Checkpoint(int64_t step, TrainerObserver* observer) {
    if (engine_) RETURN_IF_ERROR(engine_->Drain());  // host masters current
    const TrainingConfig& t = config_.training;
    TrainingPosition position;
    position.step = step;
    position.optimizer_step =
        loss_scale_.optimizer_step;  // below step by skipped fp16 steps
    if (t.precision == Precision::kFp16) {
      position.loss_scale = loss_scale_.scale;
      position.loss_scale_good_steps = loss_scale_.good_steps;
    }
    position.seed = t.seed;
    position.batch = t.batch;
    position.next_sample =
        step * t.batch;  // Batches: samples of step s start at (s-1)*batch
    position.lr = LearningRate(t, step);
    position.next_lr = LearningRate(t, step + 1);
    const std::string dir =
        (std::filesystem::path(options_.job_dir) / "checkpoints").string();
    // Sharded: the ranks gather each buffer, each writes the whole files.
    absl::StatusOr<std::string> written =
        shards_.empty()
            ? WriteCheckpoint(dir, config_.model, position,
                              host_.CheckpointBuffers(), options_.job_spec_json)
            : WriteShardedCheckpoint(options_.comm, shards_, dir, config_.model,
                                     position, host_.CheckpointBuffers(),
                                     options_.job_spec_json);
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
  // Data parallelism: this rank's slice of each buffer (empty: one rank).
  const std::vector<BufferShard> shards_;
  // The host memory of the training state, charged against the plan.
  HostLedger ledger_;
  // Every buffer's host state: embedding, blocks..., final_norm. Before
  // the devices: its pinned memory goes back to the device.
  HostState host_;

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
absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(
    const JobConfig& config, const ExecutionPlan& plan,
    const TrainerOptions& options) {
  try {
    ASSIGN_OR_RETURN(std::unique_ptr<Dataset> data, OpenData(config, options));
    FusedAdamWOptions opt;
    opt.threads = options.optimizer_threads;
    ASSIGN_OR_RETURN(std::unique_ptr<FusedAdamW> optimizer,
                     FusedAdamW::Create(opt));
    auto impl = std::make_unique<Impl>(config, plan, options, std::move(data),
                                       std::move(optimizer));
    RETURN_IF_ERROR(impl->Prepare());
    return std::unique_ptr<Trainer>(new Trainer(std::move(impl)));
  } catch (...) {
    return StatusFromException(
        "creating the trainer (host state, device buffers)");
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

absl::Status Trainer::LoadWeights(const WeightLoader& load) {
  return impl_->LoadWeights(load);
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

int64_t TrainerTestPeer::HostChargedBytes(Trainer& trainer) {
  return trainer.impl_->ledger().charged_bytes();
}

std::vector<std::string> TrainerTestPeer::HostLedgerDifferences(
    Trainer& trainer) {
  return trainer.impl_->ledger().Differences();
}

}  // namespace stronghold::core
