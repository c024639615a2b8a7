// The daemon's Prometheus metrics (docs/observability.md lists every one).
//
// Metrics is the JobListener the JobManager tells about job state changes and
// finished steps; it turns them into per-job series labelled
// job_name="jobs/{id}" (not `job`: Prometheus reserves that label for the
// scrape job and would rename ours to exported_job) and per-node series
// (jobs by state, memory tiers, I/O backend, build info). The RPC metrics
// come from RpcMetricsInterceptorFactory (server/rpc_metrics.h) on the same
// registry. Nothing here listens on a port: main.cc hands registry() to a
// prometheus::Exposer.
//
// Units follow the Prometheus conventions: seconds, bytes, FLOP/s, ratios in
// [0, 1], and counters end in _total.
//
// Thread safety: all methods are thread-safe. The JobListener methods run
// under the JobManager's lock, so they only update in-memory series and
// never call back into the manager.
#ifndef STRONGHOLD_SERVER_METRICS_H_
#define STRONGHOLD_SERVER_METRICS_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/plan/planner.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/job_manager.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

struct MetricsOptions {
  // Dense peak FLOP/s of the compute device at the training precision: the
  // denominator of MFU (stronghold_job_mfu_ratio). Required, > 0; main.cc
  // takes --device_peak_flops or NominalPeakFlops().
  double device_peak_flops_per_s = 0.0;
  std::string device = "cpu";  // the compute device, for stronghold_device_info
  std::string version;         // strongholdd's version (stronghold_build_info)
  std::string torch_version;   // LibTorch's version (stronghold_build_info)
  // Per-job series of ended jobs are kept for the newest this many ended
  // jobs, so their last values can still be scraped; older ones are removed
  // to bound the number of series of a long-running daemon.
  int max_ended_jobs = 16;
};

// A documented nominal dense FP32 peak, used when --device_peak_flops is 0.
// cpu: per hardware thread, one FP32 FMA per cycle at a nominal 2.5 GHz:
// 8 lanes (AVX2) or 16 (AVX-512) x 2 FLOP, i.e. 40 or 80 GFLOP/s per thread
// (a core has two FMA ports, shared by its two SMT threads). A rough figure:
// pass the machine's real peak with --device_peak_flops for an MFU to
// compare across machines. Returns 0 for devices it knows no figure for.
double NominalPeakFlops(absl::string_view device, int cpu_threads, bool avx512);

class Metrics final : public JobListener {
 public:
  explicit Metrics(MetricsOptions options);
  ~Metrics() override;

  // Where every series lives; also holds the RPC metrics.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // JobListener.
  void OnJobState(const stronghold::v1::Job& job) override;
  void OnJobStep(const stronghold::v1::Job& job,
                 const stronghold::v1::StepMetrics& step) override;

  // Counts jobs the manager loaded from the state directory (ended ones are
  // never announced through OnJobState). Jobs already seen through
  // OnJobState keep their newer state.
  void SeedJobs(const std::vector<stronghold::v1::Job>& jobs);

  // Tier capacities and budgets, from JobManager::Node().
  void SetNode(const stronghold::v1::Node& node);

  // The I/O backend of the NVMe tier ("none" until that tier exists, then
  // "io_uring" or "pread").
  void SetIoBackend(absl::string_view backend);

  // Failed I/O completions of the NVMe tier (the storage layer reports
  // them; nothing does yet).
  void AddIoErrors(int64_t count);

 private:
  struct JobSeries;  // every per-job series of one job

  JobSeries& SeriesLocked(const stronghold::v1::Job& job)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveSeriesLocked(const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CountStateLocked(const std::string& name,
                        stronghold::v1::Job::State state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateTierUsageLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction (the families are internally thread-safe).
  const MetricsOptions options_;
  const std::shared_ptr<prometheus::Registry> registry_;
  // Per job.
  prometheus::Family<prometheus::Histogram>& step_duration_;
  prometheus::Family<prometheus::Counter>& steps_;
  prometheus::Family<prometheus::Counter>& samples_;
  prometheus::Family<prometheus::Counter>& tokens_;
  prometheus::Family<prometheus::Gauge>& loss_;
  prometheus::Family<prometheus::Gauge>& lr_;
  prometheus::Family<prometheus::Gauge>& grad_norm_;
  prometheus::Family<prometheus::Gauge>& loss_scale_;
  prometheus::Family<prometheus::Counter>& skipped_steps_;
  prometheus::Family<prometheus::Counter>& rolled_back_steps_;
  prometheus::Family<prometheus::Gauge>& model_flops_;
  prometheus::Family<prometheus::Gauge>& mfu_;
  prometheus::Family<prometheus::Gauge>& window_;
  prometheus::Family<prometheus::Gauge>& predicted_step_;
  prometheus::Family<prometheus::Gauge>& device_peak_;
  prometheus::Family<prometheus::Gauge>& target_steps_;
  prometheus::Family<prometheus::Counter>& phase_seconds_;
  prometheus::Family<prometheus::Counter>& transfer_bytes_;
  prometheus::Family<prometheus::Counter>& nvme_reused_bytes_;
  prometheus::Family<prometheus::Counter>& nvme_unplanned_reads_;
  prometheus::Family<prometheus::Counter>& optimizer_parameters_;
  prometheus::Family<prometheus::Gauge>& job_info_;
  // Per node.
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Family<prometheus::Counter>& jobs_ended_;
  prometheus::Family<prometheus::Gauge>& tier_capacity_;
  prometheus::Family<prometheus::Gauge>& tier_budget_;
  prometheus::Family<prometheus::Gauge>& tier_used_;
  prometheus::Family<prometheus::Gauge>& io_backend_;
  prometheus::Counter& io_errors_;

  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<JobSeries>> series_
      ABSL_GUARDED_BY(mu_);
  std::deque<std::string> ended_ ABSL_GUARDED_BY(mu_);  // oldest first
  std::map<std::string, stronghold::v1::Job::State> states_
      ABSL_GUARDED_BY(mu_);
  // Planned bytes per tier of each running job.
  std::map<std::string, std::map<std::string, int64_t>> running_bytes_
      ABSL_GUARDED_BY(mu_);
  prometheus::Gauge* io_backend_series_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_METRICS_H_
