#include "storage/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace stronghold::storage::crc32c {
namespace {

// Reflected Castagnoli polynomial.
constexpr uint32_t kPolynomial = 0x82F63B78;

// Slicing-by-8 tables: kTables[k][b] is the CRC of byte b followed by k zero
// bytes, so eight bytes can be folded with eight independent look-ups.
struct Tables {
  uint32_t t[8][256];
};

constexpr Tables MakeTables() {
  Tables tables{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t crc = b;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc >> 1) ^ ((crc & 1) ? kPolynomial : 0);
    }
    tables.t[0][b] = crc;
  }
  for (int k = 1; k < 8; ++k) {
    for (uint32_t b = 0; b < 256; ++b) {
      const uint32_t prev = tables.t[k - 1][b];
      tables.t[k][b] = (prev >> 8) ^ tables.t[0][prev & 0xFF];
    }
  }
  return tables;
}

constexpr Tables kTables = MakeTables();

bool DetectSse42() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("sse4.2");
#else
  return false;
#endif
}

const bool kHaveSse42 = DetectSse42();

// The crc32 instruction has a latency of 3 cycles and a throughput of one
// per cycle: three independent streams over adjacent kStream-byte blocks
// keep it busy, and their registers are joined with the linearity of the
// CRC: running register r over n zero bytes multiplies it by x^(8n) mod P.
constexpr size_t kStream = 8192;

// a * b mod P, in the reflected bit order of the CRC register (bit 31 is
// x^0).
constexpr uint32_t MultModP(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
    if (a & m) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPolynomial : b >> 1;
  }
  return product;
}

// Tables that multiply a register by x^(8 * kStream): the product is linear
// in the register, so it is the XOR of one entry per register byte.
struct ShiftTables {
  uint32_t t[4][256];
};

constexpr ShiftTables MakeShiftTables() {
  uint32_t x = 1u << 30;  // x^1
  for (size_t bits = 1; bits < 8 * kStream; bits *= 2)
    x = MultModP(x, x);  // x^(8 kStream)
  ShiftTables tables{};
  for (int k = 0; k < 4; ++k) {
    for (uint32_t b = 0; b < 256; ++b)
      tables.t[k][b] = MultModP(x, b << (8 * k));
  }
  return tables;
}

constexpr ShiftTables kShift = MakeShiftTables();
static_assert((8 * kStream & (8 * kStream - 1)) == 0,
              "the squaring above needs a power of 2");

uint32_t ShiftOverStream(uint32_t crc) {
  return kShift.t[0][crc & 0xFF] ^ kShift.t[1][(crc >> 8) & 0xFF] ^
         kShift.t[2][(crc >> 16) & 0xFF] ^ kShift.t[3][crc >> 24];
}

}  // namespace

namespace internal {

uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);  // little-endian load (x86-64, aarch64)
    const uint32_t lo = static_cast<uint32_t>(word) ^ c;
    const uint32_t hi = static_cast<uint32_t>(word >> 32);
    c = kTables.t[7][lo & 0xFF] ^ kTables.t[6][(lo >> 8) & 0xFF] ^
        kTables.t[5][(lo >> 16) & 0xFF] ^ kTables.t[4][lo >> 24] ^
        kTables.t[3][hi & 0xFF] ^ kTables.t[2][(hi >> 8) & 0xFF] ^
        kTables.t[1][(hi >> 16) & 0xFF] ^ kTables.t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = (c >> 8) ^ kTables.t[0][(c ^ *p++) & 0xFF];
  return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc,
                                                       const void* data,
                                                       size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t c = ~crc;
  // Byte steps up to 8-byte alignment, then whole words.
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --n;
  }
  // Three streams while three whole blocks remain.
  while (n >= 3 * kStream) {
    uint64_t c1 = 0, c2 = 0;
    for (size_t i = 0; i < kStream; i += 8) {
      uint64_t w0, w1, w2;
      std::memcpy(&w0, p + i, 8);
      std::memcpy(&w1, p + kStream + i, 8);
      std::memcpy(&w2, p + 2 * kStream + i, 8);
      c = _mm_crc32_u64(c, w0);
      c1 = _mm_crc32_u64(c1, w1);
      c2 = _mm_crc32_u64(c2, w2);
    }
    c = ShiftOverStream(ShiftOverStream(static_cast<uint32_t>(c)) ^
                        static_cast<uint32_t>(c1)) ^
        static_cast<uint32_t>(c2);
    p += 3 * kStream;
    n -= 3 * kStream;
  }
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
  return ~static_cast<uint32_t>(c);
}
#else
uint32_t ExtendSse42(uint32_t crc, const void* data, size_t n) {
  return ExtendPortable(crc, data, n);
}
#endif

}  // namespace internal

uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  return kHaveSse42 ? internal::ExtendSse42(crc, data, n)
                    : internal::ExtendPortable(crc, data, n);
}

bool IsHardwareAccelerated() { return kHaveSse42; }

}  // namespace stronghold::storage::crc32c
