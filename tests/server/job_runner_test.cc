// The runner of one job (server/job_runner.h) on the host device: a job
// runs to its end and reports every step and checkpoint.
#include "server/job_runner.h"

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/proto_convert.h"
#include "tests/server/job_manager_test_util.h"

namespace stronghold::server {

namespace {

namespace v1 = ::stronghold::v1;

// Records what the runner reports.
class FakeRecorder : public JobRecorder {
 public:
  void RecordStep(int64_t, const v1::StepMetrics& metrics) override {
    steps.push_back(metrics.step());
  }
  void RecordMessage(int64_t, const std::string& message) override {
    messages.push_back(message);
  }
  void RecordCheckpoints(int64_t, const std::vector<std::string>& present,
                         const std::string& written) override {
    checkpoints = present;
  }
  void RecordTrace(int64_t, int64_t, const std::string&) override {}
  void RecordRestored(int64_t, int64_t) override {}
  core::StopRequest StopRequested(int64_t) override {
    return core::StopRequest::kNone;
  }

  std::vector<int64_t> steps;
  std::vector<std::string> messages;
  std::vector<std::string> checkpoints;
};

JobRun TinyRun(const std::string& name, int steps) {
  const std::string dir = StateDir(name);
  JobRun run;
  run.id = 1;
  run.spec = ToJobSpec(ToJobConfig(Tiny(steps)));
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

}  // namespace
}  // namespace stronghold::server
