// The daemon's job manager: validates and plans submitted jobs, keeps their
// records durable in the state directory, runs them one at a time in FIFO
// order on a worker thread (one running job per device), and fans their
// events out to watchers. Knows nothing about gRPC: every method returns an
// absl::Status that server/service.cc maps to a gRPC code.
//
// This class is the queue and the state machine; the rest is beside it:
// server/job_queries.cc reads records, events, checkpoints and traces,
// server/job_recording.cc takes what a running job reports,
// server/job_limits.h says what a principal may hold,
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

#include <atomic>
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
#include "server/job_limits.h"
#include "server/job_runner.h"
#include "server/job_store.h"
#include "server/node_profile.h"
#include "server/plan_prediction.h"
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
  // The in-memory events WatchJob replays, bounded per job and in total.
  JobEventLogOptions events;
  // Queued jobs, watch streams and checkpoint bytes per principal and in
  // total (server/job_limits.h).
  JobLimits limits;
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
  // Connects a distributed job's ranks (core::CreateC10dCommunicator in the
  // daemon's main(), which links the Gloo or the Gloo + NCCL one). Null: a
  // job with distributed.world_size > 1 fails with FAILED_PRECONDITION.
  core::CommunicatorFactory create_communicator;
  // Where a job's token file (data.source) and NVMe tier directories
  // (offload.ssd_dirs) may be (server/path_confinement.h): absolute paths
  // of directories, opened once by Create. Without a data root only
  // "builtin" data is accepted, without an ssd root no NVMe tier. Create
  // also removes the tier directories of killed processes under the ssd
  // roots.
  std::vector<std::string> data_roots;
  std::vector<std::string> ssd_roots;
  // How jobs are planned: once at submission (to refuse what does not fit)
  // and once when each run starts, the plan then stored in the job record
  // (Job.plan) and handed to the trainer; nothing else plans a job. Tests
  // wrap core::PlanExecution to count the calls.
  Planner planner = core::PlanExecution;
  // The node's measured hardware profile (plan --predict without a named
  // profile, GetNode); null = none (--node_profile=false).
  std::shared_ptr<NodeProfile> node_profile;
};

// One WatchJob stream (JobManager::Follow): the job's events as they are
// added. Holds one of its principal's watch slots until destroyed.
class JobWatch {
 public:
  // JobEventLog::Reader::Read: the events since the last call; true once
  // nothing more will come.
  bool Read(std::vector<stronghold::v1::JobEvent>* out) {
    return reader_->Read(out);
  }

 private:
  friend class JobManager;
  JobWatch(StreamSlots::Slot slot, std::unique_ptr<JobEventLog::Reader> reader)
      : slot_(std::move(slot)), reader_(std::move(reader)) {}
  StreamSlots::Slot slot_;  // released last
  std::unique_ptr<JobEventLog::Reader>
      reader_;  // destroyed first: no wake after
};

class JobManager : private JobRecorder {
 public:
  // INVALID_ARGUMENT naming the option for a bad option (a root that is not
  // a directory, say); the state directory's errors.
  static absl::StatusOr<std::unique_ptr<JobManager>> Create(
      JobManagerOptions options);
  ~JobManager() override;

  // Records `owner` as the job's owner (Job.owner); its limits count
  // against owner.name. RESOURCE_EXHAUSTED past a queue or checkpoint limit
  // of the owner or of everyone (server/job_limits.h), besides the spec's
  // own errors. A spec that resumes from another job's checkpoint needs
  // `owner` to be allowed to download it (PERMISSION_DENIED naming
  // resume_from otherwise).
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
  // Deletes an ended job: its record and every file (checkpoints) are gone
  // durably, its name is never reused. FAILED_PRECONDITION for a queued or
  // running job (cancel it first) and for one whose checkpoint a queued or
  // running job resumes from.
  absl::Status Delete(const std::string& name);
  // With request.predict, the plan carries the predicted step time on the
  // profile the request names (server/plan_prediction.h).
  absl::StatusOr<stronghold::v1::MemoryPlan> Plan(
      const stronghold::v1::JobSpec& spec);
  absl::StatusOr<stronghold::v1::MemoryPlan> Plan(
      const stronghold::v1::PlanJobRequest& request);

  // Follows the job's events from its oldest kept one (metrics of steps
  // after since_step only) until it ends: `wake` runs when there is more
  // to read (JobEventLog::Follow). RESOURCE_EXHAUSTED past the watch-stream
  // limits of `principal` or of everyone; NOT_FOUND for an unknown job.
  absl::StatusOr<std::unique_ptr<JobWatch>> Follow(const std::string& name,
                                                   int64_t since_step,
                                                   const std::string& principal,
                                                   std::function<void()> wake);

  // Follow, blocking: calls `emit` for each event until the job ends.
  // `emit` returns false to stop (client gone); `cancelled` is polled
  // every 100 ms while waiting.
  absl::Status Watch(
      const std::string& name, int64_t since_step,
      const std::function<bool(const stronghold::v1::JobEvent&)>& emit,
      const std::function<bool()>& cancelled,
      const std::string& principal = kLocalPrincipal);

  // Path of `file` in the job's checkpoint (newest when empty). `format`
  // "hf": of the checkpoint's Hugging Face export (core/hf/hf_export.h),
  // written first when it is not there yet.
  absl::StatusOr<std::string> CheckpointPath(const std::string& name,
                                             const std::string& checkpoint,
                                             const std::string& file,
                                             const std::string& format = "");

  // Takes no lock the manager holds while it writes to disk, so GetNode
  // answers at once whatever the jobs are doing.
  stronghold::v1::Node Node();
  // Measures the node's hardware profile again: FAILED_PRECONDITION while a
  // job runs (or without a profile), INTERNAL if measuring fails.
  absl::Status RemeasureProfile();

  // Returns once the manager's lock could be taken (the systemd watchdog:
  // a manager stuck holding it stops the pings).
  void Ping();

  // The most recent recorded step timeline of a windowed job.
  absl::StatusOr<stronghold::v1::JobTrace> Trace(const std::string& name);

  // Stops the worker after the running job's checkpoint. Idempotent.
  void Shutdown();

 private:
  struct Record {
    stronghold::v1::Job job;
    // Whom the job's limits are charged to. Jobs loaded at a start are
    // charged to kLocalPrincipal until the record names its owner.
    std::string principal = kLocalPrincipal;
    // Checkpoint bytes charged to the principal: the reserved worst case
    // until the job ends, then what its checkpoints hold.
    int64_t checkpoint_bytes = 0;
    // Why the running job must stop and fail (its checkpoints passed their
    // quota); empty = no reason.
    std::string quota_error;
    bool cancel_requested = false;
    bool cancel_checkpoint = false;  // checkpoint before cancelling
    stronghold::v1::JobTrace trace;  // empty until a windowed step recorded one
    // When progress was last persisted (state changes always are).
    std::chrono::steady_clock::time_point persisted;
  };

  JobManager(JobManagerOptions options, JobStore store,
             std::shared_ptr<const PathConfinement> paths);
  void WorkerLoop();
  // Runs job `id` (just taken from the queue) and records how it ended.
  void RunJob(int64_t id);
  // Finds a job's record for server/resume.h (takes the lock).
  JobLookup Lookup();
  // Chooses a job's automatic options with the node's measured profile
  // (none with --node_profile=false: they stay off).
  Configurator AutoConfigurator() const;

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
  // Copies the queue's length and the running job for Node().
  void PublishQueueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED when the queue is full, for everyone or `principal`.
  absl::Status CheckQueueLimitsLocked(const std::string& principal)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED when `principal`'s jobs and one more of `bytes`
  // would pass the principal's checkpoint quota.
  absl::Status CheckPrincipalCheckpointsLocked(const std::string& principal,
                                               int64_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const JobManagerOptions options_;
  JobStore store_;
  const std::shared_ptr<const PathConfinement> paths_;  // shared with runner_
  JobRunner runner_;         // used by the worker thread only
  JobEventLog events_;       // has its own lock
  StreamSlots watch_slots_;  // has its own lock

  absl::Mutex mu_;
  absl::CondVar cv_;  // signalled on state changes, queue changes and shutdown
  std::map<int64_t, Record> jobs_ ABSL_GUARDED_BY(mu_);
  std::deque<int64_t> queue_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // queue_.size() and running_ as of the last change, for Node().
  std::atomic<int> queued_jobs_{0};
  std::atomic<int64_t> running_job_{0};

  std::thread worker_;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_JOB_MANAGER_H_
