#include "core/plan/shard.h"

#include <algorithm>

namespace stronghold::core {

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
