// The comparison of measured and predicted step times: the 25% tolerance in
// both directions, the first step skipped, and the rate limit (once, again
// on a change of direction or after N steps).
#include "core/plan/step_time_check.h"

#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

using ::testing::HasSubstr;

StepTimeCheckOptions Options(int64_t repeat = 10) {
  StepTimeCheckOptions o;
  o.repeat_after_steps = repeat;
  o.profile = "h200";
  return o;
}

TEST(StepTimeCheckTest, WithinTheToleranceSaysNothing) {
  StepTimeCheck check(2.0, Options());
  for (int64_t step = 1; step <= 50; ++step) {
    // 1.5 .. 2.5 s: at most 25% off either way.
    const double measured = step % 2 ? 2.5 : 1.5;
    EXPECT_EQ(check.Observe(step, measured), std::nullopt) << step;
  }
}

TEST(StepTimeCheckTest, SaysOnceWhenSlowerThenAgainAfterNSteps) {
  StepTimeCheck check(2.0, Options(/*repeat=*/10));
  // Step 1 is skipped (one-time costs), however slow.
  EXPECT_EQ(check.Observe(1, 60.0), std::nullopt);
  std::optional<std::string> line = check.Observe(2, 2.6);
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(*line,
            "step 2 took 2.6 s, 30% slower than the predicted 2 s (h200); "
            "said again when it turns faster or after 10 steps");
  for (int64_t step = 3; step < 12; ++step) {
    EXPECT_EQ(check.Observe(step, 3.0), std::nullopt) << step;
  }
  line = check.Observe(12, 3.0);
  ASSERT_TRUE(line.has_value());
  EXPECT_THAT(*line, HasSubstr("step 12 took 3 s, 50% slower"));
  // Back within the tolerance and out again the same way: not new.
  EXPECT_EQ(check.Observe(13, 2.0), std::nullopt);
  EXPECT_EQ(check.Observe(14, 3.0), std::nullopt);
}

TEST(StepTimeCheckTest, AChangeOfDirectionIsSaidAtOnce) {
  StepTimeCheck check(2.0, Options(/*repeat=*/1000));
  EXPECT_EQ(check.Observe(1, 2.0), std::nullopt);
  ASSERT_TRUE(check.Observe(2, 1.0).has_value());  // 50% faster
  EXPECT_EQ(check.Observe(3, 1.0), std::nullopt);
  std::optional<std::string> line = check.Observe(4, 4.0);
  ASSERT_TRUE(line.has_value());
  EXPECT_THAT(*line, HasSubstr("100% slower than the predicted 2 s"));
  line = check.Observe(5, 1.2);
  ASSERT_TRUE(line.has_value());
  EXPECT_THAT(*line, HasSubstr("40% faster"));
  EXPECT_THAT(*line, HasSubstr("when it turns slower"));
}

// A resumed run counts from its own first step; bad inputs say nothing.
TEST(StepTimeCheckTest, SkipsTheRunsFirstStepsAndIgnoresNonsense) {
  StepTimeCheckOptions o = Options();
  o.skip_first_steps = 2;
  StepTimeCheck check(2.0, o);
  EXPECT_EQ(check.Observe(41, 9.0), std::nullopt);
  EXPECT_EQ(check.Observe(42, 9.0), std::nullopt);
  EXPECT_EQ(check.Observe(43, std::nan("")), std::nullopt);
  EXPECT_TRUE(check.Observe(44, 9.0).has_value());
  StepTimeCheck zero(0.0, Options());
  EXPECT_EQ(zero.Observe(5, 1.0), std::nullopt);
}

}  // namespace
}  // namespace stronghold::core
