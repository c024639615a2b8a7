#include "server/job_events.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <utility>

namespace stronghold::server {

namespace v1 = ::stronghold::v1;

namespace {

bool Ended(v1::Job::State s) {
  return s == v1::Job::SUCCEEDED || s == v1::Job::FAILED ||
         s == v1::Job::CANCELLED;
}

}  // namespace

// A reader's wake-up, shared with the log: Add() copies the log's wakers
// under its lock and calls them after releasing it, so a reader destroyed
// meanwhile must not be called. Disarm() waits for a running call (same
// mutex) and clears the callback.
struct JobEventLog::Reader::Waker {
  void Wake() {
    absl::MutexLock lock(&mu);
    if (wake) wake();
  }
  void Disarm() {
    absl::MutexLock lock(&mu);
    wake = nullptr;
  }
  absl::Mutex mu;
  std::function<void()> wake ABSL_GUARDED_BY(mu);
};

v1::Job EventJob(const v1::Job& job) {
  v1::Job out;
  out.set_name(job.name());
  out.set_display_name(job.display_name());
  out.set_state(job.state());
  out.set_error(job.error());
  out.set_step(job.step());
  out.set_last_loss(job.last_loss());
  out.set_parameters(job.parameters());
  out.set_daemon_stops(job.daemon_stops());
  if (job.has_create_time()) *out.mutable_create_time() = job.create_time();
  if (job.has_start_time()) *out.mutable_start_time() = job.start_time();
  if (job.has_end_time()) *out.mutable_end_time() = job.end_time();
  return out;
}

JobEventLog::JobEventLog(JobEventLogOptions options)
    : options_([&] {
        options.max_events_per_job = std::max(1, options.max_events_per_job);
        options.max_events =
            std::max<int64_t>(options.max_events, options.max_events_per_job);
        return options;
      }()) {}

void JobEventLog::Add(int64_t id, v1::JobEvent event) {
  *event.mutable_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  std::vector<std::shared_ptr<Reader::Waker>> wakers;
  {
    absl::MutexLock lock(&mu_);
    Log& log = logs_[id];
    const bool was_ended = log.ended;
    log.ended = Ended(event.job().state());
    if (log.ended && !was_ended) ended_.push_back(id);
    log.events.push_back(std::move(event));
    ++total_;
    while (static_cast<int>(log.events.size()) > options_.max_events_per_job) {
      log.events.pop_front();
      ++log.dropped;
      --total_;
    }
    wakers = log.wakers;
    TrimLocked(log, &wakers);
  }
  WakeAll(wakers);
}

void JobEventLog::TrimLocked(
    Log& current, std::vector<std::shared_ptr<Reader::Waker>>* wakers) {
  while (total_ > options_.max_events && !ended_.empty()) {
    auto it = logs_.find(ended_.front());
    if (it != logs_.end() && &it->second == &current)
      break;  // the newest ended job
    if (it != logs_.end()) {
      // Its readers finish (woken once the lock is released).
      wakers->insert(wakers->end(), it->second.wakers.begin(),
                     it->second.wakers.end());
      EraseLocked(it);
    } else {
      ended_.pop_front();
    }
  }
  while (total_ > options_.max_events && current.events.size() > 1) {
    current.events.pop_front();
    ++current.dropped;
    --total_;
  }
}

void JobEventLog::EraseLocked(std::map<int64_t, Log>::iterator it) {
  total_ -= static_cast<int64_t>(it->second.events.size());
  ended_.erase(std::remove(ended_.begin(), ended_.end(), it->first),
               ended_.end());
  logs_.erase(it);
}

void JobEventLog::Remove(int64_t id) {
  std::vector<std::shared_ptr<Reader::Waker>> wakers;
  {
    absl::MutexLock lock(&mu_);
    auto it = logs_.find(id);
    if (it == logs_.end()) return;
    wakers = std::move(it->second.wakers);
    EraseLocked(it);
  }
  WakeAll(wakers);
}

void JobEventLog::Close() {
  std::vector<std::shared_ptr<Reader::Waker>> wakers;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    for (const auto& [id, log] : logs_) {
      wakers.insert(wakers.end(), log.wakers.begin(), log.wakers.end());
    }
  }
  WakeAll(wakers);
}

void JobEventLog::WakeAll(
    const std::vector<std::shared_ptr<Reader::Waker>>& wakers) {
  for (const std::shared_ptr<Reader::Waker>& w : wakers) w->Wake();
}

std::unique_ptr<JobEventLog::Reader> JobEventLog::Follow(
    int64_t id, int64_t since_step, std::function<void()> wake) {
  auto waker = std::make_shared<Reader::Waker>();
  {
    absl::MutexLock lock(&waker->mu);
    waker->wake = std::move(wake);
  }
  absl::MutexLock lock(&mu_);
  auto it = logs_.find(id);
  if (it != logs_.end()) it->second.wakers.push_back(waker);
  return std::unique_ptr<Reader>(
      new Reader(this, id, since_step, std::move(waker)));
}

JobEventLog::Reader::Reader(JobEventLog* log, int64_t id, int64_t since_step,
                            std::shared_ptr<Waker> waker)
    : log_(log), id_(id), since_step_(since_step), waker_(std::move(waker)) {}

JobEventLog::Reader::~Reader() {
  waker_->Disarm();
  absl::MutexLock lock(&log_->mu_);
  auto it = log_->logs_.find(id_);
  if (it == log_->logs_.end()) return;
  std::vector<std::shared_ptr<Waker>>& wakers = it->second.wakers;
  wakers.erase(std::remove(wakers.begin(), wakers.end(), waker_), wakers.end());
}

bool JobEventLog::Reader::Read(std::vector<v1::JobEvent>* out) {
  absl::MutexLock lock(&log_->mu_);
  auto it = log_->logs_.find(id_);
  if (it == log_->logs_.end()) return true;
  const Log& log = it->second;
  cursor_ = std::max(cursor_, log.dropped);
  const int64_t end = log.dropped + static_cast<int64_t>(log.events.size());
  for (; cursor_ < end; ++cursor_) {
    const v1::JobEvent& e = log.events[cursor_ - log.dropped];
    if (e.has_metrics() && e.metrics().step() <= since_step_) continue;
    out->push_back(e);
  }
  return log.ended || log_->closed_;
}

}  // namespace stronghold::server
