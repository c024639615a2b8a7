#include "core/optim/cpu_budget.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace stronghold::core {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<double> Min(std::optional<double> a, std::optional<double> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

// Applies `quota_at(dir)` to `dir` and each of its ancestors up to `root`;
// a parent's limit binds its children, so the smallest one counts.
template <typename F>
std::optional<double> TightestOnPath(const std::string& root, std::string path,
                                     F quota_at) {
  std::optional<double> best;
  while (true) {
    best = Min(best, quota_at(root + path));
    if (path.empty() || path == "/") break;
    const size_t slash = path.rfind('/');
    path = slash == std::string::npos ? "" : path.substr(0, slash);
  }
  return best;
}

std::optional<double> V1Quota(const std::string& dir) {
  const auto quota = ReadFile(dir + "/cpu.cfs_quota_us");
  const auto period = ReadFile(dir + "/cpu.cfs_period_us");
  double q = 0, p = 0;
  if (!quota || !period ||
      !absl::SimpleAtod(absl::StripAsciiWhitespace(*quota), &q) ||
      !absl::SimpleAtod(absl::StripAsciiWhitespace(*period), &p) || q <= 0 ||
      p <= 0) {
    return std::nullopt;  // -1 = unlimited
  }
  return q / p;
}

}  // namespace

std::optional<double> ParseCgroupCpuMax(absl::string_view contents) {
  const std::vector<absl::string_view> fields = absl::StrSplit(
      absl::StripAsciiWhitespace(contents), ' ', absl::SkipEmpty());
  if (fields.size() != 2 || fields[0] == "max") return std::nullopt;
  double quota = 0, period = 0;
  if (!absl::SimpleAtod(fields[0], &quota) ||
      !absl::SimpleAtod(fields[1], &period) || quota <= 0 || period <= 0) {
    return std::nullopt;
  }
  return quota / period;
}

std::optional<double> CgroupCpuQuota(const CpuBudgetSources& sources) {
  const auto cgroups = ReadFile(sources.proc_self_cgroup);
  if (!cgroups) return std::nullopt;
  std::optional<double> quota;
  // Lines are "id:controllers:path"; "0::path" is the v2 unified hierarchy.
  for (absl::string_view line :
       absl::StrSplit(*cgroups, '\n', absl::SkipEmpty())) {
    const std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) continue;
    const std::string path(f[2]);
    if (f[0] == "0" && f[1].empty()) {
      // Pure v2 mounts the hierarchy at the root; hybrid systems at unified/.
      for (const std::string& root :
           {sources.cgroup_root, sources.cgroup_root + "/unified"}) {
        quota =
            Min(quota, TightestOnPath(root, path, [](const std::string& dir) {
                  const auto text = ReadFile(dir + "/cpu.max");
                  return text ? ParseCgroupCpuMax(*text) : std::nullopt;
                }));
      }
      continue;
    }
    for (absl::string_view controller : absl::StrSplit(f[1], ',')) {
      if (controller != "cpu") continue;
      // v1 mounts each hierarchy under a directory named after its
      // controllers, e.g. cpu,cpuacct (often with a cpu symlink).
      for (const std::string& dir : {std::string(f[1]), std::string("cpu")}) {
        quota = Min(quota, TightestOnPath(sources.cgroup_root + "/" + dir, path,
                                          V1Quota));
      }
    }
  }
  return quota;
}

std::vector<int> AffinityCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

int UsableCpuCount(const CpuBudgetSources& sources) {
  int count = static_cast<int>(AffinityCpus().size());
  if (count == 0) count = static_cast<int>(std::thread::hardware_concurrency());
  if (const auto quota = CgroupCpuQuota(sources)) {
    count = std::min(count, static_cast<int>(std::ceil(*quota)));
  }
  return std::max(count, 1);
}

}  // namespace stronghold::core
