#include "tests/core/fault_injecting_device.h"

#include <c10/core/Device.h>

#include "absl/strings/str_cat.h"

namespace stronghold::core {

FaultInjectingDevice::FaultInjectingDevice(int64_t budget_bytes)
    : base_(budget_bytes) {}

c10::Device FaultInjectingDevice::torch_device() const {
  return base_.torch_device();
}

void FaultInjectingDevice::FailNthAllocate(int64_t n) {
  absl::MutexLock lock(&mu_);
  fail_allocate_at_ = allocations_ + n;
}

void FaultInjectingDevice::FailNthCopy(int64_t n, bool lost) {
  absl::MutexLock lock(&mu_);
  fail_copy_at_ = copies_ + n;
  fail_copy_lost_ = lost;
}

void FaultInjectingDevice::ThrowOnNthCopy(int64_t n, std::exception_ptr error) {
  absl::MutexLock lock(&mu_);
  throw_copy_at_ = copies_ + n;
  copy_error_ = std::move(error);
}

void FaultInjectingDevice::ThrowOnNthWorkerWait(int64_t n,
                                                std::exception_ptr error) {
  absl::MutexLock lock(&mu_);
  throw_wait_at_ = worker_waits_ + n;
  wait_error_ = std::move(error);
}

std::string FaultInjectingDevice::failed_allocation() const {
  absl::MutexLock lock(&mu_);
  return failed_allocation_;
}

int64_t FaultInjectingDevice::copies_seen() const {
  absl::MutexLock lock(&mu_);
  return copies_;
}

absl::StatusOr<void*> FaultInjectingDevice::Allocate(int64_t bytes,
                                                     const std::string& what) {
  if (error_.lost()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the device is unusable since an earlier error lost it (",
        error_.status().message(), "); restart strongholdd to use it again"));
  }
  if (error_.failed()) return error_.status();
  {
    absl::MutexLock lock(&mu_);
    if (++allocations_ == fail_allocate_at_) {
      failed_allocation_ = what;
      return absl::ResourceExhaustedError(
          absl::StrCat("device out of memory (injected): allocation ",
                       allocations_, " of ", bytes, " bytes for ", what));
    }
  }
  return base_.Allocate(bytes, what);
}

void FaultInjectingDevice::Reset() {
  base_.Reset();
  error_.ClearRecoverable();
}

void FaultInjectingDevice::Copy(Queue queue, void* dst, const void* src,
                                int64_t bytes, int layer) {
  if (error_.failed()) return;
  std::exception_ptr throw_now;
  {
    absl::MutexLock lock(&mu_);
    ++copies_;
    if (copies_ == throw_copy_at_) throw_now = copy_error_;
    if (copies_ == fail_copy_at_) {
      error_.Record(absl::InternalError(
                        absl::StrCat("copy ", copies_, " (layer ", layer, ", ",
                                     bytes, " bytes) failed (injected)")),
                    fail_copy_lost_);
      return;
    }
  }
  if (throw_now) std::rethrow_exception(throw_now);
  base_.Copy(queue, dst, src, bytes, layer);
}

void FaultInjectingDevice::HostWait(Event event) {
  if (std::this_thread::get_id() != engine_thread_) {
    std::exception_ptr throw_now;
    {
      absl::MutexLock lock(&mu_);
      if (++worker_waits_ == throw_wait_at_) throw_now = wait_error_;
    }
    if (throw_now) std::rethrow_exception(throw_now);
  }
  base_.HostWait(event);  // the copies issued before an error finish
}

}  // namespace stronghold::core
