#include "core/util/size.h"

#include <cstdint>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

using ::testing::HasSubstr;

int64_t Parse(const std::string& text) {
  absl::StatusOr<int64_t> bytes = ParseSize("gpu-memory-budget", text);
  EXPECT_TRUE(bytes.ok()) << text << ": " << bytes.status();
  return bytes.value_or(-1);
}

TEST(ParseSizeTest, PlainBytes) {
  EXPECT_EQ(Parse("0"), 0);
  EXPECT_EQ(Parse("1073741824"), 1073741824);
  EXPECT_EQ(Parse("512B"), 512);
  EXPECT_EQ(Parse(" 77 "), 77);
}

TEST(ParseSizeTest, BinarySuffixes) {
  EXPECT_EQ(Parse("1KiB"), 1024);
  EXPECT_EQ(Parse("512MiB"), 512LL << 20);
  EXPECT_EQ(Parse("8GiB"), 8LL << 30);
  EXPECT_EQ(Parse("2TiB"), 2LL << 40);
}

TEST(ParseSizeTest, DecimalSuffixes) {
  EXPECT_EQ(Parse("1KB"), 1000);
  EXPECT_EQ(Parse("3MB"), 3000000);
  EXPECT_EQ(Parse("4GB"), 4000000000LL);
  EXPECT_EQ(Parse("2TB"), 2000000000000LL);
}

TEST(ParseSizeTest, FractionsRoundToNearestByte) {
  EXPECT_EQ(Parse("1.5GiB"), 1610612736);
  EXPECT_EQ(Parse("0.5KiB"), 512);
  EXPECT_EQ(Parse("1.1KiB"), 1126);  // 1126.4
  EXPECT_EQ(Parse("2.25KB"), 2250);
}

TEST(ParseSizeTest, SuffixesIgnoreCaseAndSpace) {
  EXPECT_EQ(Parse("8gib"), 8LL << 30);
  EXPECT_EQ(Parse("8 GiB"), 8LL << 30);
  EXPECT_EQ(Parse("1kb"), 1000);
}

TEST(ParseSizeTest, LargestValue) {
  EXPECT_EQ(Parse("9223372036854775807"), std::numeric_limits<int64_t>::max());
}

TEST(ParseSizeTest, BadInputNamesTheFlag) {
  for (const std::string text :
       {"", "abc", "-1", "8G", "8XiB", "1.5", "1.", "GiB", "1.2.3MiB",
        "9223372036854775808", "99999999999TiB", "123456789012345678901"}) {
    absl::StatusOr<int64_t> bytes = ParseSize("host-memory-budget", text);
    ASSERT_FALSE(bytes.ok()) << "accepted \"" << text << "\" as " << *bytes;
    EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(bytes.status().message(), HasSubstr("--host-memory-budget"));
    EXPECT_THAT(bytes.status().message(),
                HasSubstr(absl::StrCat("\"", text, "\"")));
  }
}

}  // namespace
}  // namespace stronghold::core
