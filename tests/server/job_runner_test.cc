// The runner of one job (server/job_runner.h) on the host device: a job
// runs to its end and reports every step and checkpoint; and an exception
// of any kind, thrown while the trainer is created, restored or run, ends
// the run with a status naming what was happening, after which the runner
// runs the next job as if nothing had happened.
#include "server/job_runner.h"

#include <c10/util/Exception.h>

#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/proto_convert.h"
#include "tests/server/job_manager_test_util.h"

namespace stronghold::server {

// Swaps the runner's core::Trainer::Create for a test's.
class JobRunnerTestPeer {
 public:
  static void SetTrainerFactory(JobRunner& runner,
                                JobRunner::TrainerFactory factory) {
    runner.create_trainer_ = std::move(factory);
  }
};

namespace {

namespace v1 = ::stronghold::v1;

// Records what the runner reports; throws `exception` from the callback
// named `throw_in` ("step" on step 2, "restored") when set.
class FakeRecorder : public JobRecorder {
 public:
  void RecordStep(int64_t, const v1::StepMetrics& metrics) override {
    steps.push_back(metrics.step());
    if (throw_in == "step" && metrics.step() == 2) exception();
  }
  void RecordMessage(int64_t, const std::string& message) override {
    messages.push_back(message);
  }
  void RecordCheckpoints(int64_t, const std::vector<std::string>& present,
                         const std::string& written) override {
    checkpoints = present;
  }
  void RecordTrace(int64_t, int64_t, const std::string&) override {}
  void RecordRestored(int64_t, int64_t) override {
    if (throw_in == "restored") exception();
  }
  core::StopRequest StopRequested(int64_t) override {
    return core::StopRequest::kNone;
  }

  std::string throw_in;
  std::function<void()> exception;
  std::vector<int64_t> steps;
  std::vector<std::string> messages;
  std::vector<std::string> checkpoints;
};

JobRun TinyRun(const std::string& name, int steps) {
  const std::string dir = StateDir(name);
  JobRun run;
  run.id = 1;
  run.spec = ToJobSpec(ToJobConfig(Tiny(steps)));
  run.plan = core::PlanExecution(ToJobConfig(run.spec), {.device = "cpu"});
  run.job_dir = dir;
  run.checkpoints_dir = (std::filesystem::path(dir) / "checkpoints").string();
  return run;
}

JobRunner Runner() {
  return JobRunner({.budgets = {.device = "cpu",
                                .device_bytes = int64_t{1} << 30,
                                .host_bytes = int64_t{1} << 30},
                    .optimizer_threads = 1});
}

TEST(JobRunnerTest, RunsAJobToItsEndAndReportsIt) {
  JobRunner runner = Runner();
  FakeRecorder recorder;
  ASSERT_TRUE(runner.Run(TinyRun("runner_ok", 3), recorder).ok());
  EXPECT_EQ(recorder.steps, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(recorder.checkpoints, std::vector<std::string>{"step-000003"});
}

TEST(JobRunnerTest, AnExceptionCreatingTheTrainerEndsTheRun) {
  JobRunner runner = Runner();
  FakeRecorder recorder;
  JobRunnerTestPeer::SetTrainerFactory(
      runner,
      [](const core::JobConfig&, const core::ExecutionPlan&,
         const core::TrainerOptions&)
          -> absl::StatusOr<std::unique_ptr<core::Trainer>> {
        throw std::bad_alloc();
      });
  absl::Status s = runner.Run(TinyRun("runner_oom", 3), recorder);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(s.message(),
            "out of memory while creating the trainer (std::bad_alloc)");

  // LibTorch's errors (c10::Error derives from std::exception): the first
  // line of the message, not the C++ stack trace c10 appends.
  JobRunnerTestPeer::SetTrainerFactory(
      runner,
      [](const core::JobConfig&, const core::ExecutionPlan&,
         const core::TrainerOptions&)
          -> absl::StatusOr<std::unique_ptr<core::Trainer>> {
        TORCH_CHECK(false, "the device fell off the bus");
        return nullptr;
      });
  s = runner.Run(TinyRun("runner_c10", 3), recorder);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_EQ(
      s.message(),
      "exception while creating the trainer: the device fell off the bus");

  JobRunnerTestPeer::SetTrainerFactory(
      runner,
      [](const core::JobConfig&, const core::ExecutionPlan&,
         const core::TrainerOptions&)
          -> absl::StatusOr<std::unique_ptr<core::Trainer>> { throw 42; });
  s = runner.Run(TinyRun("runner_int", 3), recorder);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_EQ(s.message(),
            "exception of an unknown type while creating the trainer");
  EXPECT_TRUE(recorder.steps.empty());
}

TEST(JobRunnerTest, AnExceptionRestoringOrTrainingEndsTheRunAndNotTheNext) {
  JobRunner runner = Runner();
  FakeRecorder restoring;
  restoring.throw_in = "restored";
  restoring.exception = [] { throw std::runtime_error("disk on fire"); };
  absl::Status s = runner.Run(TinyRun("runner_restore", 3), restoring);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_EQ(s.message(), "exception while restoring the trainer: disk on fire");
  EXPECT_TRUE(restoring.steps.empty());

  // Thrown from inside core::Trainer::Run (its observer), mid-training:
  // the trainer turns it into its status (core/util/exception_status.h).
  FakeRecorder training;
  training.throw_in = "step";
  training.exception = [] { throw std::bad_alloc(); };
  s = runner.Run(TinyRun("runner_train", 5), training);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(s.message(), "training: out of host memory (std::bad_alloc)");
  EXPECT_EQ(training.steps, (std::vector<int64_t>{1, 2}));

  FakeRecorder next;
  ASSERT_TRUE(runner.Run(TinyRun("runner_next", 3), next).ok());
  EXPECT_EQ(next.steps, (std::vector<int64_t>{1, 2, 3}));
}

// A run predicts its step time from the node's profile at the start, says
// so, carries it in every step, and reports a step more than 25% off: here
// the H200's profile for a tiny job that runs on this CPU, which is many
// times slower than that on any CPU.
TEST(JobRunnerTest, PredictsTheStepAndReportsStepsFarFromIt) {
  JobRunnerOptions options{.budgets = {.device = "cpu",
                                       .device_bytes = int64_t{1} << 30,
                                       .host_bytes = int64_t{1} << 30},
                           .optimizer_threads = 1};
  std::vector<core::JobConfig> asked;
  options.node_profile = [&asked](const core::JobConfig& config) {
    asked.push_back(config);
    return core::NamedHardwareProfile("h200");
  };
  JobRunner runner(options);
  std::vector<double> predicted;
  struct : FakeRecorder {
    void RecordStep(int64_t id, const v1::StepMetrics& m) override {
      FakeRecorder::RecordStep(id, m);
      predicted->push_back(m.predicted_step_s());
    }
    std::vector<double>* predicted;
  } recorder;
  recorder.predicted = &predicted;
  ASSERT_TRUE(runner.Run(TinyRun("runner_predicted", 3), recorder).ok());
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].training.steps, 3);  // the run's own config
  ASSERT_EQ(predicted.size(), 3u);
  EXPECT_GT(predicted[0], 0);
  EXPECT_EQ(predicted[1], predicted[0]);
  ASSERT_GE(recorder.messages.size(), 2u);
  EXPECT_NE(recorder.messages[0].find("predicted step time"), std::string::npos)
      << recorder.messages[0];
  // Step 1 is not compared; step 2 is reported, step 3 (the same way) not.
  int reports = 0;
  for (const std::string& m : recorder.messages) {
    if (m.find("than the predicted") == std::string::npos) continue;
    ++reports;
    EXPECT_NE(m.find("step 2 took"), std::string::npos) << m;
    EXPECT_NE(m.find("slower than the predicted"), std::string::npos) << m;
  }
  EXPECT_EQ(reports, 1);
}

// A profile that cannot be had: no prediction, no line, the job trains.
TEST(JobRunnerTest, WithoutAProfileTheJobTrainsUnpredicted) {
  JobRunnerOptions options{.budgets = {.device = "cpu",
                                       .device_bytes = int64_t{1} << 30,
                                       .host_bytes = int64_t{1} << 30},
                           .optimizer_threads = 1};
  options.node_profile = [](const core::JobConfig&) {
    return absl::StatusOr<core::HardwareProfile>(
        absl::FailedPreconditionError("measuring failed"));
  };
  JobRunner runner(options);
  FakeRecorder recorder;
  ASSERT_TRUE(runner.Run(TinyRun("runner_unpredicted", 2), recorder).ok());
  EXPECT_EQ(recorder.steps, (std::vector<int64_t>{1, 2}));
  for (const std::string& m : recorder.messages) {
    EXPECT_EQ(m.find("predicted"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace stronghold::server
