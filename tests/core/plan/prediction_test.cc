// A job's prediction and its alternatives (core/plan/prediction.h).
#include "core/plan/prediction.h"

#include "core/plan/hardware_profile.h"
#include "core/plan/planner.h"
#include "core/plan/recorded_runs.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

// The seed's model without clipping.
JobConfig Unclipped(Precision precision) {
  JobConfig c = SeedModel(15);
  c.training.precision = precision;
  c.training.clip_norm = 0;
  return c;
}

// Run B's automatic windows (docs/benchmarks.md): W=1 in fp32, W=4 in
// bf16, from the same per-layer forward and H2D the h200 profile holds.
TEST(PredictionTest, SettlesTheWindowAsRunBDid) {
  const HardwareProfile hw = *NamedHardwareProfile("h200");
  const NodeBudgets node{.device = "cuda:0", .device_bytes = 32 * kGiB};
  for (auto [precision, window] :
       {std::pair{Precision::kFp32, 1}, std::pair{Precision::kBf16, 4}}) {
    const JobConfig c = Unclipped(precision);
    const ExecutionPlan plan = PlanExecution(c, node);
    ASSERT_TRUE(plan.fits && plan.automatic_window);
    EXPECT_EQ(PredictSettledPlan(c, plan, hw).window, window);
  }
}

TEST(PredictionTest, PredictsTheJobAndEachAlternative) {
  const HardwareProfile hw = *NamedHardwareProfile("h100-pcie-gen5");
  const NodeBudgets node{.device = "cuda:0", .device_bytes = 32 * kGiB};
  const JobConfig c = Unclipped(Precision::kFp32);
  absl::StatusOr<JobPrediction> p =
      PredictJob(c, node, PlanExecution(c, node), hw);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->predicted.ok());
  EXPECT_GT(p->predicted->step_s, 0);
  // RESIDENT, L2L, automatic, W = 1, 2, 4, 8.
  ASSERT_EQ(p->alternatives.size(), 7u);
  for (const PredictedAlternative& a : p->alternatives) {
    ASSERT_TRUE(a.predicted.ok()) << a.name << ": " << a.predicted.status();
    EXPECT_GT(a.predicted->step_s, 0) << a.name;
  }
  EXPECT_EQ(p->alternatives[1].plan.method, OffloadMethod::kL2L);
  EXPECT_EQ(p->alternatives[6].plan.window, 8);
  // The automatic alternative is the job itself.
  EXPECT_DOUBLE_EQ(p->alternatives[2].predicted->step_s, p->predicted->step_s);
}

TEST(PredictionTest, AJobThatDoesNotFitStillGetsAlternatives) {
  const HardwareProfile hw = *NamedHardwareProfile("h200");
  const NodeBudgets node{.device = "cuda:0", .device_bytes = 16 * kGiB};
  JobConfig c = Unclipped(Precision::kFp32);
  c.offload.method = OffloadMethod::kResident;  // 15 layers need ~20 GiB
  const ExecutionPlan plan = PlanExecution(c, node);
  ASSERT_FALSE(plan.fits);
  absl::StatusOr<JobPrediction> p = PredictJob(c, node, plan, hw);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->predicted.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(p->alternatives[0].predicted.ok());  // RESIDENT
  EXPECT_TRUE(p->alternatives[2].predicted.ok());   // STRONGHOLD
}

}  // namespace
}  // namespace stronghold::core
