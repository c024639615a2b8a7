// The schedule model (core/plan/schedule_model.h): invariants on synthetic
// profiles, and the recorded runs (core/plan/recorded_runs.h) predicted
// within their tolerance. Pure arithmetic: no GPU, no timing.
#include "core/plan/schedule_model.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/plan/hardware_profile.h"
#include "core/plan/planner.h"
#include "core/plan/recorded_runs.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

HardwareProfile H200() {
  absl::StatusOr<HardwareProfile> p = NamedHardwareProfile("h200");
  EXPECT_TRUE(p.ok()) << p.status();
  return *p;
}

// A mid-sized job: 12 layers of hidden 1024, seq 512, batch 8 in 2
// micro-batches, clip 1.0.
JobConfig Job(OffloadMethod method, int window = 0) {
  JobConfig c;
  c.model = {.layers = 12,
             .hidden = 1024,
             .heads = 16,
             .seq_len = 512,
             .vocab = 50304};
  c.training.batch = 8;
  c.training.micro_batch = 4;
  c.training.clip_norm = 1.0;
  c.offload.method = method;
  c.offload.window = window;
  return c;
}

ExecutionPlan Plan(const JobConfig& c, int64_t device = 8 * kGiB) {
  ExecutionPlan p = PlanExecution(
      c, {.device = "cuda:0", .device_bytes = device, .host_bytes = 64 * kGiB});
  EXPECT_TRUE(p.fits) << p.reason;
  return p;
}

StepPrediction Predict(const JobConfig& c, const ExecutionPlan& p,
                       const HardwareProfile& hw,
                       const ScheduleOptions& o = {}) {
  absl::StatusOr<StepPrediction> r = PredictStep(c, p, hw, o);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : StepPrediction{};
}

// The jobs the invariants run over.
std::vector<JobConfig> Jobs() {
  std::vector<JobConfig> jobs = {
      Job(OffloadMethod::kResident), Job(OffloadMethod::kL2L),
      Job(OffloadMethod::kStronghold, 1), Job(OffloadMethod::kStronghold, 4)};
  JobConfig spec = Job(OffloadMethod::kStronghold, 2);
  spec.offload.speculative_updates = true;
  jobs.push_back(spec);
  JobConfig noclip = Job(OffloadMethod::kStronghold, 2);
  noclip.training.clip_norm = 0;
  noclip.offload.kept_activation_layers = -1;
  jobs.push_back(noclip);
  JobConfig device = Job(OffloadMethod::kStronghold, 2);
  device.offload.device_embedding_optimizer = true;
  device.offload.device_resident_layers = 3;
  jobs.push_back(device);
  JobConfig bf16 = Job(OffloadMethod::kStronghold, 2);
  bf16.training.precision = Precision::kBf16;
  jobs.push_back(bf16);
  return jobs;
}

TEST(ScheduleModelTest, NeverFasterThanItsLargestFloor) {
  const HardwareProfile hw = H200();
  for (const JobConfig& c : Jobs()) {
    const StepPrediction p = Predict(c, Plan(c), hw);
    EXPECT_GT(p.step_s, 0);
    EXPECT_GE(p.step_s, p.floor_s * (1 - 1e-9))
        << static_cast<int>(c.offload.method);
    EXPECT_NEAR(p.samples_per_s * p.step_s, c.training.batch, 1e-9);
    EXPECT_GT(p.mfu, 0);
    EXPECT_LT(p.mfu, 1);
  }
}

TEST(ScheduleModelTest, MonotoneInEveryBandwidth) {
  double HardwareProfile::*const rates[] = {
      &HardwareProfile::h2d_gbps,       &HardwareProfile::d2h_gbps,
      &HardwareProfile::cpu_adamw_gbps, &HardwareProfile::cpu_adamw_lowp_gbps,
      &HardwareProfile::cpu_copy_gbps,  &HardwareProfile::device_adamw_gbps};
  for (const JobConfig& c : Jobs()) {
    const ExecutionPlan plan = Plan(c);
    for (auto rate : rates) {
      double last = INFINITY;
      for (double factor : {0.05, 0.2, 0.5, 1.0, 2.0, 8.0, 50.0}) {
        HardwareProfile hw = H200();
        hw.*rate *= factor;
        const double step = Predict(c, plan, hw).step_s;
        EXPECT_LE(step, last * (1 + 1e-9))
            << "a faster resource made the step slower (factor " << factor
            << ", method " << static_cast<int>(c.offload.method) << ")";
        last = step;
      }
    }
  }
}

TEST(ScheduleModelTest, ResidentWithFastCopiesAndCpuIsItsComputeFloor) {
  JobConfig c = Job(OffloadMethod::kResident);
  HardwareProfile hw = H200();
  for (double HardwareProfile::*rate :
       {&HardwareProfile::h2d_gbps, &HardwareProfile::d2h_gbps,
        &HardwareProfile::cpu_adamw_gbps, &HardwareProfile::cpu_copy_gbps}) {
    hw.*rate *= 100;
  }
  const StepPrediction p = Predict(c, Plan(c, 64 * kGiB), hw);
  EXPECT_EQ(p.bottleneck, Bottleneck::kCompute);
  EXPECT_NEAR(p.step_s / p.floors.compute_s, 1.0, 0.02);
  // And the reference on the host device is compute plus one AdamW.
  hw.device_is_host = true;
  const ExecutionPlan ref =
      PlanExecution(c, {.device = "cpu", .host_bytes = 64 * kGiB});
  ASSERT_TRUE(ref.reference);
  const StepPrediction r = Predict(c, ref, hw);
  EXPECT_NEAR(r.step_s, r.busy.compute_s + r.busy.cpu_optimizer_s, 1e-12);
}

TEST(ScheduleModelTest, FindsEachBottleneck) {
  const JobConfig c = Job(OffloadMethod::kStronghold, 1);
  const ExecutionPlan plan = Plan(c);
  {
    HardwareProfile hw = H200();
    hw.h2d_gbps = hw.d2h_gbps = 0.5;
    EXPECT_EQ(Predict(c, plan, hw).bottleneck, Bottleneck::kPcie);
  }
  {
    HardwareProfile hw = H200();
    hw.cpu_adamw_gbps = hw.cpu_copy_gbps = 1;
    EXPECT_EQ(Predict(c, plan, hw).bottleneck, Bottleneck::kCpuOptimizer);
  }
  {
    HardwareProfile hw = H200();
    hw.compute[0].achieved[0].tflops = 1;
    EXPECT_EQ(Predict(c, plan, hw).bottleneck, Bottleneck::kCompute);
  }
  {
    JobConfig s = c;
    s.training.clip_norm = 0;
    s.offload.ssd_dirs = {"/tmp/ssd"};
    ExecutionPlan spilled = PlanExecution(s, {.device = "cuda:0",
                                              .device_bytes = 8 * kGiB,
                                              .host_bytes = 64 * kGiB,
                                              .force_ssd_layers = 12});
    ASSERT_TRUE(spilled.fits) << spilled.reason;
    ASSERT_EQ(spilled.ssd_layers, 12);
    HardwareProfile hw = H200();
    hw.nvme_read_gbps = hw.nvme_write_gbps = 0.05;
    const StepPrediction p = Predict(s, spilled, hw);
    EXPECT_EQ(p.bottleneck, Bottleneck::kNvme);
    EXPECT_GT(p.floors.nvme_s, 0);
    // With a fast drive the same plan is not NVMe-bound.
    hw.nvme_read_gbps = hw.nvme_write_gbps = 500;
    EXPECT_NE(Predict(s, spilled, hw).bottleneck, Bottleneck::kNvme);
  }
}

TEST(ScheduleModelTest, L2LSlowerThanStrongholdWhenPcieIsSlow) {
  HardwareProfile hw = H200();
  hw.h2d_gbps = hw.d2h_gbps = 4;
  const JobConfig l2l = Job(OffloadMethod::kL2L);
  JobConfig sh = Job(OffloadMethod::kStronghold, 4);
  sh.offload.kept_activation_layers = -1;  // both recompute every layer
  EXPECT_GT(Predict(l2l, Plan(l2l), hw).step_s,
            1.2 * Predict(sh, Plan(sh), hw).step_s);
}

TEST(ScheduleModelTest, LargerWindowHidesSlowCopies) {
  HardwareProfile hw = H200();
  hw.h2d_gbps = hw.d2h_gbps = 8;
  JobConfig w1 = Job(OffloadMethod::kStronghold, 1);
  JobConfig w6 = Job(OffloadMethod::kStronghold, 6);
  w1.offload.kept_activation_layers = w6.offload.kept_activation_layers = -1;
  EXPECT_LT(Predict(w6, Plan(w6, 64 * kGiB), hw).step_s,
            Predict(w1, Plan(w1, 64 * kGiB), hw).step_s);
}

TEST(ScheduleModelTest, KeptActivationsSaveTheirRecompute) {
  const HardwareProfile hw = H200();
  JobConfig none = Job(OffloadMethod::kStronghold, 2);
  none.offload.kept_activation_layers = -1;
  JobConfig four = none;
  four.offload.kept_activation_layers = 4;
  const StepPrediction a = Predict(none, Plan(none), hw);
  const StepPrediction b = Predict(four, Plan(four), hw);
  EXPECT_NEAR(a.busy.compute_s - b.busy.compute_s, 2 * 4 * a.layer_forward_s,
              1e-9);  // 2 micro-batches
}

TEST(ScheduleModelTest,
     SpeculativeUpdatesPayWhenTheCpuWaitsAndStepsAreNotClipped) {
  // One micro-batch, every layer recomputed (backward 3x forward), the
  // embedding's update on the device, and a layer's CPU update about twice
  // its forward: waiting for the norm puts the updates after backward,
  // speculating hides them under it.
  const HardwareProfile hw = H200();
  JobConfig deferred = Job(OffloadMethod::kStronghold, 2);
  deferred.training.batch = deferred.training.micro_batch;
  deferred.offload.kept_activation_layers = -1;
  deferred.offload.device_embedding_optimizer = true;
  JobConfig spec = deferred;
  spec.offload.speculative_updates = true;
  const double d = Predict(deferred, Plan(deferred), hw).step_s;
  const double s0 = Predict(spec, Plan(spec), hw).step_s;
  ScheduleOptions all_clipped;
  all_clipped.clipped_step_fraction = 1;
  const double s1 = Predict(spec, Plan(spec), hw, all_clipped).step_s;
  EXPECT_LT(s0, d);
  EXPECT_GT(s1, s0);
  EXPECT_GT(s1, d);  // every step redone: worse than waiting for the norm
}

TEST(ScheduleModelTest, DeviceOptimizerTakesWorkOffTheCpu) {
  const HardwareProfile hw = H200();
  const JobConfig base = Job(OffloadMethod::kStronghold, 2);
  JobConfig dev = base;
  dev.offload.device_embedding_optimizer = true;
  dev.offload.device_resident_layers = 3;
  const StepPrediction a = Predict(base, Plan(base), hw);
  const StepPrediction b = Predict(dev, Plan(dev), hw);
  EXPECT_LT(b.busy.cpu_optimizer_s, a.busy.cpu_optimizer_s);
  EXPECT_LT(b.busy.h2d_s, a.busy.h2d_s);
}

TEST(ScheduleModelTest, OldEnginesOptionsAreNeverFaster) {
  const HardwareProfile hw = H200();
  for (const JobConfig& c : Jobs()) {
    const ExecutionPlan plan = Plan(c);
    const double today = Predict(c, plan, hw).step_s;
    ScheduleOptions b;
    b.final_norm_updated_last = true;
    ScheduleOptions a = b;
    a.single_thread_accumulation = true;
    EXPECT_GE(Predict(c, plan, hw, b).step_s, today * (1 - 1e-9));
    EXPECT_GE(Predict(c, plan, hw, a).step_s,
              Predict(c, plan, hw, b).step_s * (1 - 1e-9));
  }
}

// Many micro-batches are extrapolated from the simulations of 7 and 8,
// which is exact if the middle micro-batches repeat the same schedule:
// checked where all are simulated (5 to 8), and a hostile 2^20 is fast.
TEST(ScheduleModelTest, ManyMicroBatchesAreExtrapolatedExactly) {
  HardwareProfile hw = H200();
  for (const bool slow_cpu : {false, true}) {
    if (slow_cpu) hw.cpu_copy_gbps = hw.cpu_adamw_gbps = 5;
    JobConfig c = Job(OffloadMethod::kStronghold, 2);
    c.training.micro_batch = 1;
    std::vector<double> steps;
    for (int m = 5; m <= 8; ++m) {
      c.training.batch = m;
      steps.push_back(Predict(c, Plan(c), hw).step_s);
    }
    const double per = steps[3] - steps[2];
    EXPECT_GT(per, 0);
    EXPECT_NEAR(steps[2] - steps[1], per, 1e-9 * steps[3]);
    EXPECT_NEAR(steps[1] - steps[0], per, 1e-9 * steps[3]);
    c.training.batch = 1 << 20;
    const StepPrediction big = Predict(c, Plan(c), hw);
    EXPECT_NEAR(big.step_s, steps[3] + ((1 << 20) - 8) * per,
                1e-6 * big.step_s);
  }
}

TEST(ScheduleModelTest, RefusesWhatItCannotPredict) {
  const HardwareProfile hw = H200();
  const JobConfig c = Job(OffloadMethod::kStronghold, 2);
  ExecutionPlan plan = Plan(c);
  ScheduleOptions o;
  o.clipped_step_fraction = 1.5;
  EXPECT_EQ(PredictStep(c, plan, hw, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = {};
  o.steps = 1;
  EXPECT_EQ(PredictStep(c, plan, hw, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  plan.fits = false;
  EXPECT_EQ(PredictStep(c, plan, hw).status().code(),
            absl::StatusCode::kInvalidArgument);
  HardwareProfile no_bf16 = hw;
  no_bf16.compute.resize(1);  // fp32 only
  JobConfig bf16 = c;
  bf16.training.precision = Precision::kBf16;
  EXPECT_EQ(PredictStep(bf16, Plan(bf16), no_bf16).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(RecordedRunsTest, EachRowWithinItsTolerance) {
  int checked = 0;
  for (const RecordedRun& run : RecordedRuns()) {
    const ExecutionPlan plan = RecordedRunPlan(run);
    ASSERT_TRUE(plan.fits) << run.group << " " << run.name << ": "
                           << plan.reason;
    absl::StatusOr<StepPrediction> p = PredictRecordedRun(run);
    ASSERT_TRUE(p.ok()) << run.name << ": " << p.status();
    const double ratio = p->step_s / run.measured_step_s;
    std::printf(
        "%-11s %-50s W=%-2d K=%-2d measured %7.3f s predicted %7.3f s "
        "ratio %.3f %s%s%s\n",
        run.group.c_str(), run.name.c_str(), plan.window,
        plan.kept_activation_layers, run.measured_step_s, p->step_s, ratio,
        BottleneckName(p->bottleneck), run.calibration ? " (calibration)" : "",
        run.known_miss.empty() ? "" : " (known miss)");
    if (run.calibration || !run.known_miss.empty()) continue;
    EXPECT_NEAR(ratio, 1.0, run.tolerance) << run.group << " " << run.name;
    ++checked;
  }
  EXPECT_GE(checked, 15);
}

// The seed: iteration time grows by about 0.24 s per layer (STRONGHOLD,
// W=4, bound by CPU Adam at 100 layers).
TEST(RecordedRunsTest, SeedSecondsPerLayer) {
  std::vector<RecordedRun> runs = RecordedRuns();
  const RecordedRun* at100 = nullptr;
  for (const RecordedRun& r : runs)
    if (r.calibration) at100 = &r;
  ASSERT_NE(at100, nullptr);
  RecordedRun at48 = *at100;
  at48.config.model.layers = 48;
  absl::StatusOr<StepPrediction> a = PredictRecordedRun(at48);
  absl::StatusOr<StepPrediction> b = PredictRecordedRun(*at100);
  ASSERT_TRUE(a.ok() && b.ok());
  const double per_layer = (b->step_s - a->step_s) / (100 - 48);
  std::printf("seed: %.3f s per layer (48 -> 100 layers), seed ~0.24\n",
              per_layer);
  EXPECT_NEAR(per_layer / 0.24, 1.0, 0.20);
}

}  // namespace
}  // namespace stronghold::core
