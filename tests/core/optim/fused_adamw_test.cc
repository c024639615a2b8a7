#include "core/optim/fused_adamw.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/optim/adamw_kernel.h"
#include "core/optim/optimizer.h"
#include "core/plan/shard.h"
#include "gtest/gtest.h"
#include "tests/core/optim/test_buffers.h"

namespace stronghold::core {
namespace {

AdamWStep TestStep(int64_t step) {
  return {.lr = 2e-3f,
          .beta1 = 0.9f,
          .beta2 = 0.95f,
          .eps = 1e-8f,
          .weight_decay = 0.1f,
          .step = step,
          .grad_scale = 0.5f};
}

std::unique_ptr<FusedAdamW> MakeOptimizer(FusedAdamWOptions options) {
  auto optimizer = FusedAdamW::Create(options);
  EXPECT_TRUE(optimizer.ok()) << optimizer.status();
  return *std::move(optimizer);
}

// Small chunks, so that a few thousand elements make many chunks.
FusedAdamWOptions SmallChunks(int threads) {
  return {.threads = threads, .chunk_elements = 64, .max_chunks = 40};
}

TEST(FusedAdamWTest, MultiThreadedEqualsSingleThreadedBitForBit) {
  for (DType grad_dtype : {DType::kFloat32, DType::kBFloat16}) {
    TestLayer single(5003, 2001, grad_dtype, true, DType::kBFloat16, 7);
    std::vector<TestLayer> multi(4, single);
    auto one = MakeOptimizer(SmallChunks(1));
    std::vector<std::unique_ptr<FusedAdamW>> many;
    for (int threads : {2, 3, 5, 8})
      many.push_back(MakeOptimizer(SmallChunks(threads)));
    for (int s = 1; s <= 4; ++s) {
      single.NewGradient(s);
      const StepStats expected = one->StepAndMeasure(single.view, TestStep(s));
      for (size_t k = 0; k < many.size(); ++k) {
        multi[k].NewGradient(s);
        const StepStats got =
            many[k]->StepAndMeasure(multi[k].view, TestStep(s));
        EXPECT_EQ(std::bit_cast<uint64_t>(got.grad_sq_sum),
                  std::bit_cast<uint64_t>(expected.grad_sq_sum))
            << many[k]->threads() << " threads";
      }
    }
    for (const TestLayer& m : multi) {
      EXPECT_EQ(FirstBitDifference(m.param, single.param), -1);
      EXPECT_EQ(FirstBitDifference(m.exp_avg, single.exp_avg), -1);
      EXPECT_EQ(FirstBitDifference(m.exp_avg_sq, single.exp_avg_sq), -1);
      EXPECT_EQ(m.working, single.working);
    }
  }
}

// Data parallelism: each rank's slice (core/plan/shard.h), cut into the
// whole buffer's chunks, updates and measures exactly as the whole buffer
// does, and its per-chunk statistics, laid end to end in rank order and
// summed in that order, are the whole buffer's bit for bit.
TEST(FusedAdamWTest, SlicesInTheWholeBuffersChunksEqualTheWholeBuffer) {
  constexpr int64_t kCount = 2000, kDecay = 1301;
  auto opt = MakeOptimizer(SmallChunks(3));
  const int64_t chunk = opt->ChunkElements(kCount);
  for (int world : {2, 3, 5}) {
    TestLayer whole(kCount, kDecay, DType::kBFloat16, true, DType::kBFloat16,
                    11);
    const TestLayer start = whole;
    const StepStats expected = opt->StepAndMeasure(whole.view, TestStep(3));
    std::vector<StepStats> chunks;
    for (int r = 0; r < world; ++r) {
      const BufferShard shard = ShardBuffer(kCount, chunk, world, r);
      TestLayer slice = start;
      ParamBuffer v = slice.view;
      v.param += shard.begin;
      v.exp_avg += shard.begin;
      v.exp_avg_sq += shard.begin;
      v.grad_data = slice.grad16.data() + shard.begin;
      v.working = slice.working.data() + 2 * shard.begin;
      v.count = shard.owned();
      v.decay_count = std::clamp(kDecay - shard.begin, int64_t{0}, v.count);
      v.chunk_elements = chunk;
      std::vector<StepStats> mine(shard.chunks_per_rank());
      v.chunk_stats = mine.data();
      opt->StepAndMeasure(v, TestStep(3));
      const int64_t n = (shard.owned() + chunk - 1) / chunk;
      chunks.insert(chunks.end(), mine.begin(), mine.begin() + n);
      for (int64_t i = shard.begin; i < shard.end; ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(slice.param[i]),
                  std::bit_cast<uint32_t>(whole.param[i]))
            << world << " ranks, element " << i;
        ASSERT_EQ(std::bit_cast<uint32_t>(slice.exp_avg_sq[i]),
                  std::bit_cast<uint32_t>(whole.exp_avg_sq[i]));
      }
    }
    StepStats total;
    for (const StepStats& c : chunks) AppendStats(c, &total);
    EXPECT_EQ(static_cast<int64_t>(chunks.size()),
              (kCount + chunk - 1) / chunk);
    EXPECT_EQ(std::bit_cast<uint64_t>(total.grad_sq_sum),
              std::bit_cast<uint64_t>(expected.grad_sq_sum))
        << world << " ranks";
  }
}

TEST(FusedAdamWTest, RefusesMoreChunksThanItsStatisticsHold) {
  auto opt = MakeOptimizer(SmallChunks(2));
  TestLayer layer(1000, 0, DType::kFloat32, false, DType::kBFloat16, 3);
  layer.view.chunk_elements = 16;  // 63 chunks > max_chunks 40
  EXPECT_EQ(opt->Submit(layer.view, TestStep(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  layer.view.chunk_elements = 24;  // not a multiple of the kernels' 16
  EXPECT_EQ(opt->Submit(layer.view, TestStep(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FusedAdamWTest, AgreesWithReferenceAdamW) {
  TestLayer reference(3001, 1000, DType::kFloat32, false, DType::kFloat32, 3);
  TestLayer fused = reference;
  ReferenceAdamW ref;
  auto opt = MakeOptimizer(SmallChunks(3));
  for (int s = 1; s <= 5; ++s) {
    reference.NewGradient(s);
    fused.NewGradient(s);
    ref.Step(reference.view, TestStep(s));
    opt->Step(fused.view, TestStep(s));
  }
  // Last-bit differences in the weights only: see AdamWConstants.
  EXPECT_LT(MaxRelativeDifference(fused.param, reference.param), 1e-6);
  EXPECT_EQ(FirstBitDifference(fused.exp_avg, reference.exp_avg), -1);
  EXPECT_EQ(FirstBitDifference(fused.exp_avg_sq, reference.exp_avg_sq), -1);
}

TEST(FusedAdamWTest, QueuedLayersFinishInAnyWaitOrder) {
  // More layers than slots: Submit blocks until a future is waited on. A
  // second thread waits for the first three layers, newest first, while
  // this one's Submit of layers 3..5 blocks on them; later this thread
  // keeps three layers in flight.
  constexpr int kLayers = 12;
  std::vector<TestLayer> layers, expected;
  for (int l = 0; l < kLayers; ++l) {
    layers.emplace_back(700 + 97 * l, 300, DType::kFloat32, false,
                        DType::kFloat32, 40 + l);
  }
  expected = layers;
  auto reference = MakeOptimizer(SmallChunks(1));
  for (TestLayer& e : expected) reference->Step(e.view, TestStep(1));

  FusedAdamWOptions options = SmallChunks(2);
  options.max_pending = 3;
  auto opt = MakeOptimizer(options);
  std::vector<StepFuture> futures(kLayers);
  std::thread waiter;
  for (int l = 0; l < kLayers; ++l) {
    if (l >= 6) futures[l - 3].Wait();
    absl::StatusOr<StepFuture> f = opt->Submit(layers[l].view, TestStep(1));
    ASSERT_TRUE(f.ok()) << f.status();
    futures[l] = *std::move(f);
    if (l == 2) {
      waiter = std::thread([&futures] {
        for (int k = 2; k >= 0; --k) futures[k].Wait();
      });
    }
  }
  waiter.join();
  for (StepFuture& f : futures) {
    if (f.valid()) f.Wait();
  }
  for (int l = 0; l < kLayers; ++l) {
    EXPECT_EQ(FirstBitDifference(layers[l].param, expected[l].param), -1) << l;
  }
}

TEST(FusedAdamWTest, ReportsTheFirstNonFiniteAcrossChunks) {
  for (DType dtype : {DType::kFloat32, DType::kBFloat16, DType::kFloat16}) {
    TestLayer layer(4000, 4000, dtype, false, DType::kFloat32, 5);
    // Different chunks of 64; the later one is in a chunk that a lower-
    // numbered thread owns, so completion order is not index order.
    layer.SetGrad(3001, std::numeric_limits<float>::infinity());
    layer.SetGrad(1234, std::numeric_limits<float>::quiet_NaN());
    auto opt = MakeOptimizer(SmallChunks(4));
    const StepStats measured = opt->SubmitMeasure(layer.view, 1.0f)->Wait();
    EXPECT_EQ(measured.nonfinite_count, 2);
    EXPECT_EQ(measured.first_nonfinite, 1234);
    const StepStats stepped = opt->StepAndMeasure(layer.view, TestStep(1));
    EXPECT_EQ(stepped.nonfinite_count, 2);
    EXPECT_EQ(stepped.first_nonfinite, 1234);
    EXPECT_TRUE(std::isnan(layer.param[1234]));
  }
}

TEST(FusedAdamWTest, MeasureMatchesTheStepAndWritesNothing) {
  TestLayer layer(2500, 800, DType::kFloat32, false, DType::kFloat32, 8);
  const TestLayer before = layer;
  auto opt = MakeOptimizer(SmallChunks(3));
  const StepStats measured = opt->SubmitMeasure(layer.view, 0.5f)->Wait();
  EXPECT_EQ(FirstBitDifference(layer.param, before.param), -1);
  const StepStats stepped = opt->StepAndMeasure(layer.view, TestStep(1));
  EXPECT_EQ(std::bit_cast<uint64_t>(measured.grad_sq_sum),
            std::bit_cast<uint64_t>(stepped.grad_sq_sum));
  EXPECT_EQ(measured.nonfinite_count, 0);
  EXPECT_GT(measured.grad_sq_sum, 0.0);
}

// The engine's host side of a gradient: accumulate over micro-batches on the
// pool, measuring the last; the same bits as a serial loop and a separate
// SubmitMeasure, for every thread count and gradient precision.
TEST(FusedAdamWTest, AccumulateMatchesASerialLoopAndMeasuresInTheSamePass) {
  for (DType dtype : {DType::kFloat32, DType::kBFloat16, DType::kFloat16}) {
    // Micro-batch gradients in `dtype`, -0 included (first turns it to +0).
    std::vector<TestLayer> micro;
    for (int k = 0; k < 3; ++k) {
      micro.emplace_back(4001, 1500, dtype, false, DType::kFloat32, 20 + k);
      micro.back().SetGrad(17, -0.0f);
    }
    auto source = [&](int k) -> const void* {
      return dtype == DType::kFloat32
                 ? static_cast<const void*>(micro[k].view.grad)
                 : micro[k].view.grad_data;
    };
    std::vector<float> expected(4001);
    for (int k = 0; k < 3; ++k)
      AccumulateRange(source(k), dtype, k == 0, expected.data(), 0, 4001);
    EXPECT_FALSE(std::signbit(expected[17]));  // 0 + -0 = +0
    for (int threads : {1, 3, 8}) {
      auto opt = MakeOptimizer(SmallChunks(threads));
      std::vector<float> acc(4001, 123.0f);
      ParamBuffer target;
      target.grad = acc.data();
      target.count = 4001;
      target.decay_count = 1500;
      StepStats last;
      for (int k = 0; k < 3; ++k) {
        last = opt->SubmitAccumulate(target, source(k), dtype, k == 0, k == 2,
                                     0.25f)
                   ->Wait();
      }
      for (int64_t i = 0; i < 4001; ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(acc[i]),
                  std::bit_cast<uint32_t>(expected[i]))
            << "element " << i << ", " << threads << " threads";
      }
      const StepStats measured = opt->SubmitMeasure(target, 0.25f)->Wait();
      EXPECT_GT(last.grad_sq_sum, 0.0);
      EXPECT_EQ(std::bit_cast<uint64_t>(last.grad_sq_sum),
                std::bit_cast<uint64_t>(measured.grad_sq_sum));
      EXPECT_EQ(last.nonfinite_count, 0);
    }
  }
}

TEST(FusedAdamWTest, AccumulateReportsNonFiniteAndRefusesBadInput) {
  auto opt = MakeOptimizer(SmallChunks(4));
  std::vector<float> g(3000, 1.0f), acc(3000);
  g[2500] = std::numeric_limits<float>::infinity();
  ParamBuffer target;
  target.grad = acc.data();
  target.count = 3000;
  const StepStats s =
      opt->SubmitAccumulate(target, g.data(), DType::kFloat32, true, true, 1.0f)
          ->Wait();
  EXPECT_EQ(s.nonfinite_count, 1);
  EXPECT_EQ(s.first_nonfinite, 2500);
  EXPECT_EQ(acc[0], 1.0f);
  const StepStats unmeasured =
      opt->SubmitAccumulate(target, g.data(), DType::kFloat32, false, false,
                            1.0f)
          ->Wait();
  EXPECT_EQ(unmeasured.nonfinite_count, 0);
  EXPECT_EQ(acc[0], 2.0f);
  EXPECT_EQ(
      opt->SubmitAccumulate(target, nullptr, DType::kFloat32, true, false, 1.0f)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  target.grad = nullptr;
  EXPECT_EQ(opt->SubmitAccumulate(target, g.data(), DType::kFloat32, true,
                                  false, 1.0f)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FusedAdamWTest, CopyStateCopiesParamMomentsAndWorkingCopy) {
  TestLayer from(3001, 1000, DType::kFloat32, true, DType::kBFloat16, 31);
  TestLayer to(3001, 1000, DType::kFloat32, true, DType::kBFloat16, 32);
  auto opt = MakeOptimizer(SmallChunks(3));
  ASSERT_TRUE(
      opt->SubmitCopyState(from.view, to.view)->Wait().nonfinite_count == 0);
  EXPECT_EQ(FirstBitDifference(to.param, from.param), -1);
  EXPECT_EQ(FirstBitDifference(to.exp_avg, from.exp_avg), -1);
  EXPECT_EQ(FirstBitDifference(to.exp_avg_sq, from.exp_avg_sq), -1);
  EXPECT_EQ(to.working, from.working);
  TestLayer shorter(3000, 1000, DType::kFloat32, false, DType::kFloat32, 33);
  EXPECT_EQ(opt->SubmitCopyState(from.view, shorter.view).status().code(),
            absl::StatusCode::kInvalidArgument);
  ParamBuffer no_moments = to.view;
  no_moments.exp_avg = nullptr;
  EXPECT_EQ(opt->SubmitCopyState(from.view, no_moments).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FusedAdamWTest, FirstTouchZeroFills) {
  auto opt = MakeOptimizer(SmallChunks(3));
  std::vector<uint16_t> data(3333, 0xffff);
  ASSERT_TRUE(opt->FirstTouch(data.data(), 3333, DType::kBFloat16).ok());
  for (uint16_t x : data) ASSERT_EQ(x, 0);
  EXPECT_EQ(opt->FirstTouch(nullptr, 5, DType::kFloat32).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FusedAdamWTest, EmptyBufferCompletesAtOnce) {
  auto opt = MakeOptimizer(SmallChunks(2));
  ParamBuffer empty;
  const StepStats stats = opt->Submit(empty, TestStep(1))->Wait();
  EXPECT_EQ(stats.grad_sq_sum, 0.0);
  EXPECT_EQ(stats.first_nonfinite, -1);
}

TEST(FusedAdamWTest, RejectsInvalidInput) {
  auto opt = MakeOptimizer(SmallChunks(2));
  TestLayer layer(10, 5, DType::kFloat32, false, DType::kFloat32, 1);
  ParamBuffer bad = layer.view;
  bad.decay_count = 11;
  EXPECT_EQ(opt->Submit(bad, TestStep(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(opt->Submit(layer.view, TestStep(0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FusedAdamW::Create({.threads = -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FusedAdamW::Create({.chunk_elements = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FusedAdamWTest, DefaultsToTheWidestPathAndTheUsableCpus) {
  auto opt = MakeOptimizer({});
  EXPECT_EQ(opt->isa(), BestIsa());
  EXPECT_GE(opt->threads(), 1);
  EXPECT_LE(opt->threads(),
            static_cast<int>(std::thread::hardware_concurrency()));
  // Chunks grow so that no buffer needs more than max_chunks of them, and
  // stay multiples of the kernels' 16-element step.
  EXPECT_EQ(opt->ChunkElements(100), 16384);
  EXPECT_EQ(opt->ChunkElements(int64_t{1} << 30), (int64_t{1} << 30) / 4096);
  EXPECT_EQ(opt->ChunkElements(4096 * 20000 + 1) % 16, 0);
}

TEST(FusedAdamWTest, EveryPathTheCpuHasGivesTheSameResult) {
  TestLayer scalar(4001, 1234, DType::kFloat16, true, DType::kFloat16, 13);
  auto reference = MakeOptimizer({.threads = 2, .isa = Isa::kScalar});
  TestLayer expected = scalar;
  reference->Step(expected.view, TestStep(1));
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    auto opt = FusedAdamW::Create({.threads = 2, .isa = isa});
    if (!IsaSupported(isa)) {
      EXPECT_EQ(opt.status().code(), absl::StatusCode::kFailedPrecondition);
      continue;
    }
    TestLayer layer = scalar;
    (*opt)->Step(layer.view, TestStep(1));
    EXPECT_EQ(FirstBitDifference(layer.param, expected.param), -1)
        << IsaName(isa);
    EXPECT_EQ(layer.working, expected.working) << IsaName(isa);
  }
}

}  // namespace
}  // namespace stronghold::core
