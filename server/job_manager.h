// The daemon's job manager: validates and plans submitted jobs, keeps their
// records durable in the state directory, runs them one at a time in FIFO
// order on a worker thread (one running job per device), and fans their
// events out to watchers. Knows nothing about gRPC: every method returns an
// absl::Status that server/service.cc maps to a gRPC code.
//
// This class is the queue and the state machine; the rest is beside it:
// server/job_runner.h runs one job (the trainer, its observer, exceptions),
// server/job_recovery.h decides what a start does with each stored job,
// server/resume.h resolves resume_from and restores checkpoints,
// server/job_events.h keeps the events WatchJob streams, and
// server/proto_convert.h converts between the API and the engine.
//
// Restart (after Shutdown() or a crash): jobs found QUEUED or RUNNING in the
// state directory are queued again and resume from their newest intact
// checkpoint (server/resume.h), so training continues exactly; hidden
// leftovers of interrupted checkpoint writes are removed first. A job the
// daemon died under more than max_job_restarts times fails instead.
// Shutdown(): the running job finishes its current step, writes a
// checkpoint, and is left QUEUED for the next start.
//
// Thread safety: all public methods are thread-safe.
#ifndef STRONGHOLD_SERVER_JOB_MANAGER_H_
#define STRONGHOLD_SERVER_JOB_MANAGER_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/device/device.h"
#include "core/plan/planner.h"
#include "server/auth/job_access.h"
#include "server/auth/principal.h"
#include "server/job_admission.h"
#include "server/job_events.h"
#include "server/job_runner.h"
#include "server/job_store.h"
#include "server/resume.h"
#include "storage/fault_spec.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

// Told about every job state change and finished step (metrics, logs).
// Called with the manager's lock held: implementations must be quick and
// must not call back into the JobManager.
class JobListener {
 public:
  virtual ~JobListener() = default;
  virtual void OnJobState(const stronghold::v1::Job& job) = 0;
  virtual void OnJobStep(const stronghold::v1::Job& job,
                         const stronghold::v1::StepMetrics& metrics) = 0;
};

struct JobManagerOptions {
  std::string state_dir;      // required; job records and checkpoints
  core::NodeBudgets budgets;  // device name and memory budgets
  // Events kept in memory per job for WatchJob replay (older ones dropped).
  int max_events_per_job = 100'000;
  JobListener* listener = nullptr;  // optional, not owned, outlives the manager
  // The compute device for every job (a GPU); null = a host device made for
  // each job with that job's budget.
  std::shared_ptr<core::Device> device;
  // Dense peak FLOP/s of the device, for StepMetrics.mfu (0 = unknown).
  double device_peak_flops = 0;
  // CPU optimizer threads per job (0 = every CPU the process may use).
  int optimizer_threads = 0;
  // How many times a job the daemon stopped under (crash, kill -9, the OOM
  // killer) is resumed at the next start; the stop after that fails it
  // ("the daemon stopped N times while running this job"). >= 0; 0 fails
  // it at the first. Bounds a crash loop caused by one job.
  int max_job_restarts = 2;
  // Testing only (--ssd_fault_injection): faults armed on the NVMe tier of
  // the first job that opens one after the daemon starts; later jobs get a
  // plain tier. Empty = none.
  storage::FaultSpec ssd_fault_injection;
  // How jobs are planned: once at submission (to refuse what does not fit)
  // and once when each run starts, the plan then stored in the job record
  // (Job.plan) and handed to the trainer; nothing else plans a job. Tests
  // wrap core::PlanExecution to count the calls.
  Planner planner = core::PlanExecution;
};

class JobManager : private JobRecorder {
 public:
  // INVALID_ARGUMENT naming the option for a bad option; the state
  // directory's errors.
  static absl::StatusOr<std::unique_ptr<JobManager>> Create(
      JobManagerOptions options);
  ~JobManager() override;

  // Records `owner` as the job's owner (Job.owner). A spec that resumes
  // from another job's checkpoint needs `owner` to be allowed to download
  // it (PERMISSION_DENIED naming resume_from otherwise).
  absl::StatusOr<stronghold::v1::Job> Submit(
      const stronghold::v1::JobSpec& spec, const Principal& owner);
  absl::StatusOr<stronghold::v1::Job> Get(const std::string& name);
  // OK when `principal` may do `action` to job `name` (server/auth/
  // job_access.h); PERMISSION_DENIED naming both otherwise, NOT_FOUND for an
  // unknown job. Every RPC that acts on a job calls it first (a job's owner
  // never changes, so the answer holds for the action that follows).
  absl::Status Authorize(const std::string& name, const Principal& principal,
                         JobAction action);
  // Newest first. page_token is the id the next page starts below.
  absl::StatusOr<stronghold::v1::ListJobsResponse> List(
      int page_size, const std::string& page_token);
  // With `checkpoint`, a running job finishes its step and writes a
  // checkpoint before it ends CANCELLED.
  absl::StatusOr<stronghold::v1::Job> Cancel(const std::string& name,
                                             bool checkpoint = false);
  absl::StatusOr<stronghold::v1::MemoryPlan> Plan(
      const stronghold::v1::JobSpec& spec);

  // Replays the job's recorded events (metrics of steps after since_step),
  // then follows new ones until the job ends. `emit` returns false to stop
  // (client gone); `cancelled` is polled while waiting.
  absl::Status Watch(
      const std::string& name, int64_t since_step,
      const std::function<bool(const stronghold::v1::JobEvent&)>& emit,
      const std::function<bool()>& cancelled);

  // Path of `file` in the job's checkpoint (newest when empty).
  absl::StatusOr<std::string> CheckpointPath(const std::string& name,
                                             const std::string& checkpoint,
                                             const std::string& file);

  stronghold::v1::Node Node();

  // The most recent recorded step timeline of a windowed job.
  absl::StatusOr<stronghold::v1::JobTrace> Trace(const std::string& name);

  // Stops the worker after the running job's checkpoint. Idempotent.
  void Shutdown();

 private:
  struct Record {
    stronghold::v1::Job job;
    bool cancel_requested = false;
    bool cancel_checkpoint = false;  // checkpoint before cancelling
    stronghold::v1::JobTrace trace;  // empty until a windowed step recorded one
    // When progress was last persisted (state changes always are).
    std::chrono::steady_clock::time_point persisted;
  };

  JobManager(JobManagerOptions options, JobStore store);
  void WorkerLoop();
  // Runs job `id` (just taken from the queue) and records how it ended.
  void RunJob(int64_t id);
  // Finds a job's record for server/resume.h (takes the lock).
  JobLookup Lookup();

  // JobRecorder: the running job reports here (server/job_runner.h).
  void RecordStep(int64_t id,
                  const stronghold::v1::StepMetrics& metrics) override;
  void RecordMessage(int64_t id, const std::string& message) override;
  void RecordCheckpoints(int64_t id, const std::vector<std::string>& present,
                         const std::string& written) override;
  void RecordTrace(int64_t id, int64_t step,
                   const std::string& chrome_trace_json) override;
  void RecordRestored(int64_t id, int64_t step) override;
  core::StopRequest StopRequested(int64_t id) override;

  // Appends an event (state, metrics or message) with the job as it is now.
  void AddEventLocked(const Record& r, stronghold::v1::JobEvent event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddMessageLocked(const Record& r, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the state (an event, the listener) and persists the record;
  // returns that write's status (a failure is logged either way).
  absl::Status SetStateLocked(Record& r, stronghold::v1::Job::State state,
                              const std::string& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status PersistLocked(const Record& r)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Record*> FindLocked(const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const JobManagerOptions options_;
  JobStore store_;
  JobRunner runner_;    // used by the worker thread only
  JobEventLog events_;  // has its own lock

  absl::Mutex mu_;
  absl::CondVar cv_;  // signalled on state changes, queue changes and shutdown
  std::map<int64_t, Record> jobs_ ABSL_GUARDED_BY(mu_);
  std::deque<int64_t> queue_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;

  std::thread worker_;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_JOB_MANAGER_H_
