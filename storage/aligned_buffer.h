// Heap memory aligned for O_DIRECT I/O (and for registered io_uring
// buffers): what the block devices demand of request buffers.
#ifndef STRONGHOLD_STORAGE_ALIGNED_BUFFER_H_
#define STRONGHOLD_STORAGE_ALIGNED_BUFFER_H_

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace stronghold::storage {

// Owns `bytes` bytes at an `alignment`-aligned address (zero-filled, so that
// padding written to disk is deterministic). Move-only.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(int64_t bytes, int64_t alignment = 4096)
      : bytes_(bytes) {
    const int64_t rounded = (bytes + alignment - 1) / alignment * alignment;
    data_ = static_cast<char*>(
        std::aligned_alloc(alignment, rounded > 0 ? rounded : alignment));
    if (data_ != nullptr) std::memset(data_, 0, rounded);
  }
  AlignedBuffer(AlignedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        bytes_(std::exchange(other.bytes_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(bytes_, other.bytes_);
    return *this;
  }
  ~AlignedBuffer() { std::free(data_); }

  char* data() const { return data_; }  // nullptr if allocation failed
  int64_t size() const { return bytes_; }

 private:
  char* data_ = nullptr;
  int64_t bytes_ = 0;
};

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_ALIGNED_BUFFER_H_
