// The windowed offload engine against the RESIDENT reference: bit-identical
// training on the host device, the device budget, the overlap the schedule
// promises (read from its own timeline), refusal of budgets too small, and
// a non-finite gradient reported with where it is.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/model/gpt_layout.h"
#include "core/plan/planner.h"
#include "core/train/trainer.h"
#include "gtest/gtest.h"
#include "tests/core/training_test_util.h"

namespace stronghold::core {
namespace {

JobConfig SixLayers(OffloadMethod method, int window,
                    Architecture architecture = Architecture::kGpt) {
  JobConfig c;
  c.model = WithArchitecture(
      {.layers = 6, .hidden = 64, .heads = 4, .seq_len = 32, .vocab = 256},
      architecture);
  c.training.steps = 10;
  c.training.batch = 8;
  c.training.micro_batch = 4;  // gradient accumulation over 2 micro-batches
  c.training.clip_norm = 0.5;  // small enough that clipping acts
  c.training.warmup_steps = 2;
  c.offload.method = method;
  c.offload.window = window;
  return c;
}

// Both architectures (tests/core/training_test_util.h: llama with
// grouped-query attention and an untied head).
class ArchitectureParityTest : public ::testing::TestWithParam<Architecture> {};

TEST_P(ArchitectureParityTest, WindowsAndL2LMatchResidentBitForBit) {
  const Architecture a = GetParam();
  const std::string arch = ArchitectureName(a);
  const TrainedRun resident =
      Train(SixLayers(OffloadMethod::kResident, 0, a), arch + "_resident");
  ASSERT_EQ(resident.recorder.losses.size(), 10u);
  EXPECT_GT(resident.recorder.norms[0], 0.5)
      << "clipping should act in this test";
  // Every layer recomputed (-1), the last 4 kept (beyond the window: their
  // weights leave the device and come back to the same slot), all kept (0 =
  // automatic, and the host device's budget is unlimited here).
  for (int w : {1, 2, 3}) {
    for (int kept : {-1, 4, 0}) {
      JobConfig c = SixLayers(OffloadMethod::kStronghold, w, a);
      c.offload.kept_activation_layers = kept;
      const std::string what =
          absl::StrCat(arch, " STRONGHOLD W=", w, " kept=", kept);
      const TrainedRun r = Train(c, absl::StrCat(arch, "_w", w, "_kept", kept));
      EXPECT_EQ(r.recorder.window, w);
      ExpectBitIdentical(resident, r, what);
    }
  }
  ExpectBitIdentical(resident,
                     Train(SixLayers(OffloadMethod::kL2L, 0, a), arch + "_l2l"),
                     arch + " L2L");
}

TEST_P(ArchitectureParityTest,
       UpdatesDuringBackwardMatchResidentWithoutClipping) {
  const Architecture a = GetParam();
  const std::string arch = ArchitectureName(a);
  JobConfig r = SixLayers(OffloadMethod::kResident, 0, a),
            s = SixLayers(OffloadMethod::kStronghold, 2, a);
  r.training.clip_norm = s.training.clip_norm =
      0;  // per-layer updates as gradients land
  const TrainedRun reference = Train(r, arch + "_r_noclip");
  for (int kept : {-1, 3}) {
    s.offload.kept_activation_layers = kept;
    ExpectBitIdentical(
        reference, Train(s, absl::StrCat(arch, "_s_noclip", kept)),
        absl::StrCat(arch, " STRONGHOLD W=2 kept=", kept, " without clipping"));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, ArchitectureParityTest,
    ::testing::Values(Architecture::kGpt, Architecture::kLlama),
    [](const ::testing::TestParamInfo<Architecture>& info) {
      return std::string(ArchitectureName(info.param));
    });

// offload.device_embedding_optimizer: the embedding's AdamW runs where its
// weights are (on the host device, FusedAdamW's passes over the arena), with
// the same bits as RESIDENT: with clipping and accumulation, without
// clipping, with speculative updates rolled back, for L2L, and across the
// automatic window's rebuild (the old engine hands its state back to the
// host, the new one takes it up). The arena is what the plan says.
TEST(EngineParityTest, EmbeddingOptimizerOnTheDeviceMatchesResidentBitForBit) {
  for (double clip : {0.5, 0.0}) {
    JobConfig r = SixLayers(OffloadMethod::kResident, 0);
    r.training.clip_norm = clip;
    const TrainedRun reference = Train(r, absl::StrCat("emb_ref", clip));
    for (int w : {2, 0}) {
      JobConfig s = SixLayers(OffloadMethod::kStronghold, w);
      s.training.clip_norm = clip;
      s.offload.device_embedding_optimizer = true;
      const TrainedRun got = Train(s, absl::StrCat("emb_dev", clip, "_w", w));
      const std::string what =
          absl::StrCat("embedding on the device, clip ", clip, ", W=", w);
      ExpectBitIdentical(reference, got, what);
      if (w > 0) {
        EXPECT_EQ(got.recorder.peak, WindowedArenaBytes(s, w)) << what;
        JobConfig off = s;
        off.offload.device_embedding_optimizer = false;
        EXPECT_EQ(WindowedArenaBytes(s, w) - WindowedArenaBytes(off, w),
                  3 * ((s.model.embedding_parameters() * 4 + 63) / 64 * 64))
            << "fp32: exp_avg, exp_avg_sq and the accumulator (the weights are "
               "the master)";
      }
    }
    if (clip > 0) {
      JobConfig spec = SixLayers(OffloadMethod::kStronghold, 2);
      spec.offload.speculative_updates = true;
      spec.offload.device_embedding_optimizer = true;
      ExpectBitIdentical(reference, Train(spec, "emb_dev_spec"),
                         "embedding on the device, speculative updates (every "
                         "step rolled back)");
      JobConfig l2l = SixLayers(OffloadMethod::kL2L, 0);
      l2l.offload.device_embedding_optimizer = true;
      ExpectBitIdentical(reference, Train(l2l, "emb_dev_l2l"),
                         "embedding on the device, L2L");
    }
  }
}

// offload.device_resident_layers: block layers 0..K-1 stay on the device and
// are updated there (with the embedding, and without); the window rotates
// through the others. The same bits as RESIDENT with clipping and
// accumulation, without clipping, with speculative updates (the resident
// layers are never speculative), with kept activations, and across the
// automatic window's rebuild; the arena is what the plan says.
TEST(EngineParityTest, ResidentLayersMatchResidentBitForBit) {
  for (double clip : {0.5, 0.0}) {
    JobConfig r = SixLayers(OffloadMethod::kResident, 0);
    r.training.clip_norm = clip;
    const TrainedRun reference = Train(r, absl::StrCat("res_ref", clip));
    struct Case {
      int resident, window, kept;
      bool emb;
    };
    for (const Case& k : {Case{1, 2, -1, false}, Case{3, 2, 0, true},
                          Case{5, 1, -1, true}, Case{2, 0, 0, false}}) {
      JobConfig s = SixLayers(OffloadMethod::kStronghold, k.window);
      s.training.clip_norm = clip;
      s.offload.device_resident_layers = k.resident;
      s.offload.kept_activation_layers = k.kept;
      s.offload.device_embedding_optimizer = k.emb;
      const std::string what = absl::StrCat(
          "layers 0..", k.resident - 1, " resident, W=", k.window,
          " kept=", k.kept, k.emb ? ", embedding too" : "", ", clip ", clip);
      const TrainedRun got =
          Train(s, absl::StrCat("res", k.resident, "_w", k.window, "_", clip));
      ExpectBitIdentical(reference, got, what);
      if (k.window > 0) {
        EXPECT_EQ(got.recorder.peak, WindowedArenaBytes(s, k.window)) << what;
      } else {
        EXPECT_LE(got.recorder.window, 6 - k.resident) << what;
      }
    }
    if (clip > 0) {
      JobConfig spec = SixLayers(OffloadMethod::kStronghold, 2);
      spec.offload.speculative_updates = true;
      spec.offload.device_resident_layers = 2;
      ExpectBitIdentical(
          reference, Train(spec, "res_spec"),
          "2 resident layers, speculative updates (every step rolled back)");
    }
  }
  JobConfig c = SixLayers(OffloadMethod::kStronghold, 2);
  c.offload.device_resident_layers = 3;
  const int64_t layer = c.model.parameters_per_layer();
  JobConfig none = c;
  none.offload.device_resident_layers = 0;
  // 3 slots either way (W + 1 of the 3 rotating layers); each resident layer
  // adds fp32 weights and gradient and three fp32 optimizer arrays.
  EXPECT_EQ(WindowedArenaBytes(c, 2) - WindowedArenaBytes(none, 2),
            3 * 5 * ((layer * 4 + 63) / 64 * 64));
}

TEST(EngineParityTest, ResidentLayersAreRefusedWhereTheyDoNotApply) {
  JobConfig c = SixLayers(OffloadMethod::kL2L, 0);
  c.offload.device_resident_layers = 2;
  absl::Status s = ValidateJobConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("offload.device_resident_layers"),
            std::string::npos)
      << s;
  c = SixLayers(OffloadMethod::kStronghold, 5);
  c.offload.device_resident_layers = 2;
  s = ValidateJobConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("offload.window: 5 is more than the 4 layers"),
            std::string::npos)
      << s;
  c = SixLayers(OffloadMethod::kStronghold, 2);
  c.offload.device_resident_layers = 6;
  s = ValidateJobConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("offload.device_resident_layers"),
            std::string::npos)
      << s;
}

TEST(EngineBudgetTest, PeakStaysWithinTheBudgetAndMatchesThePlan) {
  JobConfig c = SixLayers(OffloadMethod::kStronghold, 0);  // automatic window
  c.training.steps = 3;
  // Room for a window of 2 and not 3.
  const int64_t budget = WindowedArenaBytes(c, 2) + WorkingBytes(c);
  ASSERT_LT(budget, WindowedArenaBytes(c, 3) + WorkingBytes(c));
  ASSERT_EQ(MaxWindow(c, budget), 2);
  const TrainedRun r = Train(c, "budget", budget);
  EXPECT_LE(r.recorder.window, 2);
  EXPECT_GT(r.recorder.peak, 0);
  EXPECT_LE(r.recorder.peak, budget - WorkingBytes(c));
  EXPECT_EQ(r.recorder.peak, WindowedArenaBytes(c, r.recorder.window));
  bool chosen = false;
  for (const std::string& m : r.recorder.messages)
    chosen |= m.find("chosen") != std::string::npos;
  EXPECT_TRUE(chosen) << "the automatic window reports its choice";

  // The planner reports the same bytes for the device arena.
  c.offload.window = r.recorder.window;
  const ExecutionPlan plan = PlanExecution(
      c, {.device = "cpu", .device_bytes = budget, .host_bytes = 0});
  EXPECT_TRUE(plan.fits) << plan.reason;
  EXPECT_EQ(plan.bytes_device,
            WindowedArenaBytes(c, r.recorder.window) + WorkingBytes(c) +
                plan.kept_activation_layers * LayerWorkingBytes(c));
  EXPECT_LE(plan.bytes_device, budget);
}

// A budget without room for the L+1 activation checkpoints beside a window of
// one: they go to the host (each layer's input copied out in forward and back
// in backward, with its weights), the arena holds one boundary per slot, and
// training is still bit-identical to RESIDENT, for W = 1, 2 and L2L.
TEST(EngineBudgetTest, CheckpointsGoToTheHostWhenTheDeviceIsShort) {
  // Long sequences, so that the checkpoints weigh more than a layer.
  auto config = [](OffloadMethod method, int window) {
    JobConfig c = SixLayers(method, window);
    c.model.seq_len = 256;
    c.model.hidden = 32;
    c.training.steps = 4;
    return c;
  };
  const TrainedRun resident =
      Train(config(OffloadMethod::kResident, 0), "resident_hc");
  for (int w : {1, 2, 0}) {
    JobConfig c =
        config(w == 0 ? OffloadMethod::kL2L : OffloadMethod::kStronghold, w);
    // One byte short of a window of one with the checkpoints on the device.
    JobConfig on_device = c;
    on_device.offload.window = 1;
    const int64_t budget =
        WindowedArenaBytes(on_device, 1) + WorkingBytes(c) - 1;
    ASSERT_TRUE(CheckpointsOnHost(c, budget)) << "window " << w;
    ASSERT_GE(MaxWindow(c, budget), std::max(w, 1));
    const ExecutionPlan plan =
        PlanExecution(c, {.device = "cpu", .device_bytes = budget});
    ASSERT_TRUE(plan.fits) << plan.reason;
    bool on_host = false;
    for (const PlannedBuffer& b : plan.buffers)
      on_host |= b.name == "host.activations.checkpoints";
    EXPECT_TRUE(on_host) << "the plan shows the checkpoints on the host";
    const std::string what = absl::StrCat(w == 0 ? "L2L" : "STRONGHOLD W=", w,
                                          ", checkpoints on the host");
    const TrainedRun r = Train(c, absl::StrCat("hc", w), budget);
    ExpectBitIdentical(resident, r, what);
    EXPECT_EQ(r.recorder.peak,
              plan.bytes_device - WorkingBytes(c) -
                  plan.kept_activation_layers * LayerWorkingBytes(c))
        << what;
    EXPECT_LE(r.recorder.peak, budget);
  }
}

TEST(EngineBudgetTest, TooSmallABudgetIsRefusedWithTheNumbers) {
  JobConfig c = SixLayers(OffloadMethod::kStronghold, 1);
  const int64_t need =
      SmallestDeviceBudget(c);  // a window of one, checkpoints on the host
  c.offload.gpu_memory_budget_bytes = need - 1;
  const ExecutionPlan plan =
      PlanExecution(c, {.device = "cpu", .device_bytes = 1LL << 40});
  EXPECT_FALSE(plan.fits);
  EXPECT_NE(plan.reason.find(std::to_string(need)), std::string::npos)
      << plan.reason;
  auto trainer =
      Trainer::Create(c, PlanFor(c, need / 2), {.job_dir = TestDir("small")});
  ASSERT_FALSE(trainer.ok());
  EXPECT_EQ(trainer.status().code(), absl::StatusCode::kResourceExhausted)
      << trainer.status();
}

struct TraceSpan {
  std::string name;
  int layer;
  double start, end;
};

std::vector<TraceSpan> ParseTrace(const std::string& json) {
  std::vector<TraceSpan> out;
  static const std::regex kEvent(
      R"re("name":"([a-z_0-9]+)(?: ([0-9]+))?","ts":([0-9.]+),"dur":([0-9.]+))re");
  for (auto it = std::sregex_iterator(json.begin(), json.end(), kEvent);
       it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    const double ts = std::stod(m[3]);
    out.push_back(
        {m[1], m[2].matched ? std::stoi(m[2]) : -1, ts, ts + std::stod(m[4])});
  }
  return out;
}

// The span `name` of `layer` (the first), or null.
const TraceSpan* FindSpan(const std::vector<TraceSpan>& spans,
                          const std::string& name, int layer) {
  for (const TraceSpan& s : spans) {
    if (s.name == name && s.layer == layer) return &s;
  }
  return nullptr;
}

// Blocks 2..6 (layers 1..5) of a 6-layer STRONGHOLD W=2 trace: how many
// start `update` (a span name) before the backward of the layer below ends.
int UpdatesOverlappingBackward(const std::vector<TraceSpan>& spans,
                               const std::string& update) {
  int overlapped = 0;
  for (int b = 2; b <= 6; ++b) {
    const TraceSpan* u = FindSpan(spans, update, b);
    const TraceSpan* bwd = FindSpan(spans, "bwd", b - 1);
    EXPECT_NE(u, nullptr) << update << " " << b;
    EXPECT_NE(bwd, nullptr) << "bwd " << b - 1;
    if (u != nullptr && bwd != nullptr && u->start < bwd->end) ++overlapped;
  }
  return overlapped;
}

// Six layers of hidden 256, one micro-batch, STRONGHOLD W=2, two steps.
JobConfig OverlapModel(double clip_norm) {
  JobConfig c;
  c.model = {
      .layers = 6, .hidden = 256, .heads = 4, .seq_len = 64, .vocab = 256};
  c.training.steps = 2;
  c.training.batch = 4;
  c.training.micro_batch = 4;
  c.training.clip_norm = clip_norm;
  c.offload.method = OffloadMethod::kStronghold;
  c.offload.window = 2;
  return c;
}

TEST(EngineOverlapTest, PrefetchAndOptimizerOverlapCompute) {
  const TrainedRun r = Train(OverlapModel(/*clip_norm=*/0),
                             "overlap");  // updates as gradients land
  ASSERT_TRUE(r.recorder.traces.count(2)) << "no trace of step 2";
  const std::vector<TraceSpan> spans = ParseTrace(r.recorder.traces.at(2));
  auto find = [&](const std::string& name, int layer) {
    return FindSpan(spans, name, layer);
  };
  // Buffer b is block b-1; forward of block i prefetches block i+W.
  const int W = 2, L = 6;
  for (int b = 1; b + W <= L; ++b) {
    const TraceSpan* fwd = find("fwd", b);
    ASSERT_NE(fwd, nullptr) << "fwd " << b;
    const TraceSpan* issue = nullptr;
    for (const TraceSpan& s : spans) {
      if (s.name == "issue_h2d" && s.layer == b + W && s.start <= fwd->end)
        issue = &s;
    }
    EXPECT_NE(issue, nullptr)
        << "the prefetch of block " << b + W - 1
        << " was not issued before block " << b - 1 << " finished";
  }
  // The update of block i starts before the backward of block i-1 ends.
  const int overlapped = UpdatesOverlappingBackward(spans, "adamw");
  // On two shared cores a thread can be descheduled; most layers must overlap.
  EXPECT_GE(overlapped, (L - 1 + 1) / 2)
      << "AdamW overlapped backward for " << overlapped << " of " << L - 1
      << " layers";
}

// With clipping the updates wait for the global norm and run after
// backward; they are queued in the order the next forward needs the
// buffers, and that forward waits only for the layer at hand: it starts
// while the optimizer is still updating the last layers.
TEST(EngineOverlapTest, DeferredUpdatesOverlapTheNextForward) {
  const TrainedRun r =
      Train(OverlapModel(/*clip_norm=*/1e6), "deferred_overlap");
  ASSERT_TRUE(r.recorder.traces.count(2)) << "no trace of step 2";
  // Step 2's trace holds step 1's deferred updates (they ran after its cut)
  // and step 2's forward.
  const std::vector<TraceSpan> spans = ParseTrace(r.recorder.traces.at(2));
  const int L = 6;
  const TraceSpan* first_fwd = FindSpan(spans, "fwd", 1);
  const TraceSpan* last_update = FindSpan(spans, "adamw", L);
  ASSERT_NE(first_fwd, nullptr);
  ASSERT_NE(last_update, nullptr)
      << "step 1's update of block " << L - 1 << " is not in step 2's trace";
  EXPECT_LT(first_fwd->start, last_update->end)
      << "the forward of block 0 waited for the update of block " << L - 1;
  // Each layer's forward still comes after its own update.
  for (int b = 1; b <= L; ++b) {
    const TraceSpan* fwd = FindSpan(spans, "fwd", b);
    const TraceSpan* update = FindSpan(spans, "adamw", b);
    ASSERT_NE(fwd, nullptr);
    ASSERT_NE(update, nullptr);
    EXPECT_GE(fwd->start, update->end)
        << "block " << b - 1 << " computed before its update";
  }
}

// Resident layers never move: in a step's trace they have no H2D or D2H
// copy (the other layers do) and their updates are the device's.
TEST(EngineOverlapTest, ResidentLayersAreNeitherCopiedNorHandedOff) {
  JobConfig c = OverlapModel(/*clip_norm=*/1e6);
  c.offload.device_resident_layers = 2;
  const TrainedRun r = Train(c, "resident_trace");
  ASSERT_TRUE(r.recorder.traces.count(2)) << "no trace of step 2";
  std::map<std::string, std::map<int, int>>
      count;  // span name -> buffer -> spans
  for (const TraceSpan& s : ParseTrace(r.recorder.traces.at(2)))
    ++count[s.name][s.layer];
  for (int b = 1; b <= 2; ++b) {
    EXPECT_EQ(count["h2d"][b], 0) << "resident buffer " << b << " was fetched";
    EXPECT_EQ(count["d2h"][b], 0)
        << "resident buffer " << b << "'s gradient left the device";
    EXPECT_EQ(count["grad_add"][b], 0)
        << "the CPU worker handled resident buffer " << b;
    EXPECT_GE(count["adamw"][b], 1)
        << "resident buffer " << b << " was not updated";
  }
  for (int b = 3; b <= 6; ++b) {
    EXPECT_GE(count["h2d"][b], 1) << "buffer " << b;
    EXPECT_GE(count["grad_add"][b], 1) << "buffer " << b;
  }
}

// Speculative updates (offload.speculative_updates) train exactly like the
// deferred path: clip 0.5 clips every step here, so every step is rolled
// back and redone; clip 1e6 never clips, so none is. The trace shows which.
TEST(EngineParityTest, SpeculativeUpdatesMatchResidentWhetherRolledBackOrNot) {
  for (double clip : {0.5, 1e6}) {
    JobConfig r = SixLayers(OffloadMethod::kResident, 0);
    JobConfig s = SixLayers(OffloadMethod::kStronghold, 2);
    r.training.clip_norm = s.training.clip_norm = clip;
    s.offload.speculative_updates = true;
    const std::string what = absl::StrCat("speculative updates, clip ", clip);
    const TrainedRun reference = Train(r, absl::StrCat("spec_ref", clip));
    const TrainedRun got = Train(s, absl::StrCat("spec", clip));
    ExpectBitIdentical(reference, got, what);
    // The automatic window rebuilds the engine after step 1, its backups too.
    JobConfig automatic = s;
    automatic.offload.window = 0;
    ExpectBitIdentical(reference,
                       Train(automatic, absl::StrCat("spec_auto", clip)),
                       what + ", automatic window");
    ASSERT_GT(reference.recorder.norms[3], 0.5);
    ASSERT_LT(reference.recorder.norms[3], 1e6);
    int backups = 0, restores = 0;
    for (const auto& [step, json] : got.recorder.traces) {
      for (const TraceSpan& span : ParseTrace(json)) {
        backups += span.name == "backup";
        restores += span.name == "restore";
      }
    }
    EXPECT_GT(backups, 0) << what;
    if (clip < 1) {
      EXPECT_GT(restores, 0)
          << what << ": every step is clipped, so rolled back";
    } else {
      EXPECT_EQ(restores, 0) << what << ": no step is clipped";
    }
  }
}

// The point of speculation: with clipping on, the update of block i starts
// before the backward of block i-1 ends, as without clipping.
TEST(EngineOverlapTest, SpeculativeUpdatesOverlapBackwardWithClipping) {
  JobConfig c = OverlapModel(
      /*clip_norm=*/1e6);  // on, and never clips: nothing rolled back
  c.offload.speculative_updates = true;
  const TrainedRun r = Train(c, "spec_overlap");
  ASSERT_TRUE(r.recorder.traces.count(2)) << "no trace of step 2";
  const int overlapped =
      UpdatesOverlappingBackward(ParseTrace(r.recorder.traces.at(2)), "backup");
  // Two shared cores: most layers must overlap (as in the test above).
  EXPECT_GE(overlapped, 3) << "speculative updates overlapped backward for "
                           << overlapped << " of 5 layers";
}

// The backups need no gradient: the worker saves them while it is idle,
// during forward, instead of in front of each update during backward.
TEST(EngineOverlapTest, SpeculativeBackupsRunDuringForward) {
  JobConfig c = OverlapModel(/*clip_norm=*/1e6);
  c.offload.speculative_updates = true;
  const TrainedRun r = Train(c, "spec_backup_fwd");
  ASSERT_TRUE(r.recorder.traces.count(2)) << "no trace of step 2";
  const std::vector<TraceSpan> spans = ParseTrace(r.recorder.traces.at(2));
  double first_bwd = 1e300;
  for (const TraceSpan& s : spans) {
    if (s.name == "bwd") first_bwd = std::min(first_bwd, s.start);
  }
  int backups = 0, before_backward = 0;
  for (const TraceSpan& s : spans) {
    if (s.name != "backup") continue;
    ++backups;
    before_backward += s.start < first_bwd;
  }
  EXPECT_EQ(backups, 8)
      << "one backup per buffer (embedding, 6 layers, final norm)";
  EXPECT_GE(before_backward, 1) << "no backup ran before backward";
}

TEST(EngineParityTest, SpeculativeUpdatesAreRefusedForResident) {
  JobConfig c = SixLayers(OffloadMethod::kResident, 0);
  c.offload.speculative_updates = true;
  const absl::Status s = ValidateJobConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("offload.speculative_updates"), std::string::npos)
      << s;
}

}  // namespace
}  // namespace stronghold::core

namespace stronghold::core {
namespace {

// A NaN in the weights makes the gradient non-finite: the job must stop at
// that step with an error naming the layer, tensor and element, before any
// update is applied (clipping on: updates wait for the norm).
TEST(EngineNonFiniteTest, NonFiniteGradientNamesTheLayer) {
  for (OffloadMethod method :
       {OffloadMethod::kResident, OffloadMethod::kStronghold}) {
    JobConfig c = SixLayers(method, 2);
    auto trainer = Trainer::Create(
        c, PlanFor(c), {.job_dir = TestDir("nan"), .optimizer_threads = 1});
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    // Block 3 is buffer 4; poison one weight of its MLP.
    const BufferLayout block = BlockLayout(c.model, 3);
    float* w = TrainerTestPeer::HostWeights(**trainer, 4);
    w[block.tensor("mlp.fc1.weight").offset + 5] = std::nanf("");
    const auto before = (*trainer)->Weights();
    ASSERT_TRUE(before.ok()) << before.status();
    StepRecorder r;
    const absl::Status s = (*trainer)->Run(&r);
    ASSERT_EQ(s.code(), absl::StatusCode::kInternal) << s;
    EXPECT_NE(s.message().find("step 1: the gradient is not finite in "),
              absl::string_view::npos)
        << s;
    EXPECT_NE(s.message().find(" element "), absl::string_view::npos) << s;
    EXPECT_TRUE(r.losses.empty());
    const auto after = (*trainer)->Weights();
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_EQ((*after)[2], (*before)[2]) << "no update was applied";
  }
}

}  // namespace
}  // namespace stronghold::core
