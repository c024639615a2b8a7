#include "storage/aligned_buffer.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace stronghold::storage {

namespace {
constexpr int64_t kHugePageBytes = 2 << 20;
}  // namespace

AlignedBuffer::AlignedBuffer(int64_t bytes, int64_t alignment,
                             HugePages huge_pages)
    : bytes_(bytes) {
  const bool huge =
      huge_pages == HugePages::kIfLarge && bytes >= kHugePageBytes;
  if (huge) alignment = std::max(alignment, kHugePageBytes);
  const int64_t rounded = std::max<int64_t>(
      (bytes + alignment - 1) / alignment * alignment, alignment);
  data_ = static_cast<char*>(std::aligned_alloc(alignment, rounded));
  if (data_ == nullptr) return;
  // Advice only: without THP support the buffer simply stays on 4 KiB pages.
  if (huge) madvise(data_, rounded, MADV_HUGEPAGE);
  std::memset(data_, 0, rounded);
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

}  // namespace stronghold::storage
