// The file backends' specifics: backend selection and its report for
// metrics, striping layout on disk, preallocation and clean-up, option
// validation, and file systems without O_DIRECT.
#include "storage/block_device_factory.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/aligned_buffer.h"
#include "storage/uring_block_device.h"
#include "tests/storage/test_devices.h"

namespace stronghold::storage {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kBlock = 64 << 10;

FileBlockDeviceOptions Options(std::vector<std::string> dirs,
                               int64_t capacity) {
  FileBlockDeviceOptions options(std::move(dirs), capacity);
  options.block_bytes = kBlock;
  options.queue_depth = 4;
  options.file_name = "test.blk";
  return options;
}

TEST(BlockDeviceFactoryTest, AutoPicksIoUringWhereItWorksAndSaysSo) {
  const std::string dir = testing::MakeTempDir("auto");
  auto device = OpenFileBlockDevice(Options({dir}, 1 << 20));
  ASSERT_TRUE(device.ok()) << device.status();
  const absl::string_view expected = ProbeIoUring().ok() ? "io_uring" : "pread";
  EXPECT_EQ((*device)->backend(), expected);
  EXPECT_EQ(ActiveFileBackend(), expected);
  FileBlockDeviceOptions pread = Options({dir}, 1 << 20);
  pread.backend = FileBackend::kPread;
  pread.file_name = "pread.blk";
  auto fallback = OpenFileBlockDevice(pread);
  ASSERT_TRUE(fallback.ok()) << fallback.status();
  EXPECT_EQ((*fallback)->backend(), "pread");
  EXPECT_EQ(ActiveFileBackend(), "pread");
}

// Makes io_uring_setup fail with EPERM in this process, as container
// runtimes' seccomp profiles do.
void ForbidIoUring() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program = {static_cast<unsigned short>(std::size(filter)), filter};
  CHECK_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
  CHECK_EQ(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program), 0);
}

TEST(BlockDeviceFactoryTest, FallsBackToPreadWithOneWarning) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string dir = testing::MakeTempDir("fallback");
  // In a child process: the probe's verdict is cached per process.
  EXPECT_EXIT(
      {
        ForbidIoUring();
        FLAGS_logtostderr = true;
        ::testing::internal::CaptureStderr();
        bool ok = true;
        for (int i = 0; i < 2; ++i) {
          FileBlockDeviceOptions options = Options({dir}, 1 << 20);
          options.file_name = absl::StrCat("fallback", i);
          auto device = OpenFileBlockDevice(options);
          ok = ok && device.ok() && (*device)->backend() == "pread";
          AlignedBuffer data(kBlock);
          ok = ok && (*device)->Write(0, data.data(), kBlock).ok();
        }
        ok = ok && ActiveFileBackend() == "pread";
        FileBlockDeviceOptions forced = Options({dir}, 1 << 20);
        forced.backend = FileBackend::kIoUring;
        ok = ok && !OpenFileBlockDevice(forced).ok();
        const std::string log = ::testing::internal::GetCapturedStderr();
        int warnings = 0;
        for (size_t at = 0;
             (at = log.find("io_uring is not usable", at)) != std::string::npos;
             ++at) {
          ++warnings;
        }
        std::fprintf(stderr, "%d warning(s), ok=%d\n", warnings, ok);
        std::exit(ok && warnings == 1 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "1 warning\\(s\\), ok=1");
}

TEST(BlockDeviceFactoryTest, StripesBlocksRoundRobinOverTheFiles) {
  const std::string a = testing::MakeTempDir("stripe_a");
  const std::string b = testing::MakeTempDir("stripe_b");
  // Capacity 5 blocks over 2 files: 3 blocks each, 6 in all.
  auto device = OpenFileBlockDevice(Options({a, b}, 5 * kBlock));
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ((*device)->capacity(), 6 * kBlock);
  // Each file in the job's private directory under its entry.
  const std::string file_a = (*device)->Locate(0).file;
  const std::string file_b = (*device)->Locate(kBlock).file;
  EXPECT_EQ(std::filesystem::path(file_a).parent_path().parent_path(), a);
  EXPECT_EQ(std::filesystem::path(file_a).filename(), "test.blk.0");
  EXPECT_EQ(std::filesystem::path(file_b).parent_path().parent_path(), b);
  EXPECT_EQ(std::filesystem::path(file_b).filename(), "test.blk.1");
  EXPECT_EQ(std::filesystem::file_size(file_a), 3 * kBlock);
  EXPECT_EQ(std::filesystem::file_size(file_b), 3 * kBlock);
  AlignedBuffer data(6 * kBlock);
  for (int block = 0; block < 6; ++block) {
    std::memset(data.data() + block * kBlock, 'A' + block, kBlock);
  }
  ASSERT_TRUE((*device)->Write(0, data.data(), data.size()).ok());
  ASSERT_TRUE((*device)->Sync().ok());
  // Device block 3 is the second block of file 1.
  const int fd = open(file_b.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char c = 0;
  ASSERT_EQ(pread(fd, &c, 1, kBlock + 17), 1);
  close(fd);
  EXPECT_EQ(c, 'A' + 3);
  // Locate() says the same (error messages of wrappers rely on it).
  const IoLocation where = (*device)->Locate(3 * kBlock + 17);
  EXPECT_EQ(where.file, file_b);
  EXPECT_EQ(where.offset, kBlock + 17);
  EXPECT_EQ(where.file_bytes, 3 * kBlock);
  EXPECT_EQ((*device)->Locate(4 * kBlock).file, file_a);
  device->reset();
  EXPECT_TRUE(std::filesystem::is_empty(a))
      << "the files and their directories are removed";
  EXPECT_TRUE(std::filesystem::is_empty(b));
}

TEST(BlockDeviceFactoryTest, RejectsBadOptions) {
  const std::string dir = testing::MakeTempDir("bad");
  EXPECT_EQ(OpenFileBlockDevice(Options({}, 1 << 20)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenFileBlockDevice(Options({dir}, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  FileBlockDeviceOptions odd_block = Options({dir}, 1 << 20);
  odd_block.block_bytes = 1000;
  EXPECT_EQ(OpenFileBlockDevice(odd_block).status().code(),
            absl::StatusCode::kInvalidArgument);
  FileBlockDeviceOptions no_queue = Options({dir}, 1 << 20);
  no_queue.queue_depth = 0;
  EXPECT_EQ(OpenFileBlockDevice(no_queue).status().code(),
            absl::StatusCode::kInvalidArgument);
  const absl::Status missing =
      OpenFileBlockDevice(Options({dir + "/no/such/dir"}, 1 << 20)).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr(dir + "/no/such/dir"));
}

// tmpfs refuses O_DIRECT before Linux 6.6; either way the device works.
TEST(BlockDeviceFactoryTest, WorksOnTmpfsWithOrWithoutODirect) {
  if (!std::filesystem::is_directory("/dev/shm")) GTEST_SKIP() << "no tmpfs";
  const std::string dir = absl::StrCat("/dev/shm/stronghold-test-", getpid());
  std::filesystem::create_directories(dir);
  const std::string probe = dir + "/probe";
  const int fd = open(probe.c_str(), O_RDWR | O_CREAT | O_DIRECT, 0600);
  const bool direct = fd >= 0;
  if (fd >= 0) close(fd);
  {
    auto device = OpenFileBlockDevice(Options({dir}, 1 << 20));
    ASSERT_TRUE(device.ok()) << device.status();
    EXPECT_THAT((*device)->Describe(),
                HasSubstr(direct ? "O_DIRECT" : "buffered"));
    AlignedBuffer data(kBlock);
    std::memset(data.data(), 7, kBlock);
    ASSERT_TRUE((*device)->Write(0, data.data(), kBlock).ok());
    AlignedBuffer back(kBlock);
    ASSERT_TRUE((*device)->Read(0, back.data(), kBlock).ok());
    EXPECT_EQ(std::memcmp(back.data(), data.data(), kBlock), 0);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace stronghold::storage
