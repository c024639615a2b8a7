// gpu_bench's rows and their predictions (core/tools/gpu_rows.h): what
// deploy/gpu/check.sh prints before it measures, checked here without a GPU
// on the built-in H200 profile and the recorded run B of docs/benchmarks.md.
#include "core/tools/gpu_rows.h"

#include <set>
#include <string>

#include "core/plan/hardware_profile.h"
#include "core/plan/job_config.h"
#include "core/plan/recorded_runs.h"
#include "core/plan/schedule_model.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

// The seed's model as gpu_bench ran it on the H200 (docs/benchmarks.md,
// "GPU check": 15 layers, the largest RESIDENT model of a 32 GiB card,
// clipping at 1.0).
JobConfig SeedCase() { return SeedModel(15); }

HardwareProfile H200() {
  absl::StatusOr<HardwareProfile> p = NamedHardwareProfile("h200");
  EXPECT_TRUE(p.ok()) << p.status();
  return *p;
}

const RowSpec* Find(const std::vector<RowSpec>& rows, const std::string& n) {
  for (const RowSpec& r : rows) {
    if (r.name == n) return &r;
  }
  return nullptr;
}

TEST(GpuRowsTest, EveryRowIsPredictedBeforeItRuns) {
  const HardwareProfile h200 = H200();
  const std::vector<RowSpec> rows =
      GpuBenchRows({.windows = {2, 4, 8}, .budget_bytes = 32 * kGiB},
                   SeedCase(), h200, "cuda:0");
  std::set<std::string> names;
  for (const RowSpec& r : rows) {
    EXPECT_TRUE(names.insert(r.name).second) << "two rows named " << r.name;
  }
  ASSERT_GE(rows.size(), 15u);
  EXPECT_TRUE(rows.front().all_on_gpu);  // the baseline the ratios divide by
  const Predictions p = PredictRows(rows, "cuda:0", {h200});
  ASSERT_EQ(p.steps.size(), rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    ASSERT_EQ(p.steps[r].size(), 1u);
    ASSERT_TRUE(p.steps[r][0].ok())
        << rows[r].name << ": " << p.steps[r][0].status();
    EXPECT_GT(p.steps[r][0]->step_s, 0) << rows[r].name;
  }
}

TEST(GpuRowsTest, TheQuickRunHasTheAutomaticRowToo) {
  const std::vector<RowSpec> rows = GpuBenchRows(
      {.quick = true, .budget_bytes = 32 * kGiB}, SeedCase(), H200(), "cuda:0");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_NE(Find(rows, "STRONGHOLD (automatic options)"), nullptr);
}

TEST(GpuRowsTest, TheAutomaticRowsAreNeverPredictedSlowerThanTheDefault) {
  const HardwareProfile h200 = H200();
  const std::vector<RowSpec> rows =
      GpuBenchRows({.budget_bytes = 32 * kGiB}, SeedCase(), h200, "cuda:0");
  for (const auto& [automatic, default_row] :
       {std::pair<std::string, std::string>{"STRONGHOLD (automatic options)",
                                            "STRONGHOLD (auto window)"},
        {"STRONGHOLD bf16 (automatic options)",
         "STRONGHOLD bf16 (auto window)"}}) {
    const RowSpec* a = Find(rows, automatic);
    const RowSpec* d = Find(rows, default_row);
    ASSERT_NE(a, nullptr) << automatic;
    ASSERT_NE(d, nullptr) << default_row;
    // The choice is made and recorded: nothing is left automatic.
    EXPECT_FALSE(a->config.offload.automatic.any()) << automatic;
    EXPECT_FALSE(a->note.empty());
    absl::StatusOr<StepPrediction> pa = PredictRow(*a, "cuda:0", h200);
    absl::StatusOr<StepPrediction> pd = PredictRow(*d, "cuda:0", h200);
    ASSERT_TRUE(pa.ok()) << pa.status();
    ASSERT_TRUE(pd.ok()) << pd.status();
    EXPECT_LE(pa->step_s, pd->step_s * (1 + 1e-12)) << automatic;
  }
}

TEST(GpuRowsTest, WithoutAProfileTheOptionsStayOff) {
  const std::vector<RowSpec> rows =
      GpuBenchRows({.quick = true, .budget_bytes = 32 * kGiB}, SeedCase(),
                   absl::FailedPreconditionError("no GPU"), "cuda:0");
  const RowSpec* a = Find(rows, "STRONGHOLD (automatic options)");
  ASSERT_NE(a, nullptr);
  EXPECT_FALSE(a->config.offload.speculative_updates);
  EXPECT_FALSE(a->config.offload.device_embedding_optimizer);
  EXPECT_EQ(a->config.offload.device_resident_layers, 0);
  EXPECT_NE(a->note.find("no GPU"), std::string::npos) << a->note;
}

// The all-on-GPU row, modelled as the reference plan on a GPU (compute,
// then AdamW and the norm's pass on the device), against run B's 0.516 s
// (docs/benchmarks.md). A consistency check, not a prediction: the
// profile's device AdamW rate was derived from that very row. (The engine's
// rows are predicted for today's engine; run B's engine is modelled in
// schedule_model_test.)
TEST(GpuRowsTest, TheAllOnGpuRowMatchesRunB) {
  const HardwareProfile h200 = H200();
  const std::vector<RowSpec> rows = GpuBenchRows(
      {.quick = true, .budget_bytes = 32 * kGiB}, SeedCase(), h200, "cuda:0");
  absl::StatusOr<StepPrediction> p = PredictRow(rows.front(), "cuda:0", h200);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->step_s / 0.516, 1.0, 0.15) << p->step_s;
  EXPECT_EQ(p->bottleneck, Bottleneck::kCompute);
  EXPECT_EQ(p->busy.cpu_optimizer_s, 0);  // nothing on the CPU
}

TEST(GpuRowsTest, ARowThatDoesNotFitSaysWhy) {
  JobConfig c = SeedCase();
  c.model.layers = 400;
  const std::vector<RowSpec> rows = GpuBenchRows(
      {.quick = true, .budget_bytes = 32 * kGiB}, c, H200(), "cuda:0");
  absl::StatusOr<StepPrediction> p = PredictRow(rows.front(), "cuda:0", H200());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(p.status().message().empty());
}

}  // namespace
}  // namespace stronghold::core
