#include "server/job_admission.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/data/dataset.h"
#include "core/util/status_macros.h"
#include "server/init_from.h"
#include "server/proto_convert.h"

namespace stronghold::server {

namespace v1 = ::stronghold::v1;

namespace {

// A GPT spec that sets a llama-only field: the field would be ignored, so
// it is refused (ToJobConfig cannot tell a given default from an absent one).
absl::Status CheckArchitectureFields(const v1::ModelSpec& m) {
  if (m.architecture() == v1::LLAMA) return absl::OkStatus();
  const std::pair<bool, const char*> llama_only[] = {
      {m.has_kv_heads(), "model.kv_heads"},
      {m.has_intermediate(), "model.intermediate"},
      {m.has_rope_theta(), "model.rope_theta"},
      {m.has_norm_eps(), "model.norm_eps"},
      {m.has_tie_embeddings(), "model.tie_embeddings"},
  };
  for (const auto& [set, field] : llama_only) {
    if (set) {
      return absl::InvalidArgumentError(
          absl::StrCat(field,
                       ": applies to the llama architecture only "
                       "(model.architecture is gpt)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ResolvedJob> ResolveJob(
    const v1::JobSpec& submitted, const JobLookup& lookup,
    const core::NodeBudgets& budgets, const Planner& planner,
    const PathConfinement& paths, const Configurator& configure,
    const core::ValidationOptions& validation) {
  if (!submitted.init_from().empty() && !submitted.resume_from().empty()) {
    return absl::InvalidArgumentError(
        "init_from: not with resume_from (the checkpoint holds the weights)");
  }
  ASSIGN_OR_RETURN(const v1::JobSpec resumed, ResolveResume(submitted, lookup));
  ASSIGN_OR_RETURN(const v1::JobSpec spec, ResolveInitFrom(resumed, paths));
  RETURN_IF_ERROR(CheckArchitectureFields(spec.model()));
  ResolvedJob job;
  job.config = ToJobConfig(spec);
  RETURN_IF_ERROR(core::ValidateJobConfig(job.config, validation));
  // The effective spec records the choice: every later plan of the job (each
  // run's, a resumed job's) starts from it.
  core::AutomaticChoice choice = configure(job.config);
  job.config = std::move(choice.config);
  job.automatic_choice = std::move(choice.reason);
  job.spec = ToJobSpec(job.config);
  job.spec.set_resume_from(spec.resume_from());
  job.spec.set_init_from(spec.init_from());
  job.plan = planner(job.config, budgets);
  return job;
}

absl::Status CheckRunnable(const ResolvedJob& job, const JobStore& store,
                           const PathConfinement& paths) {
  const core::JobConfig& config = job.config;
  ASSIGN_OR_RETURN(JobFiles files, paths.OpenJobFiles(config));
  const core::DataConfig data = files.Named(config).data;
  const int64_t vocab = config.model.padded_vocab();
  ASSIGN_OR_RETURN(const std::unique_ptr<core::Dataset> dataset,
                   core::Dataset::OpenFiles({.file = std::move(files.data),
                                             .bin = std::move(files.data_bin)},
                                            data, vocab, config.model.seq_len));
  RETURN_IF_ERROR(core::CheckFits(job.plan));
  if (const std::string dir = ResumeDir(job.spec, store); !dir.empty()) {
    RETURN_IF_ERROR(CheckResumeSource(dir, config).status());
  }
  return absl::OkStatus();
}

}  // namespace stronghold::server
