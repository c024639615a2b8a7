#include "tests/core/training_test_util.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/dist/communicator.h"
#include "gtest/gtest.h"

namespace stronghold::core {

ModelConfig WithArchitecture(ModelConfig model, Architecture architecture) {
  if (architecture == Architecture::kGpt) return model;
  model.architecture = Architecture::kLlama;
  model.kv_heads = model.heads / 2;
  model.intermediate = 7 * model.hidden / 4;
  model.tie_embeddings = false;
  return model;
}

std::string TestDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::filesystem::path p =
      std::filesystem::path(tmp != nullptr ? tmp : "/tmp") / name;
  std::filesystem::remove_all(p);
  return p.string();
}

void StepRecorder::OnStep(const StepMetrics& r) {
  steps.push_back(r.step);
  losses.push_back(r.loss);
  norms.push_back(r.grad_norm);
  scales.push_back(r.loss_scale);
  skipped.push_back(r.skipped);
  peak = r.device_peak_bytes;
  window = r.window;
  nvme_read_bytes += r.nvme_read_bytes;
  h2d_bytes.push_back(r.h2d_bytes);
  d2h_bytes.push_back(r.d2h_bytes);
  if (stop_after > 0 && r.step >= stop_after) stop = stop_kind;
}

ExecutionPlan PlanFor(const JobConfig& config, int64_t device_budget_bytes,
                      const std::string& device) {
  return PlanExecution(config,
                       {.device = device, .device_bytes = device_budget_bytes});
}

ExecutionPlan PlanWithSsd(const JobConfig& config, int ssd_layers,
                          int ssd_weight_layers) {
  return PlanExecution(config, {.device = "cpu",
                                .force_ssd_layers = ssd_layers,
                                .force_ssd_weight_layers = ssd_weight_layers});
}

TrainedRun TrainAsPlanned(const JobConfig& config, const ExecutionPlan& plan,
                          Device* device, const std::string& name,
                          double loss_scale, Communicator* comm,
                          const std::function<void(TrainerOptions*)>& adjust,
                          const std::string& restore) {
  TrainedRun r;
  TrainerOptions options{.job_dir = TestDir(name),
                         .device = device,
                         .optimizer_threads = 2,
                         .trace_every = 1,
                         .comm = comm};
  if (adjust) adjust(&options);
  auto trainer = Trainer::Create(config, plan, options);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  if (!trainer.ok()) return r;
  if (loss_scale > 0) TrainerTestPeer::SetLossScale(**trainer, loss_scale);
  if (!restore.empty()) {
    const absl::StatusOr<int64_t> step = (*trainer)->Restore(restore);
    EXPECT_TRUE(step.ok()) << step.status();
  }
  const absl::Status s = (*trainer)->Run(&r.recorder);
  EXPECT_TRUE(s.ok()) << s;
  auto weights = (*trainer)->Weights();
  EXPECT_TRUE(weights.ok()) << weights.status();
  if (weights.ok()) r.weights = *std::move(weights);
  r.host_bytes = TrainerTestPeer::HostChargedBytes(**trainer);
  return r;
}

TrainedRun Train(const JobConfig& config, const std::string& name,
                 int64_t device_budget_bytes, double loss_scale) {
  return TrainAsPlanned(config, PlanFor(config, device_budget_bytes),
                        /*device=*/nullptr, name, loss_scale);
}

TrainedRun TrainOn(Device* device, const JobConfig& config,
                   const std::string& name) {
  return TrainAsPlanned(
      config, PlanFor(config, /*device_budget_bytes=*/0, device->name()),
      device, name, /*loss_scale=*/0);
}

double MaxLossRelDiff(const TrainedRun& a, const TrainedRun& b) {
  double worst = 0;
  for (size_t i = 0;
       i < a.recorder.losses.size() && i < b.recorder.losses.size(); ++i) {
    const double la = a.recorder.losses[i], lb = b.recorder.losses[i];
    worst = std::max(worst, std::abs(la - lb) / std::max(1e-12, std::abs(la)));
  }
  return worst;
}

double MaxWeightAbsDiff(const TrainedRun& a, const TrainedRun& b) {
  double worst = 0;
  for (size_t buf = 0; buf < a.weights.size() && buf < b.weights.size();
       ++buf) {
    for (size_t i = 0; i < a.weights[buf].size() && i < b.weights[buf].size();
         ++i) {
      worst = std::max(worst, static_cast<double>(std::abs(a.weights[buf][i] -
                                                           b.weights[buf][i])));
    }
  }
  return worst;
}

void ExpectBitIdentical(const TrainedRun& a, const TrainedRun& b,
                        const std::string& what) {
  ASSERT_EQ(a.recorder.losses.size(), b.recorder.losses.size()) << what;
  for (size_t i = 0; i < a.recorder.losses.size(); ++i) {
    EXPECT_EQ(a.recorder.losses[i], b.recorder.losses[i])
        << what << " loss of step " << i + 1;
    EXPECT_EQ(a.recorder.norms[i], b.recorder.norms[i])
        << what << " norm of step " << i + 1;
  }
  ASSERT_EQ(a.weights.size(), b.weights.size()) << what;
  for (size_t buf = 0; buf < a.weights.size(); ++buf) {
    ASSERT_EQ(0, std::memcmp(a.weights[buf].data(), b.weights[buf].data(),
                             a.weights[buf].size() * sizeof(float)))
        << what << ": weights of buffer " << buf << " differ";
  }
}

}  // namespace stronghold::core
