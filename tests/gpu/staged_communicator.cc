// Device collectives through host memory (tests/gpu/staged_communicator.h).
#include "tests/gpu/staged_communicator.h"

#include <ATen/ATen.h>

#include "core/util/status_macros.h"

namespace stronghold::core::testing {
namespace {

// A host copy of `t` (blocking: the current stream is drained first).
at::Tensor ToHost(const at::Tensor& t) { return t.to(at::kCPU).contiguous(); }

// Runs `collective` on host copies of `input` and `output` and copies the
// result back into `output`. `input` may be a piece of `output` (in place):
// copied first, it is a separate host tensor either way.
template <typename Collective>
absl::Status Staged(const at::Tensor& input, const at::Tensor& output,
                    Collective collective) {
  const at::Tensor in = ToHost(input);
  const at::Tensor out = ToHost(output);
  RETURN_IF_ERROR(collective(in, out));
  output.copy_(out);
  return absl::OkStatus();
}

}  // namespace

absl::Status StagedCommunicator::ReduceScatterSum(const at::Tensor& input,
                                                  const at::Tensor& output) {
  ++staged_;
  return Staged(input, output,
                [this](const at::Tensor& i, const at::Tensor& o) {
                  return host_->ReduceScatterSum(i, o);
                });
}

absl::Status StagedCommunicator::GatherPieces(const at::Tensor& input,
                                              const at::Tensor& output) {
  ++staged_;
  return Staged(input, output,
                [this](const at::Tensor& i, const at::Tensor& o) {
                  return host_->GatherPieces(i, o);
                });
}

absl::Status StagedCommunicator::AllGather(const at::Tensor& input,
                                           const at::Tensor& output) {
  ++staged_;
  return Staged(input, output,
                [this](const at::Tensor& i, const at::Tensor& o) {
                  return host_->AllGather(i, o);
                });
}

absl::Status StagedCommunicator::AllReduce(const at::Tensor& tensor,
                                           ReduceOp op) {
  ++staged_;
  const at::Tensor t = ToHost(tensor);
  RETURN_IF_ERROR(host_->AllReduce(t, op));
  tensor.copy_(t);
  return absl::OkStatus();
}

}  // namespace stronghold::core::testing
