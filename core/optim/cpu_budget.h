// How many CPUs this process may actually use, for sizing thread pools.
//
// std::thread::hardware_concurrency() reports the machine's CPUs, but a
// process is often held to fewer: by its affinity mask (taskset, cpusets)
// and by a cgroup CPU quota (containers: "2 CPUs" of a 64-core host). A pool
// sized from the machine oversubscribes and gets throttled; for a
// memory-bound optimizer that means idle bandwidth and stalls.
//
// Thread safety: all functions are thread-safe.
#ifndef STRONGHOLD_CORE_OPTIM_CPU_BUDGET_H_
#define STRONGHOLD_CORE_OPTIM_CPU_BUDGET_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace stronghold::core {

// Where the cgroup information is read from; tests point these at fixtures.
struct CpuBudgetSources {
  std::string proc_self_cgroup = "/proc/self/cgroup";
  std::string cgroup_root =
      "/sys/fs/cgroup";  // v2 mount (or v1 hierarchy root)
};

// Parses a cgroup v2 cpu.max ("max 100000" or "<quota> <period>") into a CPU
// count (quota / period). nullopt for "max" (no limit) or malformed text.
std::optional<double> ParseCgroupCpuMax(absl::string_view contents);

// The tightest cgroup CPU quota on the path from this process's cgroup to the
// root, in CPUs: cgroup v2 cpu.max, else v1 cpu.cfs_quota_us/cfs_period_us.
// nullopt when there is none or it cannot be read.
std::optional<double> CgroupCpuQuota(const CpuBudgetSources& sources = {});

// The CPUs in this process's affinity mask, in ascending order (empty if the
// mask cannot be read).
std::vector<int> AffinityCpus();

// min(|affinity mask|, ceil(cgroup quota)), at least 1. Rounding the quota up
// uses a fractional CPU rather than leaving it idle.
int UsableCpuCount(const CpuBudgetSources& sources = {});

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_OPTIM_CPU_BUDGET_H_
