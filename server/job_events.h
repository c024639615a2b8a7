// The jobs' events (state changes, per-step metrics, notes) as WatchJob
// streams them: an in-memory log per job, bounded (the oldest are dropped),
// replayed to every watcher and then followed until the job ends. Events
// are not durable: after a restart a job's log starts with the restart's
// note, and a job that had already ended has no log at all.
//
// Thread safety: all methods are thread-safe. The log has its own lock and
// calls nothing while holding it (Watch calls `emit` and `cancelled`
// without it), so the job manager may Add() with its own lock held.
#ifndef STRONGHOLD_SERVER_JOB_EVENTS_H_
#define STRONGHOLD_SERVER_JOB_EVENTS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

class JobEventLog {
 public:
  // Keeps the newest `max_events_per_job` events of each job (at least 1).
  explicit JobEventLog(int max_events_per_job);

  // Appends `event` to job `id`'s log, stamped with the current time, and
  // wakes its watchers. event.job (the job after the event) says whether
  // the job has ended, which releases them once they have read it.
  void Add(int64_t id, stronghold::v1::JobEvent event);

  // Replays job `id`'s recorded events (metrics only of steps after
  // since_step), then follows new ones until the job has ended or Close()
  // was called. `emit` returns false to stop (client gone); `cancelled` is
  // polled after each batch and returns true to stop with CANCELLED. A job
  // without a log (it ended before this daemon started) returns at once.
  absl::Status Watch(
      int64_t id, int64_t since_step,
      const std::function<bool(const stronghold::v1::JobEvent&)>& emit,
      const std::function<bool()>& cancelled);

  // Releases every watcher once it has read what is recorded (shutdown).
  void Close();

 private:
  struct Log {
    std::deque<stronghold::v1::JobEvent> events;
    int64_t dropped = 0;  // events dropped from the front, ever
    bool ended = false;   // the newest event shows the job ended
  };

  // Constant after construction.
  const int max_events_per_job_;

  absl::Mutex mu_;
  absl::CondVar cv_;  // signalled on new events and on Close()
  std::map<int64_t, Log> logs_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_JOB_EVENTS_H_
