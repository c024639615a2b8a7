// The pinned-buffer cache of the CUDA device (core/device/host_buffer_cache.h),
// over a counting allocator: a second job of the same shape allocates
// nothing, other sizes get their own blocks, an allocator failure frees the
// idle blocks and retries, and idle memory stays within its cap.
#include "core/device/host_buffer_cache.h"

#include <cstdlib>
#include <map>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

struct CountingAllocator {
  int64_t live_bytes = 0;
  int64_t limit = INT64_MAX;  // allocations beyond it fail, as pinning past
                              // RLIMIT_MEMLOCK does
  int frees = 0;
  std::set<void*> live;

  HostBufferCache Cache(int64_t max_idle = INT64_MAX) {
    return HostBufferCache(
        [this](int64_t bytes) -> absl::StatusOr<void*> {
          if (live_bytes + bytes > limit)
            return absl::ResourceExhaustedError("over the limit");
          void* p = std::malloc(bytes);
          live.insert(p);
          live_bytes += bytes;
          sizes[p] = bytes;
          return p;
        },
        [this](void* p) {
          ASSERT_EQ(live.erase(p), 1u);
          live_bytes -= sizes[p];
          ++frees;
          std::free(p);
        },
        max_idle);
  }
  std::map<void*, int64_t> sizes;
};

// One "job": a buffer per layer (weights and gradient), then released.
std::vector<void*> Job(HostBufferCache& cache, int layers,
                       int64_t layer_bytes) {
  std::vector<void*> blocks;
  for (int i = 0; i < 2 * layers; ++i) {
    absl::StatusOr<void*> p = cache.Allocate(layer_bytes);
    EXPECT_TRUE(p.ok()) << p.status();
    blocks.push_back(p.ok() ? *p : nullptr);
  }
  return blocks;
}

TEST(HostBufferCacheTest, TheNextJobOfTheSameShapeReusesEveryBlock) {
  CountingAllocator a;
  HostBufferCache cache = a.Cache();
  std::vector<void*> first = Job(cache, 4, 3 << 20);
  for (void* p : first) cache.Release(p);
  EXPECT_EQ(cache.stats().allocations, 8);
  std::vector<void*> second = Job(cache, 4, 3 << 20);
  EXPECT_EQ(cache.stats().allocations, 8) << "no new pinning";
  EXPECT_EQ(cache.stats().reuses, 8);
  EXPECT_EQ(std::set<void*>(first.begin(), first.end()),
            std::set<void*>(second.begin(), second.end()));
  for (void* p : second) cache.Release(p);
  // A different shape gets blocks of its own size class.
  std::vector<void*> other = Job(cache, 1, 5 << 20);
  EXPECT_EQ(cache.stats().allocations, 10);
  for (void* p : other) cache.Release(p);
  EXPECT_EQ(cache.stats().in_use_bytes, 0);
  EXPECT_EQ(cache.stats().idle_bytes,
            8 * (4 << 20) + 2 * (6 << 20));  // 2 MiB classes
}

TEST(HostBufferCacheTest, SizeClassesWasteLittle) {
  EXPECT_EQ(HostBufferCache::SizeClass(1), 4096);
  EXPECT_EQ(HostBufferCache::SizeClass(4097), 8192);
  EXPECT_EQ(HostBufferCache::SizeClass((1 << 20) + 1), 2 << 20);
  EXPECT_EQ(HostBufferCache::SizeClass((200 << 20) + 1), 202 << 20);
}

TEST(HostBufferCacheTest, AnAllocatorFailureFreesIdleBlocksAndRetries) {
  CountingAllocator a;
  a.limit = 10 << 20;
  HostBufferCache cache = a.Cache();
  for (void* p : Job(cache, 1, 4 << 20)) cache.Release(p);  // 8 MiB idle
  absl::StatusOr<void*> big = cache.Allocate(6 << 20);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(a.frees, 2);
  EXPECT_EQ(cache.stats().idle_bytes, 0);
  // Nothing idle left to free: the allocator's error comes through.
  absl::StatusOr<void*> more = cache.Allocate(6 << 20);
  EXPECT_EQ(more.status().code(), absl::StatusCode::kResourceExhausted);
  cache.Release(*big);
}

TEST(HostBufferCacheTest, IdleMemoryStaysWithinItsCap) {
  CountingAllocator a;
  {
    HostBufferCache cache = a.Cache(/*max_idle=*/5 << 20);
    for (void* p : Job(cache, 2, 2 << 20)) cache.Release(p);  // 4 x 2 MiB
    EXPECT_EQ(cache.stats().idle_bytes, 4 << 20);
    EXPECT_EQ(a.frees, 2);
  }
  EXPECT_TRUE(a.live.empty()) << "the destructor frees the idle blocks";
}

}  // namespace
}  // namespace stronghold::core
