// Test-only: a Communicator whose device collectives stage CUDA tensors
// through host memory and run them on another communicator's host path
// (Gloo). NCCL refuses two ranks on one GPU, so this is how
// deploy/gpu/check.sh runs the engine's sharded path with 2 ranks on the one
// GPU a session is lent: the engine's collectives, issued in its order, on
// real CUDA tensors, with the transport swapped. Each call copies
// synchronously (the calling thread's current stream is drained first), so
// the contract's stream ordering holds trivially. Never in a product binary.
#ifndef STRONGHOLD_TESTS_GPU_STAGED_COMMUNICATOR_H_
#define STRONGHOLD_TESTS_GPU_STAGED_COMMUNICATOR_H_

#include "core/dist/communicator.h"

namespace stronghold::core::testing {

class StagedCommunicator : public Communicator {
 public:
  // `host` (not owned) must outlive this; its device collectives get CPU
  // tensors.
  explicit StagedCommunicator(Communicator* host) : host_(host) {}

  int rank() const override { return host_->rank(); }
  int world_size() const override { return host_->world_size(); }
  bool ordered() const override { return host_->ordered(); }

  absl::Status ReduceScatterSum(const at::Tensor& input,
                                const at::Tensor& output) override;
  absl::Status GatherPieces(const at::Tensor& input,
                            const at::Tensor& output) override;
  absl::Status AllGather(const at::Tensor& input,
                         const at::Tensor& output) override;
  absl::Status AllReduce(const at::Tensor& tensor, ReduceOp op) override;

  absl::Status AllGatherHost(absl::Span<const double> in,
                             absl::Span<double> out) override {
    return host_->AllGatherHost(in, out);
  }
  absl::Status AllGatherHost(absl::Span<const int64_t> in,
                             absl::Span<int64_t> out) override {
    return host_->AllGatherHost(in, out);
  }
  absl::Status AllReduceHost(absl::Span<double> values, ReduceOp op) override {
    return host_->AllReduceHost(values, op);
  }
  absl::Status AllReduceHost(absl::Span<int64_t> values, ReduceOp op) override {
    return host_->AllReduceHost(values, op);
  }
  absl::Status Barrier() override { return host_->Barrier(); }

  // Device collectives staged so far (the test checks the path was taken).
  int staged() const { return staged_; }

 private:
  Communicator* const host_;
  int staged_ = 0;  // the engine's one thread calls
};

}  // namespace stronghold::core::testing

#endif  // STRONGHOLD_TESTS_GPU_STAGED_COMMUNICATOR_H_
