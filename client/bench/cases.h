// The seed's experiments (../shared/seed/stronghold-artifact-readme.md, cases
// 2.1.1-2.1.5) as functions over a BenchRunner. Each prints a table like the
// seed's README, and the cases write a CSV and a PNG (report.h).
//
//   run         every method at --layers (the seed's run.sh)
//   largest     the largest layer count the planner accepts per method under
//               the budgets, then a short confirming run at that size
//   throughput  every method at each method's largest size (the resident
//               maximum among them), relative to that size's method
//   scaling     iteration time against layers and its least-squares line
//   window      STRONGHOLD's iteration time against its window
#ifndef STRONGHOLD_CLIENT_BENCH_CASES_H_
#define STRONGHOLD_CLIENT_BENCH_CASES_H_

#include <ostream>

#include "absl/status/statusor.h"
#include "client/bench/runner.h"

namespace stronghold::client {

// How a case went: runs that failed make the exit code 1. A method that
// does not fit is a result, not a failure.
struct CaseResult {
  int failed_runs = 0;
};

absl::StatusOr<CaseResult> RunEachMethod(BenchRunner& runner,
                                         std::ostream& out);
absl::StatusOr<CaseResult> RunLargestCase(BenchRunner& runner,
                                          std::ostream& out);
absl::StatusOr<CaseResult> RunThroughputCase(BenchRunner& runner,
                                             std::ostream& out);
absl::StatusOr<CaseResult> RunScalingCase(BenchRunner& runner,
                                          std::ostream& out);
absl::StatusOr<CaseResult> RunWindowCase(BenchRunner& runner,
                                         std::ostream& out);

// Runs the case the options name. Returns the exit code: 0, or 1 when a job
// failed (each failure is in its log and the table).
absl::StatusOr<int> RunBench(BenchRunner& runner, std::ostream& out,
                             std::ostream& err);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_BENCH_CASES_H_
