// What a daemon start does with each stored job (server/job_recovery.h):
// ended jobs stay, queued ones are queued again, running ones are queued
// again from their newest checkpoint.
#include "server/job_recovery.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/server/job_manager_test_util.h"

namespace stronghold::server {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::stronghold::v1;
using Action = JobRecovery::Action;

v1::Job StoredJob(v1::Job::State state) {
  v1::Job job;
  job.set_name("jobs/4");
  *job.mutable_spec() = Tiny(100);
  job.set_state(state);
  job.set_step(57);
  return job;
}

TEST(JobRecoveryTest, EndedJobsStayAsTheyAre) {
  const std::string dir = StateDir("recovery_ended");
  for (v1::Job::State state :
       {v1::Job::SUCCEEDED, v1::Job::FAILED, v1::Job::CANCELLED}) {
    v1::Job job = StoredJob(state);
    const JobRecovery r = RecoverJob(job, dir);
    EXPECT_EQ(r.action, Action::kKeep) << state;
    EXPECT_EQ(job.state(), state);
    EXPECT_EQ(job.step(), 57);
  }
}

TEST(JobRecoveryTest, QueuedJobsAreQueuedAgain) {
  v1::Job job = StoredJob(v1::Job::QUEUED);
  for (int start = 0; start < 5; ++start) {
    const JobRecovery r = RecoverJob(job, StateDir("recovery_queued"));
    EXPECT_EQ(r.action, Action::kRequeue);
    EXPECT_EQ(r.note,
              "daemon restarted; job queued again; it will resume "
              "from step 0");
  }
  EXPECT_EQ(job.step(), 0) << "no checkpoint: it starts over";
}

TEST(JobRecoveryTest, RunningJobsResumeFromTheirNewestCheckpoint) {
  const std::string dir = StateDir("recovery_checkpoint");
  for (const char* name : {"step-000010", "step-000020"}) {
    fs::create_directories(fs::path(dir) / name);
    std::ofstream(fs::path(dir) / name / "manifest.json") << "{}";
  }
  fs::create_directories(fs::path(dir) / ".tmp-step-000030");  // a torn write
  v1::Job job = StoredJob(v1::Job::RUNNING);
  const JobRecovery r = RecoverJob(job, dir);
  EXPECT_EQ(r.action, Action::kRequeue);
  EXPECT_EQ(r.note,
            "daemon restarted while this job ran; it will resume "
            "from checkpoint step-000020");
  EXPECT_EQ(job.step(), 20);
  EXPECT_EQ(job.checkpoints_size(), 2);
  EXPECT_FALSE(fs::exists(fs::path(dir) / ".tmp-step-000030"));
}

}  // namespace
}  // namespace stronghold::server
