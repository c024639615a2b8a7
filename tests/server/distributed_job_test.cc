// server/distributed_job.h: which spec fields the ranks compare, and the
// observer that turns the job manager's stop requests into every rank's
// (two ranks as threads, over a real rendezvous on 127.0.0.1).
#include "server/distributed_job.h"

#include <atomic>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/proto_convert.h"

namespace stronghold::server {
namespace {

namespace v1 = ::stronghold::v1;
using ::testing::Contains;
using ::testing::Not;

std::vector<std::string> Names(const std::vector<core::dist::SpecField>& f) {
  std::vector<std::string> out;
  for (const auto& field : f) out.push_back(field.name);
  return out;
}

TEST(RankInvariantFieldsTest, EverythingButWhatDiffersByRank) {
  v1::JobSpec spec;
  spec.mutable_training()->set_lr(1e-3);
  spec.mutable_distributed()->set_world_size(2);
  spec.mutable_distributed()->set_rank(1);
  spec.mutable_distributed()->set_job_key("a-secret-key");
  spec.set_resume_from("jobs/7");
  spec.mutable_offload()->add_ssd_dirs("nvme0");
  const std::vector<std::string> names = Names(RankInvariantFields(spec));
  for (const char* present :
       {"name", "model.layers", "training.lr", "training.seed",
        "offload.method", "offload.ssd_dirs", "data.source",
        "checkpoint.every_steps", "distributed.world_size",
        "distributed.master_addr", "distributed.master_port",
        "distributed.collective_timeout_s"}) {
    EXPECT_THAT(names, Contains(present));
  }
  for (const char* absent : {"distributed.rank", "distributed.local_rank",
                             "distributed.job_key", "resume_from"}) {
    EXPECT_THAT(names, Not(Contains(absent)));
  }
  // Rank 0's and rank 1's effective specs give the same fields and values.
  v1::JobSpec rank0 = spec;
  rank0.mutable_distributed()->set_rank(0);
  rank0.set_resume_from("jobs/3");
  const auto a = RankInvariantFields(spec), b = RankInvariantFields(rank0);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].value, b[i].value);
  // A different learning rate shows in its own field only.
  rank0.mutable_training()->set_lr(2e-3);
  const auto c = RankInvariantFields(rank0);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].value == c[i].value, a[i].name != "training.lr")
        << a[i].name;
  }
}

// What the job manager says to one rank's trainer.
class FakeManager final : public core::TrainerObserver {
 public:
  void OnStep(const core::StepMetrics&) override {}
  void OnMessage(const std::string&) override {}
  void OnCheckpoint(const std::string&) override {}
  core::StopRequest StopRequested() override { return request.load(); }
  std::atomic<core::StopRequest> request{core::StopRequest::kNone};
};

struct Rank {
  std::unique_ptr<core::dist::Session> session;
  std::unique_ptr<core::dist::JobControl> control;
  FakeManager manager;
  std::unique_ptr<DistributedObserver> observer;
};

std::vector<std::unique_ptr<Rank>> TwoRanks() {
  std::vector<std::unique_ptr<Rank>> ranks;
  for (int r = 0; r < 2; ++r) ranks.push_back(std::make_unique<Rank>());
  std::promise<int> port;
  std::shared_future<int> ready = port.get_future().share();
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      core::dist::RendezvousOptions o{.config = {.master_addr = "127.0.0.1",
                                                 .world_size = 2,
                                                 .rank = r,
                                                 .job_key = "observer-test-key",
                                                 .collective_timeout_s = 5},
                                      .fields = {{"x", "1"}}};
      if (r == 0) {
        o.on_listening = [&](int p) { port.set_value(p); };
      } else {
        o.config.master_port = ready.get();
      }
      absl::StatusOr<std::unique_ptr<core::dist::Session>> s =
          core::dist::Rendezvous(o);
      ASSERT_TRUE(s.ok()) << s.status();
      ranks[r]->session = std::move(*s);
    });
  }
  for (std::thread& t : threads) t.join();
  for (auto& rank : ranks) {
    absl::StatusOr<core::dist::StorePtr> store = rank->session->Connect();
    EXPECT_TRUE(store.ok());
    rank->control = std::make_unique<core::dist::JobControl>(
        *store, core::dist::JobControlOptions{
                    .rank = rank->session->config().rank,
                    .world_size = 2,
                    .timeout = std::chrono::seconds(5),
                    .interval = std::chrono::milliseconds(50)});
    rank->control->Start();
    rank->observer =
        std::make_unique<DistributedObserver>(rank->manager, *rank->control);
  }
  return ranks;
}

core::StepMetrics StepEnd(int64_t step) {
  core::StepMetrics m;
  m.step = step;
  return m;
}

TEST(DistributedObserverTest, ACancelOnOneRankCancelsTheOther) {
  auto ranks = TwoRanks();
  ASSERT_EQ(ranks.size(), 2u);
  ranks[1]->manager.request = core::StopRequest::kCancel;
  EXPECT_EQ(ranks[1]->observer->StopRequested(), core::StopRequest::kCancel);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(3);
  core::StopRequest seen = core::StopRequest::kNone;
  while (seen == core::StopRequest::kNone &&
         std::chrono::steady_clock::now() < deadline) {
    seen = ranks[0]->observer->StopRequested();  // between micro-batches
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(seen, core::StopRequest::kCancel);
  EXPECT_EQ(ranks[0]->control->status().code(), absl::StatusCode::kCancelled);
  for (auto& r : ranks) r->control->Finish();
}

// SIGTERM on rank 1's daemon: both ranks checkpoint the same step and stop;
// rank 0 knows it was rank 1's request.
TEST(DistributedObserverTest, AShutdownStopsBothRanksAtOneStep) {
  auto ranks = TwoRanks();
  ASSERT_EQ(ranks.size(), 2u);
  std::vector<int64_t> stopped(2, 0);
  std::vector<core::StopRequest> how(2, core::StopRequest::kNone);
  std::atomic<int64_t> done[2] = {0, 0};
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      for (int64_t step = 1; step <= 100; ++step) {
        const int other = 1 - r;
        while (done[other].load() < step - 1)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        std::this_thread::sleep_for(std::chrono::milliseconds(3 + 5 * r));
        done[r].store(step);
        if (r == 1 && step == 4)
          ranks[1]->manager.request = core::StopRequest::kShutdown;
        ranks[r]->observer->OnStep(StepEnd(step));
        const core::StopRequest s = ranks[r]->observer->StopRequested();
        if (s != core::StopRequest::kNone) {
          how[r] = s;
          stopped[r] = step;
          done[r].store(1 << 20);
          return;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(how[0], core::StopRequest::kShutdown);
  EXPECT_EQ(how[1], core::StopRequest::kShutdown);
  EXPECT_EQ(stopped[0], stopped[1]);
  EXPECT_GE(stopped[1], 4);
  ASSERT_TRUE(ranks[0]->observer->stop().has_value());
  EXPECT_EQ(ranks[0]->observer->stop()->requested_by, 1);
  for (auto& r : ranks) r->control->Finish();
}

}  // namespace
}  // namespace stronghold::server
