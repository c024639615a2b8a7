#include "core/hf/hf_export.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/checkpoint/checkpoint.h"
#include "core/checkpoint/checkpoint_reader.h"
#include "core/checkpoint/safetensors.h"
#include "core/hf/hf_import.h"
#include "core/hf/hf_model.h"
#include "core/util/file_util.h"
#include "core/util/json.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

namespace {

namespace fs = std::filesystem;

// One exported tensor: the HF tensor and the buffer it comes from.
struct Exported {
  HfTensor tensor;
  const BufferLayout* layout = nullptr;
  int64_t numel() const { return tensor.shape[0] * Columns(); }
  int64_t Columns() const {
    return tensor.shape.size() > 1 ? tensor.shape[1] : 1;
  }
};

// Fills `out` (tensor.numel() floats) with `e`'s HF layout of our tensor
// `ours` (its whole target, as model.safetensors stores it): the inverse
// of the importer's copy.
void ToHfLayout(const Exported& e, const std::vector<float>& ours, float* out) {
  const HfTensor& t = e.tensor;
  const int64_t cols = e.Columns();
  const int64_t count = t.rows * cols;
  for (int64_t i = 0; i < count; ++i) {
    if (t.transposed) {
      const int64_t in = i / cols, o = i % cols;  // stored [in, out]
      out[i] = ours[o * t.shape[0] + in];
    } else {
      out[i] = ours[t.target_row * cols + i];
    }
  }
}

}  // namespace

absl::StatusOr<std::vector<std::string>> WriteHfExport(
    const std::string& checkpoint_dir, const std::string& out_dir,
    const HfExportOptions& options) {
  ASSIGN_OR_RETURN(const CheckpointManifest manifest,
                   ReadCheckpointManifest(checkpoint_dir));
  const ModelConfig model = ModelConfigOf(manifest.model);
  const HfModel hf = HfModelOf(model);
  const std::string weights = absl::StrCat(checkpoint_dir, "/", kModelFile);
  ASSIGN_OR_RETURN(const SafetensorsFile header,
                   ReadSafetensorsHeader(weights));

  // The tensors in file order, and the shards they fall into.
  const std::vector<BufferLayout> layouts = ModelLayout(model);
  std::vector<std::vector<Exported>> shards(1);
  int64_t shard_bytes = 0, largest = 0, total_bytes = 0;
  for (const BufferLayout& layout : layouts) {
    for (HfTensor& t : HfTensorsOf(hf, layout)) {
      Exported e{std::move(t), &layout};
      const int64_t bytes = e.numel() * 4;
      if (shard_bytes > 0 && shard_bytes + bytes > options.max_shard_bytes) {
        shards.emplace_back();
        shard_bytes = 0;
      }
      shard_bytes += bytes;
      total_bytes += bytes;
      largest = std::max(largest, e.numel());
      shards.back().push_back(std::move(e));
    }
  }

  std::vector<float> scratch(static_cast<size_t>(largest));
  std::vector<std::string> files = {kHfConfigFile, "generation_config.json",
                                    kHfIndexFile};
  std::vector<std::string> weight_map;
  const int n = static_cast<int>(shards.size());
  for (int k = 0; k < n; ++k) {
    const std::string file =
        absl::StrFormat("model-%05d-of-%05d.safetensors", k + 1, n);
    std::vector<SafetensorsTensor> tensors;
    for (const Exported& e : shards[k]) {
      const Exported* ep = &e;
      tensors.push_back(
          {.name = e.tensor.name,
           .shape = e.tensor.shape,
           .data = scratch.data(),
           .fill = [&, ep]() -> absl::Status {
             const TensorSlice& target = ep->layout->tensor(ep->tensor.target);
             ASSIGN_OR_RETURN(const std::vector<float> ours,
                              ReadSafetensorsTensor(
                                  weights, header,
                                  CheckpointTensorName(*ep->layout, target)));
             if (static_cast<int64_t>(ours.size()) != target.numel()) {
               return absl::DataLossError(absl::StrCat(
                   weights, ": tensor ", target.name, " has ", ours.size(),
                   " elements, the manifest's model needs ", target.numel()));
             }
             ToHfLayout(*ep, ours, scratch.data());
             return absl::OkStatus();
           }});
      weight_map.push_back(absl::StrCat("    ", JsonQuoted(e.tensor.name), ": ",
                                        JsonQuoted(file)));
    }
    RETURN_IF_ERROR(WriteSafetensors(absl::StrCat(out_dir, "/", file), tensors,
                                     {{"format", "pt"}})
                        .status());
    files.push_back(file);
  }
  const std::string index =
      absl::StrCat("{\n  \"metadata\": {\"total_size\": ", total_bytes,
                   "},\n  \"weight_map\": {\n",
                   absl::StrJoin(weight_map, ",\n"), "\n  }\n}\n");
  RETURN_IF_ERROR(
      WriteFileAtomically(absl::StrCat(out_dir, "/", kHfIndexFile), index));
  RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(out_dir, "/", kHfConfigFile),
                                      HfConfigJson(model)));
  RETURN_IF_ERROR(
      WriteFileAtomically(absl::StrCat(out_dir, "/generation_config.json"),
                          HfGenerationConfigJson(model)));
  RETURN_IF_ERROR(SyncDir(out_dir));
  return files;
}

absl::StatusOr<std::vector<std::string>> EnsureHfExport(
    const std::string& checkpoint_dir, const HfExportOptions& options) {
  const fs::path dir = fs::path(checkpoint_dir) / kHfExportDir;
  auto listing = [&]() -> absl::StatusOr<std::vector<std::string>> {
    std::vector<std::string> files;
    std::error_code ec;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
      files.push_back(entry.path().filename().string());
    }
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot list ", dir.string(), ": ", ec.message()));
    }
    std::sort(files.begin(), files.end());
    return files;
  };
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return listing();

  // A name of this request's own: concurrent requests each write theirs.
  static std::atomic<int64_t> serial{0};
  const fs::path tmp =
      fs::path(checkpoint_dir) /
      absl::StrCat(".tmp-hf-", getpid(), "-", serial.fetch_add(1));
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec)) {
    return absl::InternalError(
        absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));
  }
  absl::StatusOr<std::vector<std::string>> written =
      WriteHfExport(checkpoint_dir, tmp.string(), options);
  if (written.ok()) {
    fs::rename(tmp, dir, ec);
    // Another request's export won the race: the same bytes are in place.
    if (ec && fs::is_directory(dir)) ec.clear();
    if (ec) {
      written = absl::InternalError(absl::StrCat("cannot rename ", tmp.string(),
                                                 " to ", dir.string(), ": ",
                                                 ec.message()));
    } else {
      RETURN_IF_ERROR(SyncDir(checkpoint_dir));
    }
  }
  std::error_code ignored;
  fs::remove_all(tmp, ignored);
  RETURN_IF_ERROR(written.status());
  return listing();
}

}  // namespace stronghold::core
