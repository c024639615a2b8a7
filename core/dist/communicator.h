// The communicator of a data-parallel job: the collectives the windowed
// engine needs between N ranks that train one model (issue 17, design in
// docs/distributed.md and shared/design/scaleout.md). The engine shards each
// buffer's optimizer state over the ranks (core/plan/shard.h): after a
// layer's backward it reduce-scatters the gradient on the device so that each
// rank receives the sum of its slice, and before a layer computes it
// all-gathers the updated slices into the whole layer.
//
// Contract:
//   - Every call is a collective: every rank makes the same calls, in the
//     same order, with the same sizes. All calls come from one thread (the
//     engine's).
//   - Device collectives take LibTorch tensors on the job's device
//     (contiguous, same dtype); on the host device they are done when the
//     call returns; on CUDA (NCCL) the calling thread's current stream waits
//     for them, the host does not.
//   - Host collectives take small arrays of doubles or int64 and are done
//     when the call returns. Their reductions always add in rank order, so
//     every rank gets the same bits for any N.
//   - A peer that died or a collective that does not finish within the
//     timeout gives UNAVAILABLE or DEADLINE_EXCEEDED naming the collective;
//     the communicator is unusable after an error (the job fails).
//   - Ordered mode (test-only, C10dCommunicatorOptions::ordered): device
//     reductions too are a gather followed by a sum in global rank order, so
//     N ranks' sum equals one rank's sequential sum bit for bit.
#ifndef STRONGHOLD_CORE_DIST_COMMUNICATOR_H_
#define STRONGHOLD_CORE_DIST_COMMUNICATOR_H_

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace stronghold::core {

enum class ReduceOp { kSum, kMax };

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Whether device reductions add in global rank order (test-only mode).
  virtual bool ordered() const = 0;

  // Device collectives. `input` holds world_size() x output.numel()
  // elements; rank r receives in `output` the sum over ranks of the r-th
  // piece of their inputs.
  virtual absl::Status ReduceScatterSum(const at::Tensor& input,
                                        const at::Tensor& output) = 0;
  // `input` as above; rank r receives in `output` (world_size() pieces of
  // input.numel() / world_size() elements) the r-th piece of every rank's
  // input, in rank order: what ReduceScatterSum adds, for a caller that adds
  // the pieces itself (ordered mode).
  virtual absl::Status GatherPieces(const at::Tensor& input,
                                    const at::Tensor& output) = 0;
  // `output` (world_size() x input.numel()) receives every rank's input in
  // rank order. `input` may be output's own r-th piece (in place).
  virtual absl::Status AllGather(const at::Tensor& input,
                                 const at::Tensor& output) = 0;
  // In place.
  virtual absl::Status AllReduce(const at::Tensor& tensor, ReduceOp op) = 0;

  // Host collectives. `out` holds world_size() x in.size() values: every
  // rank's `in` in rank order.
  virtual absl::Status AllGatherHost(absl::Span<const double> in,
                                     absl::Span<double> out) = 0;
  virtual absl::Status AllGatherHost(absl::Span<const int64_t> in,
                                     absl::Span<int64_t> out) = 0;
  // In place; sums add in rank order.
  virtual absl::Status AllReduceHost(absl::Span<double> values,
                                     ReduceOp op) = 0;
  virtual absl::Status AllReduceHost(absl::Span<int64_t> values,
                                     ReduceOp op) = 0;
  virtual absl::Status Barrier() = 0;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DIST_COMMUNICATOR_H_
