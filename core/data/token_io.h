// How token ids are stored in a file and read back: little-endian integers
// of 1, 2, 4 or 8 bytes, signed or not (a flat token file is unsigned 16 or
// 32 bit; a Megatron .bin is whatever its .idx's dtype code says), read with
// pread so that a file shrinking under a reader is an error, never a SIGBUS
// (dataset.h says why nothing here is memory-mapped).
#ifndef STRONGHOLD_CORE_DATA_TOKEN_IO_H_
#define STRONGHOLD_CORE_DATA_TOKEN_IO_H_

#include <cstdint>

#include "absl/status/statusor.h"

namespace stronghold::core {

struct TokenFormat {
  int bytes = 2;           // 1, 2, 4 or 8
  bool is_signed = false;  // two's complement when true
};

// Decodes `count` ids of `format` from `bytes` into `out`. Signed ids keep
// their sign (callers refuse negative ones); unsigned 64-bit ids above
// INT64_MAX come out negative and are refused the same way.
void DecodeTokens(const uint8_t* bytes, int64_t count, TokenFormat format,
                  int64_t* out);

// Reads up to `bytes` bytes at `offset` of `fd` into `out`, retrying short
// reads and EINTR; returns how many were read (fewer only at the end of the
// file). An error carries strerror and errno; the caller adds the file name.
absl::StatusOr<int64_t> PreadUpTo(int fd, int64_t offset, int64_t bytes,
                                  uint8_t* out);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DATA_TOKEN_IO_H_
