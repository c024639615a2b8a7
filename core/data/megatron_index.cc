#include "core/data/megatron_index.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/util/checked_math.h"
#include "core/util/status_macros.h"

namespace stronghold::core {
namespace {

constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
// Entries read per pread while streaming the arrays (512 KiB of pointers).
constexpr int64_t kChunkEntries = int64_t{1} << 16;

absl::Status Bad(absl::string_view file, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("data.source: '", file, "': ", what));
}

uint64_t LoadU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int b = 0; b < 8; ++b) v |= static_cast<uint64_t>(p[b]) << (8 * b);
  return v;
}

// Reads exactly `bytes` at `offset`: the size was checked at the start, so
// a short read means the file shrank while it was read.
absl::Status ReadExactly(int fd, absl::string_view name, int64_t offset,
                         int64_t bytes, uint8_t* out) {
  absl::StatusOr<int64_t> got = PreadUpTo(fd, offset, bytes, out);
  if (!got.ok()) return Bad(name, got.status().message());
  if (*got != bytes) {
    return Bad(name, absl::StrFormat("ended at byte %d while %d bytes at %d "
                                     "were read: it changed while being read",
                                     offset + *got, bytes, offset));
  }
  return absl::OkStatus();
}

// One array of `count` little-endian entries of `width` bytes at `offset`,
// decoded a chunk at a time into int64 and handed to `visit(first, values,
// n)`, which returns an error to stop.
template <typename Visit>
absl::Status StreamArray(int fd, absl::string_view name, int64_t offset,
                         int64_t count, TokenFormat width, Visit visit) {
  std::vector<uint8_t> raw(std::min(count, kChunkEntries) * width.bytes);
  std::vector<int64_t> values(std::min(count, kChunkEntries));
  for (int64_t first = 0; first < count; first += kChunkEntries) {
    const int64_t n = std::min(kChunkEntries, count - first);
    RETURN_IF_ERROR(ReadExactly(fd, name, offset + first * width.bytes,
                                n * width.bytes, raw.data()));
    DecodeTokens(raw.data(), n, width, values.data());
    RETURN_IF_ERROR(visit(first, values.data(), n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TokenFormat> MegatronTokenFormat(int dtype_code) {
  switch (dtype_code) {
    case 1:
      return TokenFormat{.bytes = 1, .is_signed = false};  // uint8
    case 2:
      return TokenFormat{.bytes = 1, .is_signed = true};  // int8
    case 3:
      return TokenFormat{.bytes = 2, .is_signed = true};  // int16
    case 4:
      return TokenFormat{.bytes = 4, .is_signed = true};  // int32
    case 5:
      return TokenFormat{.bytes = 8, .is_signed = true};  // int64
    case 8:
      return TokenFormat{.bytes = 2, .is_signed = false};  // uint16
    case 6:
    case 7:
      return absl::InvalidArgumentError(absl::StrFormat(
          "dtype code %d is %s: token ids must be integers (codes 1-5, 8)",
          dtype_code, dtype_code == 6 ? "float64" : "float32"));
    default:
      return absl::InvalidArgumentError(
          absl::StrFormat("unknown dtype code %d (Megatron's are 1-8; token "
                          "ids use the integer codes 1-5 and 8)",
                          dtype_code));
  }
}

absl::StatusOr<MegatronIndex> ReadMegatronIndex(int index_fd,
                                                absl::string_view index_name,
                                                int64_t bin_bytes,
                                                absl::string_view bin_name) {
  struct stat st;
  if (fstat(index_fd, &st) != 0) {
    return Bad(index_name, absl::StrCat("cannot stat: ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) return Bad(index_name, "is not a file");
  const int64_t index_bytes = st.st_size;
  if (index_bytes < kMegatronIndexHeaderBytes) {
    return Bad(index_name,
               absl::StrFormat("has %d bytes, fewer than the %d of an MMIDIDX "
                               "header: not a Megatron dataset index",
                               index_bytes, kMegatronIndexHeaderBytes));
  }
  uint8_t header[kMegatronIndexHeaderBytes];
  RETURN_IF_ERROR(
      ReadExactly(index_fd, index_name, 0, kMegatronIndexHeaderBytes, header));
  if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0) {
    return Bad(index_name,
               "does not start with \"MMIDIDX\\0\\0\": not a Megatron (mmap) "
               "indexed dataset index");
  }
  if (const uint64_t version = LoadU64(header + 9); version != 1) {
    return Bad(
        index_name,
        absl::StrFormat("index version %u; only version 1 is read", version));
  }
  MegatronIndex index;
  index.dtype_code = header[17];
  absl::StatusOr<TokenFormat> format = MegatronTokenFormat(index.dtype_code);
  if (!format.ok()) return Bad(index_name, format.status().message());
  index.format = *format;
  const uint64_t n = LoadU64(header + 18), m = LoadU64(header + 26);
  // 12 bytes per sequence (length + pointer), 8 per document index.
  std::optional<int64_t> need;
  if (n <= INT64_MAX && m <= INT64_MAX) {
    const std::optional<int64_t> seq = CheckedMul(static_cast<int64_t>(n), 12),
                                 doc = CheckedMul(static_cast<int64_t>(m), 8);
    if (seq && doc) need = CheckedAdd(*seq, *doc);
    if (need) need = CheckedAdd(*need, kMegatronIndexHeaderBytes);
  }
  if (!need || *need != index_bytes) {
    return Bad(index_name,
               absl::StrFormat(
                   "has %d bytes, but its counts (%u sequences, %u document "
                   "indices) need %s (header %d + 12 per sequence + 8 per "
                   "document index; multimodal indices are not read)",
                   index_bytes, n, m,
                   need ? absl::StrCat(*need, " bytes") : "more than 2^63",
                   kMegatronIndexHeaderBytes));
  }
  if (m == 0) {
    return Bad(index_name,
               "document count 0: the document index holds at least its "
               "leading 0");
  }
  index.sequences = static_cast<int64_t>(n);
  index.documents = static_cast<int64_t>(m) - 1;

  // Lengths and pointers together: sequence i starts where i-1 ended.
  const int64_t lengths_at = kMegatronIndexHeaderBytes,
                pointers_at = lengths_at + 4 * index.sequences,
                documents_at = pointers_at + 8 * index.sequences;
  const int w = index.format.bytes;
  std::vector<int64_t> lengths(std::min(index.sequences, kChunkEntries));
  RETURN_IF_ERROR(StreamArray(
      index_fd, index_name, lengths_at, index.sequences,
      TokenFormat{.bytes = 4, .is_signed = true},
      [&](int64_t first, const int64_t* v, int64_t count) {
        std::copy(v, v + count, lengths.begin());
        return StreamArray(
            index_fd, index_name, pointers_at + 8 * first, count,
            TokenFormat{.bytes = 8, .is_signed = true},
            [&](int64_t, const int64_t* ptr, int64_t k) -> absl::Status {
              for (int64_t i = 0; i < k; ++i) {
                const int64_t seq = first + i;
                if (lengths[i] < 0) {
                  return Bad(index_name,
                             absl::StrFormat("sequence %d has length %d", seq,
                                             lengths[i]));
                }
                // index.tokens * w is the byte where this sequence must
                // start: it is below bin_bytes (checked below), so no
                // overflow.
                const int64_t expected = index.tokens * w;
                if (ptr[i] != expected) {
                  return Bad(
                      index_name,
                      absl::StrFormat(
                          "sequence %d starts at byte %d of the .bin, not "
                          "at %d where sequence %d ended: the sequences "
                          "must follow each other from byte 0 (as "
                          "Megatron's writer lays them out)",
                          seq, ptr[i], expected, seq - 1));
                }
                index.tokens += lengths[i];  // < 2^31 * 2^63/w: checked next
                const std::optional<int64_t> end = CheckedMul(index.tokens, w);
                if (!end || *end > bin_bytes) {
                  return Bad(index_name,
                             absl::StrFormat(
                                 "sequence %d (length %d at byte %d) ends "
                                 "past the end of '%s' (%d bytes)",
                                 seq, lengths[i], ptr[i], bin_name, bin_bytes));
                }
              }
              return absl::OkStatus();
            });
      }));
  if (index.tokens * w != bin_bytes) {
    return Bad(bin_name,
               absl::StrFormat("has %d bytes, but '%s' describes %d tokens "
                               "of %d bytes (%d bytes): not its index",
                               bin_bytes, index_name, index.tokens, w,
                               index.tokens * w));
  }

  // The document index: from 0 up to n, never decreasing.
  int64_t previous = 0;
  RETURN_IF_ERROR(StreamArray(
      index_fd, index_name, documents_at, index.documents + 1,
      TokenFormat{.bytes = 8, .is_signed = true},
      [&](int64_t first, const int64_t* v, int64_t count) -> absl::Status {
        for (int64_t i = 0; i < count; ++i) {
          const int64_t doc = first + i;
          if ((doc == 0 && v[i] != 0) || v[i] < previous ||
              v[i] > index.sequences) {
            return Bad(
                index_name,
                absl::StrFormat(
                    "document index entry %d is %d: entries go from 0 up "
                    "to the sequence count %d, never decreasing (entry %d "
                    "is %d)",
                    doc, v[i], index.sequences, std::max<int64_t>(doc - 1, 0),
                    previous));
          }
          previous = v[i];
        }
        return absl::OkStatus();
      }));
  if (previous != index.sequences) {
    return Bad(index_name,
               absl::StrFormat("the document index ends at sequence %d, not "
                               "at the sequence count %d",
                               previous, index.sequences));
  }
  return index;
}

}  // namespace stronghold::core
