// Bookkeeping shared by the backends whose I/O completes on other threads
// (pread workers, the io_uring reaper): how many pieces of each batch are
// still running and the first error among those that finished.
#ifndef STRONGHOLD_STORAGE_BATCH_TRACKER_H_
#define STRONGHOLD_STORAGE_BATCH_TRACKER_H_

#include <cstdint>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "storage/block_device.h"

namespace stronghold::storage {

// Thread-safe.
class BatchTracker {
 public:
  // A new batch of `pieces` pieces; call before the first piece can finish.
  IoTicket Begin(int64_t pieces);
  // One piece finished with `status`.
  void Done(IoTicket ticket, const absl::Status& status);
  // Blocks until every piece of the batch finished, forgets it, and returns
  // the first error. The ticket must come from Begin() and not be waited for
  // yet.
  absl::Status Wait(IoTicket ticket);
  // Blocks until no piece of any batch is running (for destructors).
  void WaitIdle();

 private:
  struct Batch {
    int64_t pending = 0;
    absl::Status status;
  };

  absl::Mutex mu_;
  IoTicket next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t pending_total_ ABSL_GUARDED_BY(mu_) = 0;
  std::unordered_map<IoTicket, Batch> batches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_BATCH_TRACKER_H_
