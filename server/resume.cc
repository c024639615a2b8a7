#include "server/resume.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/checkpoint/checkpoint.h"
#include "core/checkpoint/checkpoint_reader.h"
#include "core/util/status_macros.h"
#include "server/job_store.h"

namespace stronghold::server {

namespace fs = std::filesystem;
namespace v1 = ::stronghold::v1;

absl::StatusOr<CheckpointRef> ParseCheckpointRef(const std::string& text) {
  const size_t at = text.find('@');
  CheckpointRef ref;
  absl::StatusOr<int64_t> id = ParseJobName(text.substr(0, at));
  if (!id.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("resume_from: expected \"jobs/{id}\" or "
                     "\"jobs/{id}@step-NNNNNN\", got \"",
                     text, "\""));
  }
  ref.job_id = *id;
  if (at == std::string::npos) return ref;
  const std::string step_text = text.substr(at + 1);
  int64_t step = 0;
  if (std::optional<int64_t> named = core::CheckpointStep(step_text)) {
    step = *named;
  } else if (!absl::SimpleAtoi(step_text, &step) || step <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("resume_from: after '@' expected a step such as 10 or "
                     "step-000010, got \"",
                     step_text, "\""));
  }
  ref.checkpoint = core::CheckpointName(step);
  return ref;
}

std::string FormatCheckpointRef(const CheckpointRef& ref) {
  return ref.checkpoint.empty()
             ? JobName(ref.job_id)
             : absl::StrCat(JobName(ref.job_id), "@", ref.checkpoint);
}

v1::JobSpec MergeSpecs(const v1::JobSpec& base, const v1::JobSpec& overrides) {
  v1::JobSpec merged = base;
  // Proto3 merging copies set optional fields and non-default plain ones,
  // which is "the fields the client gave" (it never invents defaults), but
  // appends repeated fields.
  if (overrides.offload().ssd_dirs_size() > 0)
    merged.mutable_offload()->clear_ssd_dirs();
  merged.MergeFrom(overrides);
  return merged;
}

absl::StatusOr<v1::JobSpec> ResolveResume(const v1::JobSpec& spec,
                                          const JobLookup& lookup) {
  if (spec.resume_from().empty()) return spec;
  ASSIGN_OR_RETURN(CheckpointRef ref, ParseCheckpointRef(spec.resume_from()));
  const std::optional<v1::Job> source = lookup(ref.job_id);
  if (!source.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("resume_from: job ", JobName(ref.job_id), " not found"));
  }
  const auto& names = source->checkpoints();
  if (names.empty()) {
    return absl::NotFoundError(absl::StrCat("resume_from: job ", source->name(),
                                            " has no checkpoint yet"));
  }
  if (ref.checkpoint.empty()) ref.checkpoint = names[names.size() - 1];
  if (std::find(names.begin(), names.end(), ref.checkpoint) == names.end()) {
    return absl::NotFoundError(absl::StrCat(
        "resume_from: job ", source->name(), " has no checkpoint ",
        ref.checkpoint, " (it has ", absl::StrJoin(names, ", "), ")"));
  }
  v1::JobSpec base = source->spec();
  v1::JobSpec overrides = spec;
  overrides.clear_resume_from();
  base.clear_resume_from();
  // The checkpoint holds the weights the source job started from.
  base.clear_init_from();
  // Where the new job runs (its ranks, its store, its key) is the
  // submission's own business, never inherited from the source job.
  base.clear_distributed();
  v1::JobSpec merged = MergeSpecs(base, overrides);
  merged.set_resume_from(FormatCheckpointRef(ref));
  return merged;
}

std::string ResumeDir(const v1::JobSpec& spec, const JobStore& store) {
  if (spec.resume_from().empty()) return "";
  absl::StatusOr<CheckpointRef> ref = ParseCheckpointRef(spec.resume_from());
  if (!ref.ok()) return "";
  return (fs::path(store.CheckpointsDir(ref->job_id)) / ref->checkpoint)
      .string();
}

absl::StatusOr<int64_t> CheckResumeSource(const std::string& checkpoint_dir,
                                          const core::JobConfig& config) {
  ASSIGN_OR_RETURN(const core::CheckpointManifest manifest,
                   core::ReadCheckpointManifest(checkpoint_dir));
  RETURN_IF_ERROR(core::CheckResumable(manifest, config.model, checkpoint_dir));
  const int64_t step = manifest.position.step;
  if (config.training.steps <= step) {
    return absl::InvalidArgumentError(absl::StrCat(
        "training.steps: ", config.training.steps,
        " leaves nothing to train after checkpoint ",
        fs::path(checkpoint_dir).filename().string(), " (step ", step,
        "); give more, e.g. --steps ", step + config.training.steps));
  }
  return step;
}

absl::StatusOr<Restored> RestoreTrainer(core::Trainer& trainer,
                                        const std::string& own_checkpoints_dir,
                                        const std::string& resume_dir) {
  Restored out;
  std::vector<std::string> own = core::ListCheckpoints(own_checkpoints_dir);
  absl::Status newest_error;
  std::string skipped;
  for (auto it = own.rbegin(); it != own.rend(); ++it) {
    const std::string dir = (fs::path(own_checkpoints_dir) / *it).string();
    absl::StatusOr<int64_t> step = trainer.Restore(dir);
    if (step.ok()) {
      out.step = *step;
      out.note = absl::StrCat(skipped, "resuming from checkpoint ", *it,
                              " (step ", *step, ")");
      return out;
    }
    // Damage (bit rot, a disk that lied about fsync): an older intact
    // checkpoint continues the same training exactly, just from earlier.
    // Anything else (another shape, a v1 checkpoint) must stop the job.
    if (!absl::IsDataLoss(step.status())) return step.status();
    if (newest_error.ok()) newest_error = step.status();
    absl::StrAppend(&skipped, "checkpoint ", *it, " is damaged (",
                    step.status().message(), "); ");
  }
  if (!resume_dir.empty()) {
    ASSIGN_OR_RETURN(out.step, trainer.Restore(resume_dir));
    out.note = absl::StrCat(skipped, "resuming from ", resume_dir, " (step ",
                            out.step, ")");
    return out;
  }
  // Every own checkpoint damaged: starting over would quietly throw the
  // job's progress away; stop and say why instead.
  if (!newest_error.ok()) return newest_error;
  return out;
}

}  // namespace stronghold::server
