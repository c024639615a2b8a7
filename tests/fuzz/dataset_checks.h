// What the dataset fuzzers (dataset/, megatron_index/) check of an opened
// Dataset: a refusal is INVALID_ARGUMENT naming data.source; an accepted
// one holds more than seq_len tokens and samples ids in [0, vocab) whose
// targets are the inputs shifted by one.
#ifndef STRONGHOLD_TESTS_FUZZ_DATASET_CHECKS_H_
#define STRONGHOLD_TESTS_FUZZ_DATASET_CHECKS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "core/data/dataset.h"
#include "tests/fuzz/fuzz_util.h"

namespace stronghold::fuzz {

inline void CheckOpenedDataset(
    const absl::StatusOr<std::unique_ptr<core::Dataset>>& dataset, int seq_len,
    int64_t vocab, uint64_t seed, int64_t first_sample) {
  if (!dataset.ok()) {
    FUZZ_CHECK(dataset.status().code() == absl::StatusCode::kInvalidArgument,
               dataset.status().ToString());
    FUZZ_CHECK(absl::StrContains(dataset.status().message(), "data.source"),
               dataset.status().ToString());
    return;
  }
  FUZZ_CHECK((*dataset)->num_tokens() > seq_len, (*dataset)->num_tokens());
  constexpr int kRows = 3;
  std::vector<int64_t> inputs(kRows * seq_len, -1),
      targets(kRows * seq_len, -1);
  const absl::Status filled = (*dataset)->Fill(seed, first_sample, kRows,
                                               inputs.data(), targets.data());
  // The files did not change since Open.
  FUZZ_CHECK(filled.ok(), filled.ToString());
  for (int r = 0; r < kRows; ++r) {
    for (int j = 0; j < seq_len; ++j) {
      const int64_t in = inputs[r * seq_len + j],
                    out = targets[r * seq_len + j];
      FUZZ_CHECK(in >= 0 && in < vocab && out >= 0 && out < vocab, in, " ", out,
                 " vocab ", vocab);
      if (j + 1 < seq_len)
        FUZZ_CHECK(out == inputs[r * seq_len + j + 1], "targets not shifted");
    }
  }
}

}  // namespace stronghold::fuzz

#endif  // STRONGHOLD_TESTS_FUZZ_DATASET_CHECKS_H_
