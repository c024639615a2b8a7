#include "core/engine/grad_worker.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/exception_status.h"
#include "core/util/status_macros.h"
#include "glog/logging.h"
#include "storage/spill_streamer.h"

namespace stronghold::core {

namespace {

double Since(int64_t start_ns) { return (Timeline::NowNs() - start_ns) / 1e9; }

}  // namespace

GradWorker::GradWorker(Device* device, FusedAdamW* optimizer,
                       Timeline* timeline, int buffers,
                       storage::SpillStreamer* spill, Precision precision)
    : device_(device),
      optimizer_(optimizer),
      timeline_(timeline),
      spill_(spill),
      precision_(precision),
      stats_(buffers),
      measured_(buffers),
      saved_epoch_(buffers, -1) {
  thread_ = std::thread([this] { Loop(); });
}

GradWorker::~GradWorker() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    cv_.SignalAll();
  }
  thread_.join();
}

void GradWorker::Loop() {
  while (true) {
    Task t;
    bool background = false;
    {
      absl::MutexLock lock(&mu_);
      while (!stop_ && tasks_.empty() && background_.empty()) cv_.Wait(&mu_);
      if (stop_ && tasks_.empty()) return;
      background = tasks_.empty();  // nothing else to do: a background save
      std::deque<Task>& queue = background ? background_ : tasks_;
      t = queue.front();
      queue.pop_front();
      background_running_ = background;
    }
    if (background) {
      absl::Status status;
      try {
        status = Save(t);
      } catch (...) {  // an exception here would end the daemon
        status = StatusFromException(
            absl::StrCat("saving buffer ", t.index, "'s state"));
      }
      absl::MutexLock lock(&mu_);
      if (error_.ok() && !status.ok()) error_ = status;
      background_running_ = false;
      cv_.SignalAll();
      continue;
    }
    absl::Status status;
    try {
      device_->HostWait(t.landed);
      // Without staging: an update only (deferred until the global norm
      // was known).
      if (t.restore) status = CopyState(t, /*restore=*/true);
      if (status.ok() && t.staging != nullptr) status = Accumulate(t);
      if (status.ok() && t.update && t.backup != nullptr && !t.restore)
        status = Save(t);
      if (status.ok() && t.update) status = Update(t);
    } catch (...) {  // an exception here would end the daemon
      status = StatusFromException(
          absl::StrCat("buffer ", t.index, "'s gradient and update"));
    }
    absl::MutexLock lock(&mu_);
    if (error_.ok() && !status.ok()) error_ = status;
    ++completed_;
    cv_.SignalAll();
  }
}

absl::Status GradWorker::Accumulate(const Task& t) {
  const int64_t start = Timeline::NowNs();
  for (int k = 0; k < t.pieces; ++k) {
    const bool last = k + 1 == t.pieces;
    const void* g = static_cast<const char*>(t.staging) +
                    k * t.piece_stride * DTypeBytes(t.dtype);
    absl::StatusOr<StepFuture> f = optimizer_->SubmitAccumulate(
        ToParamBuffer(*t.buffer, precision_), g, t.dtype, t.first && k == 0,
        t.measure && last, t.measure_scale);
    if (!f.ok()) return f.status();
    const StepStats stats = f->Wait();
    if (t.measure && last) measured_[t.index] = stats;
  }
  if (timeline_ != nullptr)
    timeline_->Add(
        {"grad_add", Lane::kOptimizer, t.index, start, Timeline::NowNs()});
  return absl::OkStatus();
}

absl::Status GradWorker::Save(const Task& t) {
  if (saved_epoch_[t.index] == t.epoch) return absl::OkStatus();
  saved_epoch_[t.index] = t.epoch;
  return CopyState(t, /*restore=*/false);
}

absl::Status GradWorker::CopyState(const Task& t, bool restore) {
  const int64_t start = Timeline::NowNs();
  const ParamBuffer state = ToParamBuffer(*t.buffer, precision_);
  absl::StatusOr<StepFuture> f =
      restore ? optimizer_->SubmitCopyState(*t.backup, state)
              : optimizer_->SubmitCopyState(state, *t.backup);
  if (!f.ok()) return f.status();
  f->Wait();
  if (timeline_ != nullptr) {
    timeline_->Add({restore ? "restore" : "backup", Lane::kOptimizer, t.index,
                    start, Timeline::NowNs()});
  }
  return absl::OkStatus();
}

absl::Status GradWorker::Update(const Task& t) {
  ParamBuffer p = ToParamBuffer(*t.buffer, precision_);
  const int item = t.buffer->spill_item;
  if (item >= 0) {
    if (absl::Status e = error(); !e.ok()) return e;
    const int64_t wait_start = Timeline::NowNs();
    absl::StatusOr<std::vector<void*>> state = spill_->Acquire(item);
    if (!state.ok()) return state.status();
    if (timeline_ != nullptr && Since(wait_start) > 1e-4) {
      timeline_->Add(
          {"wait_ssd", Lane::kWait, t.index, wait_start, Timeline::NowNs()});
    }
    p.exp_avg = static_cast<float*>((*state)[0]);
    p.exp_avg_sq = static_cast<float*>((*state)[1]);
    // The fp32 master, where it is spilled with the moments, and the
    // working copy, where it is there too (not staged: the update writes
    // it, and it goes back with the rest).
    if (state->size() > 2) p.param = static_cast<float*>((*state)[2]);
    if (state->size() > 3) {
      p.working = (*state)[3];
      p.working_dtype = ToDType(precision_);
    }
  }
  const int64_t start = Timeline::NowNs();
  stats_[t.index] = optimizer_->StepAndMeasure(p, t.hyper);
  optimizer_s_ += Since(start);
  if (timeline_ != nullptr)
    timeline_->Add(
        {"adamw", Lane::kOptimizer, t.index, start, Timeline::NowNs()});
  // Written back asynchronously; a read of it meanwhile (the engine's next
  // fetch, core/engine/tier_reader.h) is served from the slot.
  return item >= 0 ? spill_->Release(item) : absl::OkStatus();
}

}  // namespace stronghold::core
