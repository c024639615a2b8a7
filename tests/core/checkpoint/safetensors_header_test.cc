// The safetensors header reader's rules (core/checkpoint/safetensors.cc):
// strict JSON through core/util/json, exactly the format's keys, offsets as
// uint64 that must lie in the data section and match the shape's bytes.
// Every refusal is DATA_LOSS naming the file.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/checkpoint/safetensors.h"
#include "core/util/file_util.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

namespace fs = std::filesystem;

std::string TestPath(const std::string& name) {
  const char* dir = getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name, ".safetensors");
}

// A file of the 8-byte length prefix, `header` and `data_bytes` zero bytes.
std::string WriteRaw(const std::string& header, size_t data_bytes) {
  std::string bytes;
  for (int i = 0; i < 8; ++i)
    bytes += static_cast<char>(uint64_t{header.size()} >> (8 * i));
  bytes += header;
  bytes.append(data_bytes, '\0');
  const std::string path = TestPath("raw");
  EXPECT_TRUE(WriteFileAtomically(path, bytes).ok());
  return path;
}

// Expects the header refused as DATA_LOSS with the path and `what`.
void ExpectRefused(const std::string& header, size_t data_bytes,
                   const std::string& what) {
  const std::string path = WriteRaw(header, data_bytes);
  auto file = ReadSafetensorsHeader(path);
  ASSERT_FALSE(file.ok()) << "accepted: " << header;
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << file.status();
  EXPECT_NE(file.status().message().find(path), absl::string_view::npos)
      << file.status();
  EXPECT_NE(file.status().message().find(what), absl::string_view::npos)
      << header << " -> " << file.status();
}

std::string Entry(const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return absl::StrCat(R"({"x": {"dtype": ")", dtype, R"(", "shape": )", shape,
                      R"(, "data_offsets": )", offsets, "}}");
}

TEST(SafetensorsHeaderTest, WriterQuotesNamesAndMetadata) {
  const std::string path = TestPath("quoted");
  std::vector<float> x(6, 2.0f);
  const std::string name = "a \"quoted\" \\ name\t\xC3\xA9";
  const std::map<std::string, std::string> metadata = {{"k\"ey", "va\\lue\n"}};
  ASSERT_TRUE(
      WriteSafetensors(path, {{name, {2, 3}, x.data()}}, metadata).ok());
  auto file = ReadSafetensorsHeader(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->tensors.count(name), 1u);
  EXPECT_EQ(file->tensors.at(name).shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(file->tensors.at(name).end, 24);
  EXPECT_EQ(file->metadata, metadata);
  auto back = ReadSafetensorsTensor(path, *file, name);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, x);
}

TEST(SafetensorsHeaderTest, AcceptsEveryDtypeWithMatchingBytes) {
  const std::vector<std::pair<std::string, int>> dtypes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
  for (const auto& [dtype, bytes] : dtypes) {
    const std::string path =
        WriteRaw(Entry(dtype, "[3]", absl::StrCat("[0, ", 3 * bytes, "]")), 24);
    auto file = ReadSafetensorsHeader(path);
    ASSERT_TRUE(file.ok()) << dtype << ": " << file.status();
    EXPECT_EQ(file->tensors.at("x").dtype, dtype);
  }
  // A scalar is one element; an empty tensor has no bytes.
  EXPECT_TRUE(
      ReadSafetensorsHeader(WriteRaw(Entry("F32", "[]", "[0, 4]"), 4)).ok());
  EXPECT_TRUE(
      ReadSafetensorsHeader(WriteRaw(Entry("F32", "[0, 5]", "[4, 4]"), 4))
          .ok());
  EXPECT_TRUE(ReadSafetensorsHeader(WriteRaw("{}", 0)).ok());
}

TEST(SafetensorsHeaderTest, RefusesWhatStrictJsonRefuses) {
  ExpectRefused(
      R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4],}})", 4,
      "header: invalid JSON at byte 60: expected a string key");
  ExpectRefused(
      R"({"x": {"dtype": "F32", "shape": [01], "data_offsets": [0, 4]}})", 4,
      "leading zeros");
  ExpectRefused(Entry("F32", "[1]", "[0, 4]") + "x", 4, "trailing characters");
  ExpectRefused(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                    "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                4, "duplicate key \"x\"");
  ExpectRefused("[]", 0, "the header is not an object");
}

TEST(SafetensorsHeaderTest, RefusesOffsetsThatDoNotFitInsteadOfWrapping) {
  // 2^64: not a uint64.
  ExpectRefused(
      Entry("U8", "[4]", "[18446744073709551616, 18446744073709551620]"), 4,
      "does not fit in a 64-bit unsigned integer");
  // 2^63 is a uint64, but beyond any file: refused as outside, never negative.
  ExpectRefused(
      Entry("U8", "[4]", "[9223372036854775808, 9223372036854775812]"), 4,
      "lie outside the 4 bytes of data");
  ExpectRefused(
      Entry("U8", "[0]", "[18446744073709551615, 18446744073709551615]"), 4,
      "lie outside");
  ExpectRefused(Entry("U8", "[4]", "[-1, 3]"), 4,
                "must be a non-negative integer");
  ExpectRefused(Entry("U8", "[4]", "[0, 4.0]"), 4,
                "must be a non-negative integer");
}

TEST(SafetensorsHeaderTest, RefusesOffsetsOutsideTheData) {
  ExpectRefused(Entry("F32", "[1]", "[4, 8]"), 4,
                "data_offsets [4, 8] lie outside the 4 bytes");
  ExpectRefused(Entry("F32", "[0]", "[4, 0]"), 4, "lie outside");
  ExpectRefused(Entry("F32", "[1]", "[0, 4, 8]"), 8, "needs 2 numbers");
}

TEST(SafetensorsHeaderTest, RefusesShapesThatDisagreeWithTheBytes) {
  ExpectRefused(Entry("F32", "[2]", "[0, 4]"), 8,
                "holds 4 bytes, its F32 shape needs 8");
  ExpectRefused(Entry("F32", "[4294967296, 4294967296]", "[0, 4]"), 4,
                "overflow 64 bits");
  ExpectRefused(Entry("F32", "[-1]", "[0, 4]"), 4, "shape dimension -1 < 0");
  ExpectRefused(Entry("F32", "[9223372036854775808]", "[0, 4]"), 4,
                "does not fit in a 64-bit signed integer");
  ExpectRefused(Entry("F32", "[\"1\"]", "[0, 4]"), 4, "must be a number");
}

TEST(SafetensorsHeaderTest, RefusesUnknownKeysAndDtypes) {
  ExpectRefused(Entry("F31", "[1]", "[0, 4]"), 4, "unknown dtype \"F31\"");
  ExpectRefused(
      R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "extra": 1}})",
      4, "unknown key \"extra\"");
  ExpectRefused(R"({"x": {"dtype": "F32", "shape": [1]}})", 4,
                "\"data_offsets\"");
  ExpectRefused(R"({"x": [1]})", 4,
                "tensor \"x\" (header byte 6): is an array, not an object");
  ExpectRefused(R"({"__metadata__": {"k": 1}})", 0,
                "metadata \"k\" is not a string");
  ExpectRefused(R"({"__metadata__": []})", 0,
                "\"__metadata__\" is not an object");
}

TEST(SafetensorsHeaderTest, RefusesAHeaderLongerThanTheFile) {
  std::string bytes = "\xff\xff\xff\xff\xff\xff\xff\xff{}";
  const std::string path = TestPath("long");
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  auto file = ReadSafetensorsHeader(path);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(file.status().message().find("does not fit in 10"),
            absl::string_view::npos)
      << file.status();
}

}  // namespace
}  // namespace stronghold::core
