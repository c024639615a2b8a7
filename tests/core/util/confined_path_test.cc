// Paths resolved beneath a root: inside, outside, "..", symlinks (absolute,
// relative, inside-only), /proc/self/root and /proc/self/fd, FIFOs, the
// working directory; each through openat2 and through the O_NOFOLLOW walk,
// which must refuse exactly the same paths.
#include "core/util/confined_path.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

namespace fs = std::filesystem;

std::string Scratch(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const fs::path dir = fs::path(tmp != nullptr ? tmp : "/tmp") / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string Read(int fd) {
  char buf[64] = {};
  const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  return n > 0 ? std::string(buf, n) : "";
}

// <base>/root: a.u16, sub/b.u16, symlinks of every kind, a FIFO;
// <base>/outside.u16 and <base>/outdir/ beside it.
class ConfinedPathTest : public ::testing::TestWithParam<BeneathMethod> {
 protected:
  void SetUp() override {
    base_ = Scratch(absl::StrCat("confined_", static_cast<int>(GetParam())));
    root_ = base_ + "/root";
    fs::create_directories(root_ + "/sub");
    fs::create_directories(base_ + "/outdir");
    Write(root_ + "/a.u16", "inside");
    Write(root_ + "/sub/b.u16", "deeper");
    Write(base_ + "/outside.u16", "SECRET");
    Write(base_ + "/outdir/c.u16", "SECRET");
    fs::create_symlink(base_ + "/outside.u16", root_ + "/absolute_link");
    fs::create_symlink("../outside.u16", root_ + "/relative_link");
    fs::create_symlink("a.u16", root_ + "/inner_link");
    fs::create_symlink(base_ + "/outdir", root_ + "/dir_link");
    fs::create_symlink("/proc/self/root" + base_ + "/outside.u16",
                       root_ + "/proc_link");
    fs::create_symlink("/proc/self/cwd", root_ + "/cwd_link");
    ASSERT_EQ(mkfifo((root_ + "/fifo").c_str(), 0600), 0);
    if (GetParam() == BeneathMethod::kOpenat2) {
      const int fd = open(root_.c_str(), O_PATH | O_DIRECTORY);
      auto probe = OpenBeneath(fd, "a.u16", EntryKind::kRegularFile,
                               BeneathMethod::kOpenat2);
      close(fd);
      if (probe.status().code() == absl::StatusCode::kUnimplemented) {
        GTEST_SKIP()
            << "this kernel has no openat2(2); the walk is tested instead";
      }
    }
    auto roots = ConfinedRoots::Open({root_}, GetParam());
    ASSERT_TRUE(roots.ok()) << roots.status();
    roots_ = *std::move(roots);
  }

  absl::StatusOr<ConfinedRoots::Opened> File(const std::string& path) {
    return roots_.Open(path, EntryKind::kRegularFile);
  }

  std::string base_, root_;
  ConfinedRoots roots_;
};

TEST_P(ConfinedPathTest, OpensFilesInsideTheRootRelativeOrAbsolute) {
  for (const std::string& path :
       {std::string("a.u16"), root_ + "/a.u16", std::string("./a.u16"),
        root_ + "//./a.u16"}) {
    auto f = File(path);
    ASSERT_TRUE(f.ok()) << path << ": " << f.status();
    EXPECT_EQ(Read(f->fd.get()), "inside") << path;
    EXPECT_EQ(f->path, root_ + "/a.u16");
  }
  auto deeper = File("sub/b.u16");
  ASSERT_TRUE(deeper.ok()) << deeper.status();
  EXPECT_EQ(Read(deeper->fd.get()), "deeper");
}

TEST_P(ConfinedPathTest, RefusesPathsOutsideEveryRoot) {
  for (const std::string& path :
       {base_ + "/outside.u16", std::string("/etc/passwd"),
        base_ + "/root_sibling/a.u16", root_ + "x/a.u16"}) {
    auto f = File(path);
    EXPECT_EQ(f.status().code(), absl::StatusCode::kPermissionDenied)
        << path << f.status();
  }
}

TEST_P(ConfinedPathTest, RefusesDotDotAnywhere) {
  for (const std::string& path :
       {std::string("../outside.u16"), root_ + "/../outside.u16",
        std::string("sub/../a.u16"), std::string("sub/.."),
        root_ + "/sub/../../outside.u16"}) {
    auto f = File(path);
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument)
        << path << f.status();
  }
}

TEST_P(ConfinedPathTest, FollowsNoSymlinkEscapingOrNot) {
  for (const char* link : {"absolute_link", "relative_link", "inner_link",
                           "proc_link", "dir_link/c.u16", "cwd_link/a.u16"}) {
    for (const std::string& path : {std::string(link), root_ + "/" + link}) {
      auto f = File(path);
      ASSERT_FALSE(f.ok()) << path << " opened";
      EXPECT_EQ(f.status().code(), absl::StatusCode::kPermissionDenied)
          << path << f.status();
    }
  }
  auto dir = roots_.Open("dir_link", EntryKind::kDirectory);
  EXPECT_FALSE(dir.ok());
}

TEST_P(ConfinedPathTest, RefusesProcSelfTricks) {
  const int root_fd = roots_.roots()[0].fd.get();
  for (const std::string& path :
       {"/proc/self/root" + base_ + "/outside.u16",
        "/proc/self/root" + root_ + "/a.u16",
        absl::StrCat("/proc/self/fd/", root_fd, "/a.u16"),
        absl::StrCat("/proc/", getpid(), "/root", base_, "/outside.u16")}) {
    auto f = File(path);
    EXPECT_EQ(f.status().code(), absl::StatusCode::kPermissionDenied)
        << path << f.status();
  }
}

TEST_P(ConfinedPathTest, RelativePathsAreNotRelativeToTheWorkingDirectory) {
  const std::string cwd =
      Scratch(absl::StrCat("confined_cwd_", static_cast<int>(GetParam())));
  Write(cwd + "/only_here.u16", "SECRET");
  const fs::path before = fs::current_path();
  fs::current_path(cwd);
  auto f = File("only_here.u16");
  fs::current_path(before);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound) << f.status();
}

TEST_P(ConfinedPathTest, OpensRegularFilesOnlyAndAFifoDoesNotBlock) {
  EXPECT_EQ(File("fifo").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(File("sub").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(File("missing.u16").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(File("a.u16/x").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(File(std::string("a.u16\0/../../x", 14)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(ConfinedPathTest, OpensDirectoriesIncludingTheRootItself) {
  for (const std::string& path : {std::string("sub"), root_ + "/sub",
                                  std::string("."), std::string(""), root_}) {
    auto d = roots_.Open(path, EntryKind::kDirectory);
    ASSERT_TRUE(d.ok()) << path << ": " << d.status();
    struct stat st;
    ASSERT_EQ(fstatat(d->fd.get(),
                      path.find("sub") != std::string::npos ? "b.u16" : "a.u16",
                      &st, 0),
              0)
        << path;
  }
  EXPECT_FALSE(roots_.Open("a.u16", EntryKind::kDirectory).ok());
  EXPECT_FALSE(roots_.Open("fifo", EntryKind::kDirectory).ok());
}

TEST_P(ConfinedPathTest, AnAbsolutePathMayNameTheRootAsGivenOrAsResolved) {
  const std::string alias = base_ + "/alias";
  fs::create_directory_symlink(root_, alias);
  auto roots = ConfinedRoots::Open({alias}, GetParam());
  ASSERT_TRUE(roots.ok()) << roots.status();
  for (const std::string& path :
       {alias + "/a.u16", root_ + "/a.u16", std::string("a.u16")}) {
    auto f = roots->Open(path, EntryKind::kRegularFile);
    ASSERT_TRUE(f.ok()) << path << ": " << f.status();
    EXPECT_EQ(Read(f->fd.get()), "inside");
  }
}

TEST_P(ConfinedPathTest, RelativePathsAreTriedInEveryRootInOrder) {
  const std::string second = base_ + "/second";
  fs::create_directories(second);
  Write(second + "/only_second.u16", "second");
  auto roots = ConfinedRoots::Open({root_, second}, GetParam());
  ASSERT_TRUE(roots.ok()) << roots.status();
  auto f = roots->Open("only_second.u16", EntryKind::kRegularFile);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->path, second + "/only_second.u16");
  EXPECT_EQ(roots->Describe(), root_ + ", " + second);
}

INSTANTIATE_TEST_SUITE_P(BothResolvers, ConfinedPathTest,
                         ::testing::Values(BeneathMethod::kOpenat2,
                                           BeneathMethod::kWalk),
                         [](const auto& info) {
                           return info.param == BeneathMethod::kOpenat2
                                      ? "openat2"
                                      : "walk";
                         });

TEST(ConfinedRootsTest, RefusesRootsThatAreNotAbsoluteDirectories) {
  const std::string base = Scratch("confined_roots");
  Write(base + "/file", "x");
  for (const std::string& root :
       {std::string("relative/dir"), std::string(""),
        base + "/../confined_roots", base + "/missing"}) {
    EXPECT_FALSE(ConfinedRoots::Open({root}).ok()) << root;
  }
  EXPECT_FALSE(ConfinedRoots::Open({base + "/file"}).ok());
  ConfinedRoots none;
  EXPECT_EQ(none.Open("a.u16", EntryKind::kRegularFile).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(none.Describe(), "none");
}

}  // namespace
}  // namespace stronghold::core
