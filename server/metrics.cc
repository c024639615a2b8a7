#include "server/metrics.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "server/proto_convert.h"
#include "stronghold/v1/names.h"

namespace stronghold::server {

namespace v1 = ::stronghold::v1;
using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Gauge;
using prometheus::Histogram;

namespace {

constexpr char kJobLabel[] = "job_name";

// Where a step's wall time goes. Each is a value of the `phase` label of
// stronghold_job_step_phase_seconds_total; together they add up to the step.
enum Phase {
  kCompute,
  kH2dWait,
  kD2hWait,
  kOptimizer,
  kNvmeWait,
  kOther,
  kNumPhases
};
constexpr const char* kPhaseNames[kNumPhases] = {
    "compute", "h2d_wait", "d2h_wait", "optimizer", "nvme_wait", "other"};

// Bytes moved between tiers, the `direction` label of
// stronghold_job_transfer_bytes_total.
enum Direction { kH2d, kD2h, kNvmeRead, kNvmeWrite, kNumDirections };
constexpr const char* kDirectionNames[kNumDirections] = {
    "h2d", "d2h", "nvme_read", "nvme_write"};

constexpr const char* kTiers[] = {core::kTierDevice, core::kTierPinned,
                                  core::kTierHost, core::kTierSsd};

// Steps take from milliseconds (tiny CPU jobs) to tens of seconds (billions
// of parameters through a window).
const Histogram::BucketBoundaries kStepBuckets = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250};

std::string StateLabel(v1::Job::State state) {
  return absl::AsciiStrToLower(v1::Job::State_Name(state));
}

bool Ended(v1::Job::State s) {
  return s == v1::Job::SUCCEEDED || s == v1::Job::FAILED ||
         s == v1::Job::CANCELLED;
}

}  // namespace

double NominalPeakFlops(absl::string_view device, int cpu_threads,
                        bool avx512) {
  if (device == "cpu")
    return std::max(1, cpu_threads) * (avx512 ? 32.0 : 16.0) * 2.5e9;
  return 0.0;
}

struct Metrics::JobSeries {
  Histogram* step_duration = nullptr;
  Counter* steps = nullptr;
  Counter* samples = nullptr;
  Counter* tokens = nullptr;
  Gauge* loss = nullptr;
  Gauge* lr = nullptr;
  Gauge* grad_norm = nullptr;
  Gauge* loss_scale = nullptr;
  Counter* skipped_steps = nullptr;
  Counter* rolled_back_steps = nullptr;
  Gauge* model_flops = nullptr;
  Gauge* mfu = nullptr;
  Gauge* window = nullptr;
  // Added with the first step that carries a prediction (none: no series).
  Gauge* predicted_step = nullptr;
  Gauge* device_peak = nullptr;
  Gauge* target_steps = nullptr;
  Counter* phase[kNumPhases] = {};
  Counter* transfer[kNumDirections] = {};
  Counter* nvme_reused_bytes = nullptr;
  Counter* nvme_unplanned_reads = nullptr;
  Counter* optimizer_parameters = nullptr;
  Gauge* info = nullptr;
};

Metrics::Metrics(MetricsOptions options)
    : options_(std::move(options)),
      registry_(std::make_shared<prometheus::Registry>()),
      step_duration_(BuildHistogram()
                         .Name("stronghold_job_step_duration_seconds")
                         .Help("Wall time of one optimizer step")
                         .Register(*registry_)),
      steps_(BuildCounter()
                 .Name("stronghold_job_steps_total")
                 .Help("Optimizer steps finished")
                 .Register(*registry_)),
      samples_(BuildCounter()
                   .Name("stronghold_job_samples_total")
                   .Help("Sequences trained on (global batch per step)")
                   .Register(*registry_)),
      tokens_(
          BuildCounter()
              .Name("stronghold_job_tokens_total")
              .Help(
                  "Tokens trained on (global batch x sequence length per step)")
              .Register(*registry_)),
      loss_(BuildGauge()
                .Name("stronghold_job_loss")
                .Help("Mean training loss of the last step")
                .Register(*registry_)),
      lr_(BuildGauge()
              .Name("stronghold_job_learning_rate")
              .Help("Learning rate of the last step")
              .Register(*registry_)),
      grad_norm_(
          BuildGauge()
              .Name("stronghold_job_grad_norm")
              .Help("Global gradient norm of the last step, before clipping")
              .Register(*registry_)),
      loss_scale_(BuildGauge()
                      .Name("stronghold_job_loss_scale")
                      .Help("FP16's dynamic loss scale of the last step (1 for "
                            "FP32 and BF16)")
                      .Register(*registry_)),
      skipped_steps_(
          BuildCounter()
              .Name("stronghold_job_skipped_steps_total")
              .Help("FP16 steps skipped because a gradient overflowed (nothing "
                    "updated, loss scale halved)")
              .Register(*registry_)),
      rolled_back_steps_(
          BuildCounter()
              .Name("stronghold_job_rolled_back_steps_total")
              .Help("Steps whose speculative updates were undone (clipped: "
                    "redone with the clip factor; FP16 overflow: skipped)")
              .Register(*registry_)),
      model_flops_(BuildGauge()
                       .Name("stronghold_job_model_flops_per_second")
                       .Help("Model FLOP/s of the last step (Megatron formula, "
                             "no recomputation)")
                       .Register(*registry_)),
      mfu_(BuildGauge()
               .Name("stronghold_job_mfu_ratio")
               .Help("Model FLOPs utilization of the last step: model FLOP/s "
                     "over the device's dense peak "
                     "(stronghold_device_peak_flops_per_second)")
               .Register(*registry_)),
      window_(
          BuildGauge()
              .Name("stronghold_job_window_layers")
              .Help("Layers in the compute device's window (0 for RESIDENT)")
              .Register(*registry_)),
      predicted_step_(
          BuildGauge()
              .Name("stronghold_job_predicted_step_seconds")
              .Help("Step time predicted for the run from the node's measured "
                    "hardware profile (docs/prediction.md)")
              .Register(*registry_)),
      device_peak_(BuildGauge()
                       .Name("stronghold_job_device_peak_bytes")
                       .Help("Device memory high-water mark of the last step "
                             "(windowed methods; 0 for RESIDENT)")
                       .Register(*registry_)),
      target_steps_(BuildGauge()
                        .Name("stronghold_job_target_steps")
                        .Help("Optimizer steps the job trains for")
                        .Register(*registry_)),
      phase_seconds_(BuildCounter()
                         .Name("stronghold_job_step_phase_seconds_total")
                         .Help("Where step time went: compute, exposed (not "
                               "overlapped) waits for H2D/D2H copies, the "
                               "optimizer and NVMe, and the rest")
                         .Register(*registry_)),
      transfer_bytes_(BuildCounter()
                          .Name("stronghold_job_transfer_bytes_total")
                          .Help("Bytes moved between tiers (0 until the "
                                "offload engine reports them)")
                          .Register(*registry_)),
      nvme_reused_bytes_(
          BuildCounter()
              .Name("stronghold_job_nvme_reused_bytes_total")
              .Help("NVMe tier bytes staged from a slot that still held them "
                    "instead of read from the drive (no I/O)")
              .Register(*registry_)),
      nvme_unplanned_reads_(
          BuildCounter()
              .Name("stronghold_job_nvme_unplanned_reads_total")
              .Help("Synchronous reads from the NVMe tier outside the engine's "
                    "planned fetch order (0 unless that order changed: a "
                    "performance bug)")
              .Register(*registry_)),
      optimizer_parameters_(
          BuildCounter()
              .Name("stronghold_job_optimizer_parameters_total")
              .Help("Parameters updated by the optimizer")
              .Register(*registry_)),
      job_info_(BuildGauge()
                    .Name("stronghold_job_info")
                    .Help("Always 1; labels describe the job")
                    .Register(*registry_)),
      jobs_(BuildGauge()
                .Name("stronghold_jobs")
                .Help("Jobs known to the daemon, by state")
                .Register(*registry_)),
      jobs_ended_(
          BuildCounter()
              .Name("stronghold_jobs_ended_total")
              .Help("Jobs that ended in this daemon's lifetime, by final state")
              .Register(*registry_)),
      tier_capacity_(BuildGauge()
                         .Name("stronghold_tier_capacity_bytes")
                         .Help("Capacity of a memory tier (0 when absent)")
                         .Register(*registry_)),
      tier_budget_(
          BuildGauge()
              .Name("stronghold_tier_budget_bytes")
              .Help("Budget of a memory tier (0 when absent or unbudgeted)")
              .Register(*registry_)),
      tier_used_(
          BuildGauge()
              .Name("stronghold_tier_used_bytes")
              .Help("Bytes of a memory tier planned for the running jobs")
              .Register(*registry_)),
      io_backend_(
          BuildGauge()
              .Name("stronghold_io_backend_info")
              .Help("Always 1; `backend` is the NVMe tier's I/O backend")
              .Register(*registry_)),
      io_errors_(BuildCounter()
                     .Name("stronghold_io_errors_total")
                     .Help("Failed NVMe tier I/O operations")
                     .Register(*registry_)
                     .Add({})) {
  BuildGauge()
      .Name("stronghold_build_info")
      .Help("Always 1; labels name the versions")
      .Register(*registry_)
      .Add({{"version", options_.version},
            {"torch_version", options_.torch_version}})
      .Set(1);
  BuildGauge()
      .Name("stronghold_device_info")
      .Help("Always 1; `device` is the compute device")
      .Register(*registry_)
      .Add({{"device", options_.device}})
      .Set(1);
  BuildGauge()
      .Name("stronghold_device_peak_flops_per_second")
      .Help("Dense peak FLOP/s of the compute device, the MFU denominator")
      .Register(*registry_)
      .Add({})
      .Set(options_.device_peak_flops_per_s);
  // Every state and tier exists from the start at 0, so rate() and
  // increase() see the first change and dashboards show absent tiers as 0.
  for (v1::Job::State s :
       {v1::Job::QUEUED, v1::Job::RUNNING, v1::Job::SUCCEEDED, v1::Job::FAILED,
        v1::Job::CANCELLED}) {
    jobs_.Add({{"state", StateLabel(s)}});
    if (Ended(s)) jobs_ended_.Add({{"state", StateLabel(s)}});
  }
  for (const char* tier : kTiers) {
    tier_capacity_.Add({{"tier", tier}});
    tier_budget_.Add({{"tier", tier}});
    tier_used_.Add({{"tier", tier}});
  }
  SetIoBackend("none");
}

Metrics::~Metrics() = default;

namespace {

// A job's labels: its name, and for a rank of a distributed job the rank
// (each rank's daemon exports its own series; docs/distributed.md), plus
// `extra`.
prometheus::Labels JobLabels(const v1::Job& job,
                             prometheus::Labels extra = {}) {
  extra.emplace(kJobLabel, job.name());
  if (job.spec().distributed().world_size() > 1)
    extra.emplace("rank", std::to_string(job.spec().distributed().rank()));
  return extra;
}

}  // namespace

Metrics::JobSeries& Metrics::SeriesLocked(const v1::Job& job) {
  std::unique_ptr<JobSeries>& s = series_[job.name()];
  if (s != nullptr) return *s;
  s = std::make_unique<JobSeries>();
  const prometheus::Labels labels = JobLabels(job);
  s->step_duration = &step_duration_.Add(labels, kStepBuckets);
  s->steps = &steps_.Add(labels);
  s->samples = &samples_.Add(labels);
  s->tokens = &tokens_.Add(labels);
  s->loss = &loss_.Add(labels);
  s->lr = &lr_.Add(labels);
  s->grad_norm = &grad_norm_.Add(labels);
  s->loss_scale = &loss_scale_.Add(labels);
  s->skipped_steps = &skipped_steps_.Add(labels);
  s->rolled_back_steps = &rolled_back_steps_.Add(labels);
  s->model_flops = &model_flops_.Add(labels);
  s->mfu = &mfu_.Add(labels);
  s->window = &window_.Add(labels);
  s->device_peak = &device_peak_.Add(labels);
  s->target_steps = &target_steps_.Add(labels);
  s->target_steps->Set(job.spec().training().steps());
  for (int p = 0; p < kNumPhases; ++p) {
    s->phase[p] =
        &phase_seconds_.Add(JobLabels(job, {{"phase", kPhaseNames[p]}}));
  }
  for (int d = 0; d < kNumDirections; ++d) {
    s->transfer[d] = &transfer_bytes_.Add(
        JobLabels(job, {{"direction", kDirectionNames[d]}}));
  }
  s->nvme_reused_bytes = &nvme_reused_bytes_.Add(labels);
  s->nvme_unplanned_reads = &nvme_unplanned_reads_.Add(labels);
  s->optimizer_parameters = &optimizer_parameters_.Add(labels);
  s->info = &job_info_.Add(JobLabels(
      job, {{"display_name", job.display_name()},
            {"method", v1::OffloadMethodName(job.spec().offload().method())}}));
  s->info->Set(1);
  return *s;
}

void Metrics::RemoveSeriesLocked(const std::string& name) {
  auto it = series_.find(name);
  if (it == series_.end()) return;
  JobSeries& s = *it->second;
  step_duration_.Remove(s.step_duration);
  steps_.Remove(s.steps);
  samples_.Remove(s.samples);
  tokens_.Remove(s.tokens);
  loss_.Remove(s.loss);
  lr_.Remove(s.lr);
  grad_norm_.Remove(s.grad_norm);
  loss_scale_.Remove(s.loss_scale);
  skipped_steps_.Remove(s.skipped_steps);
  rolled_back_steps_.Remove(s.rolled_back_steps);
  model_flops_.Remove(s.model_flops);
  mfu_.Remove(s.mfu);
  window_.Remove(s.window);
  if (s.predicted_step != nullptr) predicted_step_.Remove(s.predicted_step);
  device_peak_.Remove(s.device_peak);
  target_steps_.Remove(s.target_steps);
  for (Counter* c : s.phase) phase_seconds_.Remove(c);
  for (Counter* c : s.transfer) transfer_bytes_.Remove(c);
  nvme_reused_bytes_.Remove(s.nvme_reused_bytes);
  nvme_unplanned_reads_.Remove(s.nvme_unplanned_reads);
  optimizer_parameters_.Remove(s.optimizer_parameters);
  job_info_.Remove(s.info);
  series_.erase(it);
}

void Metrics::CountStateLocked(const std::string& name, v1::Job::State state) {
  auto [it, inserted] = states_.try_emplace(name, state);
  if (!inserted) {
    if (it->second == state) return;
    jobs_.Add({{"state", StateLabel(it->second)}}).Decrement();
    it->second = state;
  }
  jobs_.Add({{"state", StateLabel(state)}}).Increment();
}

void Metrics::OnJobState(const v1::Job& job) {
  absl::MutexLock lock(&mu_);
  auto previous = states_.find(job.name());
  const bool was_ended = previous != states_.end() && Ended(previous->second);
  CountStateLocked(job.name(), job.state());

  if (job.state() == v1::Job::RUNNING) {
    SeriesLocked(job);
    // The run's plan, as the job manager recorded it when the run started.
    const v1::MemoryPlan& plan = job.plan();
    running_bytes_[job.name()] = {{core::kTierDevice, plan.device_bytes()},
                                  {core::kTierPinned, plan.pinned_bytes()},
                                  {core::kTierHost, plan.host_bytes()},
                                  {core::kTierSsd, plan.ssd_bytes()}};
  } else {
    running_bytes_.erase(job.name());
  }
  UpdateTierUsageLocked();

  if (Ended(job.state()) && !was_ended) {
    jobs_ended_.Add({{"state", StateLabel(job.state())}}).Increment();
    if (series_.count(job.name()) > 0) {
      ended_.push_back(job.name());
      while (static_cast<int>(ended_.size()) >
             std::max(0, options_.max_ended_jobs)) {
        RemoveSeriesLocked(ended_.front());
        ended_.pop_front();
      }
    }
  }
}

void Metrics::OnJobStep(const v1::Job& job, const v1::StepMetrics& step) {
  absl::MutexLock lock(&mu_);
  JobSeries& s = SeriesLocked(job);
  const double batch = job.spec().training().batch();
  s.step_duration->Observe(step.step_s());
  s.steps->Increment();
  s.samples->Increment(batch);
  s.tokens->Increment(batch * job.spec().model().seq_len());
  s.loss->Set(step.loss());
  s.lr->Set(step.lr());
  s.grad_norm->Set(step.grad_norm());
  s.loss_scale->Set(step.loss_scale());
  if (step.skipped()) s.skipped_steps->Increment();
  if (step.rolled_back()) s.rolled_back_steps->Increment();
  const double flops = step.model_tflops() * 1e12;
  s.model_flops->Set(flops);
  // A job on N ranks: the whole job's FLOP/s on N devices.
  const double peak = options_.device_peak_flops_per_s *
                      std::max(1, job.spec().distributed().world_size());
  s.mfu->Set(peak > 0 ? flops / peak : 0);
  s.window->Set(step.window());
  if (step.predicted_step_s() > 0) {
    if (s.predicted_step == nullptr) {
      s.predicted_step = &predicted_step_.Add(JobLabels(job));
    }
    s.predicted_step->Set(step.predicted_step_s());
  }
  s.device_peak->Set(static_cast<double>(step.device_peak_bytes()));

  // Exposed waits only: copies hidden behind compute cost nothing here.
  const double parts[kNumPhases - 1] = {step.compute_s(), step.h2d_wait_s(),
                                        step.d2h_wait_s(), step.optimizer_s(),
                                        step.nvme_wait_s()};
  double accounted = 0;
  for (int p = 0; p < kNumPhases - 1; ++p) {
    s.phase[p]->Increment(std::max(0.0, parts[p]));
    accounted += std::max(0.0, parts[p]);
  }
  // Below a microsecond the rest is rounding, not time spent elsewhere.
  const double other = step.step_s() - accounted;
  if (other > 1e-6) s.phase[kOther]->Increment(other);
  // Bytes moved: H2D/D2H by the windowed engine, NVMe by its spilled state.
  s.transfer[kH2d]->Increment(static_cast<double>(step.h2d_bytes()));
  s.transfer[kD2h]->Increment(static_cast<double>(step.d2h_bytes()));
  s.transfer[kNvmeRead]->Increment(static_cast<double>(step.nvme_read_bytes()));
  s.transfer[kNvmeWrite]->Increment(
      static_cast<double>(step.nvme_write_bytes()));
  s.nvme_reused_bytes->Increment(static_cast<double>(step.nvme_reused_bytes()));
  s.nvme_unplanned_reads->Increment(
      static_cast<double>(step.nvme_unplanned_reads()));
  s.optimizer_parameters->Increment(static_cast<double>(job.parameters()));
}

void Metrics::SeedJobs(const std::vector<v1::Job>& jobs) {
  absl::MutexLock lock(&mu_);
  for (const v1::Job& job : jobs) {
    if (states_.count(job.name()) == 0)
      CountStateLocked(job.name(), job.state());
  }
}

void Metrics::UpdateTierUsageLocked() {
  std::map<std::string, int64_t> used;
  for (const auto& [job, tiers] : running_bytes_) {
    for (const auto& [tier, bytes] : tiers) used[tier] += bytes;
  }
  for (const char* tier : kTiers)
    tier_used_.Add({{"tier", tier}}).Set(used[tier]);
}

void Metrics::SetNode(const v1::Node& node) {
  for (const v1::Tier& t : node.tiers()) {
    tier_capacity_.Add({{"tier", t.name()}}).Set(t.capacity_bytes());
    tier_budget_.Add({{"tier", t.name()}}).Set(t.budget_bytes());
  }
}

void Metrics::SetIoBackend(absl::string_view backend) {
  absl::MutexLock lock(&mu_);
  if (io_backend_series_ != nullptr) io_backend_.Remove(io_backend_series_);
  io_backend_series_ = &io_backend_.Add({{"backend", std::string(backend)}});
  io_backend_series_->Set(1);
}

void Metrics::AddIoErrors(int64_t count) {
  io_errors_.Increment(static_cast<double>(count));
}

}  // namespace stronghold::server
