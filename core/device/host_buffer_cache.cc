#include "core/device/host_buffer_cache.h"

#include <algorithm>
#include <utility>

#include "glog/logging.h"

namespace stronghold::core {

HostBufferCache::HostBufferCache(AllocateFn allocate, FreeFn free,
                                 int64_t max_idle_bytes)
    : allocate_(std::move(allocate)),
      free_(std::move(free)),
      max_idle_bytes_(max_idle_bytes) {}

HostBufferCache::~HostBufferCache() {
  absl::MutexLock lock(&mu_);
  LOG_IF(ERROR, !in_use_.empty())
      << in_use_.size() << " host buffers still in use";
  FreeIdleLocked();
}

int64_t HostBufferCache::SizeClass(int64_t bytes) {
  const int64_t unit =
      bytes < (int64_t{1} << 20) ? int64_t{4} << 10 : int64_t{2} << 20;
  return (std::max<int64_t>(bytes, 1) + unit - 1) / unit * unit;
}

absl::StatusOr<void*> HostBufferCache::Allocate(int64_t bytes) {
  const int64_t size = SizeClass(bytes);
  absl::MutexLock lock(&mu_);
  if (auto it = idle_.find(size); it != idle_.end()) {
    void* p = it->second;
    idle_.erase(it);
    in_use_[p] = size;
    stats_.idle_bytes -= size;
    stats_.in_use_bytes += size;
    ++stats_.reuses;
    return p;
  }
  absl::StatusOr<void*> p = allocate_(size);
  if (!p.ok() && !idle_.empty()) {
    // Other sizes' idle blocks hold the memory this one needs.
    FreeIdleLocked();
    p = allocate_(size);
  }
  if (!p.ok()) return p.status();
  in_use_[*p] = size;
  stats_.in_use_bytes += size;
  ++stats_.allocations;
  return *p;
}

void HostBufferCache::Release(void* p) {
  if (p == nullptr) return;
  absl::MutexLock lock(&mu_);
  auto it = in_use_.find(p);
  CHECK(it != in_use_.end())
      << "HostBufferCache::Release of a block it did not allocate";
  const int64_t size = it->second;
  in_use_.erase(it);
  stats_.in_use_bytes -= size;
  if (stats_.idle_bytes + size > max_idle_bytes_) {
    free_(p);
    return;
  }
  idle_.emplace(size, p);
  stats_.idle_bytes += size;
}

HostBufferCache::Stats HostBufferCache::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void HostBufferCache::FreeIdleLocked() {
  for (auto& [size, p] : idle_) free_(p);
  idle_.clear();
  stats_.idle_bytes = 0;
}

}  // namespace stronghold::core
