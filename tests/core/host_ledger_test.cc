// The host memory a job holds is what its plan says (issue 15: "the host
// side allocates nothing beyond its plan"): every planned host and pinned
// buffer (and the reference's whole state) is charged exactly its planned
// bytes once a trainer is set up and after it trains, for the reference,
// the engine's methods, mixed precision, speculative backups, activation
// checkpoints on the host and the NVMe tier's staging; an allocation beyond
// its buffer's plan is refused before it is made.
#include "core/plan/host_ledger.h"

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/plan/planner.h"
#include "core/train/trainer.h"
#include "gtest/gtest.h"
#include "tests/core/training_test_util.h"

namespace stronghold::core {
namespace {

JobConfig Job(OffloadMethod method, int window,
              Precision precision = Precision::kFp32) {
  JobConfig c;
  c.model = {
      .layers = 4, .hidden = 64, .heads = 4, .seq_len = 32, .vocab = 256};
  c.training.steps = 2;
  c.training.batch = 4;
  c.training.micro_batch = 2;
  c.training.precision = precision;
  c.offload.method = method;
  c.offload.window = window;
  return c;
}

// Creates a trainer for `plan`, checks the ledger after set-up and after
// training.
void ExpectHoldsItsPlan(const JobConfig& c, const ExecutionPlan& plan,
                        const std::string& what) {
  ASSERT_TRUE(plan.fits) << what << ": " << plan.reason;
  auto trainer = Trainer::Create(
      c, plan, {.job_dir = TestDir("ledger"), .optimizer_threads = 1});
  ASSERT_TRUE(trainer.ok()) << what << ": " << trainer.status();
  EXPECT_EQ(
      absl::StrJoin(TrainerTestPeer::HostLedgerDifferences(**trainer), "; "),
      "")
      << what << ", after set-up";
  StepRecorder r;
  ASSERT_TRUE((*trainer)->Run(&r).ok()) << what;
  EXPECT_EQ(
      absl::StrJoin(TrainerTestPeer::HostLedgerDifferences(**trainer), "; "),
      "")
      << what << ", after training";
}

TEST(HostLedgerTest, EveryMethodHoldsExactlyItsPlannedHostMemory) {
  ExpectHoldsItsPlan(Job(OffloadMethod::kResident, 0),
                     PlanFor(Job(OffloadMethod::kResident, 0)),
                     "RESIDENT (the reference)");
  for (Precision p : {Precision::kFp32, Precision::kBf16, Precision::kFp16}) {
    const std::string name = PrecisionName(p);
    JobConfig s = Job(OffloadMethod::kStronghold, 2, p);
    ExpectHoldsItsPlan(s, PlanFor(s), "STRONGHOLD W=2 " + name);
    s.offload.speculative_updates = true;
    s.offload.device_embedding_optimizer = true;
    ExpectHoldsItsPlan(
        s, PlanFor(s),
        "STRONGHOLD speculative, embedding on the device " + name);
    JobConfig l2l = Job(OffloadMethod::kL2L, 0, p);
    ExpectHoldsItsPlan(l2l, PlanFor(l2l), "L2L " + name);
    JobConfig resident = Job(OffloadMethod::kResident, 0, p);
    if (p != Precision::kFp32)
      ExpectHoldsItsPlan(resident, PlanFor(resident), "RESIDENT " + name);
  }
  // A budget one byte short of the checkpoints on the device: they go to
  // the host (host.activations.checkpoints).
  JobConfig hc = Job(OffloadMethod::kStronghold, 1);
  hc.model.seq_len = 256;
  const int64_t budget = WindowedArenaBytes(hc, 1) + WorkingBytes(hc) - 1;
  const ExecutionPlan plan = PlanFor(hc, budget);
  ASSERT_TRUE(plan.host_checkpoints);
  ExpectHoldsItsPlan(hc, plan, "STRONGHOLD W=1, checkpoints on the host");
}

TEST(HostLedgerTest, TheNvmeTiersStagingIsPlanned) {
  const std::string ssd = TestDir("ledger_ssd");
  std::filesystem::create_directories(ssd);
  // And with one micro-batch and no clipping, where the spilled layers
  // share one gradient accumulator (host.grads.spilled.fp32).
  for (const auto& [p, transient] :
       {std::pair{Precision::kFp32, false}, std::pair{Precision::kBf16, false},
        std::pair{Precision::kFp32, true}, std::pair{Precision::kBf16, true}}) {
    JobConfig c = Job(OffloadMethod::kStronghold, 1, p);
    c.model.layers = 8;
    c.offload.ssd_dirs = {ssd};
    if (transient) {
      c.training.batch = c.training.micro_batch;
      c.training.clip_norm = 0;
    }
    // What the job needs in host memory before the kept activations, which
    // spend whatever is left.
    const ExecutionPlan roomy = PlanExecution(c, {.device = "cpu"});
    int64_t need = roomy.bytes_host + roomy.bytes_pinned + roomy.bytes_device;
    for (const PlannedBuffer& b : roomy.buffers) {
      if (b.name == "activations.kept") need -= b.bytes;
    }
    // Short of host memory: some layers' optimizer state spills; shorter:
    // every layer's, and what H2D sends too (the first budgets, going down,
    // that plan each).
    bool state_only = false, weights_too = false;
    for (int percent = 95; percent > 0 && !(state_only && weights_too);
         --percent) {
      const ExecutionPlan plan = PlanExecution(
          c, {.device = "cpu", .host_bytes = need * percent / 100});
      if (!plan.fits || plan.ssd_layers == 0) continue;
      EXPECT_EQ(plan.ssd_grads_transient, transient);
      bool& seen = plan.ssd_weight_layers > 0 ? weights_too : state_only;
      if (seen) continue;
      seen = true;
      const std::string what = absl::StrCat(
          PrecisionName(p), transient ? " (shared gradient)" : "",
          ", host budget ", percent, "% of the need: ", plan.ssd_layers,
          " layers spilled, ", plan.ssd_weight_layers, " with what H2D sends");
      ExpectHoldsItsPlan(c, plan, what);
    }
    EXPECT_TRUE(state_only && weights_too)
        << PrecisionName(p) << (transient ? " (shared gradient)" : "");
  }
}

TEST(HostLedgerTest, AnAllocationBeyondItsPlanIsRefused) {
  JobConfig c = Job(OffloadMethod::kStronghold, 2);
  ExecutionPlan plan = PlanFor(c);
  for (PlannedBuffer& b : plan.buffers) {
    if (b.name == "host.grads.fp32") b.bytes -= 4;  // one float short
  }
  auto trainer = Trainer::Create(c, plan, {.job_dir = TestDir("ledger_short")});
  ASSERT_FALSE(trainer.ok());
  EXPECT_EQ(trainer.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(trainer.status().message().find("host.grads.fp32"),
            std::string::npos)
      << trainer.status();

  HostLedger ledger(PlanFor(c));
  EXPECT_FALSE(ledger.Charge("host.no_such_buffer", 1).ok());
  const int64_t grads = c.model.parameters() * 4;
  EXPECT_TRUE(ledger.Charge("host.grads.fp32", grads).ok());
  EXPECT_EQ(ledger.Charge("host.grads.fp32", 1).code(),
            absl::StatusCode::kResourceExhausted);
  ledger.Release("host.grads.fp32", 4);
  EXPECT_TRUE(ledger.Charge("host.grads.fp32", 4).ok());
}

}  // namespace
}  // namespace stronghold::core
