// ParseManifest's field rules (core/checkpoint/checkpoint_manifest.cc): the
// strict JSON of core/util/json, and every number checked against the type
// and range of the field it lands in instead of being truncated. Each case
// edits a real manifest and recomputes its self-digest, so it is the field
// rule, not the digest, that refuses it.
#include <string>

#include "absl/strings/str_cat.h"
#include "core/checkpoint/checkpoint_manifest.h"
#include "core/util/sha256.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

constexpr char kDigestKey[] = "\"manifest_sha256\": \"";

std::string Redigest(std::string text) {
  const size_t hole = text.find(kDigestKey) + sizeof(kDigestKey) - 1;
  text.replace(hole, 64, std::string(64, '0'));
  text.replace(hole, 64, Sha256Hex(text));
  return text;
}

std::string Manifest() {
  CheckpointManifest m;
  m.model = {.layers = 2,
             .hidden = 64,
             .heads = 4,
             .seq_len = 64,
             .vocab = 256,
             .padded_vocab = 256,
             .parameters = 120'576};
  m.position = {.step = 3,
                .optimizer_step = 3,
                .seed = 7,
                .batch = 8,
                .next_sample = 24,
                .lr = 1e-3,
                .next_lr = 1e-3};
  m.files.push_back({"model.safetensors", 123, std::string(64, 'a')});
  return ManifestToJson(m);
}

// `from` replaced by `to` in a valid manifest, digest recomputed.
std::string Edited(const std::string& from, const std::string& to) {
  std::string text = Manifest();
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
  return Redigest(text);
}

void ExpectRefused(const std::string& text, const std::string& what) {
  auto m = ParseManifest(text, "x/manifest.json");
  ASSERT_FALSE(m.ok()) << "accepted: " << text;
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss) << m.status();
  EXPECT_NE(m.status().message().find("x/manifest.json"),
            absl::string_view::npos);
  EXPECT_NE(m.status().message().find(what), absl::string_view::npos)
      << m.status();
}

TEST(ManifestParseTest, TheEditingHelperKeepsAValidManifest) {
  auto m =
      ParseManifest(Edited("\"batch\": 8", "\"batch\": 9"), "x/manifest.json");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->position.batch, 9);
}

TEST(ManifestParseTest, VocabMultipleIsReadAndOlderManifestsRead128) {
  auto m = ParseManifest(
      Edited("\"vocab_multiple\": 128", "\"vocab_multiple\": 1"), "x");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->model.vocab_multiple, 1);
  auto old = ParseManifest(Edited("\"vocab_multiple\": 128, ", ""), "x");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->model.vocab_multiple, 128);
  ExpectRefused(Edited("\"vocab_multiple\": 128", "\"vocab_multiple\": 0"),
                "outside [1, 1024]");
  ExpectRefused(Edited("\"vocab_multiple\": 128", "\"vocab_multiple\": 1025"),
                "outside [1, 1024]");
}

// A llama manifest records its architecture's fields and reads back as
// written; a manifest without them (every GPT's) reads as gpt; an unknown
// architecture is refused by name.
TEST(ManifestParseTest, ArchitectureFieldsRoundTrip) {
  auto gpt = ParseManifest(Manifest(), "x/manifest.json");
  ASSERT_TRUE(gpt.ok()) << gpt.status();
  EXPECT_EQ(gpt->model.architecture, "gpt");
  EXPECT_EQ(Manifest().find("architecture"), std::string::npos);

  auto m = ParseManifest(Manifest(), "x/manifest.json");
  ASSERT_TRUE(m.ok());
  m->model.architecture = "llama";
  m->model.kv_heads = 2;
  m->model.intermediate = 176;
  m->model.rope_theta = 500000;
  m->model.norm_eps = 1e-6;
  m->model.tie_embeddings = true;
  const std::string text = ManifestToJson(*m);
  auto back = ParseManifest(text, "x/manifest.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->model.architecture, "llama");
  EXPECT_EQ(back->model.kv_heads, 2);
  EXPECT_EQ(back->model.intermediate, 176);
  EXPECT_EQ(back->model.rope_theta, 500000);
  EXPECT_EQ(back->model.norm_eps, 1e-6);
  EXPECT_TRUE(back->model.tie_embeddings);
  EXPECT_EQ(ManifestToJson(*back), text);

  std::string mistral = text;
  mistral.replace(mistral.find("\"llama\""), 7, "\"other\"");
  ExpectRefused(Redigest(mistral), "\"other\" is neither");
}

TEST(ManifestParseTest, RefusesIntsThatWouldBeTruncated) {
  ExpectRefused(Edited("\"batch\": 8", "\"batch\": 4294967304"),
                "\"batch\" (at byte ");
  ExpectRefused(Edited("\"batch\": 8", "\"batch\": 4294967304"),
                "is 4294967304, outside [1, 2147483647]");
  ExpectRefused(Edited("\"layers\": 2", "\"layers\": 2147483648"),
                "outside [1, 2147483647]");
  ExpectRefused(Edited("\"layers\": 2", "\"layers\": 0"),
                "outside [1, 2147483647]");
}

TEST(ManifestParseTest, RefusesNegativeCounts) {
  ExpectRefused(Edited("\"step\": 3", "\"step\": -3"), "\"step\"");
  ExpectRefused(Edited("\"next_sample\": 24", "\"next_sample\": -1"),
                "\"next_sample\"");
  ExpectRefused(Edited("\"bytes\": 123", "\"bytes\": -1"), "\"bytes\"");
}

TEST(ManifestParseTest, RefusesNumbersBeyondTheirType) {
  ExpectRefused(Edited("\"seed\": 7", "\"seed\": 18446744073709551616"),
                "does not fit in a 64-bit unsigned integer");
  ExpectRefused(Edited("\"step\": 3", "\"step\": 9223372036854775808"),
                "does not fit in a 64-bit signed integer");
  ExpectRefused(Edited("\"step\": 3", "\"step\": 3.0"), "must be an integer");
  ExpectRefused(Edited("\"lr\": 0.001", "\"lr\": 1e999"),
                "does not fit in a double");
}

TEST(ManifestParseTest, RefusesALossScaleThatIsNotPositive) {
  // An fp16 manifest; ManifestToJson leaves a scale of 0 (none) out.
  const std::string fp16 = Edited(
      "\"next_lr\": 0.001",
      "\"next_lr\": 0.001, \"loss_scale\": 8192, \"loss_scale_good_steps\": 3");
  auto m = ParseManifest(fp16, "x/manifest.json");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->position.loss_scale, 8192);
  for (const char* scale : {"-8192", "0", "-0"}) {
    std::string bad = fp16;
    bad.replace(bad.find("8192"), 4, scale);
    ExpectRefused(Redigest(bad), "\"loss_scale\" must be > 0 when present");
  }
}

TEST(ManifestParseTest, RefusesFileNamesThatAreNotPlain) {
  ExpectRefused(Edited("\"model.safetensors\"", "\"model\\u0000.safetensors\""),
                "is not a plain name");
  ExpectRefused(Edited("\"model.safetensors\"", "\"../model.safetensors\""),
                "is not a plain name");
}

TEST(ManifestParseTest, RefusesJsonThatIsNotStrict) {
  ExpectRefused(Edited("\"step\": 3,", "\"step\": 3,,"),
                "invalid JSON at byte");
  ExpectRefused(Edited("\"step\": 3,", "\"step\": 03,"), "leading zeros");
  ExpectRefused(Edited("\"step\": 3,", "\"step\": 3, \"step\": 3,"),
                "duplicate key \"step\"");
}

}  // namespace
}  // namespace stronghold::core
