// The first error of a device's queued work, kept until the device may be
// used again. Copies, events and waits sit on the engine's hot path and
// return nothing (core/device/device.h); a device that fails one of them
// records the failure here, stops issuing work, and the engine reads
// status() where a step can fail. Like storage/block_device.h's write
// errors, the error is sticky: after it, what the queues did is unknown.
//
// Two kinds: a recoverable error (an out-of-memory, a bad argument) is
// forgotten by ClearRecoverable() between jobs, once the queues are idle;
// one that lost the device (CUDA: an illegal address or a kernel fault,
// after which every CUDA call of the process fails) is kept for the life of
// the process.
//
// Thread-safe: the engine thread, the CPU worker and the tier reader all
// wait on the device.
#ifndef STRONGHOLD_CORE_DEVICE_STICKY_ERROR_H_
#define STRONGHOLD_CORE_DEVICE_STICKY_ERROR_H_

#include <atomic>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace stronghold::core {

class StickyError {
 public:
  // Keeps `error` (not OK) unless an error is kept already (then returns
  // false: the first error is the cause, later ones follow from it).
  // `lost`: the device is unusable for the rest of the process.
  bool Record(absl::Status error, bool lost);
  // Cheap (one atomic load): whether an error is kept.
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // Whether the kept error lost the device.
  bool lost() const;
  // The kept error, or OK.
  absl::Status status() const;
  // Forgets a recoverable error (between jobs); a lost device's stays.
  void ClearRecoverable();

 private:
  std::atomic<bool> failed_{false};
  mutable absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DEVICE_STICKY_ERROR_H_
