// The engine's step policy as pure functions (core/engine/step_policy.h):
// when updates wait for backward, and what a step does once its global
// gradient norm is known. The engine-level behaviour is in engine_test and
// mixed_precision_test.
#include "core/engine/step_policy.h"

#include <limits>

#include "core/engine/loss_scale.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TrainingConfig Clipped(double clip_norm) {
  TrainingConfig t;
  t.clip_norm = clip_norm;
  return t;
}

TEST(StepPolicyTest, ClippingAndFp16DeferUnlessSpeculative) {
  EXPECT_FALSE(
      DeferUpdates(Clipped(0), Precision::kFp32, /*speculative=*/false));
  EXPECT_FALSE(DeferUpdates(Clipped(0), Precision::kBf16, false));
  EXPECT_TRUE(DeferUpdates(Clipped(0), Precision::kFp16, false));
  EXPECT_TRUE(DeferUpdates(Clipped(1.0), Precision::kFp32, false));
  EXPECT_FALSE(
      DeferUpdates(Clipped(1.0), Precision::kFp32, /*speculative=*/true));
  EXPECT_FALSE(DeferUpdates(Clipped(0), Precision::kFp16, true));
}

TEST(StepPolicyTest, AFiniteUnclippedStepIsKept) {
  const StepDecision d =
      DecideStep(Clipped(1.0), Precision::kFp32, /*speculative=*/true,
                 /*grad_norm=*/0.5, /*loss_scale=*/1.0);
  EXPECT_TRUE(d.finite);
  EXPECT_FALSE(d.fail);
  EXPECT_FALSE(d.roll_back);
  EXPECT_EQ(d.grad_scale, 1.0);
}

TEST(StepPolicyTest, AClippedSpeculativeStepIsRolledBackAndRedoneClipped) {
  const StepDecision d =
      DecideStep(Clipped(1.0), Precision::kFp32, /*speculative=*/true,
                 /*grad_norm=*/4.0, /*loss_scale=*/1.0);
  EXPECT_TRUE(d.finite);
  EXPECT_FALSE(d.fail);
  EXPECT_TRUE(d.roll_back);
  EXPECT_EQ(d.grad_scale, ClipFactor(Clipped(1.0), 4.0));
  EXPECT_FALSE(DecideStep(Clipped(1.0), Precision::kFp32, /*speculative=*/false,
                          4.0, 1.0)
                   .roll_back);
}

TEST(StepPolicyTest, GradScaleIsClipFactorOverLossScale) {
  const StepDecision d =
      DecideStep(Clipped(1.0), Precision::kFp16, /*speculative=*/false,
                 /*grad_norm=*/2.0, /*loss_scale=*/1024.0);
  EXPECT_EQ(d.grad_scale, ClipFactor(Clipped(1.0), 2.0) / 1024.0);
}

TEST(StepPolicyTest, Fp16OverflowSkipsWhileASmallerScaleIsLeft) {
  const StepDecision skip =
      DecideStep(Clipped(0), Precision::kFp16, /*speculative=*/true, kNaN,
                 kInitialLossScale);
  EXPECT_FALSE(skip.finite);
  EXPECT_FALSE(skip.fail);
  EXPECT_TRUE(skip.roll_back);
  const StepDecision last = DecideStep(
      Clipped(0), Precision::kFp16, /*speculative=*/false, kNaN, kMinLossScale);
  EXPECT_TRUE(last.fail);
  EXPECT_FALSE(last.roll_back);
}

TEST(StepPolicyTest, ANonFiniteStepFailsWithoutFp16) {
  EXPECT_TRUE(DecideStep(Clipped(0), Precision::kFp32, false, kNaN, 1.0).fail);
  EXPECT_TRUE(DecideStep(Clipped(1.0), Precision::kBf16, false,
                         std::numeric_limits<double>::infinity(), 1.0)
                  .fail);
}

}  // namespace
}  // namespace stronghold::core
