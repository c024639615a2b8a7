// HostDevice: runs the offload schedule on the CPU. Compute is the calling
// thread; device memory is an arena with a hard byte budget (what a GPU of
// that size would hold); each copy queue is a thread that memcpy's between
// host buffers and the arena in submission order, so copies overlap compute
// exactly where they would on a GPU.
#ifndef STRONGHOLD_CORE_DEVICE_HOST_DEVICE_H_
#define STRONGHOLD_CORE_DEVICE_HOST_DEVICE_H_

#include <array>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/device/device.h"

namespace stronghold::core {

class HostDevice final : public Device {
 public:
  explicit HostDevice(int64_t budget_bytes);
  ~HostDevice() override;

  std::string name() const override { return "cpu"; }
  c10::Device torch_device() const override;
  absl::StatusOr<void*> Allocate(int64_t bytes,
                                 const std::string& what) override;
  void Reset() override;
  int64_t budget_bytes() const override { return budget_bytes_; }
  int64_t used_bytes() const override;
  int64_t peak_bytes() const override;
  absl::StatusOr<void*> AllocateHost(int64_t bytes) override;
  void FreeHost(void* p) override;
  void Copy(Queue queue, void* dst, const void* src, int64_t bytes,
            int layer) override;
  Event Record(Queue queue) override;
  void QueueWait(Queue queue, Event event) override;
  void HostWait(Event event) override;
  bool Done(Event event) override;
  std::shared_ptr<void> ComputeScope() override { return nullptr; }
  void set_timeline(Timeline* timeline) override { timeline_ = timeline; }

 private:
  // A copy, or (bytes == 0) a wait for another queue's event.
  struct Task {
    void* dst = nullptr;
    const void* src = nullptr;
    int64_t bytes = 0;
    Event wait;
    int layer = -1;
  };
  // One copy queue: a thread running tasks in order. Task k (1-based) done
  // <=> completed >= k.
  struct Worker {
    absl::Mutex mu;
    absl::CondVar cv;
    std::deque<Task> tasks ABSL_GUARDED_BY(mu);
    uint64_t submitted ABSL_GUARDED_BY(mu) = 0;
    uint64_t completed ABSL_GUARDED_BY(mu) = 0;
    bool stop ABSL_GUARDED_BY(mu) = false;
    std::thread thread;
  };
  void Submit(Queue queue, const Task& task);
  void Loop(Worker* w);

  const int64_t budget_bytes_;
  Timeline* timeline_ = nullptr;  // set while the engine runs a job
  std::array<Worker, kQueues>
      workers_;  // [kCompute] unused: compute is synchronous

  absl::Mutex mem_mu_;
  std::vector<void*> blocks_ ABSL_GUARDED_BY(mem_mu_);
  int64_t used_ ABSL_GUARDED_BY(mem_mu_) = 0;
  int64_t peak_ ABSL_GUARDED_BY(mem_mu_) = 0;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DEVICE_HOST_DEVICE_H_
