// PlanJob's prediction (server/plan_prediction.h): the profile a request
// names, refusals with fitting codes, the prediction planned for the
// profile's machine.
#include "server/plan_prediction.h"

#include "core/plan/hardware_profile.h"
#include "core/plan/recorded_runs.h"
#include "gtest/gtest.h"

namespace stronghold::server {
namespace {

namespace v1 = ::stronghold::v1;

core::JobConfig Job() {
  core::JobConfig c = core::SeedModel(15);
  c.training.clip_norm = 0;
  c.offload.gpu_memory_budget_bytes = int64_t{32} << 30;
  return c;
}

TEST(PlanPredictionTest, NamedSentOrMeasured) {
  bool measured = true;
  v1::PlanJobRequest r;
  r.set_hardware_profile("h200");
  absl::StatusOr<core::HardwareProfile> p =
      RequestedProfile(r, Job(), nullptr, &measured);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "h200");
  EXPECT_FALSE(measured);

  r.set_hardware_profile_json(core::HardwareProfileToJson(*p));
  EXPECT_EQ(RequestedProfile(r, Job(), nullptr, &measured).status().code(),
            absl::StatusCode::kInvalidArgument);  // both
  r.clear_hardware_profile();
  ASSERT_TRUE(RequestedProfile(r, Job(), nullptr, &measured).ok());

  r.set_hardware_profile_json("{\"name\": 1}");
  absl::Status bad = RequestedProfile(r, Job(), nullptr, &measured).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("hardware_profile_json"), std::string::npos);

  r.clear_hardware_profile_json();
  r.set_hardware_profile("tpu");
  EXPECT_EQ(RequestedProfile(r, Job(), nullptr, &measured).status().code(),
            absl::StatusCode::kNotFound);

  r.clear_hardware_profile();
  EXPECT_EQ(RequestedProfile(r, Job(), nullptr, &measured).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const NodeProfileSource source = [&](const core::JobConfig&) {
    return core::NamedHardwareProfile("h100-pcie-gen5");
  };
  p = RequestedProfile(r, Job(), source, &measured);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(measured);
}

TEST(PlanPredictionTest, PlansForTheProfilesMachine) {
  const core::HardwareProfile h200 = *core::NamedHardwareProfile("h200");
  // This node: a CPU with 1 GiB, where the job cannot fit.
  const core::NodeBudgets tiny{.device = "cpu",
                               .device_bytes = int64_t{1} << 30,
                               .host_bytes = int64_t{1} << 30};
  absl::StatusOr<v1::StepPrediction> p =
      PredictionToProto(Job(), tiny, h200, /*measured=*/false);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->fits()) << p->reason();
  EXPECT_EQ(p->device_budget_bytes(), int64_t{32} << 30);  // the job's own
  EXPECT_EQ(p->window(), 1);  // settled as run B did
  EXPECT_GT(p->predicted().predicted_step_s(), 0.5);
  EXPECT_EQ(p->predicted().bottleneck(), "compute");
  EXPECT_GE(p->max_layers(), 15);
  EXPECT_EQ(p->alternatives_size(), 7);
  // The measured profile plans on this node's budgets: no fit here.
  p = PredictionToProto(Job(), tiny, h200, /*measured=*/true);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->fits());
  EXPECT_FALSE(p->has_predicted());
}

}  // namespace
}  // namespace stronghold::server
