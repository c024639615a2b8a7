// The Megatron index parser against good and hostile .idx files: every
// header field, count and pointer that lies is refused with
// INVALID_ARGUMENT naming data.source, the file and the limit; a good pair
// opens as a Dataset that samples the .bin's tokens.
#include "core/data/megatron_index.h"

#include <fcntl.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/util/unique_fd.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
}

void PutLe(std::string& out, uint64_t v, int bytes) {
  for (int b = 0; b < bytes; ++b)
    out += static_cast<char>((v >> (8 * b)) & 0xff);
}

// An index as Megatron's _IndexWriter writes it, with every field
// overridable so that a test can make one of them lie.
struct IndexSpec {
  std::string magic = std::string("MMIDIDX\0\0", 9);
  uint64_t version = 1;
  int dtype_code = 8;  // uint16
  std::vector<int32_t> lengths;
  std::vector<int64_t> pointers;  // empty: contiguous from the lengths
  std::vector<int64_t> documents;
  // Replace the counts written in the header (unset: the arrays' sizes).
  std::optional<uint64_t> sequence_count, document_count;
  std::string trailing;  // bytes after the arrays
};

int Width(int code) {
  switch (code) {
    case 1:
    case 2:
      return 1;
    case 3:
    case 8:
      return 2;
    case 4:
    case 7:
      return 4;
    default:
      return 8;
  }
}

std::string IndexBytes(const IndexSpec& s) {
  std::string out = s.magic;
  PutLe(out, s.version, 8);
  PutLe(out, s.dtype_code, 1);
  PutLe(out, s.sequence_count.value_or(s.lengths.size()), 8);
  PutLe(out, s.document_count.value_or(s.documents.size()), 8);
  for (int32_t l : s.lengths) PutLe(out, static_cast<uint32_t>(l), 4);
  int64_t at = 0;
  for (size_t i = 0; i < s.lengths.size(); ++i) {
    PutLe(out, s.pointers.empty() ? at : s.pointers[i], 8);
    at += int64_t{s.lengths[i]} * Width(s.dtype_code);
  }
  for (int64_t d : s.documents) PutLe(out, d, 8);
  return out + s.trailing;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Three documents of 10, 20 and 30 ids (id = position mod 200), as uint16.
IndexSpec GoodSpec() {
  IndexSpec s;
  s.lengths = {10, 20, 30};
  s.documents = {0, 1, 2, 3};
  return s;
}
std::string GoodBin(int width = 2, int64_t tokens = 60) {
  std::string out;
  for (int64_t i = 0; i < tokens; ++i) PutLe(out, i % 200, width);
  return out;
}

absl::StatusOr<MegatronIndex> Read(const IndexSpec& spec,
                                   const std::string& bin) {
  const std::string path = TempPath("t.idx");
  WriteFile(path, IndexBytes(spec));
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(fd.valid());
  return ReadMegatronIndex(fd.get(), "t.idx", bin.size(), "t.bin");
}

TEST(MegatronIndexTest, ReadsAGoodIndex) {
  auto index = Read(GoodSpec(), GoodBin());
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->dtype_code, 8);
  EXPECT_EQ(index->format.bytes, 2);
  EXPECT_FALSE(index->format.is_signed);
  EXPECT_EQ(index->sequences, 3);
  EXPECT_EQ(index->documents, 3);
  EXPECT_EQ(index->tokens, 60);

  IndexSpec int32 = GoodSpec();
  int32.dtype_code = 4;
  index = Read(int32, GoodBin(/*width=*/4));
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->format.bytes, 4);
  EXPECT_TRUE(index->format.is_signed);

  // Empty sequences and documents are allowed (lengths 0, repeated indices).
  IndexSpec sparse;
  sparse.lengths = {0, 60, 0};
  sparse.documents = {0, 0, 2, 3, 3};
  index = Read(sparse, GoodBin());
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->documents, 4);
}

// More sequences than one streaming chunk (65536): the chunks join up.
TEST(MegatronIndexTest, StreamsManySequences) {
  IndexSpec s;
  s.lengths.assign(70000, 1);
  s.lengths[69999] = 3;
  for (int64_t d = 0; d <= 70000; d += 7) s.documents.push_back(d);
  s.documents.push_back(70000);
  auto index = Read(s, GoodBin(2, 70002));
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->tokens, 70002);
  s.pointers.assign(70000, 0);
  for (int i = 0; i < 70000; ++i) s.pointers[i] = 2 * i;
  s.pointers[66000] += 2;  // in the second chunk
  index = Read(s, GoodBin(2, 70002));
  ASSERT_FALSE(index.ok());
  EXPECT_NE(index.status().message().find("sequence 66000 starts at byte"),
            absl::string_view::npos)
      << index.status();
}

struct Case {
  const char* name;
  IndexSpec spec;
  std::string bin;
  const char* message;  // a part of the error
};

TEST(MegatronIndexTest, RefusesLyingIndices) {
  std::vector<Case> cases;
  auto add = [&](const char* name, auto edit, const char* message,
                 std::string bin = GoodBin()) {
    IndexSpec s = GoodSpec();
    edit(s);
    cases.push_back({name, s, bin, message});
  };
  add(
      "bad magic",
      [](IndexSpec& s) { s.magic = std::string("TNTIDX\0\0\0", 9); },
      "does not start with");
  add(
      "bad version", [](IndexSpec& s) { s.version = 2; },
      "index version 2; only version 1");
  add(
      "float dtype", [](IndexSpec& s) { s.dtype_code = 7; },
      "dtype code 7 is float32");
  add(
      "unknown dtype", [](IndexSpec& s) { s.dtype_code = 9; },
      "unknown dtype code 9");
  add(
      "huge sequence count",
      [](IndexSpec& s) { s.sequence_count = int64_t{1} << 62; },
      "need more than 2^63");
  add(
      "sequence count beyond int64",
      [](IndexSpec& s) { s.sequence_count = ~uint64_t{0} - 1; },
      "need more than 2^63");
  add(
      "sequence count one too many", [](IndexSpec& s) { s.sequence_count = 4; },
      "has 102 bytes, but its counts (4 sequences, 4 document indices) need "
      "114");
  add(
      "document count too large", [](IndexSpec& s) { s.document_count = 5; },
      "(3 sequences, 5 document indices) need 110");
  add(
      "trailing bytes (multimodal modes)",
      [](IndexSpec& s) { s.trailing = "\x01\x01\x01"; }, "multimodal");
  add(
      "no document index",
      [](IndexSpec& s) {
        s.documents.clear();
        s.lengths = {60};
      },
      "document count 0");
  add(
      "negative length",
      [](IndexSpec& s) {
        s.lengths = {10, -20, 70};
      },
      "sequence 1 has length -20");
  add(
      "gap between sequences",
      [](IndexSpec& s) {
        s.pointers = {0, 22, 60};
      },
      "sequence 1 starts at byte 22 of the .bin, not at 20");
  add(
      "first pointer not 0",
      [](IndexSpec& s) {
        s.pointers = {2, 20, 60};
      },
      "sequence 0 starts at byte 2");
  add(
      "pointer far past the .bin",
      [](IndexSpec& s) {
        s.pointers = {0, int64_t{1} << 62, 60};
      },
      "sequence 1 starts at byte 4611686018427387904");
  add(
      "sequence past the .bin's end",
      [](IndexSpec& s) {
        s.lengths = {10, 20, 31};
      },
      "sequence 2 (length 31 at byte 60) ends past the end of 't.bin' (120 "
      "bytes)");
  add(
      "huge length past the .bin's end",
      [](IndexSpec& s) {
        s.lengths = {10, 20, 0x7fffffff};
      },
      "ends past the end");
  add(
      "a .bin longer than the index says",
      [](IndexSpec& s) {
        s.lengths = {10, 20, 29};
      },
      "'t.bin': has 120 bytes, but 't.idx' describes 59 tokens");
  add(
      "document index not from 0",
      [](IndexSpec& s) {
        s.documents = {1, 2, 3};
      },
      "document index entry 0 is 1");
  add(
      "document index decreasing",
      [](IndexSpec& s) {
        s.documents = {0, 2, 1, 3};
      },
      "document index entry 2 is 1");
  add(
      "document index beyond the sequences",
      [](IndexSpec& s) {
        s.documents = {0, 1, 4};
      },
      "document index entry 2 is 4");
  add(
      "document index short of the end",
      [](IndexSpec& s) {
        s.documents = {0, 1, 2};
      },
      "ends at sequence 2, not at the sequence count 3");
  add(
      "int32 .bin of the wrong size", [](IndexSpec& s) { s.dtype_code = 4; },
      "ends past the end");
  for (const Case& c : cases) {
    auto index = Read(c.spec, c.bin);
    ASSERT_FALSE(index.ok()) << c.name;
    EXPECT_EQ(index.status().code(), absl::StatusCode::kInvalidArgument)
        << c.name;
    EXPECT_NE(index.status().message().find("data.source: '"),
              absl::string_view::npos)
        << c.name << ": " << index.status();
    EXPECT_NE(index.status().message().find(c.message), absl::string_view::npos)
        << c.name << ": " << index.status();
  }
}

// Every truncation of a good index is refused, none crashes.
TEST(MegatronIndexTest, RefusesEveryTruncation) {
  const std::string good = IndexBytes(GoodSpec());
  const std::string bin = GoodBin();
  for (size_t n = 0; n < good.size(); ++n) {
    const std::string path = TempPath("cut.idx");
    WriteFile(path, good.substr(0, n));
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    auto index = ReadMegatronIndex(fd.get(), "cut.idx", bin.size(), "cut.bin");
    ASSERT_FALSE(index.ok()) << n;
    EXPECT_EQ(index.status().code(), absl::StatusCode::kInvalidArgument) << n;
  }
}

// Through Dataset: data.source names the .idx, the tokens come from the .bin.
TEST(MegatronDatasetTest, SamplesTheBinsTokens) {
  WriteFile(TempPath("corpus.idx"), IndexBytes(GoodSpec()));
  WriteFile(TempPath("corpus.bin"), GoodBin());
  auto d = Dataset::Open({.source = TempPath("corpus.idx")}, 256, 8);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->num_tokens(), 60);
  std::vector<int64_t> in(4 * 8), tg(4 * 8);
  ASSERT_TRUE((*d)->Fill(5, 0, 4, in.data(), tg.data()).ok());
  for (int r = 0; r < 4; ++r) {
    for (int j = 0; j < 8; ++j) EXPECT_EQ(tg[r * 8 + j], in[r * 8 + j] + 1);
  }
  // The same samples as the same tokens in a flat file: one sampling rule.
  WriteFile(TempPath("corpus_flat.u16"), GoodBin());
  auto flat = Dataset::Open({.source = TempPath("corpus_flat.u16")}, 256, 8);
  ASSERT_TRUE(flat.ok()) << flat.status();
  std::vector<int64_t> in2(4 * 8), tg2(4 * 8);
  ASSERT_TRUE((*flat)->Fill(5, 0, 4, in2.data(), tg2.data()).ok());
  EXPECT_EQ(in, in2);
  EXPECT_EQ(tg, tg2);
}

TEST(MegatronDatasetTest, OpensDescriptorsTheCallerOpened) {
  WriteFile(TempPath("fd.idx"), IndexBytes(GoodSpec()));
  WriteFile(TempPath("fd.bin"), GoodBin());
  DataFiles files{
      .file = UniqueFd(open(TempPath("fd.idx").c_str(), O_RDONLY | O_CLOEXEC)),
      .bin = UniqueFd(open(TempPath("fd.bin").c_str(), O_RDONLY | O_CLOEXEC))};
  auto d = Dataset::OpenFiles(std::move(files), {.source = "label/only.idx"},
                              256, 8);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->num_tokens(), 60);
}

TEST(MegatronDatasetTest, RefusesIdsOutsideTheVocabularyNamingTheBin) {
  WriteFile(TempPath("v.idx"), IndexBytes(GoodSpec()));
  WriteFile(TempPath("v.bin"), GoodBin());  // ids up to 59
  auto d = Dataset::Open({.source = TempPath("v.idx")}, 50, 8);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("token 50 at index 50 of '" +
                                      TempPath("v.bin") +
                                      "' is not below model.vocab (50)"),
            absl::string_view::npos)
      << d.status();

  // int32 ids may be negative in the file: refused as no id.
  IndexSpec s = GoodSpec();
  s.dtype_code = 4;
  std::string bin = GoodBin(4);
  bin.replace(4 * 33, 4, std::string("\xff\xff\xff\xff", 4));
  WriteFile(TempPath("neg.idx"), IndexBytes(s));
  WriteFile(TempPath("neg.bin"), bin);
  d = Dataset::Open({.source = TempPath("neg.idx")}, 256, 8);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("token -1 at index 33"),
            absl::string_view::npos)
      << d.status();
  EXPECT_NE(d.status().message().find("negative"), absl::string_view::npos);
}

TEST(MegatronDatasetTest, RefusesAMissingBinAndTooFewTokens) {
  WriteFile(TempPath("lonely.idx"), IndexBytes(GoodSpec()));
  auto d = Dataset::Open({.source = TempPath("lonely.idx")}, 256, 8);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("lonely.bin"), absl::string_view::npos)
      << d.status();

  WriteFile(TempPath("short.idx"), IndexBytes(GoodSpec()));
  WriteFile(TempPath("short.bin"), GoodBin());
  d = Dataset::Open({.source = TempPath("short.idx")}, 256, 60);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("holds 60 tokens; model.seq_len 60"),
            absl::string_view::npos)
      << d.status();
}

}  // namespace
}  // namespace stronghold::core
