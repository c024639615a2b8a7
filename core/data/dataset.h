// Training data: a flat sequence of token ids, sampled into fixed-length
// windows deterministically from (seed, global sample index), so the batch of
// any step can be rebuilt exactly (resume, parity between methods).
//
// Sources:
//  - "builtin": an English-like corpus generated in-process (docs/data.md),
//    tokenized byte-level (ids 0..255, so model.vocab must be >= 256);
//  - a token file: flat little-endian uint16 or uint32 ids, memory-mapped.
//
// Thread safety: const methods may be called concurrently.
#ifndef STRONGHOLD_CORE_DATA_DATASET_H_
#define STRONGHOLD_CORE_DATA_DATASET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/plan/job_config.h"
#include "core/util/mix64.h"

namespace stronghold::core {

class Dataset {
 public:
  // Opens and checks the source: the file's size must be a whole number of
  // tokens, it must hold more than seq_len tokens, and every id must be below
  // `vocab`. Errors are INVALID_ARGUMENT naming "data.source".
  static absl::StatusOr<std::unique_ptr<Dataset>> Open(const DataConfig& config,
                                                       int64_t vocab,
                                                       int seq_len);
  ~Dataset();
  Dataset(const Dataset&) = delete;
  Dataset& operator=(const Dataset&) = delete;

  int64_t num_tokens() const { return num_tokens_; }
  int seq_len() const { return seq_len_; }

  // Writes `rows` samples, [rows, seq_len] each, for global sample indices
  // first_sample .. first_sample+rows-1: inputs are tokens [o, o+seq_len),
  // targets [o+1, o+seq_len+1) at an offset o drawn from (seed, index).
  void Fill(uint64_t seed, int64_t first_sample, int rows, int64_t* inputs,
            int64_t* targets) const;

  // The built-in corpus as text (deterministic; ~1 MiB).
  static std::string BuiltinCorpus();

 private:
  Dataset() = default;
  int64_t Token(int64_t i) const;

  // Constant after Open().
  int seq_len_ = 0;
  int64_t num_tokens_ = 0;
  int token_bytes_ = 1;
  std::string owned_;               // the built-in corpus
  const uint8_t* data_ = nullptr;   // owned_ or the mapping
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DATA_DATASET_H_
