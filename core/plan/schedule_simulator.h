// The schedule model's simulator (core/plan/schedule_model.h), internal to
// it: the engine's step walked in the engine's own order (Forward, Backward,
// HandOff, GatherGradients, UpdateHost, UpdateOnDevice of core/engine/),
// each piece of work placed on its resource at the earliest time its
// dependencies allow. Each resource runs its work in the order it was
// issued (a queue), as CUDA streams and the CPU worker do.
#ifndef STRONGHOLD_CORE_PLAN_SCHEDULE_SIMULATOR_H_
#define STRONGHOLD_CORE_PLAN_SCHEDULE_SIMULATOR_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/plan/execution_plan.h"
#include "core/plan/hardware_profile.h"
#include "core/plan/job_config.h"
#include "core/plan/schedule_model.h"
#include "core/plan/ssd_placement.h"
#include "core/plan/window.h"

namespace stronghold::core::schedule_internal {

inline constexpr double kGiga = 1e9;
enum Cause { kNone = -1, kCompute = 0, kPcie = 1, kCpu = 2, kNvme = 3 };

// A queue that runs one piece of work at a time, in issue order.
struct Resource {
  double free = 0;  // when the last issued work ends
  double busy = 0;  // work time since the last reset
  // Runs `duration` of work that may start at `ready`; returns its end.
  double Run(double ready, double duration) {
    const double start = std::max(ready, free);
    free = start + duration;
    busy += duration;
    return free;
  }
};

// A time and what it waited for last. For the end of a copy: when the
// copy started (`from`) and what its start waited for (`from_cause`), so
// that a wait for it is split between that and the copy itself.
struct When {
  double t = 0;
  Cause cause = kNone;
  double from = -1;
  Cause from_cause = kNone;
};
inline When Later(When a, When b) { return b.t > a.t ? b : a; }

class Simulator {
 public:
  Simulator(const JobConfig& c, const ExecutionPlan& p,
            const HardwareProfile& hw, const ScheduleOptions& o, LayerCost cost,
            double head_rate, bool clipped)
      : c_(c),
        p_(p),
        hw_(hw),
        o_(o),
        cost_(cost),
        head_rate_(head_rate),
        clipped_(clipped) {
    L_ = c.model.layers;
    e_ = ComputeElementBytes(c.training.precision);
    lowp_ = c.training.precision != Precision::kFp32;
    micro_batches_ = c.training.batch / c.training.micro_batch;
    l2l_ = p.method == OffloadMethod::kL2L;
    ahead_ = l2l_ ? 0 : p.window;
    slots_ = std::max(1, p.slots);
    resident_ = p.device_resident_layers;
    kept_from_ = L_ - p.kept_activation_layers;
    defer_ =
        UpdatesNeedWholeGradient(c.training.clip_norm, c.training.precision) &&
        !p.speculative_updates;
    shared_ = hw.device_is_host;
    // On the host device one timeline does everything.
    h2d_ = shared_ ? &compute_ : &h2d_own_;
    d2h_ = shared_ ? &compute_ : &d2h_own_;
    cpu_ = shared_ ? &compute_ : &cpu_own_;
    nvme_ = &nvme_own_;
    update_done_.assign(L_ + 2, When{});
    fetched_.assign(L_ + 2, When{});
    in_slot_.assign(L_ + 2, false);
    slot_free_.assign(slots_, 0);
    staging_done_.assign(slots_ + 2, When{});
    backup_left_.assign(L_ + 2, 0);
  }

  // Simulates `steps` steps; returns the last one's time.
  double Run(int steps) {
    double step_s = 0;
    for (int s = 0; s < steps; ++s) {
      if (s + 1 == steps) ResetCounters();
      const double start = host_.t;
      Step();
      step_s = host_.t - start;
    }
    return step_s;
  }

  ResourceSeconds Busy() const {
    ResourceSeconds r;
    r.compute_s = compute_busy_;
    r.h2d_s = h2d_bytes_ / (hw_.h2d_gbps * kGiga);
    r.d2h_s = d2h_bytes_ / (hw_.d2h_gbps * kGiga);
    r.pcie_s = r.h2d_s + r.d2h_s;
    r.cpu_optimizer_s = cpu_busy_;
    r.nvme_s = nvme_own_.busy;
    return r;
  }
  ResourceSeconds Floors() const {
    ResourceSeconds r = Busy();
    r.pcie_s = std::max(r.h2d_s, r.d2h_s);
    return r;
  }
  const double* waits() const { return waits_; }

 private:
  // ---- Sizes (from the plan's parameters and the planner's functions) ----
  int64_t Params(int b) const {
    if (b == 0) return c_.model.embedding_parameters();
    if (b == L_ + 1) return 2LL * c_.model.hidden;
    return p_.parameters_per_layer;
  }
  bool OnDevice(int b) const {
    if (b == 0) return p_.device_embedding_optimizer;
    return b >= 1 && b <= L_ && b - 1 < resident_;
  }
  double CopyS(double bytes, bool h2d) const {
    const double bw = o_.pageable_copies ? hw_.pageable_copy_gbps
                      : h2d              ? hw_.h2d_gbps
                                         : hw_.d2h_gbps;
    return hw_.copy_latency_s + bytes / (bw * kGiga);
  }
  double AccumulateS(int b, bool first, bool measure) const {
    const double n = Params(b);
    if (o_.single_thread_accumulation)
      return n * (e_ + 8 + (measure ? 4 : 0)) /
             (hw_.cpu_single_thread_gbps * kGiga);
    return n * (e_ + (first ? 4 : 8)) / (hw_.cpu_copy_gbps * kGiga);
  }
  double AdamWS(int b) const {
    return lowp_ ? Params(b) * 30.0 / (hw_.cpu_adamw_lowp_gbps * kGiga)
                 : Params(b) * 28.0 / (hw_.cpu_adamw_gbps * kGiga);
  }
  // Saving or restoring param, exp_avg, exp_avg_sq (and the working copy).
  double BackupS(int b) const {
    return Params(b) * 2.0 * (12 + (lowp_ ? e_ : 0)) /
           (hw_.cpu_copy_gbps * kGiga);
  }
  double DeviceAdamWS(int b) const {
    return Params(b) * 28.0 / (hw_.device_adamw_gbps * kGiga);
  }
  bool Spilled(int b) const { return b >= 1 && b - 1 < p_.ssd_layers; }
  double SpillBytes(int b) const {
    return Params(b) * (8.0 + (SsdHoldsMasters(c_.training.precision) ? 4 : 0));
  }

  void ResetCounters() {
    compute_busy_ = cpu_busy_ = h2d_bytes_ = d2h_bytes_ = 0;
    nvme_own_.busy = 0;
    for (double& w : waits_) w = 0;
  }

  // ---- Work on each resource ----
  // Compute that may start once `ready` (and the host issued it).
  double Compute(When ready, double duration) {
    const When bound = Later(ready, host_);
    if (!shared_ && bound.t > compute_.free) Attribute(bound, compute_.free);
    const double end = compute_.Run(bound.t, duration);
    compute_busy_ += duration;
    if (shared_) host_ = {end, kCompute};  // the host computes itself
    return end;
  }
  // The compute stream idle from `idle_from` until `bound.t`: whose wait.
  void Attribute(const When& bound, double idle_from) {
    if (bound.cause == kNone) return;
    if (bound.from > idle_from && bound.from_cause != kNone) {
      waits_[bound.from_cause] += bound.from - idle_from;
      waits_[bound.cause] += bound.t - bound.from;
    } else {
      waits_[bound.cause] += bound.t - idle_from;
    }
  }
  double CpuTask(double ready, double duration) {
    cpu_busy_ += duration;
    if (!shared_ && ready > cpu_own_.free) IdleBackups(ready);
    return cpu_->Run(ready, duration);
  }
  // Speculative backups run while the CPU worker has no gradient.
  void IdleBackups(double until) {
    for (int b = 0; b < L_ + 2 && cpu_own_.free < until; ++b) {
      if (backup_left_[b] <= 0) continue;
      const double d = std::min(backup_left_[b], until - cpu_own_.free);
      backup_left_[b] -= d;
      cpu_own_.free += d;
      cpu_own_.busy += d;
      cpu_busy_ += d;
    }
  }
  // Host waits until `t` (for `cause`).
  void HostWait(double t, Cause cause) {
    if (t > host_.t) host_ = {t, cause};
  }
  void HostWait(const When& w) {
    if (w.t > host_.t) host_ = w;
  }
  // A CPU update that may start at `ready` (its spilled state, if any, read
  // by then: `nvme`).
  When Update(double ready, double duration, double nvme) {
    const double end = CpuTask(std::max(ready, nvme), duration);
    const double start = end - duration;
    return {end, kCpu, start, nvme >= start && nvme > 0 ? kNvme : kCpu};
  }

  // ---- The engine's slot logic (engine_slots.cc) ----
  int SlotOf(int layer) const { return (layer - resident_) % slots_; }
  void Fetch(int layer, bool with_input) {
    const int b = layer + 1;
    if (layer < resident_ || in_slot_[b]) return;
    HostWait(update_done_[b]);  // WaitForUpdate
    When ready = Later(host_, {slot_free_[SlotOf(layer)], kCompute});
    double bytes = static_cast<double>(Params(b)) * e_;
    if (with_input && p_.host_checkpoints) bytes += BoundaryActivationBytes(c_);
    if (layer < p_.ssd_weight_layers) {  // read from the tier ahead
      const double read = nvme_->Run(
          last_fetch_issue_, Params(b) * e_ / (hw_.nvme_read_gbps * kGiga));
      ready = Later(ready, {read, kNvme});
    }
    last_fetch_issue_ = host_.t;
    const double duration = CopyS(bytes, /*h2d=*/true);
    const double end = h2d_->Run(ready.t, duration);
    h2d_bytes_ += bytes;
    const bool waited = ready.cause == kCpu || ready.cause == kNvme;
    fetched_[b] = {end, kPcie, end - duration, waited ? ready.cause : kPcie};
    in_slot_[b] = true;
  }
  void PrefetchReady(int first, int last) {
    for (int i = first; i <= std::min(last, L_ - 1); ++i) {
      if (i < resident_) continue;
      if (update_done_[i + 1].t > host_.t) return;
      Fetch(i, /*with_input=*/false);
    }
  }
  When Ensure(int layer, bool with_input) {
    Fetch(layer, with_input);
    if (layer < resident_) return {0, kNone};
    const int b = layer + 1;
    if (l2l_) HostWait(fetched_[b].t, kPcie);  // synchronous copies
    return fetched_[b];
  }

  // ---- One step (engine_step.cc) ----
  void Step() {
    const int total_buffers = L_ + 2;
    if (p_.speculative_updates) {  // QueueBackups
      for (int b = 0; b < total_buffers; ++b)
        backup_left_[b] = OnDevice(b) ? 0 : BackupS(b);
    }
    // SendEmbeddingAndNorm.
    When sent{host_.t, kNone};
    for (int b : {0, L_ + 1}) {
      if (OnDevice(b)) continue;
      HostWait(update_done_[b]);
      const double bytes = static_cast<double>(Params(b)) * e_;
      const double duration = CopyS(bytes, true);
      const double end = h2d_->Run(host_.t, duration);
      sent = Later(sent, {end, kPcie, end - duration, host_.cause});
      h2d_bytes_ += bytes;
    }
    for (int mb = 0; mb < micro_batches_; ++mb) {
      Forward(sent);
      Backward(mb == 0, mb + 1 == micro_batches_);
    }
    // GatherGradients: the device finishes backward, every CPU task ends.
    HostWait(compute_.free, kCompute);
    HostWait(cpu_->free, kCpu);
    // The compute stream waited for the host here too (the next step's
    // compute is issued after this point).
    if (!shared_ && cpu_->free > compute_.free)
      waits_[kCpu] += cpu_->free - compute_.free;
    UpdateHost();
    // UpdateOnDevice: on the compute stream, after the norm.
    for (int b = 0; b < total_buffers; ++b) {
      if (OnDevice(b)) Compute({host_.t, kNone}, DeviceAdamWS(b));
    }
  }

  void Forward(When sent) {
    PrefetchReady(0, ahead_ - 1);
    Compute(sent, 0);  // the embedding lookup: negligible
    const int keep_last = std::max(p_.window, 1);
    for (int i = 0; i < L_; ++i) {
      PrefetchReady(i, i + ahead_);
      const When ready = Ensure(i, false);
      const double end = Compute(ready, cost_.forward_s);
      if (p_.host_checkpoints) {  // x[i+1] to the host
        const double bytes = BoundaryActivationBytes(c_);
        d2h_->Run(end, CopyS(bytes, false));
        d2h_bytes_ += bytes;
      }
      if (i >= L_ - keep_last || i < resident_) continue;
      slot_free_[SlotOf(i)] = std::max(slot_free_[SlotOf(i)], end);
      in_slot_[i + 1] = false;
    }
  }

  // HandOff of buffer b's gradient, ready on the device at `ready`.
  void HandOff(int b, int staging, double ready, bool first, bool last_mb) {
    HostWait(staging_done_[staging]);
    const double bytes = static_cast<double>(Params(b)) * e_;
    const double landed = d2h_->Run(std::max(ready, shared_ ? 0.0 : host_.t),
                                    CopyS(bytes, false));
    d2h_bytes_ += bytes;
    if (l2l_) HostWait(landed, kPcie);
    const bool update = last_mb && !defer_;
    double work = AccumulateS(b, first, last_mb && defer_);
    if (update && p_.speculative_updates) {
      work += backup_left_[b];  // saved first, unless saved in the background
      backup_left_[b] = 0;
    }
    if (update) work += AdamWS(b);
    const When done =
        Update(landed, work, update && Spilled(b) ? SpillRead(b) : 0);
    if (update && Spilled(b)) SpillWrite(b, done.t);
    staging_done_[staging] = done;
    if (update) update_done_[b] = done;
    if (update && o_.synchronous_optimizer) HostWait(done);
    if (b >= 1 && b <= L_ && staging < slots_)
      slot_free_[staging] = std::max(slot_free_[staging], landed);
  }

  void Backward(bool first, bool last_mb) {
    // The head: final norm, logits, loss, its backward; loss.item() syncs.
    const double head = 3 * HeadForwardFlops(c_) / head_rate_;
    const double head_end = Compute({0, kNone}, head);
    HostWait(head_end, kCompute);
    if (last_mb && p_.ssd_layers > 0) spill_issue_ = host_.t;
    for (int i = L_ - 1; i >= 0; --i) {
      if (ahead_ > 0 && i - ahead_ >= 0) Fetch(i - ahead_, true);
      const When ready = Ensure(i, true);
      const double work =
          cost_.backward_s + (i >= kept_from_ ? 0 : cost_.forward_s);
      const double end = Compute(ready, work);
      if (i < resident_) {  // accumulated on the device
        Compute({0, kNone},
                Params(i + 1) * 12.0 / (hw_.device_adamw_gbps * kGiga));
        continue;
      }
      HandOff(i + 1, SlotOf(i), end, first, last_mb);
      slot_free_[SlotOf(i)] = std::max(slot_free_[SlotOf(i)], end);
      in_slot_[i + 1] = false;
    }
    const double emb_end = compute_.free;  // the embedding's backward
    if (OnDevice(0)) {
      Compute({0, kNone}, Params(0) * 12.0 / (hw_.device_adamw_gbps * kGiga));
    } else {
      HandOff(0, slots_, emb_end, first, last_mb);
    }
    HandOff(L_ + 1, slots_ + 1, emb_end, first, last_mb);
  }

  double SpillRead(int b) {
    return nvme_->Run(spill_issue_,
                      SpillBytes(b) / (hw_.nvme_read_gbps * kGiga));
  }
  void SpillWrite(int b, double after) {
    nvme_->Run(after, SpillBytes(b) / (hw_.nvme_write_gbps * kGiga));
  }

  void UpdateHost() {
    if (!defer_ && !clipped_) return;  // updated as the gradients landed
    std::vector<int> order;
    if (!OnDevice(0)) order.push_back(0);
    if (!o_.final_norm_updated_last) order.push_back(L_ + 1);
    for (int b = 1; b <= L_; ++b)
      if (!OnDevice(b)) order.push_back(b);
    if (o_.final_norm_updated_last) order.push_back(L_ + 1);
    spill_issue_ = host_.t;
    for (int b : order) {
      double work = AdamWS(b);
      if (clipped_ && !defer_) work += BackupS(b) / 2;  // restore first
      update_done_[b] = Update(host_.t, work, Spilled(b) ? SpillRead(b) : 0);
      if (Spilled(b)) SpillWrite(b, update_done_[b].t);
    }
    if (o_.final_norm_updated_last) {
      // The next step started only after the final norm's update.
      HostWait(update_done_[L_ + 1]);
    }
  }

 private:
  const JobConfig& c_;
  const ExecutionPlan& p_;
  const HardwareProfile& hw_;
  const ScheduleOptions& o_;
  const LayerCost cost_;
  const double head_rate_;  // the head's FLOP/s
  const bool clipped_;
  int L_ = 0, e_ = 4, micro_batches_ = 1, ahead_ = 0, slots_ = 1, resident_ = 0,
      kept_from_ = 0;
  bool lowp_ = false, l2l_ = false, defer_ = false, shared_ = false;

  Resource compute_, h2d_own_, d2h_own_, cpu_own_, nvme_own_;
  Resource *h2d_, *d2h_, *cpu_, *nvme_;
  When host_;
  double last_fetch_issue_ = 0, spill_issue_ = 0;
  std::vector<double> slot_free_, backup_left_;
  std::vector<When> staging_done_;  // each staging buffer's last CPU task
  // When each buffer's pending update ends; it waited for its spilled
  // state (NVMe) or the CPU.
  std::vector<When> update_done_;
  std::vector<When> fetched_;  // each layer's H2D copy
  std::vector<bool> in_slot_;
  double compute_busy_ = 0, cpu_busy_ = 0, h2d_bytes_ = 0, d2h_bytes_ = 0;
  double waits_[4] = {0, 0, 0, 0};
};

}  // namespace stronghold::core::schedule_internal

#endif  // STRONGHOLD_CORE_PLAN_SCHEDULE_SIMULATOR_H_
