#include "core/data/dataset.h"

#include <fcntl.h>
#include <unistd.h>

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

void WriteTokens(const std::string& path, const std::vector<uint32_t>& tokens,
                 int width) {
  std::ofstream f(path, std::ios::binary);
  for (uint32_t t : tokens) {
    for (int b = 0; b < width; ++b)
      f.put(static_cast<char>((t >> (8 * b)) & 0xff));
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
  ASSERT_TRUE(
      (*d)->Fill(7, /*first_sample=*/10, 4, in1.data(), tg1.data()).ok());
  ASSERT_TRUE(
      (*d)->Fill(7, /*first_sample=*/12, 2, in2.data(), tg2.data()).ok());
  // Samples 12 and 13 are the same whichever batch they are drawn in.
  EXPECT_EQ(std::vector<int64_t>(in1.begin() + 32, in1.end()), in2);
  // Targets are inputs shifted by one token.
  for (int j = 0; j + 1 < 16; ++j) EXPECT_EQ(tg1[j], in1[j + 1]);
  std::vector<int64_t> other(4 * 16), unused(4 * 16);
  ASSERT_TRUE((*d)->Fill(8, 10, 4, other.data(), unused.data()).ok());
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
    ASSERT_TRUE((*d)->Fill(1, 0, 1, in.data(), tg.data()).ok());
    // Consecutive ids follow the file: t[i+1] = t[i] + 7 mod 300.
    for (int j = 0; j < 8; ++j) EXPECT_EQ(tg[j], (in[j] + 7) % 300) << name;
  }
}

TEST(DatasetTest, RejectsBadFilesNamingTheField) {
  WriteTokens(TempPath("odd.u16"), {1, 2, 3}, 2);
  {
    std::ofstream f(TempPath("odd.u16"), std::ios::app | std::ios::binary);
    f.put('x');
  }
  WriteTokens(TempPath("short.u16"), {1, 2, 3}, 2);
  WriteTokens(TempPath("big.u16"), std::vector<uint32_t>(100, 500), 2);
  for (auto [path, vocab] : {std::pair{TempPath("odd.u16"), 256},
                             {TempPath("short.u16"), 256},
                             {TempPath("big.u16"), 256},
                             {TempPath("missing.u16"), 256}}) {
    auto d = Dataset::Open({.source = path}, vocab, 8);
    ASSERT_FALSE(d.ok()) << path;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("data.source"), absl::string_view::npos)
        << d.status();
  }
  auto builtin_small_vocab = Dataset::Open({.source = "builtin"}, 128, 8);
  EXPECT_FALSE(builtin_small_vocab.ok());
}

// A file opened by the caller (the daemon, inside its data roots) is read
// through that descriptor: its name is only a label, nothing is looked up.
TEST(DatasetTest, ReadsAFileOpenedByTheCaller) {
  std::vector<uint32_t> tokens;
  for (uint32_t i = 0; i < 100; ++i) tokens.push_back(i % 50);
  WriteTokens(TempPath("opened.u32"), tokens, 4);
  UniqueFd fd(open(TempPath("opened.u32").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  auto d =
      Dataset::OpenFile(std::move(fd), {.source = "no/such/name.u32"}, 64, 8);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->num_tokens(), 100);
  std::vector<int64_t> in(8), tg(8);
  ASSERT_TRUE((*d)->Fill(3, 0, 1, in.data(), tg.data()).ok());
  for (int j = 0; j < 8; ++j) EXPECT_EQ(tg[j], (in[j] + 1) % 50);
}

// A token file truncated under a running job: the next sample is an error
// naming data.source (DATA_LOSS), not a SIGBUS (it was memory-mapped).
TEST(DatasetTest, ATruncatedFileFailsTheFillNotTheProcess) {
  const std::string path = TempPath("truncated.u16");
  WriteTokens(path, std::vector<uint32_t>(4096, 7), 2);
  auto d = Dataset::Open({.source = path}, 256, 16);
  ASSERT_TRUE(d.ok()) << d.status();
  std::vector<int64_t> in(4 * 16), tg(4 * 16);
  ASSERT_TRUE((*d)->Fill(1, 0, 4, in.data(), tg.data()).ok());
  ASSERT_EQ(truncate(path.c_str(), 0), 0);
  const absl::Status s = (*d)->Fill(1, 4, 4, in.data(), tg.data());
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("data.source"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("truncated"), absl::string_view::npos) << s;
}

// Rewritten in place with ids the model has no embedding for: refused by
// the sample that meets one, not passed to the model.
TEST(DatasetTest, IdsBeyondTheVocabularyWrittenLaterFailTheFill) {
  const std::string path = TempPath("rewritten.u16");
  WriteTokens(path, std::vector<uint32_t>(64, 7), 2);
  auto d = Dataset::Open({.source = path}, 256, 16);
  ASSERT_TRUE(d.ok()) << d.status();
  WriteTokens(path, std::vector<uint32_t>(64, 9999), 2);
  std::vector<int64_t> in(16), tg(16);
  const absl::Status s = (*d)->Fill(1, 0, 1, in.data(), tg.data());
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("changed while the job ran"),
            absl::string_view::npos)
      << s;
}

}  // namespace
}  // namespace stronghold::core
