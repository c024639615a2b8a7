// The event log WatchJob streams: readers follow without a thread of their
// own (wakes), memory is bounded per job and in total (ended jobs' logs go
// first), and events carry a summary of the job, not the whole record.
#include "server/job_events.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace stronghold::server {
namespace {

namespace v1 = ::stronghold::v1;

v1::JobEvent StateEvent(v1::Job::State state) {
  v1::JobEvent e;
  e.set_state(state);
  e.mutable_job()->set_state(state);
  return e;
}

v1::JobEvent StepEvent(int64_t step) {
  v1::JobEvent e;
  e.mutable_metrics()->set_step(step);
  e.mutable_job()->set_state(v1::Job::RUNNING);
  return e;
}

std::vector<v1::JobEvent> ReadAll(JobEventLog::Reader& reader, bool* finished) {
  std::vector<v1::JobEvent> out;
  *finished = reader.Read(&out);
  return out;
}

TEST(JobEventLogTest, AReaderGetsWhatWasAddedAndIsWokenForMore) {
  JobEventLog log({});
  log.Add(1, StateEvent(v1::Job::QUEUED));
  std::atomic<int> wakes{0};
  auto reader = log.Follow(1, /*since_step=*/0, [&] { ++wakes; });
  bool finished = true;
  EXPECT_EQ(ReadAll(*reader, &finished).size(), 1u);
  EXPECT_FALSE(finished);
  EXPECT_TRUE(ReadAll(*reader, &finished).empty()) << "nothing new";
  log.Add(1, StepEvent(1));
  log.Add(1, StepEvent(2));
  EXPECT_EQ(wakes, 2);
  EXPECT_EQ(ReadAll(*reader, &finished).size(), 2u);
  log.Add(1, StateEvent(v1::Job::SUCCEEDED));
  EXPECT_EQ(ReadAll(*reader, &finished).size(), 1u);
  EXPECT_TRUE(finished) << "the job ended and everything was read";
}

TEST(JobEventLogTest, MetricsUpToSinceStepAreSkipped) {
  JobEventLog log({});
  for (int step = 1; step <= 5; ++step) log.Add(1, StepEvent(step));
  auto reader = log.Follow(1, /*since_step=*/3, [] {});
  bool finished = false;
  const std::vector<v1::JobEvent> events = ReadAll(*reader, &finished);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].metrics().step(), 4);
}

TEST(JobEventLogTest, NoWakeAfterTheReaderIsGone) {
  JobEventLog log({});
  log.Add(1, StateEvent(v1::Job::QUEUED));
  std::atomic<int> wakes{0};
  auto reader = log.Follow(1, 0, [&] { ++wakes; });
  reader.reset();
  log.Add(1, StepEvent(1));
  EXPECT_EQ(wakes, 0);
}

// A reader destroyed while events are added on another thread: its
// destructor waits for a wake in progress, and none comes after.
TEST(JobEventLogTest, ReadersComeAndGoWhileEventsArrive) {
  JobEventLog log({});
  log.Add(1, StateEvent(v1::Job::QUEUED));
  std::atomic<bool> stop{false};
  std::thread adder([&] {
    for (int step = 1; !stop; ++step) log.Add(1, StepEvent(step));
  });
  for (int i = 0; i < 2000; ++i) {
    auto alive = std::make_shared<std::atomic<bool>>(true);
    auto reader = log.Follow(1, 0, [alive] { EXPECT_TRUE(*alive); });
    reader.reset();
    *alive = false;
  }
  stop = true;
  adder.join();
}

TEST(JobEventLogTest, EachJobKeepsItsNewestEvents) {
  JobEventLog log({.max_events_per_job = 3, .max_events = 100});
  for (int step = 1; step <= 10; ++step) log.Add(1, StepEvent(step));
  auto reader = log.Follow(1, 0, [] {});
  bool finished = false;
  const std::vector<v1::JobEvent> events = ReadAll(*reader, &finished);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].metrics().step(), 8);
}

TEST(JobEventLogTest, PastTheTotalEndedJobsLogsGoFirst) {
  JobEventLog log({.max_events_per_job = 4, .max_events = 8});
  for (int64_t id = 1; id <= 2; ++id) {
    log.Add(id, StepEvent(1));
    log.Add(id, StateEvent(v1::Job::SUCCEEDED));
  }
  for (int step = 1; step <= 4; ++step)
    log.Add(3, StepEvent(step));  // total 8: all kept
  bool finished = false;
  EXPECT_EQ(ReadAll(*log.Follow(1, 0, [] {}), &finished).size(), 2u);
  log.Add(4, StepEvent(1));  // 9: the longest-ended job's log goes
  EXPECT_TRUE(ReadAll(*log.Follow(1, 0, [] {}), &finished).empty());
  EXPECT_TRUE(finished) << "a dropped log reads as ended";
  EXPECT_EQ(ReadAll(*log.Follow(2, 0, [] {}), &finished).size(), 2u);
  EXPECT_EQ(ReadAll(*log.Follow(3, 0, [] {}), &finished).size(), 4u)
      << "running jobs keep theirs";
}

TEST(JobEventLogTest, ReadersOfADroppedLogFinishAndAreWoken) {
  JobEventLog log({});
  log.Add(1, StateEvent(v1::Job::QUEUED));
  std::atomic<int> wakes{0};
  auto reader = log.Follow(1, 0, [&] { ++wakes; });
  bool finished = false;
  ReadAll(*reader, &finished);
  log.Remove(1);  // the job was deleted
  EXPECT_EQ(wakes, 1);
  EXPECT_TRUE(ReadAll(*reader, &finished).empty());
  EXPECT_TRUE(finished);
}

TEST(JobEventLogTest, CloseFinishesReaders) {
  JobEventLog log({});
  log.Add(1, StateEvent(v1::Job::RUNNING));
  std::atomic<int> wakes{0};
  auto reader = log.Follow(1, 0, [&] { ++wakes; });
  log.Close();
  EXPECT_EQ(wakes, 1);
  bool finished = false;
  ReadAll(*reader, &finished);
  EXPECT_TRUE(finished);
}

TEST(EventJobTest, CarriesASummaryNotTheRecord) {
  v1::Job job;
  job.set_name("jobs/3");
  job.set_state(v1::Job::FAILED);
  job.set_error("boom");
  job.set_step(7);
  job.mutable_spec()->set_name("x");
  job.add_checkpoints("step-000005");
  job.mutable_plan()->add_buffers()->set_name("layers");
  job.mutable_last_metrics()->set_step(7);
  const v1::Job summary = EventJob(job);
  EXPECT_EQ(summary.name(), "jobs/3");
  EXPECT_EQ(summary.state(), v1::Job::FAILED);
  EXPECT_EQ(summary.error(), "boom");
  EXPECT_EQ(summary.step(), 7);
  EXPECT_FALSE(summary.has_spec());
  EXPECT_FALSE(summary.has_plan());
  EXPECT_FALSE(summary.has_last_metrics());
  EXPECT_EQ(summary.checkpoints_size(), 0);
}

}  // namespace
}  // namespace stronghold::server
