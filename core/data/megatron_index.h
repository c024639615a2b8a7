// The index (.idx) of a Megatron-LM indexed dataset ("MMIDIDX", version 1),
// the format Megatron's preprocess_data.py, NeMo and deploy/tools/
// prepare_data.py write beside the tokens (.bin). Layout, little-endian:
//
//   9 bytes  magic "MMIDIDX\0\0"
//   u64      version (1)
//   u8       dtype code of the .bin's ids: 1 uint8, 2 int8, 3 int16,
//            4 int32, 5 int64, 6 float64, 7 float32, 8 uint16
//   u64      sequence_count n
//   u64      document_count m (document boundaries + 1: a leading 0)
//   i32[n]   sequence lengths, in tokens
//   i64[n]   sequence pointers, byte offsets into the .bin
//   i64[m]   document index: the first sequence of each document, then n
//
// The file is hostile (a client names it): every count and pointer is
// checked against the file sizes with overflow-checked arithmetic before
// anything is read by it, and the index is streamed in chunks, never held
// whole (a corpus of 10^9 documents has a 20 GB index).
//
// What the daemon trains on is the .bin read as one token stream, exactly
// like a flat token file (documents are already separated by the
// end-of-text id in it), so the index is accepted only when its sequences
// tile the .bin from byte 0 to its end in order, as every Megatron writer
// lays them out; a non-contiguous or multimodal index (trailing sequence
// modes) is refused naming the first sequence or byte that does not fit.
#ifndef STRONGHOLD_CORE_DATA_MEGATRON_INDEX_H_
#define STRONGHOLD_CORE_DATA_MEGATRON_INDEX_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/data/token_io.h"

namespace stronghold::core {

// Bytes before the sequence lengths.
inline constexpr int64_t kMegatronIndexHeaderBytes = 34;

struct MegatronIndex {
  int dtype_code = 0;
  TokenFormat format;     // from dtype_code
  int64_t sequences = 0;  // n
  int64_t documents = 0;  // m - 1
  int64_t tokens = 0;     // the sum of the sequence lengths
};

// The ids' format of a Megatron dtype code; INVALID_ARGUMENT naming the code
// for a float type or an unknown code.
absl::StatusOr<TokenFormat> MegatronTokenFormat(int dtype_code);

// Reads and checks the index open as `index_fd` against the .bin of
// `bin_bytes` bytes. `index_name` and `bin_name` only label messages, which
// are INVALID_ARGUMENT starting "data.source: " and name the file, the
// entry and the limit it broke.
absl::StatusOr<MegatronIndex> ReadMegatronIndex(int index_fd,
                                                absl::string_view index_name,
                                                int64_t bin_bytes,
                                                absl::string_view bin_name);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DATA_MEGATRON_INDEX_H_
