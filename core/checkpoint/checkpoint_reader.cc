#include "core/checkpoint/checkpoint_reader.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/checkpoint/safetensors.h"
#include "core/util/file_util.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

namespace fs = std::filesystem;

namespace {

std::string PathOf(const std::string& dir, absl::string_view file) {
  return (fs::path(dir) / std::string(file)).string();
}

absl::Status DigestMismatch(const std::string& path, const std::string& got,
                            const std::string& want) {
  return absl::DataLossError(absl::StrCat(path, ": SHA-256 ", got,
                                          " does not match the manifest's ",
                                          want, " (the file is damaged)"));
}

// The manifest entry of a file a resume needs.
absl::StatusOr<const ManifestFile*> Required(const CheckpointManifest& m,
                                             absl::string_view name,
                                             const std::string& dir) {
  const ManifestFile* f = m.file(name);
  if (f == nullptr) {
    return absl::DataLossError(
        absl::StrCat(PathOf(dir, kManifestFile), ": does not list ", name));
  }
  return f;
}

// Streams one safetensors file into `targets` and checks its digest. When
// its header disagrees with the job's model, the file's digest decides
// whether it is damaged (DATA_LOSS) or of another shape (INVALID_ARGUMENT).
absl::Status LoadTensors(const std::string& dir, const ManifestFile& entry,
                         const std::vector<SafetensorsTarget>& targets) {
  const std::string path = PathOf(dir, entry.name);
  absl::StatusOr<std::string> digest = ReadSafetensorsInto(path, targets);
  if (!digest.ok()) {
    if (absl::IsInvalidArgument(digest.status()) ||
        absl::IsDataLoss(digest.status())) {
      absl::StatusOr<std::string> whole = Sha256File(path);
      if (whole.ok() && *whole != entry.sha256) {
        return DigestMismatch(path, *whole, entry.sha256);
      }
    }
    return digest.status();
  }
  if (*digest != entry.sha256) {
    return DigestMismatch(path, *digest, entry.sha256);
  }
  return absl::OkStatus();
}

// "gpt", or "llama" and its fields, for errors.
std::string ArchitectureText(const ManifestModel& m) {
  if (m.architecture != "llama") return m.architecture;
  return absl::StrCat(m.architecture, ", kv_heads ", m.kv_heads,
                      ", intermediate ", m.intermediate, ", rope_theta ",
                      m.rope_theta, ", norm_eps ", m.norm_eps,
                      ", tie_embeddings ", m.tie_embeddings ? "true" : "false");
}

}  // namespace

absl::StatusOr<CheckpointManifest> ReadCheckpointManifest(
    const std::string& checkpoint_dir) {
  const std::string path = PathOf(checkpoint_dir, kManifestFile);
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::DataLossError(
        absl::StrCat(path, ": cannot read: ", text.status().message()));
  }
  ASSIGN_OR_RETURN(CheckpointManifest m, ParseManifest(*text, path));
  const std::string dir_name = fs::path(checkpoint_dir).filename().string();
  if (CheckpointStep(dir_name).value_or(-1) != m.position.step) {
    return absl::DataLossError(absl::StrCat(path, ": step ", m.position.step,
                                            " does not match the directory ",
                                            dir_name));
  }
  for (const ManifestFile& f : m.files) {
    const std::string file_path = PathOf(checkpoint_dir, f.name);
    absl::StatusOr<int64_t> size = FileSize(file_path);
    if (!size.ok()) {
      return absl::DataLossError(
          absl::StrCat(file_path, ": missing (listed in ", kManifestFile, ")"));
    }
    if (*size != f.bytes) {
      return absl::DataLossError(
          absl::StrCat(file_path, ": ", *size, " bytes, the manifest says ",
                       f.bytes, " (truncated or damaged)"));
    }
  }
  return m;
}

absl::Status CheckResumable(const CheckpointManifest& m,
                            const ModelConfig& model,
                            const std::string& checkpoint_dir) {
  const std::string path = PathOf(checkpoint_dir, kManifestFile);
  if (m.format != kCheckpointFormat) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": format ", m.format,
                     " holds weights only (no optimizer state); it cannot be "
                     "resumed exactly"));
  }
  if (m.precision != "fp32") {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": precision ", m.precision, " is not fp32"));
  }
  const ManifestModel& c = m.model;
  // The architecture's fields as the job's would be recorded.
  const ManifestModel job = ManifestModelOf(model);
  if (c.architecture != job.architecture || c.kv_heads != job.kv_heads ||
      c.intermediate != job.intermediate || c.rope_theta != job.rope_theta ||
      c.norm_eps != job.norm_eps || c.tie_embeddings != job.tie_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the checkpoint's architecture (", ArchitectureText(c),
        ") is not the job's (", ArchitectureText(job), ")"));
  }
  if (c.layers != model.layers || c.hidden != model.hidden ||
      c.heads != model.heads || c.seq_len != model.seq_len ||
      c.vocab != model.vocab || c.vocab_multiple != model.vocab_multiple) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the checkpoint's model (layers ", c.layers, ", hidden ",
        c.hidden, ", heads ", c.heads, ", seq_len ", c.seq_len, ", vocab ",
        c.vocab, ", vocab_multiple ", c.vocab_multiple,
        ") is not the job's (layers ", model.layers, ", hidden ", model.hidden,
        ", heads ", model.heads, ", seq_len ", model.seq_len, ", vocab ",
        model.vocab, ", vocab_multiple ", model.vocab_multiple, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<CheckpointManifest> LoadCheckpoint(
    const std::string& checkpoint_dir, const ModelConfig& model,
    const std::vector<CheckpointBuffer>& buffers) {
  ASSIGN_OR_RETURN(CheckpointManifest m,
                   ReadCheckpointManifest(checkpoint_dir));
  RETURN_IF_ERROR(CheckResumable(m, model, checkpoint_dir));
  ASSIGN_OR_RETURN(const ManifestFile* weights,
                   Required(m, kModelFile, checkpoint_dir));
  ASSIGN_OR_RETURN(const ManifestFile* moments,
                   Required(m, kOptimizerFile, checkpoint_dir));
  RETURN_IF_ERROR(LoadTensors(checkpoint_dir, *weights, ModelTensors(buffers)));
  RETURN_IF_ERROR(
      LoadTensors(checkpoint_dir, *moments, OptimizerTensors(buffers)));
  for (const ManifestFile& f : m.files) {
    if (f.name == kModelFile || f.name == kOptimizerFile) continue;
    const std::string path = PathOf(checkpoint_dir, f.name);
    ASSIGN_OR_RETURN(std::string digest, Sha256File(path));
    if (digest != f.sha256) return DigestMismatch(path, digest, f.sha256);
  }
  return m;
}

absl::StatusOr<CheckpointManifest> VerifyCheckpoint(
    const std::string& checkpoint_dir) {
  ASSIGN_OR_RETURN(CheckpointManifest m,
                   ReadCheckpointManifest(checkpoint_dir));
  for (const ManifestFile& f : m.files) {
    const std::string path = PathOf(checkpoint_dir, f.name);
    ASSIGN_OR_RETURN(std::string digest, Sha256File(path));
    if (digest != f.sha256) return DigestMismatch(path, digest, f.sha256);
  }
  return m;
}

}  // namespace stronghold::core
