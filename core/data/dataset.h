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
//  - a Megatron indexed dataset, named by its index "PREFIX.idx" with the
//    tokens in "PREFIX.bin" beside it (megatron_index.h): the .bin is read
//    as one token stream like a flat file, in the .idx's dtype. The suffix
//    decides: ".bin" alone still means a flat uint16 file, as it always has.
//
// Every format is sampled the same way, so a job's batches depend only on
// (seed, sample index) and the tokens, and a checkpoint's next_sample is
// its whole data position.
//
// Thread safety: const methods may be called concurrently.
#ifndef STRONGHOLD_CORE_DATA_DATASET_H_
#define STRONGHOLD_CORE_DATA_DATASET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/data/token_io.h"
#include "core/plan/job_config.h"
#include "core/util/mix64.h"
#include "core/util/unique_fd.h"

namespace stronghold::core {

// The path of a Megatron index's tokens (DataConfig::indexed()): the same
// path with ".bin" for ".idx".
std::string IndexedBinPath(absl::string_view index_source);

// data.source's files, opened by the caller (the daemon, inside its data
// roots): the token file or index, and for an index its .bin.
struct DataFiles {
  UniqueFd file;  // invalid: open data.source by path (or builtin)
  UniqueFd bin;   // the .bin of an index; invalid otherwise
};

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
  // A Megatron indexed dataset already opened: its index (config.source)
  // and .bin. The index is checked against the .bin (megatron_index.h),
  // then every id as for a token file: negative or not below `vocab` is
  // INVALID_ARGUMENT naming the .bin and model.vocab.
  static absl::StatusOr<std::unique_ptr<Dataset>> OpenIndexed(
      UniqueFd index, UniqueFd bin, const DataConfig& config, int64_t vocab,
      int seq_len);
  // Whichever of the above `files` and config.source call for: the one
  // entry for callers holding descriptors (the daemon's admission and the
  // trainer).
  static absl::StatusOr<std::unique_ptr<Dataset>> OpenFiles(
      DataFiles files, const DataConfig& config, int64_t vocab, int seq_len);
  ~Dataset();
  Dataset(const Dataset&) = delete;
  Dataset& operator=(const Dataset&) = delete;

  int64_t num_tokens() const { return num_tokens_; }
  // How the ids are stored (1 byte for the builtin corpus).
  TokenFormat format() const { return format_; }
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
  // Checks the size against seq_len and every id against the vocabulary,
  // a chunk at a time (the file may be far larger than memory).
  absl::Status CheckTokens() const;
  // Reads `count` tokens from index `first` into `out`, through `scratch`
  // (count * format_.bytes bytes) for a file: DATA_LOSS when the file holds
  // fewer now than at Open().
  absl::Status ReadTokens(int64_t first, int64_t count, uint8_t* scratch,
                          int64_t* out) const;

  // Constant after Open().
  int seq_len_ = 0;
  int64_t vocab_ = 0;
  int64_t num_tokens_ = 0;
  TokenFormat format_{.bytes = 1, .is_signed = false};
  std::string name_;   // the token file (an index's .bin), for messages
  std::string owned_;  // the built-in corpus
  UniqueFd file_;      // a token file (invalid for the builtin corpus)
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DATA_DATASET_H_
