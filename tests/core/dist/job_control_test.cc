// Ranks as threads of this process, each with a JobControl over a real
// rendezvous on 127.0.0.1. A rank "dies" by dropping its control without
// Finish() (its heartbeats stop, as with kill -9 or SIGSTOP; the daemons'
// test kills real processes: tests/integration/distributed_test.sh).
#include "core/dist/job_control.h"

#include <atomic>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "core/dist/rendezvous.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::core::dist {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr int kTimeoutS = 2;

// `world` sessions after one rendezvous.
std::vector<std::unique_ptr<Session>> Meet(int world) {
  std::vector<absl::StatusOr<std::unique_ptr<Session>>> got(world);
  std::promise<int> port;
  std::shared_future<int> ready = port.get_future().share();
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      RendezvousOptions o{.config = {.master_addr = "127.0.0.1",
                                     .world_size = world,
                                     .rank = r,
                                     .job_key = "control-test-key",
                                     .collective_timeout_s = kTimeoutS},
                          .fields = {{"model.layers", "2"}}};
      if (r == 0) {
        o.on_listening = [&port](int p) { port.set_value(p); };
      } else {
        o.config.master_port = ready.get();
      }
      got[r] = Rendezvous(o);
    });
    if (r == 0) ready.wait();
  }
  for (std::thread& t : threads) t.join();
  std::vector<std::unique_ptr<Session>> out;
  for (auto& s : got) {
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) out.push_back(std::move(*s));
  }
  return out;
}

std::unique_ptr<JobControl> Control(const Session& session) {
  absl::StatusOr<StorePtr> store = session.Connect();
  EXPECT_TRUE(store.ok()) << store.status();
  auto control = std::make_unique<JobControl>(
      *store, JobControlOptions{.rank = session.config().rank,
                                .world_size = session.config().world_size,
                                .timeout = std::chrono::seconds(kTimeoutS),
                                .interval = std::chrono::milliseconds(100)});
  control->Start();
  return control;
}

// Waits (at most `limit`) for `control` to be interrupted; how long it took.
std::optional<Clock::duration> WaitInterrupted(JobControl& control,
                                               Clock::duration limit) {
  const auto start = Clock::now();
  while (!control.Interrupted()) {
    if (Clock::now() - start > limit) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Clock::now() - start;
}

TEST(JobControlTest, ASilentRankFailsTheOthersNamingIt) {
  std::vector<std::unique_ptr<Session>> s = Meet(3);
  ASSERT_EQ(s.size(), 3u);
  std::vector<std::unique_ptr<JobControl>> c;
  for (auto& session : s) c.push_back(Control(*session));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(c[0]->Interrupted());
  c[2].reset();  // rank 2's heartbeats stop
  for (int r : {0, 1}) {
    const auto took =
        WaitInterrupted(*c[r], std::chrono::seconds(kTimeoutS + 5));
    ASSERT_TRUE(took.has_value()) << "rank " << r << " never noticed";
    EXPECT_EQ(c[r]->status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(c[r]->status().message(),
                HasSubstr("rank 2 stopped responding"));
    EXPECT_EQ(c[r]->Decide(7).action, StopDecision::kAbort);
  }
}

TEST(JobControlTest, AFailureStopsEveryRankNamingIt) {
  std::vector<std::unique_ptr<Session>> s = Meet(2);
  ASSERT_EQ(s.size(), 2u);
  auto c0 = Control(*s[0]);
  auto c1 = Control(*s[1]);
  c1->Fail(absl::InternalError("out of\nluck"));
  ASSERT_TRUE(WaitInterrupted(*c0, std::chrono::seconds(3)).has_value());
  EXPECT_EQ(c0->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(c0->status().message(), HasSubstr("rank 1 failed: out of luck"));
  EXPECT_FALSE(c1->Interrupted()) << "the rank that failed knows why itself";
}

TEST(JobControlTest, ACancelCancelsEveryRank) {
  std::vector<std::unique_ptr<Session>> s = Meet(2);
  ASSERT_EQ(s.size(), 2u);
  auto c0 = Control(*s[0]);
  auto c1 = Control(*s[1]);
  c0->Fail(absl::CancelledError("cancelled"));
  ASSERT_TRUE(WaitInterrupted(*c1, std::chrono::seconds(3)).has_value());
  EXPECT_EQ(c1->status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(c1->status().message(), HasSubstr("cancelled on rank 0"));
}

TEST(JobControlTest, LosingTheStoreNamesRankZero) {
  std::vector<std::unique_ptr<Session>> s = Meet(2);
  ASSERT_EQ(s.size(), 2u);
  auto c0 = Control(*s[0]);
  auto c1 = Control(*s[1]);
  c0.reset();
  s[0].reset();  // rank 0's daemon, and the store with it, are gone
  ASSERT_TRUE(
      WaitInterrupted(*c1, std::chrono::seconds(kTimeoutS + 5)).has_value());
  EXPECT_THAT(c1->status().message(), HasSubstr("rank 0"));
}

// Each rank trains steps in lock-step (a rank may run one step ahead of the
// slowest); one rank asks to stop at some point: every rank stops after the
// same step, with a checkpoint.
TEST(JobControlTest, RanksAgreeOnTheStopStep) {
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<std::unique_ptr<Session>> s = Meet(3);
    ASSERT_EQ(s.size(), 3u);
    std::vector<std::unique_ptr<JobControl>> c;
    for (auto& session : s) c.push_back(Control(*session));
    std::atomic<int64_t> done[3] = {0, 0, 0};
    std::vector<int64_t> stopped_at(3, -1);
    std::vector<StopDecision> decisions(3);
    std::vector<std::thread> ranks;
    for (int r = 0; r < 3; ++r) {
      ranks.emplace_back([&, r] {
        for (int64_t step = 1; step <= 200; ++step) {
          // A step's collectives: no rank finishes step s before every rank
          // finished step s - 1.
          for (int o = 0; o < 3; ++o)
            while (done[o].load() < step - 1)
              std::this_thread::sleep_for(std::chrono::milliseconds(1));
          std::this_thread::sleep_for(std::chrono::milliseconds(5 + 7 * r));
          done[r].store(step);
          if (r == trial && step == 10) c[r]->RequestStop(StopKind::kShutdown);
          const StopDecision d = c[r]->Decide(step);
          if (d.action != StopDecision::kContinue) {
            decisions[r] = d;
            stopped_at[r] = step;
            done[r].store(1 << 20);  // release the others
            return;
          }
        }
      });
    }
    for (std::thread& t : ranks) t.join();
    for (int r = 0; r < 3; ++r) {
      EXPECT_EQ(decisions[r].action, StopDecision::kStopWithCheckpoint)
          << "trial " << trial << " rank " << r;
      EXPECT_EQ(decisions[r].kind, StopKind::kShutdown);
      EXPECT_EQ(decisions[r].requested_by, trial);
      EXPECT_EQ(stopped_at[r], stopped_at[0]) << "trial " << trial;
    }
    EXPECT_GE(stopped_at[0], 10);
    for (auto& control : c) control->Finish();
  }
}

// A rank that already finished the job proposes no stop step: the others
// do not wait for it.
TEST(JobControlTest, AStopAfterAnotherRankFinished) {
  std::vector<std::unique_ptr<Session>> s = Meet(2);
  ASSERT_EQ(s.size(), 2u);
  auto c0 = Control(*s[0]);
  auto c1 = Control(*s[1]);
  c1->Finish();
  c0->RequestStop(StopKind::kCheckpointAndCancel);
  const auto start = Clock::now();
  const StopDecision d = c0->Decide(5);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(kTimeoutS));
  EXPECT_EQ(d.action, StopDecision::kStopWithCheckpoint);
  EXPECT_EQ(d.kind, StopKind::kCheckpointAndCancel);
  EXPECT_EQ(d.requested_by, 0);
  c0->Finish();
}

TEST(JobControlTest, FinishedRanksAreNotMissed) {
  std::vector<std::unique_ptr<Session>> s = Meet(2);
  ASSERT_EQ(s.size(), 2u);
  auto c0 = Control(*s[0]);
  auto c1 = Control(*s[1]);
  c1->Finish();
  c1.reset();
  std::this_thread::sleep_for(std::chrono::seconds(kTimeoutS + 1));
  EXPECT_FALSE(c0->Interrupted()) << c0->status();
  c0->Finish();
}

}  // namespace
}  // namespace stronghold::core::dist
