// The host memory a job allocates for its training state, charged against
// its execution plan, as the device arena charges device memory against the
// device budget: each allocation names the planned buffer it belongs to (the
// plan's host and pinned tiers, and for the reference plan, whose compute
// device is the host, its device tier too), and a charge that would pass
// that buffer's planned bytes is refused before anything is allocated. So a
// job cannot hold more host memory than its plan shows, and a planner that
// under-counts is caught (tests compare every charge with the plan).
//
// Outside the ledger: one layer's transient buffers while a checkpoint is
// written or read (core/train/ssd_tier.h) and LibTorch's compute working
// memory (planned as the device's "activations.working").
//
// Thread-safe.
#ifndef STRONGHOLD_CORE_PLAN_HOST_LEDGER_H_
#define STRONGHOLD_CORE_PLAN_HOST_LEDGER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/plan/execution_plan.h"

namespace stronghold::core {

class HostLedger {
 public:
  explicit HostLedger(const ExecutionPlan& plan);

  // Charges `bytes` to the planned buffer `name`, or to the group of buffers
  // "name" and "name.*" (say "host.staging.ssd" and "host.staging.ssd.master",
  // which one allocation holds). RESOURCE_EXHAUSTED naming the buffer, the
  // planned and the charged bytes when the charge would pass the plan (or
  // the plan has no such buffer); nothing is charged then.
  absl::Status Charge(absl::string_view name, int64_t bytes);
  // Returns bytes charged to `name` (the memory was freed).
  void Release(absl::string_view name, int64_t bytes);

  // The buffers whose charge differs from their planned bytes, as
  // "name: charged C of P planned" (empty once the job holds exactly its
  // plan).
  std::vector<std::string> Differences() const;
  int64_t charged_bytes() const;

 private:
  struct Account {
    int64_t planned = 0;
    int64_t charged = 0;
  };

  mutable absl::Mutex mu_;
  // By buffer name, and groups ("name" with its "name.*") by their name.
  std::map<std::string, Account, std::less<>> accounts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_HOST_LEDGER_H_
