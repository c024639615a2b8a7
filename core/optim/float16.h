// Scalar conversions between fp32 and the two 16-bit formats of the working
// copy and of gradients: bfloat16 and IEEE binary16 (fp16).
//
// fp32 -> 16 bits rounds to nearest, ties to even; fp16 keeps subnormals and
// overflows to infinity. NaN stays NaN with its sign, the quiet bit set and
// the top of its payload kept: this is what x86's VCVTPS2PH does, so the
// scalar and vector optimizer paths produce identical bits. 16 bits -> fp32
// is exact.
//
// These are ALWAYS_INLINE on purpose: the header is compiled into translation
// units built with different -m flags (scalar, AVX2, AVX-512). An out-of-line
// copy of an ordinary inline function could be emitted from the AVX-512 unit
// and picked by the linker for every caller, which would then fault on a CPU
// without AVX-512. Forced inlining keeps each caller's code in its own unit.
#ifndef STRONGHOLD_CORE_OPTIM_FLOAT16_H_
#define STRONGHOLD_CORE_OPTIM_FLOAT16_H_

#include <bit>
#include <cstdint>

#include "absl/base/attributes.h"

namespace stronghold::core {

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint16_t BFloat16FromFloat(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {  // NaN: quiet it, keep payload top
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  }
  // Adding 0x7fff plus the lowest kept bit rounds half-way cases to even; a
  // carry into the exponent is the correct result (up to infinity).
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline float FloatFromBFloat16(uint16_t value) {
  return std::bit_cast<float>(static_cast<uint32_t>(value) << 16);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint16_t HalfFromFloat(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) {  // NaN
    return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  }
  // 65520 = 0x477ff000 is half-way between fp16's largest finite value 65504
  // and the next step 65536; ties-to-even sends it (and anything above,
  // infinity included) to infinity.
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (abs >= 0x38800000u) {  // >= 2^-14: a normal fp16
    // Round away the low 13 mantissa bits to nearest-even, then rebias the
    // exponent from 127 to 15 (subtract 112 << 23). A mantissa carry moves
    // into the exponent, which is again the correctly rounded value.
    const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return static_cast<uint16_t>(sign | ((rounded - (112u << 23)) >> 13));
  }
  // Subnormal fp16 (or zero): adding 0.5f, whose ulp is 2^-24 (fp16's
  // subnormal step), lets the FPU round to nearest-even in the right place;
  // the low bits of the sum are then the fp16 mantissa (0x400 means the
  // value rounded up to the smallest normal, also the right encoding).
  const float shifted = std::bit_cast<float>(abs) + 0.5f;
  return static_cast<uint16_t>(
      sign | (std::bit_cast<uint32_t>(shifted) - 0x3f000000u));
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline float FloatFromHalf(uint16_t value) {
  const uint32_t sign = static_cast<uint32_t>(value & 0x8000u) << 16;
  const uint32_t exponent = (value >> 10) & 0x1fu;
  const uint32_t mantissa = value & 0x3ffu;
  if (exponent ==
      0x1f) {  // inf or NaN; NaN comes back quiet, as VCVTPH2PS does
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13) |
                                (mantissa != 0 ? 0x400000u : 0u));
  }
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in fp32
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(magnitude));
  }
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) |
                              (mantissa << 13));
}

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_OPTIM_FLOAT16_H_
