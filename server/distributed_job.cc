// A distributed job's run (server/distributed_job.h): JobRunner::
// TrainDistributed, and the one place its trainer is created.
#include "server/distributed_job.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <chrono>
#include <exception>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dist/c10d_communicator.h"
#include "core/util/status_macros.h"
#include "glog/logging.h"
#include "server/job_runner.h"
#include "server/job_store.h"
#include "server/proto_convert.h"
#include "server/resume.h"

namespace stronghold::server {

namespace v1 = ::stronghold::v1;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

namespace {

std::string ValueText(const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(rep ? r->GetRepeatedInt32(m, f, index)
                              : r->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(rep ? r->GetRepeatedInt64(m, f, index)
                              : r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r->GetRepeatedUInt32(m, f, index)
                              : r->GetUInt32(m, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r->GetRepeatedUInt64(m, f, index)
                              : r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrFormat("%.17g", rep ? r->GetRepeatedDouble(m, f, index)
                                          : r->GetDouble(m, f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return absl::StrFormat(
          "%.9g", rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f))
                 ? "true"
                 : "false";
    case FieldDescriptor::CPPTYPE_ENUM:
      return absl::StrCat(rep ? r->GetRepeatedEnumValue(m, f, index)
                              : r->GetEnumValue(m, f));
    case FieldDescriptor::CPPTYPE_STRING:
      return rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;  // recursed into by the caller
  }
  return "";
}

void AddFields(const Message& m, const std::string& prefix,
               std::vector<core::dist::SpecField>* out) {
  const google::protobuf::Descriptor* d = m.GetDescriptor();
  const Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string name = prefix + f->name();
    if (name == "resume_from" || name == "distributed.rank" ||
        name == "distributed.local_rank" || name == "distributed.job_key") {
      continue;
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!f->is_repeated()) AddFields(r->GetMessage(m, f), name + ".", out);
      continue;
    }
    if (f->is_repeated()) {
      // One field: its length and every element, in order.
      std::string value = absl::StrCat(r->FieldSize(m, f));
      for (int k = 0; k < r->FieldSize(m, f); ++k)
        absl::StrAppend(&value, "\n", ValueText(m, f, k));
      out->push_back({name, value});
    } else {
      out->push_back({name, ValueText(m, f, 0)});
    }
  }
}

core::StopRequest ToStopRequest(core::dist::StopKind kind) {
  return kind == core::dist::StopKind::kShutdown
             ? core::StopRequest::kShutdown
             : core::StopRequest::kCheckpointAndCancel;
}

// Whether the ranks meet on this host's loopback ("localhost", 127.0.0.0/8,
// "::1" with or without brackets).
bool IsLoopback(const std::string& address) {
  return address == "localhost" || absl::StartsWith(address, "127.") ||
         address == "::1" || address == "[::1]";
}

}  // namespace

std::vector<core::dist::SpecField> RankInvariantFields(
    const v1::JobSpec& spec) {
  std::vector<core::dist::SpecField> out;
  AddFields(spec, "", &out);
  return out;
}

DistributedObserver::DistributedObserver(core::TrainerObserver& inner,
                                         core::dist::JobControl& control)
    : inner_(inner), control_(control) {}

void DistributedObserver::OnStep(const core::StepMetrics& metrics) {
  step_ended_ = metrics.step;
  inner_.OnStep(metrics);
}

void DistributedObserver::OnMessage(const std::string& message) {
  inner_.OnMessage(message);
}

void DistributedObserver::OnCheckpoint(const std::string& name) {
  inner_.OnCheckpoint(name);
}

void DistributedObserver::OnTrace(int64_t step, const std::string& json) {
  inner_.OnTrace(step, json);
}

core::StopRequest DistributedObserver::StopRequested() {
  switch (inner_.StopRequested()) {
    case core::StopRequest::kCancel:
      // The job manager's own reasons to stop at once (cancel, quota).
      control_.Fail(absl::CancelledError("cancelled"));
      return core::StopRequest::kCancel;
    case core::StopRequest::kShutdown:
      control_.RequestStop(core::dist::StopKind::kShutdown);
      break;
    case core::StopRequest::kCheckpointAndCancel:
      control_.RequestStop(core::dist::StopKind::kCheckpointAndCancel);
      break;
    case core::StopRequest::kNone:
      break;
  }
  if (control_.Interrupted()) return core::StopRequest::kCancel;
  if (!step_ended_.has_value()) return core::StopRequest::kNone;
  // A step's end: the ranks decide together.
  const int64_t step = *step_ended_;
  step_ended_.reset();
  const core::dist::StopDecision decision = control_.Decide(step);
  switch (decision.action) {
    case core::dist::StopDecision::kContinue:
      return core::StopRequest::kNone;
    case core::dist::StopDecision::kAbort:
      return core::StopRequest::kCancel;
    case core::dist::StopDecision::kStopWithCheckpoint:
      stop_ = decision;
      return ToStopRequest(decision.kind);
  }
  return core::StopRequest::kNone;
}

// ---------------------------------------------------------------- JobRunner

absl::StatusOr<std::unique_ptr<core::Communicator>>
JobRunner::ConnectCommunicator(const core::dist::Session& session) {
  const core::DistributedConfig& d = session.config();
  if (!options_.create_communicator) {
    return absl::FailedPreconditionError(
        "this daemon was built without data parallelism (no communicator); "
        "distributed.world_size must be 1");
  }
  ASSIGN_OR_RETURN(core::dist::StorePtr store, session.CommunicatorStore());
  core::C10dCommunicatorOptions options{
      .rank = d.rank,
      .world_size = d.world_size,
      .timeout = std::chrono::seconds(d.collective_timeout_s)};
  // Gloo announces the address it binds to through the store: ranks that
  // meet on the loopback (one node, tests) must announce the loopback;
  // otherwise Gloo's default, this host's name, is its address on the
  // ranks' network (docs/distributed.md).
  if (IsLoopback(d.master_addr)) options.gloo_hostname = "127.0.0.1";
  return options_.create_communicator(store, options);
}

absl::Status JobRunner::TrainDistributed(const JobRun& run,
                                         const core::JobConfig& config,
                                         JobRecorder& recorder,
                                         core::TrainerObserver& observer,
                                         const char** doing) {
  const core::DistributedConfig& d = config.distributed;
  *doing = "meeting the other ranks";
  observer.OnMessage(absl::StrCat("rank ", d.rank, " of ", d.world_size,
                                  ": meeting the other ranks at ",
                                  d.master_addr, ":", d.master_port,
                                  d.rank == 0 ? " (hosting the store)" : ""));
  ASSIGN_OR_RETURN(std::unique_ptr<core::dist::Session> session,
                   core::dist::Rendezvous(
                       {.config = d, .fields = RankInvariantFields(run.spec)}));
  ASSIGN_OR_RETURN(core::dist::StorePtr store, session->Connect());
  core::dist::JobControl control(
      store, {.rank = d.rank,
              .world_size = d.world_size,
              .timeout = std::chrono::seconds(d.collective_timeout_s)});
  control.Start();
  observer.OnMessage(
      absl::StrCat("all ", d.world_size, " ranks joined with the same spec"));
  DistributedObserver ranks(observer, control);

  absl::Status status;
  // Outlives the trainer (declared before the lambda that creates it).
  std::unique_ptr<core::Communicator> comm;
  try {
    status = [&]() -> absl::Status {
      *doing = "connecting the ranks' communicator";
      ASSIGN_OR_RETURN(comm, ConnectCommunicator(*session));
      *doing = "creating the trainer";
      ASSIGN_OR_RETURN(std::unique_ptr<core::Trainer> trainer,
                       CreateTrainer(run, ranks, comm.get()));
      *doing = "restoring the trainer";
      ASSIGN_OR_RETURN(
          const Restored restored,
          RestoreTrainer(*trainer, run.checkpoints_dir, run.resume_dir));
      if (!restored.note.empty()) ranks.OnMessage(restored.note);
      recorder.RecordRestored(run.id, restored.step);
      *doing = "training";
      return trainer->Run(&ranks);
    }();
  } catch (...) {
    // JobRunner::Run turns it into the job's error; the others stop now
    // rather than after the timeout.
    control.Fail(absl::InternalError(absl::StrCat("exception while ", *doing)));
    control.Finish();
    throw;
  }
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
    // A collective broke (a dead peer breaks it at once) or timed out: the
    // watchdog's heartbeats say which rank, within the timeout.
    const absl::Status others = control.AwaitStatus(
        std::chrono::seconds(d.collective_timeout_s) + std::chrono::seconds(2));
    if (!others.ok()) {
      status = absl::Status(
          others.code(), absl::StrCat(others.message(),
                                      " (this rank: ", status.message(), ")"));
    }
  }
  if (const absl::Status others = control.status();
      !others.ok() && !absl::StrContains(status.message(), others.message())) {
    // Another rank (or the store) stopped this one: that is the reason.
    status = others;
  } else if (ranks.stop().has_value() && ranks.stop()->requested_by != d.rank &&
             ranks.stop()->kind == core::dist::StopKind::kShutdown &&
             absl::IsAborted(status)) {
    // Another rank's daemon is shutting down: every rank checkpointed the
    // same step; this one waits in the queue to meet it again.
    status = absl::AbortedError(absl::StrCat(
        "rank ", ranks.stop()->requested_by, "'s daemon is shutting down; ",
        status.message(), "; the job runs again when every rank is back"));
    status.SetPayload(kRequeuePayload, absl::Cord("peer shutdown"));
  } else if (!status.ok() && !absl::IsAborted(status)) {
    control.Fail(status);
  }
  control.Finish();
  return status;
}

}  // namespace stronghold::server
