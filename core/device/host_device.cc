#include "core/device/host_device.h"

#include <c10/core/Device.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace stronghold::core {

HostDevice::HostDevice(int64_t budget_bytes) : budget_bytes_(budget_bytes) {
  for (Queue q : {Queue::kH2D, Queue::kD2H}) {
    Worker* w = &workers_[static_cast<int>(q)];
    w->thread = std::thread([this, w] { Loop(w); });
  }
}

HostDevice::~HostDevice() {
  for (Queue q : {Queue::kH2D, Queue::kD2H}) {
    Worker& w = workers_[static_cast<int>(q)];
    {
      absl::MutexLock lock(&w.mu);
      w.stop = true;
      w.cv.SignalAll();
    }
    w.thread.join();
  }
  Reset();
}

c10::Device HostDevice::torch_device() const { return c10::Device(c10::kCPU); }

absl::StatusOr<void*> HostDevice::Allocate(int64_t bytes,
                                           const std::string& what) {
  absl::MutexLock lock(&mem_mu_);
  const int64_t rounded = (bytes + 63) / 64 * 64;
  if (used_ + rounded > budget_bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "device memory: ", what, " needs ", rounded, " bytes, ", used_,
        " of the budget of ", budget_bytes_, " bytes are in use"));
  }
  void* p = std::aligned_alloc(64, static_cast<size_t>(rounded));
  if (p == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "host allocation of ", rounded, " bytes for ", what, " failed"));
  }
  blocks_.push_back(p);
  used_ += rounded;
  peak_ = std::max(peak_, used_);
  return p;
}

void HostDevice::Reset() {
  // Copies still queued (a step that stopped half way) may write the arena.
  for (Queue q : {Queue::kH2D, Queue::kD2H}) HostWait(Record(q));
  absl::MutexLock lock(&mem_mu_);
  for (void* p : blocks_) std::free(p);
  blocks_.clear();
  used_ = 0;
  peak_ = 0;
}

int64_t HostDevice::used_bytes() const {
  absl::MutexLock lock(const_cast<absl::Mutex*>(&mem_mu_));
  return used_;
}

int64_t HostDevice::peak_bytes() const {
  absl::MutexLock lock(const_cast<absl::Mutex*>(&mem_mu_));
  return peak_;
}

absl::StatusOr<void*> HostDevice::AllocateHost(int64_t bytes) {
  constexpr int64_t kAlign = 4096;  // Device::AllocateHost's promise
  void* p = std::aligned_alloc(
      kAlign, static_cast<size_t>((bytes + kAlign - 1) / kAlign * kAlign));
  if (p == nullptr)
    return absl::ResourceExhaustedError(
        absl::StrCat("host allocation of ", bytes, " bytes failed"));
  return p;
}

void HostDevice::FreeHost(void* p) { std::free(p); }

void HostDevice::Submit(Queue queue, const Task& task) {
  CHECK(queue != Queue::kCompute);
  Worker& w = workers_[static_cast<int>(queue)];
  absl::MutexLock lock(&w.mu);
  w.tasks.push_back(task);
  ++w.submitted;
  w.cv.SignalAll();
}

void HostDevice::Loop(Worker* w) {
  while (true) {
    Task task;
    {
      absl::MutexLock lock(&w->mu);
      while (w->tasks.empty() && !w->stop) w->cv.Wait(&w->mu);
      if (w->tasks.empty()) return;
      task = w->tasks.front();
      w->tasks.pop_front();
    }
    if (task.bytes > 0) {
      const int64_t start = Timeline::NowNs();
      std::memcpy(task.dst, task.src, static_cast<size_t>(task.bytes));
      if (timeline_ != nullptr) {
        const bool h2d = w == &workers_[static_cast<int>(Queue::kH2D)];
        timeline_->Add({h2d ? "h2d" : "d2h", h2d ? Lane::kH2D : Lane::kD2H,
                        task.layer, start, Timeline::NowNs()});
      }
    } else {
      HostWait(task.wait);
    }
    absl::MutexLock lock(&w->mu);
    ++w->completed;
    w->cv.SignalAll();
  }
}

void HostDevice::Copy(Queue queue, void* dst, const void* src, int64_t bytes,
                      int layer) {
  if (bytes > 0) Submit(queue, Task{dst, src, bytes, Event{}, layer});
}

Event HostDevice::Record(Queue queue) {
  if (queue == Queue::kCompute) return Event{};  // compute is synchronous
  Worker& w = workers_[static_cast<int>(queue)];
  absl::MutexLock lock(&w.mu);
  return Event{queue, w.submitted};
}

void HostDevice::QueueWait(Queue queue, Event event) {
  if (event.sequence == 0 || event.queue == queue)
    return;  // same queue: already ordered
  if (queue == Queue::kCompute) {
    HostWait(event);
    return;
  }
  Submit(queue, Task{nullptr, nullptr, 0, event});
}

void HostDevice::HostWait(Event event) {
  if (event.sequence == 0) return;
  Worker& w = workers_[static_cast<int>(event.queue)];
  absl::MutexLock lock(&w.mu);
  while (w.completed < event.sequence) w.cv.Wait(&w.mu);
}

bool HostDevice::Done(Event event) {
  if (event.sequence == 0) return true;
  Worker& w = workers_[static_cast<int>(event.queue)];
  absl::MutexLock lock(&w.mu);
  return w.completed >= event.sequence;
}

}  // namespace stronghold::core
