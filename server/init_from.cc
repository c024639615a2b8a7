#include "server/init_from.h"

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace stronghold::server {

namespace v1 = ::stronghold::v1;

namespace {

absl::Status Prefixed(const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat("init_from: ", s.message()));
}

}  // namespace

absl::StatusOr<core::HfModelDir> OpenInitFrom(const std::string& init_from,
                                              const PathConfinement& paths) {
  ASSIGN_OR_RETURN(core::ConfinedRoots::Opened dir,
                   paths.OpenModelDir(init_from));
  absl::StatusOr<core::HfModelDir> model =
      core::HfModelDir::Open(std::move(dir.fd), dir.path);
  if (!model.ok()) return Prefixed(model.status());
  return model;
}

absl::StatusOr<v1::JobSpec> ResolveInitFrom(const v1::JobSpec& spec,
                                            const PathConfinement& paths) {
  if (spec.init_from().empty()) return spec;
  if (!spec.resume_from().empty()) {
    return absl::InvalidArgumentError(
        "init_from: not with resume_from (the checkpoint holds the weights)");
  }
  if (spec.distributed().world_size() > 1) {
    return absl::InvalidArgumentError(
        "init_from: not supported with distributed.world_size > 1 yet");
  }
  if (spec.init_from().size() > core::kMaxPathLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "init_from: longer than ", core::kMaxPathLength, " characters"));
  }
  ASSIGN_OR_RETURN(const core::HfModelDir dir,
                   OpenInitFrom(spec.init_from(), paths));
  const v1::ModelSpec& m = spec.model();
  core::RequestedModel requested;
#define SH_REQUESTED(field) \
  if (m.has_##field()) requested.field = m.field()
  SH_REQUESTED(layers);
  SH_REQUESTED(hidden);
  SH_REQUESTED(heads);
  SH_REQUESTED(seq_len);
  SH_REQUESTED(vocab);
  SH_REQUESTED(vocab_multiple);
  SH_REQUESTED(kv_heads);
  SH_REQUESTED(intermediate);
  SH_REQUESTED(rope_theta);
  SH_REQUESTED(norm_eps);
  SH_REQUESTED(tie_embeddings);
#undef SH_REQUESTED
  // Unspecified: whatever config.json says.
  if (m.architecture() != v1::ARCHITECTURE_UNSPECIFIED) {
    requested.architecture = m.architecture() == v1::LLAMA
                                 ? core::Architecture::kLlama
                                 : core::Architecture::kGpt;
  }
  absl::StatusOr<core::ModelConfig> model =
      core::ResolveHfModel(dir.hf(), requested);
  if (!model.ok()) return Prefixed(model.status());
  if (absl::Status s = dir.CheckTensors(*model); !s.ok()) return Prefixed(s);
  v1::JobSpec out = spec;
  v1::ModelSpec* o = out.mutable_model();
  o->set_layers(model->layers);
  o->set_hidden(model->hidden);
  o->set_heads(model->heads);
  o->set_seq_len(model->seq_len);
  o->set_vocab(model->vocab);
  o->set_vocab_multiple(model->vocab_multiple);
  if (model->llama()) {
    o->set_architecture(v1::LLAMA);
    o->set_kv_heads(model->key_value_heads());
    o->set_intermediate(model->intermediate);
    o->set_rope_theta(model->rope_theta);
    o->set_norm_eps(model->norm_eps);
    o->set_tie_embeddings(model->tie_embeddings);
  }
  return out;
}

absl::Status LoadInitFrom(const std::string& init_from,
                          const core::ModelConfig& model,
                          const PathConfinement& paths,
                          core::Trainer& trainer) {
  ASSIGN_OR_RETURN(const core::HfModelDir dir, OpenInitFrom(init_from, paths));
  absl::Status s = trainer.LoadWeights(
      [&](const std::vector<core::CheckpointBuffer>& buffers) {
        return dir.LoadInto(model, buffers);
      });
  return s.ok() ? s : Prefixed(s);
}

}  // namespace stronghold::server
