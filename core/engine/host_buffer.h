// One buffer's (the embedding's, a block layer's or the final norm's)
// training state in host memory: the one representation of it. The trainer
// allocates the memory and owns it (core/train/host_state.h: HostState, whose
// tensors the pointers point into); the windowed engine reads and writes it
// through these pointers.
//
// The other structs that describe a buffer's state are views derived from
// a HostBuffer by one named function each, never filled field by field:
//   ParamBuffer (core/optim/optimizer.h)       ToParamBuffer below: the
//       optimizer's view, pointers and element counts only, plus the element
//       types of the gradient it reads and the working copy it writes; the
//       optimizer knows nothing of layouts, tiers or devices.
//   CheckpointBuffer (core/checkpoint/checkpoint.h)  ToCheckpointBuffer
//       (core/train/host_state.h): the file format's view, masters and
//       moments without the gradient, with hooks that stream state held on
//       the NVMe tier (SsdTier::SpilledCheckpointBuffer).
//   DeviceAdamWState (core/optim/device_adamw.h): not a view but other
//       memory, the state of the buffers updated on the device, which the
//       engine copies to and from these host arrays.
#ifndef STRONGHOLD_CORE_ENGINE_HOST_BUFFER_H_
#define STRONGHOLD_CORE_ENGINE_HOST_BUFFER_H_

#include "core/model/gpt_layout.h"
#include "core/optim/optimizer.h"
#include "core/plan/job_config.h"
#include "core/plan/shard.h"

namespace stronghold::core {

// One buffer's training state in host memory (owned by the caller): fp32
// master weights, gradient accumulator and Adam moments, count() each.
struct HostBuffer {
  BufferLayout layout;
  float* param = nullptr;
  float* grad = nullptr;
  float* exp_avg = nullptr;
  float* exp_avg_sq = nullptr;
  // >= 0: the Adam moments live on the NVMe tier as item `spill_item` of the
  // engine's SpillStreamer (arrays exp_avg, exp_avg_sq), and the two
  // pointers above are null; they are staged in host slots for the update.
  // The item may hold a third array, the master, and then `param` is null
  // too; in fp32, where the masters are what H2D sends, the engine reads
  // that array ahead of each fetch (core/engine/tier_reader.h).
  int spill_item = -1;
  // bf16/fp16 jobs: layout.count elements in the compute precision, the
  // copy of `param` that the optimizer writes and H2D sends. Null in fp32
  // (the masters are sent).
  void* working = nullptr;
  // >= 0: what H2D sends lives on the NVMe tier, as array `sent_array` of
  // item `spill_item`: 2, the master, in fp32 (`param` is null); 3, the
  // working copy, in bf16/fp16 (`working` is null; the update writes it in
  // the item's staging slot and it goes back with the rest). The engine
  // reads it ahead of each fetch into a ring of host buffers
  // (core/engine/tier_reader.h).
  int sent_array = -1;
  // Data parallelism (core/plan/shard.h): with N > 1 ranks the arrays above
  // (and the spilled item's) hold this rank's slice only, elements
  // [shard.begin, shard.end) of the buffer, and the optimizer cuts it in the
  // whole buffer's chunks (shard.chunk). shard.chunk == 0: one rank, the
  // arrays hold the whole buffer.
  BufferShard shard;
  // The elements the arrays hold: the slice, or the whole buffer.
  int64_t count() const {
    return shard.chunk > 0 ? shard.owned() : layout.count;
  }
  // Where they start in the buffer.
  int64_t begin() const { return shard.chunk > 0 ? shard.begin : 0; }
  // Optional (the engine's, for data parallelism): each update or measuring
  // accumulation writes its per-chunk statistics here
  // (ParamBuffer::chunk_stats), shard.chunks_per_rank() entries.
  StepStats* chunk_stats = nullptr;
};

// The optimizer's element type for the compute precision.
DType ToDType(Precision precision);

// The optimizer's view of a host buffer; its working copy (if any) is
// written in the compute precision. The pointers of state on the NVMe tier
// stay null: the caller points them at the staged copies.
ParamBuffer ToParamBuffer(const HostBuffer& buffer, Precision precision);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_ENGINE_HOST_BUFFER_H_
