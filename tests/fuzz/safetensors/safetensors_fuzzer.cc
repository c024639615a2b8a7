// A whole safetensors file from arbitrary bytes, through every reader of
// core/checkpoint/safetensors: the header, each F32 tensor alone, and the
// streamed load of all F32 tensors into buffers (ReadSafetensorsInto, with
// `done` hooks). Besides the sanitizers it checks what the readers promise:
// a tensor read alone has its shape's elements, a streamed load either fails
// or calls every hook once and returns the SHA-256 of the whole file, and
// every refusal is DATA_LOSS or INVALID_ARGUMENT naming the file.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/checkpoint/safetensors.h"
#include "core/util/sha256.h"
#include "tests/fuzz/fuzz_util.h"

namespace stronghold::fuzz {
namespace {

void CheckRefusal(const absl::Status& s, const std::string& path) {
  FUZZ_CHECK(s.code() == absl::StatusCode::kDataLoss ||
                 s.code() == absl::StatusCode::kInvalidArgument ||
                 s.code() == absl::StatusCode::kNotFound,
             s.ToString());
  FUZZ_CHECK(absl::StrContains(s.message(), path), s.ToString());
}

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;  // the header's bytes were checked, so no overflow
  return n;
}

}  // namespace
}  // namespace stronghold::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stronghold;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::string path = fuzz::WriteScratchFile(bytes, ".safetensors");
  absl::StatusOr<core::SafetensorsFile> file =
      core::ReadSafetensorsHeader(path);
  if (!file.ok()) {
    fuzz::CheckRefusal(file.status(), path);
    return 0;
  }
  FUZZ_CHECK(
      file->data_offset >= 8 && file->data_offset <= static_cast<int64_t>(size),
      "");

  // In file order, as a streamed load with hooks needs.
  std::vector<std::pair<int64_t, std::string>> order;
  for (const auto& [name, entry] : file->tensors)
    order.emplace_back(entry.begin, name);
  std::sort(order.begin(), order.end());
  std::vector<core::SafetensorsTarget> targets;
  std::vector<std::vector<float>> buffers;
  buffers.reserve(file->tensors.size());
  for (const auto& [begin, name] : order) {
    const core::SafetensorsEntry& entry = file->tensors.at(name);
    FUZZ_CHECK(entry.begin >= 0 && entry.begin <= entry.end &&
                   file->data_offset + entry.end <= static_cast<int64_t>(size),
               name);
    absl::StatusOr<std::vector<float>> values =
        core::ReadSafetensorsTensor(path, *file, name);
    if (entry.dtype != "F32") {
      FUZZ_CHECK(!values.ok(), name, " is ", entry.dtype, " yet read as F32");
      continue;
    }
    FUZZ_CHECK(values.ok(), name, ": ", values.status().ToString());
    FUZZ_CHECK(static_cast<int64_t>(values->size()) == fuzz::Numel(entry.shape),
               name);
    buffers.emplace_back(values->size());
    targets.push_back(
        {.name = name, .shape = entry.shape, .data = buffers.back().data()});
  }
  if (targets.size() != file->tensors.size())
    return 0;  // ReadSafetensorsInto loads F32 only

  int done = 0;
  for (core::SafetensorsTarget& t : targets) {
    t.done = [&done] {
      ++done;
      return absl::OkStatus();
    };
  }
  absl::StatusOr<std::string> digest = core::ReadSafetensorsInto(path, targets);
  if (!digest.ok()) {
    fuzz::CheckRefusal(digest.status(), path);
    return 0;
  }
  FUZZ_CHECK(done == static_cast<int>(targets.size()), done, " hooks of ",
             targets.size());
  FUZZ_CHECK(*digest == core::Sha256Hex(std::string(bytes)),
             "the digest is not the file's");
  return 0;
}
