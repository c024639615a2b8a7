// The planner's NVMe placement (core/plan/planner.h): Adam moments (and in
// bf16/fp16 the fp32 masters) of as few layers as needed move to the ssd
// tier when the host budget is short, the result fits, nothing moves unless
// the tier is there and streamed, and the largest trainable number of layers
// grows with the tier.
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/engine/loss_scale.h"
#include "core/plan/planner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/extent_store.h"

namespace stronghold::core {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kFloat = 4;

JobConfig Model(int layers) {
  JobConfig c;
  // Layers' state dominates (short sequences, one sequence per batch).
  c.model = {
      .layers = layers, .hidden = 512, .heads = 4, .seq_len = 16, .vocab = 128};
  c.training.batch = 1;
  c.training.micro_batch = 1;
  c.offload.method = OffloadMethod::kStronghold;
  c.offload.window = 1;
  c.offload.ssd_dirs = {"/nvme0"};
  return c;
}

NodeBudgets Node(int64_t host_bytes, bool streaming = true) {
  return {.device = "cpu",
          .device_bytes = int64_t{1} << 40,
          .host_bytes = host_bytes,
          .ssd_streaming = streaming};
}

int64_t HostNeed(const ExecutionPlan& p) {
  return p.bytes_host + p.bytes_pinned + p.bytes_device;
}

// Bytes of every layer's Adam moments.
int64_t AllMoments(const JobConfig& c) {
  return int64_t{2} * c.model.layers * c.model.parameters_per_layer() * kFloat;
}

const PlannedBuffer* Find(const ExecutionPlan& p, const std::string& name) {
  for (const PlannedBuffer& b : p.buffers) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

TEST(PlannerSsdTest, NothingMovesWhenTheHostStateFits) {
  const ExecutionPlan p = PlanExecution(Model(8), Node(/*host_bytes=*/0));
  EXPECT_TRUE(p.fits);
  EXPECT_EQ(p.ssd_layers, 0);
  EXPECT_EQ(p.bytes_ssd, 0);
}

TEST(PlannerSsdTest, MovesTheMomentsOfAsFewLayersAsNeeded) {
  const JobConfig c = Model(8);
  const ExecutionPlan all_in_ram = PlanExecution(c, Node(0));
  const int64_t layer_moments = 2 * c.model.parameters_per_layer() * kFloat;
  // Short by about two and a half layers' moments (plus the staging).
  const int64_t budget = HostNeed(all_in_ram) - 5 * layer_moments / 2;
  const ExecutionPlan p = PlanExecution(c, Node(budget));
  ASSERT_TRUE(p.fits) << p.reason;
  EXPECT_LE(HostNeed(p), budget);
  EXPECT_GE(p.ssd_layers, 3);
  // One layer fewer would not have been enough.
  EXPECT_GT(HostNeed(p) + layer_moments, budget);
  const int64_t extent = storage::ExtentStore::StoredBytes(
      c.model.parameters_per_layer() * kFloat, 4096, 1 << 20);
  EXPECT_EQ(p.bytes_ssd, p.ssd_layers * 2 * extent);
  const PlannedBuffer* ssd = Find(p, "ssd.adam.exp_avg+exp_avg_sq");
  ASSERT_NE(ssd, nullptr);
  EXPECT_EQ(ssd->tier, kTierSsd);
  const PlannedBuffer* staging = Find(p, "host.staging.ssd");
  ASSERT_NE(staging, nullptr);
  EXPECT_EQ(staging->tier, kTierHost);
  // A checkpoint moves one spilled layer's moments through host memory.
  EXPECT_EQ(
      Find(p, "host.staging.checkpoint")->bytes,
      2 * ((c.model.parameters_per_layer() * kFloat + 4095) / 4096 * 4096));
  EXPECT_EQ(Find(p, "host.adam.exp_avg.fp32")->bytes,
            (p.parameters - p.ssd_layers * p.parameters_per_layer) * kFloat);
  // The weights stay in host memory.
  EXPECT_EQ(Find(p, "host.weights.fp32")->bytes, p.parameters * kFloat);
}

// Host bytes of the buffers a spilled layer leaves: masters and moments.
int64_t HostOptimizerState(const ExecutionPlan& p) {
  int64_t bytes = 0;
  for (const char* name : {"host.weights.fp32", "host.adam.exp_avg.fp32",
                           "host.adam.exp_avg_sq.fp32"}) {
    bytes += Find(p, name)->bytes;
  }
  return bytes;
}

// In fp32 a spilled layer frees its moments (8 B/param): the masters are
// what H2D sends. In bf16/fp16 it frees the masters too (12 B/param), and
// the staging slots and extents hold three arrays.
TEST(PlannerSsdTest, MixedPrecisionMovesTheMastersToo) {
  for (Precision precision :
       {Precision::kFp32, Precision::kBf16, Precision::kFp16}) {
    // Deep enough that the read-ahead ring and, in fp32, the optimizer's
    // master slots (6 layers' masters at window 1) cost less than moving
    // the masters saves.
    JobConfig c = Model(12);
    c.training.precision = precision;
    const bool masters = precision != Precision::kFp32;
    const int arrays = masters ? 3 : 2;
    const int64_t layer = c.model.parameters_per_layer();
    const ExecutionPlan all_in_ram = PlanExecution(c, Node(0));
    const int64_t layer_state = arrays * layer * kFloat;
    const int64_t budget = HostNeed(all_in_ram) - 5 * layer_state / 2;
    const ExecutionPlan p = PlanExecution(c, Node(budget));
    const std::string what = PrecisionName(precision);
    ASSERT_TRUE(p.fits) << what << ": " << p.reason;
    EXPECT_LE(HostNeed(p), budget) << what;
    EXPECT_GE(p.ssd_layers, 3) << what;
    EXPECT_GT(HostNeed(p) + layer_state, budget) << what;
    EXPECT_EQ(HostOptimizerState(all_in_ram) - HostOptimizerState(p),
              p.ssd_layers * layer * (masters ? 12 : 8))
        << what;
    EXPECT_EQ(
        Find(p, "host.staging.ssd")->bytes,
        kSsdStagingSlots * arrays * ((layer * kFloat + 4095) / 4096 * 4096))
        << what;
    const PlannedBuffer* ssd =
        Find(p, masters ? "ssd.adam.exp_avg+exp_avg_sq+master"
                        : "ssd.adam.exp_avg+exp_avg_sq");
    ASSERT_NE(ssd, nullptr) << what;
    EXPECT_EQ(ssd->bytes, p.bytes_ssd) << what;
    EXPECT_EQ(p.bytes_ssd, p.ssd_layers * arrays *
                               storage::ExtentStore::StoredBytes(layer * kFloat,
                                                                 4096, 1 << 20))
        << what;
    // The working copy, which H2D sends, stays in host memory.
    if (masters) {
      EXPECT_EQ(Find(p, absl::StrCat("host.weights.", what))->bytes,
                all_in_ram.parameters * 2);
    }
  }
}

TEST(PlannerSsdTest, NeedsTheTierAndItsStreaming) {
  const JobConfig c = Model(8);
  const int64_t budget =
      HostNeed(PlanExecution(c, Node(0))) - AllMoments(c) / 2;
  EXPECT_TRUE(PlanExecution(c, Node(budget)).fits);
  // Not streamed by the engine: the plan is what it was, and does not fit.
  const ExecutionPlan unstreamed =
      PlanExecution(c, Node(budget, /*streaming=*/false));
  EXPECT_FALSE(unstreamed.fits);
  EXPECT_EQ(unstreamed.bytes_ssd, 0);
  EXPECT_THAT(unstreamed.reason, HasSubstr("host memory"));
  // No ssd directories.
  JobConfig no_dirs = c;
  no_dirs.offload.ssd_dirs.clear();
  EXPECT_FALSE(PlanExecution(no_dirs, Node(budget)).fits);
  // RESIDENT keeps everything on the device.
  JobConfig resident = c;
  resident.offload.method = OffloadMethod::kResident;
  EXPECT_EQ(PlanExecution(resident, Node(budget)).bytes_ssd, 0);
}

TEST(PlannerSsdTest, TooSmallEvenWithEveryLayersMoments) {
  const JobConfig c = Model(8);
  const ExecutionPlan p = PlanExecution(c, Node(/*host_bytes=*/4 << 20));
  EXPECT_FALSE(p.fits);
  EXPECT_EQ(p.ssd_layers, 8);
  EXPECT_EQ(p.ssd_weight_layers, 8);
  EXPECT_THAT(p.reason, HasSubstr("even with the Adam moments and fp32 masters "
                                  "of all 8 layers on the NVMe tier"));
  JobConfig bf16 = c;
  bf16.training.precision = Precision::kBf16;
  const ExecutionPlan q = PlanExecution(bf16, Node(/*host_bytes=*/4 << 20));
  EXPECT_FALSE(q.fits);
  EXPECT_EQ(q.ssd_layers, 8);
  EXPECT_EQ(q.ssd_weight_layers, 8);
  EXPECT_THAT(q.reason,
              HasSubstr("even with the fp32 masters, Adam moments and bf16 "
                        "working copies of all 8 layers on the NVMe tier"));
}

// What H2D sends (bf16/fp16 working copies, fp32 masters) of as few layers
// as needed goes to the tier too, but only once the optimizer state of
// every layer is there; the bytes add up, the engine's read-ahead ring and
// the optimizer's staging for it included.
TEST(PlannerSsdTest, WhatH2dSendsMovesOnlyWhenAllOptimizerStateIsNotEnough) {
  for (Precision precision :
       {Precision::kFp32, Precision::kBf16, Precision::kFp16}) {
    // Deep enough that the read-ahead ring and, in fp32, the optimizer's
    // master slots (6 layers' masters at window 1) cost less than moving
    // the masters saves.
    JobConfig c = Model(12);
    c.training.precision = precision;
    const bool fp32 = precision == Precision::kFp32;
    const std::string what = PrecisionName(precision);
    const int64_t layer = c.model.parameters_per_layer();
    const int64_t e = fp32 ? 4 : 2;
    const int64_t layer_weights = layer * e;
    const int64_t aligned = (layer_weights + 4095) / 4096 * 4096;
    // Just enough with every layer's optimizer state on the tier (the
    // moments, and in bf16/fp16 the masters): nothing sent is there.
    const int state_arrays = fp32 ? 2 : 3;
    const ExecutionPlan state_only = PlanExecution(c, Node(0));
    // (The staging: kSsdStagingSlots slots and a checkpoint's one layer.)
    int64_t budget = HostNeed(state_only) - state_arrays * 4 * 12 * layer +
                     (kSsdStagingSlots + 1) * state_arrays *
                         ((layer * kFloat + 4095) / 4096 * 4096);
    const ExecutionPlan all_state = PlanExecution(c, Node(budget));
    ASSERT_TRUE(all_state.fits) << what << ": " << all_state.reason;
    EXPECT_EQ(all_state.ssd_layers, 12) << what;
    EXPECT_EQ(all_state.ssd_weight_layers, 0) << what;
    const std::string ssd_name =
        fp32 ? "ssd.master.fp32" : "ssd.weights." + what;
    EXPECT_EQ(Find(all_state, ssd_name), nullptr) << what;
    // Short by two and a half layers' worth more (plus staging).
    budget -= 5 * layer_weights / 2;
    const ExecutionPlan p = PlanExecution(c, Node(budget));
    ASSERT_TRUE(p.fits) << what << ": " << p.reason;
    EXPECT_EQ(p.ssd_layers, 12) << what;
    EXPECT_GE(p.ssd_weight_layers, 3) << what;
    EXPECT_LT(p.ssd_weight_layers, 12) << what;
    EXPECT_LE(HostNeed(p), budget) << what;
    EXPECT_GT(HostNeed(p) + layer_weights, budget)
        << what;  // one layer fewer: short
    const int64_t ring = TierReadRing(c, p.window) * aligned;
    const int64_t optimizer = kSsdStagingSlots * aligned;
    // In fp32 a checkpoint moves the spilled masters through host memory.
    const int64_t checkpoint = fp32 ? aligned : 0;
    EXPECT_EQ(Find(p, "host.staging.ssd_weights")->bytes, ring) << what;
    if (fp32) {
      EXPECT_EQ(Find(p, "host.staging.checkpoint.master")->bytes, checkpoint);
    }
    EXPECT_EQ(
        Find(p, fp32 ? "host.staging.ssd.master" : "host.staging.ssd.working")
            ->bytes,
        optimizer)
        << what;
    EXPECT_EQ(Find(p, "host.weights." + what)->bytes,
              (p.parameters - p.ssd_weight_layers * layer) * e)
        << what;
    // (Host memory left over goes to kept activations, on the device tier.)
    EXPECT_EQ(
        all_state.bytes_host + all_state.bytes_pinned - p.bytes_host -
            p.bytes_pinned,
        p.ssd_weight_layers * layer_weights - ring - optimizer - checkpoint)
        << what;
    const PlannedBuffer* ssd = Find(p, ssd_name);
    ASSERT_NE(ssd, nullptr) << what;
    EXPECT_EQ(ssd->tier, kTierSsd);
    EXPECT_EQ(ssd->bytes,
              p.ssd_weight_layers * storage::ExtentStore::StoredBytes(
                                        layer_weights, 4096, 1 << 20))
        << what;
    const char* state = fp32 ? "ssd.adam.exp_avg+exp_avg_sq"
                             : "ssd.adam.exp_avg+exp_avg_sq+master";
    EXPECT_EQ(p.bytes_ssd, ssd->bytes + Find(p, state)->bytes) << what;
  }
}

// One micro-batch per step and updates as gradients land: each spilled
// layer's gradient is consumed by its update in the task that lands it, so
// the spilled layers share one layer's fp32 accumulator; a spilled layer
// frees 12 B/param in fp32 (16 in bf16) and fewer layers spill for the
// same budget. With clipping, fp16 or two micro-batches every accumulator
// stays.
TEST(PlannerSsdTest, GradientsConsumedAsTheyLandShareOneAccumulator) {
  for (Precision p : {Precision::kFp32, Precision::kBf16}) {
    JobConfig c = Model(8);
    c.training.precision = p;
    c.training.clip_norm = 0;
    const int64_t layer = c.model.parameters_per_layer();
    const int64_t all = PlanExecution(c, Node(0)).parameters;
    const int64_t budget = HostNeed(PlanExecution(c, Node(0))) -
                           4 * layer * kFloat * (p == Precision::kFp32 ? 2 : 3);
    const ExecutionPlan t = PlanExecution(c, Node(budget));
    const std::string what = PrecisionName(p);
    ASSERT_TRUE(t.fits) << what << ": " << t.reason;
    EXPECT_TRUE(t.ssd_grads_transient) << what;
    EXPECT_LE(HostNeed(t), budget) << what;
    EXPECT_GT(HostNeed(t) + (p == Precision::kFp32 ? 3 : 4) * layer * kFloat,
              budget)
        << what << ": one layer fewer would have been enough";
    EXPECT_EQ(Find(t, "host.grads.fp32")->bytes,
              (all - t.ssd_layers * layer) * kFloat)
        << what;
    const PlannedBuffer* shared = Find(t, "host.grads.spilled.fp32");
    ASSERT_NE(shared, nullptr) << what;
    EXPECT_EQ(shared->bytes, layer * kFloat) << what;
    EXPECT_EQ(shared->tier, kTierHost) << what;

    // Each of these keeps every accumulator, and so spills more layers.
    JobConfig clipped = c;
    clipped.training.clip_norm = 1.0;
    JobConfig two = c;
    two.training.batch = 2;
    JobConfig fp16 = c;
    fp16.training.precision = Precision::kFp16;
    for (const auto& [other, name] :
         {std::pair{clipped, "clipped"}, std::pair{two, "two micro-batches"},
          std::pair{fp16, "fp16"}}) {
      if (p != Precision::kBf16 && other.training.precision == Precision::kFp16)
        continue;
      const ExecutionPlan o = PlanExecution(other, Node(budget));
      EXPECT_FALSE(o.ssd_grads_transient) << what << ", " << name;
      EXPECT_EQ(Find(o, "host.grads.spilled.fp32"), nullptr)
          << what << ", " << name;
      if (o.ssd_layers > 0) {
        EXPECT_EQ(Find(o, "host.grads.fp32")->bytes, o.rank_parameters * kFloat)
            << what << ", " << name;
      }
      if (other.training.batch == 1) {
        EXPECT_GT(o.ssd_layers, t.ssd_layers) << what << ", " << name;
      }
    }
  }
  // Without a budget to meet nothing spills, and the flag stays off.
  JobConfig c = Model(8);
  c.training.clip_norm = 0;
  EXPECT_FALSE(PlanExecution(c, Node(0)).ssd_grads_transient);
}

TEST(PlannerSsdTest, SsdBudgetIsChecked) {
  const JobConfig c = Model(8);
  NodeBudgets node =
      Node(HostNeed(PlanExecution(c, Node(0))) - AllMoments(c) / 2);
  node.ssd_bytes = 1 << 20;
  const ExecutionPlan p = PlanExecution(c, node);
  EXPECT_FALSE(p.fits);
  EXPECT_THAT(p.reason, HasSubstr("ssd: needs"));
}

TEST(PlannerSsdTest, MaxTrainableLayersMatchesAScanAndGrowsWithTheTier) {
  const JobConfig c = Model(1);
  const int64_t budget = 512 << 20;
  for (bool streaming : {false, true}) {
    const NodeBudgets node = Node(budget, streaming);
    int scanned = 0;
    for (int layers = 1; layers <= 40; ++layers) {
      JobConfig l = c;
      l.model.layers = layers;
      if (PlanExecution(l, node).fits) scanned = layers;
    }
    EXPECT_EQ(MaxTrainableLayers(c, node), scanned)
        << "streaming " << streaming;
  }
  // Moments are half of a layer's host state (weights, gradient, m, v).
  EXPECT_GE(MaxTrainableLayers(c, Node(budget, true)),
            MaxTrainableLayers(c, Node(budget, false)) * 3 / 2);
  EXPECT_EQ(MaxTrainableLayers(c, Node(/*host_bytes=*/1 << 20, true)), 0);
}

}  // namespace
}  // namespace stronghold::core
