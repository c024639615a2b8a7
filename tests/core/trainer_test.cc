#include "core/train/trainer.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/checkpoint/checkpoint.h"
#include "gtest/gtest.h"
#include "tests/core/training_test_util.h"

namespace stronghold::core {
namespace {

namespace fs = std::filesystem;

class Recorder : public TrainerObserver {
 public:
  void OnStep(const StepMetrics& s) override {
    losses.push_back(s.loss);
    if (stop_after > 0 && s.step >= stop_after) stop = stop_kind;
  }
  void OnMessage(const std::string&) override {}
  void OnCheckpoint(const std::string& name) override {
    checkpoints.push_back(name);
  }
  StopRequest StopRequested() override { return stop; }

  std::vector<double> losses;
  std::vector<std::string> checkpoints;
  int stop_after = 0;
  StopRequest stop_kind = StopRequest::kNone;
  StopRequest stop = StopRequest::kNone;
};

JobConfig Tiny(int steps) {
  JobConfig c;
  c.model = {
      .layers = 2, .hidden = 64, .heads = 4, .seq_len = 64, .vocab = 256};
  c.training.steps = steps;
  c.training.batch = 8;
  c.training.micro_batch = 8;
  c.training.warmup_steps = 2;
  return c;
}

std::string JobDir(const std::string& name) {
  const fs::path p =
      fs::path(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR")
                                          : "/tmp") /
      name;
  fs::remove_all(p);
  return p.string();
}

TEST(LearningRateTest, WarmupThenCosine) {
  TrainingConfig t;
  t.lr = 1.0;
  t.min_lr = 0.1;
  t.warmup_steps = 10;
  t.steps = 110;
  EXPECT_DOUBLE_EQ(LearningRate(t, 1), 0.1);
  EXPECT_DOUBLE_EQ(LearningRate(t, 10), 1.0);
  EXPECT_NEAR(LearningRate(t, 60), 0.55, 1e-12);  // half way: (1 + 0.1) / 2
  EXPECT_NEAR(LearningRate(t, 110), 0.1, 1e-12);
}

TEST(TrainerTest, LossFallsAndTrainingIsDeterministic) {
  std::vector<std::vector<float>> weights[2];
  std::vector<double> losses[2];
  for (int run = 0; run < 2; ++run) {
    auto trainer =
        Trainer::Create(Tiny(30), PlanFor(Tiny(30)),
                        {.job_dir = JobDir("det" + std::to_string(run))});
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    Recorder r;
    ASSERT_TRUE((*trainer)->Run(&r).ok());
    ASSERT_EQ(r.losses.size(), 30u);
    losses[run] = r.losses;
    auto w = (*trainer)->Weights();
    ASSERT_TRUE(w.ok()) << w.status();
    weights[run] = *std::move(w);
    EXPECT_EQ(r.checkpoints, std::vector<std::string>{"step-000030"});
  }
  EXPECT_LT(losses[0].back(), 0.7 * losses[0].front());
  EXPECT_EQ(losses[0], losses[1]);  // bit for bit
  EXPECT_EQ(weights[0], weights[1]);
}

TEST(TrainerTest, GradientAccumulationMatchesOneLargeBatch) {
  JobConfig whole = Tiny(3), split = Tiny(3);
  split.training.micro_batch = 2;  // 4 micro-batches
  auto a = Trainer::Create(whole, PlanFor(whole), {.job_dir = JobDir("acc_a")});
  auto b = Trainer::Create(split, PlanFor(split), {.job_dir = JobDir("acc_b")});
  ASSERT_TRUE(a.ok() && b.ok());
  Recorder ra, rb;
  ASSERT_TRUE((*a)->Run(&ra).ok());
  ASSERT_TRUE((*b)->Run(&rb).ok());
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(ra.losses[i], rb.losses[i], 1e-4);
  const auto weights_a = (*a)->Weights(), weights_b = (*b)->Weights();
  ASSERT_TRUE(weights_a.ok() && weights_b.ok());
  const auto& wa = *weights_a;
  const auto& wb = *weights_b;
  for (size_t buf = 0; buf < wa.size(); ++buf) {
    for (size_t i = 0; i < wa[buf].size(); ++i) {
      ASSERT_NEAR(wa[buf][i], wb[buf][i], 1e-4)
          << "buffer " << buf << " element " << i;
    }
  }
}

TEST(TrainerTest, CancelStopsWithoutCheckpoint) {
  auto trainer = Trainer::Create(Tiny(30), PlanFor(Tiny(30)),
                                 {.job_dir = JobDir("cancel")});
  ASSERT_TRUE(trainer.ok());
  Recorder r;
  r.stop_after = 3;
  r.stop_kind = StopRequest::kCancel;
  EXPECT_EQ((*trainer)->Run(&r).code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(r.losses.size(), 3u);
  EXPECT_TRUE(r.checkpoints.empty());
}

TEST(TrainerTest, ShutdownFinishesTheStepAndCheckpoints) {
  const std::string dir = JobDir("shutdown");
  auto trainer = Trainer::Create(Tiny(30), PlanFor(Tiny(30)), {.job_dir = dir});
  ASSERT_TRUE(trainer.ok());
  Recorder r;
  r.stop_after = 4;
  r.stop_kind = StopRequest::kShutdown;
  EXPECT_EQ((*trainer)->Run(&r).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(r.checkpoints, std::vector<std::string>{"step-000004"});
  EXPECT_EQ(ListCheckpoints(dir + "/checkpoints"),
            std::vector<std::string>{"step-000004"});
}

TEST(TrainerTest, PeriodicCheckpointsKeepLast) {
  JobConfig c = Tiny(6);
  c.checkpoint.every_steps = 2;
  c.checkpoint.keep_last = 2;
  const std::string dir = JobDir("periodic");
  auto trainer = Trainer::Create(c, PlanFor(c), {.job_dir = dir});
  ASSERT_TRUE(trainer.ok());
  Recorder r;
  ASSERT_TRUE((*trainer)->Run(&r).ok());
  EXPECT_EQ(r.checkpoints, (std::vector<std::string>{
                               "step-000002", "step-000004", "step-000006"}));
  EXPECT_EQ(ListCheckpoints(dir + "/checkpoints"),
            (std::vector<std::string>{"step-000004", "step-000006"}));
}

}  // namespace
}  // namespace stronghold::core
