// fp16's dynamic loss-scale policy as a pure function of each step's
// outcome (the trainer-level behaviour is in mixed_precision_test).
#include "core/engine/loss_scale.h"

#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

TEST(LossScaleTest, Fp16StartsAt2To16AndOthersAt1) {
  EXPECT_EQ(InitialLossScale(Precision::kFp16).scale, 65536.0);
  EXPECT_EQ(InitialLossScale(Precision::kBf16).scale, 1.0);
  EXPECT_EQ(InitialLossScale(Precision::kFp32).scale, 1.0);
  EXPECT_EQ(InitialLossScale(Precision::kFp16).optimizer_step, 0);
}

TEST(LossScaleTest, OverflowHalvesSkipsAndRestartsTheCount) {
  LossScaleState s = InitialLossScale(Precision::kFp16);
  EXPECT_TRUE(AdvanceLossScale(Precision::kFp16, /*finite=*/true, &s));
  EXPECT_TRUE(AdvanceLossScale(Precision::kFp16, true, &s));
  EXPECT_EQ(s.good_steps, 2);
  EXPECT_EQ(s.optimizer_step, 2);
  EXPECT_FALSE(AdvanceLossScale(Precision::kFp16, /*finite=*/false, &s));
  EXPECT_EQ(s.scale, 32768.0);
  EXPECT_EQ(s.good_steps, 0);
  EXPECT_EQ(s.optimizer_step, 2) << "a skipped step is not an AdamW step";
}

TEST(LossScaleTest, DoublesAfterTheGrowthIntervalOfGoodSteps) {
  LossScaleState s = InitialLossScale(Precision::kFp16);
  for (int64_t i = 1; i < kLossScaleGrowthInterval; ++i)
    AdvanceLossScale(Precision::kFp16, true, &s);
  EXPECT_EQ(s.scale, 65536.0);
  EXPECT_EQ(s.good_steps, kLossScaleGrowthInterval - 1);
  AdvanceLossScale(Precision::kFp16, true, &s);
  EXPECT_EQ(s.scale, 131072.0);
  EXPECT_EQ(s.good_steps, 0);
  EXPECT_EQ(s.optimizer_step, kLossScaleGrowthInterval);
}

TEST(LossScaleTest, Bf16NeverScales) {
  LossScaleState s = InitialLossScale(Precision::kBf16);
  for (int64_t i = 0; i < kLossScaleGrowthInterval + 1; ++i) {
    EXPECT_TRUE(AdvanceLossScale(Precision::kBf16, true, &s));
  }
  EXPECT_EQ(s.scale, 1.0);
  EXPECT_EQ(s.optimizer_step, kLossScaleGrowthInterval + 1);
}

TEST(LossScaleTest, ElementBytes) {
  EXPECT_EQ(ComputeElementBytes(Precision::kFp32), 4);
  EXPECT_EQ(ComputeElementBytes(Precision::kBf16), 2);
  EXPECT_EQ(ComputeElementBytes(Precision::kFp16), 2);
}

}  // namespace
}  // namespace stronghold::core
