// The planner over the whole accepted range of a spec (issue 15: a spec
// whose sizes overflowed int64 was planned as fitting, with a negative byte
// count, and the daemon was OOM-killed running it). Random specs, drawn
// log-uniformly over every field's limits with a fixed seed (so a failure
// reproduces), must be refused by validation with INVALID_ARGUMENT naming
// fields, or planned with every size positive, totals that add up, `fits`
// only within every budget, and sizes that grow with each dimension.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/plan/job_config.h"
#include "core/plan/planner.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

class Draw {
 public:
  explicit Draw(uint64_t seed) : rng_(seed) {}
  // Log-uniform in [lo, hi].
  int64_t LogUniform(int64_t lo, int64_t hi) {
    std::uniform_real_distribution<double> u(std::log(lo), std::log(hi + 1.0));
    return std::clamp<int64_t>(static_cast<int64_t>(std::exp(u(rng_))), lo, hi);
  }
  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool Coin() { return Uniform(0, 1) == 1; }
  // A divisor of n (uniform over them).
  int64_t Divisor(int64_t n) {
    std::vector<int64_t> d;
    for (int64_t i = 1; i * i <= n; ++i) {
      if (n % i == 0) {
        d.push_back(i);
        if (i != n / i) d.push_back(n / i);
      }
    }
    return d[Uniform(0, static_cast<int64_t>(d.size()) - 1)];
  }

 private:
  std::mt19937_64 rng_;
};

std::string SsdDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir =
      std::string(tmp != nullptr ? tmp : "/tmp") + "/planner_property_ssd";
  std::filesystem::create_directories(dir);
  return dir;
}

// A spec anywhere in (and at the edges of) the accepted range; some are
// refused by validation, which is part of what is tested.
JobConfig RandomJob(Draw& d) {
  JobConfig c;
  ModelConfig& m = c.model;
  m.layers = static_cast<int>(d.LogUniform(1, kMaxLayers));
  m.hidden = static_cast<int>(d.LogUniform(1, kMaxHidden));
  m.heads = static_cast<int>(d.Divisor(m.hidden));
  m.seq_len = static_cast<int>(d.LogUniform(1, kMaxSeqLen));
  m.vocab = static_cast<int>(d.LogUniform(2, kMaxVocab));
  TrainingConfig& t = c.training;
  t.micro_batch = static_cast<int>(d.LogUniform(1, 1 << 20));
  t.batch = t.micro_batch *
            static_cast<int>(d.LogUniform(1, (1 << 20) / t.micro_batch));
  t.precision = static_cast<Precision>(d.Uniform(0, 2));
  t.clip_norm = d.Coin() ? 1.0 : 0.0;
  OffloadConfig& o = c.offload;
  o.method = static_cast<OffloadMethod>(d.Uniform(0, 2));
  o.window = d.Coin() ? 0 : static_cast<int>(d.Uniform(0, m.layers));
  o.kept_activation_layers = static_cast<int>(d.Uniform(-1, m.layers));
  if (o.method != OffloadMethod::kResident) o.speculative_updates = d.Coin();
  o.device_embedding_optimizer = d.Coin();
  if (o.method == OffloadMethod::kStronghold && d.Coin()) {
    o.device_resident_layers = static_cast<int>(d.Uniform(0, m.layers - 1));
    o.window = std::min(o.window, m.layers - o.device_resident_layers);
  }
  if (d.Coin())
    o.gpu_memory_budget_bytes = d.LogUniform(1 << 20, int64_t{1} << 50);
  if (d.Coin())
    o.host_memory_budget_bytes = d.LogUniform(1 << 20, int64_t{1} << 50);
  if (d.Coin()) o.ssd_dirs = {SsdDir()};
  return c;
}

NodeBudgets RandomNode(Draw& d) {
  NodeBudgets node;
  node.device = d.Coin() ? "cpu" : "cuda:0";
  node.device_bytes = d.Coin() ? 0 : d.LogUniform(1 << 20, int64_t{1} << 50);
  node.host_bytes = d.Coin() ? 0 : d.LogUniform(1 << 20, int64_t{1} << 50);
  node.ssd_bytes = d.Coin() ? 0 : d.LogUniform(1 << 20, int64_t{1} << 50);
  return node;
}

void ExpectSound(const JobConfig& c, const NodeBudgets& node,
                 const std::string& what) {
  const ExecutionPlan plan = PlanExecution(c, node);
  int64_t device = 0, pinned = 0, host = 0, ssd = 0;
  for (const PlannedBuffer& b : plan.buffers) {
    EXPECT_GT(b.bytes, 0) << what << ": buffer " << b.name;
    (b.tier == kTierDevice   ? device
     : b.tier == kTierPinned ? pinned
     : b.tier == kTierHost   ? host
                             : ssd) += b.bytes;
  }
  EXPECT_EQ(plan.bytes_device, device) << what;
  EXPECT_EQ(plan.bytes_pinned, pinned) << what;
  EXPECT_EQ(plan.bytes_host, host) << what;
  EXPECT_EQ(plan.bytes_ssd, ssd) << what;
  EXPECT_GT(plan.parameters, 0) << what;
  if (!plan.fits) {
    EXPECT_FALSE(plan.reason.empty()) << what;
    return;
  }
  if (plan.budget_device_bytes > 0) {
    EXPECT_LE(plan.bytes_device, plan.budget_device_bytes) << what;
  }
  // On the host device, the device's buffers are host memory too.
  const int64_t host_need = plan.bytes_host + plan.bytes_pinned +
                            (node.device == "cpu" ? plan.bytes_device : 0);
  if (plan.budget_host_bytes > 0) {
    EXPECT_LE(host_need, plan.budget_host_bytes) << what;
  }
  if (node.ssd_bytes > 0) {
    EXPECT_LE(plan.bytes_ssd, node.ssd_bytes) << what;
  }
  EXPECT_GE(plan.window, plan.reference ? 0 : 1) << what;
}

TEST(PlannerPropertyTest, EverySpecIsRefusedByNameOrPlannedSoundly) {
  Draw d(/*seed=*/20261206);
  int planned = 0, refused_for_size = 0;
  for (int i = 0; i < 20000; ++i) {
    const JobConfig c = RandomJob(d);
    const NodeBudgets node = RandomNode(d);
    const std::string what = absl::StrCat(
        "spec #", i, " (layers ", c.model.layers, ", hidden ", c.model.hidden,
        ", seq ", c.model.seq_len, ", vocab ", c.model.vocab, ", micro-batch ",
        c.training.micro_batch, ")");
    const absl::Status valid = ValidateJobConfig(c);
    if (!valid.ok()) {
      ASSERT_EQ(valid.code(), absl::StatusCode::kInvalidArgument)
          << what << ": " << valid;
      // "field: ..." with the API's dotted field names.
      EXPECT_NE(valid.message().find('.'), std::string::npos)
          << what << ": " << valid;
      refused_for_size += !CheckDerivedSizes(c).ok();
      // The planner never plans what validation refuses for its sizes.
      if (!CheckDerivedSizes(c).ok()) {
        EXPECT_FALSE(PlanExecution(c, node).fits) << what;
      }
      continue;
    }
    ++planned;
    ExpectSound(c, node, what);
  }
  // Both kinds are drawn often enough to mean something.
  EXPECT_GT(planned, 2000);
  EXPECT_GT(refused_for_size, 100);
}

// With budgets out of the way and an explicit window, every tier's bytes
// grow (or stay) with each dimension of the model and the batch.
TEST(PlannerPropertyTest, SizesGrowWithEachDimension) {
  Draw d(/*seed=*/7);
  const NodeBudgets unlimited{.device = "cpu"};
  int compared = 0;
  for (int i = 0; i < 4000; ++i) {
    JobConfig c = RandomJob(d);
    c.offload.gpu_memory_budget_bytes = c.offload.host_memory_budget_bytes = 0;
    c.offload.ssd_dirs.clear();
    if (c.offload.window == 0)
      c.offload.window = 1;  // automatic windows follow the budget
    if (!ValidateJobConfig(c).ok()) continue;
    const ExecutionPlan base = PlanExecution(c, unlimited);
    std::vector<std::pair<std::string, JobConfig>> bigger;
    auto grow = [&](const char* field, auto change) {
      JobConfig g = c;
      change(g);
      if (ValidateJobConfig(g).ok()) bigger.emplace_back(field, g);
    };
    grow("model.layers", [](JobConfig& g) { ++g.model.layers; });
    grow("model.hidden", [](JobConfig& g) { g.model.hidden += g.model.heads; });
    grow("model.seq_len", [](JobConfig& g) { ++g.model.seq_len; });
    grow("model.vocab", [](JobConfig& g) {
      g.model.vocab += ModelConfig::kDefaultVocabMultiple;
    });
    grow("training.micro_batch", [](JobConfig& g) {
      g.training.micro_batch *= 2;
      g.training.batch *= 2;
    });
    for (const auto& [field, g] : bigger) {
      const ExecutionPlan p = PlanExecution(g, unlimited);
      const std::string what = absl::StrCat("spec #", i, ", ", field, " up");
      EXPECT_GE(p.parameters, base.parameters) << what;
      EXPECT_GE(p.bytes_device, base.bytes_device) << what;
      EXPECT_GE(p.bytes_host + p.bytes_pinned,
                base.bytes_host + base.bytes_pinned)
          << what;
      ++compared;
    }
  }
  EXPECT_GT(compared, 2000);
}

// The spec of issue 15's report: planned as fitting with device_bytes =
// -9186005472196362240, then run until the kernel killed the daemon.
TEST(PlannerPropertyTest, TheOverflowingSpecIsRefusedNamingItsFields) {
  JobConfig c;
  c.model = {.layers = 235,
             .hidden = 4096,
             .heads = 4096,
             .seq_len = 65536,
             .vocab = 256};
  c.training.batch = c.training.micro_batch = 1048576;
  const absl::Status s = ValidateJobConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(
      s.message().find("training.micro_batch x model.seq_len x model.hidden"),
      std::string::npos)
      << s;
  const ExecutionPlan plan = PlanExecution(c, {.device = "cpu"});
  EXPECT_FALSE(plan.fits);
  EXPECT_EQ(plan.reason, std::string(CheckDerivedSizes(c).message()));
  EXPECT_GE(plan.bytes_device, 0);
}

}  // namespace
}  // namespace stronghold::core
