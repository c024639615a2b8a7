// The job manager's queue and state machine (server/job_manager.h): start-up
// recovery, the worker that runs one job at a time, Submit, Cancel, Delete,
// Plan and the records' states.
#include "server/job_manager.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/plan/prediction.h"
#include "core/util/checked_math.h"
#include "core/util/status_macros.h"
#include "glog/logging.h"
#include "server/job_admission.h"
#include "server/job_limits.h"
#include "server/job_recovery.h"
#include "server/node_info.h"
#include "server/proto_convert.h"
#include "server/resume.h"

namespace stronghold::server {

namespace v1 = ::stronghold::v1;
using google::protobuf::util::TimeUtil;

namespace {

bool Ended(v1::Job::State s) {
  return s == v1::Job::SUCCEEDED || s == v1::Job::FAILED ||
         s == v1::Job::CANCELLED;
}

JobManagerOptions WithBudgets(JobManagerOptions options) {
  options.budgets = WithDefaultBudgets(options.budgets);
  return options;
}

// A job's profile from the node's (measured once per layer shape); empty
// without one.
NodeProfileSource NodeProfileFor(std::shared_ptr<NodeProfile> profile) {
  if (profile == nullptr) return {};
  return [profile = std::move(profile)](const core::JobConfig& c) {
    return profile->ForJob(c);
  };
}

JobRunnerOptions RunnerOptions(const JobManagerOptions& options,
                               std::shared_ptr<const PathConfinement> paths) {
  return {.budgets = options.budgets,
          .device = options.device,
          .device_peak_flops = options.device_peak_flops,
          .optimizer_threads = options.optimizer_threads,
          .ssd_fault_injection = options.ssd_fault_injection,
          .paths = std::move(paths),
          .create_communicator = options.create_communicator,
          .node_profile = NodeProfileFor(options.node_profile)};
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Create(
    JobManagerOptions options) {
  if (options.max_job_restarts < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_job_restarts: must be >= 0, got ", options.max_job_restarts));
  }
  RETURN_IF_ERROR(ValidateJobLimits(options.limits));
  ASSIGN_OR_RETURN(PathConfinement paths,
                   PathConfinement::Open({.data_roots = options.data_roots,
                                          .ssd_roots = options.ssd_roots}));
  // No job of this daemon runs yet: what is there was left by a killed one.
  paths.RemoveStaleTierDirs();
  ASSIGN_OR_RETURN(JobStore store, JobStore::Open(options.state_dir));
  std::unique_ptr<JobManager> m(new JobManager(
      std::move(options), std::move(store),
      std::make_shared<const PathConfinement>(std::move(paths))));
  {
    absl::MutexLock lock(&m->mu_);
    for (v1::Job& job : m->store_.LoadAll()) {
      const int64_t id = *ParseJobName(job.name());
      m->next_id_ = std::max(m->next_id_, id + 1);
      const JobRecovery recovery = RecoverJob(job, m->store_.CheckpointsDir(id),
                                              m->options_.max_job_restarts);
      Record& r = m->jobs_[id];
      r.job = std::move(job);
      // Its limits count against its owner (jobs recorded before owners
      // existed: against the local principal).
      if (!r.job.owner().empty()) r.principal = r.job.owner();
      r.checkpoint_bytes =
          recovery.action == JobRecovery::Action::kRequeue
              ? ReservedCheckpointBytes(r.job.parameters(),
                                        ToJobConfig(r.job.spec()))
              : DirectoryBytes(m->store_.CheckpointsDir(id));
      switch (recovery.action) {
        case JobRecovery::Action::kKeep:
          break;
        case JobRecovery::Action::kRequeue:
          // Persists daemon_stops too, before the job can run again.
          m->SetStateLocked(r, v1::Job::QUEUED, "").IgnoreError();
          m->AddMessageLocked(r, recovery.note);
          m->queue_.push_back(id);
          m->PublishQueueLocked();
          break;
        case JobRecovery::Action::kFail:
          LOG(WARNING) << r.job.name() << ": " << recovery.note;
          m->AddMessageLocked(r, recovery.note);
          m->SetStateLocked(r, v1::Job::FAILED, recovery.error).IgnoreError();
          break;
      }
    }
  }
  m->worker_ = std::thread([p = m.get()] { p->WorkerLoop(); });
  return m;
}

JobManager::JobManager(JobManagerOptions options, JobStore store,
                       std::shared_ptr<const PathConfinement> paths)
    : options_(WithBudgets(std::move(options))),
      store_(std::move(store)),
      paths_(std::move(paths)),
      runner_(RunnerOptions(options_, paths_)),
      events_(options_.events),
      watch_slots_(options_.limits.max_watch_streams,
                   options_.limits.max_watch_streams_per_principal) {}

JobManager::~JobManager() { Shutdown(); }

void JobManager::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    cv_.SignalAll();
  }
  events_.Close();
  if (worker_.joinable()) worker_.join();
}

void JobManager::WorkerLoop() {
  while (true) {
    int64_t id = 0;
    {
      absl::MutexLock lock(&mu_);
      while (!shutdown_ && queue_.empty()) cv_.Wait(&mu_);
      if (shutdown_) return;
      id = queue_.front();
      queue_.pop_front();
      running_ = id;
      PublishQueueLocked();
    }
    RunJob(id);
    absl::MutexLock lock(&mu_);
    running_ = 0;
    PublishQueueLocked();
  }
}

void JobManager::RunJob(int64_t id) {
  JobRun run{.id = id,
             .job_dir = store_.JobDir(id),
             .checkpoints_dir = store_.CheckpointsDir(id)};
  std::string automatic_choice;
  {
    absl::MutexLock lock(&mu_);
    Record& r = jobs_.at(id);
    run.spec = r.job.spec();
    run.resume_dir = ResumeDir(run.spec, store_);
    // Planned once for this run, under the budgets of this daemon (which may
    // differ from the submitting one's), and recorded with the job.
    run.plan = options_.planner(ToJobConfig(run.spec), options_.budgets);
    // The automatic options were chosen at submission, into the spec.
    automatic_choice = r.job.plan().automatic_choice();
    *r.job.mutable_plan() = ToProto(run.plan);
    r.job.mutable_plan()->set_automatic_choice(automatic_choice);
    *r.job.mutable_start_time() = TimeUtil::GetCurrentTime();
    r.persisted = std::chrono::steady_clock::now();
    // The record must say RUNNING before the job runs: that is how the
    // next start counts a crash under it (server/job_recovery.h).
    if (absl::Status s = SetStateLocked(r, v1::Job::RUNNING, ""); !s.ok()) {
      SetStateLocked(
          r, v1::Job::FAILED,
          absl::StrCat("cannot record that the job started: ", s.message()))
          .IgnoreError();
      return;
    }
  }
  if (!automatic_choice.empty()) RecordMessage(id, automatic_choice);
  const absl::Status status = runner_.Run(run, *this);
  const int64_t checkpoint_bytes = DirectoryBytes(run.checkpoints_dir);

  absl::MutexLock lock(&mu_);
  Record& r = jobs_.at(id);
  if (!r.quota_error.empty()) {
    LOG(WARNING) << JobName(id) << " failed: " << r.quota_error;
    r.checkpoint_bytes = checkpoint_bytes;
    SetStateLocked(r, v1::Job::FAILED, r.quota_error).IgnoreError();
    return;
  }
  // Another rank's daemon shut down: this rank runs the job again, to meet
  // that rank once it is back (server/distributed_job.h).
  const bool requeue =
      absl::IsAborted(status) &&
      (shutdown_ || status.GetPayload(kRequeuePayload).has_value());
  // Unless it runs again (a shutdown), the job now holds what it wrote.
  if (!requeue) r.checkpoint_bytes = checkpoint_bytes;
  if (status.ok()) {
    SetStateLocked(r, v1::Job::SUCCEEDED, "").IgnoreError();
  } else if (absl::IsCancelled(status)) {
    // Cancelled here, or on another rank of a distributed job (the status
    // names it).
    SetStateLocked(
        r, v1::Job::CANCELLED,
        !r.cancel_requested ? std::string(status.message())
        : r.cancel_checkpoint
            ? absl::StrCat("cancelled by request; ", status.message())
            : "cancelled by request")
        .IgnoreError();
  } else if (requeue) {
    AddMessageLocked(r, std::string(status.message()));
    SetStateLocked(r, v1::Job::QUEUED, "").IgnoreError();
    if (!shutdown_) {
      queue_.push_back(id);
      PublishQueueLocked();
      cv_.SignalAll();
    }
  } else {
    LOG(WARNING) << JobName(id) << " failed: " << status;
    SetStateLocked(r, v1::Job::FAILED,
                   absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                                status.message()))
        .IgnoreError();
  }
}

void JobManager::AddEventLocked(const Record& r, v1::JobEvent event) {
  *event.mutable_job() = EventJob(r.job);
  events_.Add(*ParseJobName(r.job.name()), std::move(event));
}

void JobManager::AddMessageLocked(const Record& r, const std::string& message) {
  v1::JobEvent event;
  event.set_message(message);
  AddEventLocked(r, std::move(event));
}

absl::Status JobManager::SetStateLocked(Record& r, v1::Job::State state,
                                        const std::string& error) {
  r.job.set_state(state);
  r.job.set_error(error);
  if (Ended(state)) *r.job.mutable_end_time() = TimeUtil::GetCurrentTime();
  v1::JobEvent event;
  event.set_state(state);
  AddEventLocked(r, std::move(event));
  cv_.SignalAll();  // Cancel() waits for a running job's end
  const absl::Status saved = PersistLocked(r);
  if (options_.listener != nullptr) options_.listener->OnJobState(r.job);
  return saved;
}

absl::Status JobManager::PersistLocked(const Record& r) {
  const absl::Status s = store_.Save(r.job);
  if (!s.ok()) LOG(ERROR) << "cannot persist " << r.job.name() << ": " << s;
  return s;
}

absl::StatusOr<JobManager::Record*> JobManager::FindLocked(
    const std::string& name) {
  ASSIGN_OR_RETURN(int64_t id, ParseJobName(name));
  auto it = jobs_.find(id);
  if (it == jobs_.end())
    return absl::NotFoundError(absl::StrCat("job ", JobName(id), " not found"));
  return &it->second;
}

JobLookup JobManager::Lookup() {
  return [this](int64_t id) -> std::optional<v1::Job> {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return std::nullopt;
    return it->second.job;
  };
}

absl::Status JobManager::CheckQueueLimitsLocked(const std::string& principal) {
  const int64_t mine = std::count_if(
      queue_.begin(), queue_.end(),
      [&](int64_t id) { return jobs_.at(id).principal == principal; });
  return CheckQueueLimits(options_.limits, principal,
                          static_cast<int64_t>(queue_.size()), mine);
}

absl::Status JobManager::CheckPrincipalCheckpointsLocked(
    const std::string& principal, int64_t bytes) {
  int64_t held = 0;
  for (const auto& [id, r] : jobs_) {
    if (r.principal == principal)
      held = core::SaturatingAdd(held, r.checkpoint_bytes);
  }
  return CheckPrincipalCheckpoints(options_.limits, principal, held, bytes);
}

absl::StatusOr<v1::Job> JobManager::Submit(const v1::JobSpec& submitted,
                                           const Principal& owner) {
  const std::string& principal = owner.name;  // what its limits count against
  if (!submitted.resume_from().empty()) {
    // Starting from a checkpoint reads its weights as surely as a download.
    ASSIGN_OR_RETURN(const CheckpointRef source,
                     ParseCheckpointRef(submitted.resume_from()));
    if (absl::Status s = Authorize(JobName(source.job_id), owner,
                                   JobAction::kDownloadCheckpoint);
        !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("resume_from: ", s.message()));
    }
  }
  {
    // Refused before planning: a flood past the caps costs little.
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckQueueLimitsLocked(principal));
  }
  ASSIGN_OR_RETURN(ResolvedJob resolved,
                   ResolveJob(submitted, Lookup(), options_.budgets,
                              options_.planner, *paths_, AutoConfigurator()));
  RETURN_IF_ERROR(CheckRunnable(resolved, store_, *paths_));
  ASSIGN_OR_RETURN(
      const int64_t checkpoint_bytes,
      CheckJobCheckpoints(options_.limits, resolved.plan.parameters,
                          resolved.config));

  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("the daemon is shutting down");
  RETURN_IF_ERROR(CheckQueueLimitsLocked(principal));
  RETURN_IF_ERROR(CheckPrincipalCheckpointsLocked(principal, checkpoint_bytes));
  const int64_t id = next_id_++;
  Record& r = jobs_[id];
  r.principal = principal;
  r.checkpoint_bytes = checkpoint_bytes;
  r.job.set_name(JobName(id));
  r.job.set_display_name(resolved.config.name);
  r.job.set_owner(owner.name);
  *r.job.mutable_spec() = std::move(resolved.spec);
  *r.job.mutable_create_time() = TimeUtil::GetCurrentTime();
  r.job.set_parameters(resolved.plan.parameters);
  *r.job.mutable_plan() = ToProto(resolved.plan);
  r.job.mutable_plan()->set_automatic_choice(resolved.automatic_choice);
  r.job.set_state(v1::Job::QUEUED);
  if (absl::Status s = store_.Save(r.job); !s.ok()) {
    jobs_.erase(id);
    return absl::Status(s.code(),
                        absl::StrCat("cannot record the job: ", s.message()));
  }
  v1::JobEvent event;
  event.set_state(v1::Job::QUEUED);
  AddEventLocked(r, std::move(event));
  if (options_.listener != nullptr) options_.listener->OnJobState(r.job);
  queue_.push_back(id);
  PublishQueueLocked();
  cv_.SignalAll();  // the worker may be waiting for one
  return r.job;
}

absl::StatusOr<v1::Job> JobManager::Cancel(const std::string& name,
                                           bool checkpoint) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Record * r, FindLocked(name));
  if (Ended(r->job.state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", r->job.name(), " already ended (",
                     v1::Job::State_Name(r->job.state()), ")"));
  }
  const int64_t id = *ParseJobName(r->job.name());
  if (r->job.state() == v1::Job::QUEUED) {
    queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
    PublishQueueLocked();
    r->checkpoint_bytes =
        DirectoryBytes(store_.CheckpointsDir(id));  // ended: what it holds
    SetStateLocked(*r, v1::Job::CANCELLED, "cancelled by request")
        .IgnoreError();
    return r->job;
  }
  r->cancel_requested = true;
  r->cancel_checkpoint = checkpoint;
  // Training checks for cancellation between micro-batches; wait briefly so
  // the caller usually sees the final state.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (r->job.state() == v1::Job::RUNNING && absl::Now() < deadline) {
    cv_.WaitWithDeadline(&mu_, deadline);
  }
  return r->job;
}

Configurator JobManager::AutoConfigurator() const {
  return [this](const core::JobConfig& config) {
    absl::StatusOr<core::HardwareProfile> profile = absl::UnavailableError(
        "the daemon measures none (--node_profile=false)");
    if (options_.node_profile != nullptr)
      profile = options_.node_profile->ForJob(config);
    return core::ChooseAutomaticOptions(config, options_.budgets, profile);
  };
}

absl::StatusOr<v1::MemoryPlan> JobManager::Plan(const v1::JobSpec& submitted) {
  v1::PlanJobRequest request;
  *request.mutable_spec() = submitted;
  return Plan(request);
}

absl::StatusOr<v1::MemoryPlan> JobManager::Plan(
    const v1::PlanJobRequest& request) {
  const v1::JobSpec& submitted = request.spec();
  // A plan predicted for a named or sent profile chooses the automatic
  // options for that profile's machine, as its prediction plans them; else
  // on this node's profile, as SubmitJob would.
  // A named or sent profile is read once, for both.
  std::optional<core::HardwareProfile> named;
  if (request.predict() && (!request.hardware_profile().empty() ||
                            !request.hardware_profile_json().empty())) {
    bool measured = false;
    ASSIGN_OR_RETURN(
        named, RequestedProfile(request, core::JobConfig{}, {}, &measured));
  }
  Configurator configure = AutoConfigurator();
  if (named.has_value()) {
    configure = [&named](const core::JobConfig& c) {
      return core::ChooseAutomaticOptions(c, core::ProfileNode(*named), *named);
    };
  }
  // `plan --world-size N` needs no rendezvous address, port or key.
  ASSIGN_OR_RETURN(
      const ResolvedJob job,
      ResolveJob(submitted, Lookup(), options_.budgets, options_.planner,
                 *paths_, configure, {.rendezvous = false}));
  // A plan on a tier directory or a token file the job may not use would
  // mislead: refused as SubmitJob refuses it.
  RETURN_IF_ERROR(paths_->OpenJobFiles(job.config).status());
  v1::MemoryPlan plan = ToProto(job.plan);
  plan.set_automatic_choice(job.automatic_choice);
  plan.set_max_layers(core::MaxTrainableLayers(job.config, options_.budgets));
  if (request.predict()) {
    bool measured = false;
    const absl::StatusOr<core::HardwareProfile> profile =
        named.has_value()
            ? absl::StatusOr<core::HardwareProfile>(*named)
            : RequestedProfile(request, job.config,
                               NodeProfileFor(options_.node_profile),
                               &measured);
    if (!profile.ok()) return profile.status();
    ASSIGN_OR_RETURN(
        *plan.mutable_prediction(),
        PredictionToProto(job.config, options_.budgets, *profile, measured));
  }
  return plan;
}

absl::Status JobManager::Delete(const std::string& name) {
  std::string detached;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Record * r, FindLocked(name));
    const int64_t id = *ParseJobName(r->job.name());
    if (!Ended(r->job.state())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "job ", r->job.name(), " is ", v1::Job::State_Name(r->job.state()),
          "; only ended jobs can be deleted (cancel it first)"));
    }
    for (const auto& [other_id, other] : jobs_) {
      absl::StatusOr<CheckpointRef> source =
          ParseCheckpointRef(other.job.spec().resume_from());
      if (!Ended(other.job.state()) &&
          !other.job.spec().resume_from().empty() && source.ok() &&
          source->job_id == id) {
        return absl::FailedPreconditionError(absl::StrCat(
            "job ", r->job.name(), " holds the checkpoint that ",
            other.job.name(), " (", v1::Job::State_Name(other.job.state()),
            ") resumes from"));
      }
    }
    ASSIGN_OR_RETURN(detached, store_.Detach(id));
    jobs_.erase(id);
    events_.Remove(id);
  }
  // The files go without the lock: a large checkpoint takes a while.
  JobStore::RemoveDetached(detached);
  return absl::OkStatus();
}

void JobManager::PublishQueueLocked() {
  queued_jobs_.store(static_cast<int>(queue_.size()),
                     std::memory_order_relaxed);
  running_job_.store(running_, std::memory_order_relaxed);
}

v1::Node JobManager::Node() {
  v1::Node node = NodeInfo(options_.budgets);
  node.set_queued_jobs(queued_jobs_.load(std::memory_order_relaxed));
  if (const int64_t running = running_job_.load(std::memory_order_relaxed);
      running != 0) {
    node.set_running_job(JobName(running));
  }
  if (options_.node_profile != nullptr) {
    *node.mutable_profile() = options_.node_profile->ToProto();
  } else {
    node.mutable_profile()->set_error(
        "not measured (strongholdd --node_profile=false)");
  }
  return node;
}

absl::Status JobManager::RemeasureProfile() {
  if (options_.node_profile == nullptr) {
    return absl::FailedPreconditionError(
        "this daemon measures no profile (--node_profile=false)");
  }
  if (const int64_t running = running_job_.load(std::memory_order_relaxed);
      running != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", JobName(running),
                     " is running; measuring now would disturb both"));
  }
  return options_.node_profile->Remeasure();
}

void JobManager::Ping() { absl::MutexLock lock(&mu_); }

}  // namespace stronghold::server
