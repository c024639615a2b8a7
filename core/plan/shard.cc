#include "core/plan/shard.h"

#include <algorithm>

namespace stronghold::core {

int64_t OptimizerChunkElements(int64_t count, int64_t chunk_elements,
                               int max_chunks) {
  const int64_t chunk =
      std::max(chunk_elements, (count + max_chunks - 1) / max_chunks);
  return (chunk + kChunkStep - 1) / kChunkStep * kChunkStep;
}

RankShare BusiestRankShare(int64_t count, int world) {
  if (world <= 1) return {count, count, count};
  const BufferShard s =
      ShardBuffer(count, OptimizerChunkElements(count), world, /*rank=*/0);
  return {s.padded, s.slice, s.owned()};
}

BufferShard ShardBuffer(int64_t count, int64_t chunk, int world, int rank) {
  BufferShard s;
  s.count = count;
  s.chunk = chunk;
  const int64_t chunks = s.chunks();
  const int64_t per_rank = (chunks + world - 1) / world;
  s.slice = per_rank * chunk;
  s.padded = s.slice * world;
  s.begin = std::min(count, rank * s.slice);
  s.end = std::min(count, s.begin + s.slice);
  return s;
}

}  // namespace stronghold::core
