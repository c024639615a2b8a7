// What a daemon start does with each stored job (server/job_recovery.h):
// ended jobs stay, queued ones are queued again, running ones are queued
// again and the stop is counted, until the count passes max_restarts.
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
    const JobRecovery r = RecoverJob(job, dir, /*max_restarts=*/2);
    EXPECT_EQ(r.action, Action::kKeep) << state;
    EXPECT_EQ(job.state(), state);
    EXPECT_EQ(job.daemon_stops(), 0);
    EXPECT_EQ(job.step(), 57);
  }
}

TEST(JobRecoveryTest, QueuedJobsAreQueuedAgainWithoutCountingAStop) {
  v1::Job job = StoredJob(v1::Job::QUEUED);
  for (int start = 0; start < 5; ++start) {
    const JobRecovery r =
        RecoverJob(job, StateDir("recovery_queued"), /*max_restarts=*/0);
    EXPECT_EQ(r.action, Action::kRequeue);
    EXPECT_EQ(r.note,
              "daemon restarted; job queued again; it will resume from step 0");
  }
  EXPECT_EQ(job.daemon_stops(), 0);
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
  const JobRecovery r = RecoverJob(job, dir, /*max_restarts=*/2);
  EXPECT_EQ(r.action, Action::kRequeue);
  EXPECT_EQ(r.note,
            "daemon restarted while this job ran; it will resume from "
            "checkpoint step-000020");
  EXPECT_EQ(job.step(), 20);
  EXPECT_EQ(job.daemon_stops(), 1);
  EXPECT_EQ(job.checkpoints_size(), 2);
  EXPECT_FALSE(fs::exists(fs::path(dir) / ".tmp-step-000030"));
}

TEST(JobRecoveryTest, RunningJobsFailOnceTheDaemonStoppedTooOften) {
  const std::string dir = StateDir("recovery_bounded");
  v1::Job job = StoredJob(v1::Job::RUNNING);
  for (int stop = 1; stop <= 2; ++stop) {
    const JobRecovery r = RecoverJob(job, dir, /*max_restarts=*/2);
    EXPECT_EQ(r.action, Action::kRequeue) << stop;
    EXPECT_EQ(job.daemon_stops(), stop);
    job.set_state(v1::Job::RUNNING);  // it ran again, and the daemon died
  }
  const JobRecovery r = RecoverJob(job, dir, /*max_restarts=*/2);
  EXPECT_EQ(r.action, Action::kFail);
  EXPECT_EQ(job.daemon_stops(), 3);
  EXPECT_EQ(r.error, "the daemon stopped 3 times while running this job");
  EXPECT_NE(r.note.find("--max_job_restarts"), std::string::npos) << r.note;

  // 0: the first stop fails it.
  v1::Job other = StoredJob(v1::Job::RUNNING);
  EXPECT_EQ(RecoverJob(other, dir, /*max_restarts=*/0).action, Action::kFail);
}

TEST(JobRecoveryTest, ARunningRankOfManyIsFailedAndAQueuedOneQueuedAgain) {
  const std::string dir = StateDir("recovery_rank");
  fs::create_directories(fs::path(dir) / "step-000010");
  std::ofstream(fs::path(dir) / "step-000010" / "manifest.json") << "{}";
  v1::Job job = StoredJob(v1::Job::RUNNING);
  job.mutable_spec()->mutable_distributed()->set_world_size(2);
  job.mutable_spec()->mutable_distributed()->set_rank(1);
  // Killed while it trained: the other rank failed the job.
  JobRecovery r = RecoverJob(job, dir, /*max_restarts=*/2);
  EXPECT_EQ(r.action, Action::kFail);
  EXPECT_EQ(r.error,
            "the daemon stopped while this rank ran (rank 1 of 2); the other "
            "ranks failed the job: resubmit every rank with --resume-from");
  EXPECT_NE(r.note.find("newest checkpoint: step-000010"), std::string::npos)
      << r.note;
  EXPECT_EQ(job.checkpoints_size(), 1);
  // Stopped by a shutdown at a common step: queued again to meet the others.
  job.set_state(v1::Job::QUEUED);
  r = RecoverJob(job, dir, /*max_restarts=*/2);
  EXPECT_EQ(r.action, Action::kRequeue);
  EXPECT_EQ(job.step(), 10);
}

}  // namespace
}  // namespace stronghold::server
