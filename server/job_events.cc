#include "server/job_events.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace stronghold::server {

namespace v1 = ::stronghold::v1;

namespace {

bool Ended(v1::Job::State s) {
  return s == v1::Job::SUCCEEDED || s == v1::Job::FAILED ||
         s == v1::Job::CANCELLED;
}

}  // namespace

JobEventLog::JobEventLog(int max_events_per_job)
    : max_events_per_job_(std::max(1, max_events_per_job)) {}

void JobEventLog::Add(int64_t id, v1::JobEvent event) {
  *event.mutable_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  absl::MutexLock lock(&mu_);
  Log& log = logs_[id];
  log.ended = Ended(event.job().state());
  log.events.push_back(std::move(event));
  while (static_cast<int>(log.events.size()) > max_events_per_job_) {
    log.events.pop_front();
    ++log.dropped;
  }
  cv_.SignalAll();
}

void JobEventLog::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  cv_.SignalAll();
}

absl::Status JobEventLog::Watch(
    int64_t id, int64_t since_step,
    const std::function<bool(const v1::JobEvent&)>& emit,
    const std::function<bool()>& cancelled) {
  int64_t cursor = 0;  // absolute index of the next event to send
  while (true) {
    std::vector<v1::JobEvent> batch;
    bool ended = false;
    {
      absl::MutexLock lock(&mu_);
      auto it = logs_.find(id);
      if (it == logs_.end()) return absl::OkStatus();
      const Log& log = it->second;
      cursor = std::max(cursor, log.dropped);
      const int64_t end = log.dropped + static_cast<int64_t>(log.events.size());
      if (cursor == end && !log.ended && !closed_) {
        cv_.WaitWithTimeout(&mu_, absl::Milliseconds(500));
        continue;
      }
      for (; cursor < end; ++cursor) {
        batch.push_back(log.events[cursor - log.dropped]);
      }
      ended = log.ended || closed_;
    }
    for (const v1::JobEvent& e : batch) {
      if (e.has_metrics() && e.metrics().step() <= since_step) continue;
      if (!emit(e)) return absl::OkStatus();
    }
    if (ended && batch.empty()) return absl::OkStatus();
    if (cancelled())
      return absl::CancelledError("watch cancelled by the client");
  }
}

}  // namespace stronghold::server
