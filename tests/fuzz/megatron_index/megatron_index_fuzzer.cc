// A Megatron indexed dataset (.idx + .bin) from arbitrary bytes through
// core/data: ReadMegatronIndex, Dataset::OpenIndexed (which checks the
// index against the .bin and every id against the vocabulary) and Fill.
// Input: byte 0 chooses seq_len (1..64), bytes 1-4 the vocabulary
// (core::ValidateJobConfig's range), bytes 5-6 the index's length L
// (little-endian); then L bytes of index and the rest is the .bin. Both go
// to memory files handed over as descriptors, as the daemon hands them.
// Besides the sanitizers it checks that an accepted index accounts for
// every byte of both files, that an error is INVALID_ARGUMENT naming
// data.source, and that every sampled id is in [0, vocab) with the targets
// the inputs shifted by one.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/data/dataset.h"
#include "core/data/megatron_index.h"
#include "core/plan/job_config.h"
#include "tests/fuzz/dataset_checks.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr size_t kConfigBytes = 7;

stronghold::core::UniqueFd MemoryFile(const uint8_t* data, size_t size) {
  stronghold::core::UniqueFd fd(memfd_create("fuzz", MFD_CLOEXEC));
  FUZZ_CHECK(fd.valid(), "memfd_create");
  for (size_t done = 0; done < size;) {
    const ssize_t n = write(fd.get(), data + done, size - done);
    FUZZ_CHECK(n > 0, "write to a memfd");
    done += n;
  }
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stronghold;
  if (size < kConfigBytes) return 0;
  const int seq_len = 1 + data[0] % 64;
  uint32_t vocab_bits = 0;
  std::memcpy(&vocab_bits, data + 1, 4);
  const int64_t vocab = 2 + vocab_bits % (core::kMaxVocab - 1);
  const size_t index_bytes =
      std::min<size_t>(data[5] | (data[6] << 8), size - kConfigBytes);
  const uint8_t* index = data + kConfigBytes;
  const uint8_t* bin = index + index_bytes;
  const size_t bin_bytes = size - kConfigBytes - index_bytes;

  // The parser alone: an accepted index accounts for both files exactly.
  {
    core::UniqueFd fd = MemoryFile(index, index_bytes);
    absl::StatusOr<core::MegatronIndex> parsed = core::ReadMegatronIndex(
        fd.get(), "f.idx", static_cast<int64_t>(bin_bytes), "f.bin");
    if (parsed.ok()) {
      FUZZ_CHECK(core::kMegatronIndexHeaderBytes + 12 * parsed->sequences +
                         8 * (parsed->documents + 1) ==
                     static_cast<int64_t>(index_bytes),
                 "index size");
      FUZZ_CHECK(parsed->tokens * parsed->format.bytes ==
                     static_cast<int64_t>(bin_bytes),
                 "bin size");
    } else {
      FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument,
                 parsed.status().ToString());
      FUZZ_CHECK(absl::StrContains(parsed.status().message(), "data.source"),
                 parsed.status().ToString());
    }
  }

  core::DataConfig config;
  config.source = "fuzz/f.idx";
  absl::StatusOr<std::unique_ptr<core::Dataset>> dataset =
      core::Dataset::OpenIndexed(MemoryFile(index, index_bytes),
                                 MemoryFile(bin, bin_bytes), config, vocab,
                                 seq_len);
  fuzz::CheckOpenedDataset(dataset, seq_len, vocab, /*seed=*/vocab_bits,
                           /*first_sample=*/data[0]);
  return 0;
}
