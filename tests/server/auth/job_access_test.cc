// Who may act on a job: its owner and admins; nobody else, and nobody at all
// (but admins) on a job recorded without an owner.
#include "server/auth/job_access.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

v1::Job JobOwnedBy(const std::string& owner) {
  v1::Job job;
  job.set_name("jobs/7");
  job.set_owner(owner);
  return job;
}

Principal User(int64_t uid) {
  return {.name = UnixPrincipalName(uid),
          .kind = Principal::Kind::kUnixUser,
          .uid = uid};
}

constexpr JobAction kEveryAction[] = {JobAction::kCancel, JobAction::kDelete,
                                      JobAction::kDownloadCheckpoint,
                                      JobAction::kReadTrace};

TEST(JobAccessTest, OwnerMayDoEverything) {
  for (JobAction action : kEveryAction) {
    EXPECT_TRUE(
        CheckJobAccess(User(1000), JobOwnedBy("uid:1000"), action).ok());
  }
}

TEST(JobAccessTest, OthersAreDeniedNamingPrincipalActionJobAndOwner) {
  for (JobAction action : kEveryAction) {
    const absl::Status s =
        CheckJobAccess(User(1001), JobOwnedBy("uid:1000"), action);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(s.message(),
                AllOf(HasSubstr("uid:1001 may not"),
                      HasSubstr(std::string(JobActionText(action))),
                      HasSubstr("jobs/7"), HasSubstr("belongs to uid:1000")));
  }
}

TEST(JobAccessTest, AdminsMayActOnEveryJob) {
  Principal admin = User(1002);
  admin.admin = true;
  for (JobAction action : kEveryAction) {
    EXPECT_TRUE(CheckJobAccess(admin, JobOwnedBy("uid:1000"), action).ok());
    EXPECT_TRUE(CheckJobAccess(admin, JobOwnedBy(""), action).ok());
  }
}

TEST(JobAccessTest, JobWithoutOwnerIsLeftToAdmins) {
  const absl::Status s =
      CheckJobAccess(User(1000), JobOwnedBy(""), JobAction::kCancel);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("has no recorded owner"));
  // An unidentified (empty) principal never matches an empty owner.
  EXPECT_EQ(
      CheckJobAccess(Principal{}, JobOwnedBy(""), JobAction::kCancel).code(),
      absl::StatusCode::kPermissionDenied);
}

TEST(JobAccessTest, PrincipalsOfOtherKindsMatchByName) {
  const Principal token{.name = "CN=alice,O=Lab",
                        .kind = Principal::Kind::kToken};
  const Principal cert{.name = "CN=alice,O=Lab",
                       .kind = Principal::Kind::kCertificate};
  // A token principal may be named like a certificate subject on purpose:
  // one person, two ways in, the same jobs.
  EXPECT_TRUE(
      CheckJobAccess(token, JobOwnedBy("CN=alice,O=Lab"), JobAction::kCancel)
          .ok());
  EXPECT_TRUE(
      CheckJobAccess(cert, JobOwnedBy("CN=alice,O=Lab"), JobAction::kCancel)
          .ok());
  EXPECT_FALSE(
      CheckJobAccess(cert, JobOwnedBy("CN=alice,O=Lab2"), JobAction::kCancel)
          .ok());
}

}  // namespace
}  // namespace stronghold::server
