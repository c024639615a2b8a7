#include "core/data/dataset.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
}

void WriteTokens(const std::string& path, const std::vector<uint32_t>& tokens, int width) {
  std::ofstream f(path, std::ios::binary);
  for (uint32_t t : tokens) {
    for (int b = 0; b < width; ++b) f.put(static_cast<char>((t >> (8 * b)) & 0xff));
  }
}

TEST(DatasetTest, BuiltinCorpusIsDeterministicText) {
  const std::string a = Dataset::BuiltinCorpus();
  EXPECT_EQ(a, Dataset::BuiltinCorpus());
  EXPECT_GE(a.size(), size_t{1} << 20);
  EXPECT_NE(a.find(" plus "), std::string::npos);
}

TEST(DatasetTest, SamplesAreAFunctionOfSeedAndIndex) {
  auto d = Dataset::Open({.source = "builtin"}, 256, 16);
  ASSERT_TRUE(d.ok()) << d.status();
  std::vector<int64_t> in1(4 * 16), tg1(4 * 16), in2(2 * 16), tg2(2 * 16);
  (*d)->Fill(7, /*first_sample=*/10, 4, in1.data(), tg1.data());
  (*d)->Fill(7, /*first_sample=*/12, 2, in2.data(), tg2.data());
  // Samples 12 and 13 are the same whichever batch they are drawn in.
  EXPECT_EQ(std::vector<int64_t>(in1.begin() + 32, in1.end()), in2);
  // Targets are inputs shifted by one token.
  for (int j = 0; j + 1 < 16; ++j) EXPECT_EQ(tg1[j], in1[j + 1]);
  std::vector<int64_t> other(4 * 16), unused(4 * 16);
  (*d)->Fill(8, 10, 4, other.data(), unused.data());
  EXPECT_NE(other, in1);  // another seed, other samples
}

TEST(DatasetTest, ReadsUint16AndUint32TokenFiles) {
  std::vector<uint32_t> tokens;
  for (uint32_t i = 0; i < 100; ++i) tokens.push_back((i * 7) % 300);
  WriteTokens(TempPath("t.u16"), tokens, 2);
  WriteTokens(TempPath("t.u32"), tokens, 4);
  for (const char* name : {"t.u16", "t.u32"}) {
    auto d = Dataset::Open({.source = TempPath(name)}, 384, 8);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ((*d)->num_tokens(), 100);
    std::vector<int64_t> in(8), tg(8);
    (*d)->Fill(1, 0, 1, in.data(), tg.data());
    // Consecutive ids follow the file: t[i+1] = t[i] + 7 mod 300.
    for (int j = 0; j < 8; ++j) EXPECT_EQ(tg[j], (in[j] + 7) % 300) << name;
  }
}

TEST(DatasetTest, RejectsBadFilesNamingTheField) {
  WriteTokens(TempPath("odd.u16"), {1, 2, 3}, 2);
  { std::ofstream f(TempPath("odd.u16"), std::ios::app | std::ios::binary); f.put('x'); }
  WriteTokens(TempPath("short.u16"), {1, 2, 3}, 2);
  WriteTokens(TempPath("big.u16"), std::vector<uint32_t>(100, 500), 2);
  for (auto [path, vocab] : {std::pair{TempPath("odd.u16"), 256},
                             {TempPath("short.u16"), 256},
                             {TempPath("big.u16"), 256},
                             {TempPath("missing.u16"), 256}}) {
    auto d = Dataset::Open({.source = path}, vocab, 8);
    ASSERT_FALSE(d.ok()) << path;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("data.source"), absl::string_view::npos) << d.status();
  }
  auto builtin_small_vocab = Dataset::Open({.source = "builtin"}, 128, 8);
  EXPECT_FALSE(builtin_small_vocab.ok());
}

}  // namespace
}  // namespace stronghold::core
