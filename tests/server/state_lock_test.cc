#include "server/state_lock.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace stronghold::server {
namespace {

std::string TempDir(const std::string& name) {
  const std::string dir =
      absl::StrCat(testing::TempDir(), "/state_lock_", name, "_", getpid());
  std::filesystem::remove_all(dir);
  return dir;
}

std::string Contents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(StateDirLockTest, CreatesTheDirectoryAndWritesThePid) {
  const std::string dir = TempDir("create");
  absl::StatusOr<StateDirLock> lock = StateDirLock::Acquire(dir + "/nested");
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(Contents(lock->path()), absl::StrCat(getpid(), "\n"));
}

// flock(2) locks belong to the open file, so a second Acquire in the same
// process conflicts as a second daemon's would.
TEST(StateDirLockTest, SecondHolderIsRefusedNamingThePid) {
  const std::string dir = TempDir("second");
  absl::StatusOr<StateDirLock> first = StateDirLock::Acquire(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<StateDirLock> second = StateDirLock::Acquire(dir);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find(absl::StrCat("pid ", getpid())),
            std::string::npos)
      << second.status();
  EXPECT_NE(second.status().message().find("--state_dir"), std::string::npos);
  // The refused attempt leaves the holder's pid in place.
  EXPECT_EQ(Contents(first->path()), absl::StrCat(getpid(), "\n"));
}

TEST(StateDirLockTest, ReleasedWhenDestroyed) {
  const std::string dir = TempDir("release");
  {
    absl::StatusOr<StateDirLock> first = StateDirLock::Acquire(dir);
    ASSERT_TRUE(first.ok()) << first.status();
    StateDirLock moved =
        *std::move(first);  // the moved-from one releases nothing
  }
  EXPECT_TRUE(StateDirLock::Acquire(dir).ok());
}

TEST(StateDirLockTest, AStaleFileDoesNotBlock) {
  const std::string dir = TempDir("stale");
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/" + kStateLockFile) << "999999\n";
  EXPECT_TRUE(StateDirLock::Acquire(dir).ok());
}

TEST(StateDirLockTest, SymlinkIsNotFollowed) {
  const std::string dir = TempDir("symlink");
  std::filesystem::create_directories(dir);
  const std::string target = dir + "/target";
  std::ofstream(target) << "precious";
  std::filesystem::create_symlink(target, dir + "/" + kStateLockFile);
  absl::StatusOr<StateDirLock> lock = StateDirLock::Acquire(dir);
  EXPECT_FALSE(lock.ok());
  EXPECT_EQ(Contents(target), "precious");
}

}  // namespace
}  // namespace stronghold::server
