// A token file from arbitrary bytes through core/data's Dataset: Open (which
// checks the file against the job) and Fill (which samples windows from it).
// The first 14 bytes of the input choose what a validated job could ask for
// (core::ValidateJobConfig's ranges: token_bytes 0, 2 or 4, and the file
// name that decides the width when it is 0; seq_len; vocab; the seed and
// first sample), the rest is the file. Besides the sanitizers it checks that
// every sampled id is below the vocabulary and that targets are the inputs
// shifted by one.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/plan/job_config.h"
#include "tests/fuzz/dataset_checks.h"
#include "tests/fuzz/fuzz_util.h"

namespace {
constexpr size_t kConfigBytes = 14;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stronghold;
  if (size < kConfigBytes) return 0;
  core::DataConfig config;
  static constexpr int kWidths[] = {0, 2, 4};
  static constexpr const char* kSuffixes[] = {".u16", ".u32", ".bin"};
  config.token_bytes = kWidths[data[0] % 3];
  const char* suffix = kSuffixes[(data[0] / 3) % 3];
  const int seq_len = 1 + data[1] % 64;
  uint32_t vocab_bits = 0;
  std::memcpy(&vocab_bits, data + 2, 4);
  const int64_t vocab =
      2 + vocab_bits % (core::kMaxVocab - 1);  // [2, kMaxVocab]
  uint64_t seed = 0;
  std::memcpy(&seed, data + 6, 8);
  const absl::string_view file(
      reinterpret_cast<const char*>(data) + kConfigBytes, size - kConfigBytes);
  config.source = fuzz::WriteScratchFile(file, suffix);

  absl::StatusOr<std::unique_ptr<core::Dataset>> dataset =
      core::Dataset::Open(config, vocab, seq_len);
  fuzz::CheckOpenedDataset(dataset, seq_len, vocab, seed,
                           /*first_sample=*/static_cast<int64_t>(seed >> 1));
  return 0;
}
