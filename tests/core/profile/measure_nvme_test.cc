// The NVMe tier's bandwidth measurement (core/profile/measure_nvme.h): real
// files in the test's temporary directories, through the tier's own block
// devices.
#include "core/profile/measure_nvme.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

std::string FreshDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir =
      std::string(tmp != nullptr ? tmp : "/tmp") + "/measure_nvme_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

bool Empty(const std::string& dir) {
  return std::filesystem::directory_iterator(dir) ==
         std::filesystem::directory_iterator();
}

TEST(MeasureNvmeTest, MeasuresBothDirectionsAndLeavesNothingBehind) {
  const std::string a = FreshDir("a"), b = FreshDir("b");
  NvmeMeasureOptions options;
  options.dirs = {a, b};
  options.bytes = int64_t{8} << 20;
  absl::StatusOr<NvmeFigures> f = MeasureNvme(options);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_GT(f->read_gbps, 0);
  EXPECT_GT(f->write_gbps, 0);
  // Names how it was measured, so a profile says where its figure is from.
  EXPECT_EQ(f->source.rfind("measured: ", 0), 0u) << f->source;
  EXPECT_NE(f->source.find("2 file(s)"), std::string::npos) << f->source;
  EXPECT_NE(f->source.find("8 MiB"), std::string::npos) << f->source;
  EXPECT_NE(f->source.find(a), std::string::npos) << f->source;
  // The private tier directories are gone with the device.
  EXPECT_TRUE(Empty(a));
  EXPECT_TRUE(Empty(b));
}

TEST(MeasureNvmeTest, AMissingDirectoryIsNamed) {
  NvmeMeasureOptions options;
  options.dirs = {FreshDir("missing") + "/not-there"};
  options.bytes = int64_t{1} << 20;
  absl::StatusOr<NvmeFigures> f = MeasureNvme(options);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("not-there"), std::string::npos)
      << f.status();
  EXPECT_NE(f.status().message().find("measuring the NVMe tier"),
            std::string::npos)
      << f.status();
}

TEST(MeasureNvmeTest, OptionsOutOfRangeAreRefusedByName) {
  NvmeMeasureOptions options;
  EXPECT_EQ(MeasureNvme(options).status().code(),
            absl::StatusCode::kInvalidArgument);  // no directory
  options.dirs = {FreshDir("range")};
  options.bytes = 4096;  // less than one block
  absl::StatusOr<NvmeFigures> f = MeasureNvme(options);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("bytes 4096"), std::string::npos)
      << f.status();
  options.bytes = int64_t{1} << 20;
  options.block_bytes = 1000;
  f = MeasureNvme(options);
  EXPECT_NE(f.status().message().find("block_bytes 1000"), std::string::npos)
      << f.status();
  options.block_bytes = 4096;
  options.queue_depth = 0;
  EXPECT_EQ(MeasureNvme(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace stronghold::core
