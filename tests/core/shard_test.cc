#include "core/plan/shard.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

TEST(ShardTest, OneRankOwnsTheWholeBufferInWholeChunks) {
  const BufferShard s = ShardBuffer(/*count=*/100, /*chunk=*/32, 1, 0);
  EXPECT_EQ(s.begin, 0);
  EXPECT_EQ(s.end, 100);
  EXPECT_EQ(s.slice, 128);
  EXPECT_EQ(s.padded, 128);
  EXPECT_EQ(s.chunks(), 4);
  EXPECT_EQ(s.chunks_per_rank(), 4);
}

TEST(ShardTest, RanksOwnContiguousWholeChunksClippedToTheBuffer) {
  // 10 chunks of 16 (the last one short) over 4 ranks: 3 chunks each, the
  // last rank 1 chunk.
  constexpr int64_t kCount = 150;
  int64_t covered = 0;
  for (int r = 0; r < 4; ++r) {
    const BufferShard s = ShardBuffer(kCount, 16, 4, r);
    EXPECT_EQ(s.slice, 48);
    EXPECT_EQ(s.padded, 192);
    EXPECT_EQ(s.begin, covered) << r;
    EXPECT_EQ(s.begin % s.chunk, 0) << r;
    covered = s.end;
  }
  EXPECT_EQ(covered, kCount);
  EXPECT_EQ(ShardBuffer(kCount, 16, 4, 3).owned(), 6);
}

TEST(ShardTest, ASmallBufferLeavesSomeRanksNothing) {
  // One chunk, 4 ranks: rank 0 owns it, the others nothing.
  EXPECT_EQ(ShardBuffer(10, 16, 4, 0).owned(), 10);
  for (int r = 1; r < 4; ++r) {
    const BufferShard s = ShardBuffer(10, 16, 4, r);
    EXPECT_EQ(s.owned(), 0) << r;
    EXPECT_EQ(s.begin, 10) << r;
  }
  EXPECT_EQ(ShardBuffer(10, 16, 4, 2).padded, 64);
}

TEST(ShardTest, EveryElementHasExactlyOneOwnerForManyShapes) {
  for (int64_t count : {0, 1, 15, 16, 17, 1000, 4096, 100003}) {
    for (int64_t chunk : {16, 64, 1024}) {
      for (int world = 1; world <= 8; ++world) {
        int64_t next = 0;
        for (int r = 0; r < world; ++r) {
          const BufferShard s = ShardBuffer(count, chunk, world, r);
          ASSERT_EQ(s.begin, next);
          ASSERT_GE(s.padded, count);
          ASSERT_LE(s.owned(), s.slice);
          ASSERT_EQ(s.slice % chunk, 0);
          next = s.end;
        }
        ASSERT_EQ(next, count) << count << " " << chunk << " " << world;
      }
    }
  }
}

}  // namespace
}  // namespace stronghold::core
