#include "server/watch_reactor.h"

#include <utility>
#include <vector>

#include "server/service.h"

namespace stronghold::server {

namespace v1 = ::stronghold::v1;

WatchReactor* WatchReactor::Start(JobManager* jobs,
                                  const v1::WatchJobRequest& request,
                                  const std::string& principal) {
  auto* reactor = new WatchReactor();
  // The wake may run before Start returns: a write started before gRPC
  // binds the reactor to its stream is held until then.
  absl::StatusOr<std::unique_ptr<JobWatch>> watch =
      jobs->Follow(request.name(), request.since_step(), principal,
                   [reactor] { reactor->Pump(); });
  if (!watch.ok()) {
    absl::MutexLock lock(&reactor->mu_);
    reactor->FinishLocked(ToGrpcStatus(watch.status()));
    return reactor;
  }
  {
    absl::MutexLock lock(&reactor->mu_);
    reactor->watch_ = *std::move(watch);
  }
  reactor->Pump();
  return reactor;
}

WatchReactor* WatchReactor::Refuse(const absl::Status& status) {
  auto* reactor = new WatchReactor();
  absl::MutexLock lock(&reactor->mu_);
  reactor->FinishLocked(ToGrpcStatus(status));
  return reactor;
}

void WatchReactor::Pump() {
  absl::MutexLock lock(&mu_);
  // watch_ is null only before Start has set it (a wake that came early:
  // Start pumps next).
  if (finished_ || writing_ || watch_ == nullptr) return;
  if (pending_.empty() && !log_done_) {
    std::vector<v1::JobEvent> batch;
    log_done_ = watch_->Read(&batch);
    for (v1::JobEvent& e : batch) pending_.push_back(std::move(e));
  }
  if (!pending_.empty()) {
    current_ = std::move(pending_.front());
    pending_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  } else if (log_done_) {
    FinishLocked(grpc::Status::OK);
  }
  // Else wait for the log's wake.
}

void WatchReactor::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok || cancelled_) {
      FinishLocked(
          grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
  }
  Pump();
}

void WatchReactor::OnCancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  // A write in flight completes (not ok) first; OnWriteDone finishes then.
  if (!writing_)
    FinishLocked(
        grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
}

void WatchReactor::OnDone() {
  std::unique_ptr<JobWatch> watch;
  {
    absl::MutexLock lock(&mu_);
    watch = std::move(watch_);  // a later wake finds none
  }
  // Without mu_: destroying the watch waits for a wake in progress, which
  // takes mu_.
  watch.reset();
  delete this;
}

void WatchReactor::FinishLocked(const grpc::Status& status) {
  if (finished_) return;
  finished_ = true;
  Finish(status);
}

}  // namespace stronghold::server
