#include "server/metrics.h"

#include <map>
#include <optional>
#include <string>

#include "core/plan/planner.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"
#include "server/proto_convert.h"

namespace stronghold::server {
namespace {

namespace v1 = ::stronghold::v1;

// The value of the series `name` whose labels include `labels`, from a
// fresh collection; nullopt when absent.
std::optional<double> Value(
    const Metrics& metrics, const std::string& name,
    const std::map<std::string, std::string>& labels = {}) {
  for (const prometheus::MetricFamily& family : metrics.registry()->Collect()) {
    const bool histogram = family.type == prometheus::MetricType::Histogram;
    const std::string base =
        histogram && name.size() > 6 && name.substr(name.size() - 6) == "_count"
            ? name.substr(0, name.size() - 6)
            : name;
    if (family.name != base) continue;
    for (const prometheus::ClientMetric& m : family.metric) {
      bool match = true;
      for (const auto& [key, value] : labels) {
        bool found = false;
        for (const prometheus::ClientMetric::Label& l : m.label) {
          found |= l.name == key && l.value == value;
        }
        match &= found;
      }
      if (!match) continue;
      switch (family.type) {
        case prometheus::MetricType::Counter:
          return m.counter.value;
        case prometheus::MetricType::Gauge:
          return m.gauge.value;
        case prometheus::MetricType::Histogram:
          return static_cast<double>(m.histogram.sample_count);
        default:
          return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

v1::Job MakeJob(int id, v1::Job::State state) {
  v1::Job job;
  job.set_name("jobs/" + std::to_string(id));
  job.set_display_name("tiny");
  job.set_state(state);
  job.set_parameters(1000);
  v1::ModelSpec* model = job.mutable_spec()->mutable_model();
  model->set_layers(2);
  model->set_hidden(64);
  model->set_heads(4);
  model->set_seq_len(64);
  model->set_vocab(256);
  job.mutable_spec()->mutable_training()->set_batch(8);
  job.mutable_spec()->mutable_training()->set_micro_batch(8);
  job.mutable_spec()->mutable_training()->set_steps(30);
  // As the job manager records it when a run starts.
  *job.mutable_plan() =
      ToProto(core::PlanExecution(ToJobConfig(job.spec()), {.device = "cpu"}));
  return job;
}

v1::StepMetrics Step(int step) {
  v1::StepMetrics m;
  m.set_step(step);
  m.set_loss(2.5);
  m.set_lr(1e-4);
  m.set_step_s(0.5);
  m.set_compute_s(0.3);
  m.set_h2d_wait_s(0.05);
  m.set_d2h_wait_s(0.05);
  m.set_optimizer_s(0.05);
  m.set_model_tflops(0.002);  // 2e9 FLOP/s
  m.set_window(3);
  m.set_device_peak_bytes(4096);
  return m;
}

MetricsOptions Options() {
  MetricsOptions options;
  options.device_peak_flops_per_s = 8e9;
  options.version = "1.2.3";
  options.torch_version = "2.11.0";
  return options;
}

TEST(MetricsTest, NodeSeriesExistFromTheStart) {
  Metrics metrics(Options());
  EXPECT_EQ(Value(metrics, "stronghold_build_info", {{"version", "1.2.3"}}), 1);
  EXPECT_EQ(Value(metrics, "stronghold_device_peak_flops_per_second"), 8e9);
  EXPECT_EQ(Value(metrics, "stronghold_io_backend_info", {{"backend", "none"}}),
            1);
  EXPECT_EQ(Value(metrics, "stronghold_io_errors_total"), 0);
  for (const char* state :
       {"queued", "running", "succeeded", "failed", "cancelled"}) {
    EXPECT_EQ(Value(metrics, "stronghold_jobs", {{"state", state}}), 0)
        << state;
  }
  EXPECT_EQ(
      Value(metrics, "stronghold_jobs_ended_total", {{"state", "failed"}}), 0);
  for (const char* tier : {"device", "pinned", "host", "ssd"}) {
    EXPECT_EQ(Value(metrics, "stronghold_tier_budget_bytes", {{"tier", tier}}),
              0)
        << tier;
    EXPECT_EQ(Value(metrics, "stronghold_tier_used_bytes", {{"tier", tier}}), 0)
        << tier;
  }
}

TEST(MetricsTest, StepsBecomePerJobSeries) {
  Metrics metrics(Options());
  metrics.OnJobState(MakeJob(1, v1::Job::QUEUED));
  metrics.OnJobState(MakeJob(1, v1::Job::RUNNING));
  const v1::Job job = MakeJob(1, v1::Job::RUNNING);
  metrics.OnJobStep(job, Step(1));
  metrics.OnJobStep(job, Step(2));
  const std::map<std::string, std::string> j = {{"job_name", "jobs/1"}};

  EXPECT_EQ(Value(metrics, "stronghold_job_steps_total", j), 2);
  EXPECT_EQ(Value(metrics, "stronghold_job_samples_total", j), 16);
  EXPECT_EQ(Value(metrics, "stronghold_job_tokens_total", j), 16 * 64);
  EXPECT_EQ(Value(metrics, "stronghold_job_step_duration_seconds_count", j), 2);
  EXPECT_EQ(Value(metrics, "stronghold_job_loss", j), 2.5);
  EXPECT_EQ(Value(metrics, "stronghold_job_learning_rate", j), 1e-4);
  EXPECT_DOUBLE_EQ(*Value(metrics, "stronghold_job_model_flops_per_second", j),
                   2e9);
  EXPECT_DOUBLE_EQ(*Value(metrics, "stronghold_job_mfu_ratio", j), 0.25);
  // One rank of a job on 2: the job's FLOP/s ran on 2 devices.
  v1::Job rank = MakeJob(2, v1::Job::RUNNING);
  rank.mutable_spec()->mutable_distributed()->set_world_size(2);
  metrics.OnJobState(rank);
  metrics.OnJobStep(rank, Step(1));
  EXPECT_DOUBLE_EQ(
      *Value(metrics, "stronghold_job_mfu_ratio", {{"job_name", "jobs/2"}}),
      0.125);
  EXPECT_EQ(Value(metrics, "stronghold_job_window_layers", j), 3);
  EXPECT_EQ(Value(metrics, "stronghold_job_device_peak_bytes", j), 4096);
  EXPECT_EQ(Value(metrics, "stronghold_job_target_steps", j), 30);
  EXPECT_EQ(Value(metrics, "stronghold_job_optimizer_parameters_total", j),
            2000);
  EXPECT_EQ(Value(metrics, "stronghold_job_info",
                  {{"job_name", "jobs/1"},
                   {"display_name", "tiny"},
                   {"method", "resident"}}),
            1);

  // The phases add up to the step: 0.3 + 3 x 0.05 accounted, 0.05 other.
  const auto phase = [&](const char* p) {
    return *Value(metrics, "stronghold_job_step_phase_seconds_total",
                  {{"job_name", "jobs/1"}, {"phase", p}});
  };
  EXPECT_DOUBLE_EQ(phase("compute"), 0.6);
  EXPECT_DOUBLE_EQ(phase("h2d_wait"), 0.1);
  EXPECT_DOUBLE_EQ(phase("d2h_wait"), 0.1);
  EXPECT_DOUBLE_EQ(phase("optimizer"), 0.1);
  EXPECT_EQ(phase("nvme_wait"), 0);
  EXPECT_NEAR(phase("other"), 0.1, 1e-9);
  for (const char* d : {"h2d", "d2h", "nvme_read", "nvme_write"}) {
    EXPECT_EQ(Value(metrics, "stronghold_job_transfer_bytes_total",
                    {{"job_name", "jobs/1"}, {"direction", d}}),
              0)
        << d;
  }
}

// Each rank's daemon exports its own series of a distributed job, told
// apart by `rank`; a one-rank job has no such label.
TEST(MetricsTest, DistributedJobsCarryTheirRank) {
  Metrics metrics(Options());
  v1::Job job = MakeJob(1, v1::Job::RUNNING);
  job.mutable_spec()->mutable_distributed()->set_world_size(2);
  job.mutable_spec()->mutable_distributed()->set_rank(1);
  metrics.OnJobState(job);
  metrics.OnJobStep(job, Step(1));
  EXPECT_EQ(Value(metrics, "stronghold_job_steps_total",
                  {{"job_name", "jobs/1"}, {"rank", "1"}}),
            1);
  EXPECT_EQ(
      Value(metrics, "stronghold_job_step_phase_seconds_total",
            {{"job_name", "jobs/1"}, {"rank", "1"}, {"phase", "compute"}}),
      0.3);
  EXPECT_EQ(
      Value(metrics, "stronghold_job_info",
            {{"job_name", "jobs/1"}, {"rank", "1"}, {"method", "resident"}}),
      1);
  const v1::Job single = MakeJob(2, v1::Job::RUNNING);
  metrics.OnJobStep(single, Step(1));
  EXPECT_EQ(Value(metrics, "stronghold_job_steps_total",
                  {{"job_name", "jobs/2"}, {"rank", "0"}}),
            std::nullopt);
  EXPECT_EQ(
      Value(metrics, "stronghold_job_steps_total", {{"job_name", "jobs/2"}}),
      1);
}

// The run's predicted step time: a series only for a job whose steps carry
// one, with the job's labels (and rank), gone with the job's other series.
TEST(MetricsTest, PredictedStepTimeIsAGaugeOnlyWithAPrediction) {
  MetricsOptions options = Options();
  options.max_ended_jobs = 0;
  Metrics metrics(options);
  v1::Job predicted = MakeJob(1, v1::Job::RUNNING);
  predicted.mutable_spec()->mutable_distributed()->set_world_size(2);
  predicted.mutable_spec()->mutable_distributed()->set_rank(1);
  const v1::Job unpredicted = MakeJob(2, v1::Job::RUNNING);
  metrics.OnJobState(predicted);
  metrics.OnJobState(unpredicted);
  v1::StepMetrics step = Step(1);
  step.set_predicted_step_s(0.42);
  metrics.OnJobStep(predicted, step);
  metrics.OnJobStep(unpredicted, Step(1));
  EXPECT_EQ(Value(metrics, "stronghold_job_predicted_step_seconds",
                  {{"job_name", "jobs/1"}, {"rank", "1"}}),
            0.42);
  EXPECT_EQ(Value(metrics, "stronghold_job_predicted_step_seconds",
                  {{"job_name", "jobs/2"}}),
            std::nullopt);
  v1::Job ended = predicted;
  ended.set_state(v1::Job::SUCCEEDED);
  metrics.OnJobState(ended);
  EXPECT_EQ(Value(metrics, "stronghold_job_predicted_step_seconds",
                  {{"job_name", "jobs/1"}}),
            std::nullopt);
}

TEST(MetricsTest, Fp16LossScaleAndSkippedSteps) {
  Metrics metrics(Options());
  const v1::Job job = MakeJob(1, v1::Job::RUNNING);
  v1::StepMetrics skipped = Step(1);
  skipped.set_loss_scale(65536);
  skipped.set_skipped(true);
  metrics.OnJobStep(job, skipped);
  skipped.set_rolled_back(true);  // speculative updates undone
  metrics.OnJobStep(job, skipped);
  v1::StepMetrics applied = Step(2);
  applied.set_loss_scale(32768);
  metrics.OnJobStep(job, applied);
  const std::map<std::string, std::string> j = {{"job_name", "jobs/1"}};
  EXPECT_EQ(Value(metrics, "stronghold_job_loss_scale", j), 32768);
  EXPECT_EQ(Value(metrics, "stronghold_job_skipped_steps_total", j), 2);
  EXPECT_EQ(Value(metrics, "stronghold_job_rolled_back_steps_total", j), 1);
  EXPECT_EQ(Value(metrics, "stronghold_job_steps_total", j), 3);
}

// Every NVMe figure a step reports: the drive's traffic as transfer
// directions, staging-slot reuse and unplanned reads as their own counters.
TEST(MetricsTest, NvmeTierFiguresAccumulate) {
  Metrics metrics(Options());
  const v1::Job job = MakeJob(1, v1::Job::RUNNING);
  v1::StepMetrics step = Step(1);
  step.set_nvme_read_bytes(1000);
  step.set_nvme_write_bytes(300);
  step.set_nvme_reused_bytes(200);
  step.set_nvme_unplanned_reads(1);
  metrics.OnJobStep(job, step);
  metrics.OnJobStep(job, step);
  const std::map<std::string, std::string> j = {{"job_name", "jobs/1"}};
  EXPECT_EQ(Value(metrics, "stronghold_job_transfer_bytes_total",
                  {{"job_name", "jobs/1"}, {"direction", "nvme_read"}}),
            2000);
  EXPECT_EQ(Value(metrics, "stronghold_job_transfer_bytes_total",
                  {{"job_name", "jobs/1"}, {"direction", "nvme_write"}}),
            600);
  EXPECT_EQ(Value(metrics, "stronghold_job_nvme_reused_bytes_total", j), 400);
  EXPECT_EQ(Value(metrics, "stronghold_job_nvme_unplanned_reads_total", j), 2);
}

TEST(MetricsTest, JobStatesAreCountedOnce) {
  Metrics metrics(Options());
  metrics.OnJobState(MakeJob(1, v1::Job::QUEUED));
  metrics.OnJobState(MakeJob(2, v1::Job::QUEUED));
  EXPECT_EQ(Value(metrics, "stronghold_jobs", {{"state", "queued"}}), 2);
  metrics.OnJobState(MakeJob(1, v1::Job::RUNNING));
  EXPECT_EQ(Value(metrics, "stronghold_jobs", {{"state", "queued"}}), 1);
  EXPECT_EQ(Value(metrics, "stronghold_jobs", {{"state", "running"}}), 1);
  metrics.OnJobState(MakeJob(1, v1::Job::FAILED));
  metrics.OnJobState(MakeJob(1, v1::Job::FAILED));  // repeated: no double count
  EXPECT_EQ(Value(metrics, "stronghold_jobs", {{"state", "running"}}), 0);
  EXPECT_EQ(Value(metrics, "stronghold_jobs", {{"state", "failed"}}), 1);
  EXPECT_EQ(
      Value(metrics, "stronghold_jobs_ended_total", {{"state", "failed"}}), 1);
}

TEST(MetricsTest, SeededJobsKeepNewerStates) {
  Metrics metrics(Options());
  metrics.OnJobState(MakeJob(3, v1::Job::RUNNING));
  metrics.SeedJobs({MakeJob(1, v1::Job::SUCCEEDED), MakeJob(2, v1::Job::FAILED),
                    MakeJob(3, v1::Job::QUEUED)});
  EXPECT_EQ(Value(metrics, "stronghold_jobs", {{"state", "succeeded"}}), 1);
  EXPECT_EQ(Value(metrics, "stronghold_jobs", {{"state", "failed"}}), 1);
  EXPECT_EQ(Value(metrics, "stronghold_jobs", {{"state", "running"}}), 1);
  EXPECT_EQ(Value(metrics, "stronghold_jobs", {{"state", "queued"}}), 0);
  // Jobs that ended before this daemon started did not end in its lifetime.
  EXPECT_EQ(
      Value(metrics, "stronghold_jobs_ended_total", {{"state", "failed"}}), 0);
}

TEST(MetricsTest, RunningJobUsesItsPlannedTierBytes) {
  Metrics metrics(Options());
  metrics.OnJobState(MakeJob(1, v1::Job::RUNNING));
  EXPECT_GT(*Value(metrics, "stronghold_tier_used_bytes", {{"tier", "device"}}),
            0);
  metrics.OnJobState(MakeJob(1, v1::Job::SUCCEEDED));
  EXPECT_EQ(Value(metrics, "stronghold_tier_used_bytes", {{"tier", "device"}}),
            0);
}

TEST(MetricsTest, NodeTiersSetCapacityAndBudget) {
  Metrics metrics(Options());
  v1::Node node;
  v1::Tier* host = node.add_tiers();
  host->set_name("host");
  host->set_capacity_bytes(1000);
  host->set_budget_bytes(800);
  metrics.SetNode(node);
  EXPECT_EQ(
      Value(metrics, "stronghold_tier_capacity_bytes", {{"tier", "host"}}),
      1000);
  EXPECT_EQ(Value(metrics, "stronghold_tier_budget_bytes", {{"tier", "host"}}),
            800);
}

TEST(MetricsTest, OldEndedJobsLoseTheirSeries) {
  MetricsOptions options = Options();
  options.max_ended_jobs = 1;
  Metrics metrics(options);
  for (int id : {1, 2}) {
    metrics.OnJobState(MakeJob(id, v1::Job::RUNNING));
    metrics.OnJobStep(MakeJob(id, v1::Job::RUNNING), Step(1));
    metrics.OnJobState(MakeJob(id, v1::Job::SUCCEEDED));
  }
  EXPECT_EQ(
      Value(metrics, "stronghold_job_steps_total", {{"job_name", "jobs/1"}}),
      std::nullopt);
  EXPECT_EQ(Value(metrics, "stronghold_job_info", {{"job_name", "jobs/1"}}),
            std::nullopt);
  EXPECT_EQ(
      Value(metrics, "stronghold_job_steps_total", {{"job_name", "jobs/2"}}),
      1);
  EXPECT_EQ(Value(metrics, "stronghold_jobs", {{"state", "succeeded"}}), 2);
}

TEST(MetricsTest, IoBackendAndErrors) {
  Metrics metrics(Options());
  metrics.SetIoBackend("pread");
  metrics.AddIoErrors(2);
  EXPECT_EQ(Value(metrics, "stronghold_io_backend_info", {{"backend", "none"}}),
            std::nullopt);
  EXPECT_EQ(
      Value(metrics, "stronghold_io_backend_info", {{"backend", "pread"}}), 1);
  EXPECT_EQ(Value(metrics, "stronghold_io_errors_total"), 2);
}

TEST(MetricsTest, ExpositionUsesConventionalNames) {
  Metrics metrics(Options());
  metrics.OnJobState(MakeJob(1, v1::Job::RUNNING));
  const std::string text =
      prometheus::TextSerializer().Serialize(metrics.registry()->Collect());
  EXPECT_NE(text.find("# TYPE stronghold_job_steps_total counter"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE stronghold_job_step_duration_seconds histogram"),
            std::string::npos);
  EXPECT_NE(text.find("stronghold_job_step_duration_seconds_bucket{job_name="
                      "\"jobs/1\",le=\"0.5\"}"),
            std::string::npos);
  EXPECT_EQ(text.find("{job="),
            std::string::npos);  // `job` is Prometheus's target label
}

TEST(NominalPeakFlopsTest, CpuFigures) {
  EXPECT_DOUBLE_EQ(NominalPeakFlops("cpu", 2, /*avx512=*/false), 80e9);
  EXPECT_DOUBLE_EQ(NominalPeakFlops("cpu", 2, /*avx512=*/true), 160e9);
  EXPECT_DOUBLE_EQ(NominalPeakFlops("cpu", 0, /*avx512=*/false), 40e9);
  EXPECT_EQ(NominalPeakFlops("cuda:0", 2, /*avx512=*/false), 0);
}

}  // namespace
}  // namespace stronghold::server
