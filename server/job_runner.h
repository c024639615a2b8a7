// Runs one job for the JobManager: builds its core::Trainer, restores it
// from the checkpoint it continues from (server/resume.h), trains it, and
// reports its progress to a JobRecorder (the manager's record of the job).
//
// A job can never take the daemon down: every exception thrown while the
// trainer is created, restored or run (std::bad_alloc; c10::Error, which
// derives from std::exception; any other std::exception; anything else) is
// caught here and ends the run with a status naming what was happening and
// the exception, which fails the job like any other error. The trainer is
// destroyed, its memory freed, before Run() returns.
//
// Thread safety: Run() is called by one thread at a time (the manager's
// worker); the recorder is called from that thread only.
#ifndef STRONGHOLD_SERVER_JOB_RUNNER_H_
#define STRONGHOLD_SERVER_JOB_RUNNER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/device/device.h"
#include "core/dist/c10d_communicator.h"
#include "core/plan/job_config.h"
#include "core/plan/planner.h"
#include "core/plan/step_time_check.h"
#include "core/train/trainer.h"
#include "server/path_confinement.h"
#include "server/plan_prediction.h"
#include "storage/fault_spec.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::core::dist {
class Session;
}  // namespace stronghold::core::dist

namespace stronghold::server {

// On a status JobRunner::Run returns: the job is to be queued again (as at
// a shutdown) although this daemon is not shutting down: another rank's
// daemon is, and every rank checkpointed the same step.
inline constexpr char kRequeuePayload[] = "stronghold.dev/requeue";

// Where a running job's progress goes, and whether it should stop. `id` is
// the job's (JobRun::id). Implementations take their own locks and must
// not call back into the runner.
class JobRecorder {
 public:
  virtual ~JobRecorder() = default;
  // A step finished.
  virtual void RecordStep(int64_t id,
                          const stronghold::v1::StepMetrics& metrics) = 0;
  // A note for the job's events.
  virtual void RecordMessage(int64_t id, const std::string& message) = 0;
  // Checkpoint `written` is complete and durable; `present` is every
  // checkpoint the job has now, oldest first.
  virtual void RecordCheckpoints(int64_t id,
                                 const std::vector<std::string>& present,
                                 const std::string& written) = 0;
  // The Chrome trace of `step` (windowed methods).
  virtual void RecordTrace(int64_t id, int64_t step,
                           const std::string& chrome_trace_json) = 0;
  // The trainer was restored: training continues after `step` (0 = from
  // the start).
  virtual void RecordRestored(int64_t id, int64_t step) = 0;
  virtual core::StopRequest StopRequested(int64_t id) = 0;
};

struct JobRunnerOptions {
  // The node's budgets, defaults filled in (JobManager does).
  core::NodeBudgets budgets;
  // The compute device for every job; null = a host device made for each
  // job with that job's budget.
  std::shared_ptr<core::Device> device;
  // Dense peak FLOP/s of the device, for StepMetrics.mfu (0 = unknown).
  double device_peak_flops = 0;
  // CPU optimizer threads per job (0 = every CPU the process may use).
  int optimizer_threads = 0;
  // Testing only: faults armed on the NVMe tier of the first job that opens
  // one (JobManagerOptions::ssd_fault_injection). Empty = none.
  storage::FaultSpec ssd_fault_injection;
  // Where a job's token file and tier directories may be: each run opens
  // them here and hands the trainer the descriptors. Default: no roots.
  std::shared_ptr<const PathConfinement> paths =
      std::make_shared<const PathConfinement>();
  // JobManagerOptions::create_communicator.
  core::CommunicatorFactory create_communicator;
  // The node's measured hardware profile for a job (JobManagerOptions::
  // node_profile): each run's step time is predicted from it at the start
  // and every step compared with it (core/plan/step_time_check.h). Empty =
  // no prediction.
  NodeProfileSource node_profile;
  // How far a step may be from the prediction before the job's events say
  // so, and how often they repeat it.
  core::StepTimeCheckOptions step_time_check;
};

// One run of a job, as the manager resolved it from the job's record.
struct JobRun {
  int64_t id = 0;
  // The effective spec (defaults filled in, resume_from pinned); stored as
  // job.json in every checkpoint.
  stronghold::v1::JobSpec spec;
  std::string job_dir;          // <state_dir>/jobs/<id>
  std::string checkpoints_dir;  // where the trainer writes them:
                                // <job_dir>/checkpoints
  // The pinned checkpoint of spec.resume_from; empty = none.
  std::string resume_dir;
  // The run's execution plan (JobManagerOptions::planner, once per run).
  core::ExecutionPlan plan;
};

class JobRunner {
 public:
  explicit JobRunner(JobRunnerOptions options);

  // Trains `run` from its newest intact checkpoint (else resume_dir, else
  // step 0) to its end. Returns what core::Trainer::Run does (OK when done,
  // CANCELLED or ABORTED on a stop request, or the error that stopped
  // training), the error of creating or restoring the trainer, or for an
  // exception RESOURCE_EXHAUSTED (std::bad_alloc) or INTERNAL (any other),
  // with what the runner was doing and the exception's message.
  absl::Status Run(const JobRun& run, JobRecorder& recorder);

 private:
  friend class JobRunnerTestPeer;
  using TrainerFactory =
      std::function<absl::StatusOr<std::unique_ptr<core::Trainer>>(
          const core::JobConfig&, const core::ExecutionPlan&,
          const core::TrainerOptions&)>;

  // The run's step time predicted from options_.node_profile (core::
  // PredictJob on the run's plan: PlanJob's code), logged and said in the
  // job's events; nothing when there is no profile or it fails (logged: the
  // job trains regardless).
  std::optional<core::StepTimeCheck> PredictStep(
      const JobRun& run, core::TrainerObserver& observer);
  // Create, restore, run; `*doing` says which, for an exception's message.
  absl::Status Train(const JobRun& run, JobRecorder& recorder,
                     core::TrainerObserver& observer, const char** doing);
  // The one place a job becomes a trainer: its config, its run's plan, its
  // files opened inside the roots (PERMISSION_DENIED if they no longer are
  // there) and the node's options turned into core::Trainer::Create's
  // arguments.
  // `comm`: the communicator of a distributed job's ranks (null: one rank).
  absl::StatusOr<std::unique_ptr<core::Trainer>> CreateTrainer(
      const JobRun& run, core::TrainerObserver& observer,
      core::Communicator* comm = nullptr);
  // Train() for distributed.world_size > 1 (server/distributed_job.cc): the
  // rendezvous, the ranks' watchdog, then create, restore, run as Train().
  absl::Status TrainDistributed(const JobRun& run,
                                const core::JobConfig& config,
                                JobRecorder& recorder,
                                core::TrainerObserver& observer,
                                const char** doing);
  // The one place a distributed job, after its rendezvous, connects its
  // communicator (core/dist/c10d_communicator.h) over the session's store
  // (server/distributed_job.cc); the trainer is CreateTrainer's with it.
  absl::StatusOr<std::unique_ptr<core::Communicator>> ConnectCommunicator(
      const core::dist::Session& session);
  // TrainerOptions::wrap_ssd_device for --ssd_fault_injection: arms the
  // faults on the first tier opened in this runner's life, says so in that
  // job's events, and leaves later tiers alone.
  std::function<std::unique_ptr<storage::BlockDevice>(
      std::unique_ptr<storage::BlockDevice>)>
  SsdFaultWrapper(int64_t id, core::TrainerObserver& observer);

  // Constant after construction.
  const JobRunnerOptions options_;
  // core::Trainer::Create; tests replace it (JobRunnerTestPeer) to make
  // creation fail in ways a real trainer cannot be told to.
  TrainerFactory create_trainer_;

  // options_.ssd_fault_injection has been armed on a job's tier.
  std::atomic<bool> ssd_faults_spent_{false};
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_JOB_RUNNER_H_
