// The job manager's side of authorization: a job records who submitted
// it, JobManager::Authorize answers for it (and survives a restart), and a
// job may start from another job's checkpoint only where its submitter may
// download that checkpoint.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/job_manager.h"
#include "tests/server/job_manager_test_util.h"

namespace stronghold::server {
namespace {

using ::testing::HasSubstr;

const Principal kOther{.name = "uid:1001", .uid = 1001, .gid = 1001};
const Principal kAdmin{
    .name = "uid:1002", .uid = 1002, .gid = 1002, .admin = true};
const Principal kRobot{.name = "robot", .kind = Principal::Kind::kToken};

// Waits until job 1 has a checkpoint.
void WaitForCheckpoint(JobManager& m) {
  for (int i = 0; i < 600 && m.Get("jobs/1")->checkpoints().empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_FALSE(m.Get("jobs/1")->checkpoints().empty());
}

TEST(JobAuthorizationTest, OwnerIsRecordedAndDecidesAccess) {
  const std::string dir = StateDir("authz_owner");
  {
    auto m = Manager(dir);
    absl::StatusOr<v1::Job> job = m->Submit(Tiny(100000), kTestUser);
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->owner(), "uid:1000");
    EXPECT_EQ(m->Get("jobs/1")->owner(), "uid:1000");
    EXPECT_EQ(m->List(0, "")->jobs(0).owner(), "uid:1000");
    ASSERT_TRUE(m->Submit(Tiny(1), kRobot).ok());
    EXPECT_EQ(m->Get("jobs/2")->owner(), "robot");

    EXPECT_TRUE(m->Authorize("jobs/1", kTestUser, JobAction::kCancel).ok());
    EXPECT_TRUE(m->Authorize("jobs/1", kAdmin, JobAction::kCancel).ok());
    const absl::Status denied =
        m->Authorize("jobs/1", kOther, JobAction::kCancel);
    EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(denied.message(), HasSubstr("uid:1001 may not cancel jobs/1"));
    EXPECT_EQ(m->Authorize("jobs/2", kTestUser, JobAction::kReadTrace).code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(m->Authorize("jobs/9", kTestUser, JobAction::kCancel).code(),
              absl::StatusCode::kNotFound);
  }
  // The owner is part of the durable record.
  auto m = Manager(dir);
  EXPECT_EQ(m->Get("jobs/1")->owner(), "uid:1000");
  EXPECT_EQ(
      m->Authorize("jobs/1", kOther, JobAction::kDownloadCheckpoint).code(),
      absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(
      m->Authorize("jobs/1", kTestUser, JobAction::kDownloadCheckpoint).ok());
}

TEST(JobAuthorizationTest, ResumingFromAnotherUsersCheckpointIsADownload) {
  auto m = Manager(StateDir("authz_resume"));
  v1::JobSpec source = Tiny(3);
  ASSERT_TRUE(m->Submit(source, kTestUser).ok());
  WaitForCheckpoint(*m);

  v1::JobSpec resume = Tiny(6);
  resume.set_resume_from("jobs/1");
  const absl::StatusOr<v1::Job> denied = m->Submit(resume, kOther);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(
      denied.status().message(),
      HasSubstr(
          "resume_from: uid:1001 may not download the checkpoints of jobs/1"));
  EXPECT_EQ(m->List(0, "")->jobs_size(), 1) << "nothing was recorded";

  absl::StatusOr<v1::Job> own = m->Submit(resume, kTestUser);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->owner(), "uid:1000");
  resume.set_resume_from("jobs/1@step-000003");
  EXPECT_TRUE(m->Submit(resume, kAdmin).ok());
  resume.set_resume_from("jobs/9");
  EXPECT_EQ(m->Submit(resume, kTestUser).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace stronghold::server
