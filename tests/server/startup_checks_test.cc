#include "server/startup_checks.h"

#include <errno.h>

#include <limits>

#include "gtest/gtest.h"

namespace stronghold::server {
namespace {

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(StartupChecksTest, MemlockUnlimitedIsFine) {
  const StartupNote n =
      DescribeMemlock(std::numeric_limits<uint64_t>::max(), "cuda:0");
  EXPECT_FALSE(n.warning);
  EXPECT_TRUE(Contains(n.text, "unlimited")) << n.text;
}

TEST(StartupChecksTest, LowMemlockNamesTheFallbackAndTheFix) {
  const StartupNote cuda = DescribeMemlock(8 << 20, "cuda:0");
  EXPECT_TRUE(cuda.warning);
  EXPECT_TRUE(Contains(cuda.text, "8 MiB")) << cuda.text;
  EXPECT_TRUE(Contains(cuda.text, "pageable memory")) << cuda.text;
  EXPECT_TRUE(Contains(cuda.text, "LimitMEMLOCK=infinity")) << cuda.text;
  // The cpu device pins nothing: worth a note, not a warning.
  const StartupNote cpu = DescribeMemlock(64 << 10, "cpu");
  EXPECT_FALSE(cpu.warning);
  EXPECT_TRUE(Contains(cpu.text, "64 KiB")) << cpu.text;
}

TEST(StartupChecksTest, IoUring) {
  EXPECT_FALSE(DescribeIoUring(0).warning);
  for (int error : {ENOSYS, EPERM, ENOMEM, EINVAL}) {
    const StartupNote n = DescribeIoUring(error);
    EXPECT_TRUE(n.warning);
    EXPECT_TRUE(Contains(n.text, "fall back to pread/pwrite")) << n.text;
  }
  EXPECT_TRUE(Contains(DescribeIoUring(EPERM).text, "io_uring_disabled"));
}

TEST(StartupChecksTest, Device) {
  EXPECT_FALSE(DescribeDevice("cpu", "cpu", /*gpu_present=*/true).warning);
  EXPECT_FALSE(DescribeDevice("auto", "cpu", /*gpu_present=*/false).warning);
  const StartupNote n = DescribeDevice("auto", "cpu", /*gpu_present=*/true);
  EXPECT_TRUE(n.warning);
  EXPECT_TRUE(Contains(n.text, "falls back to the cpu device")) << n.text;
}

TEST(StartupChecksTest, RunsOnThisHost) {
  const std::vector<StartupNote> notes = RunStartupChecks("auto", "cpu");
  ASSERT_EQ(notes.size(), 3u);
  for (const StartupNote& n : notes) EXPECT_FALSE(n.text.empty());
  const int probe = ProbeIoUring();
  EXPECT_GE(probe, 0);
}

}  // namespace
}  // namespace stronghold::server
