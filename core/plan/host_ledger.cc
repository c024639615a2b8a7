#include "core/plan/host_ledger.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace stronghold::core {

HostLedger::HostLedger(const ExecutionPlan& plan) {
  for (const PlannedBuffer& b : plan.buffers) {
    // LibTorch's compute working memory ("activations.*" of the device
    // tier) is not the job's to allocate.
    const bool host_tier = b.tier == kTierHost || b.tier == kTierPinned;
    const bool state = !absl::StartsWith(b.name, "activations.");
    if (host_tier || (plan.reference && b.tier == kTierDevice && state)) {
      accounts_[b.name].planned += b.bytes;
    }
  }
}

absl::Status HostLedger::Charge(absl::string_view name, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  const std::string group = absl::StrCat(name, ".");
  std::vector<Account*> members;
  int64_t planned = 0, charged = 0;
  for (auto& [key, account] : accounts_) {
    if (key == name || absl::StartsWith(key, group)) {
      members.push_back(&account);
      planned += account.planned;
      charged += account.charged;
    }
  }
  if (members.empty() || bytes > planned - charged) {
    return absl::ResourceExhaustedError(
        absl::StrCat("host memory: ", name, " would hold ", charged + bytes,
                     " bytes, its plan ", planned,
                     members.empty() ? " (the plan has no such buffer)" : "",
                     "; the job allocates nothing beyond its plan"));
  }
  for (Account* a : members) {
    const int64_t take = std::min(bytes, a->planned - a->charged);
    a->charged += take;
    bytes -= take;
  }
  return absl::OkStatus();
}

void HostLedger::Release(absl::string_view name, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  const std::string group = absl::StrCat(name, ".");
  for (auto it = accounts_.rbegin(); it != accounts_.rend() && bytes > 0;
       ++it) {
    if (it->first != name && !absl::StartsWith(it->first, group)) continue;
    const int64_t give = std::min(bytes, it->second.charged);
    it->second.charged -= give;
    bytes -= give;
  }
}

std::vector<std::string> HostLedger::Differences() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, a] : accounts_) {
    if (a.charged != a.planned) {
      out.push_back(absl::StrCat(name, ": charged ", a.charged, " of ",
                                 a.planned, " planned"));
    }
  }
  return out;
}

int64_t HostLedger::charged_bytes() const {
  absl::MutexLock lock(&mu_);
  int64_t total = 0;
  for (const auto& [name, a] : accounts_) total += a.charged;
  return total;
}

}  // namespace stronghold::core
