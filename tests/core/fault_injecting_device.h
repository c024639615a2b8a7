// A compute device that fails the way a GPU does, for tests: it wraps a
// HostDevice and makes a chosen allocation run out of memory, a chosen copy
// fail (a recoverable error, or one that loses the device, like a CUDA
// kernel fault), or a chosen copy or CPU-worker wait throw. Failures follow
// CudaDevice's contract (core/device/device.h): an allocation's is its
// status; a copy's is the sticky status(), after which no copy is issued
// until Reset() forgets a recoverable one; after a lost one every
// Allocate() is FAILED_PRECONDITION.
//
// Operations are counted 1-based from when a fault is armed; each fault
// fires once. Its name is "cpu", like the device it wraps.
#ifndef STRONGHOLD_TESTS_CORE_FAULT_INJECTING_DEVICE_H_
#define STRONGHOLD_TESTS_CORE_FAULT_INJECTING_DEVICE_H_

#include <cstdint>
#include <exception>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/device/device.h"
#include "core/device/host_device.h"
#include "core/device/sticky_error.h"

namespace stronghold::core {

class FaultInjectingDevice final : public Device {
 public:
  explicit FaultInjectingDevice(int64_t budget_bytes);

  // The n-th Allocate() from now fails like cudaMalloc out of memory.
  void FailNthAllocate(int64_t n);
  // The n-th Copy() from now is not done: the device keeps an INTERNAL
  // error naming it; `lost`: one that loses the device.
  void FailNthCopy(int64_t n, bool lost);
  // The n-th Copy() from now throws `error` (on the engine's thread).
  void ThrowOnNthCopy(int64_t n, std::exception_ptr error);
  // The n-th HostWait() from now called by another thread than the one
  // that created the device (the engine's CPU worker) throws `error`.
  void ThrowOnNthWorkerWait(int64_t n, std::exception_ptr error);

  // What the failed allocation was for ("" until one failed).
  std::string failed_allocation() const;
  int64_t copies_seen() const;

  std::string name() const override { return base_.name(); }
  c10::Device torch_device() const override;
  absl::StatusOr<void*> Allocate(int64_t bytes,
                                 const std::string& what) override;
  void Reset() override;
  int64_t budget_bytes() const override { return base_.budget_bytes(); }
  int64_t used_bytes() const override { return base_.used_bytes(); }
  int64_t peak_bytes() const override { return base_.peak_bytes(); }
  absl::StatusOr<void*> AllocateHost(int64_t bytes) override {
    return base_.AllocateHost(bytes);
  }
  void FreeHost(void* p) override { base_.FreeHost(p); }
  void Copy(Queue queue, void* dst, const void* src, int64_t bytes,
            int layer) override;
  Event Record(Queue queue) override { return base_.Record(queue); }
  void QueueWait(Queue queue, Event event) override {
    base_.QueueWait(queue, event);
  }
  void HostWait(Event event) override;
  bool Done(Event event) override { return base_.Done(event); }
  std::shared_ptr<void> ComputeScope() override { return base_.ComputeScope(); }
  void set_timeline(Timeline* timeline) override {
    base_.set_timeline(timeline);
  }
  absl::Status status() const override { return error_.status(); }

 private:
  HostDevice base_;
  const std::thread::id engine_thread_ = std::this_thread::get_id();
  StickyError error_;

  mutable absl::Mutex mu_;
  int64_t allocations_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t copies_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t worker_waits_ ABSL_GUARDED_BY(mu_) = 0;
  // Armed faults as absolute operation numbers (0: none).
  int64_t fail_allocate_at_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t fail_copy_at_ ABSL_GUARDED_BY(mu_) = 0;
  bool fail_copy_lost_ ABSL_GUARDED_BY(mu_) = false;
  int64_t throw_copy_at_ ABSL_GUARDED_BY(mu_) = 0;
  std::exception_ptr copy_error_ ABSL_GUARDED_BY(mu_);
  int64_t throw_wait_at_ ABSL_GUARDED_BY(mu_) = 0;
  std::exception_ptr wait_error_ ABSL_GUARDED_BY(mu_);
  std::string failed_allocation_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_TESTS_CORE_FAULT_INJECTING_DEVICE_H_
