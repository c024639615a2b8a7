// Data parallelism on a CUDA GPU (issue 17), run by deploy/gpu/check.sh
// when a session is lent one (CI compiles and links it): NCCL's collectives
// on one rank, and the engine's sharded path with 2 ranks on the one GPU
// through the test-only staged communicator (NCCL refuses two ranks on one
// device): 2 ranks x 1 micro-batch against 1 rank x 2 on the same GPU.
#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/device/cuda_device.h"
#include "core/dist/communicator.h"
#include "gtest/gtest.h"
#include "tests/core/dist/thread_ranks.h"
#include "tests/core/training_test_util.h"
#include "tests/gpu/staged_communicator.h"

namespace stronghold::core {
namespace {

bool HaveGpu() { return torch::cuda::is_available(); }

// One rank's communicator in the CUDA build sends CUDA tensors through
// ProcessGroupNCCL: each collective's result on the device, in the calling
// stream's order.
TEST(DataParallelGpuTest, NcclCollectivesOnOneRank) {
  ASSERT_TRUE(HaveGpu()) << "this test needs a CUDA GPU";
  testing::RunThreadRanks({.world_size = 1}, [](int, Communicator& comm) {
    const auto cuda = torch::TensorOptions().device(torch::kCUDA, 0);
    const at::Tensor input = torch::arange(1024, cuda.dtype(torch::kFloat32));
    at::Tensor output = torch::zeros({1024}, cuda);
    ASSERT_TRUE(comm.ReduceScatterSum(input, output).ok());
    at::Tensor gathered = torch::zeros({1024}, cuda);
    ASSERT_TRUE(comm.AllGather(output, gathered).ok());
    at::Tensor reduced = input.clone();
    ASSERT_TRUE(comm.AllReduce(reduced, ReduceOp::kMax).ok());
    torch::cuda::synchronize();
    EXPECT_TRUE(torch::equal(output, input));
    EXPECT_TRUE(torch::equal(gathered, input));
    EXPECT_TRUE(torch::equal(reduced, input));
    double norm[1] = {2.5};
    ASSERT_TRUE(comm.AllReduceHost(absl::MakeSpan(norm), ReduceOp::kSum).ok());
    EXPECT_EQ(norm[0], 2.5);
  });
}

JobConfig Small(int batch, int micro_batch) {
  JobConfig c;
  c.model = {
      .layers = 4, .hidden = 128, .heads = 4, .seq_len = 64, .vocab = 256};
  c.training.steps = 5;
  c.training.batch = batch;
  c.training.micro_batch = micro_batch;
  c.training.warmup_steps = 2;
  c.training.clip_norm = 1.0;
  c.offload.method = OffloadMethod::kStronghold;
  c.offload.window = 2;
  return c;
}

TEST(DataParallelGpuTest, TwoRanksOnOneGpuEqualOneRankOfTwoMicroBatches) {
  ASSERT_TRUE(HaveGpu()) << "this test needs a CUDA GPU";
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  const JobConfig c = Small(/*batch=*/8, /*micro_batch=*/4);
  const ExecutionPlan plan = PlanFor(c, /*device_budget_bytes=*/0, "cuda:0");
  absl::StatusOr<std::unique_ptr<Device>> one_gpu = CreateCudaDevice(0, 0);
  ASSERT_TRUE(one_gpu.ok()) << one_gpu.status();
  const TrainedRun one =
      TrainAsPlanned(c, plan, one_gpu->get(), "dp_gpu_one", /*loss_scale=*/0);

  // Each rank its own Device on GPU 0 (its own streams and budget).
  std::vector<TrainedRun> runs(2);
  std::vector<int> staged(2);
  testing::RunThreadRanks({.world_size = 2}, [&](int rank, Communicator& gloo) {
    absl::StatusOr<std::unique_ptr<Device>> gpu = CreateCudaDevice(0, 0);
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    testing::StagedCommunicator comm(&gloo);
    runs[rank] = TrainAsPlanned(c, plan, gpu->get(),
                                absl::StrCat("dp_gpu_rank", rank), 0, &comm);
    staged[rank] = comm.staged();
  });
  EXPECT_GT(staged[0], 0) << "the sharded path sent nothing";
  EXPECT_EQ(staged[0], staged[1]) << "the ranks issued different collectives";
  // The slices, in rank order, are the buffers.
  TrainedRun two;
  two.recorder = runs[0].recorder;
  two.weights.resize(runs[0].weights.size());
  for (size_t b = 0; b < two.weights.size(); ++b) {
    for (const TrainedRun& r : runs) {
      two.weights[b].insert(two.weights[b].end(), r.weights[b].begin(),
                            r.weights[b].end());
    }
  }
  ASSERT_EQ(one.recorder.losses.size(), two.recorder.losses.size());
  const double loss = MaxLossRelDiff(one, two);
  const double weight = MaxWeightAbsDiff(one, two);
  std::printf(
      "  2 ranks on one GPU (staged) vs 1 rank x 2: loss rel diff %.2e, weight "
      "abs diff %.2e%s\n",
      loss, weight, loss == 0 && weight == 0 ? " (bit for bit)" : "");
  // The host device is bit-exact (tests/core/dist/data_parallel_test.cc);
  // on a GPU the same kernels on the same shapes should be too, but CUDA's
  // atomics (the embedding's backward) need not add in one order: a stated
  // tolerance, and the figure printed.
  EXPECT_LE(loss, 1e-5);
  EXPECT_LE(weight, 1e-5);
}

}  // namespace
}  // namespace stronghold::core
