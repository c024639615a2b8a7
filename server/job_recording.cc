// JobManager's side of a running job (server/job_runner.h's JobRecorder):
// what the job reports (steps, notes, checkpoints, traces) goes into its
// record and events, and whether it must stop. Beside job_manager.cc, which
// owns the queue and the state machine.
#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "server/job_limits.h"
#include "server/job_manager.h"

namespace stronghold::server {

namespace v1 = ::stronghold::v1;

void JobManager::RecordStep(int64_t id, const v1::StepMetrics& metrics) {
  absl::MutexLock lock(&mu_);
  Record& r = jobs_.at(id);
  r.job.set_step(metrics.step());
  r.job.set_last_loss(metrics.loss());
  *r.job.mutable_last_metrics() = metrics;
  if (options_.listener != nullptr)
    options_.listener->OnJobStep(r.job, metrics);
  const int log_every = std::max(1, r.job.spec().training().log_every());
  if (metrics.step() % log_every == 0 ||
      metrics.step() == metrics.total_steps()) {
    v1::JobEvent event;
    *event.mutable_metrics() = metrics;
    AddEventLocked(r, std::move(event));
  }
  // Progress is persisted at most every few seconds; state changes and
  // checkpoints always are.
  const auto now = std::chrono::steady_clock::now();
  if (now - r.persisted > std::chrono::seconds(5)) {
    PersistLocked(r).IgnoreError();
    r.persisted = now;
  }
}

void JobManager::RecordMessage(int64_t id, const std::string& message) {
  absl::MutexLock lock(&mu_);
  AddMessageLocked(jobs_.at(id), message);
}

void JobManager::RecordCheckpoints(int64_t id,
                                   const std::vector<std::string>& present,
                                   const std::string& written) {
  absl::MutexLock lock(&mu_);
  Record& r = jobs_.at(id);
  r.job.clear_checkpoints();
  for (const std::string& c : present) r.job.add_checkpoints(c);
  AddMessageLocked(r, absl::StrCat("checkpoint ", written, " written"));
  PersistLocked(r).IgnoreError();
  // The reservation at submission bounds this; a job found past its quota
  // anyway (a checkpoint larger than estimated) stops before another.
  const absl::Status held = CheckCheckpointsHeld(
      options_.limits, DirectoryBytes(store_.CheckpointsDir(id)));
  if (!held.ok())
    r.quota_error = absl::StrCat("RESOURCE_EXHAUSTED: ", held.message());
}

void JobManager::RecordTrace(int64_t id, int64_t step,
                             const std::string& json) {
  absl::MutexLock lock(&mu_);
  Record& r = jobs_.at(id);
  r.trace.set_name(r.job.name());
  r.trace.set_step(step);
  r.trace.set_chrome_trace_json(json);
}

void JobManager::RecordRestored(int64_t id, int64_t step) {
  absl::MutexLock lock(&mu_);
  jobs_.at(id).job.set_step(step);
}

core::StopRequest JobManager::StopRequested(int64_t id) {
  absl::MutexLock lock(&mu_);
  const Record& r = jobs_.at(id);
  if (!r.quota_error.empty()) return core::StopRequest::kCancel;
  if (r.cancel_requested) {
    return r.cancel_checkpoint ? core::StopRequest::kCheckpointAndCancel
                               : core::StopRequest::kCancel;
  }
  if (shutdown_) return core::StopRequest::kShutdown;
  return core::StopRequest::kNone;
}

}  // namespace stronghold::server
