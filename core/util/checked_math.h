// Overflow-checked int64 arithmetic for sizes derived from a spec or a file
// (element counts, bytes). A spec is hostile input: its fields are bounded
// one by one, but their products need not fit in 64 bits, and a wrapped
// size once made a plan "fit" with a negative byte count.
//
// Checked*: nullopt on overflow, for code that reports it (naming the
// fields). Saturating*: INT64_MAX (or INT64_MIN) on overflow, for sums that
// are compared against budgets afterwards: a saturated size never fits.
#ifndef STRONGHOLD_CORE_UTIL_CHECKED_MATH_H_
#define STRONGHOLD_CORE_UTIL_CHECKED_MATH_H_

#include <cstdint>
#include <limits>
#include <optional>

namespace stronghold::core {

inline std::optional<int64_t> CheckedMul(int64_t a, int64_t b) {
  int64_t out;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

inline std::optional<int64_t> CheckedAdd(int64_t a, int64_t b) {
  int64_t out;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

inline int64_t SaturatingMul(int64_t a, int64_t b) {
  int64_t out;
  if (!__builtin_mul_overflow(a, b, &out)) return out;
  return (a < 0) != (b < 0) ? std::numeric_limits<int64_t>::min()
                            : std::numeric_limits<int64_t>::max();
}

inline int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t out;
  if (!__builtin_add_overflow(a, b, &out)) return out;
  return b < 0 ? std::numeric_limits<int64_t>::min()
               : std::numeric_limits<int64_t>::max();
}

// The product of all `factors`, saturating.
inline int64_t SaturatingProduct(std::initializer_list<int64_t> factors) {
  int64_t out = 1;
  for (int64_t f : factors) out = SaturatingMul(out, f);
  return out;
}

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_UTIL_CHECKED_MATH_H_
