// JobSpec.init_from: a job that starts from a Hugging Face model directory
// (core/hf/hf_import.h) inside the daemon's data roots. At submission (and
// for a plan) the directory's config.json gives the model's sizes, which
// fill the spec's model fields (a field set that contradicts it is
// INVALID_ARGUMENT naming both) and every tensor's header is checked; when
// the job starts (without a checkpoint of its own), the weights stream into
// its trainer. Errors are prefixed "init_from: ".
#ifndef STRONGHOLD_SERVER_INIT_FROM_H_
#define STRONGHOLD_SERVER_INIT_FROM_H_

#include "absl/status/statusor.h"
#include "core/hf/hf_import.h"
#include "core/train/trainer.h"
#include "server/path_confinement.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

// `spec` with its model fields taken from init_from's config.json (and
// vocab_multiple 1); unchanged without init_from. INVALID_ARGUMENT with
// resume_from too (the checkpoint has the weights), or a distributed job.
absl::StatusOr<stronghold::v1::JobSpec> ResolveInitFrom(
    const stronghold::v1::JobSpec& spec, const PathConfinement& paths);

// Opens init_from inside `paths`' data roots (PERMISSION_DENIED as
// PathConfinement says) and reads its config and headers.
absl::StatusOr<core::HfModelDir> OpenInitFrom(const std::string& init_from,
                                              const PathConfinement& paths);

// Loads init_from's weights into `trainer` (core::Trainer::LoadWeights).
absl::Status LoadInitFrom(const std::string& init_from,
                          const core::ModelConfig& model,
                          const PathConfinement& paths, core::Trainer& trainer);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_INIT_FROM_H_
