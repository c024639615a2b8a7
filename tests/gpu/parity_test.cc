// The engine on a real GPU against the CPU, on a small model (6 layers,
// hidden 256, seq 128, batch 8 in 2 micro-batches, clip 0.5, 10 steps):
//   - fp32 (TF32 off): RESIDENT, STRONGHOLD W=1,2,3 and L2L on the GPU, and
//     W=2 with the embedding's AdamW on the GPU (alone and with layers 0..1
//     resident there), each against RESIDENT on the CPU (the host's reference
//     step);
//   - bf16 and fp16: STRONGHOLD W=1,2 and L2L on the GPU against W = L on the
//     GPU in the same precision, and that against the host device's W = L.
// Each case prints its differences (docs/benchmarks.md, "GPU check", quotes
// them). Needs a CUDA GPU: tagged manual, so CI only builds it; run by
// deploy/gpu/check.sh. Without a visible GPU every test fails: none skips.
#include <ATen/Context.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/device/cuda_device.h"
#include "gtest/gtest.h"
#include "tests/core/training_test_util.h"

namespace stronghold::core {
namespace {

JobConfig ParityModel(Architecture architecture = Architecture::kGpt) {
  JobConfig c;
  c.model = WithArchitecture(
      {.layers = 6, .hidden = 256, .heads = 4, .seq_len = 128, .vocab = 256},
      architecture);
  c.training.steps = 10;
  c.training.batch = 8;
  c.training.micro_batch = 4;
  c.training.clip_norm = 0.5;
  c.training.warmup_steps = 2;
  return c;
}

// Both runs trained every step and hold the same buffers (the differences
// above compare only what both have).
void ExpectComplete(const TrainedRun& run, const TrainedRun& reference) {
  EXPECT_EQ(run.recorder.losses.size(),
            static_cast<size_t>(ParityModel().training.steps));
  EXPECT_EQ(run.recorder.losses.size(), reference.recorder.losses.size());
  ASSERT_EQ(run.weights.size(), reference.weights.size());
  for (size_t buf = 0; buf < run.weights.size(); ++buf) {
    EXPECT_EQ(run.weights[buf].size(), reference.weights[buf].size())
        << "buffer " << buf;
  }
}

// One CUDA device (GPU 0, its free memory as the engine's budget) for every
// test, TF32 off so that fp32 means fp32.
class GpuParityTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
    gpu_ = new absl::StatusOr<std::unique_ptr<Device>>(
        CreateCudaDevice(/*index=*/0, /*budget_bytes=*/0));
  }
  static void TearDownTestSuite() {
    delete gpu_;
    gpu_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(gpu_->ok()) << "this test needs a CUDA GPU: " << gpu_->status();
  }
  static Device* gpu() { return gpu_->value().get(); }

 private:
  static absl::StatusOr<std::unique_ptr<Device>>* gpu_;
};

absl::StatusOr<std::unique_ptr<Device>>* GpuParityTest::gpu_ = nullptr;

struct Fp32Case {
  std::string name;
  OffloadMethod method;
  int window;
  bool embedding_optimizer_on_gpu = false;
  int resident_layers = 0;
  Architecture architecture = Architecture::kGpt;
};

void PrintTo(const Fp32Case& k, std::ostream* os) { *os << k.name; }

class Fp32ParityTest : public GpuParityTest,
                       public testing::WithParamInterface<Fp32Case> {};

TEST_P(Fp32ParityTest, MatchesTheCpuReference) {
  // After 10 steps of AdamW, fp32 kernels that differ between CPU and GPU
  // (summation order) leave losses and weights within these.
  constexpr double kLossTolerance = 1e-3;    // relative
  constexpr double kWeightTolerance = 1e-3;  // absolute
  const Fp32Case& k = GetParam();
  // Trained once per architecture, by its first case (which reports its
  // failures).
  static std::map<Architecture, TrainedRun>* references =
      new std::map<Architecture, TrainedRun>;
  if (references->count(k.architecture) == 0) {
    (*references)[k.architecture] =
        Train(ParityModel(k.architecture),
              absl::StrCat("parity_cpu_reference_",
                           ArchitectureName(k.architecture)));
  }
  const TrainedRun& cpu = references->at(k.architecture);
  JobConfig g = ParityModel(k.architecture);
  g.offload.method = k.method;
  g.offload.window = k.window;
  // The embedding's AdamW in LibTorch ops on the GPU
  // (core/optim/device_adamw.h).
  g.offload.device_embedding_optimizer = k.embedding_optimizer_on_gpu;
  g.offload.device_resident_layers = k.resident_layers;
  const TrainedRun run = TrainOn(gpu(), g, "parity_gpu_fp32");
  ExpectComplete(run, cpu);
  const double loss = MaxLossRelDiff(cpu, run),
               weight = MaxWeightAbsDiff(cpu, run);
  std::printf("  %-22s loss rel diff %.2e  weight abs diff %.2e\n",
              k.name.c_str(), loss, weight);
  EXPECT_LE(loss, kLossTolerance)
      << k.name << ": loss, relative, against the CPU";
  EXPECT_LE(weight, kWeightTolerance)
      << k.name << ": weights, absolute, against the CPU";
}

INSTANTIATE_TEST_SUITE_P(
    Methods, Fp32ParityTest,
    testing::Values(Fp32Case{"RESIDENT (GPU)", OffloadMethod::kResident, 0},
                    Fp32Case{"STRONGHOLD W=1", OffloadMethod::kStronghold, 1},
                    Fp32Case{"STRONGHOLD W=2", OffloadMethod::kStronghold, 2},
                    Fp32Case{"STRONGHOLD W=3", OffloadMethod::kStronghold, 3},
                    Fp32Case{"L2L", OffloadMethod::kL2L, 0},
                    Fp32Case{"W=2, emb. on GPU", OffloadMethod::kStronghold, 2,
                             /*embedding_optimizer_on_gpu=*/true},
                    Fp32Case{"W=2, 2 layers on GPU", OffloadMethod::kStronghold,
                             2,
                             /*embedding_optimizer_on_gpu=*/true,
                             /*resident_layers=*/2},
                    // Llama (GQA, untied head).
                    Fp32Case{"llama RESIDENT (GPU)", OffloadMethod::kResident,
                             0, false, 0, Architecture::kLlama},
                    Fp32Case{"llama STRONGHOLD W=1", OffloadMethod::kStronghold,
                             1, false, 0, Architecture::kLlama},
                    Fp32Case{"llama STRONGHOLD W=2", OffloadMethod::kStronghold,
                             2, false, 0, Architecture::kLlama},
                    Fp32Case{"llama L2L", OffloadMethod::kL2L, 0, false, 0,
                             Architecture::kLlama}),
    [](const testing::TestParamInfo<Fp32Case>& info) {
      std::string name;
      for (char ch : info.param.name)
        name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
      return name;
    });

class MixedParityTest : public GpuParityTest,
                        public testing::WithParamInterface<Precision> {};

TEST_P(MixedParityTest, WindowsMatchWEqualsLAndItTheHost) {
  // The windows run the same kernels on the same data as W = L: only
  // non-deterministic kernels (atomics) can separate them.
  constexpr double kWindowLossTolerance = 1e-3;
  // Host and GPU 16-bit kernels round differently; 10 steps drift apart.
  constexpr double kDeviceLossTolerance = 2e-2;
  JobConfig m = ParityModel();
  m.training.precision = GetParam();
  // RESIDENT in bf16/fp16 is the engine with W = L, on either device.
  const TrainedRun host = Train(m, "parity_host_lowp");
  const TrainedRun full = TrainOn(gpu(), m, "parity_gpu_full_lowp");
  ExpectComplete(full, host);
  const double device = MaxLossRelDiff(host, full);
  std::printf("  %s %-16s loss rel diff to the host %.2e\n",
              PrecisionName(GetParam()), "W = L (GPU)", device);
  EXPECT_LE(device, kDeviceLossTolerance)
      << "W = L on the GPU against the host";
  for (int w : {0, 1, 2}) {
    JobConfig g = m;
    g.offload.method =
        w == 0 ? OffloadMethod::kL2L : OffloadMethod::kStronghold;
    g.offload.window = w;
    const std::string name =
        w == 0 ? "L2L" : "STRONGHOLD W=" + std::to_string(w);
    const TrainedRun run = TrainOn(gpu(), g, "parity_gpu_lowp");
    ExpectComplete(run, full);
    const double loss = MaxLossRelDiff(full, run),
                 weight = MaxWeightAbsDiff(full, run);
    std::printf(
        "  %s %-16s loss rel diff to W = L %.2e  weight abs diff %.2e\n",
        PrecisionName(GetParam()), name.c_str(), loss, weight);
    EXPECT_LE(loss, kWindowLossTolerance)
        << name << " against W = L on the GPU";
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, MixedParityTest,
                         testing::Values(Precision::kBf16, Precision::kFp16),
                         [](const testing::TestParamInfo<Precision>& info) {
                           return std::string(PrecisionName(info.param));
                         });

}  // namespace
}  // namespace stronghold::core
