#include "server/job_limits.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/server/job_manager_test_util.h"

namespace stronghold::server {
namespace {

bool Contains(const absl::Status& s, const std::string& part) {
  return s.message().find(part) != absl::string_view::npos;
}

core::JobConfig Config(int steps, int every, int keep) {
  core::JobConfig c;
  c.training.steps = steps;
  c.checkpoint.every_steps = every;
  c.checkpoint.keep_last = keep;
  return c;
}

TEST(KeptCheckpointsTest, CountsWhatIsOnDiskAtOnce) {
  EXPECT_EQ(KeptCheckpoints(Config(100, 0, 0)),
            2);  // the final one, and one on a stop
  EXPECT_EQ(KeptCheckpoints(Config(100, 10, 0)),
            11);  // every 10th (the 100th is the final)
  EXPECT_EQ(KeptCheckpoints(Config(105, 10, 0)),
            12);  // ten, the final at 105, a stop
  EXPECT_EQ(KeptCheckpoints(Config(1000, 1, 0)),
            1001);  // --checkpoint-every 1 --keep-last 0
  EXPECT_EQ(KeptCheckpoints(Config(1000, 1, 3)),
            4);  // three kept, one being written
  EXPECT_EQ(KeptCheckpoints(Config(100, 50, 5)), 3);  // fewer written than kept
}

TEST(CheckpointBytesTest, TwelveBytesAParameterAndSaturates) {
  core::ModelConfig model;
  EXPECT_GE(CheckpointBytes(1000, model), 12'000);
  EXPECT_EQ(CheckpointBytes(INT64_MAX / 2, model), INT64_MAX);
  EXPECT_EQ(ReservedCheckpointBytes(INT64_MAX / 2, Config(1000, 1, 0)),
            INT64_MAX);
}

TEST(JobLimitsTest, ErrorsNameTheLimitAndTheFlag) {
  const JobLimits limits{.max_queued_jobs = 10,
                         .max_queued_jobs_per_principal = 3,
                         .max_checkpoint_bytes_per_job = 1 << 20,
                         .max_checkpoint_bytes_per_principal = 4 << 20};
  EXPECT_TRUE(CheckQueueLimits(limits, "alice", 9, 2).ok());
  absl::Status s = CheckQueueLimits(limits, "alice", 10, 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(
      Contains(s, "queued jobs: 10 of 10 (strongholdd --max_queued_jobs)"))
      << s;
  s = CheckQueueLimits(limits, "alice", 5, 3);
  EXPECT_TRUE(Contains(s,
                       "queued jobs of alice: 3 of 3 (strongholdd "
                       "--max_queued_jobs_per_principal)"))
      << s;

  EXPECT_TRUE(CheckJobCheckpoints(limits, 10'000, Config(10, 0, 0)).ok());
  absl::StatusOr<int64_t> job =
      CheckJobCheckpoints(limits, 10'000, Config(1000, 1, 0));
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(job.status(), "up to 1001 checkpoints")) << job.status();
  EXPECT_TRUE(Contains(job.status(), "--max_checkpoint_bytes_per_job"))
      << job.status();
  EXPECT_TRUE(Contains(job.status(), "checkpoint.keep_last")) << job.status();

  EXPECT_TRUE(CheckPrincipalCheckpoints(limits, "bob", 3 << 20, 1 << 20).ok());
  s = CheckPrincipalCheckpoints(limits, "bob", 3 << 20, (1 << 20) + 1);
  EXPECT_TRUE(Contains(s, "--max_checkpoint_bytes_per_principal")) << s;
  EXPECT_TRUE(Contains(s, "strongholdctl delete")) << s;
  EXPECT_TRUE(CheckCheckpointsHeld(limits, 1 << 20).ok());
  EXPECT_FALSE(CheckCheckpointsHeld(limits, (1 << 20) + 1).ok());
}

TEST(JobLimitsTest, ValidateNamesALimitBelowOne) {
  EXPECT_TRUE(ValidateJobLimits({}).ok());
  const absl::Status s = ValidateJobLimits({.max_watch_streams = 0});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "max_watch_streams:")) << s;
}

TEST(ParseQuotaTest, SizesAndPercentagesOfTheFileSystem) {
  EXPECT_EQ(*ParseQuota("f", "1MiB", 1000), 1 << 20);
  EXPECT_EQ(*ParseQuota("f", "25%", 1000), 250);
  EXPECT_EQ(*ParseQuota("f", "100%", 1000), 1000);
  for (const char* bad : {"0", "0%", "101%", "x%", "-5%", "lots"}) {
    const absl::StatusOr<int64_t> q =
        ParseQuota("max_checkpoint_bytes_per_job", bad, 1000);
    EXPECT_FALSE(q.ok()) << bad;
    EXPECT_TRUE(Contains(q.status(), "--max_checkpoint_bytes_per_job"))
        << q.status();
  }
}

TEST(DirectoryBytesTest, SumsRegularFilesBelow) {
  const std::string dir = StateDir("directory_bytes");
  std::filesystem::create_directories(dir + "/a/b");
  std::ofstream(dir + "/x") << std::string(100, 'x');
  std::ofstream(dir + "/a/b/y") << std::string(23, 'y');
  EXPECT_EQ(DirectoryBytes(dir), 123);
  EXPECT_EQ(DirectoryBytes(dir + "/missing"), 0);
}

TEST(StreamSlotsTest, PerPrincipalAndTotalCaps) {
  StreamSlots slots(/*max_total=*/3, /*max_per_principal=*/2);
  absl::StatusOr<StreamSlots::Slot> a1 = slots.Acquire("a");
  absl::StatusOr<StreamSlots::Slot> a2 = slots.Acquire("a");
  ASSERT_TRUE(a1.ok() && a2.ok());
  absl::StatusOr<StreamSlots::Slot> a3 = slots.Acquire("a");
  ASSERT_FALSE(a3.ok());
  EXPECT_TRUE(Contains(a3.status(), "--max_watch_streams_per_principal"))
      << a3.status();
  absl::StatusOr<StreamSlots::Slot> b1 = slots.Acquire("b");
  ASSERT_TRUE(b1.ok());
  absl::StatusOr<StreamSlots::Slot> b2 = slots.Acquire("b");
  ASSERT_FALSE(b2.ok());
  EXPECT_TRUE(Contains(
      b2.status(),
      "open WatchJob streams: 3 of 3 (strongholdd --max_watch_streams)"))
      << b2.status();
  EXPECT_EQ(slots.open(), 3);
  { StreamSlots::Slot released = *std::move(a1); }
  EXPECT_EQ(slots.open(), 2);
  EXPECT_TRUE(slots.Acquire("b").ok());
  EXPECT_EQ(slots.open(), 2) << "the temporary released its slot";
}

}  // namespace
}  // namespace stronghold::server
