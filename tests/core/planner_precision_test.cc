// The memory plan per training precision: in bf16/fp16 the device holds
// 2-byte weights, gradients and activation checkpoints, and the host adds a
// 2-byte working copy to its fp32 masters, gradients and moments. The
// expected bytes are written out from the shapes, not from the planner.
#include <string>

#include "core/plan/planner.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

// h = 64: 12h^2 + 13h = 49,984 parameters per layer; embedding
// (256 + 32) x 64 = 18,432; final norm 128; P = 4 x 49,984 + 18,560.
constexpr int64_t kLayer = 49984;
constexpr int64_t kEmbedding = 18432;
constexpr int64_t kFinal = 128;
constexpr int64_t kParams = 4 * kLayer + kEmbedding + kFinal;
constexpr int64_t kBoundary =
    2 * 32 * 64;  // micro_batch x seq x hidden elements

JobConfig Config(Precision precision, OffloadMethod method) {
  JobConfig c;
  c.model = {
      .layers = 4, .hidden = 64, .heads = 4, .seq_len = 32, .vocab = 256};
  c.training.batch = 4;
  c.training.micro_batch = 2;
  c.training.precision = precision;
  c.offload.method = method;
  c.offload.window = 2;  // 3 slots
  return c;
}

int64_t Bytes(const ExecutionPlan& plan, const std::string& name) {
  for (const PlannedBuffer& b : plan.buffers) {
    if (b.name == name) return b.bytes;
  }
  ADD_FAILURE() << "no buffer " << name;
  return -1;
}

bool Has(const ExecutionPlan& plan, const std::string& name) {
  for (const PlannedBuffer& b : plan.buffers) {
    if (b.name == name) return true;
  }
  return false;
}

TEST(PlannerPrecisionTest, Bf16HalvesTheDeviceAndAddsTheHostWorkingCopy) {
  const NodeBudgets node{.device = "cpu"};
  const ExecutionPlan bf16 =
      PlanExecution(Config(Precision::kBf16, OffloadMethod::kStronghold), node);
  const ExecutionPlan fp32 =
      PlanExecution(Config(Precision::kFp32, OffloadMethod::kStronghold), node);
  // Device: 3 slots x (weights + gradient), all sizes multiples of 64 bytes.
  EXPECT_EQ(Bytes(bf16, "window.slots"), 3 * 2 * kLayer * 2);
  EXPECT_EQ(Bytes(fp32, "window.slots"), 3 * 2 * kLayer * 4);
  EXPECT_EQ(Bytes(bf16, "embedding+final_norm"),
            2 * kEmbedding * 2 + 2 * kFinal * 2);
  EXPECT_EQ(Bytes(bf16, "activations.checkpoints"), 5 * kBoundary * 2);
  EXPECT_EQ(Bytes(fp32, "activations.checkpoints"), 5 * kBoundary * 4);
  // Host: fp32 masters, gradients and moments as in fp32, plus the copy.
  EXPECT_EQ(Bytes(bf16, "host.weights.fp32"), kParams * 4);
  EXPECT_EQ(Bytes(bf16, "host.weights.bf16"), kParams * 2);
  EXPECT_FALSE(Has(fp32, "host.weights.bf16"));
  EXPECT_EQ(Bytes(bf16, "host.grads.fp32"), kParams * 4);
  EXPECT_EQ(Bytes(bf16, "host.adam.exp_avg.fp32"), kParams * 4);
  EXPECT_EQ(Bytes(bf16, "host.adam.exp_avg_sq.fp32"), kParams * 4);
  EXPECT_EQ(Bytes(bf16, "host.staging.gradients"),
            (3 * kLayer + kEmbedding + kFinal) * 2);
  EXPECT_EQ(bf16.bytes_host - fp32.bytes_host,
            kParams * 2 - (3 * kLayer + kEmbedding + kFinal) * 2);
  // The arena the engine allocates is the plan's device bytes without
  // LibTorch's working memory.
  EXPECT_EQ(WindowedArenaBytes(
                Config(Precision::kBf16, OffloadMethod::kStronghold), 2),
            3 * 2 * kLayer * 2 + 2 * kEmbedding * 2 + 2 * kFinal * 2 +
                5 * kBoundary * 2);
}

TEST(PlannerPrecisionTest, Fp16IsPlannedLikeBf16) {
  const NodeBudgets node{.device = "cpu"};
  const ExecutionPlan fp16 =
      PlanExecution(Config(Precision::kFp16, OffloadMethod::kStronghold), node);
  EXPECT_EQ(Bytes(fp16, "window.slots"), 3 * 2 * kLayer * 2);
  EXPECT_EQ(Bytes(fp16, "host.weights.fp16"), kParams * 2);
}

// RESIDENT in bf16/fp16 runs as the engine with every layer kept.
TEST(PlannerPrecisionTest, ResidentBf16IsTheFullWindow) {
  const ExecutionPlan plan = PlanExecution(
      Config(Precision::kBf16, OffloadMethod::kResident), {.device = "cpu"});
  EXPECT_EQ(plan.window, 4);
  EXPECT_EQ(Bytes(plan, "window.slots"), 4 * 2 * kLayer * 2);
  EXPECT_FALSE(Has(plan, "weights.fp32"));
}

}  // namespace
}  // namespace stronghold::core
