#include "core/optim/cpu_budget.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

TEST(ParseCgroupCpuMaxTest, QuotaOverPeriod) {
  EXPECT_EQ(ParseCgroupCpuMax("200000 100000\n"), 2.0);
  EXPECT_EQ(ParseCgroupCpuMax("150000 100000"), 1.5);
  EXPECT_EQ(ParseCgroupCpuMax("max 100000\n"), std::nullopt);
  EXPECT_EQ(ParseCgroupCpuMax(""), std::nullopt);
  EXPECT_EQ(ParseCgroupCpuMax("garbage"), std::nullopt);
  EXPECT_EQ(ParseCgroupCpuMax("-5 100000"), std::nullopt);
}

class CgroupFixture : public testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(testing::TempDir()) /
            testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    sources_.proc_self_cgroup = (root_ / "proc_self_cgroup").string();
    sources_.cgroup_root = (root_ / "sys_fs_cgroup").string();
  }

  fs::path root_;
  CpuBudgetSources sources_;
};

TEST_F(CgroupFixture, V2TakesTheTightestQuotaOnThePath) {
  Write(sources_.proc_self_cgroup, "0::/jobs/trainer\n");
  const fs::path cg = sources_.cgroup_root;
  Write(cg / "jobs/trainer/cpu.max", "max 100000\n");
  Write(cg / "jobs/cpu.max", "250000 100000\n");  // the parent binds
  Write(cg / "cpu.max", "800000 100000\n");
  EXPECT_EQ(CgroupCpuQuota(sources_), 2.5);
  EXPECT_LE(UsableCpuCount(sources_), 3);
  EXPECT_GE(UsableCpuCount(sources_), 1);
}

TEST_F(CgroupFixture, V2OnAHybridMountUnderUnified) {
  Write(sources_.proc_self_cgroup, "1:cpu,cpuacct:/\n0::/svc\n");
  Write(fs::path(sources_.cgroup_root) / "unified/svc/cpu.max", "50000 100000");
  EXPECT_EQ(CgroupCpuQuota(sources_), 0.5);
  EXPECT_EQ(UsableCpuCount(sources_), 1);  // rounds up, never below 1
}

TEST_F(CgroupFixture, V1CfsQuota) {
  Write(sources_.proc_self_cgroup, "4:cpu,cpuacct:/docker/abc\n0::/\n");
  const fs::path dir =
      fs::path(sources_.cgroup_root) / "cpu,cpuacct/docker/abc";
  Write(dir / "cpu.cfs_quota_us", "300000\n");
  Write(dir / "cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(CgroupCpuQuota(sources_), 3.0);
}

TEST_F(CgroupFixture, NoQuotaMeansTheAffinityMask) {
  Write(sources_.proc_self_cgroup, "0::/\n");
  Write(fs::path(sources_.cgroup_root) / "cpu.max", "max 100000\n");
  EXPECT_EQ(CgroupCpuQuota(sources_), std::nullopt);
  EXPECT_EQ(UsableCpuCount(sources_), static_cast<int>(AffinityCpus().size()));
}

TEST_F(CgroupFixture, UnreadableSourcesMeanNoQuota) {
  EXPECT_EQ(CgroupCpuQuota(sources_), std::nullopt);  // nothing written
  EXPECT_GE(UsableCpuCount(sources_), 1);
}

}  // namespace
}  // namespace stronghold::core
