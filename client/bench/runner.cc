#include "client/bench/runner.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/bench/log.h"
#include "client/bench/output.h"
#include "client/bench/report.h"
#include "client/human_format.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "stronghold/v1/names.h"

namespace stronghold::client {
namespace {

bool Terminal(v1::Job::State state) {
  return state == v1::Job::SUCCEEDED || state == v1::Job::FAILED ||
         state == v1::Job::CANCELLED;
}

// `dir/name`, or `dir/name` with "_2", "_3"... before ".txt" when a run with
// the same parameters already wrote a log within the same second.
std::string UniquePath(const std::string& dir, const std::string& name) {
  namespace fs = std::filesystem;
  fs::path path = fs::path(dir) / name;
  const std::string stem = path.stem().string();
  for (int i = 2; fs::exists(path); ++i) {
    path = fs::path(dir) / absl::StrCat(stem, "_", i, ".txt");
  }
  return path.string();
}

// 24 random bytes as 32 characters of [A-Za-z0-9_-]: a job key
// (DistributedSpec.job_key takes 8..128 of [A-Za-z0-9._~-]).
absl::StatusOr<std::string> NewJobKey() {
  std::ifstream random("/dev/urandom", std::ios::binary);
  char bytes[24];
  if (!random.read(bytes, sizeof(bytes))) {
    return absl::InternalError("cannot read /dev/urandom for a job key");
  }
  return absl::WebSafeBase64Escape(absl::string_view(bytes, sizeof(bytes)));
}

}  // namespace

std::string OutcomeName(RunOutcome outcome) {
  switch (outcome) {
    case RunOutcome::kSucceeded:
      return "SUCCEEDED";
    case RunOutcome::kDoesNotFit:
      return "DOES NOT FIT";
    default:
      return "FAILED";
  }
}

BenchRunner::BenchRunner(const BenchOptions& options,
                         BenchEnvironment environment)
    : options_(options), environment_(std::move(environment)) {}

BenchPoint BenchRunner::Point(v1::OffloadMethod method, int layers,
                              int steps) const {
  BenchPoint point{.method = method, .layers = layers, .steps = steps};
  // Only STRONGHOLD takes a window from the user; what the others run with
  // is the daemon's to resolve (its plan and metrics report it).
  if (method == v1::STRONGHOLD)
    point.window = std::min(options_.spec.offload().window(), layers);
  return point;
}

v1::JobSpec BenchRunner::Spec(const BenchPoint& point) const {
  v1::JobSpec spec = options_.spec;
  spec.set_name(absl::StrCat(spec.name(), " ",
                             v1::OffloadMethodName(point.method), " l-",
                             point.layers, " h-", spec.model().hidden(), " bs-",
                             spec.training().batch(), " ws-", point.window));
  spec.mutable_model()->set_layers(point.layers);
  spec.mutable_training()->set_steps(point.steps);
  v1::OffloadSpec* offload = spec.mutable_offload();
  offload->set_method(point.method);
  // One set of flags serves every method of a sweep: what a method refuses
  // (resident layers off STRONGHOLD, speculative updates on RESIDENT) or does
  // not use (the window off STRONGHOLD) is left out, and RESIDENT, the seed's
  // Megatron-LM baseline, keeps the embedding's optimizer on the CPU too.
  offload->set_window(point.method == v1::STRONGHOLD ? point.window : 0);
  if (point.method != v1::STRONGHOLD) offload->clear_device_resident_layers();
  if (point.method == v1::RESIDENT) {
    offload->clear_speculative_updates();
    offload->clear_device_embedding_optimizer();
  }
  return spec;
}

absl::StatusOr<v1::MemoryPlan> BenchRunner::Plan(const BenchPoint& point) {
  return environment_.client->PlanJob(Spec(point));
}

absl::StatusOr<BenchRun> BenchRunner::Run(const BenchPoint& point) {
  BenchRun run;
  run.point = point;
  run.spec = Spec(point);
  run.warmup_iterations = options_.WarmupIterations(
      point.method == v1::STRONGHOLD && point.window == 0, point.steps);
  ASSIGN_OR_RETURN(run.plan, environment_.client->PlanJob(run.spec));
  run.parameters = run.plan.parameters();
  if (!run.plan.fits()) {
    run.outcome = RunOutcome::kDoesNotFit;
    run.reason = run.plan.reason();
  } else {
    RETURN_IF_ERROR(Submit(run));
    if (!run.job.empty()) RETURN_IF_ERROR(Follow(run));
  }

  run.summary = Summarize(run.measured);
  RETURN_IF_ERROR(EnsureDir(environment_.out_dir));
  run.log_path = UniquePath(environment_.out_dir,
                            LogFileName(point, options_, absl::Now()));
  RETURN_IF_ERROR(core::WriteFileAtomically(
      run.log_path, FormatLog(run, options_, environment_)));
  Report(run);
  if (environment_.json != nullptr) {
    *environment_.json << RunJson(run, environment_.peak) << "\n";
    environment_.json->flush();
  }
  return run;
}

absl::Status BenchRunner::Submit(BenchRun& run) {
  const int world_size = options_.world_size;
  std::string key;
  if (world_size > 1) {
    // A fresh secret per run: a run's ranks meet each other only, never a
    // rank left over from an earlier run. It never leaves this process but
    // to the daemons, which redact it.
    ASSIGN_OR_RETURN(key, NewJobKey());
  }
  for (int rank = 0; rank < world_size; ++rank) {
    v1::JobSpec spec = run.spec;
    DaemonClient* daemon = environment_.client;
    if (world_size > 1) {
      spec.mutable_distributed()->set_rank(rank);
      spec.mutable_distributed()->set_job_key(key);
      daemon = environment_.ranks[rank];
    }
    absl::StatusOr<v1::Job> job = daemon->SubmitJob(spec);
    const std::string who =
        world_size > 1
            ? absl::StrCat("rank ", rank, " (", daemon->address(), "): ")
            : "";
    if (!job.ok()) {
      CancelSubmitted(run);
      run.job.clear();
      if (!absl::IsResourceExhausted(job.status())) {
        return absl::Status(job.status().code(),
                            absl::StrCat(who, job.status().message()));
      }
      // The daemon's own plan disagreed (its budgets changed meanwhile).
      run.outcome = RunOutcome::kDoesNotFit;
      run.reason = absl::StrCat(who, job.status().message());
      return absl::OkStatus();
    }
    if (rank == 0) run.job = job->name();
    if (world_size > 1) {
      run.ranks.push_back(
          {.rank = rank, .daemon = daemon->address(), .job = job->name()});
    }
  }
  return absl::OkStatus();
}

void BenchRunner::CancelSubmitted(const BenchRun& run) {
  for (const RankRun& rank : run.ranks) {
    // Best effort: a rank that cannot be cancelled fails after the
    // collective timeout, waiting for the rank that was never submitted.
    environment_.ranks[rank.rank]->CancelJob(rank.job).IgnoreError();
  }
}

absl::Status BenchRunner::FollowJob(DaemonClient& client,
                                    const std::string& job,
                                    std::vector<v1::StepMetrics>& steps,
                                    std::vector<std::string>* notes,
                                    v1::Job& last) {
  v1::WatchJobRequest request;
  request.set_name(job);
  const absl::Status stream =
      client.WatchJob(request, [&](const v1::JobEvent& event) -> absl::Status {
        if (event.has_metrics()) steps.push_back(event.metrics());
        if (notes != nullptr && event.kind_case() == v1::JobEvent::kMessage) {
          notes->push_back(event.message());
        }
        if (event.has_job()) last = event.job();
        return absl::OkStatus();
      });
  if (Terminal(last.state())) return absl::OkStatus();
  // The stream ended early (or broke): the job's record decides.
  ASSIGN_OR_RETURN(last, client.GetJob(job));
  if (Terminal(last.state())) return absl::OkStatus();
  return stream.ok()
             ? absl::UnavailableError(absl::StrCat(
                   "the event stream of ", job, " on ", client.address(),
                   " ended while the job is ", StateName(last.state())))
             : stream;
}

absl::Status BenchRunner::Follow(BenchRun& run) {
  // The ranks run together; following them one after another loses
  // nothing, since a daemon replays a job's events to a late watcher.
  std::vector<std::vector<v1::StepMetrics>> steps(
      std::max<size_t>(1, run.ranks.size()));
  std::vector<v1::Job> last(steps.size());
  for (size_t r = 0; r < steps.size(); ++r) {
    DaemonClient& client =
        run.ranks.empty() ? *environment_.client : *environment_.ranks[r];
    RETURN_IF_ERROR(FollowJob(client, r == 0 ? run.job : run.ranks[r].job,
                              steps[r], r == 0 ? &run.notes : nullptr,
                              last[r]));
  }
  for (const v1::StepMetrics& m : JobSteps(steps)) {
    AdoptDaemonPeak(m);
    (static_cast<int>(m.step()) <= run.warmup_iterations ? run.warmup
                                                         : run.measured)
        .push_back(m);
    run.window_used = m.window();
  }
  for (size_t r = 0; r < run.ranks.size(); ++r) {
    RankRun& rank = run.ranks[r];
    rank.steps = std::move(steps[r]);
    std::vector<v1::StepMetrics> measured;
    for (const v1::StepMetrics& m : rank.steps) {
      if (static_cast<int>(m.step()) > run.warmup_iterations) {
        measured.push_back(m);
      }
    }
    rank.summary = RankSummary(measured, options_.world_size);
  }
  run.outcome = RunOutcome::kSucceeded;
  for (size_t r = 0; r < last.size(); ++r) {
    if (last[r].state() == v1::Job::SUCCEEDED) continue;
    run.outcome = RunOutcome::kFailed;
    run.reason =
        last[r].error().empty() ? StateName(last[r].state()) : last[r].error();
    if (last.size() > 1)
      run.reason = absl::StrCat("rank ", r, ": ", run.reason);
    break;
  }
  return absl::OkStatus();
}

void BenchRunner::AdoptDaemonPeak(const v1::StepMetrics& metrics) {
  if (options_.peak_tflops > 0 || metrics.mfu() <= 0) return;
  const double tflops = metrics.model_tflops() / metrics.mfu();
  DevicePeak& peak = environment_.peak;
  if (std::abs(tflops - peak.tflops) <= 1e-3 * tflops) return;
  peak = {
      tflops,
      absl::StrFormat(
          "%.4g TFLOPS, %sstrongholdd's device peak (its --device_peak_flops, "
          "or its nominal figure); pass --peak-tflops to override",
          tflops,
          options_.world_size > 1
              ? absl::StrCat(options_.world_size, " ranks x ")
              : "")};
  if (environment_.progress != nullptr) {
    *environment_.progress << "MFU from here on is against " << peak.source
                           << "\n";
  }
}

void BenchRunner::Report(const BenchRun& run) const {
  if (environment_.progress == nullptr) return;
  std::ostream& out = *environment_.progress;
  out << v1::OffloadMethodName(run.point.method) << " l-" << run.point.layers
      << " ws-" << run.point.window << ": ";
  if (run.succeeded()) {
    out << absl::StrFormat("%s, %.4f samples/s, %.1f ms/iteration", run.job,
                           run.summary.samples_per_s, 1e3 * run.summary.step_s);
  } else {
    out << OutcomeName(run.outcome) << ": " << run.reason;
  }
  out << " -> " << run.log_path << "\n";
  out.flush();
}

absl::StatusOr<LargestSearch> BenchRunner::Largest(v1::OffloadMethod method) {
  const int steps = options_.confirm_steps;
  LargestSearch search;
  search.method = method;
  ASSIGN_OR_RETURN(v1::MemoryPlan low, Plan(Point(method, 1, steps)));
  if (!low.fits()) {
    search.plan = low;
    return search;
  }
  int lo = 1;  // fits
  int hi = options_.max_layers;
  ASSIGN_OR_RETURN(v1::MemoryPlan high, Plan(Point(method, hi, steps)));
  if (high.fits()) {
    search.layers = hi;
    search.at_bound = true;
    search.plan = high;
    return search;
  }
  // Invariant: lo fits (plan `low`), hi does not (plan `high`).
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    ASSIGN_OR_RETURN(v1::MemoryPlan plan, Plan(Point(method, mid, steps)));
    if (plan.fits()) {
      lo = mid;
      low = std::move(plan);
    } else {
      hi = mid;
      high = std::move(plan);
    }
  }
  search.layers = lo;
  search.plan = std::move(low);
  search.beyond = std::move(high);
  return search;
}

}  // namespace stronghold::client
