#include "core/device/cuda_device.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <array>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/device/host_buffer_cache.h"
#include "core/device/sticky_error.h"
#include "core/device/timeline.h"
#include "core/util/status_macros.h"
#include "glog/logging.h"

namespace stronghold::core {

namespace {

// CUDA errors after which every later CUDA call of the process fails the
// same way: driver_types.h documents each with "To continue using CUDA, the
// process must be terminated and relaunched". Any other error (an
// out-of-memory, an invalid argument) leaves the context usable.
bool LosesDevice(cudaError_t err) {
  switch (err) {
    case cudaErrorContained:
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
    case cudaErrorTensorMemoryLeak:
    case cudaErrorMpsClientTerminated:
    case cudaErrorExternalDevice:
      return true;
    default:
      return false;
  }
}

// The status of `call` on cuda:`index`, which returned `err`:
// RESOURCE_EXHAUSTED for an out-of-memory, else INTERNAL, saying so when
// the device is lost for the rest of the process.
absl::Status CudaStatus(cudaError_t err, int index, absl::string_view call) {
  const std::string what = absl::StrCat("cuda:", index, ": ", call,
                                        " failed: ", cudaGetErrorName(err),
                                        " (", cudaGetErrorString(err), ")");
  if (err == cudaErrorMemoryAllocation) {
    return absl::ResourceExhaustedError(
        absl::StrCat("device out of memory: ", what));
  }
  if (LosesDevice(err)) {
    return absl::InternalError(absl::StrCat(
        what, "; the CUDA context is lost: every later job on cuda:", index,
        " fails until strongholdd is restarted"));
  }
  return absl::InternalError(what);
}

// Events per queue. An event value stays valid until its queue has recorded
// this many more; the engine records a few per layer per step and waits on
// nothing older than one step.
constexpr int kEventRing = 8192;

absl::StatusOr<void*> PinnedAlloc(int64_t bytes) {
  void* p = nullptr;
  const cudaError_t err =
      cudaHostAlloc(&p, static_cast<size_t>(bytes), cudaHostAllocDefault);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // handled here: not LibTorch's next error
    const std::string what = absl::StrCat("cudaHostAlloc (pinned) of ", bytes,
                                          " bytes: ", cudaGetErrorString(err));
    if (err != cudaErrorMemoryAllocation) return absl::InternalError(what);
    return absl::ResourceExhaustedError(
        absl::StrCat(what, " (check RLIMIT_MEMLOCK / LimitMEMLOCK)"));
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
                 c10::cuda::getStreamFromPool(false, index)} {}

  // Creates the event rings (what can fail of the construction).
  absl::Status Init() {
    c10::cuda::CUDAGuard guard(index_);
    for (auto& ring : events_) {
      ring.assign(kEventRing, nullptr);
      for (cudaEvent_t& e : ring) {
        if (!Ok(cudaEventCreateWithFlags(&e, cudaEventDisableTiming),
                "cudaEventCreateWithFlags")) {
          return error_.status();
        }
      }
    }
    return absl::OkStatus();
  }

  ~CudaDevice() override {
    c10::cuda::CUDAGuard guard(index_);
    Reset();  // synchronizes the streams first
    for (auto& ring : events_) {
      for (cudaEvent_t e : ring) {
        if (e != nullptr) cudaEventDestroy(e);
      }
    }
    for (auto& [start, end] : timing_) {
      cudaEventDestroy(start);
      cudaEventDestroy(end);
    }
    if (anchor_ != nullptr) cudaEventDestroy(anchor_);
  }

  std::string name() const override { return absl::StrCat("cuda:", index_); }
  c10::Device torch_device() const override {
    return c10::Device(c10::kCUDA, index_);
  }

  absl::StatusOr<void*> Allocate(int64_t bytes,
                                 const std::string& what) override {
    absl::MutexLock lock(&mu_);
    if (error_.lost()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cuda:", index_,
                       " is unusable: an earlier job lost its CUDA context (",
                       error_.status().message(), ")"));
    }
    RETURN_IF_ERROR(error_.status());  // this job's work failed already
    if (used_ + bytes > budget_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "device memory: ", what, " needs ", bytes, " bytes, ", used_,
          " of the budget of ", budget_bytes_, " bytes are in use"));
    }
    c10::cuda::CUDAGuard guard(index_);
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, static_cast<size_t>(bytes));
    if (err == cudaErrorMemoryAllocation) {
      // Recoverable, and this job's answer: not a sticky error, and not
      // CUDA's last error either (LibTorch's next launch check would
      // report it as its own).
      (void)cudaGetLastError();
      size_t free_bytes = 0, total_bytes = 0;
      (void)cudaMemGetInfo(&free_bytes, &total_bytes);
      return absl::ResourceExhaustedError(absl::StrCat(
          "device out of memory: cudaMalloc of ", bytes, " bytes for ", what,
          " on cuda:", index_, " failed with ", free_bytes, " of ", total_bytes,
          " bytes free; this job uses ", used_, " of its budget of ",
          budget_bytes_,
          " bytes (LibTorch's cache or other processes hold the rest)"));
    }
    if (err != cudaSuccess) {
      Fail(err, absl::StrCat("cudaMalloc of ", bytes, " bytes for ", what));
      return error_.status();
    }
    blocks_.push_back(p);
    used_ += bytes;
    peak_ = std::max(peak_, used_);
    return p;
  }

  // A step that failed half way may have left work queued: the streams
  // finish it before anything is freed.
  void Reset() override {
    absl::MutexLock lock(&mu_);
    c10::cuda::CUDAGuard guard(index_);
    for (auto& s : streams_)
      Ok(cudaStreamSynchronize(s.stream()), "cudaStreamSynchronize");
    for (void* p : blocks_) Ok(cudaFree(p), "cudaFree");
    blocks_.clear();
    used_ = 0;
    peak_ = 0;
    error_.ClearRecoverable();
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
  absl::StatusOr<void*> AllocateHost(int64_t bytes) override {
    return pinned_.Allocate(bytes);
  }
  void FreeHost(void* p) override { pinned_.Release(p); }

  void Copy(Queue queue, void* dst, const void* src, int64_t bytes,
            int layer) override {
    CHECK(queue != Queue::kCompute);
    if (error_.failed()) return;  // no work after an error (status())
    const bool h2d = queue == Queue::kH2D;
    const int pair = timeline_ != nullptr ? TakeTimingPair() : -1;
    if (pair >= 0 && !Ok(cudaEventRecord(timing_[pair].first, stream(queue)),
                         "cudaEventRecord")) {
      return;
    }
    const cudaError_t err = cudaMemcpyAsync(
        dst, src, static_cast<size_t>(bytes),
        h2d ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost, stream(queue));
    if (err != cudaSuccess) {
      if (pair >= 0) free_pairs_.push_back(pair);
      return Fail(
          err, absl::StrCat("cudaMemcpyAsync ",
                            h2d ? "host to device" : "device to host", " of ",
                            bytes, " bytes (layer ", layer, ")"));
    }
    if (pair >= 0 && Ok(cudaEventRecord(timing_[pair].second, stream(queue)),
                        "cudaEventRecord")) {
      timed_.push_back({queue, layer, pair, queue});
    }
  }

  Event Record(Queue queue) override {
    const int q = static_cast<int>(queue);
    const uint64_t seq = ++recorded_[q];
    if (!error_.failed())
      Ok(cudaEventRecord(event(queue, seq), stream(queue)), "cudaEventRecord");
    return Event{queue, seq};
  }

  // A compute-queue wait is timed like a copy: the event before it passes
  // when the compute before it is done, the one after it when the awaited
  // copy is done too, so the time between them is the wait compute saw.
  void QueueWait(Queue queue, Event e) override {
    if (e.sequence == 0 || e.queue == queue || error_.failed()) return;
    CheckLive(e);
    const int pair = timeline_ != nullptr && queue == Queue::kCompute
                         ? TakeTimingPair()
                         : -1;
    if (pair >= 0 && !Ok(cudaEventRecord(timing_[pair].first, stream(queue)),
                         "cudaEventRecord")) {
      return;
    }
    if (!Ok(cudaStreamWaitEvent(stream(queue), event(e.queue, e.sequence), 0),
            "cudaStreamWaitEvent")) {
      return;
    }
    if (pair >= 0 && Ok(cudaEventRecord(timing_[pair].second, stream(queue)),
                        "cudaEventRecord")) {
      timed_.push_back({queue, /*layer=*/-1, pair, e.queue});
    }
  }

  void HostWait(Event e) override {
    if (e.sequence == 0)
      return;  // after an error too: a buffer may be in a copy issued before
    CheckLive(e);
    Ok(cudaEventSynchronize(event(e.queue, e.sequence)),
       "cudaEventSynchronize");
  }

  bool Done(Event e) override {
    if (e.sequence == 0) return true;
    // An event older than the ring shares its CUDA event with a later one on
    // the same stream: that one's completion implies this one's.
    const cudaError_t err = cudaEventQuery(event(e.queue, e.sequence));
    if (err == cudaErrorNotReady) return false;
    Ok(err, "cudaEventQuery");
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
    if (error_.failed()) {  // their times are unknown
      for (const TimedCopy& t : timed_) free_pairs_.push_back(t.pair);
      timed_.clear();
      return;
    }
    if (anchor_ == nullptr && !Ok(cudaEventCreate(&anchor_), "cudaEventCreate"))
      return;
    if (!Ok(cudaEventRecord(anchor_, stream(Queue::kD2H)), "cudaEventRecord") ||
        !Ok(cudaEventSynchronize(anchor_), "cudaEventSynchronize")) {
      return;
    }
    const int64_t anchor_ns = Timeline::NowNs();
    std::vector<TimedCopy> pending;
    for (const TimedCopy& t : timed_) {
      const auto& [start, end] = timing_[t.pair];
      if (cudaEventQuery(end) != cudaSuccess) {  // still queued behind a wait
        pending.push_back(t);
        continue;
      }
      float before_start = 0, before_end = 0;  // ms before the anchor
      if (!Ok(cudaEventElapsedTime(&before_start, start, anchor_),
              "cudaEventElapsedTime") ||
          !Ok(cudaEventElapsedTime(&before_end, end, anchor_),
              "cudaEventElapsedTime")) {
        return;
      }
      const int64_t start_ns =
          anchor_ns - static_cast<int64_t>(before_start * 1e6);
      const int64_t end_ns = anchor_ns - static_cast<int64_t>(before_end * 1e6);
      const bool h2d = t.on == Queue::kH2D;
      if (t.queue != Queue::kCompute) {
        timeline_->Add({h2d ? "h2d" : "d2h", h2d ? Lane::kH2D : Lane::kD2H,
                        t.layer, start_ns, end_ns});
      } else if (end_ns - start_ns >
                 100'000) {  // as the host device: waits over 0.1 ms
        timeline_->Add({h2d ? "wait_h2d" : "wait_d2h", Lane::kWait, t.layer,
                        start_ns, end_ns});
      }
      free_pairs_.push_back(t.pair);
    }
    timed_ = std::move(pending);
  }

  absl::Status status() const override { return error_.status(); }

 private:
  // Whether `err` is cudaSuccess; else Fail().
  bool Ok(cudaError_t err, absl::string_view call) {
    if (err == cudaSuccess) return true;
    Fail(err, call);
    return false;
  }
  // Keeps the failure of `call` as the device's sticky error (status()),
  // and clears it as CUDA's last error, so that LibTorch's next launch
  // check does not report it as its own (a lost context fails that check
  // anyway).
  void Fail(cudaError_t err, absl::string_view call) {
    const absl::Status error = CudaStatus(err, index_, call);
    if (error_.Record(error, LosesDevice(err))) LOG(ERROR) << error;
    (void)cudaGetLastError();
  }
  cudaStream_t stream(Queue q) const {
    return streams_[static_cast<int>(q)].stream();
  }
  cudaEvent_t event(Queue q, uint64_t seq) const {
    return events_[static_cast<int>(q)][seq % kEventRing];
  }
  // A free pair of timing events, created on first use; -1 when all are in
  // flight (that copy is then not timed).
  int TakeTimingPair() {
    if (free_pairs_.empty()) {
      if (timing_.size() >= kTimingPairs) return -1;
      std::pair<cudaEvent_t, cudaEvent_t> p{nullptr, nullptr};
      if (!Ok(cudaEventCreate(&p.first), "cudaEventCreate") ||
          !Ok(cudaEventCreate(&p.second), "cudaEventCreate")) {
        if (p.first != nullptr) cudaEventDestroy(p.first);
        return -1;
      }
      timing_.push_back(p);
      return static_cast<int>(timing_.size()) - 1;
    }
    const int pair = free_pairs_.back();
    free_pairs_.pop_back();
    return pair;
  }
  void CheckLive(Event e) const {
    CHECK_LT(recorded_[static_cast<int>(e.queue)] - e.sequence,
             static_cast<uint64_t>(kEventRing))
        << "event reused before it was waited on";
  }

  const int index_;
  const int64_t budget_bytes_;
  std::array<c10::cuda::CUDAStream, kQueues> streams_;  // compute, h2d, d2h
  std::array<std::vector<cudaEvent_t>, kQueues> events_;
  std::array<uint64_t, kQueues> recorded_{};  // engine thread only

  // Copy timing (engine thread only).
  struct TimedCopy {  // a copy on `queue`, or a wait of the compute queue
    Queue queue;
    int layer;
    int pair;
    Queue on;  // the copy's queue, or the queue the compute queue waited on
  };
  static constexpr size_t kTimingPairs =
      4096;  // copies timed between two flushes
  Timeline* timeline_ = nullptr;
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> timing_;
  std::vector<int> free_pairs_;
  std::vector<TimedCopy> timed_;
  cudaEvent_t anchor_ = nullptr;

  StickyError error_;  // the first failed call of the queues' work (status())

  mutable absl::Mutex mu_;
  std::vector<void*> blocks_ ABSL_GUARDED_BY(mu_);
  int64_t used_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t peak_ ABSL_GUARDED_BY(mu_) = 0;
  // Last member: freed after the streams are synchronized in the destructor.
  HostBufferCache pinned_{PinnedAlloc, [](void* p) { cudaFreeHost(p); }};
};

}  // namespace

absl::StatusOr<std::unique_ptr<Device>> CreateCudaDevice(int index,
                                                         int64_t budget_bytes) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || index < 0 ||
      index >= count) {
    return absl::FailedPreconditionError(
        absl::StrCat("--device: cuda:", index, " is not available (", count,
                     " CUDA devices visible)"));
  }
  if (budget_bytes <= 0) {
    c10::cuda::CUDAGuard guard(index);
    size_t free_bytes = 0, total = 0;
    const cudaError_t err = cudaMemGetInfo(&free_bytes, &total);
    if (err != cudaSuccess) return CudaStatus(err, index, "cudaMemGetInfo");
    budget_bytes = static_cast<int64_t>(free_bytes);
  }
  auto device = std::make_unique<CudaDevice>(index, budget_bytes);
  RETURN_IF_ERROR(device->Init());
  return std::unique_ptr<Device>(std::move(device));
}

}  // namespace stronghold::core
