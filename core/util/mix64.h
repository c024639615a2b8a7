// splitmix64's finalizer: a fast, well-mixed 64-bit hash, the counter-based
// randomness behind data sampling and weight initialisation (so any sample
// or weight can be drawn on its own, in any order, with the same result).
#ifndef STRONGHOLD_CORE_UTIL_MIX64_H_
#define STRONGHOLD_CORE_UTIL_MIX64_H_

#include <cstdint>

namespace stronghold::core {

inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_UTIL_MIX64_H_
