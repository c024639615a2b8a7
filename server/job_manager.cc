#include "server/job_manager.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/checkpoint/checkpoint.h"
#include "core/data/dataset.h"
#include "core/util/status_macros.h"
#include "core/train/trainer.h"
#include "glog/logging.h"
#include "server/resume.h"
#include "server/proto_convert.h"
#include "server/version.h"

namespace stronghold::server {

namespace fs = std::filesystem;
namespace v1 = ::stronghold::v1;
using google::protobuf::util::TimeUtil;

namespace {

bool Ended(v1::Job::State s) {
  return s == v1::Job::SUCCEEDED || s == v1::Job::FAILED || s == v1::Job::CANCELLED;
}

// Validates a spec the way SubmitJob and PlanJob both need.
absl::StatusOr<core::JobConfig> ValidatedConfig(const v1::JobSpec& spec) {
  core::JobConfig config = ToJobConfig(spec);
  RETURN_IF_ERROR(core::ValidateJobConfig(config));
  return config;
}

}  // namespace

// Reports one running job's progress into its record.
class JobManager::Run final : public core::TrainerObserver {
 public:
  Run(JobManager* manager, int64_t id) : m_(manager), id_(id) {}

  void OnStep(const core::StepReport& s) override {
    absl::MutexLock lock(&m_->mu_);
    Record& r = m_->jobs_.at(id_);
    const v1::StepMetrics metrics =
        ToStepMetrics(s, m_->options_.device_peak_flops);
    r.job.set_step(s.step);
    r.job.set_last_loss(s.loss);
    *r.job.mutable_last_metrics() = metrics;
    if (m_->options_.listener != nullptr) m_->options_.listener->OnJobStep(r.job, metrics);
    const int log_every = std::max(1, r.job.spec().training().log_every());
    if (s.step % log_every == 0 || s.step == s.steps) {
      v1::JobEvent event;
      *event.mutable_metrics() = metrics;
      m_->AddEventLocked(r, std::move(event));
    }
    // Progress is persisted at most every few seconds; state changes and
    // checkpoints always are.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_persist_ > std::chrono::seconds(5)) {
      m_->PersistLocked(r);
      last_persist_ = now;
    }
  }

  void OnMessage(const std::string& message) override {
    absl::MutexLock lock(&m_->mu_);
    v1::JobEvent event;
    event.set_message(message);
    m_->AddEventLocked(m_->jobs_.at(id_), std::move(event));
  }

  void OnCheckpoint(const std::string& name) override {
    const std::vector<std::string> present = core::ListCheckpoints(m_->CheckpointsDir(id_));
    absl::MutexLock lock(&m_->mu_);
    Record& r = m_->jobs_.at(id_);
    r.job.clear_checkpoints();
    for (const std::string& c : present) r.job.add_checkpoints(c);
    v1::JobEvent event;
    event.set_message(absl::StrCat("checkpoint ", name, " written"));
    m_->AddEventLocked(r, std::move(event));
    m_->PersistLocked(r);
  }

  void OnTrace(int64_t step, const std::string& json) override {
    absl::MutexLock lock(&m_->mu_);
    Record& r = m_->jobs_.at(id_);
    r.trace.set_name(r.job.name());
    r.trace.set_step(step);
    r.trace.set_chrome_trace_json(json);
  }

  core::StopRequest StopRequested() override {
    absl::MutexLock lock(&m_->mu_);
    const Record& r = m_->jobs_.at(id_);
    if (r.cancel_requested) {
      return r.cancel_checkpoint ? core::StopRequest::kCheckpointAndCancel
                                 : core::StopRequest::kCancel;
    }
    if (m_->shutdown_) return core::StopRequest::kShutdown;
    return core::StopRequest::kNone;
  }

 private:
  JobManager* const m_;
  const int64_t id_;
  std::chrono::steady_clock::time_point last_persist_ = std::chrono::steady_clock::now();
};

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Create(JobManagerOptions options) {
  ASSIGN_OR_RETURN(JobStore store, JobStore::Open(options.state_dir));
  std::unique_ptr<JobManager> m(new JobManager(std::move(options), std::move(store)));
  {
    absl::MutexLock lock(&m->mu_);
    for (v1::Job& job : m->store_.LoadAll()) {
      const int64_t id = *ParseJobName(job.name());
      m->next_id_ = std::max(m->next_id_, id + 1);
      Record& r = m->jobs_[id];
      r.job = std::move(job);
      // A crash may have interrupted a checkpoint write (a hidden directory
      // to remove) or come between a checkpoint and the record's update
      // (the directory is the truth).
      const std::string dir = m->CheckpointsDir(id);
      if (absl::StatusOr<int> removed = core::RemoveIncompleteCheckpoints(dir); !removed.ok()) {
        LOG(WARNING) << r.job.name() << ": " << removed.status();
      } else if (*removed > 0) {
        LOG(INFO) << r.job.name() << ": removed " << *removed << " incomplete checkpoint(s)";
      }
      const std::vector<std::string> present = core::ListCheckpoints(dir);
      r.job.clear_checkpoints();
      for (const std::string& c : present) r.job.add_checkpoints(c);
      if (r.job.state() == v1::Job::QUEUED || r.job.state() == v1::Job::RUNNING) {
        const bool was_running = r.job.state() == v1::Job::RUNNING;
        std::string from = "step 0";
        r.job.set_step(0);
        if (!present.empty()) {
          from = absl::StrCat("checkpoint ", present.back());
          r.job.set_step(core::CheckpointStep(present.back()).value_or(0));
        } else if (!r.job.spec().resume_from().empty()) {
          from = r.job.spec().resume_from();
        }
        m->SetStateLocked(r, v1::Job::QUEUED, "");
        v1::JobEvent note;
        note.set_message(absl::StrCat(was_running ? "daemon restarted while this job ran"
                                                  : "daemon restarted; job queued again",
                                      "; it will resume from ", from));
        m->AddEventLocked(r, std::move(note));
        m->queue_.push_back(id);
      }
    }
  }
  m->worker_ = std::thread([p = m.get()] { p->WorkerLoop(); });
  return m;
}

namespace {

int64_t PhysicalMemoryBytes() {
  return static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
}

// Budgets left at 0 mean the whole tier: on the CPU device, device memory
// and host memory are both the machine's RAM.
JobManagerOptions WithDefaultBudgets(JobManagerOptions options) {
  const int64_t ram = PhysicalMemoryBytes();
  if (options.budgets.host_bytes == 0) options.budgets.host_bytes = ram;
  if (options.budgets.device_bytes == 0 && options.budgets.device == "cpu") {
    options.budgets.device_bytes = ram;
  }
  return options;
}

}  // namespace

JobManager::JobManager(JobManagerOptions options, JobStore store)
    : options_(WithDefaultBudgets(std::move(options))), store_(std::move(store)) {}

JobManager::~JobManager() { Shutdown(); }

void JobManager::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    cv_.SignalAll();
  }
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

namespace {

// The effective spec as stored in every checkpoint (job.json).
std::string SpecJson(const v1::JobSpec& spec) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(spec, &json, options).ok()) return "";
  return json;
}

}  // namespace

std::string JobManager::CheckpointsDir(int64_t id) const {
  return (fs::path(store_.JobDir(id)) / "checkpoints").string();
}

void JobManager::RunJob(int64_t id) {
  core::JobConfig config;
  std::string spec_json;
  std::string resume_dir;  // the pinned checkpoint of spec.resume_from
  {
    absl::MutexLock lock(&mu_);
    Record& r = jobs_.at(id);
    config = ToJobConfig(r.job.spec());
    spec_json = SpecJson(r.job.spec());
    if (!r.job.spec().resume_from().empty()) {
      absl::StatusOr<CheckpointRef> ref = ParseCheckpointRef(r.job.spec().resume_from());
      if (ref.ok()) {
        resume_dir = (fs::path(CheckpointsDir(ref->job_id)) / ref->checkpoint).string();
      }
    }
    *r.job.mutable_start_time() = TimeUtil::GetCurrentTime();
    SetStateLocked(r, v1::Job::RUNNING, "");
  }
  Run run(this, id);
  absl::Status status;
  const core::MemoryPlan plan = core::PlanMemory(config, options_.budgets);
  core::TrainerOptions trainer_options{.job_dir = store_.JobDir(id),
                                       .device = options_.device.get(),
                                       .device_budget_bytes = plan.budget_device_bytes,
                                       .optimizer_threads = options_.optimizer_threads,
                                       .job_spec_json = spec_json,
                                       // The Adam moments the plan put on the NVMe tier.
                                       .ssd_layers = plan.ssd_layers,
                                       // And the working copies, when even that was short.
                                       .ssd_weight_layers = plan.ssd_weight_layers};
  // The layers whose activations fit beside the window: the plan's count
  // where host memory bounds them too (the CPU device) or the spec names a
  // count; on a GPU with the automatic count the trainer resolves it again
  // for the window it settles on (a smaller window leaves room for more).
  if (config.offload.kept_activation_layers != 0 || options_.budgets.device == "cpu") {
    trainer_options.kept_activation_layers = plan.kept_activation_layers;
  }
  if (!options_.ssd_fault_injection.faults.empty()) {
    trainer_options.wrap_ssd_device = [this, id, &run](std::unique_ptr<storage::BlockDevice> device)
        -> std::unique_ptr<storage::BlockDevice> {
      {
        absl::MutexLock lock(&mu_);
        if (ssd_faults_spent_) return device;
        ssd_faults_spent_ = true;
      }
      auto faulty = std::make_unique<storage::FaultInjectingBlockDevice>(std::move(device));
      storage::ArmFaults(options_.ssd_fault_injection, faulty.get());
      const std::string note =
          absl::StrCat("TESTING: faults injected into this job's NVMe tier (--ssd_fault_injection=",
                       options_.ssd_fault_injection.text, ")");
      LOG(WARNING) << JobName(id) << ": " << note;
      run.OnMessage(note);
      return faulty;
    };
  }
  absl::StatusOr<std::unique_ptr<core::Trainer>> trainer =
      core::Trainer::Create(config, trainer_options);
  if (trainer.ok()) {
    absl::StatusOr<Restored> restored = RestoreTrainer(**trainer, CheckpointsDir(id), resume_dir);
    if (restored.ok()) {
      if (!restored->note.empty()) run.OnMessage(restored->note);
      {
        absl::MutexLock lock(&mu_);
        jobs_.at(id).job.set_step(restored->step);
      }
      status = (*trainer)->Run(&run);
    } else {
      status = restored.status();
    }
  } else {
    status = trainer.status();
  }
  trainer = absl::CancelledError("released");  // free the model before recording the end

  absl::MutexLock lock(&mu_);
  Record& r = jobs_.at(id);
  if (status.ok()) {
    SetStateLocked(r, v1::Job::SUCCEEDED, "");
  } else if (absl::IsCancelled(status)) {
    SetStateLocked(r, v1::Job::CANCELLED,
                   r.cancel_checkpoint
                       ? absl::StrCat("cancelled by request; ", status.message())
                       : "cancelled by request");
  } else if (absl::IsAborted(status) && shutdown_) {
    v1::JobEvent note;
    note.set_message(std::string(status.message()));
    AddEventLocked(r, std::move(note));
    SetStateLocked(r, v1::Job::QUEUED, "");
  } else {
    LOG(WARNING) << JobName(id) << " failed: " << status;
    SetStateLocked(r, v1::Job::FAILED,
                   absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message()));
  }
}

void JobManager::AddEventLocked(Record& r, v1::JobEvent event) {
  *event.mutable_time() = TimeUtil::GetCurrentTime();
  *event.mutable_job() = r.job;
  event.mutable_job()->clear_spec();
  r.events.push_back(std::move(event));
  while (static_cast<int>(r.events.size()) > options_.max_events_per_job) {
    r.events.pop_front();
    ++r.events_dropped;
  }
  cv_.SignalAll();
}

void JobManager::SetStateLocked(Record& r, v1::Job::State state, const std::string& error) {
  r.job.set_state(state);
  r.job.set_error(error);
  if (Ended(state)) *r.job.mutable_end_time() = TimeUtil::GetCurrentTime();
  v1::JobEvent event;
  event.set_state(state);
  AddEventLocked(r, std::move(event));
  PersistLocked(r);
  if (options_.listener != nullptr) options_.listener->OnJobState(r.job);
}

void JobManager::PersistLocked(const Record& r) {
  const absl::Status s = store_.Save(r.job);
  if (!s.ok()) LOG(ERROR) << "cannot persist " << r.job.name() << ": " << s;
}

absl::StatusOr<JobManager::Record*> JobManager::FindLocked(const std::string& name) {
  ASSIGN_OR_RETURN(int64_t id, ParseJobName(name));
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job ", JobName(id), " not found"));
  return &it->second;
}

absl::StatusOr<v1::JobSpec> JobManager::ResolveResume(const v1::JobSpec& spec,
                                                       std::string* checkpoint_dir) {
  if (spec.resume_from().empty()) return spec;
  ASSIGN_OR_RETURN(CheckpointRef ref, ParseCheckpointRef(spec.resume_from()));
  v1::JobSpec base;
  {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(ref.job_id);
    if (it == jobs_.end()) {
      return absl::NotFoundError(
          absl::StrCat("resume_from: job ", JobName(ref.job_id), " not found"));
    }
    const v1::Job& source = it->second.job;
    const auto& names = source.checkpoints();
    if (names.empty()) {
      return absl::NotFoundError(
          absl::StrCat("resume_from: job ", source.name(), " has no checkpoint yet"));
    }
    // Pin "the newest" now: the job keeps the same starting point however
    // often it is restarted.
    if (ref.checkpoint.empty()) ref.checkpoint = names[names.size() - 1];
    if (std::find(names.begin(), names.end(), ref.checkpoint) == names.end()) {
      return absl::NotFoundError(absl::StrCat("resume_from: job ", source.name(),
                                              " has no checkpoint ", ref.checkpoint, " (it has ",
                                              absl::StrJoin(names, ", "), ")"));
    }
    base = source.spec();
  }
  v1::JobSpec overrides = spec;
  overrides.clear_resume_from();
  base.clear_resume_from();
  v1::JobSpec merged = MergeSpecs(base, overrides);
  merged.set_resume_from(FormatCheckpointRef(ref));
  *checkpoint_dir = (fs::path(CheckpointsDir(ref.job_id)) / ref.checkpoint).string();
  return merged;
}

absl::StatusOr<v1::Job> JobManager::Submit(const v1::JobSpec& submitted) {
  std::string resume_dir;
  ASSIGN_OR_RETURN(const v1::JobSpec spec, ResolveResume(submitted, &resume_dir));
  ASSIGN_OR_RETURN(core::JobConfig config, ValidatedConfig(spec));
  {
    // Opening checks the token file (size, ids below model.vocab).
    ASSIGN_OR_RETURN(std::unique_ptr<core::Dataset> data,
                     core::Dataset::Open(config.data, config.model.padded_vocab(),
                                         config.model.seq_len));
  }
  const core::MemoryPlan plan = core::PlanMemory(config, options_.budgets);
  if (!plan.fits) return absl::ResourceExhaustedError(plan.reason);
  // The manifest, the files' sizes and the model's shape now; every byte
  // when the job starts (reading a large checkpoint twice is not cheap).
  if (!resume_dir.empty()) RETURN_IF_ERROR(CheckResumeSource(resume_dir, config).status());

  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("the daemon is shutting down");
  const int64_t id = next_id_++;
  Record& r = jobs_[id];
  r.job.set_name(JobName(id));
  r.job.set_display_name(config.name);
  *r.job.mutable_spec() = ToJobSpec(config);
  r.job.mutable_spec()->set_resume_from(spec.resume_from());
  *r.job.mutable_create_time() = TimeUtil::GetCurrentTime();
  r.job.set_parameters(plan.parameters);
  r.job.set_state(v1::Job::QUEUED);
  if (absl::Status s = store_.Save(r.job); !s.ok()) {
    jobs_.erase(id);
    return absl::Status(s.code(), absl::StrCat("cannot record the job: ", s.message()));
  }
  v1::JobEvent event;
  event.set_state(v1::Job::QUEUED);
  AddEventLocked(r, std::move(event));
  if (options_.listener != nullptr) options_.listener->OnJobState(r.job);
  queue_.push_back(id);
  return r.job;
}

absl::StatusOr<v1::Job> JobManager::Get(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Record * r, FindLocked(name));
  return r->job;
}

absl::StatusOr<v1::ListJobsResponse> JobManager::List(int page_size, const std::string& token) {
  if (page_size < 0 || page_size > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be in [0, 1000], got ", page_size));
  }
  if (page_size == 0) page_size = 50;
  int64_t below = INT64_MAX;
  if (!token.empty() && (!absl::SimpleAtoi(token, &below) || below <= 0)) {
    return absl::InvalidArgumentError("page_token: not a token returned by ListJobs");
  }
  absl::MutexLock lock(&mu_);
  v1::ListJobsResponse out;
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {
    if (it->first >= below) continue;
    if (out.jobs_size() == page_size) {
      out.set_next_page_token(absl::StrCat(out.jobs(out.jobs_size() - 1).name().substr(5)));
      break;
    }
    *out.add_jobs() = it->second.job;
  }
  return out;
}

absl::StatusOr<v1::Job> JobManager::Cancel(const std::string& name, bool checkpoint) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Record * r, FindLocked(name));
  if (Ended(r->job.state())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", r->job.name(), " already ended (", v1::Job::State_Name(r->job.state()), ")"));
  }
  const int64_t id = *ParseJobName(r->job.name());
  if (r->job.state() == v1::Job::QUEUED) {
    queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
    SetStateLocked(*r, v1::Job::CANCELLED, "cancelled by request");
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
  std::string resume_dir;
  ASSIGN_OR_RETURN(const v1::JobSpec spec, ResolveResume(submitted, &resume_dir));
  ASSIGN_OR_RETURN(core::JobConfig config, ValidatedConfig(spec));
  v1::MemoryPlan plan = ToProto(core::PlanMemory(config, options_.budgets));
  plan.set_max_layers(core::MaxTrainableLayers(config, options_.budgets));
  return plan;
}

absl::Status JobManager::Watch(const std::string& name, int64_t since_step,
                               const std::function<bool(const v1::JobEvent&)>& emit,
                               const std::function<bool()>& cancelled) {
  int64_t cursor = 0;  // absolute index of the next event to send
  while (true) {
    std::vector<v1::JobEvent> batch;
    bool ended = false;
    {
      absl::MutexLock lock(&mu_);
      ASSIGN_OR_RETURN(Record * r, FindLocked(name));
      cursor = std::max(cursor, r->events_dropped);
      const int64_t end = r->events_dropped + static_cast<int64_t>(r->events.size());
      if (cursor == end && !Ended(r->job.state()) && !shutdown_) {
        cv_.WaitWithTimeout(&mu_, absl::Milliseconds(500));
        continue;
      }
      for (; cursor < end; ++cursor) batch.push_back(r->events[cursor - r->events_dropped]);
      ended = Ended(r->job.state()) || shutdown_;
    }
    for (const v1::JobEvent& e : batch) {
      if (e.has_metrics() && e.metrics().step() <= since_step) continue;
      if (!emit(e)) return absl::OkStatus();
    }
    if (ended && batch.empty()) return absl::OkStatus();
    if (cancelled()) return absl::CancelledError("watch cancelled by the client");
  }
}

absl::StatusOr<std::string> JobManager::CheckpointPath(const std::string& name,
                                                       const std::string& checkpoint,
                                                       const std::string& file) {
  const std::string f = file.empty() ? core::kModelFile : file;
  for (const std::string* part : {&checkpoint, &f}) {
    if (part->find('/') != std::string::npos || *part == ".." || *part == ".") {
      return absl::InvalidArgumentError(absl::StrCat(
          part == &f ? "file" : "checkpoint", ": must be a plain name, got \"", *part, "\""));
    }
  }
  std::string chosen = checkpoint;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Record * r, FindLocked(name));
    if (chosen.empty()) {
      if (r->job.checkpoints_size() == 0) {
        return absl::NotFoundError(absl::StrCat("job ", r->job.name(), " has no checkpoint yet"));
      }
      chosen = r->job.checkpoints(r->job.checkpoints_size() - 1);
    }
  }
  ASSIGN_OR_RETURN(int64_t id, ParseJobName(name));
  const fs::path path = fs::path(store_.JobDir(id)) / "checkpoints" / chosen / f;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("no file ", f, " in checkpoint ", chosen, " of ",
                                            JobName(id)));
  }
  return path.string();
}

absl::StatusOr<v1::JobTrace> JobManager::Trace(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Record * r, FindLocked(name));
  if (r->trace.chrome_trace_json().empty()) {
    return absl::NotFoundError(absl::StrCat(
        "job ", r->job.name(), " has no trace yet (traces are recorded by the L2L and STRONGHOLD "
        "methods once a step has run)"));
  }
  return r->trace;
}

v1::Node JobManager::Node() {
  v1::Node node;
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  node.set_hostname(host);
  node.set_device(options_.budgets.device);
  node.set_version(kVersion);
  node.set_torch_version(core::TorchVersion());
  node.set_cpu_threads(static_cast<int>(std::thread::hardware_concurrency()));
  const int64_t ram = PhysicalMemoryBytes();
  v1::Tier* device = node.add_tiers();
  device->set_name(core::kTierDevice);
  device->set_capacity_bytes(options_.budgets.device == "cpu" ? ram : 0);
  device->set_budget_bytes(options_.budgets.device_bytes);
  v1::Tier* host_tier = node.add_tiers();
  host_tier->set_name(core::kTierHost);
  host_tier->set_capacity_bytes(ram);
  host_tier->set_budget_bytes(options_.budgets.host_bytes);
  absl::MutexLock lock(&mu_);
  node.set_queued_jobs(static_cast<int>(queue_.size()));
  if (running_ != 0) node.set_running_job(JobName(running_));
  return node;
}

}  // namespace stronghold::server
