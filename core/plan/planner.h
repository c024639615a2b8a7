// The planner: a pure function from a job's configuration (what the user
// asked) and the node's budgets to its execution plan (core/plan/
// execution_plan.h): how it runs, resolved once, and every buffer it will
// allocate, with its tier and bytes. Jobs that do not fit are refused with
// these numbers before anything is allocated; `strongholdctl plan` prints the
// same table. Every rule that turns a request into a setting is in this
// folder and nowhere else, each in one place:
//   core/plan/window.h         the window ("L2L -> 1, RESIDENT -> L, 0 ->
//                              automatic"), slots, kept activations, what a
//                              window holds on the device;
//   core/plan/memory_table.h   the buffers each setting allocates;
//   core/plan/ssd_placement.h  what spills to the NVMe tier;
//   core/plan/fit.h            whether the plan fits, and why not;
// and this file resolves them, in that order, into one ExecutionPlan.
#ifndef STRONGHOLD_CORE_PLAN_PLANNER_H_
#define STRONGHOLD_CORE_PLAN_PLANNER_H_

#include "core/plan/execution_plan.h"
#include "core/plan/fit.h"
#include "core/plan/job_config.h"
#include "core/plan/node_budgets.h"
#include "core/plan/ssd_placement.h"
#include "core/plan/window.h"

namespace stronghold::core {

// The job's budgets override the node's where set (and may only lower them).
// NVMe placement: core/plan/ssd_placement.h.
//
// Which engine: RESIDENT in fp32 on the host device is the plain-autograd
// reference (ExecutionPlan::reference); every other job runs the windowed
// engine, RESIDENT as a window of every layer (on a GPU, or in bf16/fp16).
ExecutionPlan PlanExecution(const JobConfig& config, const NodeBudgets& node);

// The plan of an automatic window (ExecutionPlan::automatic_window) settled
// on `window` (1 .. plan.window) after profiling: the window and its slots,
// and the kept activation layers resolved again for it where they follow the
// window (ExecutionPlan::kept_follows_window). The memory table stays the
// largest window's, which bounds the settled one's.
ExecutionPlan SettleWindow(const JobConfig& config, const ExecutionPlan& plan,
                           int window);

// The largest model.layers (all else as in `config`) whose plan fits `node`
// and the job's budgets; 0 if not even one layer fits.
int MaxTrainableLayers(const JobConfig& config, const NodeBudgets& node);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_PLANNER_H_
