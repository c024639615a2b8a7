#include "core/checkpoint/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "core/util/file_util.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

namespace fs = std::filesystem;

namespace {

constexpr char kTmpPrefix[] = ".tmp-";
constexpr char kDeletePrefix[] = ".del-";

absl::Status FsError(absl::string_view op, const fs::path& path,
                     const std::error_code& ec) {
  return absl::InternalError(
      absl::StrCat("cannot ", op, " ", path.string(), ": ", ec.message()));
}

// Writes `contents` as `path` and fsyncs it; returns its manifest entry.
absl::StatusOr<ManifestFile> WriteSmallFile(const fs::path& path,
                                            const std::string& contents) {
  ASSIGN_OR_RETURN(WritableFile file, WritableFile::Create(path.string()));
  RETURN_IF_ERROR(file.Append(contents.data(), contents.size()));
  RETURN_IF_ERROR(file.SyncAndClose());
  return ManifestFile{path.filename().string(),
                      static_cast<int64_t>(contents.size()),
                      Sha256Hex(contents)};
}

absl::StatusOr<ManifestFile> WriteTensors(
    const fs::path& path, const std::vector<SafetensorsTarget>& targets,
    const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsTensor> tensors;
  tensors.reserve(targets.size());
  for (const SafetensorsTarget& t : targets) {
    tensors.push_back({t.name, t.shape, t.data, t.fill});
  }
  ASSIGN_OR_RETURN(std::string digest,
                   WriteSafetensors(path.string(), tensors, metadata));
  ASSIGN_OR_RETURN(int64_t bytes, FileSize(path.string()));
  return ManifestFile{path.filename().string(), bytes, std::move(digest)};
}

// Renames `dir` to a hidden name, then removes it.
absl::Status RemoveCheckpointDir(const fs::path& dir) {
  const fs::path doomed =
      dir.parent_path() / absl::StrCat(kDeletePrefix, dir.filename().string());
  std::error_code ec;
  fs::remove_all(doomed, ec);
  fs::rename(dir, doomed, ec);
  if (ec) return FsError("rename", dir, ec);
  fs::remove_all(doomed, ec);
  if (ec) return FsError("remove", doomed, ec);
  return absl::OkStatus();
}

// A buffer's tensors, out[first..], are contiguous in the file: `load`
// brings them in before the first is written, `store` hands them on after
// the last is read.
void StreamThrough(std::vector<SafetensorsTarget>& out, size_t first,
                   const std::function<absl::Status()>& load,
                   const std::function<absl::Status()>& store) {
  if (out.size() == first) return;
  out[first].fill = load;
  out.back().done = store;
}

}  // namespace

std::string CheckpointTensorName(const BufferLayout& buffer,
                                 const TensorSlice& t) {
  const bool top = buffer.name == "embedding" || buffer.name == "final_norm";
  return top ? t.name : absl::StrCat(buffer.name, ".", t.name);
}

ManifestModel ManifestModelOf(const ModelConfig& model) {
  ManifestModel m{.layers = model.layers,
                  .hidden = model.hidden,
                  .heads = model.heads,
                  .seq_len = model.seq_len,
                  .vocab = model.vocab,
                  .vocab_multiple = model.vocab_multiple,
                  .padded_vocab = model.padded_vocab(),
                  .parameters = model.parameters()};
  if (model.llama()) {
    m.architecture = ArchitectureName(model.architecture);
    m.kv_heads = model.key_value_heads();
    m.intermediate = model.intermediate;
    m.rope_theta = model.rope_theta;
    m.norm_eps = model.norm_eps;
    m.tie_embeddings = model.tie_embeddings;
  }
  return m;
}

ModelConfig ModelConfigOf(const ManifestModel& m) {
  ModelConfig model;
  model.layers = m.layers;
  model.hidden = m.hidden;
  model.heads = m.heads;
  model.seq_len = m.seq_len;
  model.vocab = m.vocab;
  model.vocab_multiple = m.vocab_multiple;
  // The inverse of what the manifest records for a llama (a GPT records
  // none of these and keeps the defaults).
  if (m.architecture == ArchitectureName(Architecture::kLlama)) {
    model.architecture = Architecture::kLlama;
    model.kv_heads = m.kv_heads;
    model.intermediate = m.intermediate;
    model.rope_theta = m.rope_theta;
    model.norm_eps = m.norm_eps;
    model.tie_embeddings = m.tie_embeddings;
  }
  return model;
}

std::vector<SafetensorsTarget> ModelTensors(
    const std::vector<CheckpointBuffer>& buffers) {
  std::vector<SafetensorsTarget> out;
  for (const CheckpointBuffer& b : buffers) {
    const size_t first = out.size();
    for (const TensorSlice& t : b.layout.tensors) {
      out.push_back(
          {CheckpointTensorName(b.layout, t), t.shape, b.param + t.offset});
    }
    StreamThrough(out, first, b.load_param, b.store_param);
  }
  return out;
}

std::vector<SafetensorsTarget> OptimizerTensors(
    const std::vector<CheckpointBuffer>& buffers) {
  std::vector<SafetensorsTarget> out;
  for (const CheckpointBuffer& b : buffers) {
    const size_t first = out.size();
    for (const TensorSlice& t : b.layout.tensors) {
      out.push_back(
          {absl::StrCat(CheckpointTensorName(b.layout, t), ".exp_avg"), t.shape,
           b.exp_avg + t.offset});
    }
    for (const TensorSlice& t : b.layout.tensors) {
      out.push_back(
          {absl::StrCat(CheckpointTensorName(b.layout, t), ".exp_avg_sq"),
           t.shape, b.exp_avg_sq + t.offset});
    }
    StreamThrough(out, first, b.load_moments, b.store_moments);
  }
  return out;
}

absl::StatusOr<std::string> WriteCheckpoint(
    const std::string& checkpoints_dir, const ModelConfig& model,
    const TrainingPosition& position,
    const std::vector<CheckpointBuffer>& buffers, const std::string& job_json) {
  const std::string name = CheckpointName(position.step);
  const fs::path final_dir = fs::path(checkpoints_dir) / name;
  const fs::path tmp_dir =
      fs::path(checkpoints_dir) / absl::StrCat(kTmpPrefix, name);
  std::error_code ec;
  fs::create_directories(checkpoints_dir, ec);
  fs::remove_all(tmp_dir, ec);
  if (!fs::create_directories(tmp_dir, ec)) {
    return FsError("create", tmp_dir, ec);
  }
  // A write that fails (a full disk, an NVMe tier error while streaming the
  // moments) leaves nothing behind.
  bool renamed = false;
  absl::Cleanup remove_tmp = [&] {
    std::error_code ignored;
    if (!renamed) fs::remove_all(tmp_dir, ignored);
  };

  // The safetensors metadata holds nothing job-specific, so two runs that
  // reach the same state write byte-identical files.
  const std::string step = absl::StrCat(position.step);
  const std::map<std::string, std::string> model_meta = {
      {"format", "pt"},
      {"step", step},
      {"layers", absl::StrCat(model.layers)},
      {"hidden", absl::StrCat(model.hidden)},
      {"heads", absl::StrCat(model.heads)},
      {"seq_len", absl::StrCat(model.seq_len)},
      {"vocab", absl::StrCat(model.vocab)},
  };
  const std::map<std::string, std::string> optimizer_meta = {
      {"format", "pt"},
      {"optimizer", "AdamW"},
      {"step", absl::StrCat(position.optimizer_step)},
  };
  CheckpointManifest manifest;
  manifest.position = position;
  manifest.model = ManifestModelOf(model);
  ASSIGN_OR_RETURN(
      ManifestFile weights,
      WriteTensors(tmp_dir / kModelFile, ModelTensors(buffers), model_meta));
  manifest.files.push_back(std::move(weights));
  ASSIGN_OR_RETURN(ManifestFile moments,
                   WriteTensors(tmp_dir / kOptimizerFile,
                                OptimizerTensors(buffers), optimizer_meta));
  manifest.files.push_back(std::move(moments));
  if (!job_json.empty()) {
    ASSIGN_OR_RETURN(ManifestFile spec,
                     WriteSmallFile(tmp_dir / kJobSpecFile, job_json));
    manifest.files.push_back(std::move(spec));
  }
  RETURN_IF_ERROR(
      WriteSmallFile(tmp_dir / kManifestFile, ManifestToJson(manifest))
          .status());
  RETURN_IF_ERROR(SyncDir(tmp_dir.string()));

  if (fs::exists(final_dir, ec))
    RETURN_IF_ERROR(RemoveCheckpointDir(final_dir));
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) return FsError("rename", tmp_dir, ec);
  renamed = true;
  RETURN_IF_ERROR(SyncDir(checkpoints_dir));
  return name;
}

std::vector<std::string> ListCheckpoints(const std::string& checkpoints_dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir, ec)) {
    const std::string n = entry.path().filename().string();
    const std::optional<int64_t> step = CheckpointStep(n);
    if (step.has_value() && fs::exists(entry.path() / kManifestFile, ec)) {
      found.emplace_back(*step, n);
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> names;
  for (auto& [step, name] : found) names.push_back(std::move(name));
  return names;
}

absl::Status PruneCheckpoints(const std::string& checkpoints_dir,
                              int keep_last) {
  if (keep_last <= 0) return absl::OkStatus();
  std::vector<std::string> names = ListCheckpoints(checkpoints_dir);
  for (size_t i = 0; i + keep_last < names.size(); ++i) {
    RETURN_IF_ERROR(RemoveCheckpointDir(fs::path(checkpoints_dir) / names[i]));
  }
  return SyncDir(checkpoints_dir);
}

absl::StatusOr<int> RemoveIncompleteCheckpoints(
    const std::string& checkpoints_dir) {
  int removed = 0;
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir, ec)) {
    const std::string n = entry.path().filename().string();
    if (n.rfind(kTmpPrefix, 0) == 0 || n.rfind(kDeletePrefix, 0) == 0) {
      doomed.push_back(entry.path());
    }
  }
  for (const fs::path& p : doomed) {
    fs::remove_all(p, ec);
    if (ec) return FsError("remove", p, ec);
    ++removed;
  }
  if (removed > 0) RETURN_IF_ERROR(SyncDir(checkpoints_dir));
  return removed;
}

}  // namespace stronghold::core
