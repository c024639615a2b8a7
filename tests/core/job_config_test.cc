#include "core/plan/job_config.h"

#include <functional>
#include <string>

#include "core/model/gpt_layout.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

TEST(ModelConfigTest, ParameterCountMatchesTheSeed) {
  // P = L*(12h^2 + 13h) + (V + S)*h + 2h, with V padded 50257 -> 50304.
  ModelConfig m{.layers = 32,
                .hidden = 2048,
                .heads = 16,
                .seq_len = 1024,
                .vocab = 50257};
  EXPECT_EQ(m.padded_vocab(), 50304);
  EXPECT_EQ(m.parameters(), 1'716'588'544);
  ModelConfig unpadded = m;
  unpadded.vocab_multiple = 1;  // an imported model's (JobSpec.init_from)
  EXPECT_EQ(unpadded.padded_vocab(), 50257);
  EXPECT_EQ(unpadded.parameters(), m.parameters() - 47 * 2048);
  for (auto [layers, expected] : {std::pair{16, 910'856'192LL},
                                  {24, 1'313'722'368LL},
                                  {48, 2'522'320'896LL},
                                  {78, 4'033'069'056LL},
                                  {100, 5'140'951'040LL}}) {
    m.layers = layers;
    EXPECT_EQ(m.parameters(), expected) << layers << " layers";
  }
}

TEST(ModelConfigTest, LayoutCoversEveryParameterOnce) {
  const ModelConfig m{
      .layers = 3, .hidden = 64, .heads = 4, .seq_len = 32, .vocab = 300};
  int64_t total = 0;
  for (const BufferLayout& b : ModelLayout(m)) {
    int64_t offset = 0;
    for (const TensorSlice& t : b.tensors) {
      EXPECT_EQ(t.offset, offset) << b.name << "." << t.name;
      offset += t.numel();
    }
    EXPECT_EQ(offset, b.count) << b.name;
    EXPECT_LE(b.decay_count, b.count);
    total += b.count;
  }
  EXPECT_EQ(total, m.parameters());
  EXPECT_EQ(BlockLayout(m, 0).count, m.parameters_per_layer());
  // Only weight matrices decay: 12h^2 of the block's 12h^2 + 13h.
  EXPECT_EQ(BlockLayout(m, 0).decay_count, 12 * 64 * 64);
}

TEST(ModelConfigTest, ModelFlopsFollowMegatron) {
  const ModelConfig m{.layers = 32,
                      .hidden = 2048,
                      .heads = 16,
                      .seq_len = 1024,
                      .vocab = 50304};
  const double b = 4, s = 1024, l = 32, h = 2048, v = 50304;
  EXPECT_DOUBLE_EQ(
      m.model_flops_per_step(4),
      72 * b * s * l * h * h * (1 + s / (6 * h) + v / (12 * l * h)));
}

// Llama-2-7B and TinyLlama-1.1B's configurations: the parameter counts
// Hugging Face reports for them (untied heads; their vocabularies, 32000,
// need no padding).
TEST(ModelConfigTest, LlamaParameterCountsMatchPublishedModels) {
  ModelConfig m{.architecture = Architecture::kLlama,
                .layers = 32,
                .hidden = 4096,
                .heads = 32,
                .seq_len = 4096,
                .vocab = 32000,
                .kv_heads = 32,
                .intermediate = 11008};
  EXPECT_EQ(m.parameters(), 6'738'415'616);
  m = {.architecture = Architecture::kLlama,
       .layers = 22,
       .hidden = 2048,
       .heads = 32,
       .seq_len = 2048,
       .vocab = 32000,
       .kv_heads = 4,
       .intermediate = 5632};
  EXPECT_EQ(m.parameters(), 1'100'048'384);
  EXPECT_EQ(m.parameters_per_layer(), 44'044'288);
  m.tie_embeddings = true;  // one V x h table fewer
  EXPECT_EQ(m.parameters(), 1'100'048'384 - 32000LL * 2048);
  // Every buffer of the layout, once.
  int64_t total = 0;
  for (const BufferLayout& b : ModelLayout(m)) total += b.count;
  EXPECT_EQ(total, m.parameters());
}

TEST(ModelConfigTest, LlamaModelFlopsCountItsMatmuls) {
  const ModelConfig m{.architecture = Architecture::kLlama,
                      .layers = 2,
                      .hidden = 64,
                      .heads = 4,
                      .seq_len = 32,
                      .vocab = 256,
                      .kv_heads = 2,
                      .intermediate = 160};
  // Per token and layer: qkv 64*(64 + 2*32) (k and v: 2 heads of 16),
  // proj 64*64, gate/up/down 3*64*160 weights, 2 FLOPs each, attention
  // 2*2*32*64; the head 2*256*64; x3.
  const double matmul = 64.0 * 128 + 64 * 64 + 3.0 * 64 * 160;
  const double forward = 2 * (2 * matmul + 2 * 2 * 32 * 64.0) + 2 * 256 * 64.0;
  EXPECT_DOUBLE_EQ(m.model_flops_per_step(4), 3 * 4 * 32 * forward);
}

TEST(ModelConfigTest, DefaultIntermediateRoundsEightThirdsUpTo256) {
  EXPECT_EQ(DefaultIntermediate(4096), 11008);  // Llama-2-7B's
  EXPECT_EQ(DefaultIntermediate(64), 256);
  EXPECT_EQ(DefaultIntermediate(96), 256);
  EXPECT_EQ(DefaultIntermediate(100), 512);  // int(266.67) = 266
}

void MakeLlama(JobConfig& c) {
  c.model.architecture = Architecture::kLlama;
  c.model.kv_heads = 2;
  c.model.intermediate = 128;
}

JobConfig Valid() {
  JobConfig c;
  c.model = {
      .layers = 2, .hidden = 64, .heads = 4, .seq_len = 64, .vocab = 256};
  return c;
}

// Where the files are, and whether they exist, is the daemon's to check as
// it opens them inside its roots (server/path_confinement.h): validation
// says nothing about any file, so it cannot reveal one.
TEST(ValidationTest, TouchesNoFile) {
  JobConfig c = Valid();
  c.data.source = "/nonexistent/tokens.u16";
  c.offload.ssd_dirs = {"/nonexistent/dir", "relative/dir"};
  EXPECT_TRUE(ValidateJobConfig(c).ok()) << ValidateJobConfig(c);
  c.data.source = "/etc/shadow";
  EXPECT_TRUE(ValidateJobConfig(c).ok()) << ValidateJobConfig(c);
}

// A Megatron index gives its ids' width (its dtype code): data.token_bytes
// must be left at 0 for it, and stays free for a flat file.
TEST(ValidationTest, TokenBytesIsTheIndexsToSay) {
  JobConfig c = Valid();
  c.data.source = "corpus_text_document.idx";
  EXPECT_TRUE(ValidateJobConfig(c).ok()) << ValidateJobConfig(c);
  c.data.token_bytes = 2;
  const absl::Status s = ValidateJobConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(
      s.message().find("data.token_bytes: must be 0 for a Megatron index"),
      absl::string_view::npos)
      << s;
  c.data.source = "corpus_text_document.bin";
  EXPECT_TRUE(ValidateJobConfig(c).ok()) << ValidateJobConfig(c);
}

struct Rule {
  std::string field;  // the field the error must name
  std::function<void(JobConfig&)> breaks;
};

class ValidationTest : public ::testing::TestWithParam<Rule> {};

TEST_P(ValidationTest, NamesTheField) {
  JobConfig c = Valid();
  ASSERT_TRUE(ValidateJobConfig(c).ok());
  GetParam().breaks(c);
  const absl::Status s = ValidateJobConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find(GetParam().field), absl::string_view::npos) << s;
}

INSTANTIATE_TEST_SUITE_P(
    EveryRule, ValidationTest,
    ::testing::Values(
        Rule{"name", [](JobConfig& c) { c.name = std::string(200, 'x'); }},
        Rule{"model.layers", [](JobConfig& c) { c.model.layers = 0; }},
        Rule{"model.layers", [](JobConfig& c) { c.model.layers = 5000; }},
        Rule{"model.hidden", [](JobConfig& c) { c.model.hidden = 0; }},
        Rule{"model.hidden",
             [](JobConfig& c) { c.model.hidden = 66; }},  // not divisible by 4
        Rule{"model.heads", [](JobConfig& c) { c.model.heads = 0; }},
        Rule{"model.seq_len", [](JobConfig& c) { c.model.seq_len = 0; }},
        Rule{"model.seq_len",
             [](JobConfig& c) { c.model.seq_len = kMaxSeqLen + 1; }},
        Rule{"model.vocab", [](JobConfig& c) { c.model.vocab = 1; }},
        Rule{"model.vocab_multiple",
             [](JobConfig& c) { c.model.vocab_multiple = 0; }},
        Rule{"model.vocab_multiple",
             [](JobConfig& c) { c.model.vocab_multiple = 1025; }},
        Rule{"model.kv_heads",
             [](JobConfig& c) {
               MakeLlama(c);
               c.model.kv_heads = 3;  // does not divide 4
             }},
        Rule{"model.kv_heads",
             [](JobConfig& c) {
               MakeLlama(c);
               c.model.kv_heads = 8;
             }},
        Rule{"model.intermediate",
             [](JobConfig& c) {
               MakeLlama(c);
               c.model.intermediate = 0;
             }},
        Rule{"model.intermediate",
             [](JobConfig& c) {
               MakeLlama(c);
               c.model.intermediate = kMaxIntermediate + 1;
             }},
        Rule{"model.rope_theta",
             [](JobConfig& c) {
               MakeLlama(c);
               c.model.rope_theta = 0;
             }},
        Rule{"model.norm_eps",
             [](JobConfig& c) {
               MakeLlama(c);
               c.model.norm_eps = 0.1;
             }},
        Rule{"model.hidden",
             [](JobConfig& c) {
               MakeLlama(c);
               c.model.hidden = 36;  // head size 9: RoPE needs pairs
             }},
        Rule{"model.intermediate",
             [](JobConfig& c) { c.model.intermediate = 128; }},  // a GPT
        Rule{"model.kv_heads", [](JobConfig& c) { c.model.kv_heads = 2; }},
        Rule{"model.rope_theta",
             [](JobConfig& c) { c.model.rope_theta = 5e5; }},
        Rule{"model.tie_embeddings",
             [](JobConfig& c) { c.model.tie_embeddings = true; }},
        Rule{"training.batch", [](JobConfig& c) { c.training.batch = 0; }},
        Rule{"training.micro_batch",
             [](JobConfig& c) { c.training.micro_batch = 0; }},
        Rule{"training.batch",
             [](JobConfig& c) {
               c.training.batch = 6;
               c.training.micro_batch = 4;
             }},
        Rule{"training.steps", [](JobConfig& c) { c.training.steps = 0; }},
        Rule{"training.lr", [](JobConfig& c) { c.training.lr = -1e-3; }},
        Rule{"training.lr", [](JobConfig& c) { c.training.lr = 0; }},
        Rule{"training.warmup_steps",
             [](JobConfig& c) { c.training.warmup_steps = 1000; }},
        Rule{"training.min_lr", [](JobConfig& c) { c.training.min_lr = 1.0; }},
        Rule{"training.weight_decay",
             [](JobConfig& c) { c.training.weight_decay = -0.1; }},
        Rule{"training.beta1", [](JobConfig& c) { c.training.beta1 = 1.0; }},
        Rule{"training.beta2", [](JobConfig& c) { c.training.beta2 = -0.5; }},
        Rule{"training.eps", [](JobConfig& c) { c.training.eps = 0; }},
        Rule{"training.clip_norm",
             [](JobConfig& c) { c.training.clip_norm = -1; }},
        Rule{"training.log_every",
             [](JobConfig& c) { c.training.log_every = 0; }},
        Rule{"offload.window", [](JobConfig& c) { c.offload.window = 3; }},
        Rule{"offload.gpu_memory_budget_bytes",
             [](JobConfig& c) { c.offload.gpu_memory_budget_bytes = -1; }},
        Rule{"offload.host_memory_budget_bytes",
             [](JobConfig& c) { c.offload.host_memory_budget_bytes = -1; }},
        Rule{"offload.ssd_dirs",
             [](JobConfig& c) { c.offload.ssd_dirs = {""}; }},
        Rule{"offload.ssd_dirs",
             [](JobConfig&
                    c) { c.offload.ssd_dirs = {std::string("a\0b", 3)}; }},
        Rule{"offload.ssd_dirs",
             [](JobConfig&
                    c) { c.offload.ssd_dirs.assign(kMaxSsdDirs + 1, "nvme"); }},
        Rule{"data.source", [](JobConfig& c) { c.data.source = ""; }},
        Rule{"data.source",
             [](JobConfig& c) { c.data.source = std::string("t.u16\0x", 7); }},
        Rule{
            "data.source",
            [](JobConfig&
                   c) { c.data.source = std::string(kMaxPathLength + 1, 'x'); }},
        Rule{"data.token_bytes", [](JobConfig& c) { c.data.token_bytes = 3; }},
        Rule{"checkpoint.every_steps",
             [](JobConfig& c) { c.checkpoint.every_steps = -1; }},
        Rule{"checkpoint.keep_last",
             [](JobConfig& c) { c.checkpoint.keep_last = -1; }}));

// A valid two-rank job: batch 8 = 2 ranks x 4 micro-batches of 1.
JobConfig ValidDistributed() {
  JobConfig c = Valid();
  c.training.batch = 8;
  c.training.micro_batch = 1;
  c.distributed = {.master_addr = "node-0.cluster",
                   .master_port = 29500,
                   .world_size = 2,
                   .rank = 1,
                   .local_rank = 1,
                   .job_key = "secret-key_01",
                   .collective_timeout_s = 60};
  return c;
}

TEST(DistributedValidationTest, AcceptsHostnamesAndAddresses) {
  for (const char* addr : {"node-0.cluster", "10.0.0.7", "localhost", "::1",
                           "[fe80::1]", "fd00::a:b"}) {
    JobConfig c = ValidDistributed();
    c.distributed.master_addr = addr;
    EXPECT_TRUE(ValidateJobConfig(c).ok())
        << addr << ": " << ValidateJobConfig(c);
  }
}

// World size 1 is today's single-daemon job: nothing else of the section is
// looked at (a port of 0 included).
TEST(DistributedValidationTest, WorldSizeOneIgnoresTheRest) {
  JobConfig c = Valid();
  c.distributed = {.world_size = 1, .rank = 7, .job_key = "x"};
  EXPECT_FALSE(c.distributed.enabled());
  EXPECT_TRUE(ValidateJobConfig(c).ok()) << ValidateJobConfig(c);
}

// A plan needs the world size (and the batch rule), not where ranks meet.
TEST(DistributedValidationTest, PlanNeedsOnlyTheWorldSize) {
  JobConfig c = Valid();
  c.training.batch = 8;
  c.training.micro_batch = 2;
  c.distributed.world_size = 4;
  const ValidationOptions plan{.rendezvous = false};
  EXPECT_TRUE(ValidateJobConfig(c, plan).ok()) << ValidateJobConfig(c, plan);
  EXPECT_FALSE(ValidateJobConfig(c).ok());
  c.distributed.world_size = 8;  // 8 x 2 > 8
  EXPECT_NE(ValidateJobConfig(c, plan).message().find("training.batch"),
            absl::string_view::npos);
}

TEST(DistributedValidationTest, BatchNamesWorldSizeAndMicroBatch) {
  JobConfig c = ValidDistributed();
  c.training.batch = 6;
  c.training.micro_batch = 2;  // 6 is a multiple of 2, not of 2 x 2
  const absl::Status s = ValidateJobConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("training.batch"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("distributed.world_size"), absl::string_view::npos)
      << s;
  EXPECT_NE(s.message().find("training.micro_batch"), absl::string_view::npos)
      << s;
}

TEST(DistributedValidationTest, NeverEchoesTheJobKey) {
  JobConfig c = ValidDistributed();
  c.distributed.job_key = "short!!";
  absl::Status s = ValidateJobConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(s.message().find("short!!"), absl::string_view::npos) << s;
  c.distributed.job_key = "long-enough-but-has a space";
  s = ValidateJobConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(s.message().find("has a space"), absl::string_view::npos) << s;
}

class DistributedRuleTest : public ::testing::TestWithParam<Rule> {};

TEST_P(DistributedRuleTest, NamesTheField) {
  JobConfig c = ValidDistributed();
  ASSERT_TRUE(ValidateJobConfig(c).ok()) << ValidateJobConfig(c);
  GetParam().breaks(c);
  const absl::Status s = ValidateJobConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find(GetParam().field), absl::string_view::npos) << s;
}

INSTANTIATE_TEST_SUITE_P(
    EveryRule, DistributedRuleTest,
    ::testing::Values(
        Rule{"distributed.world_size",
             [](JobConfig& c) { c.distributed.world_size = 0; }},
        Rule{
            "distributed.world_size",
            [](JobConfig& c) { c.distributed.world_size = kMaxWorldSize + 1; }},
        Rule{"distributed.rank", [](JobConfig& c) { c.distributed.rank = 2; }},
        Rule{"distributed.rank", [](JobConfig& c) { c.distributed.rank = -1; }},
        Rule{"distributed.local_rank",
             [](JobConfig& c) { c.distributed.local_rank = -1; }},
        Rule{"distributed.master_port",
             [](JobConfig& c) { c.distributed.master_port = 0; }},
        Rule{"distributed.master_port",
             [](JobConfig& c) { c.distributed.master_port = 65536; }},
        Rule{"distributed.master_addr",
             [](JobConfig& c) { c.distributed.master_addr = ""; }},
        Rule{"distributed.master_addr",
             [](JobConfig& c) {
               c.distributed.master_addr = std::string(254, 'a');
             }},
        Rule{"distributed.master_addr",
             [](JobConfig& c) { c.distributed.master_addr = "a b"; }},
        Rule{"distributed.master_addr",
             [](JobConfig& c) { c.distributed.master_addr = "h/../x"; }},
        Rule{"distributed.master_addr",
             [](JobConfig& c) { c.distributed.master_addr = "-oProxy"; }},
        Rule{"distributed.master_addr",
             [](JobConfig& c) { c.distributed.master_addr = "::g"; }},
        Rule{"distributed.job_key",
             [](JobConfig& c) { c.distributed.job_key = ""; }},
        Rule{"distributed.job_key",
             [](JobConfig& c) {
               c.distributed.job_key = std::string(129, 'k');
             }},
        Rule{"distributed.job_key",
             [](JobConfig& c) { c.distributed.job_key = "key\nwith-newline"; }},
        Rule{"distributed.collective_timeout_s",
             [](JobConfig& c) { c.distributed.collective_timeout_s = 0; }},
        Rule{"distributed.collective_timeout_s",
             [](JobConfig& c) {
               c.distributed.collective_timeout_s = kMaxCollectiveTimeoutS + 1;
             }},
        Rule{"training.batch", [](JobConfig& c) {
               c.training.batch = 8;
               c.training.micro_batch = 8;  // 2 ranks x 8 > 8
             }}));

}  // namespace
}  // namespace stronghold::core
