#include "core/data/token_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace stronghold::core {

void DecodeTokens(const uint8_t* bytes, int64_t count, TokenFormat format,
                  int64_t* out) {
  const int w = format.bytes;
  for (int64_t i = 0; i < count; ++i, bytes += w) {
    uint64_t v = 0;
    for (int b = 0; b < w; ++b) v |= static_cast<uint64_t>(bytes[b]) << (8 * b);
    if (format.is_signed && w < 8 && (v >> (8 * w - 1)) != 0) {
      v |= ~uint64_t{0} << (8 * w);  // sign-extend
    }
    // Two's complement conversion (defined since C++20).
    out[i] = static_cast<int64_t>(v);
  }
}

absl::StatusOr<int64_t> PreadUpTo(int fd, int64_t offset, int64_t bytes,
                                  uint8_t* out) {
  int64_t got = 0;
  while (got < bytes) {
    const ssize_t n = pread(fd, out + got, bytes - got, offset + got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      return absl::DataLossError(
          absl::StrFormat("cannot read %d bytes at offset %d: %s (errno %d)",
                          bytes, offset, strerror(err), err));
    }
    if (n == 0) break;
    got += n;
  }
  return got;
}

}  // namespace stronghold::core
