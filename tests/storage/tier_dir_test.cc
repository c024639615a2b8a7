// A job's private tier directory: created 0700 under its name pattern,
// files created O_EXCL | O_NOFOLLOW (a planted symlink is neither followed
// nor truncated), everything removed at the end; the start-up scan removes
// the directories of processes that are gone and leaves live ones alone.
#include "storage/tier_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "gtest/gtest.h"
#include "storage/aligned_buffer.h"
#include "storage/block_device_factory.h"
#include "tests/storage/test_devices.h"

namespace stronghold::storage {
namespace {

namespace fs = std::filesystem;

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string Contents(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(TierDirTest, IsPrivateNamedForItsJobAndRemovedWithItsFiles) {
  const std::string parent = testing::MakeTempDir("tier_private");
  std::string path;
  {
    auto dir = TierDir::Create(parent, /*job_id=*/42);
    ASSERT_TRUE(dir.ok()) << dir.status();
    path = (*dir)->path();
    const std::string name = fs::path(path).filename();
    EXPECT_EQ(name.rfind("stronghold-job-42-", 0), 0u) << name;
    EXPECT_TRUE(IsTierDirName(name)) << name;
    struct stat st;
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700);
    const int fd = (*dir)->CreateFile("tier.0", 0);
    ASSERT_GE(fd, 0) << strerror(-fd);
    close(fd);
    EXPECT_TRUE(fs::exists(path + "/tier.0"));
    auto other = TierDir::Create(parent, 42);
    ASSERT_TRUE(other.ok());
    EXPECT_NE((*other)->path(), path) << "each tier gets its own directory";
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::is_empty(parent));
}

// A symlink someone planted where a tier file goes: refused, and what it
// points to is neither opened nor truncated.
TEST(TierDirTest, APlantedSymlinkIsNeitherFollowedNorTruncated) {
  const std::string parent = testing::MakeTempDir("tier_planted");
  const std::string victim = parent + "/victim";
  Write(victim, "precious");
  auto dir = TierDir::Create(parent, 7);
  ASSERT_TRUE(dir.ok()) << dir.status();
  fs::create_symlink(victim, (*dir)->path() + "/tier.0");
  EXPECT_EQ((*dir)->CreateFile("tier.0", 0), -EEXIST);
  EXPECT_EQ(Contents(victim), "precious");
}

// Through the block device as the trainer opens it: symlinks planted at
// every name the old layout used (<dir>/<file>.<index>) touch nothing.
TEST(TierDirTest, TheDeviceNeverWritesThroughPlantedSymlinks) {
  const std::string parent = testing::MakeTempDir("tier_device");
  const std::string victim =
      testing::MakeTempDir("tier_device_victim") + "/victim";
  Write(victim, "precious");
  for (const char* name : {"tier.0", "test.blk.0", "tier"}) {
    fs::create_symlink(victim, parent + "/" + name);
  }
  FileBlockDeviceOptions options({parent}, 1 << 20);
  options.block_bytes = 64 << 10;
  options.file_name = "test.blk";
  options.job_id = 3;
  {
    auto device = OpenFileBlockDevice(options);
    ASSERT_TRUE(device.ok()) << device.status();
    AlignedBuffer data(64 << 10);
    std::memset(data.data(), 'x', data.size());
    ASSERT_TRUE((*device)->Write(0, data.data(), data.size()).ok());
    const std::string file = (*device)->Locate(0).file;
    EXPECT_TRUE(IsTierDirName(fs::path(file).parent_path().filename().string()))
        << file;
    EXPECT_EQ(fs::path(file).parent_path().parent_path(), fs::path(parent))
        << file;
  }
  EXPECT_EQ(Contents(victim), "precious");
  int left = 0;
  for (const auto& e : fs::directory_iterator(parent))
    left += e.is_symlink() ? 0 : 1;
  EXPECT_EQ(left, 0) << "the tier directory is removed with the device";
}

TEST(TierDirTest, StartupScanRemovesLeftoversOnly) {
  const std::string root = testing::MakeTempDir("tier_scan");
  const std::string outside = testing::MakeTempDir("tier_scan_outside");
  // Leftovers of a killed process: at the top and two levels down.
  const std::string top = root + "/stronghold-job-3-0123456789ab";
  const std::string deep = root + "/nvme0/a/stronghold-job-12-ba9876543210";
  for (const std::string& d : {top, deep}) {
    fs::create_directories(d);
    Write(d + "/tier.0", "stale");
  }
  // Not ours by name, or reached only through a symlink: left alone.
  const std::string unlike = root + "/stronghold-job-x-0123456789ab";
  fs::create_directories(unlike);
  const std::string behind_link = outside + "/stronghold-job-4-0123456789ab";
  fs::create_directories(behind_link);
  fs::create_directory_symlink(outside, root + "/link");
  // A running job's: locked.
  auto live = TierDir::Create(root, 5);
  ASSERT_TRUE(live.ok()) << live.status();

  const int root_fd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(root_fd, 0);
  auto removed = RemoveStaleTierDirs(root_fd, root);
  close(root_fd);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 2);
  EXPECT_FALSE(fs::exists(top));
  EXPECT_FALSE(fs::exists(deep));
  EXPECT_TRUE(fs::exists(root + "/nvme0/a"));
  EXPECT_TRUE(fs::exists(unlike));
  EXPECT_TRUE(fs::exists(behind_link));
  EXPECT_TRUE(fs::exists((*live)->path()));
}

TEST(TierDirTest, RecognisesOnlyItsOwnNames) {
  EXPECT_TRUE(IsTierDirName("stronghold-job-1-0123456789ab"));
  for (const char* name :
       {"stronghold-job--0123456789ab", "stronghold-job-1-0123456789a",
        "stronghold-job-1-0123456789AB", "stronghold-job-1x-0123456789ab",
        "stronghold-1-0123456789ab", "stronghold-job-1-0123456789abc",
        "stronghold-job-1-0123456789ag"}) {
    EXPECT_FALSE(IsTierDirName(name)) << name;
  }
}

}  // namespace
}  // namespace stronghold::storage
