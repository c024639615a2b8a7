// Ranks as real processes: this test binary runs rank 0 itself and starts
// itself again as rank 1 (--child_rank_port=PORT), which meets it and then
// only heartbeats. Killing the child (SIGKILL) or stopping it (SIGSTOP)
// must fail rank 0 within the collective timeout + 5 s, naming rank 1.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <thread>

#include "core/dist/job_control.h"
#include "core/dist/rendezvous.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::core::dist {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr int kTimeoutS = 3;

DistributedConfig Config(int rank, int port) {
  return {.master_addr = "127.0.0.1",
          .master_port = port,
          .world_size = 2,
          .rank = rank,
          .job_key = "process-test-key",
          .collective_timeout_s = kTimeoutS};
}

JobControlOptions ControlOptions(int rank) {
  return {.rank = rank,
          .world_size = 2,
          .timeout = std::chrono::seconds(kTimeoutS),
          .interval = std::chrono::milliseconds(200)};
}

// Rank 1: meets rank 0 on `port`, heartbeats until killed.
int ChildRank(int port) {
  absl::StatusOr<std::unique_ptr<Session>> session =
      Rendezvous({.config = Config(1, port), .fields = {{"x", "1"}}});
  if (!session.ok()) return 3;
  absl::StatusOr<StorePtr> store = (*session)->Connect();
  if (!store.ok()) return 4;
  JobControl control(*store, ControlOptions(1));
  control.Start();
  while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
}

// Rank 0 with a child rank 1; `signal` goes to the child once both run.
void KillTheOtherRank(int signal) {
  std::promise<int> port;
  std::future<int> ready = port.get_future();
  absl::StatusOr<std::unique_ptr<Session>> session;
  std::thread rank0([&] {
    session = Rendezvous({.config = Config(0, 0),
                          .fields = {{"x", "1"}},
                          .on_listening = [&](int p) { port.set_value(p); }});
  });
  const int p = ready.get();
  // Built before fork(): the child of a threaded process may only exec.
  const std::string arg = "--child_rank_port=" + std::to_string(p);
  const pid_t child = fork();
  if (child == 0) {
    execl("/proc/self/exe", "job_control_process_test", arg.c_str(), nullptr);
    _exit(127);
  }
  rank0.join();
  ASSERT_TRUE(session.ok()) << session.status();
  absl::StatusOr<StorePtr> store = (*session)->Connect();
  ASSERT_TRUE(store.ok()) << store.status();
  JobControl control(*store, ControlOptions(0));
  control.Start();
  std::this_thread::sleep_for(std::chrono::seconds(kTimeoutS + 1));
  EXPECT_FALSE(control.Interrupted()) << "a live rank 1: " << control.status();
  ASSERT_EQ(kill(child, signal), 0);
  const auto start = Clock::now();
  while (!control.Interrupted() &&
         Clock::now() - start < std::chrono::seconds(kTimeoutS + 5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double took =
      std::chrono::duration<double>(Clock::now() - start).count();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(control.Interrupted()) << "rank 0 never noticed";
  EXPECT_LE(took, kTimeoutS + 5);
  EXPECT_EQ(control.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(control.status().message(),
              HasSubstr("rank 1 stopped responding"));
  EXPECT_EQ(control.Decide(3).action, StopDecision::kAbort);
}

TEST(JobControlProcessTest, KilledRankFailsTheOther) {
  KillTheOtherRank(SIGKILL);
}

TEST(JobControlProcessTest, StoppedRankFailsTheOther) {
  KillTheOtherRank(SIGSTOP);
}

}  // namespace
}  // namespace stronghold::core::dist

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    constexpr char kFlag[] = "--child_rank_port=";
    if (std::strncmp(argv[i], kFlag, sizeof(kFlag) - 1) == 0) {
      return stronghold::core::dist::ChildRank(
          std::atoi(argv[i] + sizeof(kFlag) - 1));
    }
  }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
