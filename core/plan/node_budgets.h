// What a node offers the planner (core/plan/planner.h): its compute device
// and the memory budgets a job is planned against. A job's own budgets
// (offload.*_memory_budget_bytes) may only lower these.
#ifndef STRONGHOLD_CORE_PLAN_NODE_BUDGETS_H_
#define STRONGHOLD_CORE_PLAN_NODE_BUDGETS_H_

#include <cstdint>
#include <string>

namespace stronghold::core {

struct NodeBudgets {
  std::string device = "cpu";  // "cpu" or "cuda:N"
  int64_t device_bytes = 0;    // compute-device memory budget
  int64_t host_bytes = 0;      // host RAM budget
  // Bytes the job may use in its NVMe tier directories (offload.ssd_dirs);
  // 0 = not checked here (the tier preallocates its files when the job
  // starts and fails then, with the bytes it needed).
  int64_t ssd_bytes = 0;
  // Whether the engine streams spilled state from the NVMe tier (it does:
  // ExecutionPlan::ssd_layers). False plans as if there were no such tier.
  bool ssd_streaming = true;
  // Tests and benchmarks only (-1 = as the host budget requires): place
  // exactly this many block layers' optimizer state (and what H2D sends of
  // force_ssd_weight_layers of them) on the NVMe tier, whatever the budget,
  // with the staging that needs, so that the plan's table and its settings
  // still agree. Honoured wherever a spill is possible (the trainer refuses
  // it where it is not: no ssd_dirs, speculative updates, RESIDENT).
  int force_ssd_layers = -1;
  int force_ssd_weight_layers = -1;

  // Whether the compute device is the host (its arena is host memory too).
  bool device_is_host() const { return device == "cpu"; }
  bool cuda() const { return device.rfind("cuda", 0) == 0; }
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_NODE_BUDGETS_H_
