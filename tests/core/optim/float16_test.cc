// The scalar fp32 <-> bf16/fp16 conversions against independent references:
// LibTorch's c10::BFloat16 / c10::Half (software conversions here, as this
// file is built without -mf16c) and, where the CPU has F16C, the hardware
// instructions the vector paths use.
#include "core/optim/float16.h"

#include <immintrin.h>

#include <bit>
#include <cmath>
#include <cstdint>

#include "c10/util/BFloat16.h"
#include "c10/util/Half.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

bool IsNaN32(uint32_t bits) { return (bits & 0x7fffffffu) > 0x7f800000u; }
bool IsNaN16(uint16_t bits) { return (bits & 0x7fffu) > 0x7c00u; }

uint16_t C10Half(float f) { return c10::Half(f).x; }
uint16_t C10BFloat16(float f) { return c10::BFloat16(f).x; }

void ExpectHalfMatchesC10(float f) {
  const uint16_t ours = HalfFromFloat(f);
  if (std::isnan(f)) {
    EXPECT_TRUE(IsNaN16(ours)) << std::bit_cast<uint32_t>(f);
    EXPECT_EQ(ours & 0x8000, (std::bit_cast<uint32_t>(f) >> 16) & 0x8000);
    return;
  }
  ASSERT_EQ(ours, C10Half(f)) << std::hexfloat << f << " bits 0x" << std::hex
                              << std::bit_cast<uint32_t>(f);
}

TEST(BFloat16Test, RoundsToNearestEvenLikeC10) {
  // Every bf16 value with the low halves that matter: exact, just below,
  // at and just above the tie, and the top.
  for (uint32_t high = 0; high <= 0xffff; ++high) {
    for (uint32_t low :
         {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu}) {
      const uint32_t bits = (high << 16) | low;
      const float f = std::bit_cast<float>(bits);
      const uint16_t ours = BFloat16FromFloat(f);
      if (IsNaN32(bits)) {
        // NaN stays NaN, quiet, with sign and top payload kept.
        ASSERT_EQ(ours, static_cast<uint16_t>((bits >> 16) | 0x40)) << bits;
      } else {
        ASSERT_EQ(ours, C10BFloat16(f)) << std::hex << bits;
      }
    }
  }
}

TEST(BFloat16Test, TiesGoToEven) {
  EXPECT_EQ(BFloat16FromFloat(std::bit_cast<float>(0x3f808000u)),
            0x3f80);  // even below
  EXPECT_EQ(BFloat16FromFloat(std::bit_cast<float>(0x3f818000u)),
            0x3f82);  // odd below
  EXPECT_EQ(BFloat16FromFloat(std::bit_cast<float>(0x7f7f8000u)),
            0x7f80);  // to +inf
  EXPECT_EQ(BFloat16FromFloat(-INFINITY), 0xff80);
  EXPECT_EQ(BFloat16FromFloat(std::bit_cast<float>(0x00018000u)),
            0x0002);  // subnormal
}

TEST(BFloat16Test, WideningIsExact) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    ASSERT_EQ(
        std::bit_cast<uint32_t>(FloatFromBFloat16(static_cast<uint16_t>(h))),
        h << 16);
  }
}

TEST(HalfTest, MatchesC10OnASweepOfAllFloats) {
  // Every 127th bit pattern: 34M values across all exponents, NaNs included.
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 127) {
    ExpectHalfMatchesC10(std::bit_cast<float>(static_cast<uint32_t>(bits)));
  }
}

TEST(HalfTest, MatchesC10AtEveryTieAndItsNeighbours) {
  // The midpoint between consecutive fp16 values (normal and subnormal, and
  // between 65504 and the overflow point 65536), and one fp32 ulp either side.
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const float lo = FloatFromHalf(static_cast<uint16_t>(h));
    const float hi =
        h + 1 < 0x7c00 ? FloatFromHalf(static_cast<uint16_t>(h + 1)) : 65536.0f;
    const float mid = lo + (hi - lo) / 2;
    for (float f :
         {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
      ExpectHalfMatchesC10(f);
      ExpectHalfMatchesC10(-f);
    }
  }
}

TEST(HalfTest, EdgeCases) {
  EXPECT_EQ(HalfFromFloat(65504.0f), 0x7bff);
  EXPECT_EQ(HalfFromFloat(65519.99f), 0x7bff);
  EXPECT_EQ(HalfFromFloat(65520.0f), 0x7c00);  // tie to even = inf
  EXPECT_EQ(HalfFromFloat(-1e10f), 0xfc00);
  EXPECT_EQ(HalfFromFloat(INFINITY), 0x7c00);
  EXPECT_EQ(HalfFromFloat(0x1p-24f), 0x0001);  // smallest subnormal
  EXPECT_EQ(HalfFromFloat(0x1p-25f), 0x0000);  // tie between 0 and 2^-24: even
  EXPECT_EQ(HalfFromFloat(0x1.8p-24f), 0x0002);  // tie between 1 and 2: even
  EXPECT_EQ(HalfFromFloat(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
  EXPECT_EQ(HalfFromFloat(-0.0f), 0x8000);
  EXPECT_EQ(HalfFromFloat(0x1.ffcp-15f), 0x0400);  // rounds up to 2^-14, normal
  EXPECT_EQ(HalfFromFloat(std::bit_cast<float>(0x7fc12345u)), 0x7e09);
}

TEST(HalfTest, WideningMatchesC10) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float ours = FloatFromHalf(bits);
    const float theirs =
        static_cast<float>(c10::Half(bits, c10::Half::from_bits()));
    if (IsNaN16(bits)) {
      ASSERT_TRUE(std::isnan(ours)) << h;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(ours), std::bit_cast<uint32_t>(theirs))
          << h;
    }
  }
}

// The F16C instructions the AVX2 and AVX-512 paths use. The target
// attribute keeps F16C code out of the rest of this file.
__attribute__((target("f16c"))) uint16_t HardwareHalf(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float HardwareFloat(uint16_t h) {
  return _cvtsh_ss(h);
}

TEST(HalfTest, BitIdenticalToF16CIncludingNaNs) {
  if (!__builtin_cpu_supports("f16c")) {
    GTEST_SKIP() << "this CPU lacks F16C; nothing to compare with";
  }
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 251) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(bits));
    ASSERT_EQ(HalfFromFloat(f), HardwareHalf(f)) << std::hex << bits;
  }
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    ASSERT_EQ(std::bit_cast<uint32_t>(FloatFromHalf(bits)),
              std::bit_cast<uint32_t>(HardwareFloat(bits)))
        << std::hex << h;
  }
}

}  // namespace
}  // namespace stronghold::core
