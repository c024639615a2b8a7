#include "core/checkpoint.h"

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) {
  const fs::path p = fs::path(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") / name;
  fs::remove_all(p);
  return p.string();
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(CheckpointTest, WritesSafetensorsWithManifestAndPrunes) {
  const ModelConfig m{.layers = 2, .hidden = 8, .heads = 2, .seq_len = 4, .vocab = 16};
  const std::vector<BufferLayout> layouts = ModelLayout(m);
  std::vector<std::vector<float>> data;
  std::vector<const float*> params;
  for (size_t b = 0; b < layouts.size(); ++b) {
    data.emplace_back(layouts[b].count);
    for (int64_t i = 0; i < layouts[b].count; ++i) data[b][i] = static_cast<float>(b * 1000 + i);
  }
  for (const auto& d : data) params.push_back(d.data());

  const std::string dir = FreshDir("ckpt");
  for (int step : {10, 20, 30}) {
    auto name = WriteCheckpoint(dir, step, layouts, params, {{"step", std::to_string(step)}});
    ASSERT_TRUE(name.ok()) << name.status();
  }
  EXPECT_EQ(ListCheckpoints(dir), (std::vector<std::string>{"step-000010", "step-000020", "step-000030"}));
  ASSERT_TRUE(PruneCheckpoints(dir, 2).ok());
  EXPECT_EQ(ListCheckpoints(dir), (std::vector<std::string>{"step-000020", "step-000030"}));
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_NE(e.path().filename().string().rfind(".tmp", 0), 0u) << "temporary left behind";
  }

  const std::string model = dir + "/step-000030/model.safetensors";
  auto header = ReadSafetensorsHeader(model);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->metadata.at("step"), "30");
  EXPECT_EQ(header->tensors.size(), 2u + 2u * 12u + 2u);
  auto wpe = ReadSafetensorsTensor(model, *header, "wpe.weight");
  ASSERT_TRUE(wpe.ok());
  EXPECT_EQ((*wpe)[0], static_cast<float>(layouts[0].tensor("wpe.weight").offset));
  auto fc2 = ReadSafetensorsTensor(model, *header, "layers.1.mlp.fc2.bias");
  ASSERT_TRUE(fc2.ok());
  EXPECT_EQ((*fc2)[0], static_cast<float>(2000 + layouts[2].tensor("mlp.fc2.bias").offset));

  auto manifest = ReadFile(dir + "/step-000030/manifest.json");
  ASSERT_TRUE(manifest.ok());
  auto digest = Sha256File(model);
  ASSERT_TRUE(digest.ok());
  EXPECT_NE(manifest->find(*digest), std::string::npos);
}

TEST(SafetensorsTest, TruncatedFileIsDataLoss) {
  const std::string dir = FreshDir("trunc");
  fs::create_directories(dir);
  std::vector<float> x(16, 1.0f);
  const std::string path = dir + "/x.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, {{"x", {4, 4}, x.data()}}, {}).ok());
  fs::resize_file(path, fs::file_size(path) - 8);
  auto h = ReadSafetensorsHeader(path);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(h.status().message().find(path), absl::string_view::npos);
}

}  // namespace
}  // namespace stronghold::core
