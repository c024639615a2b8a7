// FusedAdamW: the production CPU optimizer. A fixed pool of threads runs the
// one-pass AdamW kernel (adamw_kernel.h) over layers' flat buffers.
//
// Layers are queued as their gradients land: Submit() returns at once with a
// StepFuture, the pool works through the queue in submission order, and the
// engine Wait()s for a layer only when it needs that layer's weights (or its
// gradient statistics). So the update of layer k overlaps with the backward
// pass of layer k-1 instead of following the whole backward pass.
//
// Each buffer is cut into chunks (options.chunk_elements, a function of the
// buffer's size only) and the chunks are dealt out to the threads in
// contiguous blocks: thread t owns the t-th block and walks it front to back,
// then steals from the back of the block with most left, so a thread slowed
// by the OS does not hold up the step. FirstTouch() places each page on the
// NUMA node of the thread that owns it. Results do not depend on the number
// of threads: each chunk's statistics are kept apart and summed in chunk
// order, so the fp32 outputs and grad_sq_sum are bit-identical for any
// `threads`.
//
// No allocation after construction: task slots, per-chunk statistics and the
// queue are sized from the options up front.
//
// Typical use by the engine, per iteration:
//
//   // As each layer's gradient lands on the host (backward, last layer first):
//   futures[l] = *optimizer->Submit(layers[l].buffer, hyper);
//   ...
//   // Before the next forward copies layer l's working copy to the device:
//   const StepStats stats = futures[l].Wait();
//   if (stats.nonfinite_count > 0) { /* fail naming layer l, or skip */ }
//   grad_sq_sum += stats.grad_sq_sum;  // global norm, for the next step or
//                                      // for a rollback scheme
//
// For exact global-norm clipping or fp16 overflow checks before any update,
// SubmitMeasure() every layer first (reads only the gradients), then Submit()
// with grad_scale = clip factor / loss scale.
//
// Give the pool memory that is spread over the L1 sets: if a layer's param,
// m, v and grad all start at the same offset within a page, element i of
// every stream lands in the same L1 set, and at some sizes a core was up to
// 1.5x slower (docs/benchmarks.md); offsetting the arrays by different
// multiples of ~1 KiB (e.g. 1088 B) avoids it.
//
// Thread safety: all methods may be called from any thread. Buffers of tasks
// in flight must not overlap each other, and must stay alive and untouched
// until the task's future is waited on. Destroying the optimizer with a
// future still outstanding is a programming error (CHECK-fails).
#ifndef STRONGHOLD_CORE_OPTIM_FUSED_ADAMW_H_
#define STRONGHOLD_CORE_OPTIM_FUSED_ADAMW_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/optim/adamw_kernel.h"
#include "core/optim/optimizer.h"
#include "core/plan/shard.h"

namespace stronghold::core {

struct FusedAdamWOptions {
  // Pool threads. 0 = UsableCpuCount(): the affinity mask capped by the
  // cgroup quota. The pool sleeps when idle, but while it runs it wants
  // whole cores: leave LibTorch's intra-op threads off those cores (or give
  // the optimizer fewer), or both slow down. The --optimizer_threads flag of
  // the daemon lands here.
  int threads = 0;
  // Code path; nullopt = BestIsa(). Create() fails for one the CPU lacks.
  std::optional<Isa> isa;
  // Elements per chunk, the unit a thread takes at a time. 16384 elements
  // are 64 KiB of each fp32 stream: large enough that the per-chunk lock and
  // bookkeeping are < 1% of the chunk's time, small enough that a layer of a
  // few million elements still splits evenly over many threads.
  int64_t chunk_elements = kDefaultChunkElements;
  // Most chunks one buffer is cut into; bigger buffers get bigger chunks.
  // Bounds the per-chunk statistics reserved at construction (24 bytes x
  // max_chunks x max_pending).
  int max_chunks = kDefaultMaxChunks;
  // Tasks that may be queued, running or done-but-not-waited at once; a
  // Submit() beyond that blocks until a future is waited on.
  int max_pending = 32;
  // Pin pool thread i to the i-th CPU of the affinity mask. Makes the
  // FirstTouch() placement stick on multi-socket hosts; off by default
  // because on a shared machine pinning can queue us behind other work.
  bool pin_threads = false;
};

class FusedAdamW;

// The handle of one queued task. Move-only; Wait() (or destruction, which
// waits) releases the task's slot.
class StepFuture {
 public:
  StepFuture() = default;
  StepFuture(StepFuture&& other) noexcept;
  StepFuture& operator=(StepFuture&& other) noexcept;
  StepFuture(const StepFuture&) = delete;
  StepFuture& operator=(const StepFuture&) = delete;
  ~StepFuture();

  // Blocks until the task is done and returns its gradient statistics; the
  // buffers are then updated and visible to the caller. Call once.
  StepStats Wait();
  bool valid() const { return owner_ != nullptr; }

 private:
  friend class FusedAdamW;
  StepFuture(FusedAdamW* owner, int slot) : owner_(owner), slot_(slot) {}

  FusedAdamW* owner_ = nullptr;
  int slot_ = -1;
};

class FusedAdamW final : public Optimizer {
 public:
  // InvalidArgument for nonsensical options, FailedPrecondition when
  // options.isa is not supported by this CPU.
  static absl::StatusOr<std::unique_ptr<FusedAdamW>> Create(
      const FusedAdamWOptions& options);

  ~FusedAdamW() override;
  FusedAdamW(const FusedAdamW&) = delete;
  FusedAdamW& operator=(const FusedAdamW&) = delete;

  // Queues one AdamW step of `buffer` (see the class comment for the rules
  // on buffers in flight). InvalidArgument for an invalid buffer or step.
  // A non-finite gradient is not an error here: it is applied and reported
  // in the future's StepStats, and the caller decides (see SubmitMeasure).
  absl::StatusOr<StepFuture> Submit(const ParamBuffer& buffer,
                                    const AdamWStep& hyper);

  // Queues a read-only pass over `buffer`'s gradient (only the gradient
  // fields are used) giving the StepStats a step with this grad_scale would
  // give, bit for bit. For callers that must know before updating: exact
  // global-norm clipping, or fp16 loss scaling that skips overflowed steps.
  // Reads 2-4 bytes per element instead of the step's 28.
  absl::StatusOr<StepFuture> SubmitMeasure(const ParamBuffer& buffer,
                                           float grad_scale);

  // Queues the host side of a gradient's arrival: buffer.grad (fp32, the
  // accumulator) = (first ? 0 : buffer.grad) + g over buffer.count elements,
  // g of `dtype` (see AccumulateRange), spread over the pool. With
  // `measure`, the future's StepStats are what SubmitMeasure(buffer,
  // grad_scale) would give afterwards, bit for bit, taken in the same pass
  // while each chunk is in cache: the global norm for clipping costs no
  // second read of the gradients. `g` must stay untouched until the future
  // is waited on.
  absl::StatusOr<StepFuture> SubmitAccumulate(const ParamBuffer& buffer,
                                              const void* g, DType dtype,
                                              bool first, bool measure,
                                              float grad_scale);

  // Queues a copy of the optimizer state (param, exp_avg, exp_avg_sq, and
  // the working copy where both have one, of the same dtype) of `from` into
  // `to` (same count), spread over the pool: the backup and the restore of
  // speculative updates. 12-14 bytes read and written per element.
  absl::StatusOr<StepFuture> SubmitCopyState(const ParamBuffer& from,
                                             const ParamBuffer& to);

  // Zero-fills `count` elements of `dtype` at `data` from the pool threads,
  // each writing the chunks it will own in steps of a `count`-element
  // buffer, so that first-touch page placement puts them on its NUMA node.
  // Call on freshly allocated (untouched) memory; blocks until done.
  absl::Status FirstTouch(void* data, int64_t count, DType dtype);

  // Optimizer: Submit + Wait. CHECK-fails on an invalid buffer or step.
  void Step(const ParamBuffer& buffer, const AdamWStep& hyper) override;
  StepStats StepAndMeasure(const ParamBuffer& buffer,
                           const AdamWStep& hyper) override;

  int threads() const { return static_cast<int>(workers_.size()); }
  Isa isa() const { return isa_; }

  // The chunk length used for a buffer of `count` elements (unless the
  // buffer names its own, ParamBuffer::chunk_elements: a rank's slice of a
  // larger buffer, cut as that buffer is).
  int64_t ChunkElements(int64_t count) const;

 private:
  friend class StepFuture;
  struct Task;
  enum class Mode { kStep, kMeasure, kAccumulate, kCopy, kTouch };

  FusedAdamW(const FusedAdamWOptions& options, Isa isa, int threads);

  // What kAccumulate and kCopy need beyond the buffer and constants.
  struct TaskArgs {
    float* accumulator = nullptr;  // kAccumulate: the buffer's grad, written
    const void* source = nullptr;
    DType dtype = DType::kFloat32;
    bool first = false;
    bool measure = false;
    ParamBuffer copy_to;  // kCopy: where the state goes
  };
  absl::StatusOr<StepFuture> Enqueue(Mode mode, const ParamBuffer& buffer,
                                     const AdamWConstants& constants,
                                     const TaskArgs& args);
  StepStats WaitSlot(int slot);
  void WorkerLoop(int thread);
  // Finds a chunk for `thread`; false when none is claimable.
  bool ClaimLocked(int thread, int* slot, int* chunk)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs outside mu_: reads the task's inputs, writes chunk_stats[chunk].
  void RunChunk(Task& task, int chunk);
  void FinishChunkLocked(int slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const FusedAdamWOptions options_;
  const Isa isa_;
  std::vector<Task> tasks_;  // max_pending slots; contents guarded by mu_,
                             // except chunk_stats[c] (written by the thread
                             // that claimed c) and the inputs of a running
                             // task (read-only while it runs)
  std::vector<std::thread> workers_;

  mutable absl::Mutex mu_;
  absl::CondVar work_cv_;  // a task was queued, or stopping_
  absl::CondVar done_cv_;  // a task finished
  absl::CondVar free_cv_;  // a slot was released
  std::vector<int> free_slots_ ABSL_GUARDED_BY(mu_);  // stack
  // Slots with unclaimed chunks, in submission order: a ring.
  std::vector<int> queue_ ABSL_GUARDED_BY(mu_);
  int queue_head_ ABSL_GUARDED_BY(mu_) = 0;
  int queue_size_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_OPTIM_FUSED_ADAMW_H_
