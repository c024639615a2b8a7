#include "core/device/cuda_device.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <array>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/device/host_buffer_cache.h"
#include "core/device/timeline.h"
#include "glog/logging.h"

namespace stronghold::core {

namespace {

#define SH_CUDA_CHECK(expr)                                                       \
  do {                                                                            \
    const cudaError_t sh_err_ = (expr);                                           \
    CHECK_EQ(sh_err_, cudaSuccess) << #expr << ": " << cudaGetErrorString(sh_err_); \
  } while (0)

// Events per queue. An event value stays valid until its queue has recorded
// this many more; the engine records a few per layer per step and waits on
// nothing older than one step.
constexpr int kEventRing = 8192;

absl::StatusOr<void*> PinnedAlloc(int64_t bytes) {
  void* p = nullptr;
  const cudaError_t err = cudaHostAlloc(&p, static_cast<size_t>(bytes), cudaHostAllocDefault);
  if (err != cudaSuccess) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cudaHostAlloc (pinned) of ", bytes, " bytes: ", cudaGetErrorString(err),
        " (check RLIMIT_MEMLOCK / LimitMEMLOCK)"));
  }
  return p;
}

class CudaDevice final : public Device {
 public:
  CudaDevice(int index, int64_t budget_bytes)
      : index_(index),
        budget_bytes_(budget_bytes),
        streams_{c10::cuda::getStreamFromPool(/*isHighPriority=*/true, index),
                 c10::cuda::getStreamFromPool(false, index),
                 c10::cuda::getStreamFromPool(false, index)} {
    c10::cuda::CUDAGuard guard(index_);
    for (auto& ring : events_) {
      ring.resize(kEventRing);
      for (cudaEvent_t& e : ring) SH_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    }
  }

  ~CudaDevice() override {
    c10::cuda::CUDAGuard guard(index_);
    for (auto& s : streams_) SH_CUDA_CHECK(cudaStreamSynchronize(s.stream()));
    Reset();
    for (auto& ring : events_) {
      for (cudaEvent_t e : ring) cudaEventDestroy(e);
    }
    for (auto& [start, end] : timing_) {
      cudaEventDestroy(start);
      cudaEventDestroy(end);
    }
    if (anchor_ != nullptr) cudaEventDestroy(anchor_);
  }

  std::string name() const override { return absl::StrCat("cuda:", index_); }
  c10::Device torch_device() const override { return c10::Device(c10::kCUDA, index_); }

  absl::StatusOr<void*> Allocate(int64_t bytes, const std::string& what) override {
    absl::MutexLock lock(&mu_);
    if (used_ + bytes > budget_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "device memory: ", what, " needs ", bytes, " bytes, ", used_, " of the budget of ",
          budget_bytes_, " bytes are in use"));
    }
    c10::cuda::CUDAGuard guard(index_);
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, static_cast<size_t>(bytes));
    if (err != cudaSuccess) {
      return absl::ResourceExhaustedError(absl::StrCat("cudaMalloc of ", bytes, " bytes for ", what,
                                                       ": ", cudaGetErrorString(err)));
    }
    blocks_.push_back(p);
    used_ += bytes;
    peak_ = std::max(peak_, used_);
    return p;
  }

  void Reset() override {
    absl::MutexLock lock(&mu_);
    for (void* p : blocks_) cudaFree(p);
    blocks_.clear();
    used_ = 0;
    peak_ = 0;
  }

  int64_t budget_bytes() const override { return budget_bytes_; }
  int64_t used_bytes() const override {
    absl::MutexLock lock(&mu_);
    return used_;
  }
  int64_t peak_bytes() const override {
    absl::MutexLock lock(&mu_);
    return peak_;
  }

  // Pinned memory comes from the daemon-long cache: a job's blocks serve the
  // next job of the same shape without pinning anew.
  absl::StatusOr<void*> AllocateHost(int64_t bytes) override { return pinned_.Allocate(bytes); }
  void FreeHost(void* p) override { pinned_.Release(p); }

  void Copy(Queue queue, void* dst, const void* src, int64_t bytes, int layer) override {
    CHECK(queue != Queue::kCompute);
    const cudaMemcpyKind kind =
        queue == Queue::kH2D ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
    const int pair = timeline_ != nullptr ? TakeTimingPair() : -1;
    if (pair >= 0) SH_CUDA_CHECK(cudaEventRecord(timing_[pair].first, stream(queue)));
    SH_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), kind, stream(queue)));
    if (pair >= 0) {
      SH_CUDA_CHECK(cudaEventRecord(timing_[pair].second, stream(queue)));
      timed_.push_back({queue, layer, pair, queue});
    }
  }

  Event Record(Queue queue) override {
    const int q = static_cast<int>(queue);
    const uint64_t seq = ++recorded_[q];
    SH_CUDA_CHECK(cudaEventRecord(event(queue, seq), stream(queue)));
    return Event{queue, seq};
  }

  // A compute-queue wait is timed like a copy: the event before it passes
  // when the compute before it is done, the one after it when the awaited
  // copy is done too, so the time between them is the wait compute saw.
  void QueueWait(Queue queue, Event e) override {
    if (e.sequence == 0 || e.queue == queue) return;
    CheckLive(e);
    const int pair = timeline_ != nullptr && queue == Queue::kCompute ? TakeTimingPair() : -1;
    if (pair >= 0) SH_CUDA_CHECK(cudaEventRecord(timing_[pair].first, stream(queue)));
    SH_CUDA_CHECK(cudaStreamWaitEvent(stream(queue), event(e.queue, e.sequence), 0));
    if (pair >= 0) {
      SH_CUDA_CHECK(cudaEventRecord(timing_[pair].second, stream(queue)));
      timed_.push_back({queue, /*layer=*/-1, pair, e.queue});
    }
  }

  void HostWait(Event e) override {
    if (e.sequence == 0) return;
    CheckLive(e);
    SH_CUDA_CHECK(cudaEventSynchronize(event(e.queue, e.sequence)));
  }

  bool Done(Event e) override {
    if (e.sequence == 0) return true;
    // An event older than the ring shares its CUDA event with a later one on
    // the same stream: that one's completion implies this one's.
    const cudaError_t err = cudaEventQuery(event(e.queue, e.sequence));
    if (err == cudaErrorNotReady) return false;
    SH_CUDA_CHECK(err);
    return true;
  }

  std::shared_ptr<void> ComputeScope() override {
    return std::make_shared<c10::cuda::CUDAStreamGuard>(streams_[0]);
  }

  // Copies are timed with a pair of timing events around each (a separate
  // pool: the ordering events are created without timing, which is cheaper).
  void set_timeline(Timeline* timeline) override {
    FlushTimeline();
    timeline_ = timeline;
    if (timeline_ == nullptr) {  // copies still in flight are not reported
      for (const TimedCopy& t : timed_) free_pairs_.push_back(t.pair);
      timed_.clear();
    }
  }

  // GPU timestamps become host clock times through an anchor event: record
  // it now, wait for it, and read the host clock; every finished copy's
  // events are then that many milliseconds before the anchor.
  void FlushTimeline() override {
    if (timeline_ == nullptr || timed_.empty()) return;
    if (anchor_ == nullptr) SH_CUDA_CHECK(cudaEventCreate(&anchor_));
    SH_CUDA_CHECK(cudaEventRecord(anchor_, stream(Queue::kD2H)));
    SH_CUDA_CHECK(cudaEventSynchronize(anchor_));
    const int64_t anchor_ns = Timeline::NowNs();
    std::vector<TimedCopy> pending;
    for (const TimedCopy& t : timed_) {
      const auto& [start, end] = timing_[t.pair];
      if (cudaEventQuery(end) != cudaSuccess) {  // still queued behind a wait
        pending.push_back(t);
        continue;
      }
      float before_start = 0, before_end = 0;  // ms before the anchor
      SH_CUDA_CHECK(cudaEventElapsedTime(&before_start, start, anchor_));
      SH_CUDA_CHECK(cudaEventElapsedTime(&before_end, end, anchor_));
      const int64_t start_ns = anchor_ns - static_cast<int64_t>(before_start * 1e6);
      const int64_t end_ns = anchor_ns - static_cast<int64_t>(before_end * 1e6);
      const bool h2d = t.on == Queue::kH2D;
      if (t.queue != Queue::kCompute) {
        timeline_->Add({h2d ? "h2d" : "d2h", h2d ? Lane::kH2D : Lane::kD2H, t.layer, start_ns,
                        end_ns});
      } else if (end_ns - start_ns > 100'000) {  // as the host device: waits over 0.1 ms
        timeline_->Add({h2d ? "wait_h2d" : "wait_d2h", Lane::kWait, t.layer, start_ns, end_ns});
      }
      free_pairs_.push_back(t.pair);
    }
    timed_ = std::move(pending);
  }

 private:
  cudaStream_t stream(Queue q) const { return streams_[static_cast<int>(q)].stream(); }
  cudaEvent_t event(Queue q, uint64_t seq) const {
    return events_[static_cast<int>(q)][seq % kEventRing];
  }
  // A free pair of timing events, created on first use; -1 when all are in
  // flight (that copy is then not timed).
  int TakeTimingPair() {
    if (free_pairs_.empty()) {
      if (timing_.size() >= kTimingPairs) return -1;
      std::pair<cudaEvent_t, cudaEvent_t> p;
      SH_CUDA_CHECK(cudaEventCreate(&p.first));
      SH_CUDA_CHECK(cudaEventCreate(&p.second));
      timing_.push_back(p);
      return static_cast<int>(timing_.size()) - 1;
    }
    const int pair = free_pairs_.back();
    free_pairs_.pop_back();
    return pair;
  }
  void CheckLive(Event e) const {
    CHECK_LT(recorded_[static_cast<int>(e.queue)] - e.sequence, static_cast<uint64_t>(kEventRing))
        << "event reused before it was waited on";
  }

  const int index_;
  const int64_t budget_bytes_;
  std::array<c10::cuda::CUDAStream, kQueues> streams_;   // compute, h2d, d2h
  std::array<std::vector<cudaEvent_t>, kQueues> events_;
  std::array<uint64_t, kQueues> recorded_{};  // engine thread only

  // Copy timing (engine thread only).
  struct TimedCopy {  // a copy on `queue`, or a wait of the compute queue
    Queue queue;
    int layer;
    int pair;
    Queue on;  // the copy's queue, or the queue the compute queue waited on
  };
  static constexpr size_t kTimingPairs = 4096;  // copies timed between two flushes
  Timeline* timeline_ = nullptr;
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> timing_;
  std::vector<int> free_pairs_;
  std::vector<TimedCopy> timed_;
  cudaEvent_t anchor_ = nullptr;

  mutable absl::Mutex mu_;
  std::vector<void*> blocks_ ABSL_GUARDED_BY(mu_);
  int64_t used_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t peak_ ABSL_GUARDED_BY(mu_) = 0;
  // Last member: freed after the streams are synchronized in the destructor.
  HostBufferCache pinned_{PinnedAlloc, [](void* p) { cudaFreeHost(p); }};
};

}  // namespace

absl::StatusOr<std::unique_ptr<Device>> CreateCudaDevice(int index, int64_t budget_bytes) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || index < 0 || index >= count) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--device: cuda:", index, " is not available (", count, " CUDA devices visible)"));
  }
  if (budget_bytes <= 0) {
    c10::cuda::CUDAGuard guard(index);
    size_t free_bytes = 0, total = 0;
    SH_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
    budget_bytes = static_cast<int64_t>(free_bytes);
  }
  return std::unique_ptr<Device>(new CudaDevice(index, budget_bytes));
}

}  // namespace stronghold::core
