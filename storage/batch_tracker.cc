#include "storage/batch_tracker.h"

#include <glog/logging.h>

namespace stronghold::storage {

IoTicket BatchTracker::Begin(int64_t pieces) {
  absl::MutexLock lock(&mu_);
  const IoTicket ticket = next_ticket_++;
  batches_[ticket].pending = pieces;
  pending_total_ += pieces;
  return ticket;
}

void BatchTracker::Done(IoTicket ticket, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  auto it = batches_.find(ticket);
  CHECK(it != batches_.end()) << "completion for unknown ticket " << ticket;
  Batch& batch = it->second;
  CHECK_GT(batch.pending, 0) << "too many completions for ticket " << ticket;
  if (batch.status.ok() && !status.ok()) batch.status = status;
  --batch.pending;
  --pending_total_;
}

absl::Status BatchTracker::Wait(IoTicket ticket) {
  absl::MutexLock lock(&mu_);
  auto it = batches_.find(ticket);
  if (it == batches_.end()) {
    return absl::InvalidArgumentError("unknown or already waited-for ticket");
  }
  // Nodes of std::unordered_map stay put, so the pointer survives inserts by
  // other submitters while this thread waits.
  const Batch* batch = &it->second;
  mu_.Await(absl::Condition(
      +[](const Batch* b) { return b->pending == 0; }, batch));
  absl::Status status = it->second.status;
  batches_.erase(it);
  return status;
}

void BatchTracker::WaitIdle() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int64_t* pending) { return *pending == 0; }, &pending_total_));
}

}  // namespace stronghold::storage
