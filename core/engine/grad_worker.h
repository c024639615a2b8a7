// The CPU side of the windowed engine's backward (core/engine/engine.cc): one
// thread that, for each gradient landing in a host staging buffer, has the
// optimizer's pool add it into the layer's fp32 host accumulator (converting
// bf16/fp16 exactly; measuring it in the same pass when asked) and,
// when asked, runs the layer's AdamW step on the optimizer's pool, staging
// the state spilled to the NVMe tier (moments, and in bf16/fp16 the fp32
// master) around it.
//
// Thread safety: Submit/SubmitBackground/WaitFor/WaitAll/error may be called
// from the engine thread while the worker runs; stats(), optimizer_s(),
// nvme_*_bytes() and reset_stats() only while no task is pending (after
// WaitAll).
#ifndef STRONGHOLD_CORE_ENGINE_GRAD_WORKER_H_
#define STRONGHOLD_CORE_ENGINE_GRAD_WORKER_H_

#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/device/device.h"
#include "core/device/timeline.h"
#include "core/engine/host_buffer.h"
#include "core/optim/fused_adamw.h"
#include "core/plan/job_config.h"

namespace stronghold::storage {
class SpillStreamer;
}  // namespace stronghold::storage

namespace stronghold::core {

// One thread, tasks in order; the optimizer's own pool does the arithmetic.
class GradWorker {
 public:
  struct Task {
    Event landed;                   // the D2H copy into `staging`
    const void* staging = nullptr;  // null: no gradient to add, update only
    DType dtype = DType::kFloat32;  // of `staging`
    HostBuffer* buffer = nullptr;
    int index = -1;       // buffer index, for the timeline and stats
    bool first = false;   // first micro-batch: the accumulator starts at 0
    bool update = false;  // run AdamW after accumulating
    AdamWStep hyper;
    // Measure the accumulated gradient in the same pass (the last
    // micro-batch of a step whose updates wait for the global norm): the
    // statistics land in measured(index).
    bool measure = false;
    float measure_scale = 1.0f;  // grad_scale of that measure
    // `staging` holds this many gradients of the buffer, `piece_stride`
    // elements apart, added in order (data parallelism's ordered mode: every
    // rank's piece of this rank's slice); the last one measures.
    int pieces = 1;
    int64_t piece_stride = 0;
    // Speculative updates: the buffer's param, exp_avg and exp_avg_sq are
    // saved here before the update, or, with `restore`, copied back from
    // here before anything else the task does.
    const ParamBuffer* backup = nullptr;
    bool restore = false;
    // The step whose starting state a save puts in `backup`: a buffer is
    // saved once per epoch, by its update or earlier by a background task.
    int64_t epoch = 0;
  };

  GradWorker(Device* device, FusedAdamW* optimizer, Timeline* timeline,
             int buffers, storage::SpillStreamer* spill, Precision precision);
  ~GradWorker();

  // Returns the task's sequence number (1-based).
  uint64_t Submit(const Task& task) {
    absl::MutexLock lock(&mu_);
    tasks_.push_back(task);
    cv_.SignalAll();
    return ++submitted_;
  }
  // Speculative updates: saves task.buffer's state into task.backup (a
  // task with `backup` and `epoch` set, nothing else) when the worker has
  // nothing else to do, so that the update, when its gradient lands, need
  // not save it first. Foreground tasks (Submit) go first; one waits at
  // most for the background save running when it came. The state must be
  // final for the epoch (no update of it pending or to come before the
  // epoch's own) when this is called.
  void SubmitBackground(const Task& task) {
    absl::MutexLock lock(&mu_);
    background_.push_back(task);
    cv_.SignalAll();
  }
  void WaitFor(uint64_t sequence) {
    absl::MutexLock lock(&mu_);
    while (completed_ < sequence) cv_.Wait(&mu_);
  }
  // Whether task `sequence` (0: none) has finished, without blocking.
  bool Completed(uint64_t sequence) {
    absl::MutexLock lock(&mu_);
    return completed_ >= sequence;
  }
  // Waits for every Submit()ted task; drops the background saves not
  // started (a later update saves inline) and waits for the one running.
  void WaitAll() {
    absl::MutexLock lock(&mu_);
    background_.clear();
    while (completed_ < submitted_ || background_running_) cv_.Wait(&mu_);
  }
  // What each buffer's last update saw in its gradient (after grad_scale).
  const std::vector<StepStats>& stats() const { return stats_; }
  // What each buffer's last measuring accumulation saw (Task::measure).
  const std::vector<StepStats>& measured() const { return measured_; }
  double optimizer_s() const { return optimizer_s_; }
  void reset_stats() { optimizer_s_ = 0; }
  // The first NVMe tier error met by an update (sticky: the state there is
  // unknown afterwards).
  absl::Status error() {
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  void Loop();

  // The task's gradient into its buffer's fp32 accumulator, on the pool.
  absl::Status Accumulate(const Task& t);
  // The buffer's optimizer state to (save) or from (restore) t.backup.
  absl::Status CopyState(const Task& t, bool restore);
  // Saves t's buffer into t.backup unless saved for t.epoch already.
  absl::Status Save(const Task& t);
  // AdamW on one buffer; spilled state is staged for it (normally read
  // ahead already) and written back after it, with the working copy the
  // update writes into the staging slot where that lives on the tier
  // (HostBuffer::sent_array). After an NVMe tier error no
  // spilled buffer is updated any more: the step fails with that error.
  absl::Status Update(const Task& t);

  Device* const device_;
  FusedAdamW* const optimizer_;
  Timeline* const timeline_;
  storage::SpillStreamer* const spill_;  // null: nothing spilled
  const Precision precision_;
  std::vector<StepStats> stats_;  // written by the worker, read after WaitAll
  std::vector<StepStats> measured_;  // likewise
  double optimizer_s_ = 0;
  std::vector<int64_t>
      saved_epoch_;  // worker thread only: each buffer's last save

  absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<Task> tasks_ ABSL_GUARDED_BY(mu_);
  std::deque<Task> background_ ABSL_GUARDED_BY(mu_);  // SubmitBackground's
  bool background_running_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t submitted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_ENGINE_GRAD_WORKER_H_
