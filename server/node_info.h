// What the daemon knows about its node without asking the job manager: the
// machine's memory, the budgets it fills in where the operator left 0, and
// the static part of GetNode's answer (host, device, versions, tiers).
// Plain functions: no locks.
#ifndef STRONGHOLD_SERVER_NODE_INFO_H_
#define STRONGHOLD_SERVER_NODE_INFO_H_

#include "core/plan/planner.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

// Budgets left at 0 mean the whole tier: host memory is the machine's RAM,
// and on the CPU device so is device memory.
core::NodeBudgets WithDefaultBudgets(core::NodeBudgets budgets);

// The node under `budgets`: hostname, device, versions, CPU threads and the
// device and host tiers (capacity and budget). Jobs are the caller's.
stronghold::v1::Node NodeInfo(const core::NodeBudgets& budgets);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_NODE_INFO_H_
