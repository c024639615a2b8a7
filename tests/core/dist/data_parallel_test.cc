// Data parallelism (issue 17) on the host device with real Gloo: N ranks
// (threads of this process) x M micro-batches train exactly as one rank x
// N*M micro-batches: bit for bit with 2 ranks in fp32, and with 4 in the
// communicator's ordered mode; within a stated tolerance otherwise. Every
// rank takes the same decisions (clip, fp16 skip, speculative roll-back),
// each holds 1/N of the optimizer state and sends 1/N of the gradients to
// the host.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/model/gpt_layout.h"
#include "core/optim/fused_adamw.h"
#include "core/plan/shard.h"
#include "core/train/trainer.h"
#include "core/util/file_util.h"
#include "gtest/gtest.h"
#include "storage/block_device.h"
#include "tests/core/dist/data_parallel_util.h"
#include "tests/core/dist/thread_ranks.h"
#include "tests/core/training_test_util.h"

namespace stronghold::core {
namespace {

// 4 layers of 49,984 elements: 4 optimizer chunks each (the last short), so
// 2 ranks own 2 chunks each and 4 ranks one; the final norm (128 elements)
// is one chunk that rank 0 alone owns.
JobConfig Small(OffloadMethod method, int window, int batch, int micro_batch) {
  JobConfig c;
  c.model = {
      .layers = 4, .hidden = 64, .heads = 4, .seq_len = 32, .vocab = 256};
  c.training.steps = 5;
  c.training.batch = batch;
  c.training.micro_batch = micro_batch;
  c.training.warmup_steps = 2;
  c.training.clip_norm = 0;
  c.offload.method = method;
  c.offload.window = window;
  return c;
}

std::string Describe(const JobConfig& c) {
  return absl::StrCat(
      c.offload.method == OffloadMethod::kL2L ? "L2L" : "STRONGHOLD",
      " W=", c.offload.window, " kept=", c.offload.kept_activation_layers,
      " clip=", c.training.clip_norm,
      c.offload.speculative_updates ? " speculative" : "");
}

TEST(DataParallelTest, TwoRanksOfOneMicroBatchEqualOneRankOfTwoBitForBit) {
  struct Case {
    OffloadMethod method;
    int window;
    int kept;  // offload.kept_activation_layers: -1 recomputes every layer
  };
  for (const Case& k : {Case{OffloadMethod::kStronghold, 1, 0},
                        Case{OffloadMethod::kStronghold, 2, 0},
                        Case{OffloadMethod::kStronghold, 2, -1},
                        Case{OffloadMethod::kL2L, 0, 0}}) {
    for (double clip : {0.0, 1.0}) {
      for (bool speculative : {false, true}) {
        JobConfig c = Small(k.method, k.window, /*batch=*/8, /*micro_batch=*/4);
        c.offload.kept_activation_layers = k.kept;
        c.training.clip_norm = clip;
        c.offload.speculative_updates = speculative;
        const std::string what = Describe(c);
        const TrainedRun one = Train(c, "one");
        const TrainedRun two = TrainRanks(c, PlanFor(c), "two", 2);
        ExpectBitIdentical(one, two, what);
        if (clip > 0) {
          EXPECT_GT(one.recorder.norms[0], clip)
              << what << ": clipping should act in this test";
        }
      }
    }
  }
}

TEST(DataParallelTest, TwoRanksWithTheNvmeTierEqualOneRankBitForBit) {
  JobConfig c = Small(OffloadMethod::kStronghold, 2, 8, 4);
  c.training.clip_norm = 1.0;
  const std::string dir = TestDir("dp_ssd");
  std::filesystem::create_directories(dir);
  c.offload.ssd_dirs = {dir};
  const ExecutionPlan plan = PlanWithSsd(c, /*ssd_layers=*/2);
  ASSERT_EQ(plan.ssd_layers, 2);
  c.checkpoint.every_steps = 2;
  const TrainedRun one = TrainAsPlanned(c, plan, nullptr, "ssd_one", 0);
  const TrainedRun two = TrainRanks(c, plan, "ssd_two", 2);
  ExpectBitIdentical(one, two, "NVMe tier, 2 layers");
  EXPECT_GT(two.recorder.nvme_read_bytes, 0);
  // Its checkpoint (moments gathered from the ranks' tiers) resumes on 1
  // rank and on 2 (each storing its slices on its tier) exactly.
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string step2 =
      (std::filesystem::path(tmp != nullptr ? tmp : "/tmp") /
       "ssd_two_rank0/checkpoints/step-000002")
          .string();
  TrainedRun tail = one;
  for (auto* v : {&tail.recorder.losses, &tail.recorder.norms})
    v->erase(v->begin(), v->begin() + 2);
  ExpectBitIdentical(
      tail,
      TrainAsPlanned(c, plan, nullptr, "ssd_on1", 0, nullptr, nullptr, step2),
      "NVMe tier, resumed on 1 rank");
  ExpectBitIdentical(tail,
                     TrainRanks(c, plan, "ssd_on2", 2, false, nullptr, {},
                                nullptr, nullptr, step2),
                     "NVMe tier, resumed on 2 ranks");
}

// Relative difference of the losses of every step.
void ExpectLossesWithin(const TrainedRun& a, const TrainedRun& b, double tol,
                        const std::string& what) {
  ASSERT_EQ(a.recorder.losses.size(), b.recorder.losses.size()) << what;
  for (size_t i = 0; i < a.recorder.losses.size(); ++i) {
    EXPECT_LE(std::abs(a.recorder.losses[i] - b.recorder.losses[i]),
              tol * std::abs(a.recorder.losses[i]))
        << what << " step " << i + 1 << ": " << a.recorder.losses[i] << " vs "
        << b.recorder.losses[i];
  }
}

TEST(DataParallelTest, FourRanksOfTwoMicroBatchesEqualOneRankOfEight) {
  JobConfig c = Small(OffloadMethod::kStronghold, 2, /*batch=*/16,
                      /*micro_batch=*/2);
  c.training.clip_norm = 1.0;
  const TrainedRun one = Train(c, "eight");
  // Ordered mode: every rank's piece is added on the host in global
  // micro-batch order, as one rank adds its micro-batches.
  ExpectBitIdentical(one, TrainRanks(c, PlanFor(c), "ordered", 4, true),
                     "4 ranks, ordered");
  // Gloo's own reduce-scatter adds 4 ranks in another order.
  ExpectLossesWithin(one, TrainRanks(c, PlanFor(c), "normal", 4), 1e-6,
                     "4 ranks");
}

TEST(DataParallelTest, MixedPrecisionWithinTolerance) {
  // bf16/fp16 gradients are summed over the ranks on the device in the
  // compute precision (one rank adds them on the host in fp32): the losses
  // agree within 1e-2 relative over these 5 steps; ordered mode adds on the
  // host and is bit-exact.
  for (Precision p : {Precision::kBf16, Precision::kFp16}) {
    JobConfig c = Small(OffloadMethod::kStronghold, 2, 8, 4);
    c.training.precision = p;
    c.training.clip_norm = 1.0;
    const TrainedRun one = Train(c, "mp_one");
    const std::string what = PrecisionName(p);
    ExpectLossesWithin(one, TrainRanks(c, PlanFor(c), "mp_two", 2), 1e-2, what);
    ExpectBitIdentical(one, TrainRanks(c, PlanFor(c), "mp_ordered", 2, true),
                       absl::StrCat(what, " ordered"));
  }
}

TEST(DataParallelTest, AnFp16OverflowOnOneRankSkipsTheStepOnEveryRank) {
  for (bool speculative : {false, true}) {
    JobConfig c = Small(OffloadMethod::kStronghold, 2, 8, 4);
    c.training.precision = Precision::kFp16;
    c.offload.speculative_updates = speculative;
    std::vector<StepRecorder> ranks;
    // Rank 1 starts at a loss scale of 2^40: its gradients overflow.
    TrainRanks(c, PlanFor(c), "overflow", 2, false, &ranks,
               {0, std::ldexp(1.0, 40)});
    ASSERT_EQ(ranks.size(), 2u);
    ASSERT_FALSE(ranks[0].skipped.empty());
    EXPECT_TRUE(ranks[0].skipped[0]) << "speculative " << speculative;
    EXPECT_EQ(ranks[0].skipped, ranks[1].skipped);
    EXPECT_EQ(ranks[0].losses, ranks[1].losses);
    EXPECT_EQ(ranks[0].norms, ranks[1].norms);
  }
}

TEST(DataParallelTest, EachRankSendsItsShareOfTheGradientsToTheHost) {
  // 2 ranks x 1 micro-batch against 1 rank x 2: each rank copies every
  // layer's slice once per micro-batch: D2H bytes per step are about
  // M * b * P / N with M its micro-batches (here 1/4 of one rank's 2 * b * P),
  // and H2D bytes, its slices, about 1/N as well.
  const JobConfig c = Small(OffloadMethod::kStronghold, 2, 8, 4);
  const TrainedRun one = Train(c, "bytes_one");
  std::vector<StepRecorder> ranks;
  TrainRanks(c, PlanFor(c), "bytes_two", 2, false, &ranks);
  ASSERT_EQ(ranks.size(), 2u);
  const double d2h_one = one.recorder.d2h_bytes.back();
  for (int r = 0; r < 2; ++r) {
    const double d2h = ranks[r].d2h_bytes.back();
    EXPECT_NEAR(d2h / d2h_one, 0.25, 0.1) << "rank " << r;
    EXPECT_NEAR(static_cast<double>(ranks[r].h2d_bytes.back()) /
                    one.recorder.h2d_bytes.back(),
                0.25, 0.1)
        << "rank " << r;
  }
  EXPECT_EQ(ranks[0].d2h_bytes.back() + ranks[1].d2h_bytes.back(),
            one.recorder.d2h_bytes.back() / 2);
}

TEST(DataParallelTest, EachRankHoldsItsShareOfTheOptimizerState) {
  // fp32 masters, gradients and both moments: 16 bytes per parameter on one
  // rank; each of N ranks holds 16 bytes per element of its slices
  // (core/plan/shard.h: whole chunks of 16,384 elements, so in this small
  // model rank 0 holds more than 1/N), beside state that is not sharded
  // (activation checkpoints, a few staging buffers).
  const JobConfig c = Small(OffloadMethod::kStronghold, 2, 8, 2);
  const TrainedRun one = Train(c, "host_one");
  const int64_t state = 16 * c.model.parameters();
  ASSERT_GT(one.host_bytes, state);
  const int64_t others = one.host_bytes - state;
  auto optimizer = FusedAdamW::Create({.threads = 1});
  ASSERT_TRUE(optimizer.ok());
  for (int world : {2, 4}) {
    std::vector<int64_t> bytes;
    TrainRanks(c, PlanFor(c), "host_ranks", world, false, nullptr, {}, nullptr,
               &bytes);
    ASSERT_EQ(bytes.size(), static_cast<size_t>(world));
    int64_t sum = 0;
    for (int r = 0; r < world; ++r) {
      int64_t owned = 0;
      for (const BufferLayout& l : ModelLayout(c.model)) {
        owned +=
            ShardBuffer(l.count, (*optimizer)->ChunkElements(l.count), world, r)
                .owned();
      }
      EXPECT_GE(bytes[r], 16 * owned) << world << " ranks, rank " << r;
      EXPECT_LE(bytes[r], others + 16 * owned) << world << " ranks, rank " << r;
      sum += bytes[r];
    }
    // Every element's state is held once over the ranks.
    EXPECT_LE(sum, world * others + state) << world << " ranks";
  }
}

TEST(DataParallelTest, ThePlanOfOneRankIsWhatEachRankAllocatesAndSends) {
  // The planner's table for N ranks (PlanExecution with
  // distributed.world_size = N) is the busiest rank's: its host memory is
  // what that rank's ledger charged, and its D2H bytes per step what the
  // engine copied; the host optimizer state shrinks to about 1/N.
  for (const bool speculative : {false, true}) {
    JobConfig c = Small(OffloadMethod::kStronghold, 2, 8, 2);
    c.training.clip_norm = speculative ? 1.0 : 0.0;
    c.offload.speculative_updates = speculative;
    const ExecutionPlan one = PlanFor(c);
    for (int world : {1, 2, 4}) {
      JobConfig ranked = c;
      ranked.distributed.world_size = world;
      const ExecutionPlan plan = PlanFor(ranked);
      EXPECT_EQ(plan.world_size, world);
      std::vector<StepRecorder> ranks;
      std::vector<int64_t> bytes;
      const std::string dir = absl::StrCat("plan_ranks_", world, speculative);
      if (world == 1) {
        const TrainedRun run = Train(c, dir);
        ranks.push_back(run.recorder);
        bytes.push_back(run.host_bytes);
      } else {
        TrainRanks(c, PlanFor(c), dir, world, false, &ranks, {}, nullptr,
                   &bytes);
      }
      ASSERT_EQ(bytes.size(), static_cast<size_t>(world));
      EXPECT_EQ(bytes[0], plan.bytes_host + plan.bytes_pinned)
          << world << " ranks" << (speculative ? ", speculative" : "");
      for (int r = 0; r < world; ++r) {
        EXPECT_LE(bytes[r], plan.bytes_host + plan.bytes_pinned)
            << world << " ranks, rank " << r;
      }
      EXPECT_EQ(ranks[0].d2h_bytes.back(), plan.d2h_bytes_per_step)
          << world << " ranks";
      // ~M*b*P/N: rank 0 owns whole chunks, so a little more than 1/N.
      const double share = static_cast<double>(plan.rank_parameters) /
                           static_cast<double>(one.parameters);
      EXPECT_GE(share, 1.0 / world) << world << " ranks";
      EXPECT_LE(share, 1.0 / world + 0.2) << world << " ranks";
    }
  }
}

// Delays every I/O completion of a block device by 0-3 ms at random: the
// NVMe tier's staging of the moments, on the CPU optimizer's path.
class DelayingBlockDevice final : public storage::BlockDevice {
 public:
  explicit DelayingBlockDevice(std::unique_ptr<storage::BlockDevice> base)
      : base_(std::move(base)) {}
  absl::string_view backend() const override { return base_->backend(); }
  std::string Describe() const override { return base_->Describe(); }
  int64_t alignment() const override { return base_->alignment(); }
  int64_t capacity() const override { return base_->capacity(); }
  storage::IoLocation Locate(int64_t offset) const override {
    return base_->Locate(offset);
  }

 protected:
  absl::StatusOr<storage::IoTicket> DoSubmit(
      absl::Span<const storage::IoRequest> requests) override {
    return base_->Submit(requests);
  }
  absl::Status DoWait(storage::IoTicket ticket) override {
    int delay_us;
    {
      absl::MutexLock lock(&mu_);
      delay_us = static_cast<int>(rng_() % 3000);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    return base_->Wait(ticket);
  }
  absl::Status DoSync() override { return base_->Sync(); }

 private:
  std::unique_ptr<storage::BlockDevice> base_;
  absl::Mutex mu_;
  std::mt19937 rng_ ABSL_GUARDED_BY(mu_){std::random_device{}()};
};

TEST(DataParallelTest, ARandomDelayInOneRanksOptimizerChangesNothing) {
  JobConfig c = Small(OffloadMethod::kStronghold, 2, 8, 4);
  c.training.clip_norm = 1.0;
  c.offload.speculative_updates = false;
  const std::string dir = TestDir("dp_delay");
  std::filesystem::create_directories(dir);
  c.offload.ssd_dirs = {dir};
  const ExecutionPlan plan = PlanWithSsd(c, /*ssd_layers=*/3);
  const TrainedRun one = TrainAsPlanned(c, plan, nullptr, "delay_one", 0);
  const TrainedRun delayed = TrainRanks(
      c, plan, "delay_two", 2, false, nullptr, {},
      [](int rank, TrainerOptions* o) {
        if (rank != 1) return;
        o->wrap_ssd_device = [](std::unique_ptr<storage::BlockDevice> d)
            -> std::unique_ptr<storage::BlockDevice> {
          return std::make_unique<DelayingBlockDevice>(std::move(d));
        };
      });
  ExpectBitIdentical(one, delayed, "rank 1's optimizer delayed");
}

// Where TestDir(name) puts a run's directory (without emptying it).
std::string RunDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return (std::filesystem::path(tmp != nullptr ? tmp : "/tmp") / name).string();
}

TEST(DataParallelTest, CheckpointOfTwoRanksResumesOnOneTwoOrFourExactly) {
  // 4 micro-batches per step: 1 rank x 4, 2 x 2, 4 x 1, all in ordered mode
  // (bit-exact for any N); checkpoints at steps 2 and 4.
  JobConfig c = Small(OffloadMethod::kStronghold, 2, /*batch=*/16, 4);
  c.training.steps = 4;
  c.training.clip_norm = 1.0;
  c.checkpoint.every_steps = 2;
  const TrainedRun one = Train(c, "ckpt_one");
  const TrainedRun two = TrainRanks(c, PlanFor(c), "ckpt_two", 2, true);
  ExpectBitIdentical(one, two, "2 ranks, uninterrupted");
  // Each rank wrote them in its own directory, whole tensors in the one
  // format, the same bytes.
  const std::string step2 = RunDir("ckpt_two_rank0/checkpoints/step-000002");
  ASSERT_TRUE(std::filesystem::exists(step2 + "/manifest.json")) << step2;
  for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
    const absl::StatusOr<std::string> rank0 =
        ReadFile(absl::StrCat(step2, "/", file));
    const absl::StatusOr<std::string> rank1 = ReadFile(
        RunDir(absl::StrCat("ckpt_two_rank1/checkpoints/step-000002/", file)));
    ASSERT_TRUE(rank0.ok() && rank1.ok()) << rank0.status() << rank1.status();
    EXPECT_TRUE(*rank0 == *rank1) << file;
  }
  TrainedRun tail = one;  // steps 3 and 4 of the uninterrupted run
  tail.recorder.losses.erase(tail.recorder.losses.begin(),
                             tail.recorder.losses.begin() + 2);
  tail.recorder.norms.erase(tail.recorder.norms.begin(),
                            tail.recorder.norms.begin() + 2);
  ExpectBitIdentical(tail,
                     TrainAsPlanned(c, PlanFor(c), nullptr, "ckpt_on1", 0,
                                    nullptr, nullptr, step2),
                     "resumed on 1 rank");
  for (int world : {2, 4}) {
    ExpectBitIdentical(
        tail,
        TrainRanks(c, PlanFor(c), absl::StrCat("ckpt_on", world), world, true,
                   nullptr, {}, nullptr, nullptr, step2),
        absl::StrCat("resumed on ", world, " ranks"));
  }
  // And one rank's checkpoint resumes on 2.
  ExpectBitIdentical(
      tail,
      TrainRanks(c, PlanFor(c), "ckpt_1on2", 2, true, nullptr, {}, nullptr,
                 nullptr, RunDir("ckpt_one/checkpoints/step-000002")),
      "1 rank's checkpoint resumed on 2 ranks");
}

TEST(DataParallelTest, WhatDataParallelismCannotDoIsRefused) {
  JobConfig c = Small(OffloadMethod::kStronghold, 2, /*batch=*/6, 4);
  testing::RunThreadRanks({.world_size = 2}, [&](int rank, Communicator& comm) {
    JobConfig odd = Small(OffloadMethod::kStronghold, 2, 12, 4);
    auto t = Trainer::Create(
        odd, PlanFor(odd),
        {.job_dir = TestDir(absl::StrCat("odd", rank)), .comm = &comm});
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find("world_size 2"), std::string::npos)
        << t.status();
    JobConfig resident = Small(OffloadMethod::kStronghold, 2, 8, 4);
    resident.offload.device_resident_layers = 1;
    t = Trainer::Create(
        resident, PlanFor(resident),
        {.job_dir = TestDir(absl::StrCat("res", rank)), .comm = &comm});
    EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(t.status().message().find("world_size > 1"), std::string::npos)
        << t.status();
  });
  (void)c;
}

}  // namespace
}  // namespace stronghold::core

int main(int argc, char** argv) {
  // CPU matmul results can depend on the thread count: every rank and the
  // one-rank reference use one intra-op thread.
  at::set_num_threads(1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
