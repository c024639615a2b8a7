#include "server/job_manager.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/checkpoint/checkpoint.h"
#include "core/util/status_macros.h"
#include "glog/logging.h"
#include "server/job_admission.h"
#include "server/job_recovery.h"
#include "server/node_info.h"
#include "server/proto_convert.h"
#include "server/resume.h"

namespace stronghold::server {

namespace fs = std::filesystem;
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

JobRunnerOptions RunnerOptions(const JobManagerOptions& options) {
  return {.budgets = options.budgets,
          .device = options.device,
          .device_peak_flops = options.device_peak_flops,
          .optimizer_threads = options.optimizer_threads,
          .ssd_fault_injection = options.ssd_fault_injection};
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Create(
    JobManagerOptions options) {
  if (options.max_job_restarts < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_job_restarts: must be >= 0, got ", options.max_job_restarts));
  }
  ASSIGN_OR_RETURN(JobStore store, JobStore::Open(options.state_dir));
  std::unique_ptr<JobManager> m(
      new JobManager(std::move(options), std::move(store)));
  {
    absl::MutexLock lock(&m->mu_);
    for (v1::Job& job : m->store_.LoadAll()) {
      const int64_t id = *ParseJobName(job.name());
      m->next_id_ = std::max(m->next_id_, id + 1);
      const JobRecovery recovery = RecoverJob(job, m->store_.CheckpointsDir(id),
                                              m->options_.max_job_restarts);
      Record& r = m->jobs_[id];
      r.job = std::move(job);
      switch (recovery.action) {
        case JobRecovery::Action::kKeep:
          break;
        case JobRecovery::Action::kRequeue:
          // Persists daemon_stops too, before the job can run again.
          m->SetStateLocked(r, v1::Job::QUEUED, "").IgnoreError();
          m->AddMessageLocked(r, recovery.note);
          m->queue_.push_back(id);
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

JobManager::JobManager(JobManagerOptions options, JobStore store)
    : options_(WithBudgets(std::move(options))),
      store_(std::move(store)),
      runner_(RunnerOptions(options_)),
      events_(options_.max_events_per_job) {}

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
    }
    RunJob(id);
    absl::MutexLock lock(&mu_);
    running_ = 0;
  }
}

void JobManager::RunJob(int64_t id) {
  JobRun run{.id = id,
             .job_dir = store_.JobDir(id),
             .checkpoints_dir = store_.CheckpointsDir(id)};
  {
    absl::MutexLock lock(&mu_);
    Record& r = jobs_.at(id);
    run.spec = r.job.spec();
    run.resume_dir = ResumeDir(run.spec, store_);
    // Planned once for this run, under the budgets of this daemon (which may
    // differ from the submitting one's), and recorded with the job.
    run.plan = options_.planner(ToJobConfig(run.spec), options_.budgets);
    *r.job.mutable_plan() = ToProto(run.plan);
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
  const absl::Status status = runner_.Run(run, *this);

  absl::MutexLock lock(&mu_);
  Record& r = jobs_.at(id);
  if (status.ok()) {
    SetStateLocked(r, v1::Job::SUCCEEDED, "").IgnoreError();
  } else if (absl::IsCancelled(status)) {
    SetStateLocked(r, v1::Job::CANCELLED,
                   r.cancel_checkpoint ? absl::StrCat("cancelled by request; ",
                                                      status.message())
                                       : "cancelled by request")
        .IgnoreError();
  } else if (absl::IsAborted(status) && shutdown_) {
    AddMessageLocked(r, std::string(status.message()));
    SetStateLocked(r, v1::Job::QUEUED, "").IgnoreError();
  } else {
    LOG(WARNING) << JobName(id) << " failed: " << status;
    SetStateLocked(r, v1::Job::FAILED,
                   absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                                status.message()))
        .IgnoreError();
  }
}

void JobManager::RecordStep(int64_t id, const v1::StepMetrics& metrics) {
  absl::MutexLock lock(&mu_);
  Record& r = jobs_.at(id);
  r.job.set_step(metrics.step());
  r.job.set_last_loss(metrics.loss());
  *r.job.mutable_last_metrics() = metrics;
  if (options_.listener != nullptr)
    options_.listener->OnJobStep(r.job, metrics);
  const int log_every = std::max(1, r.job.spec().training().log_every());
  if (metrics.step() % log_every == 0 ||
      metrics.step() == metrics.total_steps()) {
    v1::JobEvent event;
    *event.mutable_metrics() = metrics;
    AddEventLocked(r, std::move(event));
  }
  // Progress is persisted at most every few seconds; state changes and
  // checkpoints always are.
  const auto now = std::chrono::steady_clock::now();
  if (now - r.persisted > std::chrono::seconds(5)) {
    PersistLocked(r).IgnoreError();
    r.persisted = now;
  }
}

void JobManager::RecordMessage(int64_t id, const std::string& message) {
  absl::MutexLock lock(&mu_);
  AddMessageLocked(jobs_.at(id), message);
}

void JobManager::RecordCheckpoints(int64_t id,
                                   const std::vector<std::string>& present,
                                   const std::string& written) {
  absl::MutexLock lock(&mu_);
  Record& r = jobs_.at(id);
  r.job.clear_checkpoints();
  for (const std::string& c : present) r.job.add_checkpoints(c);
  AddMessageLocked(r, absl::StrCat("checkpoint ", written, " written"));
  PersistLocked(r).IgnoreError();
}

void JobManager::RecordTrace(int64_t id, int64_t step,
                             const std::string& json) {
  absl::MutexLock lock(&mu_);
  Record& r = jobs_.at(id);
  r.trace.set_name(r.job.name());
  r.trace.set_step(step);
  r.trace.set_chrome_trace_json(json);
}

void JobManager::RecordRestored(int64_t id, int64_t step) {
  absl::MutexLock lock(&mu_);
  jobs_.at(id).job.set_step(step);
}

core::StopRequest JobManager::StopRequested(int64_t id) {
  absl::MutexLock lock(&mu_);
  const Record& r = jobs_.at(id);
  if (r.cancel_requested) {
    return r.cancel_checkpoint ? core::StopRequest::kCheckpointAndCancel
                               : core::StopRequest::kCancel;
  }
  if (shutdown_) return core::StopRequest::kShutdown;
  return core::StopRequest::kNone;
}

void JobManager::AddEventLocked(const Record& r, v1::JobEvent event) {
  *event.mutable_job() = r.job;
  event.mutable_job()->clear_spec();
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

absl::StatusOr<v1::Job> JobManager::Submit(const v1::JobSpec& submitted,
                                           const Principal& owner) {
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
  ASSIGN_OR_RETURN(ResolvedJob resolved,
                   ResolveJob(submitted, Lookup(), options_.budgets, options_.planner));
  RETURN_IF_ERROR(CheckRunnable(resolved, store_));

  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("the daemon is shutting down");
  const int64_t id = next_id_++;
  Record& r = jobs_[id];
  r.job.set_name(JobName(id));
  r.job.set_display_name(resolved.config.name);
  r.job.set_owner(owner.name);
  *r.job.mutable_spec() = std::move(resolved.spec);
  *r.job.mutable_create_time() = TimeUtil::GetCurrentTime();
  r.job.set_parameters(resolved.plan.parameters);
  *r.job.mutable_plan() = ToProto(resolved.plan);
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
  cv_.SignalAll();  // the worker may be waiting for one
  return r.job;
}

absl::StatusOr<v1::Job> JobManager::Get(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Record * r, FindLocked(name));
  return r->job;
}

absl::Status JobManager::Authorize(const std::string& name,
                                   const Principal& principal,
                                   JobAction action) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Record * r, FindLocked(name));
  return CheckJobAccess(principal, r->job, action);
}

absl::StatusOr<v1::ListJobsResponse> JobManager::List(
    int page_size, const std::string& token) {
  if (page_size < 0 || page_size > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be in [0, 1000], got ", page_size));
  }
  if (page_size == 0) page_size = 50;
  int64_t below = INT64_MAX;
  if (!token.empty() && (!absl::SimpleAtoi(token, &below) || below <= 0)) {
    return absl::InvalidArgumentError(
        "page_token: not a token returned by ListJobs");
  }
  absl::MutexLock lock(&mu_);
  v1::ListJobsResponse out;
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {
    if (it->first >= below) continue;
    if (out.jobs_size() == page_size) {
      out.set_next_page_token(
          absl::StrCat(out.jobs(out.jobs_size() - 1).name().substr(5)));
      break;
    }
    *out.add_jobs() = it->second.job;
  }
  return out;
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

absl::StatusOr<v1::MemoryPlan> JobManager::Plan(const v1::JobSpec& submitted) {
  ASSIGN_OR_RETURN(const ResolvedJob job,
                   ResolveJob(submitted, Lookup(), options_.budgets, options_.planner));
  v1::MemoryPlan plan = ToProto(job.plan);
  plan.set_max_layers(core::MaxTrainableLayers(job.config, options_.budgets));
  return plan;
}

absl::Status JobManager::Watch(
    const std::string& name, int64_t since_step,
    const std::function<bool(const v1::JobEvent&)>& emit,
    const std::function<bool()>& cancelled) {
  int64_t id = 0;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Record * r, FindLocked(name));
    id = *ParseJobName(r->job.name());
  }
  return events_.Watch(id, since_step, emit, cancelled);
}

absl::StatusOr<std::string> JobManager::CheckpointPath(
    const std::string& name, const std::string& checkpoint,
    const std::string& file) {
  const std::string f = file.empty() ? core::kModelFile : file;
  for (const std::string* part : {&checkpoint, &f}) {
    if (part->find('/') != std::string::npos || *part == ".." || *part == ".") {
      return absl::InvalidArgumentError(
          absl::StrCat(part == &f ? "file" : "checkpoint",
                       ": must be a plain name, got \"", *part, "\""));
    }
  }
  std::string chosen = checkpoint;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Record * r, FindLocked(name));
    if (chosen.empty()) {
      if (r->job.checkpoints_size() == 0) {
        return absl::NotFoundError(
            absl::StrCat("job ", r->job.name(), " has no checkpoint yet"));
      }
      chosen = r->job.checkpoints(r->job.checkpoints_size() - 1);
    }
  }
  ASSIGN_OR_RETURN(int64_t id, ParseJobName(name));
  const fs::path path = fs::path(store_.CheckpointsDir(id)) / chosen / f;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("no file ", f, " in checkpoint ",
                                            chosen, " of ", JobName(id)));
  }
  return path.string();
}

absl::StatusOr<v1::JobTrace> JobManager::Trace(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Record * r, FindLocked(name));
  if (r->trace.chrome_trace_json().empty()) {
    return absl::NotFoundError(absl::StrCat(
        "job ", r->job.name(),
        " has no trace yet (traces are recorded by the L2L and STRONGHOLD "
        "methods once a step has run)"));
  }
  return r->trace;
}

v1::Node JobManager::Node() {
  v1::Node node = NodeInfo(options_.budgets);
  absl::MutexLock lock(&mu_);
  node.set_queued_jobs(static_cast<int>(queue_.size()));
  if (running_ != 0) node.set_running_job(JobName(running_));
  return node;
}

}  // namespace stronghold::server
