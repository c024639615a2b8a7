// The compute device as the offload scheduler sees it: memory with a hard
// budget, three ordered queues (compute, host-to-device copies,
// device-to-host copies) and events between them. Two implementations run the
// same scheduler (core/engine/engine.cc):
//   HostDevice (core/device/host_device.h): CPU compute, an arena standing in
//   for GPU
//     memory, one copy thread per copy queue. CI exercises the schedule on it.
//   CudaDevice (core/device/cuda_device.h): a compute stream, H2D and D2H
//   streams,
//     CUDA events, pinned host memory.
//
// Ordering contract (what the artifact got wrong): work on a queue runs in
// submission order; a queue waits for another queue's work only through
// QueueWait(queue, event). A buffer may be reused only after an event recorded
// after its last use on *every* queue that touched it has completed.
//
// Errors (what the daemon must survive): Allocate() and AllocateHost()
// return them. Copy, Record, QueueWait, HostWait, Done and FlushTimeline sit
// on the hot path and return nothing: a device whose work can fail (CUDA)
// keeps the first failure as a sticky error (core/device/sticky_error.h),
// issues no copies or events after it (waits still wait for the work issued
// before, so no buffer is freed under a copy; events recorded after it are
// done at once, and the data of that step is undefined) and reports it in
// status(). The
// engine checks status() after each step, in Drain() and when it allocates,
// and fails the job with it. Reset() forgets an error the device recovers
// from; after one that lost the device (a CUDA kernel fault: every later
// CUDA call of the process fails) every later job's Allocate() fails,
// saying that the daemon must be restarted.
//
// Thread safety: one thread (the engine) drives a device; the engine's CPU
// worker and tier reader may wait on it. Events are values.
#ifndef STRONGHOLD_CORE_DEVICE_DEVICE_H_
#define STRONGHOLD_CORE_DEVICE_DEVICE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/device/timeline.h"

namespace c10 {
struct Device;
}

namespace stronghold::core {

enum class Queue : int { kCompute = 0, kH2D = 1, kD2H = 2 };
inline constexpr int kQueues = 3;

// A point in one queue's work: done once everything submitted to `queue`
// before it has completed. Default-constructed events are complete.
struct Event {
  Queue queue = Queue::kCompute;
  uint64_t sequence = 0;  // 0 = nothing to wait for
};

class Device {
 public:
  virtual ~Device() = default;

  // "cpu" or "cuda:0".
  virtual std::string name() const = 0;
  // Where LibTorch tensors for compute live (kCPU for HostDevice).
  virtual c10::Device torch_device() const = 0;

  // Device memory. Allocate() takes `bytes` from the budget (64-byte
  // aligned) or fails with RESOURCE_EXHAUSTED naming `what`, the request,
  // what is in use and the budget. Memory stays allocated until Reset().
  virtual absl::StatusOr<void*> Allocate(int64_t bytes,
                                         const std::string& what) = 0;
  // Frees everything Allocate() returned (between jobs) and forgets a
  // recoverable error (see status()). Waits for the work queued before
  // (a step that failed half way may have left some).
  virtual void Reset() = 0;
  virtual int64_t budget_bytes() const = 0;
  virtual int64_t used_bytes() const = 0;
  virtual int64_t peak_bytes() const = 0;

  // Host memory suited to copies (pinned on CUDA), aligned to 4096 bytes
  // (O_DIRECT reads from the NVMe tier land in it). Freed with FreeHost().
  virtual absl::StatusOr<void*> AllocateHost(int64_t bytes) = 0;
  virtual void FreeHost(void* p) = 0;

  // Queues a copy of `bytes` on `queue` (kH2D: host -> device, kD2H:
  // device -> host). It runs after earlier work on that queue. `layer` only
  // labels the copy in the timeline.
  virtual void Copy(Queue queue, void* dst, const void* src, int64_t bytes,
                    int layer) = 0;
  // An event marking all work submitted to `queue` so far.
  virtual Event Record(Queue queue) = 0;
  // Work submitted to `queue` after this call runs only after `event`.
  virtual void QueueWait(Queue queue, Event event) = 0;
  // Blocks the calling thread until `event` has completed.
  virtual void HostWait(Event event) = 0;
  // Whether `event` has completed, without blocking.
  virtual bool Done(Event event) = 0;
  // Makes LibTorch compute issued by the calling thread run on the compute
  // queue (a no-op for HostDevice). Returns a guard object to keep alive.
  virtual std::shared_ptr<void> ComputeScope() = 0;
  // Where copies record their spans (may be null; not owned).
  virtual void set_timeline(Timeline* timeline) = 0;
  // Adds the spans of copies that have finished but are not in the timeline
  // yet (CUDA times them on the GPU and reads them back here; the host
  // device records them as they happen, and this is a no-op).
  virtual void FlushTimeline() {}
  // The first error of the work above (sticky until Reset(), or for good
  // when it lost the device), OK if none. INTERNAL naming the call and the
  // cause, RESOURCE_EXHAUSTED for an out-of-memory. HostDevice's copies
  // cannot fail: it keeps this default.
  virtual absl::Status status() const { return absl::OkStatus(); }
};

// The device for `name` ("cpu", "cuda:N") with a memory budget of
// `budget_bytes`. UNIMPLEMENTED for cuda when this binary was built without
// the CUDA device.
absl::StatusOr<std::unique_ptr<Device>> CreateDevice(const std::string& name,
                                                     int64_t budget_bytes);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DEVICE_DEVICE_H_
