// The NVMe tier through the trainer: a job whose Adam moments are spilled
// (TrainerOptions::ssd_layers) trains bit-identically to the same job held in
// RAM, with and without clipping (deferred and as-gradients-land updates),
// for STRONGHOLD and L2L, through a checkpoint and a restore; in bf16/fp16
// with the fp32 masters spilled too, where the host budget asks for it,
// and the 16-bit working copies too where even that is short; and
// injected
// faults (EIO, a silently torn write, ENOSPC) fail the job with an error
// that says what failed, leave the last checkpoint intact, and do not stop
// the next job from training.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/checkpoint/checkpoint.h"
#include "core/engine/loss_scale.h"
#include "core/plan/planner.h"
#include "core/train/trainer.h"
#include "core/util/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/fault_injecting_block_device.h"
#include "storage/memory_block_device.h"
#include "tests/core/training_test_util.h"

namespace stronghold::core {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class Recorder : public TrainerObserver {
 public:
  void OnStep(const StepMetrics& r) override {
    losses.push_back(r.loss);
    nvme_read_bytes += r.nvme_read_bytes;
    nvme_reused_bytes += r.nvme_reused_bytes;
    nvme_write_bytes += r.nvme_write_bytes;
    nvme_unplanned_reads += r.nvme_unplanned_reads;
    if (on_step) on_step(r.step);
  }
  void OnMessage(const std::string&) override {}
  void OnCheckpoint(const std::string& name) override {
    checkpoints.push_back(name);
  }
  StopRequest StopRequested() override { return StopRequest::kNone; }

  std::vector<double> losses;
  std::vector<std::string> checkpoints;
  std::function<void(int64_t)> on_step;
  int64_t nvme_read_bytes = 0;
  int64_t nvme_reused_bytes = 0;  // staged from a slot that still held it
  int64_t nvme_write_bytes = 0;
  // Staged for an update or a fetch, from the device or a slot.
  int64_t staged() const { return nvme_read_bytes + nvme_reused_bytes; }
  // Each update stages its layer's state and writes it back, each fetch
  // of what H2D sends from the tier stages `fetched` bytes in all; with
  // deferred updates the last step also staged the first slots' worth
  // (at most kSsdStagingSlots items of `item` bytes) for updates that run
  // after its report.
  void ExpectStagedIsWrittenPlus(int64_t fetched, int64_t item,
                                 const std::string& tag) const {
    EXPECT_GE(staged() - nvme_write_bytes, fetched) << tag;
    EXPECT_LE(staged() - nvme_write_bytes, fetched + kSsdStagingSlots * item)
        << tag;
  }
  int64_t nvme_unplanned_reads = 0;
};

JobConfig Job(OffloadMethod method, bool clip,
              Architecture architecture = Architecture::kGpt) {
  JobConfig c;
  c.model = WithArchitecture(
      {.layers = 6, .hidden = 64, .heads = 4, .seq_len = 32, .vocab = 256},
      architecture);
  c.training.steps = 6;
  c.training.batch = 8;
  c.training.micro_batch = 4;
  c.training.clip_norm = clip ? 0.5 : 0.0;
  c.training.warmup_steps = 2;
  c.offload.method = method;
  c.offload.window = method == OffloadMethod::kL2L ? 0 : 2;
  return c;
}

std::string Dir(const std::string& name) {
  const fs::path p =
      fs::path(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR")
                                          : "/tmp") /
      name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

struct Result {
  absl::Status status;
  std::vector<double> losses;
  std::vector<std::vector<float>> weights;
};

// Trains `c`; ssd_layers > 0 spills them (and the working copies of
// ssd_weight_layers) to files in a fresh directory, or to `device` when given.
Result Train(JobConfig c, const std::string& name, int ssd_layers,
             storage::BlockDevice* device = nullptr,
             Recorder* recorder = nullptr, const std::string& restore = "",
             int ssd_weight_layers = 0) {
  if (ssd_layers > 0 && device == nullptr)
    c.offload.ssd_dirs = {Dir(name + "_ssd")};
  Recorder local;
  if (recorder == nullptr) recorder = &local;
  Result r;
  auto trainer = Trainer::Create(
      c, PlanWithSsd(c, ssd_layers, ssd_weight_layers),
      {.job_dir = Dir(name), .optimizer_threads = 2, .ssd_device = device});
  if (!trainer.ok()) {
    r.status = trainer.status();
    return r;
  }
  if (!restore.empty()) {
    auto step = (*trainer)->Restore(restore);
    if (!step.ok()) {
      r.status = step.status();
      return r;
    }
  }
  r.status = (*trainer)->Run(recorder);
  r.losses = recorder->losses;
  if (!r.status.ok()) return r;
  auto weights = (*trainer)->Weights();
  r.status = weights.status();
  if (weights.ok()) r.weights = *std::move(weights);
  return r;
}

void ExpectBitIdentical(const Result& a, const Result& b,
                        const std::string& what) {
  ASSERT_TRUE(a.status.ok()) << a.status;
  ASSERT_TRUE(b.status.ok()) << what << ": " << b.status;
  ASSERT_EQ(a.losses, b.losses) << what;
  ASSERT_EQ(a.weights.size(), b.weights.size());
  for (size_t buf = 0; buf < a.weights.size(); ++buf) {
    ASSERT_EQ(0, std::memcmp(a.weights[buf].data(), b.weights[buf].data(),
                             a.weights[buf].size() * sizeof(float)))
        << what << ": weights of buffer " << buf << " differ";
  }
}

TEST(SsdTierTest, SpilledMomentsTrainBitIdenticallyToRam) {
  for (bool clip : {true, false}) {
    const JobConfig c = Job(OffloadMethod::kStronghold, clip);
    const std::string tag = clip ? "clip" : "noclip";
    Recorder ram_steps, spill_steps;
    const Result ram = Train(c, "ram_" + tag, 0, nullptr, &ram_steps);
    ExpectBitIdentical(ram, Train(c, "spill4_" + tag, 4, nullptr, &spill_steps),
                       tag + ", 4 of 6 layers spilled");
    // The steps report the tier's traffic: each spilled update stages m
    // and v of its layer (read, or still in a slot from its last write) and
    // writes them back.
    EXPECT_EQ(ram_steps.staged(), 0);
    EXPECT_GT(spill_steps.nvme_read_bytes, 0);
    spill_steps.ExpectStagedIsWrittenPlus(
        0, 2 * 4 * c.model.parameters_per_layer(), tag);
    EXPECT_EQ(
        spill_steps.nvme_read_bytes % (2 * 4 * c.model.parameters_per_layer()),
        0);
    ExpectBitIdentical(ram, Train(c, "spill6_" + tag, 6),
                       tag + ", all 6 layers spilled");
  }
  const JobConfig l2l = Job(OffloadMethod::kL2L, true);
  ExpectBitIdentical(Train(l2l, "ram_l2l", 0), Train(l2l, "spill_l2l", 3),
                     "L2L, 3 spilled");
}

// The llama architecture (GQA, untied head): STRONGHOLD W=2 with and without
// clipping and L2L, spilled, equal RESIDENT held in RAM.
TEST(SsdTierTest, LlamaSpillsBitIdenticallyToResident) {
  for (bool clip : {true, false}) {
    const std::string tag = clip ? "llama_clip" : "llama_noclip";
    const Result resident =
        Train(Job(OffloadMethod::kResident, clip, Architecture::kLlama),
              "resident_" + tag, 0);
    ExpectBitIdentical(
        resident,
        Train(Job(OffloadMethod::kStronghold, clip, Architecture::kLlama),
              "spill4_" + tag, 4),
        tag + ", STRONGHOLD W=2, 4 of 6 layers spilled");
    if (clip) {
      ExpectBitIdentical(
          resident,
          Train(Job(OffloadMethod::kL2L, clip, Architecture::kLlama),
                "spill_l2l_" + tag, 3),
          tag + ", L2L, 3 spilled");
    }
  }
}

// One micro-batch per step, no clipping: the spilled layers' gradients are
// consumed as they land and share one accumulator
// (ExecutionPlan::ssd_grads_transient). STRONGHOLD W=1/2/3 and L2L, gpt and
// llama, fp32 and bf16, with every layer's state spilled (and, in two
// layers, what H2D sends too) train bit-identically to the job held in RAM
// (RESIDENT in fp32).
TEST(SsdTierTest, GradientsConsumedAsTheyLandTrainBitIdentically) {
  for (Architecture a : {Architecture::kGpt, Architecture::kLlama}) {
    for (Precision p : {Precision::kFp32, Precision::kBf16}) {
      const auto job = [a, p](OffloadMethod method, int window) {
        JobConfig c = Job(method, /*clip=*/false, a);
        c.training.batch = c.training.micro_batch;
        c.training.precision = p;
        if (method == OffloadMethod::kStronghold) c.offload.window = window;
        return c;
      };
      const std::string tag = absl::StrCat(
          a == Architecture::kGpt ? "gpt" : "llama", "_", PrecisionName(p));
      const Result ram =
          p == Precision::kFp32
              ? Train(job(OffloadMethod::kResident, 0), "grads_ram_" + tag, 0)
              : Train(job(OffloadMethod::kStronghold, 2), "grads_ram_" + tag,
                      0);
      for (const auto& [method, window] :
           {std::pair{OffloadMethod::kStronghold, 1},
            std::pair{OffloadMethod::kStronghold, 2},
            std::pair{OffloadMethod::kStronghold, 3},
            std::pair{OffloadMethod::kL2L, 0}}) {
        const JobConfig c = job(method, window);
        ASSERT_TRUE(PlanWithSsd(c, 6, 0).ssd_grads_transient) << tag;
        const std::string what = absl::StrCat(
            tag, method == OffloadMethod::kL2L ? ", L2L" : ", STRONGHOLD",
            " W=", window);
        ExpectBitIdentical(ram,
                           Train(c, absl::StrCat("grads_", tag, "_", window),
                                 /*ssd_layers=*/6),
                           what + ", every layer's state spilled");
      }
      const JobConfig c = job(OffloadMethod::kStronghold, 2);
      Recorder steps;
      ExpectBitIdentical(
          ram,
          Train(c, "grads_weights_" + tag, 6, nullptr, &steps, "",
                /*ssd_weight_layers=*/2),
          tag + ", STRONGHOLD W=2, what H2D sends of 2 layers spilled too");
      EXPECT_EQ(steps.nvme_unplanned_reads, 0) << tag;
    }
  }
}

// bf16 without clipping stages the spilled moments in backward order, fp16
// (deferred updates) in forward order; both equal the job held in RAM.
TEST(SsdTierTest, MixedPrecisionSpillsBitIdenticallyToRam) {
  for (Precision p : {Precision::kBf16, Precision::kFp16}) {
    JobConfig c = Job(OffloadMethod::kStronghold, /*clip=*/false);
    c.training.precision = p;
    const std::string tag = p == Precision::kBf16 ? "bf16" : "fp16";
    ExpectBitIdentical(Train(c, "ram_" + tag, 0), Train(c, "spill_" + tag, 3),
                       tag + ", 3 of 6 layers spilled");
  }
}

// The checkpoint file `file` of step `step` of the job trained as `name`.
std::string CheckpointFile(const std::string& name, int64_t step,
                           const std::string& file) {
  return (fs::path(Dir("unused")).parent_path() / name / "checkpoints" /
          CheckpointName(step) / file)
      .string();
}

// The host memory `c` needs with everything in RAM (NVMe tier ignored),
// before the kept activations, which spend whatever is left.
int64_t HostNeedBeforeKept(const JobConfig& c) {
  const ExecutionPlan plan =
      PlanExecution(c, {.device = "cpu", .host_bytes = 0});
  int64_t need = plan.bytes_host + plan.bytes_pinned + plan.bytes_device;
  for (const PlannedBuffer& b : plan.buffers) {
    if (b.name == "activations.kept") need -= b.bytes;
  }
  return need;
}

// The host bytes that moving `arrays` fp32 arrays (`bytes_per_param` in
// all) of every layer to the tier frees, net of the staging slots, each of
// which holds one layer's arrays 4 KiB-aligned.
int64_t TierFrees(const JobConfig& c, int bytes_per_param, int arrays) {
  const int64_t layer = c.model.parameters_per_layer();
  const int64_t slot_array = (layer * 4 + 4095) / 4096 * 4096;
  // Its staging slots, and one layer's for checkpoints.
  return c.model.layers * bytes_per_param * layer -
         (kSsdStagingSlots + 1) * arrays * slot_array;
}

// The final checkpoints of the jobs trained as `a` and `b` are the same
// files, byte for byte.
void ExpectSameFinalCheckpoint(const JobConfig& c, const std::string& a_name,
                               const std::string& b_name,
                               const std::string& tag) {
  for (const char* file : {kModelFile, kOptimizerFile}) {
    auto a = Sha256File(CheckpointFile(a_name, c.training.steps, file));
    auto b = Sha256File(CheckpointFile(b_name, c.training.steps, file));
    ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
    EXPECT_EQ(*a, *b) << tag << ": " << file;
  }
}

// `c`, resumed from the step-3 checkpoint of the job trained as `name` with
// `plan`'s placement, ends with `expected`'s weights.
void ExpectResumesTo(const JobConfig& c, const std::string& name,
                     const ExecutionPlan& plan, const Result& expected,
                     const std::string& tag) {
  const Result resumed =
      Train(c, name + "_resumed", plan.ssd_layers, nullptr, nullptr,
            fs::path(CheckpointFile(name, 3, "x")).parent_path(),
            plan.ssd_weight_layers);
  ASSERT_TRUE(resumed.status.ok()) << tag << ": " << resumed.status;
  EXPECT_EQ(resumed.weights, expected.weights) << tag;
}

// The host bytes that moving what H2D sends (working copies, or fp32
// masters) of every layer to the tier frees, net of the engine's read-ahead
// ring and the optimizer's staging for it.
int64_t SentFrees(const JobConfig& c) {
  const int64_t layer = c.model.parameters_per_layer();
  const int64_t e = ComputeElementBytes(c.training.precision);
  const int64_t one = (layer * e + 4095) / 4096 * 4096;
  // In fp32 a checkpoint moves the spilled masters through host memory.
  const int checkpoint = c.training.precision == Precision::kFp32 ? 1 : 0;
  return c.model.layers * e * layer -
         (TierReadRing(c, c.offload.window) + kSsdStagingSlots + checkpoint) *
             one;
}

// The plan of `c` (12 layers, with a tier) for a host budget that even
// every layer's optimizer state on the tier cannot meet: that frees this
// (net of its staging), and half of what moving every layer's H2D source
// frees (net of its staging) more is asked for, so the planner moves what
// H2D sends of some layers, not all.
void PlanWithSentOnTier(const JobConfig& c, const std::string& tag,
                        ExecutionPlan* plan) {
  const int64_t state_free = c.training.precision == Precision::kFp32
                                 ? TierFrees(c, 8, 2)
                                 : TierFrees(c, 12, 3);
  const int64_t sent_free = SentFrees(c);
  ASSERT_GT(sent_free, 0) << tag;
  *plan = PlanExecution(
      c, {.device = "cpu",
          .host_bytes = HostNeedBeforeKept(c) - state_free - sent_free / 2});
  ASSERT_TRUE(plan->fits) << tag << ": " << plan->reason;
  ASSERT_EQ(plan->ssd_layers, c.model.layers) << tag;
  ASSERT_GT(plan->ssd_weight_layers, 0) << tag;
  ASSERT_LT(plan->ssd_weight_layers, c.model.layers) << tag;
}

// A host budget that moving every layer's moments cannot meet: the planner
// puts the fp32 masters on the tier too, and the job trains bit-identically
// to the same job in RAM: losses, masters, and the checkpoint's weights and
// moments byte for byte.
TEST(SsdTierTest, MixedPrecisionMastersOnTheTierTrainBitIdenticallyToRam) {
  for (Precision p : {Precision::kBf16, Precision::kFp16}) {
    JobConfig c = Job(OffloadMethod::kStronghold, /*clip=*/true);
    c.training.precision = p;
    c.offload.ssd_dirs = {"/unused"};  // for the plan: a tier exists
    const std::string tag = PrecisionName(p);
    NodeBudgets node{.device = "cpu", .host_bytes = 0};
    const int64_t need = HostNeedBeforeKept(c);
    // What spilling every layer frees net of its staging slots: moments
    // only (8 B/param, 2 arrays) and with the masters (12 B/param, 3).
    const int64_t layer = c.model.parameters_per_layer();
    const int64_t moments_free = TierFrees(c, 8, 2);
    const int64_t masters_free = TierFrees(c, 12, 3);
    ASSERT_GT(masters_free, moments_free);
    node.host_bytes = need - (moments_free + masters_free) / 2;
    const ExecutionPlan plan = PlanExecution(c, node);
    ASSERT_TRUE(plan.fits) << tag << ": " << plan.reason;
    ASSERT_GT(plan.ssd_layers, 0);
    bool masters_on_ssd = false;
    for (const PlannedBuffer& b : plan.buffers) {
      masters_on_ssd |= b.name == "ssd.adam.exp_avg+exp_avg_sq+master";
    }
    EXPECT_TRUE(masters_on_ssd) << tag;

    c.offload.ssd_dirs.clear();
    Recorder ram_steps, spill_steps;
    const Result ram = Train(c, "ram_masters_" + tag, 0, nullptr, &ram_steps);
    const Result spilled = Train(c, "spill_masters_" + tag, plan.ssd_layers,
                                 nullptr, &spill_steps);
    ExpectBitIdentical(ram, spilled,
                       tag + ", masters of " + std::to_string(plan.ssd_layers) +
                           " layers spilled");
    // Each spilled update stages and writes m, v and the master.
    EXPECT_GT(spill_steps.nvme_read_bytes, 0);
    spill_steps.ExpectStagedIsWrittenPlus(0, 3 * 4 * layer, tag);
    const int64_t per_step = plan.ssd_layers * 3 * 4 * layer;
    EXPECT_EQ(spill_steps.staged() % (3 * 4 * layer), 0);  // whole layers
    // bf16 skips no step; the last step's updates may finish after it is
    // reported. Moments alone would be 2/3 of this.
    if (p == Precision::kBf16) {
      EXPECT_GE(spill_steps.staged(), (c.training.steps - 1) * per_step);
    }
    ExpectSameFinalCheckpoint(c, "ram_masters_" + tag, "spill_masters_" + tag,
                              tag);
  }
}

// A host budget that even every layer's masters and moments on the tier
// cannot meet: the planner puts working copies there too, and the job
// trains bit-identically to the same job in RAM (losses, masters, checkpoint
// files), with STRONGHOLD (updates deferred: bf16 clipped, fp16; and as
// gradients land: bf16 unclipped, where the update's state is staged while
// backward still fetches the working copy) and L2L, and resumed from a
// checkpoint.
TEST(SsdTierTest,
     MixedPrecisionWorkingCopiesOnTheTierTrainBitIdenticallyToRam) {
  for (const auto& [p, clip] :
       {std::pair{Precision::kBf16, true}, std::pair{Precision::kBf16, false},
        std::pair{Precision::kFp16, false}}) {
    JobConfig c = Job(OffloadMethod::kStronghold, clip);
    c.model.layers =
        12;  // so that moving some layers' copies pays for their staging
    c.training.precision = p;
    c.checkpoint.every_steps = 3;
    c.offload.ssd_dirs = {"/unused"};  // for the plan: a tier exists
    const std::string tag = absl::StrCat(PrecisionName(p), clip ? "_clip" : "");
    ExecutionPlan plan;
    ASSERT_NO_FATAL_FAILURE(PlanWithSentOnTier(c, tag, &plan));

    c.offload.ssd_dirs.clear();
    const std::string ram_name = "ram_weights_" + tag,
                      tier_name = "tier_weights_" + tag;
    const Result ram = Train(c, ram_name, 0);
    Recorder tier_steps;
    const Result tier = Train(c, tier_name, plan.ssd_layers, nullptr,
                              &tier_steps, "", plan.ssd_weight_layers);
    ExpectBitIdentical(ram, tier,
                       tag + ", working copies of " +
                           std::to_string(plan.ssd_weight_layers) +
                           " layers spilled");
    // Every fetch of such a layer (forward and backward) reads it, ahead,
    // in the planned order.
    EXPECT_GT(tier_steps.staged(), tier_steps.nvme_write_bytes) << tag;
    EXPECT_EQ(tier_steps.nvme_unplanned_reads, 0) << tag;
    ExpectSameFinalCheckpoint(c, ram_name, tier_name, tag);
    // Resumed from step 3: the working copies on the tier follow the
    // restored masters.
    ExpectResumesTo(c, tier_name, plan, ram, tag);
  }
  JobConfig l2l = Job(OffloadMethod::kL2L, /*clip=*/true);
  l2l.training.precision = Precision::kBf16;
  ExpectBitIdentical(Train(l2l, "ram_weights_l2l", 0),
                     Train(l2l, "tier_weights_l2l", 6, nullptr, nullptr, "", 4),
                     "L2L bf16, working copies of 4 layers spilled");
}

// fp32, with a host budget that every layer's moments on the tier cannot
// meet: the planner puts the masters, which H2D sends, of some layers there
// too; the engine reads them ahead of every fetch, in its planned order,
// and the job trains bit-identically to RAM (losses, masters, checkpoint
// files) with deferred (clipped) and as-gradients-land updates, with L2L,
// and resumed from a checkpoint.
TEST(SsdTierTest, Fp32MastersOnTheTierTrainBitIdenticallyToRam) {
  for (bool clip : {true, false}) {
    JobConfig c = Job(OffloadMethod::kStronghold, clip);
    // Deep enough that moving some layers' masters pays for the read-ahead
    // ring and the optimizer's master slots (7 layers' masters at W = 2).
    c.model.layers = 12;
    c.checkpoint.every_steps = 3;
    c.offload.ssd_dirs = {"/unused"};  // for the plan: a tier exists
    const std::string tag = clip ? "clip" : "noclip";
    ExecutionPlan plan;
    ASSERT_NO_FATAL_FAILURE(PlanWithSentOnTier(c, tag, &plan));
    bool masters_on_ssd = false;
    for (const PlannedBuffer& b : plan.buffers)
      masters_on_ssd |= b.name == "ssd.master.fp32";
    EXPECT_TRUE(masters_on_ssd) << tag;

    c.offload.ssd_dirs.clear();
    const std::string ram_name = "ram_fp32_masters_" + tag;
    const std::string tier_name = "tier_fp32_masters_" + tag;
    const Result ram = Train(c, ram_name, 0);
    Recorder tier_steps;
    const Result tier = Train(c, tier_name, plan.ssd_layers, nullptr,
                              &tier_steps, "", plan.ssd_weight_layers);
    ExpectBitIdentical(ram, tier,
                       tag + ", fp32 masters of " +
                           std::to_string(plan.ssd_weight_layers) +
                           " layers spilled");
    // Per step: each micro-batch fetches a spilled layer in forward, and in
    // backward unless it is among the last W, which stay from forward.
    int64_t fetches = 0;
    for (int i = 0; i < plan.ssd_weight_layers; ++i) {
      fetches += i < c.model.layers - c.offload.window ? 2 : 1;
    }
    const int64_t fetch_bytes = fetches * c.training.steps * c.training.batch /
                                c.training.micro_batch * 4 *
                                c.model.parameters_per_layer();
    // The optimizer stages and writes the moments and masters alike.
    tier_steps.ExpectStagedIsWrittenPlus(
        fetch_bytes, 3 * 4 * c.model.parameters_per_layer(), tag);
    EXPECT_EQ(tier_steps.nvme_unplanned_reads, 0) << tag;
    ExpectSameFinalCheckpoint(c, ram_name, tier_name, tag);
    ExpectResumesTo(c, tier_name, plan, ram, tag);
  }
  const JobConfig l2l = Job(OffloadMethod::kL2L, /*clip=*/true);
  Recorder l2l_steps;
  ExpectBitIdentical(
      Train(l2l, "ram_fp32_masters_l2l", 0),
      Train(l2l, "tier_fp32_masters_l2l", 6, nullptr, &l2l_steps, "", 4),
      "L2L fp32, masters of 4 layers spilled");
  EXPECT_EQ(l2l_steps.nvme_unplanned_reads, 0);
}

TEST(SsdTierTest, CheckpointAndRestoreCarryTheSpilledMoments) {
  JobConfig c = Job(OffloadMethod::kStronghold, true);
  const Result ram = Train(c, "ram_full", 0);
  // Spilled, with checkpoints at steps 3 and 6 (the schedule depends on the
  // total number of steps, so the job is the same one).
  c.checkpoint.every_steps = 3;
  Recorder recorder;
  const Result part = Train(c, "spill_part", 5, nullptr, &recorder);
  ASSERT_TRUE(part.status.ok()) << part.status;
  EXPECT_EQ(part.weights, ram.weights);
  ASSERT_EQ(recorder.checkpoints.size(), 2u);
  const std::string checkpoint =
      (fs::path(Dir("unused")).parent_path() / "spill_part" / "checkpoints" /
       recorder.checkpoints[0])
          .string();
  // Resumed spilled, and resumed in RAM: both end where the RAM run ended.
  Result resumed = Train(c, "spill_resumed", 5, nullptr, nullptr, checkpoint);
  ASSERT_TRUE(resumed.status.ok()) << resumed.status;
  EXPECT_EQ(resumed.weights, ram.weights);
  Result resumed_ram = Train(c, "ram_resumed", 0, nullptr, nullptr, checkpoint);
  ASSERT_TRUE(resumed_ram.status.ok()) << resumed_ram.status;
  EXPECT_EQ(resumed_ram.weights, ram.weights);
}

// A fault-injecting device over memory, big enough for every layer's moments.
std::unique_ptr<storage::FaultInjectingBlockDevice> FaultyDevice() {
  return std::make_unique<storage::FaultInjectingBlockDevice>(
      storage::NewMemoryBlockDevice(
          storage::MemoryBlockDeviceOptions(64 << 20)));
}

TEST(SsdTierTest, ReadErrorFailsTheJobNamingTheError) {
  auto device = FaultyDevice();
  Recorder recorder;
  recorder.on_step = [&](int64_t step) {
    if (step == 2) device->FailAllReads();
  };
  const Result r = Train(Job(OffloadMethod::kStronghold, false), "eio", 4,
                         device.get(), &recorder);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss) << r.status;
  EXPECT_THAT(std::string(r.status.message()),
              HasSubstr("reading extents layers."));
  EXPECT_THAT(std::string(r.status.message()),
              HasSubstr("Input/output error (errno 5)"));
  EXPECT_EQ(recorder.losses.size(), 2u);  // step 3 failed
}

// A read error on a fetch of what H2D sends from the tier (a bf16 working
// copy, an fp32 master) fails the step naming its extent. Every layer's is
// there: step 3's forward reads most of them after the fault (the first
// few were read ahead at the end of step 2).
TEST(SsdTierTest, ReadErrorOnAFetchFailsTheJobNamingTheError) {
  for (Precision p : {Precision::kBf16, Precision::kFp32}) {
    auto device = FaultyDevice();
    Recorder recorder;
    recorder.on_step = [&](int64_t step) {
      if (step == 2) device->FailAllReads();
    };
    JobConfig c = Job(OffloadMethod::kStronghold, false);
    c.training.precision = p;
    const std::string tag = PrecisionName(p);
    const Result r =
        Train(c, "eio_fetch_" + tag, 6, device.get(), &recorder, "", 6);
    EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss)
        << tag << ": " << r.status;
    EXPECT_THAT(std::string(r.status.message()),
                HasSubstr(p == Precision::kFp32 ? ".master" : ".working"))
        << tag;
    EXPECT_THAT(std::string(r.status.message()),
                HasSubstr("Input/output error (errno 5)"));
    EXPECT_EQ(recorder.losses.size(), 2u) << tag;  // step 3 failed
  }
}

TEST(SsdTierTest, SilentlyTornWriteFailsTheJobAtTheNextRead) {
  auto device = FaultyDevice();
  Recorder recorder;
  recorder.on_step = [&](int64_t step) {
    if (step == 2)
      device->TearNthWrite(1,
                           storage::FaultInjectingBlockDevice::Tear::kSilent);
  };
  const Result r = Train(Job(OffloadMethod::kStronghold, false), "torn", 4,
                         device.get(), &recorder);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss) << r.status;
  EXPECT_THAT(std::string(r.status.message()), HasSubstr("CRC32C mismatch"));
}

TEST(SsdTierTest, FullDiskFailsTheJobWithResourceExhausted) {
  auto device = FaultyDevice();
  Recorder recorder;
  recorder.on_step = [&](int64_t step) {
    if (step == 2) device->SetSpaceLimit(0);
  };
  const Result r = Train(Job(OffloadMethod::kStronghold, true), "enospc", 4,
                         device.get(), &recorder);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kResourceExhausted) << r.status;
  EXPECT_THAT(std::string(r.status.message()),
              HasSubstr("No space left on device"));
  EXPECT_THAT(std::string(r.status.message()), HasSubstr("needs"));
}

TEST(SsdTierTest,
     AFailedWriteLeavesTheLastCheckpointIntactAndTheNextJobTrains) {
  JobConfig c = Job(OffloadMethod::kStronghold, true);
  c.checkpoint.every_steps = 2;
  auto device = FaultyDevice();
  Recorder recorder;
  recorder.on_step = [&](int64_t step) {
    if (step == 3) device->FailNthWrite(1);
  };
  const Result failed = Train(c, "failing", 4, device.get(), &recorder);
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kDataLoss) << failed.status;
  EXPECT_THAT(std::string(failed.status.message()),
              HasSubstr("writing extents layers."));
  ASSERT_EQ(recorder.checkpoints, std::vector<std::string>{CheckpointName(2)});
  // The step-2 checkpoint loads, every byte checked, and training from it
  // ends where an undisturbed run ends.
  const std::string checkpoint = (fs::path(Dir("unused")).parent_path() /
                                  "failing" / "checkpoints" / CheckpointName(2))
                                     .string();
  const Result resumed =
      Train(c, "after_failure", 4, nullptr, nullptr, checkpoint);
  ASSERT_TRUE(resumed.status.ok()) << resumed.status;
  EXPECT_EQ(resumed.weights, Train(c, "undisturbed", 0).weights);
}

TEST(SsdTierTest, SpillingNeedsAWindowedMethodAndDirectories) {
  EXPECT_EQ(
      Train(Job(OffloadMethod::kResident, true), "resident", 2).status.code(),
      absl::StatusCode::kInvalidArgument);
  JobConfig c = Job(OffloadMethod::kStronghold, true);
  auto trainer =
      Trainer::Create(c, PlanWithSsd(c, 2), {.job_dir = Dir("nodirs")});
  EXPECT_EQ(trainer.status().code(), absl::StatusCode::kInvalidArgument);
  // What H2D sends goes there only for layers whose state is there.
  c.offload.ssd_dirs = {Dir("weights_fp32_ssd")};
  EXPECT_EQ(
      Trainer::Create(c, PlanWithSsd(c, 2, 3), {.job_dir = Dir("weights_fp32")})
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  c.training.precision = Precision::kBf16;
  EXPECT_EQ(
      Trainer::Create(c, PlanWithSsd(c, 2, 3), {.job_dir = Dir("weights_bf16")})
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace stronghold::core
