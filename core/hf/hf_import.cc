#include "core/hf/hf_import.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/optim/float16.h"
#include "core/util/confined_path.h"
#include "core/util/json.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// The whole of a small file opened as `fd`, refused beyond `limit` bytes
// (a hostile directory may hold anything under a known name).
absl::StatusOr<std::string> ReadSmallFile(int fd, const std::string& name,
                                          int64_t limit) {
  std::string out;
  char chunk[65536];
  while (true) {
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(
          absl::StrCat("cannot read ", name, ": ", strerror(errno)));
    }
    if (n == 0) return out;
    if (static_cast<int64_t>(out.size()) + n > limit) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " is larger than the limit of ", limit, " bytes"));
    }
    out.append(chunk, static_cast<size_t>(n));
  }
}

// A shard's name as an index gives it: one plain file name.
absl::Status CheckShardName(const std::string& file, const std::string& index) {
  if (file.empty() || file.size() > 255 ||
      file.find('/') != std::string::npos || file == "." || file == ".." ||
      file.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(index, ": shard name ", JsonQuoted(file),
                     " is not a file name in the model directory"));
  }
  return absl::OkStatus();
}

int64_t ElementBytes(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "BF16" || dtype == "F16") return 2;
  return 0;
}

float Convert(const char* src, const std::string& dtype, int64_t i) {
  if (dtype == "F32") {
    float f;
    std::memcpy(&f, src + 4 * i, 4);
    return f;
  }
  uint16_t bits;
  std::memcpy(&bits, src + 2 * i, 2);
  return dtype == "BF16" ? FloatFromBFloat16(bits) : FloatFromHalf(bits);
}

// Elements per row as stored (tensors here are 1-D or 2-D).
int64_t Columns(const HfTensor& t) {
  return t.shape.size() > 1 ? t.shape[1] : 1;
}

}  // namespace

absl::StatusOr<HfModelDir> HfModelDir::Open(UniqueFd dir, std::string name) {
  HfModelDir d;
  d.name_ = std::move(name);
  d.dir_ = std::move(dir);
  const std::string config_name = absl::StrCat(d.name_, "/", kHfConfigFile);
  absl::StatusOr<UniqueFd> config =
      OpenBeneath(d.dir_.get(), kHfConfigFile, EntryKind::kRegularFile);
  if (!config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config_name, ": ", config.status().message()));
  }
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(config->get(), config_name,
                                                   kMaxHfConfigBytes));
  ASSIGN_OR_RETURN(d.hf_, ParseHfConfig(text, config_name));
  RETURN_IF_ERROR(d.OpenShards());
  return d;
}

absl::Status HfModelDir::OpenShards() {
  std::vector<std::string> files;
  const std::string index_name = absl::StrCat(name_, "/", kHfIndexFile);
  absl::StatusOr<UniqueFd> index =
      OpenBeneath(dir_.get(), kHfIndexFile, EntryKind::kRegularFile);
  std::map<std::string, std::string> weight_map;
  if (index.ok()) {
    ASSIGN_OR_RETURN(std::string text,
                     ReadSmallFile(index->get(), index_name, kMaxHfIndexBytes));
    JsonOptions options;
    options.max_bytes = kMaxHfIndexBytes;
    options.max_depth = 8;
    absl::StatusOr<JsonValue> root = ParseJson(text, options);
    if (!root.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_name, ": ", root.status().message()));
    }
    absl::StatusOr<const JsonValue*> map =
        root->kind == JsonValue::Kind::kObject
            ? root->Member("weight_map", JsonValue::Kind::kObject)
            : absl::InvalidArgumentError("not a JSON object");
    if (!map.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_name, ": ", map.status().message()));
    }
    std::set<std::string> seen;
    for (const auto& [tensor, file] : (*map)->object) {
      if (file.kind != JsonValue::Kind::kString) {
        return absl::InvalidArgumentError(absl::StrCat(
            index_name, ": weight_map[", JsonQuoted(tensor), "] is ",
            JsonKindName(file.kind), ", not a file name"));
      }
      RETURN_IF_ERROR(CheckShardName(file.text, index_name));
      weight_map[tensor] = file.text;
      if (seen.insert(file.text).second) files.push_back(file.text);
      if (static_cast<int>(files.size()) > kMaxHfShards) {
        return absl::InvalidArgumentError(absl::StrCat(
            index_name, " names more than ", kMaxHfShards, " shards"));
      }
    }
  } else {
    files.push_back(kHfSingleFile);
  }
  for (const std::string& file : files) {
    Shard shard;
    shard.file = file;
    const std::string path = absl::StrCat(name_, "/", file);
    absl::StatusOr<UniqueFd> fd =
        OpenBeneath(dir_.get(), file, EntryKind::kRegularFile);
    if (!fd.ok()) {
      return absl::InvalidArgumentError(
          index.ok()
              ? absl::StrCat("shard ", path, ", listed in ", kHfIndexFile,
                             ", cannot be opened: ", fd.status().message())
              : absl::StrCat(name_, " holds neither ", kHfSingleFile, " nor ",
                             kHfIndexFile, ": ", fd.status().message()));
    }
    shard.fd = *std::move(fd);
    ASSIGN_OR_RETURN(shard.header, ReadSafetensorsHeader(shard.fd.get(), path));
    shards_.push_back(std::move(shard));
  }
  for (int i = 0; i < static_cast<int>(shards_.size()); ++i) {
    for (const auto& [tensor, entry] : shards_[i].header.tensors) {
      if (!shard_of_.emplace(tensor, i).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            name_, ": tensor ", tensor, " is in both ",
            shards_[shard_of_[tensor]].file, " and ", shards_[i].file));
      }
    }
  }
  for (const auto& [tensor, file] : weight_map) {
    auto it = shard_of_.find(tensor);
    if (it == shard_of_.end() || shards_[it->second].file != file) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_name, ": tensor ", tensor, " is not in ", file,
                       " as the index says"));
    }
  }
  return absl::OkStatus();
}

HfModelDir::Found HfModelDir::Find(const HfTensor& tensor) const {
  for (const std::string* name : {&tensor.name, &tensor.alias}) {
    if (name->empty()) continue;
    auto it = shard_of_.find(*name);
    if (it == shard_of_.end()) continue;
    const Shard& s = shards_[it->second];
    return {&s, &s.header.tensors.at(*name)};
  }
  return {};
}

absl::Status HfModelDir::CheckTensor(const HfTensor& tensor) const {
  const Found f = Find(tensor);
  if (f.shard == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": tensor ", tensor.name, " is missing (expected ",
                     ShapeText(tensor.shape), ")"));
  }
  const std::string path = absl::StrCat(name_, "/", f.shard->file);
  if (f.entry->shape != tensor.shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": tensor ", tensor.name, " has shape ",
        ShapeText(f.entry->shape), ", expected ", ShapeText(tensor.shape)));
  }
  if (ElementBytes(f.entry->dtype) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": tensor ", tensor.name, " is ", f.entry->dtype,
                     "; supported: F32, BF16, F16"));
  }
  return absl::OkStatus();
}

absl::Status HfModelDir::CheckTensors(const ModelConfig& model) const {
  HfModel hf = hf_;
  hf.model = model;
  std::set<std::string> used;
  for (const BufferLayout& layout : ModelLayout(model)) {
    int64_t covered = 0;
    for (const HfTensor& t : HfTensorsOf(hf, layout)) {
      RETURN_IF_ERROR(CheckTensor(t));
      used.insert(shard_of_.count(t.name) > 0 ? t.name : t.alias);
      covered += t.rows * Columns(t);
    }
    if (covered != layout.count) {
      return absl::InternalError(absl::StrCat(
          "the ", hf_.architecture, " mapping of buffer ", layout.name,
          " fills ", covered, " of its ", layout.count, " elements"));
    }
  }
  for (const auto& [tensor, shard] : shard_of_) {
    if (used.count(tensor) == 0 && !IgnoredHfTensor(hf, tensor)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, "/", shards_[shard].file, ": tensor ", tensor,
                       " is not part of a ", hf_.architecture,
                       " as this trainer builds it"));
    }
  }
  return absl::OkStatus();
}

absl::Status HfModelDir::ReadTensor(const HfTensor& tensor,
                                    const BufferLayout& layout, float* buffer,
                                    std::vector<char>& scratch) const {
  const Found f = Find(tensor);
  const std::string path = absl::StrCat(name_, "/", f.shard->file);
  const int64_t bytes = f.entry->end - f.entry->begin;
  scratch.resize(static_cast<size_t>(bytes));
  RETURN_IF_ERROR(ReadSafetensorsBytes(f.shard->fd.get(), path, f.shard->header,
                                       *f.entry, scratch.data()));
  const TensorSlice& target = layout.tensor(tensor.target);
  const std::string& dtype = f.entry->dtype;
  const int64_t cols = Columns(tensor);
  float* dst = buffer + target.offset;
  const int64_t count = tensor.rows * cols;
  for (int64_t i = 0; i < count; ++i) {
    const float v = Convert(scratch.data(), dtype, i);
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor ", tensor.name, " holds ", v,
                       " at element ", i, "; weights must be finite"));
    }
    if (tensor.transposed) {
      // Stored [in, out] (row i / cols, column i % cols); ours [out, in].
      const int64_t in = i / cols, out = i % cols;
      dst[out * tensor.shape[0] + in] = v;
    } else {
      dst[tensor.target_row * cols + i] = v;
    }
  }
  return absl::OkStatus();
}

absl::Status HfModelDir::LoadInto(
    const ModelConfig& model,
    const std::vector<CheckpointBuffer>& buffers) const {
  RETURN_IF_ERROR(CheckTensors(model));
  HfModel hf = hf_;
  hf.model = model;
  std::vector<char> scratch;
  for (const CheckpointBuffer& b : buffers) {
    for (const HfTensor& t : HfTensorsOf(hf, b.layout)) {
      RETURN_IF_ERROR(ReadTensor(t, b.layout, b.param, scratch));
    }
    if (b.store_param) RETURN_IF_ERROR(b.store_param());
  }
  return absl::OkStatus();
}

}  // namespace stronghold::core
