// Runs benchmark points through strongholdd: plans a point (PlanJob), submits
// it as an ordinary job, follows its events (WatchJob) and writes the seed's
// per-run log. The daemon runs one job at a time, so runs never overlap; a
// job queued behind someone else's simply waits.
//
// Results are honest: a point the planner says cannot fit is a BenchRun with
// outcome kDoesNotFit and the planner's numbers, and a job that fails is
// kFailed with the daemon's error. Only talking to the daemon (or writing the
// log) failing is an error of the methods below.
#ifndef STRONGHOLD_CLIENT_BENCH_RUNNER_H_
#define STRONGHOLD_CLIENT_BENCH_RUNNER_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/bench/options.h"
#include "client/bench/stats.h"
#include "client/daemon_client.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::client {

// One method at one size.
struct BenchPoint {
  v1::OffloadMethod method = v1::RESIDENT;
  int layers = 0;
  // The window the point asks for: STRONGHOLD's (0 = automatic), clamped
  // to `layers`; 0 for the methods that take none (L2L, RESIDENT: the
  // daemon's plan resolves theirs, BenchRun::plan and window_used).
  int window = 0;
  int steps = 0;
};

enum class RunOutcome { kSucceeded, kDoesNotFit, kFailed };
// "SUCCEEDED", "DOES NOT FIT", "FAILED".
std::string OutcomeName(RunOutcome outcome);

// One rank of a run on many daemons (BenchOptions::world_size > 1).
struct RankRun {
  int rank = 0;
  std::string daemon;  // its daemon's address
  std::string job;     // its job there; empty when it was not submitted
  std::vector<v1::StepMetrics> steps;  // every step, as its daemon reported
  // Its measured iterations with its share of the rates (RankSummary).
  IterationSummary summary;
};

struct BenchRun {
  BenchPoint point;
  v1::JobSpec spec;
  v1::MemoryPlan plan;
  RunOutcome outcome = RunOutcome::kFailed;
  std::string reason;  // why it does not fit, or the job's error
  std::string job;     // "jobs/7" (rank 0's); empty when nothing was submitted
  int64_t parameters = 0;
  int warmup_iterations = 0;  // as planned for this run
  // The job's iterations: with many ranks each step's slowest rank's
  // (JobSteps), so that the figures below are the whole job's.
  std::vector<v1::StepMetrics> warmup;    // reported apart
  std::vector<v1::StepMetrics> measured;  // averaged in `summary`
  IterationSummary summary;
  // With many ranks, each rank's job and figures, rank 0's first; empty for
  // one rank.
  std::vector<RankRun> ranks;
  std::vector<std::string> notes;  // the daemon's messages, in order
  int window_used = 0;             // the window of the last iteration
  std::string log_path;

  bool succeeded() const { return outcome == RunOutcome::kSucceeded; }
};

// What every run shares: the daemon, the device's peak and where logs go.
struct BenchEnvironment {
  DaemonClient* client = nullptr;  // rank 0's daemon: plans go there
  // Rank r's daemon for each rank of BenchOptions::world_size (the first is
  // `client`); empty for one rank.
  std::vector<DaemonClient*> ranks;
  v1::Node node;
  DevicePeak peak;
  std::string out_dir;
  std::ostream* progress = nullptr;  // one line per run
  std::ostream* json = nullptr;      // --output json: RunJson() of each run
};

// The largest layer count the planner accepts for a method.
struct LargestSearch {
  v1::OffloadMethod method = v1::RESIDENT;
  int layers = 0;         // 0: not even one layer fits
  bool at_bound = false;  // fits at --max-layers: the real limit is higher
  v1::MemoryPlan plan;    // at `layers` (at 1 layer when none fits)
  v1::MemoryPlan beyond;  // at layers + 1: what stops it (unset at_bound)
};

class BenchRunner {
 public:
  BenchRunner(const BenchOptions& options, BenchEnvironment environment);

  const BenchOptions& options() const { return options_; }
  const BenchEnvironment& environment() const { return environment_; }

  // The point of `method` at `layers` with the options' window and steps.
  BenchPoint Point(v1::OffloadMethod method, int layers, int steps) const;
  // The job spec of a point: the options' model and budgets, fp32, a metric
  // event every step, no periodic checkpoints.
  v1::JobSpec Spec(const BenchPoint& point) const;

  absl::StatusOr<v1::MemoryPlan> Plan(const BenchPoint& point);

  // Plans, runs (when it fits) and writes the log of one point.
  absl::StatusOr<BenchRun> Run(const BenchPoint& point);

  // Binary search over 1..max_layers with PlanJob. Assumes that a plan that
  // fits at L also fits below L, which holds since every planned buffer grows
  // with the layer count.
  absl::StatusOr<LargestSearch> Largest(v1::OffloadMethod method);

 private:
  // Submits the run's job to every rank's daemon; a rank the daemon turns
  // away for memory makes the run kDoesNotFit (the ranks already submitted
  // are cancelled, as they would wait for it in vain).
  absl::Status Submit(BenchRun& run);
  void CancelSubmitted(const BenchRun& run);
  absl::Status Follow(BenchRun& run);
  // Follows one job to its end: its steps, notes and final record.
  absl::Status FollowJob(DaemonClient& client, const std::string& job,
                         std::vector<v1::StepMetrics>& steps,
                         std::vector<std::string>* notes, v1::Job& last);
  // Without --peak-tflops, MFU is against the daemon's peak (its
  // --device_peak_flops or nominal figure), read back from the MFU it
  // reports: the guess made before any run (ChoosePeak) gives way to it.
  void AdoptDaemonPeak(const v1::StepMetrics& metrics);
  void Report(const BenchRun& run) const;

  const BenchOptions options_;
  // The peak changes once, when the daemon's own turns out to differ.
  BenchEnvironment environment_;
};

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_BENCH_RUNNER_H_
