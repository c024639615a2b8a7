// The window rule (core/plan/window.h, ResolveWindow) and the fit decision
// (core/plan/fit.h) exist once: every plan's window is ResolveWindow's, and
// a plan that does not fit is refused with its reason by CheckFits.
#include "absl/status/status.h"
#include "core/plan/planner.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

JobConfig Config(OffloadMethod method, int window) {
  JobConfig c;
  c.model = {
      .layers = 6, .hidden = 64, .heads = 4, .seq_len = 32, .vocab = 256};
  c.training.batch = 4;
  c.training.micro_batch = 2;
  c.training.precision = Precision::kBf16;  // RESIDENT runs the engine too
  c.offload.method = method;
  c.offload.window = window;
  return c;
}

TEST(WindowRuleTest, L2LIsOneLayer) {
  const ResolvedWindow w =
      ResolveWindow(Config(OffloadMethod::kL2L, 0), /*device_budget=*/0);
  EXPECT_EQ(w.window, 1);
  EXPECT_FALSE(w.automatic);
  EXPECT_EQ(WindowSlots(Config(OffloadMethod::kL2L, 0), w.window), 1);
}

TEST(WindowRuleTest, ResidentIsEveryLayer) {
  const ResolvedWindow w =
      ResolveWindow(Config(OffloadMethod::kResident, 0), 0);
  EXPECT_EQ(w.window, 6);
  EXPECT_FALSE(w.automatic);
}

TEST(WindowRuleTest, StrongholdTakesTheRequestOrTheLargestThatFits) {
  const ResolvedWindow asked =
      ResolveWindow(Config(OffloadMethod::kStronghold, 3), 0);
  EXPECT_EQ(asked.window, 3);
  EXPECT_FALSE(asked.automatic);

  const JobConfig automatic = Config(OffloadMethod::kStronghold, 0);
  const ResolvedWindow unlimited = ResolveWindow(automatic, 0);
  EXPECT_TRUE(unlimited.automatic);
  EXPECT_EQ(unlimited.window, MaxWindow(automatic, INT64_MAX));

  const int64_t two =
      WindowedArenaBytes(automatic, 2) + WorkingBytes(automatic);
  const ResolvedWindow bounded = ResolveWindow(automatic, two);
  EXPECT_TRUE(bounded.automatic);
  EXPECT_EQ(bounded.window, 2);
  // Not even a window of one fits: still one (the fit check refuses it).
  EXPECT_EQ(ResolveWindow(automatic, 1).window, 1);
}

TEST(WindowRuleTest, EveryPlanTakesItsWindowFromTheRule) {
  for (const OffloadMethod method :
       {OffloadMethod::kL2L, OffloadMethod::kResident,
        OffloadMethod::kStronghold}) {
    for (const int window : {0, 2}) {
      for (const int64_t budget : {int64_t{0}, int64_t{8} << 20}) {
        const JobConfig c = Config(method, window);
        const ExecutionPlan plan =
            PlanExecution(c, {.device = "cpu", .device_bytes = budget});
        ASSERT_TRUE(plan.windowed());
        const ResolvedWindow rule = ResolveWindow(c, plan.budget_device_bytes);
        EXPECT_EQ(plan.window, rule.window);
        EXPECT_EQ(plan.automatic_window, rule.automatic);
        EXPECT_EQ(plan.slots, WindowSlots(c, rule.window));
      }
    }
  }
}

TEST(FitTest, CheckFitsRefusesWithThePlansReason) {
  const JobConfig c = Config(OffloadMethod::kStronghold, 2);
  const ExecutionPlan fits = PlanExecution(c, {.device = "cpu"});
  ASSERT_TRUE(fits.fits);
  EXPECT_TRUE(CheckFits(fits).ok());

  const ExecutionPlan tight =
      PlanExecution(c, {.device = "cpu", .device_bytes = 1});
  ASSERT_FALSE(tight.fits);
  const absl::Status refused = CheckFits(tight);
  EXPECT_TRUE(absl::IsResourceExhausted(refused));
  EXPECT_EQ(refused.message(), tight.reason);
}

}  // namespace
}  // namespace stronghold::core
