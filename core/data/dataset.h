// Training data: a flat sequence of token ids, sampled into fixed-length
// windows deterministically from (seed, global sample index), so the batch of
// any step can be rebuilt exactly (resume, parity between methods).
//
// Sources:
//  - "builtin": an English-like corpus generated in-process (docs/data.md),
//    tokenized byte-level (ids 0..255, so model.vocab must be >= 256);
//  - a token file: flat little-endian uint16 or uint32 ids, read with pread,
//    one sample's window (seq_len + 1 tokens) at a time; the page cache does
//    the rest. Not memory-mapped: a file truncated under a mapping makes the
//    next read of it SIGBUS, which would kill the daemon; a short pread is
//    an error that fails the job instead.
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
#include "core/util/unique_fd.h"

namespace stronghold::core {

class Dataset {
 public:
  // Opens and checks the source: builtin, or the token file at the path
  // data.source (tests and tools; the daemon opens the file inside its data
  // roots and calls OpenFile). A file's size must be a whole number of
  // tokens, it must hold more than seq_len tokens, and every id must be below
  // `vocab`. Errors are INVALID_ARGUMENT naming "data.source".
  static absl::StatusOr<std::unique_ptr<Dataset>> Open(const DataConfig& config,
                                                       int64_t vocab,
                                                       int seq_len);
  // The same for a token file already opened for reading (taken): nothing
  // is looked up by name; config.source only names it in messages and, with
  // token_bytes 0, gives the width by its suffix (".u32": 4, else 2).
  static absl::StatusOr<std::unique_ptr<Dataset>> OpenFile(
      UniqueFd file, const DataConfig& config, int64_t vocab, int seq_len);
  ~Dataset();
  Dataset(const Dataset&) = delete;
  Dataset& operator=(const Dataset&) = delete;

  int64_t num_tokens() const { return num_tokens_; }
  int seq_len() const { return seq_len_; }

  // Writes `rows` samples, [rows, seq_len] each, for global sample indices
  // first_sample .. first_sample+rows-1: inputs are tokens [o, o+seq_len),
  // targets [o+1, o+seq_len+1) at an offset o drawn from (seed, index).
  // DATA_LOSS naming data.source when the token file changed under the job:
  // shorter than at Open() (truncated), or an id no longer below the
  // vocabulary; the job fails, the process goes on.
  absl::Status Fill(uint64_t seed, int64_t first_sample, int rows,
                    int64_t* inputs, int64_t* targets) const;

  // The built-in corpus as text (deterministic; ~1 MiB).
  static std::string BuiltinCorpus();

 private:
  Dataset() = default;
  // Reads `count` tokens from index `first` into `out`, through `scratch`
  // (count * token_bytes_ bytes) for a file: DATA_LOSS when the file holds
  // fewer now than at Open().
  absl::Status ReadTokens(int64_t first, int64_t count, uint8_t* scratch,
                          int64_t* out) const;

  // Constant after Open().
  int seq_len_ = 0;
  int64_t vocab_ = 0;
  int64_t num_tokens_ = 0;
  int token_bytes_ = 1;
  std::string name_;   // data.source, for messages
  std::string owned_;  // the built-in corpus
  UniqueFd file_;      // a token file (invalid for the builtin corpus)
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DATA_DATASET_H_
