#include "server/job_runner.h"

#include <cxxabi.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <exception>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "core/checkpoint/checkpoint.h"
#include "core/plan/prediction.h"
#include "core/util/status_macros.h"
#include "glog/logging.h"
#include "server/init_from.h"
#include "server/job_store.h"
#include "server/proto_convert.h"
#include "server/resume.h"

namespace stronghold::server {

namespace v1 = ::stronghold::v1;

namespace {

// Reports one running job's progress to its recorder, and each step's time
// against the run's prediction when there is one.
class RecordingObserver final : public core::TrainerObserver {
 public:
  RecordingObserver(const JobRun& run, JobRecorder& recorder,
                    double device_peak_flops)
      : run_(run), recorder_(recorder), peak_flops_(device_peak_flops) {}

  void SetStepTimeCheck(std::optional<core::StepTimeCheck> check) {
    check_ = std::move(check);
  }

  void OnStep(const core::StepMetrics& report) override {
    v1::StepMetrics metrics = ToStepMetrics(report, peak_flops_);
    if (check_.has_value()) {
      metrics.set_predicted_step_s(check_->predicted_step_s());
    }
    recorder_.RecordStep(run_.id, metrics);
    if (check_.has_value()) {
      if (std::optional<std::string> line =
              check_->Observe(report.step, report.step_s)) {
        LOG(INFO) << JobName(run_.id) << ": " << *line;
        recorder_.RecordMessage(run_.id, *line);
      }
    }
  }
  void OnMessage(const std::string& message) override {
    recorder_.RecordMessage(run_.id, message);
  }
  void OnCheckpoint(const std::string& name) override {
    // The directory is the truth: keep_last may have pruned older ones.
    recorder_.RecordCheckpoints(
        run_.id, core::ListCheckpoints(run_.checkpoints_dir), name);
  }
  void OnTrace(int64_t step, const std::string& json) override {
    recorder_.RecordTrace(run_.id, step, json);
  }
  core::StopRequest StopRequested() override {
    return recorder_.StopRequested(run_.id);
  }

 private:
  const JobRun& run_;
  JobRecorder& recorder_;
  const double peak_flops_;
  std::optional<core::StepTimeCheck> check_;
};

// The first line of an exception's message: c10::Error appends a C++ stack
// trace, which belongs in the log, not in Job.error.
std::string FirstLine(const char* what) {
  const absl::string_view text(what != nullptr ? what : "");
  return std::string(text.substr(0, text.find('\n')));
}

// The effective spec as stored in every checkpoint (job.json).
std::string SpecJson(v1::JobSpec spec) {
  RedactSecrets(&spec);  // checkpoints are downloadable
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(spec, &json, options).ok()) {
    return "";
  }
  return json;
}

}  // namespace

JobRunner::JobRunner(JobRunnerOptions options)
    : options_(std::move(options)), create_trainer_(&core::Trainer::Create) {}

absl::Status JobRunner::Run(const JobRun& run, JobRecorder& recorder) {
  // A job on N ranks computes on N devices, and its model FLOP/s are the
  // whole job's (the global batch over the step time): MFU is against the
  // N devices' peak.
  RecordingObserver observer(
      run, recorder,
      options_.device_peak_flops *
          std::max(1, run.spec.distributed().world_size()));
  const char* doing = "starting";
  // The trainer lives inside Train(), so unwinding frees it before the
  // error is recorded (the memory an out-of-memory job held is back).
  try {
    doing = "predicting the step time";
    observer.SetStepTimeCheck(PredictStep(run, observer));
    return Train(run, recorder, observer, &doing);
  } catch (const abi::__forced_unwind&) {
    throw;  // thread cancellation must unwind to the end
  } catch (const std::bad_alloc& e) {
    LOG(ERROR) << JobName(run.id) << ": out of memory while " << doing << ": "
               << e.what();
    return absl::ResourceExhaustedError(absl::StrCat(
        "out of memory while ", doing, " (", FirstLine(e.what()), ")"));
  } catch (const std::exception& e) {
    LOG(ERROR) << JobName(run.id) << ": exception while " << doing << ": "
               << e.what();
    return absl::InternalError(
        absl::StrCat("exception while ", doing, ": ", FirstLine(e.what())));
  } catch (...) {
    LOG(ERROR) << JobName(run.id) << ": unknown exception while " << doing;
    return absl::InternalError(
        absl::StrCat("exception of an unknown type while ", doing));
  }
}

std::optional<core::StepTimeCheck> JobRunner::PredictStep(
    const JobRun& run, core::TrainerObserver& observer) {
  if (!options_.node_profile) return std::nullopt;
  const core::JobConfig config = ToJobConfig(run.spec);
  absl::StatusOr<core::HardwareProfile> profile = options_.node_profile(config);
  absl::StatusOr<core::JobPrediction> prediction =
      profile.ok() ? core::PredictJob(config, options_.budgets, run.plan,
                                      *profile, /*alternatives=*/false)
                   : absl::StatusOr<core::JobPrediction>(profile.status());
  absl::Status status =
      prediction.ok() ? prediction->predicted.status() : prediction.status();
  if (!status.ok() || !(prediction->predicted->step_s > 0)) {
    LOG(WARNING) << JobName(run.id) << ": no step time prediction: "
                 << (status.ok() ? "the model predicted 0 s"
                                 : std::string(status.message()));
    return std::nullopt;
  }
  const core::StepPrediction& p = *prediction->predicted;
  core::StepTimeCheckOptions check = options_.step_time_check;
  check.profile = absl::StrCat("hardware profile '", profile->name, "'");
  const std::string line = absl::StrFormat(
      "predicted step time %.3g s (%.3g samples/s, bound by %s) from %s; "
      "steps more than %.0f%% off are reported",
      p.step_s, p.samples_per_s, core::BottleneckName(p.bottleneck),
      check.profile, 100 * check.tolerance);
  LOG(INFO) << JobName(run.id) << ": " << line;
  observer.OnMessage(line);
  return core::StepTimeCheck(p.step_s, std::move(check));
}

absl::Status JobRunner::Train(const JobRun& run, JobRecorder& recorder,
                              core::TrainerObserver& observer,
                              const char** doing) {
  if (const core::JobConfig config = ToJobConfig(run.spec);
      config.distributed.enabled()) {
    return TrainDistributed(run, config, recorder, observer, doing);
  }
  *doing = "creating the trainer";
  ASSIGN_OR_RETURN(std::unique_ptr<core::Trainer> trainer,
                   CreateTrainer(run, observer));
  *doing = "restoring the trainer";
  ASSIGN_OR_RETURN(
      const Restored restored,
      RestoreTrainer(*trainer, run.checkpoints_dir, run.resume_dir));
  if (!restored.note.empty()) observer.OnMessage(restored.note);
  if (restored.step == 0 && !run.spec.init_from().empty()) {
    *doing = "loading init_from";
    RETURN_IF_ERROR(LoadInitFrom(run.spec.init_from(),
                                 ToJobConfig(run.spec).model, *options_.paths,
                                 *trainer));
    observer.OnMessage(absl::StrCat("initialized from ", run.spec.init_from()));
  }
  recorder.RecordRestored(run.id, restored.step);
  *doing = "training";
  return trainer->Run(&observer);
}

absl::StatusOr<std::unique_ptr<core::Trainer>> JobRunner::CreateTrainer(
    const JobRun& run, core::TrainerObserver& observer,
    core::Communicator* comm) {
  const core::JobConfig config = ToJobConfig(run.spec);
  // Open again for this run: the files the submission checked may have
  // moved since; the trainer reads these descriptors, nothing by name.
  ASSIGN_OR_RETURN(const JobFiles files, options_.paths->OpenJobFiles(config));
  core::TrainerOptions trainer_options{
      .job_dir = run.job_dir,
      .device = options_.device.get(),
      .optimizer_threads = options_.optimizer_threads,
      .job_spec_json = SpecJson(run.spec),
      .data_fd = files.data.get(),
      .data_bin_fd = files.data_bin.get(),
      .ssd_dir_fds = files.SsdDirFds(),
      .job_id = run.id,
      .comm = comm};
  if (!options_.ssd_fault_injection.faults.empty()) {
    trainer_options.wrap_ssd_device = SsdFaultWrapper(run.id, observer);
  }
  return create_trainer_(files.Named(config), run.plan, trainer_options);
}

std::function<std::unique_ptr<storage::BlockDevice>(
    std::unique_ptr<storage::BlockDevice>)>
JobRunner::SsdFaultWrapper(int64_t id, core::TrainerObserver& observer) {
  return [this, id, &observer](std::unique_ptr<storage::BlockDevice> device)
             -> std::unique_ptr<storage::BlockDevice> {
    if (ssd_faults_spent_.exchange(true)) return device;
    auto faulty =
        std::make_unique<storage::FaultInjectingBlockDevice>(std::move(device));
    storage::ArmFaults(options_.ssd_fault_injection, faulty.get());
    const std::string note = absl::StrCat(
        "TESTING: faults injected into this job's NVMe tier "
        "(--ssd_fault_injection=",
        options_.ssd_fault_injection.text, ")");
    LOG(WARNING) << JobName(id) << ": " << note;
    observer.OnMessage(note);
    return faulty;
  };
}

}  // namespace stronghold::server
