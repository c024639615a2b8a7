// What keeps the ranks of one distributed job together after the
// rendezvous (docs/distributed.md, "Failures and stops"): a watchdog thread
// per rank that, through the job's store,
//   - publishes this rank's heartbeat and watches every other rank's: a rank
//     whose heartbeat has not moved for the collective timeout (killed, hung
//     by SIGSTOP, cut off) fails the job on every rank, naming it;
//   - carries one abort per job: the first rank that fails or is cancelled
//     writes why, and every rank stops (failed or cancelled like it, naming
//     that rank);
//   - agrees a common stop step when one rank must stop with a checkpoint
//     (its daemon's SIGTERM, or `cancel --checkpoint`): ranks are kept within
//     one step of each other by their collectives, so each rank proposes the
//     step it is in and all stop after the largest proposal, each writing the
//     checkpoint of that same step;
//   - loses the store: the store lives in rank 0's daemon, so losing it
//     fails the job naming rank 0.
// The training thread asks Decide() at each step's end and Interrupted()
// between micro-batches; neither blocks for longer than the collective
// timeout.
//
// Thread safety: Decide(), Interrupted(), RequestStop(), Fail() and
// Finish() may be called from any thread; the watchdog runs on its own.
#ifndef STRONGHOLD_CORE_DIST_JOB_CONTROL_H_
#define STRONGHOLD_CORE_DIST_JOB_CONTROL_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/dist/store_ops.h"

namespace stronghold::core::dist {

struct JobControlOptions {
  int rank = 0;
  int world_size = 1;
  // A rank silent this long is dead; also bounds every wait here.
  std::chrono::milliseconds timeout{300'000};
  // Between heartbeats and between looks at the others'; 0 = timeout / 10,
  // clamped to [50 ms, 1 s].
  std::chrono::milliseconds interval{0};
  // Called once, from the watchdog thread, when the job must stop because
  // of another rank (failed, cancelled, silent) or a lost store: the place
  // to abort the communicator's pending collectives. May be empty.
  std::function<void()> on_abort;
};

// Why a rank stops with a checkpoint.
enum class StopKind { kShutdown, kCheckpointAndCancel };

// What the training thread does after a step.
struct StopDecision {
  enum Action {
    kContinue,
    kStopWithCheckpoint,  // the agreed stop step: checkpoint it and stop
    kAbort,               // stop now, no checkpoint: see status()
  };
  Action action = kContinue;
  StopKind kind = StopKind::kShutdown;  // for kStopWithCheckpoint
  int requested_by = -1;                // the rank that asked to stop
};

class JobControl {
 public:
  // `store` is the job's prefix of the store (Session::Connect()), used
  // by the watchdog only.
  JobControl(StorePtr store, JobControlOptions options);
  // Stops the watchdog (Finish() first for a clean end).
  ~JobControl();

  // Publishes the first heartbeat and starts the watchdog.
  void Start();

  // The training thread: step `step` just finished. kStopWithCheckpoint
  // when `step` is the agreed stop step; may wait (bounded by the timeout)
  // for the other ranks' proposals once a stop was requested.
  StopDecision Decide(int64_t step);
  // Whether the job must stop at once (another rank failed or was
  // cancelled, or the store is gone). Never blocks.
  bool Interrupted() const;
  // Why the job stopped because of another rank or the store: UNAVAILABLE
  // naming the rank (silent, failed, store lost), CANCELLED naming the rank
  // that was cancelled. OK while nothing happened.
  absl::Status status() const;
  // status() once the watchdog has a verdict, waiting at most `max_wait`
  // for one (OK if none came). For a rank whose collective failed: a dead
  // peer breaks the collective at once, but only the heartbeats say which
  // rank it was.
  absl::Status AwaitStatus(std::chrono::milliseconds max_wait) const;

  // This rank must stop with a checkpoint: every rank will, at the same
  // step.
  void RequestStop(StopKind kind);
  // This rank failed (or, CANCELLED, was cancelled): every other rank stops.
  void Fail(const absl::Status& why);
  // This rank's job ended (any outcome): the others no longer wait for its
  // heartbeat. Rank 0 keeps the store up until every rank has finished or
  // the timeout passed (after an interruption: three intervals), so the
  // others do not lose it on their last step.
  void Finish();

 private:
  void Loop();
  // One round: heartbeat, abort, stop proposals, the others' heartbeats.
  void Round();
  void Abort(absl::Status why) ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const StorePtr store_;
  const JobControlOptions options_;
  const std::chrono::milliseconds interval_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> interrupted_{false};
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // the watchdog must end
  int64_t finished_step_ ABSL_GUARDED_BY(mu_) = 0;
  // A stop was requested (by any rank) and this rank proposed this step.
  std::optional<int64_t> proposed_ ABSL_GUARDED_BY(mu_);
  std::optional<StopKind> stop_kind_ ABSL_GUARDED_BY(mu_);
  int stop_by_ ABSL_GUARDED_BY(mu_) = -1;
  std::optional<StopKind> local_stop_ ABSL_GUARDED_BY(mu_);
  // Heartbeats: the last value seen per rank and when it last moved.
  std::vector<std::string> last_beat_;
  std::vector<std::chrono::steady_clock::time_point> last_moved_;
  int64_t beats_ = 0;
  std::thread watchdog_;
};

}  // namespace stronghold::core::dist

#endif  // STRONGHOLD_CORE_DIST_JOB_CONTROL_H_
