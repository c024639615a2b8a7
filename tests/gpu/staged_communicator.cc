// Device collectives through host memory (tests/gpu/staged_communicator.h).
#include "tests/gpu/staged_communicator.h"

#include <ATen/ATen.h>

#include "core/util/status_macros.h"

namespace stronghold::core::testing {
namespace {

// A host copy of `t` (blocking: the current stream is drained first).
at::Tensor ToHost(const at::Tensor& t) { return t.to(at::kCPU).contiguous(); }

}  // namespace

absl::Status StagedCommunicator::ReduceScatterSum(const at::Tensor& input,
                                                  const at::Tensor& output) {
  ++staged_;
  const at::Tensor out = ToHost(output);
  RETURN_IF_ERROR(host_->ReduceScatterSum(ToHost(input), out));
  output.copy_(out);
  return absl::OkStatus();
}

absl::Status StagedCommunicator::GatherPieces(const at::Tensor& input,
                                              const at::Tensor& output) {
  ++staged_;
  const at::Tensor out = ToHost(output);
  RETURN_IF_ERROR(host_->GatherPieces(ToHost(input), out));
  output.copy_(out);
  return absl::OkStatus();
}

absl::Status StagedCommunicator::AllGather(const at::Tensor& input,
                                           const at::Tensor& output) {
  // `input` may be a piece of `output` (in place): copied first, it is a
  // separate host tensor either way.
  ++staged_;
  const at::Tensor in = ToHost(input);
  const at::Tensor out = ToHost(output);
  RETURN_IF_ERROR(host_->AllGather(in, out));
  output.copy_(out);
  return absl::OkStatus();
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
