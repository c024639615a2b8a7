#include "core/optim/fused_adamw.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/optim/adamw_kernel_internal.h"
#include "core/optim/cpu_budget.h"
#include "glog/logging.h"

namespace stronghold::core {

struct FusedAdamW::Task {
  enum class State { kFree, kRunning, kDone };

  // Set by Enqueue under mu_, then read-only until the task is done.
  Mode mode = Mode::kStep;
  ParamBuffer buffer;        // kTouch: working/working_dtype/count only
  AdamWConstants constants;  // kMeasure, kAccumulate: only grad_scale
  // kAccumulate: buffer.grad += source (or = with first); measure afterwards.
  float* accumulator = nullptr;
  const void* source = nullptr;
  DType source_dtype = DType::kFloat32;
  bool first = false;
  bool measure = false;
  // kCopy: buffer's param, exp_avg, exp_avg_sq into copy_to's.
  ParamBuffer copy_to;
  int64_t chunk_elements = 0;
  int num_chunks = 0;

  // Guarded by mu_.
  State state = State::kFree;
  int unclaimed = 0;      // chunks no thread has taken yet
  int unfinished = 0;     // chunks not yet done
  std::vector<int> next;  // [threads] next unclaimed chunk of t's block
  std::vector<int> end;   // [threads] end of t's block; stealing lowers it
  StepStats result;       // valid once state == kDone

  // [max_chunks] statistics of chunk c, written without the lock by the
  // thread that claimed c; summed in chunk order when the last one is done.
  std::vector<StepStats> chunk_stats;
};

StepFuture::StepFuture(StepFuture&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)),
      slot_(std::exchange(other.slot_, -1)) {}

StepFuture& StepFuture::operator=(StepFuture&& other) noexcept {
  if (this != &other) {
    if (valid()) Wait();
    owner_ = std::exchange(other.owner_, nullptr);
    slot_ = std::exchange(other.slot_, -1);
  }
  return *this;
}

StepFuture::~StepFuture() {
  if (valid()) Wait();
}

StepStats StepFuture::Wait() {
  CHECK(valid()) << "Wait() on an empty or already waited StepFuture";
  const StepStats stats = owner_->WaitSlot(slot_);
  owner_ = nullptr;
  slot_ = -1;
  return stats;
}

absl::StatusOr<std::unique_ptr<FusedAdamW>> FusedAdamW::Create(
    const FusedAdamWOptions& options) {
  if (options.threads < 0 || options.chunk_elements < 1 ||
      options.max_chunks < 1 || options.max_pending < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FusedAdamW options: threads ", options.threads, ", chunk_elements ",
        options.chunk_elements, ", max_chunks ", options.max_chunks,
        ", max_pending ", options.max_pending,
        " (need threads >= 0 and the rest >= 1)"));
  }
  const Isa isa = options.isa.value_or(BestIsa());
  if (!IsaSupported(isa)) {
    return absl::FailedPreconditionError(
        absl::StrCat("this CPU cannot run the ", IsaName(isa), " AdamW path"));
  }
  const int threads = options.threads > 0 ? options.threads : UsableCpuCount();
  return std::unique_ptr<FusedAdamW>(new FusedAdamW(options, isa, threads));
}

FusedAdamW::FusedAdamW(const FusedAdamWOptions& options, Isa isa, int threads)
    : options_(options), isa_(isa), tasks_(options.max_pending) {
  for (Task& task : tasks_) {
    task.next.resize(threads);
    task.end.resize(threads);
    task.chunk_stats.resize(options.max_chunks);
  }
  {
    absl::MutexLock lock(&mu_);
    queue_.resize(options.max_pending);
    // Descending, so that slot 0 is used first (helps reading a debugger).
    for (int s = options.max_pending - 1; s >= 0; --s) free_slots_.push_back(s);
  }
  workers_.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers_.emplace_back([this, t] { WorkerLoop(t); });
  }
}

FusedAdamW::~FusedAdamW() {
  {
    absl::MutexLock lock(&mu_);
    CHECK_EQ(free_slots_.size(), tasks_.size())
        << "FusedAdamW destroyed with a StepFuture not yet waited on";
    stopping_ = true;
    work_cv_.SignalAll();
  }
  for (std::thread& worker : workers_) worker.join();
}

int64_t FusedAdamW::ChunkElements(int64_t count) const {
  static_assert(kChunkStep % optim_internal::kLanes == 0);
  return OptimizerChunkElements(count, options_.chunk_elements,
                                options_.max_chunks);
}

absl::StatusOr<StepFuture> FusedAdamW::Submit(const ParamBuffer& buffer,
                                              const AdamWStep& hyper) {
  if (absl::Status s = ValidateParamBuffer(buffer); !s.ok()) return s;
  if (absl::Status s = ValidateAdamWStep(hyper); !s.ok()) return s;
  return Enqueue(Mode::kStep, buffer, MakeAdamWConstants(hyper), {});
}

absl::StatusOr<StepFuture> FusedAdamW::SubmitMeasure(const ParamBuffer& buffer,
                                                     float grad_scale) {
  if (absl::Status s = ValidateGradient(buffer); !s.ok()) return s;
  ParamBuffer gradient_only;
  gradient_only.grad = buffer.grad;
  gradient_only.grad_data = buffer.grad_data;
  gradient_only.grad_dtype = buffer.grad_dtype;
  gradient_only.count = buffer.count;
  gradient_only.decay_count = buffer.decay_count;
  gradient_only.chunk_elements = buffer.chunk_elements;
  gradient_only.chunk_stats = buffer.chunk_stats;
  AdamWConstants constants;
  constants.grad_scale = grad_scale;
  return Enqueue(Mode::kMeasure, gradient_only, constants, {});
}

absl::StatusOr<StepFuture> FusedAdamW::SubmitAccumulate(
    const ParamBuffer& buffer, const void* g, DType dtype, bool first,
    bool measure, float grad_scale) {
  ParamBuffer accumulator;
  accumulator.grad = buffer.grad;
  accumulator.count = buffer.count;
  accumulator.decay_count = buffer.decay_count;
  accumulator.chunk_elements = buffer.chunk_elements;
  accumulator.chunk_stats = measure ? buffer.chunk_stats : nullptr;
  if (absl::Status s = ValidateGradient(accumulator); !s.ok()) return s;
  if (buffer.count > 0 && g == nullptr) {
    return absl::InvalidArgumentError("SubmitAccumulate of a null gradient");
  }
  AdamWConstants constants;
  constants.grad_scale = grad_scale;
  return Enqueue(Mode::kAccumulate, accumulator, constants,
                 {.accumulator = const_cast<float*>(buffer.grad),
                  .source = g,
                  .dtype = dtype,
                  .first = first,
                  .measure = measure});
}

absl::StatusOr<StepFuture> FusedAdamW::SubmitCopyState(const ParamBuffer& from,
                                                       const ParamBuffer& to) {
  const bool missing =
      from.count > 0 && (from.param == nullptr || from.exp_avg == nullptr ||
                         from.exp_avg_sq == nullptr || to.param == nullptr ||
                         to.exp_avg == nullptr || to.exp_avg_sq == nullptr);
  const bool working = from.working != nullptr && to.working != nullptr;
  if (from.count < 0 || from.count != to.count || missing ||
      (working && from.working_dtype != to.working_dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SubmitCopyState of ", from.count, " into ", to.count,
                     " elements", missing ? " with a missing array" : ""));
  }
  ParamBuffer source;
  source.param = from.param;
  source.exp_avg = from.exp_avg;
  source.exp_avg_sq = from.exp_avg_sq;
  source.count = from.count;
  if (working) {
    source.working = from.working;
    source.working_dtype = from.working_dtype;
  }
  TaskArgs args;
  args.copy_to = to;
  return Enqueue(Mode::kCopy, source, {}, args);
}

absl::Status FusedAdamW::FirstTouch(void* data, int64_t count, DType dtype) {
  if (count < 0 || (count > 0 && data == nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("FirstTouch of ", count, " elements at ",
                     data == nullptr ? "null" : "a pointer"));
  }
  ParamBuffer target;
  target.working = data;
  target.working_dtype = dtype;
  target.count = count;
  absl::StatusOr<StepFuture> future = Enqueue(Mode::kTouch, target, {}, {});
  if (!future.ok()) return future.status();
  future->Wait();
  return absl::OkStatus();
}

void FusedAdamW::Step(const ParamBuffer& buffer, const AdamWStep& hyper) {
  StepAndMeasure(buffer, hyper);
}

StepStats FusedAdamW::StepAndMeasure(const ParamBuffer& buffer,
                                     const AdamWStep& hyper) {
  absl::StatusOr<StepFuture> future = Submit(buffer, hyper);
  CHECK(future.ok()) << future.status();
  return future->Wait();
}

absl::StatusOr<StepFuture> FusedAdamW::Enqueue(Mode mode,
                                               const ParamBuffer& buffer,
                                               const AdamWConstants& constants,
                                               const TaskArgs& args) {
  const int64_t chunk = buffer.chunk_elements > 0 ? buffer.chunk_elements
                                                  : ChunkElements(buffer.count);
  const int64_t chunks = (buffer.count + chunk - 1) / chunk;
  if (chunks > options_.max_chunks || chunk % optim_internal::kLanes != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a buffer of ", buffer.count, " elements in chunks of ", chunk,
        ": more than max_chunks ", options_.max_chunks,
        " chunks, or a chunk not a multiple of ", optim_internal::kLanes));
  }
  const int num_chunks = static_cast<int>(chunks);
  const int64_t threads = static_cast<int64_t>(workers_.size());
  absl::MutexLock lock(&mu_);
  while (free_slots_.empty()) free_cv_.Wait(&mu_);
  const int slot = free_slots_.back();
  free_slots_.pop_back();
  Task& task = tasks_[slot];
  task.mode = mode;
  task.buffer = buffer;
  task.constants = constants;
  task.accumulator = args.accumulator;
  task.source = args.source;
  task.source_dtype = args.dtype;
  task.first = args.first;
  task.measure = args.measure;
  task.copy_to = args.copy_to;
  task.chunk_elements = chunk;
  task.num_chunks = num_chunks;
  task.unclaimed = task.unfinished = num_chunks;
  for (int64_t t = 0; t < threads; ++t) {
    task.next[t] = static_cast<int>(num_chunks * t / threads);
    task.end[t] = static_cast<int>(num_chunks * (t + 1) / threads);
  }
  task.result = StepStats();
  if (num_chunks == 0) {
    task.state = Task::State::kDone;
  } else {
    task.state = Task::State::kRunning;
    queue_[(queue_head_ + queue_size_) % queue_.size()] = slot;
    ++queue_size_;
    work_cv_.SignalAll();
  }
  return StepFuture(this, slot);
}

StepStats FusedAdamW::WaitSlot(int slot) {
  absl::MutexLock lock(&mu_);
  Task& task = tasks_[slot];
  while (task.state != Task::State::kDone) done_cv_.Wait(&mu_);
  task.state = Task::State::kFree;
  free_slots_.push_back(slot);
  free_cv_.Signal();
  return task.result;
}

bool FusedAdamW::ClaimLocked(int thread, int* slot, int* chunk) {
  const int capacity = static_cast<int>(queue_.size());
  for (int k = 0; k < queue_size_;) {
    const int s = queue_[(queue_head_ + k) % capacity];
    Task& task = tasks_[s];
    if (task.unclaimed == 0) {
      if (k == 0) {  // fully handed out: it leaves the queue
        queue_head_ = (queue_head_ + 1) % capacity;
        --queue_size_;
      } else {
        ++k;
      }
      continue;
    }
    int c = -1;
    if (task.next[thread] < task.end[thread]) {
      c = task.next[thread]++;
    } else if (task.mode != Mode::kTouch) {
      // Steal from the back of the block with the most chunks left, away
      // from where its owner is working. FirstTouch never steals: the point
      // is which thread writes the page first.
      int victim = -1, most = 0;
      for (int u = 0; u < static_cast<int>(task.next.size()); ++u) {
        if (task.end[u] - task.next[u] > most) {
          most = task.end[u] - task.next[u];
          victim = u;
        }
      }
      if (victim >= 0) c = --task.end[victim];
    }
    if (c >= 0) {
      --task.unclaimed;
      *slot = s;
      *chunk = c;
      return true;
    }
    ++k;  // only other threads' FirstTouch chunks left here
  }
  return false;
}

void FusedAdamW::RunChunk(Task& task, int chunk) {
  const int64_t begin = chunk * task.chunk_elements;
  const int64_t end = std::min(begin + task.chunk_elements, task.buffer.count);
  StepStats& stats = task.chunk_stats[chunk];
  switch (task.mode) {
    case Mode::kStep:
      stats = AdamWRange(isa_, task.buffer, task.constants, begin, end);
      break;
    case Mode::kMeasure:
      stats = MeasureRange(isa_, task.buffer, task.constants.grad_scale, begin,
                           end);
      break;
    case Mode::kAccumulate:
      AccumulateRange(task.source, task.source_dtype, task.first,
                      task.accumulator, begin, end);
      stats = task.measure ? MeasureRange(isa_, task.buffer,
                                          task.constants.grad_scale, begin, end)
                           : StepStats();
      break;
    case Mode::kCopy: {
      const size_t bytes = (end - begin) * sizeof(float);
      std::memcpy(task.copy_to.param + begin, task.buffer.param + begin, bytes);
      std::memcpy(task.copy_to.exp_avg + begin, task.buffer.exp_avg + begin,
                  bytes);
      std::memcpy(task.copy_to.exp_avg_sq + begin,
                  task.buffer.exp_avg_sq + begin, bytes);
      if (task.buffer.working != nullptr) {
        const int w = DTypeBytes(task.buffer.working_dtype);
        std::memcpy(static_cast<char*>(task.copy_to.working) + begin * w,
                    static_cast<const char*>(task.buffer.working) + begin * w,
                    (end - begin) * w);
      }
      stats = StepStats();
      break;
    }
    case Mode::kTouch: {
      const int bytes = DTypeBytes(task.buffer.working_dtype);
      std::memset(static_cast<char*>(task.buffer.working) + begin * bytes, 0,
                  (end - begin) * bytes);
      stats = StepStats();
      break;
    }
  }
}

void FusedAdamW::FinishChunkLocked(int slot) {
  Task& task = tasks_[slot];
  if (--task.unfinished > 0) return;
  // Chunk order, not completion order: the sum is the same for any number
  // of threads.
  StepStats total;
  for (int c = 0; c < task.num_chunks; ++c)
    AppendStats(task.chunk_stats[c], &total);
  if (task.buffer.chunk_stats != nullptr) {
    std::copy(task.chunk_stats.begin(),
              task.chunk_stats.begin() + task.num_chunks,
              task.buffer.chunk_stats);
  }
  task.result = total;
  task.state = Task::State::kDone;
  done_cv_.SignalAll();
}

void FusedAdamW::WorkerLoop(int thread) {
  if (options_.pin_threads) {
    const std::vector<int> cpus = AffinityCpus();
    if (!cpus.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpus[thread % cpus.size()], &set);
      if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
        LOG(WARNING) << "could not pin optimizer thread " << thread;
      }
    }
  }
  mu_.Lock();
  while (true) {
    int slot = -1, chunk = -1;
    while (!ClaimLocked(thread, &slot, &chunk)) {
      if (stopping_) {
        mu_.Unlock();
        return;
      }
      work_cv_.Wait(&mu_);
    }
    Task& task = tasks_[slot];
    mu_.Unlock();
    RunChunk(task, chunk);
    mu_.Lock();
    FinishChunkLocked(slot);
  }
}

}  // namespace stronghold::core
