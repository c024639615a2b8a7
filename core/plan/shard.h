// The shard rule of data parallelism, once: which elements of a buffer's
// training state each of N ranks keeps (masters, gradient accumulator,
// moments, working copy) and updates. Plain C++, no LibTorch.
//
// A buffer of `count` elements is cut into the CPU optimizer's chunks of the
// WHOLE buffer (FusedAdamW::ChunkElements(count)): rank r owns a contiguous
// run of whole chunks, so every chunk is updated and measured exactly as one
// rank would, and the per-chunk sums of squares, added in global chunk
// order, give the same global norm for any N. Every rank's slice has the
// same length (`slice`: the collectives need equal pieces), so the device
// buffer is padded to N x slice; the last ranks' slices are clipped to
// `count` (a rank may own nothing of a small buffer).
#ifndef STRONGHOLD_CORE_PLAN_SHARD_H_
#define STRONGHOLD_CORE_PLAN_SHARD_H_

#include <cstdint>

namespace stronghold::core {

struct BufferShard {
  int64_t count = 0;   // elements of the whole buffer
  int64_t chunk = 0;   // the optimizer's chunk length of the whole buffer
  int64_t slice = 0;   // elements of each rank's piece (whole chunks)
  int64_t padded = 0;  // world x slice >= count: the device buffer's length
  int64_t begin = 0;   // this rank's elements [begin, end), clipped to count
  int64_t end = 0;
  int64_t owned() const { return end - begin; }
  // Chunks of each rank's piece: the per-chunk statistics a rank reports.
  int64_t chunks_per_rank() const { return chunk > 0 ? slice / chunk : 0; }
  // Chunks of the whole buffer.
  int64_t chunks() const { return chunk > 0 ? (count + chunk - 1) / chunk : 0; }
};

// The CPU optimizer's chunk rule (FusedAdamW::ChunkElements, whose options
// give the two limits): chunks of at least `chunk_elements`, at most
// `max_chunks` of them per buffer, each a multiple of the kernels' 16-element
// vector step so that only a buffer's last chunk has a scalar tail.
inline constexpr int64_t kDefaultChunkElements = 16384;
inline constexpr int kDefaultMaxChunks = 4096;
inline constexpr int64_t kChunkStep = 16;
int64_t OptimizerChunkElements(int64_t count,
                               int64_t chunk_elements = kDefaultChunkElements,
                               int max_chunks = kDefaultMaxChunks);

// Rank `rank` of `world` (1 <= world, 0 <= rank < world) for a buffer of
// `count` >= 0 elements cut into chunks of `chunk` >= 1 elements. With one
// rank the slice is the whole buffer rounded up to whole chunks.
BufferShard ShardBuffer(int64_t count, int64_t chunk, int world, int rank);

// What the planner counts for a buffer of `count` elements on the busiest
// of `world` ranks (rank 0), under the default chunk rule (the daemon's
// optimizer runs with the default options): the whole buffer with one rank;
// with N, the device buffer padded to N x slice, the slice, and the part of
// it the host holds (and D2H sends).
struct RankShare {
  int64_t device = 0;
  int64_t slice = 0;
  int64_t owned = 0;
};
RankShare BusiestRankShare(int64_t count, int world);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_SHARD_H_
