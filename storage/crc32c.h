// CRC32C (Castagnoli, the iSCSI/ext4/leveldb polynomial 0x1EDC6F41) of byte
// ranges. The NVMe tier stores one per block beside the data and checks it on
// every read, so a flipped bit, a torn or a lost write is an error instead of
// silently wrong weights.
//
// Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at
// run time, so one binary serves every x86-64 machine) and a table otherwise.
// All functions are thread-safe and pure.
#ifndef STRONGHOLD_STORAGE_CRC32C_H_
#define STRONGHOLD_STORAGE_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace stronghold::storage::crc32c {

// The CRC32C of data[0, n) appended to a range whose CRC32C is `crc`:
// Extend(Value(a), b) == Value(a + b).
uint32_t Extend(uint32_t crc, const void* data, size_t n);

// The CRC32C of data[0, n). Value("123456789", 9) == 0xE3069283.
inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }

// Whether Extend() uses the SSE4.2 instruction on this machine.
bool IsHardwareAccelerated();

namespace internal {
// The two implementations behind Extend(), exposed so tests can check both
// against the known vectors and each other. ExtendSse42 must only be called
// when IsHardwareAccelerated().
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n);
uint32_t ExtendSse42(uint32_t crc, const void* data, size_t n);
}  // namespace internal

}  // namespace stronghold::storage::crc32c

#endif  // STRONGHOLD_STORAGE_CRC32C_H_
