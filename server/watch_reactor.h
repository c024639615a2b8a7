// WatchJob on gRPC's callback API. A stream is a reactor, not a thread: it
// writes the job's events as the client takes them, waits for the next one
// without holding a thread (JobEventLog's wake), and ends as soon as its
// client goes away (OnCancel, within milliseconds), releasing its watch
// slot. A synchronous handler held a thread per stream and noticed a gone
// client only at the job's next event (issue 15 item 5: 300 abandoned
// streams on a queued job held 300 threads).
//
// Thread safety: gRPC calls the reactions, and the event log the wake, on
// threads of their own; the state between them is guarded by mu_. Lock
// order: the log's waker -> mu_ -> the log; nothing here calls into the
// log's waker (destroying the JobWatch) while holding mu_.
#ifndef STRONGHOLD_SERVER_WATCH_REACTOR_H_
#define STRONGHOLD_SERVER_WATCH_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/job_manager.h"
#include "stronghold/v1/stronghold.grpc.pb.h"

namespace stronghold::server {

class WatchReactor final
    : public grpc::ServerWriteReactor<stronghold::v1::JobEvent> {
 public:
  // Streams the events of request.name() for `principal` (JobManager::
  // Follow); a stream that cannot start (unknown job, watch limits) ends at
  // once with that status. Deletes itself when gRPC is done with it.
  static WatchReactor* Start(JobManager* jobs,
                             const stronghold::v1::WatchJobRequest& request,
                             const std::string& principal);
  // A stream refused before it starts (an unidentified caller): ends at once
  // with `status`.
  static WatchReactor* Refuse(const absl::Status& status);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  WatchReactor() = default;
  // Writes the next event, reading more from the log when none is pending,
  // or finishes once the log has no more; does nothing while a write is in
  // flight or after Finish.
  void Pump();
  // Finishes with `status` unless already finished; call with mu_ held
  // and no write in flight.
  void FinishLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  // Set once by Start, taken by OnDone.
  std::unique_ptr<JobWatch> watch_ ABSL_GUARDED_BY(mu_);
  std::deque<stronghold::v1::JobEvent> pending_ ABSL_GUARDED_BY(mu_);
  stronghold::v1::JobEvent current_
      ABSL_GUARDED_BY(mu_);  // in flight while writing_
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;  // the client went away
  bool log_done_ ABSL_GUARDED_BY(mu_) = false;   // the log has nothing more
  bool finished_ ABSL_GUARDED_BY(mu_) = false;   // Finish was called
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_WATCH_REACTOR_H_
