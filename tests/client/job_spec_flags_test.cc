#include "client/job_spec_flags.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::client {
namespace {

using ::stronghold::v1::JobSpec;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<JobSpec> Build(std::vector<std::string> args) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, JobSpecFlags(), {});
  if (!parsed.ok()) return parsed.status();
  return BuildJobSpec(*parsed);
}

std::string WriteSpecFile(const std::string& name, const std::string& json) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream(path) << json;
  return path;
}

TEST(JobSpecFlagsTest, EveryFlagSetsItsField) {
  absl::StatusOr<JobSpec> spec = Build({
      "--name",
      "tiny",
      "--layers",
      "2",
      "--hidden",
      "64",
      "--heads",
      "4",
      "--seq-len",
      "32",
      "--vocab",
      "256",
      "--architecture",
      "llama",
      "--kv-heads",
      "2",
      "--intermediate",
      "176",
      "--rope-theta",
      "500000",
      "--norm-eps",
      "1e-6",
      "--tie-embeddings",
      "on",
      "--batch",
      "8",
      "--micro-batch",
      "2",
      "--steps",
      "30",
      "--lr",
      "1e-3",
      "--warmup-steps",
      "5",
      "--min-lr",
      "1e-5",
      "--weight-decay",
      "0.1",
      "--beta1",
      "0.9",
      "--beta2",
      "0.95",
      "--eps",
      "1e-8",
      "--clip-norm",
      "1.0",
      "--seed",
      "18446744073709551615",
      "--method",
      "stronghold",
      "--window",
      "3",
      "--precision",
      "bf16",
      "--data",
      "builtin",
      "--token-bytes",
      "2",
      "--gpu-memory-budget",
      "8GiB",
      "--host-memory-budget",
      "1.5GiB",
      "--checkpoint-every",
      "10",
      "--keep-last",
      "2",
      "--log-every",
      "1",
  });
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "tiny");
  EXPECT_EQ(spec->model().layers(), 2);
  EXPECT_EQ(spec->model().hidden(), 64);
  EXPECT_EQ(spec->model().heads(), 4);
  EXPECT_EQ(spec->model().seq_len(), 32);
  EXPECT_EQ(spec->model().vocab(), 256);
  EXPECT_EQ(spec->model().architecture(), v1::LLAMA);
  EXPECT_EQ(spec->model().kv_heads(), 2);
  EXPECT_EQ(spec->model().intermediate(), 176);
  EXPECT_DOUBLE_EQ(spec->model().rope_theta(), 500000);
  EXPECT_DOUBLE_EQ(spec->model().norm_eps(), 1e-6);
  EXPECT_TRUE(spec->model().tie_embeddings());
  EXPECT_EQ(spec->training().batch(), 8);
  EXPECT_EQ(spec->training().micro_batch(), 2);
  EXPECT_EQ(spec->training().steps(), 30);
  EXPECT_DOUBLE_EQ(spec->training().lr(), 1e-3);
  EXPECT_EQ(spec->training().warmup_steps(), 5);
  EXPECT_DOUBLE_EQ(spec->training().min_lr(), 1e-5);
  EXPECT_DOUBLE_EQ(spec->training().weight_decay(), 0.1);
  EXPECT_DOUBLE_EQ(spec->training().beta1(), 0.9);
  EXPECT_DOUBLE_EQ(spec->training().beta2(), 0.95);
  EXPECT_DOUBLE_EQ(spec->training().eps(), 1e-8);
  EXPECT_DOUBLE_EQ(spec->training().clip_norm(), 1.0);
  EXPECT_EQ(spec->training().seed(), 18446744073709551615ULL);
  EXPECT_EQ(spec->training().precision(), v1::BF16);
  EXPECT_EQ(spec->training().log_every(), 1);
  EXPECT_EQ(spec->offload().method(), v1::STRONGHOLD);
  EXPECT_EQ(spec->offload().window(), 3);
  EXPECT_EQ(spec->offload().gpu_memory_budget_bytes(), 8LL << 30);
  EXPECT_EQ(spec->offload().host_memory_budget_bytes(), 1610612736);
  EXPECT_EQ(spec->data().source(), "builtin");
  EXPECT_EQ(spec->data().token_bytes(), 2);
  EXPECT_EQ(spec->checkpoint().every_steps(), 10);
  EXPECT_EQ(spec->checkpoint().keep_last(), 2);
}

TEST(JobSpecFlagsTest, NothingGivenLeavesEverythingUnset) {
  absl::StatusOr<JobSpec> spec = Build({});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->ByteSizeLong(), 0u) << spec->DebugString();
}

TEST(JobSpecFlagsTest, OnlyGivenFieldsAreSet) {
  absl::StatusOr<JobSpec> spec = Build({"--layers", "4"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  JobSpec expected;
  expected.mutable_model()->set_layers(4);
  EXPECT_EQ(spec->SerializeAsString(), expected.SerializeAsString());
}

TEST(JobSpecFlagsTest, ExplicitZeroIsPresent) {
  // The daemon validates an explicit 0 instead of applying its default.
  absl::StatusOr<JobSpec> spec = Build({"--clip-norm", "0", "--layers=0"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->training().has_clip_norm());
  EXPECT_TRUE(spec->model().has_layers());
  EXPECT_FALSE(spec->model().has_hidden());
  EXPECT_FALSE(spec->training().has_lr());
}

TEST(JobSpecFlagsTest, SpeedOptionsAreOnOffOrAuto) {
  // off is present (explicit); auto clears what a spec file set, leaving
  // the choice to the daemon.
  absl::StatusOr<JobSpec> spec = Build(
      {"--speculative-updates", "off", "--device-embedding-optimizer", "on"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->offload().has_speculative_updates());
  EXPECT_FALSE(spec->offload().speculative_updates());
  EXPECT_TRUE(spec->offload().device_embedding_optimizer());
  const std::string path = WriteSpecFile(
      "speed.json", R"({"offload": {"speculativeUpdates": true}})");
  spec = Build({"--spec", path, "--speculative-updates", "auto"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->offload().has_speculative_updates());
  EXPECT_FALSE(Build({"--speculative-updates", "maybe"}).ok());
}

TEST(JobSpecFlagsTest, EnumsIgnoreCase) {
  absl::StatusOr<JobSpec> spec =
      Build({"--method", "L2L", "--precision", "FP16"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->offload().method(), v1::L2L);
  EXPECT_EQ(spec->training().precision(), v1::FP16);
}

TEST(JobSpecFlagsTest, RepeatedSsdDirKeepsOrder) {
  absl::StatusOr<JobSpec> spec =
      Build({"--ssd-dir", "/nvme0/sh", "--ssd-dir=/nvme1/sh"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->offload().ssd_dirs(),
              ElementsAre("/nvme0/sh", "/nvme1/sh"));
}

TEST(JobSpecFlagsTest, SpecFileMergedWithFlags) {
  const std::string path = WriteSpecFile("merge.json", R"({
    "name": "from-file",
    "model": {"layers": 2, "hidden": 64},
    "training": {"steps": 10, "precision": "BF16"},
    "offload": {"method": "L2L", "ssd_dirs": ["/file/a", "/file/b"]}
  })");
  absl::StatusOr<JobSpec> spec =
      Build({"--spec", path, "--layers", "6", "--lr", "0.01"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "from-file");           // file only
  EXPECT_EQ(spec->model().layers(), 6);           // flag overrides
  EXPECT_EQ(spec->model().hidden(), 64);          // file only
  EXPECT_DOUBLE_EQ(spec->training().lr(), 0.01);  // flag only
  EXPECT_EQ(spec->training().steps(), 10);
  EXPECT_EQ(spec->training().precision(), v1::BF16);
  EXPECT_EQ(spec->offload().method(), v1::L2L);
  EXPECT_THAT(spec->offload().ssd_dirs(), ElementsAre("/file/a", "/file/b"));
}

// bench's use: its defaults under the file, the file under the flags, and a
// flag it declares itself (with another meaning) neither listed nor read.
TEST(JobSpecFlagsTest, BaseUnderFileUnderFlagsAndOwnFlagsLeftAlone) {
  JobSpecFlagsOptions options;
  options.base.mutable_model()->set_layers(16);
  options.base.mutable_model()->set_hidden(2048);
  options.base.mutable_training()->set_lr(1e-4);
  options.base.mutable_offload()->set_window(4);
  options.own_flags = {"method"};
  for (const FlagSpec& flag : JobSpecFlags(options)) {
    EXPECT_NE(flag.name, "method");
  }
  EXPECT_EQ(JobSpecFlags(options).size() + 1, JobSpecFlags().size());

  const std::string path = WriteSpecFile(
      "base.json", R"({"model": {"hidden": 64}, "training": {"lr": 0.5}})");
  // A command that declares --method itself parses it with its own flags.
  std::vector<FlagSpec> flags = JobSpecFlags(options);
  flags.push_back({"method", "LIST", "the command's own"});
  absl::StatusOr<ParsedArgs> args =
      ParseArgs({"--spec", path, "--lr", "0.25", "--method", "all"}, flags, {});
  ASSERT_TRUE(args.ok()) << args.status();
  absl::StatusOr<JobSpec> spec = BuildJobSpec(*args, options);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model().layers(), 16);          // base only
  EXPECT_EQ(spec->model().hidden(), 64);          // file over base
  EXPECT_DOUBLE_EQ(spec->training().lr(), 0.25);  // flag over file
  EXPECT_EQ(spec->offload().window(), 4);         // base only
  EXPECT_EQ(spec->offload().method(), v1::OFFLOAD_METHOD_UNSPECIFIED);
}

TEST(JobSpecFlagsTest, SsdDirFlagReplacesFileList) {
  const std::string path = WriteSpecFile(
      "ssd.json", R"({"offload": {"ssd_dirs": ["/file/a", "/file/b"]}})");
  absl::StatusOr<JobSpec> spec = Build({"--spec", path, "--ssd-dir", "/flag"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->offload().ssd_dirs(), ElementsAre("/flag"));
}

TEST(JobSpecFlagsTest, BadSpecFiles) {
  const std::string typo =
      WriteSpecFile("typo.json", R"({"model": {"layerz": 2}})");
  absl::StatusOr<JobSpec> spec = Build({"--spec", typo});
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr(typo));

  const std::string broken = WriteSpecFile("broken.json", "{\"model\": ");
  spec = Build({"--spec", broken});
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("not a valid JobSpec"));

  spec = Build({"--spec", testing::TempDir() + "/missing.json"});
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("--spec: cannot read"));
}

TEST(JobSpecFlagsTest, UnknownFlag) {
  absl::StatusOr<JobSpec> spec = Build({"--layers", "2", "--layer", "3"});
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("unknown flag --layer"));
}

TEST(JobSpecFlagsTest, BadValuesNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--layers", "two"}, "--layers"},
      {{"--architecture", "mistral"}, "--architecture"},
      {{"--tie-embeddings", "yes"}, "--tie-embeddings"},
      {{"--layers", "3.5"}, "--layers"},
      {{"--steps", "99999999999"}, "--steps"},
      {{"--lr", "fast"}, "--lr"},
      {{"--lr", "nan"}, "--lr"},
      {{"--seed", "-1"}, "--seed"},
      {{"--method", "magic"}, "--method"},
      {{"--precision", "fp8"}, "--precision"},
      {{"--gpu-memory-budget", "8G"}, "--gpu-memory-budget"},
      {{"--host-memory-budget", "lots"}, "--host-memory-budget"},
  };
  for (const auto& [args, flag] : cases) {
    absl::StatusOr<JobSpec> spec = Build(args);
    ASSERT_FALSE(spec.ok()) << "accepted " << args[0] << " " << args[1];
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(spec.status().message(), HasSubstr(flag));
    EXPECT_THAT(spec.status().message(), HasSubstr(args[1]));
  }
}

TEST(JobSpecFlagsTest, DistributedFlags) {
  absl::StatusOr<JobSpec> spec =
      Build({"--world-size", "4", "--rank", "3", "--local-rank", "1",
             "--master-addr", "node-0", "--master-port", "29500", "--job-key",
             "k3y-of-the-job", "--collective-timeout", "60"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  const v1::DistributedSpec& d = spec->distributed();
  EXPECT_EQ(d.world_size(), 4);
  EXPECT_EQ(d.rank(), 3);
  EXPECT_EQ(d.local_rank(), 1);
  EXPECT_EQ(d.master_addr(), "node-0");
  EXPECT_EQ(d.master_port(), 29500);
  EXPECT_EQ(d.job_key(), "k3y-of-the-job");
  EXPECT_EQ(d.collective_timeout_s(), 60);
  EXPECT_FALSE(Build({"--layers", "2"})->has_distributed());
}

// An environment of our own making.
EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

absl::StatusOr<JobSpec> BuildWithEnv(std::vector<std::string> args,
                                     std::map<std::string, std::string> vars) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, JobSpecFlags(), {});
  if (!parsed.ok()) return parsed.status();
  return BuildJobSpec(*parsed, {.env = Env(std::move(vars))});
}

TEST(JobSpecFlagsTest, DistFromTorchrunEnv) {
  absl::StatusOr<JobSpec> spec =
      BuildWithEnv({"--dist-from-env"}, {{"MASTER_ADDR", "10.0.0.1"},
                                         {"MASTER_PORT", "29400"},
                                         {"WORLD_SIZE", "8"},
                                         {"RANK", "5"},
                                         {"LOCAL_RANK", "1"},
                                         {"STRONGHOLD_JOB_KEY", "from-the-env"},
                                         {"SLURM_PROCID", "0"}});  // RANK wins
  ASSERT_TRUE(spec.ok()) << spec.status();
  const v1::DistributedSpec& d = spec->distributed();
  EXPECT_EQ(d.master_addr(), "10.0.0.1");
  EXPECT_EQ(d.master_port(), 29400);
  EXPECT_EQ(d.world_size(), 8);
  EXPECT_EQ(d.rank(), 5);
  EXPECT_EQ(d.local_rank(), 1);
  EXPECT_EQ(d.job_key(), "from-the-env");
}

TEST(JobSpecFlagsTest, DistFromSlurmEnvAndFlagsOverride) {
  absl::StatusOr<JobSpec> spec = BuildWithEnv(
      {"--dist-from-env", "--master-port", "30000", "--job-key", "flag-key-1"},
      {{"MASTER_ADDR", "node-0"},
       {"MASTER_PORT", "29400"},
       {"SLURM_NTASKS", "4"},
       {"SLURM_PROCID", "2"},
       {"SLURM_LOCALID", "0"}});
  ASSERT_TRUE(spec.ok()) << spec.status();
  const v1::DistributedSpec& d = spec->distributed();
  EXPECT_EQ(d.world_size(), 4);
  EXPECT_EQ(d.rank(), 2);
  EXPECT_EQ(d.local_rank(), 0);
  EXPECT_EQ(d.master_port(), 30000);
  EXPECT_EQ(d.job_key(), "flag-key-1");
}

TEST(JobSpecFlagsTest, DistFromEnvOneRankNeedsNoMaster) {
  absl::StatusOr<JobSpec> spec =
      BuildWithEnv({"--dist-from-env"}, {{"WORLD_SIZE", "1"}, {"RANK", "0"}});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->distributed().world_size(), 1);
}

TEST(JobSpecFlagsTest, DistFromEnvBadValuesNameTheVariable) {
  const std::map<std::string, std::string> good = {{"MASTER_ADDR", "node-0"},
                                                   {"MASTER_PORT", "29400"},
                                                   {"WORLD_SIZE", "2"},
                                                   {"RANK", "1"},
                                                   {"LOCAL_RANK", "1"}};
  const std::vector<std::pair<std::pair<std::string, std::string>, std::string>>
      cases = {
          {{"WORLD_SIZE", "two"}, "WORLD_SIZE"},
          {{"WORLD_SIZE", "0"}, "WORLD_SIZE"},
          {{"RANK", "2"}, "RANK"},  // not below WORLD_SIZE
          {{"RANK", "-1"}, "RANK"},
          {{"LOCAL_RANK", "x"}, "LOCAL_RANK"},
          {{"MASTER_PORT", "70000"}, "MASTER_PORT"},
          {{"MASTER_PORT", ""}, "MASTER_PORT"},
          {{"MASTER_ADDR", ""}, "MASTER_ADDR"},
      };
  for (const auto& [var, name] : cases) {
    std::map<std::string, std::string> vars = good;
    vars[var.first] = var.second;
    absl::StatusOr<JobSpec> spec = BuildWithEnv({"--dist-from-env"}, vars);
    ASSERT_FALSE(spec.ok()) << var.first << "=" << var.second;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(spec.status().message(), HasSubstr(name));
  }
  for (const char* missing :
       {"WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"}) {
    std::map<std::string, std::string> vars = good;
    vars.erase(missing);
    absl::StatusOr<JobSpec> spec = BuildWithEnv({"--dist-from-env"}, vars);
    ASSERT_FALSE(spec.ok()) << "without " << missing;
    EXPECT_THAT(spec.status().message(), HasSubstr(missing));
  }
}

}  // namespace
}  // namespace stronghold::client
