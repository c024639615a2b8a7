// The daemon's answer for the paths a spec names: inside the roots they
// open; otherwise (outside, "..", a symlink escaping, not found, unreadable,
// not a file / directory) one PERMISSION_DENIED naming the field and the
// roots, byte for byte the same whatever the path, and nothing of the file.
#include "server/path_confinement.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/job_manager_test_util.h"

namespace stronghold::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// An empty directory of the test's own.
std::string Scratch(const std::string& name) {
  const std::string dir = StateDir(name);
  fs::create_directories(dir);
  return dir;
}

core::JobConfig WithData(const std::string& source) {
  core::JobConfig c;
  c.data.source = source;
  return c;
}

core::JobConfig WithSsd(const std::string& dir) {
  core::JobConfig c;
  c.offload.ssd_dirs = {dir};
  return c;
}

class PathConfinementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = Scratch("path_confinement");
    data_ = base_ + "/data";
    ssd_ = base_ + "/ssd";
    fs::create_directories(data_ + "/sub");
    fs::create_directories(ssd_ + "/nvme0");
    // The secret outside: a token file whose first id and size must not leak.
    std::ofstream(base_ + "/secret.u16")
        << std::string("\x39\x7a", 2) << std::string(12343, 'q');
    std::ofstream(data_ + "/tokens.u16") << "abcd";
    fs::create_symlink(base_ + "/secret.u16", data_ + "/absolute_link.u16");
    fs::create_symlink("../secret.u16", data_ + "/relative_link.u16");
    fs::create_symlink("/dev/shm", ssd_ + "/shm");
    fs::permissions(base_, fs::perms::owner_all | fs::perms::group_exec |
                               fs::perms::others_exec);
    for (const std::string& d : {data_, data_ + "/sub", ssd_}) {
      fs::permissions(d, fs::perms::owner_all | fs::perms::group_all |
                             fs::perms::others_read | fs::perms::others_exec);
    }
    auto paths =
        PathConfinement::Open({.data_roots = {data_}, .ssd_roots = {ssd_}});
    ASSERT_TRUE(paths.ok()) << paths.status();
    paths_ = *std::move(paths);
  }

  std::string Refusal(const core::JobConfig& config) {
    auto files = paths_.OpenJobFiles(config);
    EXPECT_EQ(files.status().code(), absl::StatusCode::kPermissionDenied)
        << files.status();
    return std::string(files.status().message());
  }

  std::string base_, data_, ssd_;
  PathConfinement paths_;
};

TEST_F(PathConfinementTest, OpensWhatIsInsideTheRoots) {
  for (const std::string& source :
       {std::string("tokens.u16"), data_ + "/tokens.u16"}) {
    auto files = paths_.OpenJobFiles(WithData(source));
    ASSERT_TRUE(files.ok()) << source << ": " << files.status();
    char buf[4];
    EXPECT_EQ(pread(files->data.get(), buf, 4, 0), 4);
    EXPECT_EQ(files->data_path, data_ + "/tokens.u16");
    EXPECT_EQ(files->Named(WithData(source)).data.source,
              data_ + "/tokens.u16");
  }
  for (const std::string& dir : {std::string("nvme0"), ssd_ + "/nvme0", ssd_}) {
    auto files = paths_.OpenJobFiles(WithSsd(dir));
    ASSERT_TRUE(files.ok()) << dir << ": " << files.status();
    ASSERT_EQ(files->ssd_dirs.size(), 1u);
    EXPECT_TRUE(files->ssd_dirs[0].valid());
  }
  auto builtin = paths_.OpenJobFiles(WithData("builtin"));
  ASSERT_TRUE(builtin.ok());
  EXPECT_FALSE(builtin->data.valid());
}

// A Megatron index opens its .bin beside it as opened; a missing or escaping
// .bin gets the same refusal as a missing index, which names the pair.
TEST_F(PathConfinementTest, OpensAnIndexWithItsBinBesideIt) {
  std::ofstream(data_ + "/sub/corpus.idx") << "index";
  std::ofstream(data_ + "/sub/corpus.bin") << "tokens";
  auto files = paths_.OpenJobFiles(WithData("sub/corpus.idx"));
  ASSERT_TRUE(files.ok()) << files.status();
  char buf[6];
  EXPECT_EQ(pread(files->data.get(), buf, 5, 0), 5);
  EXPECT_EQ(std::string(buf, 5), "index");
  ASSERT_TRUE(files->data_bin.valid());
  EXPECT_EQ(pread(files->data_bin.get(), buf, 6, 0), 6);
  EXPECT_EQ(std::string(buf, 6), "tokens");
  EXPECT_EQ(files->Named(WithData("sub/corpus.idx")).data.source,
            data_ + "/sub/corpus.idx");
  // A flat file has no .bin.
  EXPECT_FALSE(paths_.OpenJobFiles(WithData("tokens.u16"))->data_bin.valid());

  std::ofstream(data_ + "/lonely.idx") << "index";
  std::ofstream(data_ + "/escaping.idx") << "index";
  fs::create_symlink(base_ + "/secret.u16", data_ + "/escaping.bin");
  const std::string expected = Refusal(WithData("missing.idx"));
  EXPECT_THAT(expected, HasSubstr("data.source: must name a readable regular "
                                  "file (and its .bin beside it)"));
  for (const char* source : {"lonely.idx", "escaping.idx"}) {
    EXPECT_EQ(Refusal(WithData(source)), expected) << source;
  }
}

TEST_F(PathConfinementTest,
       EveryRefusalOfDataSourceIsTheSameAndRevealsNothing) {
  // Made unreadable to the daemon by running the check as another user
  // (as root nothing is unreadable), or by its mode when not root.
  std::ofstream(data_ + "/unreadable.u16") << "zzzz";
  fs::permissions(data_ + "/unreadable.u16", fs::perms::none);
  const std::string expected = Refusal(WithData("/nonexistent/tokens.u16"));
  EXPECT_THAT(expected, HasSubstr("data.source"));
  EXPECT_THAT(expected, HasSubstr(data_));
  EXPECT_THAT(expected, HasSubstr("--data_root"));
  for (const std::string& source :
       {base_ + "/secret.u16", std::string("/etc/shadow"),
        std::string("../secret.u16"), data_ + "/../secret.u16",
        std::string("absolute_link.u16"), std::string("relative_link.u16"),
        std::string("missing.u16"), std::string("sub"),
        "/proc/self/root" + base_ + "/secret.u16",
        std::string("sub/../../secret.u16")}) {
    const std::string message = Refusal(WithData(source));
    EXPECT_EQ(message, expected) << source;
  }
  std::string unreadable;
  if (geteuid() != 0) {
    unreadable = Refusal(WithData("unreadable.u16"));
  } else {
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(pipe_fds[0]);
      if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
      auto files = paths_.OpenJobFiles(WithData("unreadable.u16"));
      const std::string text =
          files.ok() ? "OPENED" : std::string(files.status().message());
      if (write(pipe_fds[1], text.data(), text.size()) < 0) _exit(3);
      _exit(files.status().code() == absl::StatusCode::kPermissionDenied ? 0
                                                                         : 1);
    }
    close(pipe_fds[1]);
    char buf[4096];
    ssize_t n;
    while ((n = read(pipe_fds[0], buf, sizeof(buf))) > 0)
      unreadable.append(buf, n);
    close(pipe_fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << status << " " << unreadable;
  }
  EXPECT_EQ(unreadable, expected);
  // Nothing of the secret: its first token (0x7a39 = 31289), its size.
  EXPECT_THAT(expected, Not(HasSubstr("31289")));
  EXPECT_THAT(expected, Not(HasSubstr("12345")));
  EXPECT_THAT(expected, Not(HasSubstr("secret")));
}

TEST_F(PathConfinementTest, EveryRefusalOfAnSsdDirIsTheSame) {
  const std::string expected = Refusal(WithSsd("/dev/shm"));
  EXPECT_THAT(expected, HasSubstr("offload.ssd_dirs[0]"));
  EXPECT_THAT(expected, HasSubstr(ssd_));
  EXPECT_THAT(expected, HasSubstr("--ssd_root"));
  for (const std::string& dir :
       {std::string("shm"), ssd_ + "/shm", std::string("/tmp"),
        std::string("missing"), std::string(".."), data_}) {
    EXPECT_EQ(Refusal(WithSsd(dir)), expected) << dir;
  }
  core::JobConfig second = WithSsd("nvme0");
  second.offload.ssd_dirs.push_back("/dev/shm");
  EXPECT_THAT(Refusal(second), HasSubstr("offload.ssd_dirs[1]"));
}

TEST(PathConfinementDefaultsTest, WithoutRootsOnlyBuiltinDataAndNoTier) {
  PathConfinement none;
  EXPECT_TRUE(none.OpenJobFiles(WithData("builtin")).ok());
  auto data = none.OpenJobFiles(WithData("/etc/passwd"));
  EXPECT_EQ(data.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(data.status().message()),
              HasSubstr("data.source: token files are disabled"));
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("--data_root"));
  auto ssd = none.OpenJobFiles(WithSsd("/tmp"));
  EXPECT_EQ(ssd.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(ssd.status().message()),
              HasSubstr("NVMe tier is disabled"));
}

TEST(PathConfinementDefaultsTest, BadRootsAreRefusedNamingTheFlag) {
  const std::string base = Scratch("path_confinement_roots");
  std::ofstream(base + "/file") << "x";
  auto relative = PathConfinement::Open({.data_roots = {"data"}});
  EXPECT_EQ(relative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(relative.status().message()),
              HasSubstr("--data_root"));
  auto file = PathConfinement::Open({.ssd_roots = {base + "/file"}});
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("--ssd_root"));
}

}  // namespace
}  // namespace stronghold::server
