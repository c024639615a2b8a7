// Automatic configuration (core/plan/auto_config.h): each automatic option
// is chosen where the schedule model predicts it pays and left off where it
// does not, and the choice is never predicted slower than the previous
// default (every option off).
#include "core/plan/auto_config.h"

#include <string>

#include "core/plan/hardware_profile.h"
#include "core/plan/planner.h"
#include "core/plan/prediction.h"
#include "core/plan/recorded_runs.h"
#include "core/plan/schedule_model.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

// The seed's 1.7B-class GPT layer shape, 15 layers, every option automatic.
JobConfig Job(Precision precision, double clip_norm) {
  JobConfig c = SeedModel(15);
  c.training.precision = precision;
  c.training.clip_norm = clip_norm;
  c.offload.automatic = {.speculative_updates = true,
                         .device_embedding_optimizer = true,
                         .device_resident_layers = true};
  return c;
}

const NodeBudgets kNode{.device = "cuda:0", .device_bytes = 80 * kGiB};

HardwareProfile H200() { return *NamedHardwareProfile("h200"); }

// The h200 profile with a CPU optimizer pool streaming at `gbps`.
HardwareProfile WithCpu(double gbps) {
  HardwareProfile p = H200();
  p.cpu_adamw_gbps = p.cpu_copy_gbps = gbps;
  return p;
}

double Predicted(const JobConfig& c, const HardwareProfile& hw,
                 const NodeBudgets& node = kNode) {
  const ExecutionPlan plan = PlanExecution(c, node);
  EXPECT_TRUE(plan.fits) << plan.reason;
  absl::StatusOr<StepPrediction> p =
      PredictStep(c, PredictSettledPlan(c, plan, hw), hw);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? p->step_s : -1;
}

// The choice's own prediction, checked independently of the chooser: what
// it planned and predicted is what PlanExecution and PredictStep say, and
// it is the previous default or at least kMinAutomaticGain faster.
void ExpectNotSlowerThanTheDefault(const JobConfig& c,
                                   const HardwareProfile& hw,
                                   const AutomaticChoice& choice,
                                   const NodeBudgets& node = kNode) {
  JobConfig off = c;
  off.offload.automatic = {};
  const double default_s = Predicted(off, hw, node);
  const double chosen_s = Predicted(choice.config, hw, node);
  EXPECT_DOUBLE_EQ(choice.default_step_s, default_s);
  EXPECT_DOUBLE_EQ(choice.predicted_step_s, chosen_s);
  EXPECT_LE(chosen_s, default_s) << choice.reason;
  const OffloadConfig& o = choice.config.offload;
  if (o.speculative_updates || o.device_embedding_optimizer ||
      o.device_resident_layers > 0) {
    EXPECT_LE(chosen_s, default_s * (1 - kMinAutomaticGain)) << choice.reason;
  }
  EXPECT_FALSE(choice.config.offload.automatic.any());
}

TEST(AutoConfigTest, NothingAutomaticChangesNothing) {
  JobConfig c = Job(Precision::kFp32, 1.0);
  c.offload.automatic = {};
  c.offload.device_resident_layers = 3;
  const AutomaticChoice choice = ChooseAutomaticOptions(c, kNode, H200());
  EXPECT_EQ(choice.config.offload.device_resident_layers, 3);
  EXPECT_TRUE(choice.reason.empty());
  EXPECT_EQ(choice.candidates, 0);
}

TEST(AutoConfigTest, WithoutAProfileTheOptionsStayOffAndSayWhy) {
  const AutomaticChoice choice = ChooseAutomaticOptions(
      Job(Precision::kFp32, 1.0), kNode,
      absl::UnavailableError("the daemon runs with --node_profile=false"));
  const OffloadConfig& o = choice.config.offload;
  EXPECT_FALSE(o.speculative_updates);
  EXPECT_FALSE(o.device_embedding_optimizer);
  EXPECT_EQ(o.device_resident_layers, 0);
  EXPECT_FALSE(o.automatic.any());
  EXPECT_NE(choice.reason.find("--node_profile=false"), std::string::npos)
      << choice.reason;
}

TEST(AutoConfigTest, WithSeveralRanksTheOptionsStayOff) {
  JobConfig c = Job(Precision::kFp32, 1.0);
  c.distributed.world_size = 2;
  const AutomaticChoice choice = ChooseAutomaticOptions(c, kNode, H200());
  EXPECT_EQ(choice.config.offload.device_resident_layers, 0);
  EXPECT_FALSE(choice.config.offload.speculative_updates);
  EXPECT_NE(choice.reason.find("2 ranks"), std::string::npos) << choice.reason;
}

// Copies bound the step (a slow link): keeping layers on the device removes
// their copies and their CPU updates; on a fast link compute bounds the step
// and the device memory is better left alone.
TEST(AutoConfigTest, ResidentLayersWinWhenCopiesBoundTheStep) {
  const JobConfig c = Job(Precision::kFp32, 0.0);
  HardwareProfile slow_link = H200();
  slow_link.h2d_gbps = slow_link.d2h_gbps = 4;
  const AutomaticChoice slow = ChooseAutomaticOptions(c, kNode, slow_link);
  EXPECT_GT(slow.config.offload.device_resident_layers, 0) << slow.reason;
  ExpectNotSlowerThanTheDefault(c, slow_link, slow);

  HardwareProfile fast = WithCpu(50000);
  fast.h2d_gbps = fast.d2h_gbps = 5000;
  const AutomaticChoice quick = ChooseAutomaticOptions(c, kNode, fast);
  EXPECT_EQ(quick.config.offload.device_resident_layers, 0) << quick.reason;
  ExpectNotSlowerThanTheDefault(c, fast, quick);
}

// With clipping every update waits for the step's global norm, after
// backward; speculation runs them during backward instead. Without clipping
// (fp32) there is nothing to speculate on.
TEST(AutoConfigTest, SpeculativeUpdatesWinWhenTheNormWaitIsLong) {
  JobConfig c = Job(Precision::kFp32, 1.0);
  c.offload.automatic.device_resident_layers = false;
  c.offload.automatic.device_embedding_optimizer = false;
  // As recorded on the H200 (run B's figures), the CPU's updates and the
  // compute take about as long: run during backward they hide.
  const HardwareProfile h200 = H200();
  const AutomaticChoice clipped = ChooseAutomaticOptions(c, kNode, h200);
  EXPECT_TRUE(clipped.config.offload.speculative_updates) << clipped.reason;
  ExpectNotSlowerThanTheDefault(c, h200, clipped);

  // A CPU optimizer 6x slower bounds the step whether its updates run
  // during backward or after it: nothing to gain.
  const HardwareProfile slow_cpu = WithCpu(20);
  const AutomaticChoice bound = ChooseAutomaticOptions(c, kNode, slow_cpu);
  EXPECT_FALSE(bound.config.offload.speculative_updates) << bound.reason;
  ExpectNotSlowerThanTheDefault(c, slow_cpu, bound);

  c.training.clip_norm = 0;
  const AutomaticChoice unclipped = ChooseAutomaticOptions(c, kNode, h200);
  EXPECT_FALSE(unclipped.config.offload.speculative_updates)
      << unclipped.reason;
  EXPECT_EQ(unclipped.candidates, 1);
}

// The embedding's CPU update and copies sit between two steps; on the
// device they leave that gap, when the device has room for its state.
TEST(AutoConfigTest, TheEmbeddingOptimizerMovesToTheDeviceWhenItPays) {
  JobConfig c = Job(Precision::kFp32, 0.0);
  c.offload.automatic.device_resident_layers = false;
  c.offload.automatic.speculative_updates = false;
  const HardwareProfile slow_cpu = WithCpu(10);
  const AutomaticChoice pays = ChooseAutomaticOptions(c, kNode, slow_cpu);
  EXPECT_TRUE(pays.config.offload.device_embedding_optimizer) << pays.reason;
  ExpectNotSlowerThanTheDefault(c, slow_cpu, pays);

  // A device budget with room for a window of one but not for the
  // embedding's 16 bytes per parameter of optimizer state (and no kept
  // activations, which would take what is left).
  c.offload.window = 1;
  c.offload.kept_activation_layers = -1;
  JobConfig off = c;
  off.offload.automatic = {};
  const int64_t window_only = PlanExecution(off, kNode).bytes_device;
  off.offload.device_embedding_optimizer = true;
  const int64_t with_embedding = PlanExecution(off, kNode).bytes_device;
  ASSERT_GT(with_embedding, window_only);
  NodeBudgets tight = kNode;
  tight.device_bytes = (window_only + with_embedding) / 2;
  const AutomaticChoice no_room = ChooseAutomaticOptions(c, tight, slow_cpu);
  EXPECT_FALSE(no_room.config.offload.device_embedding_optimizer)
      << no_room.reason;
}

// Over the named profiles, both precisions and clipping on and off: every
// choice is the default or predicted at least kMinAutomaticGain faster.
TEST(AutoConfigTest, NeverPredictedSlowerThanThePreviousDefault) {
  for (const std::string& name : NamedHardwareProfiles()) {
    const HardwareProfile hw = *NamedHardwareProfile(name);
    if (hw.device_is_host) continue;
    for (const Precision precision : {Precision::kFp32, Precision::kBf16}) {
      if (!ComputeFor(hw, precision).ok()) continue;
      const NodeBudgets node = ProfileNode(hw);
      for (const double clip : {0.0, 1.0}) {
        SCOPED_TRACE(name + " " + PrecisionName(precision) +
                     (clip > 0 ? " clipped" : ""));
        const JobConfig c = Job(precision, clip);
        const AutomaticChoice choice = ChooseAutomaticOptions(c, node, hw);
        ExpectNotSlowerThanTheDefault(c, hw, choice, node);
        EXPECT_GT(choice.candidates, 1);
        EXPECT_NE(choice.reason.find(name), std::string::npos) << choice.reason;
      }
    }
  }
}

}  // namespace
}  // namespace stronghold::core
