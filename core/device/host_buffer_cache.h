// Host buffers that are expensive to allocate, kept across jobs instead of
// freed. Pinned memory is the case in point: cudaHostAlloc runs at only
// ~1-2 GB/s, so pinning a 5B-parameter model's weights and gradients (40 GB)
// anew for every job would cost half a minute before the first step. The
// daemon's CUDA device owns one cache for its life; a job's pinned buffers
// go back to it when the job ends, and the next job of the same shape gets
// the same blocks without a single new allocation (algorithm.md §2: "the
// daemon pins its arenas at start-up and reuses them across jobs").
//
// Blocks are matched by size class (the request rounded up to 2 MiB, or to
// 4 KiB below 1 MiB), so no block wastes more than 2 MiB. When the
// underlying allocator fails (pinned memory is limited by RLIMIT_MEMLOCK
// and by RAM), every idle block is freed and the allocation is tried again.
//
// Thread-safe.
#ifndef STRONGHOLD_CORE_DEVICE_HOST_BUFFER_CACHE_H_
#define STRONGHOLD_CORE_DEVICE_HOST_BUFFER_CACHE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace stronghold::core {

class HostBufferCache {
 public:
  using AllocateFn = std::function<absl::StatusOr<void*>(int64_t bytes)>;
  using FreeFn = std::function<void(void* p)>;

  // `max_idle_bytes`: idle blocks beyond this are freed on release.
  HostBufferCache(AllocateFn allocate, FreeFn free,
                  int64_t max_idle_bytes = INT64_MAX);
  ~HostBufferCache();  // frees every idle block; blocks in use must be released
                       // before
  HostBufferCache(const HostBufferCache&) = delete;
  HostBufferCache& operator=(const HostBufferCache&) = delete;

  // A block of at least `bytes`: an idle one of the same size class, else a
  // new one from the allocator.
  absl::StatusOr<void*> Allocate(int64_t bytes);
  // Returns a block from Allocate() to the cache.
  void Release(void* p);

  static int64_t SizeClass(int64_t bytes);

  struct Stats {
    int64_t allocations =
        0;               // calls to the underlying allocator that succeeded
    int64_t reuses = 0;  // Allocate() served from idle blocks
    int64_t idle_bytes = 0;
    int64_t in_use_bytes = 0;
  };
  Stats stats() const;

 private:
  void FreeIdleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AllocateFn allocate_;
  const FreeFn free_;
  const int64_t max_idle_bytes_;
  mutable absl::Mutex mu_;
  std::multimap<int64_t, void*> idle_
      ABSL_GUARDED_BY(mu_);  // size class -> block
  std::unordered_map<void*, int64_t> in_use_
      ABSL_GUARDED_BY(mu_);  // block -> size class
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DEVICE_HOST_BUFFER_CACHE_H_
