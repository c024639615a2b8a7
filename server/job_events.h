// The jobs' events (state changes, per-step metrics, notes) as WatchJob
// streams them: an in-memory log per job, bounded, replayed to every
// watcher and then followed until the job ends. Events are not durable:
// after a restart a job's log starts with the restart's note, and a job
// that had already ended has no log at all.
//
// Memory is bounded twice: each job keeps its newest max_events_per_job
// events, and all jobs together at most max_events; past that, the logs of
// ended jobs are dropped whole, the longest-ended first (their records,
// with the final state and metrics, stay: GetJob). An event carries a
// summary of the job (EventJob: name, state, error, progress, times), not
// the whole record with its plan and checkpoint list.
//
// Followers are not threads: a Reader takes what was added since its last
// read, and a `wake` callback says when there is more, so a WatchJob
// stream holds no thread while it waits (server/watch_reactor.h).
//
// Thread safety: all methods are thread-safe. The log has its own lock and
// calls nothing while holding it (wakes run after it is released), so the
// job manager may Add() with its own lock held.
#ifndef STRONGHOLD_SERVER_JOB_EVENTS_H_
#define STRONGHOLD_SERVER_JOB_EVENTS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

struct JobEventLogOptions {
  // Events kept per job (>= 1); the oldest are dropped first.
  int max_events_per_job = 10'000;
  // Events kept over all jobs (>= max_events_per_job); past it the logs of
  // ended jobs are dropped, the longest-ended first.
  int64_t max_events = 100'000;
};

// What JobEvent.job carries: the job's name, display name, state, error,
// step, last loss, parameters, daemon stops and times; no spec, plan,
// checkpoint list or last metrics (GetJob has those).
stronghold::v1::Job EventJob(const stronghold::v1::Job& job);

class JobEventLog {
 public:
  explicit JobEventLog(JobEventLogOptions options);

  // Appends `event` to job `id`'s log, stamped with the current time, and
  // wakes its readers. event.job (the job after the event) says whether the
  // job has ended, which finishes the readers once they have read it.
  void Add(int64_t id, stronghold::v1::JobEvent event);

  // Drops job `id`'s log (the job was deleted); its readers finish.
  void Remove(int64_t id);

  // Finishes every reader once it has read what is recorded (shutdown).
  void Close();

  // One follower of a job's log, from its oldest kept event.
  class Reader {
   public:
    ~Reader();  // after it returns, `wake` is not running and never runs again
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    // Appends the events added since the last call (metrics of steps up to
    // since_step skipped) to `out`. True once nothing more will come: the
    // job ended (or its log was dropped, or the log closed) and every event
    // was read.
    bool Read(std::vector<stronghold::v1::JobEvent>* out);

   private:
    friend class JobEventLog;
    struct Waker;
    Reader(JobEventLog* log, int64_t id, int64_t since_step,
           std::shared_ptr<Waker> waker);

    JobEventLog* const log_;
    const int64_t id_;
    const int64_t since_step_;
    const std::shared_ptr<Waker> waker_;
    int64_t cursor_ = 0;  // absolute index of the next event to read
  };

  // A reader of job `id`'s log. `wake` runs each time the log gains an
  // event or finishes, on the thread that caused it, with no lock of the log
  // held; it must be quick and must not destroy the reader. A job without
  // a log (it ended before this daemon started, or its log was dropped)
  // gives a reader that is finished at once.
  std::unique_ptr<Reader> Follow(int64_t id, int64_t since_step,
                                 std::function<void()> wake);

 private:
  struct Log {
    std::deque<stronghold::v1::JobEvent> events;
    int64_t dropped = 0;  // events dropped from the front, ever
    bool ended = false;   // the newest event shows the job ended
    std::vector<std::shared_ptr<Reader::Waker>> wakers;
  };

  // Drops ended jobs' logs, then the oldest events of `current`, until the
  // total is within max_events; adds the dropped logs' wakers to `wakers`.
  void TrimLocked(Log& current,
                  std::vector<std::shared_ptr<Reader::Waker>>* wakers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(std::map<int64_t, Log>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes each of `wakers` (call without mu_).
  static void WakeAll(
      const std::vector<std::shared_ptr<Reader::Waker>>& wakers);

  // Constant after construction.
  const JobEventLogOptions options_;

  absl::Mutex mu_;
  std::map<int64_t, Log> logs_ ABSL_GUARDED_BY(mu_);
  std::deque<int64_t> ended_
      ABSL_GUARDED_BY(mu_);                 // jobs whose logs ended, in order
  int64_t total_ ABSL_GUARDED_BY(mu_) = 0;  // events in all logs
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_JOB_EVENTS_H_
