// The JobManager's limits (issue 15 item 6), in process: queued jobs and
// watch streams per principal and in total, checkpoint bytes reserved at
// submission (and the estimate against what a job really writes), the
// quota checked while a job runs, and DeleteJob.
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/job_limits.h"
#include "server/job_manager.h"
#include "server/job_store.h"
#include "server/proto_convert.h"
#include "tests/server/job_manager_test_util.h"

namespace stronghold::server {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::stronghold::v1;

std::unique_ptr<JobManager> LimitedManager(const std::string& dir,
                                           JobLimits limits) {
  auto m = JobManager::Create(
      {.state_dir = dir, .limits = limits, .optimizer_threads = 1});
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

bool WaitState(JobManager& m, const std::string& name, v1::Job::State state) {
  for (int i = 0; i < 600; ++i) {
    if (m.Get(name)->state() == state) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

bool Contains(const absl::Status& s, const std::string& part) {
  return s.message().find(part) != absl::string_view::npos;
}

TEST(JobManagerLimitsTest, QueuedJobsPerPrincipalAndInTotal) {
  auto m = LimitedManager(
      StateDir("jm_queue_limits"),
      {.max_queued_jobs = 3, .max_queued_jobs_per_principal = 2});
  ASSERT_TRUE(m->Submit(Tiny(1'000'000), Principal{.name = "alice"}).ok());
  ASSERT_TRUE(
      WaitState(*m, "jobs/1", v1::Job::RUNNING));  // running is not queued
  ASSERT_TRUE(m->Submit(Tiny(1), Principal{.name = "alice"}).ok());
  ASSERT_TRUE(m->Submit(Tiny(1), Principal{.name = "alice"}).ok());
  absl::Status s = m->Submit(Tiny(1), Principal{.name = "alice"}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(s, "queued jobs of alice: 2 of 2")) << s;
  ASSERT_TRUE(m->Submit(Tiny(1), Principal{.name = "bob"}).ok())
      << "bob has his own";
  s = m->Submit(Tiny(1), Principal{.name = "carol"}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(
      Contains(s, "queued jobs: 3 of 3 (strongholdd --max_queued_jobs)"))
      << s;
  ASSERT_TRUE(m->Cancel("jobs/2").ok());
  EXPECT_TRUE(m->Submit(Tiny(1), Principal{.name = "carol"}).ok())
      << "a cancelled job leaves the queue";
  ASSERT_TRUE(m->Cancel("jobs/1").ok());
}

TEST(JobManagerLimitsTest, WatchStreamsPerPrincipal) {
  auto m = LimitedManager(
      StateDir("jm_watch_limits"),
      {.max_watch_streams = 3, .max_watch_streams_per_principal = 2});
  ASSERT_TRUE(m->Submit(Tiny(1'000'000), kTestUser).ok());
  auto w1 = m->Follow("jobs/1", 0, "alice", [] {});
  auto w2 = m->Follow("jobs/1", 0, "alice", [] {});
  ASSERT_TRUE(w1.ok() && w2.ok());
  absl::StatusOr<std::unique_ptr<JobWatch>> w3 =
      m->Follow("jobs/1", 0, "alice", [] {});
  ASSERT_FALSE(w3.ok());
  EXPECT_EQ(w3.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(w3.status(), "--max_watch_streams_per_principal"))
      << w3.status();
  EXPECT_EQ(m->Follow("jobs/9", 0, "alice", [] {}).status().code(),
            absl::StatusCode::kNotFound);
  w1->reset();  // a stream that ended gives its slot back
  EXPECT_TRUE(m->Follow("jobs/1", 0, "alice", [] {}).ok());
  ASSERT_TRUE(m->Cancel("jobs/1").ok());
}

// The reservation is an upper bound of what a job writes: run one and
// compare with its directory.
TEST(JobManagerLimitsTest, TheCheckpointEstimateBoundsWhatIsWritten) {
  const std::string dir = StateDir("jm_checkpoint_estimate");
  auto m = Manager(dir);
  v1::JobSpec spec = Tiny(3);
  spec.mutable_checkpoint()->set_every_steps(1);
  absl::StatusOr<v1::Job> job = m->Submit(spec, kTestUser);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitState(*m, "jobs/1", v1::Job::SUCCEEDED));
  const std::string checkpoints = JobStore::Open(dir)->CheckpointsDir(1);
  const int64_t one = DirectoryBytes(checkpoints + "/step-000001");
  EXPECT_GE(one, 12 * job->parameters());
  const core::JobConfig config = ToJobConfig(job->spec());
  EXPECT_LE(one, CheckpointBytes(job->parameters(), config.model));
  EXPECT_LE(DirectoryBytes(checkpoints),
            ReservedCheckpointBytes(job->parameters(), config));
}

TEST(JobManagerLimitsTest, CheckpointQuotasRefuseAtSubmission) {
  const core::JobConfig tiny = ToJobConfig(Tiny(1));
  auto m = Manager(StateDir("jm_probe"));
  const int64_t parameters = m->Submit(Tiny(1), kTestUser)->parameters();
  m.reset();
  // Room for one tiny job keeping two checkpoints; three for the principal.
  const int64_t per_job = 2 * CheckpointBytes(parameters, tiny.model);
  auto limited =
      LimitedManager(StateDir("jm_checkpoint_quota"),
                     {.max_checkpoint_bytes_per_job = per_job,
                      .max_checkpoint_bytes_per_principal = 3 * per_job});
  v1::JobSpec every = Tiny(1000);
  every.mutable_checkpoint()->set_every_steps(1);
  absl::Status s = limited->Submit(every, kTestUser).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(s, "up to 1001 checkpoints")) << s;
  every.mutable_checkpoint()->set_keep_last(1);
  v1::JobSpec long_run = every;
  long_run.mutable_training()->set_steps(1'000'000);
  ASSERT_TRUE(
      limited->Submit(long_run, kTestUser).ok());  // runs, reserving per_job
  ASSERT_TRUE(limited->Submit(every, kTestUser).ok());
  ASSERT_TRUE(limited->Submit(every, kTestUser).ok());
  s = limited->Submit(every, kTestUser).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(s, "--max_checkpoint_bytes_per_principal")) << s;
  EXPECT_TRUE(limited->Submit(every, Principal{.name = "bob"}).ok())
      << "another principal has its own";
  // A cancelled job holds what it wrote (nothing), not its reservation.
  ASSERT_TRUE(limited->Cancel("jobs/3").ok());
  EXPECT_TRUE(limited->Submit(every, kTestUser).ok());
  ASSERT_TRUE(limited->Cancel("jobs/1").ok());
}

// The reservation bounds what a job writes; a directory that holds more
// anyway (here a stray file) fails the job at its next checkpoint.
TEST(JobManagerLimitsTest, AJobPastItsQuotaFailsAtTheCheckpoint) {
  const std::string dir = StateDir("jm_quota_running");
  auto m = LimitedManager(dir, {.max_checkpoint_bytes_per_job = 4 << 20});
  ASSERT_TRUE(m->Submit(Tiny(1'000'000), kTestUser).ok());
  ASSERT_TRUE(WaitState(*m, "jobs/1", v1::Job::RUNNING));
  v1::JobSpec spec = Tiny(1000);
  spec.mutable_checkpoint()->set_every_steps(1);
  spec.mutable_checkpoint()->set_keep_last(1);
  ASSERT_TRUE(m->Submit(spec, kTestUser).ok());
  const std::string checkpoints = JobStore::Open(dir)->CheckpointsDir(2);
  fs::create_directories(checkpoints);
  std::ofstream(checkpoints + "/stray") << std::string(4 << 20, 'x');
  ASSERT_TRUE(m->Cancel("jobs/1").ok());
  ASSERT_TRUE(WaitState(*m, "jobs/2", v1::Job::FAILED));
  const v1::Job failed = *m->Get("jobs/2");
  EXPECT_EQ(failed.step(), 1) << "stopped at its first checkpoint";
  EXPECT_EQ(failed.error().rfind(
                "RESOURCE_EXHAUSTED: checkpoint bytes of this job: ", 0),
            0u)
      << failed.error();
  EXPECT_NE(failed.error().find("--max_checkpoint_bytes_per_job"),
            std::string::npos);
}

TEST(JobManagerLimitsTest, DeleteRemovesAnEndedJobForGood) {
  const std::string dir = StateDir("jm_delete");
  const std::string job_dir = JobStore::Open(dir)->JobDir(1);
  {
    auto m = Manager(dir);
    ASSERT_TRUE(m->Submit(Tiny(2), kTestUser).ok());
    ASSERT_TRUE(WaitState(*m, "jobs/1", v1::Job::SUCCEEDED));
    ASSERT_TRUE(m->Submit(Tiny(1'000'000), kTestUser).ok());
    ASSERT_TRUE(WaitState(*m, "jobs/2", v1::Job::RUNNING));
    absl::Status s = m->Delete("jobs/2");
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE(Contains(s, "is RUNNING; only ended jobs")) << s;
    // A queued job that resumes from jobs/1 keeps it.
    v1::JobSpec resume = Tiny(4);
    resume.set_resume_from("jobs/1");
    ASSERT_TRUE(m->Submit(resume, kTestUser).ok());
    s = m->Delete("jobs/1");
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE(Contains(s, "jobs/3 (QUEUED) resumes from")) << s;
    ASSERT_TRUE(m->Cancel("jobs/3").ok());
    ASSERT_TRUE(fs::exists(job_dir));
    ASSERT_TRUE(m->Delete("jobs/1").ok());
    EXPECT_FALSE(fs::exists(job_dir));
    EXPECT_EQ(m->Get("jobs/1").status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(m->Delete("jobs/1").code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(m->List(0, "")->jobs_size(), 2);
    ASSERT_TRUE(m->Cancel("jobs/2").ok());
  }
  // A delete that a crash interrupted after the rename: gone at the start.
  fs::create_directories(fs::path(dir) / "jobs" / ".del-9");
  auto m = Manager(dir);
  EXPECT_EQ(m->Get("jobs/1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(fs::path(dir) / "jobs" / ".del-9"));
  EXPECT_EQ(m->Submit(Tiny(1), kTestUser)->name(), "jobs/4")
      << "names are never reused";
}

}  // namespace
}  // namespace stronghold::server
