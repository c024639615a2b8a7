// Data-parallel training in one test process: N ranks as threads
// (tests/core/dist/thread_ranks.h), each a Trainer with its communicator.
#ifndef STRONGHOLD_TESTS_CORE_DIST_DATA_PARALLEL_UTIL_H_
#define STRONGHOLD_TESTS_CORE_DIST_DATA_PARALLEL_UTIL_H_

#include <functional>
#include <string>
#include <vector>

#include "core/plan/execution_plan.h"
#include "core/plan/job_config.h"
#include "tests/core/training_test_util.h"

namespace stronghold::core {

// Trains `config` as one job of `world` ranks (ordered: the communicator's
// test-only ordered reductions), each planned as `plan` says. Returns rank
// 0's steps and the masters assembled from every rank's slices; `ranks`,
// if not null, receives every rank's steps. `loss_scales` (empty, or one per
// rank; 0 = unchanged) sets each rank's fp16 loss scale before step 1: a
// huge one on one rank overflows there only. `adjust`, if set, edits each
// rank's trainer options. `host_bytes`, if not null, receives each rank's
// host memory at the end (TrainedRun::host_bytes). `restore`, if not
// empty, is the checkpoint every rank resumes from.
TrainedRun TrainRanks(
    const JobConfig& config, const ExecutionPlan& plan, const std::string& name,
    int world, bool ordered = false, std::vector<StepRecorder>* ranks = nullptr,
    const std::vector<double>& loss_scales = {},
    const std::function<void(int, TrainerOptions*)>& adjust = nullptr,
    std::vector<int64_t>* host_bytes = nullptr,
    const std::string& restore = "");

}  // namespace stronghold::core

#endif  // STRONGHOLD_TESTS_CORE_DIST_DATA_PARALLEL_UTIL_H_
