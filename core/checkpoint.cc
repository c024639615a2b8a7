#include "core/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/file_util.h"
#include "core/safetensors.h"
#include "core/status_macros.h"

namespace stronghold::core {

namespace fs = std::filesystem;

std::string CheckpointName(int64_t step) { return absl::StrFormat("step-%06d", step); }

absl::StatusOr<std::string> WriteCheckpoint(
    const std::string& checkpoints_dir, int64_t step,
    const std::vector<BufferLayout>& layouts,
    const std::vector<const float*>& params,
    const std::map<std::string, std::string>& metadata) {
  const std::string name = CheckpointName(step);
  const fs::path final_dir = fs::path(checkpoints_dir) / name;
  const fs::path tmp_dir = fs::path(checkpoints_dir) / absl::StrCat(".tmp-", name);
  std::error_code ec;
  fs::create_directories(checkpoints_dir, ec);
  fs::remove_all(tmp_dir, ec);
  if (!fs::create_directories(tmp_dir, ec)) {
    return absl::InternalError(absl::StrCat("cannot create ", tmp_dir.string(), ": ", ec.message()));
  }

  std::vector<SafetensorsTensor> tensors;
  for (size_t b = 0; b < layouts.size(); ++b) {
    const bool top = layouts[b].name == "embedding" || layouts[b].name == "final_norm";
    for (const TensorSlice& t : layouts[b].tensors) {
      tensors.push_back({top ? t.name : absl::StrCat(layouts[b].name, ".", t.name), t.shape,
                         params[b] + t.offset});
    }
  }
  const std::string model_path = (tmp_dir / kModelFile).string();
  ASSIGN_OR_RETURN(std::string digest, WriteSafetensors(model_path, tensors, metadata));
  ASSIGN_OR_RETURN(int64_t bytes, FileSize(model_path));

  const std::string manifest = absl::StrFormat(
      "{\n  \"format\": \"stronghold-checkpoint-v1\",\n  \"step\": %d,\n"
      "  \"files\": [\n    {\"name\": \"%s\", \"bytes\": %d, \"sha256\": \"%s\"}\n  ]\n}\n",
      step, kModelFile, bytes, digest);
  RETURN_IF_ERROR(WriteFileAtomically((tmp_dir / kManifestFile).string(), manifest));
  RETURN_IF_ERROR(SyncDir(tmp_dir.string()));

  fs::remove_all(final_dir, ec);  // an older checkpoint of the same step
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp_dir.string(), ": ", ec.message()));
  }
  RETURN_IF_ERROR(SyncDir(checkpoints_dir));
  return name;
}

std::vector<std::string> ListCheckpoints(const std::string& checkpoints_dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir, ec)) {
    const std::string n = entry.path().filename().string();
    if (n.rfind("step-", 0) == 0 && fs::exists(entry.path() / kManifestFile, ec)) {
      names.push_back(n);
    }
  }
  std::sort(names.begin(), names.end());  // zero-padded: lexical = numeric
  return names;
}

absl::Status PruneCheckpoints(const std::string& checkpoints_dir, int keep_last) {
  if (keep_last <= 0) return absl::OkStatus();
  std::vector<std::string> names = ListCheckpoints(checkpoints_dir);
  for (size_t i = 0; i + keep_last < names.size(); ++i) {
    std::error_code ec;
    fs::remove_all(fs::path(checkpoints_dir) / names[i], ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot remove checkpoint ", names[i], ": ", ec.message()));
    }
  }
  return SyncDir(checkpoints_dir);
}

}  // namespace stronghold::core
