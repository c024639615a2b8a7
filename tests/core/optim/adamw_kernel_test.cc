#include "core/optim/adamw_kernel.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/optim/float16.h"
#include "core/optim/optimizer.h"
#include "gtest/gtest.h"
#include "tests/core/optim/test_buffers.h"

namespace stronghold::core {
namespace {

AdamWStep TestStep(int64_t step) {
  return {.lr = 1e-3f,
          .beta1 = 0.9f,
          .beta2 = 0.95f,
          .eps = 1e-8f,
          .weight_decay = 0.1f,
          .step = step,
          .grad_scale = 0.75f};
}

uint64_t Bits(double x) { return std::bit_cast<uint64_t>(x); }

// Runs `steps` steps of the kernel over the whole buffer in one range.
StepStats RunSteps(Isa isa, TestLayer& layer, int steps) {
  StepStats stats;
  for (int s = 1; s <= steps; ++s) {
    layer.NewGradient(100 + s);
    stats = AdamWRange(isa, layer.view, MakeAdamWConstants(TestStep(s)), 0,
                       layer.view.count);
  }
  return stats;
}

void ExpectBitIdentical(const TestLayer& a, const TestLayer& b,
                        const std::string& what) {
  EXPECT_EQ(FirstBitDifference(a.param, b.param), -1) << what << " param";
  EXPECT_EQ(FirstBitDifference(a.exp_avg, b.exp_avg), -1) << what << " m";
  EXPECT_EQ(FirstBitDifference(a.exp_avg_sq, b.exp_avg_sq), -1) << what << " v";
  EXPECT_EQ(a.working, b.working) << what << " working copy";
}

class VectorPathTest : public testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!IsaSupported(GetParam())) {
      GTEST_SKIP() << "this CPU lacks " << IsaName(GetParam())
                   << " (AVX2 path: AVX2 + F16C; AVX-512 path: AVX512F), so "
                      "that path cannot run here";
    }
  }
};

TEST_P(VectorPathTest, BitIdenticalToScalarForAllLengthsDTypesAndSplits) {
  const Isa isa = GetParam();
  const DType dtypes[] = {DType::kFloat32, DType::kBFloat16, DType::kFloat16};
  for (int64_t count : {0, 1, 7, 15, 16, 17, 31, 33, 1000, 4099}) {
    for (int64_t decay_count : {int64_t{0}, count / 3, count}) {
      for (DType grad_dtype : dtypes) {
        for (int working = -1; working < 3; ++working) {
          const std::string what =
              "count " + std::to_string(count) + " decay " +
              std::to_string(decay_count) + " grad " +
              std::to_string(static_cast<int>(grad_dtype)) + " working " +
              std::to_string(working);
          const uint32_t seed = static_cast<uint32_t>(count * 7 + decay_count);
          TestLayer scalar(count, decay_count, grad_dtype, working >= 0,
                           working >= 0 ? dtypes[working] : DType::kFloat32,
                           seed);
          TestLayer vector = scalar;
          const StepStats s = RunSteps(Isa::kScalar, scalar, 3);
          const StepStats v = RunSteps(isa, vector, 3);
          ExpectBitIdentical(scalar, vector, what);
          EXPECT_EQ(Bits(s.grad_sq_sum), Bits(v.grad_sq_sum)) << what;
          EXPECT_EQ(s.nonfinite_count, 0) << what;
          EXPECT_EQ(v.nonfinite_count, 0) << what;
          if (HasFailure()) return;
        }
      }
    }
  }
}

TEST_P(VectorPathTest, RangesAnywhereInTheBufferMatchScalar) {
  // Ranges that start off the 16-element grid and straddle decay_count.
  TestLayer scalar(300, 150, DType::kFloat32, true, DType::kBFloat16, 5);
  TestLayer vector = scalar;
  const AdamWConstants c = MakeAdamWConstants(TestStep(4));
  for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 37},
                            {37, 149},
                            {149, 151},
                            {151, 300}}) {
    const StepStats s = AdamWRange(Isa::kScalar, scalar.view, c, begin, end);
    const StepStats v = AdamWRange(GetParam(), vector.view, c, begin, end);
    EXPECT_EQ(Bits(s.grad_sq_sum), Bits(v.grad_sq_sum)) << begin;
  }
  ExpectBitIdentical(scalar, vector, "ranges");
}

TEST_P(VectorPathTest, ReportsNonFiniteGradientsWithTheirIndex) {
  for (DType dtype : {DType::kFloat32, DType::kBFloat16, DType::kFloat16}) {
    TestLayer layer(1000, 500, dtype, false, DType::kFloat32, 9);
    // 517 is inside a 16-element vector block, 999 in the scalar tail.
    layer.SetGrad(999, std::numeric_limits<float>::infinity());
    layer.SetGrad(517, std::numeric_limits<float>::quiet_NaN());
    layer.SetGrad(518, -std::numeric_limits<float>::infinity());
    const StepStats stats = AdamWRange(
        GetParam(), layer.view, MakeAdamWConstants(TestStep(1)), 0, 1000);
    EXPECT_EQ(stats.nonfinite_count, 3);
    EXPECT_EQ(stats.first_nonfinite, 517);
    EXPECT_FALSE(std::isfinite(stats.grad_sq_sum));
    EXPECT_TRUE(std::isnan(layer.param[517]));
    EXPECT_TRUE(std::isfinite(layer.param[516]));
  }
}

TEST_P(VectorPathTest, GradScaleOverflowCountsAsNonFinite) {
  TestLayer layer(64, 0, DType::kFloat32, false, DType::kFloat32, 3);
  layer.grad32[40] = 3e38f;
  AdamWConstants c = MakeAdamWConstants(TestStep(1));
  c.grad_scale = 4.0f;  // 1.2e39 overflows fp32
  const StepStats stats = AdamWRange(GetParam(), layer.view, c, 0, 64);
  EXPECT_EQ(stats.nonfinite_count, 1);
  EXPECT_EQ(stats.first_nonfinite, 40);
}

TEST_P(VectorPathTest, ConvertsSpecialValuesLikeTheScalarFunctions) {
  // lr = 0 leaves the weights unchanged (but for -0, which becomes
  // -0 - (-0) = +0), so the working copy is the vector code's conversion of
  // these values.
  const float specials[] = {
      0.0f,
      -0.0f,
      1.0f,
      -1.0f,
      std::numeric_limits<float>::infinity(),
      -std::numeric_limits<float>::infinity(),
      std::bit_cast<float>(0x7fc12345u),  // quiet NaN with payload
      std::bit_cast<float>(0xffe00001u),  // negative quiet NaN
      65504.0f,
      65519.99f,
      65520.0f,
      1e10f,
      -1e10f,
      0x1p-14f,
      0x1p-24f,
      0x1p-25f,
      0x1.8p-25f,
      0x1p-26f,
      3e-8f,
      -5.9e-8f,
      1e-40f,
      std::numeric_limits<float>::max(),
      std::bit_cast<float>(0x3f808000u),  // bf16 tie, even below
      std::bit_cast<float>(0x3f818000u),  // bf16 tie, odd below
      std::bit_cast<float>(0x7f7f8000u),  // bf16 tie at the top: to inf
      1.0f + 0x1p-11f,
      1.0f + 0x3p-11f,  // fp16 ties
      0x1.004p-15f,     // fp16 subnormal tie region
      std::bit_cast<float>(0x33000001u),
  };
  const int64_t n = 2 * 16 + 3;  // vector body and scalar tail
  for (DType working : {DType::kBFloat16, DType::kFloat16, DType::kFloat32}) {
    TestLayer layer(n, 0, DType::kFloat32, true, working, 1);
    for (int64_t i = 0; i < n; ++i) {
      layer.param[i] = specials[i % std::size(specials)];
      layer.grad32[i] = 1.0f;
    }
    AdamWStep step = TestStep(1);
    step.lr = 0.0f;
    AdamWRange(GetParam(), layer.view, MakeAdamWConstants(step), 0, n);
    for (int64_t i = 0; i < n; ++i) {
      const float p = layer.param[i];
      const float special = specials[i % std::size(specials)];
      if (special != 0.0f) {
        EXPECT_EQ(std::bit_cast<uint32_t>(p), std::bit_cast<uint32_t>(special));
      }
      uint16_t got16;
      std::memcpy(&got16, layer.working.data() + 2 * i, 2);
      if (working == DType::kBFloat16) {
        EXPECT_EQ(got16, BFloat16FromFloat(p)) << i << " " << p;
      } else if (working == DType::kFloat16) {
        EXPECT_EQ(got16, HalfFromFloat(p)) << i << " " << p;
      } else {
        float got;
        std::memcpy(&got, layer.working.data() + 4 * i, 4);
        EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(p))
            << i;
      }
    }
  }
}

TEST_P(VectorPathTest, MeasureGivesTheStepsStatistics) {
  for (DType dtype : {DType::kFloat32, DType::kBFloat16, DType::kFloat16}) {
    TestLayer layer(1001, 333, dtype, false, DType::kFloat32, 11);
    layer.SetGrad(700, std::numeric_limits<float>::quiet_NaN());
    const StepStats measured =
        MeasureRange(GetParam(), layer.view, 0.75f, 0, 1001);
    const StepStats stepped = AdamWRange(
        GetParam(), layer.view, MakeAdamWConstants(TestStep(1)), 0, 1001);
    EXPECT_EQ(measured.nonfinite_count, 1);
    EXPECT_EQ(measured.first_nonfinite, 700);
    EXPECT_EQ(measured.nonfinite_count, stepped.nonfinite_count);
    EXPECT_EQ(Bits(measured.grad_sq_sum), Bits(stepped.grad_sq_sum));
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, VectorPathTest,
                         testing::Values(Isa::kAvx2, Isa::kAvx512),
                         [](const testing::TestParamInfo<Isa>& info) {
                           return std::string(IsaName(info.param));
                         });

// The kernel folds v's bias correction into step_size and eps (see
// AdamWConstants), so weights differ from ReferenceAdamW in the last bits;
// m and v are computed by the same operations and agree exactly.
TEST(ScalarPathTest, AgreesWithReferenceAdamW) {
  const DType dtypes[] = {DType::kFloat32, DType::kBFloat16, DType::kFloat16};
  for (DType grad_dtype : dtypes) {
    for (DType working : dtypes) {
      TestLayer reference(1003, 401, grad_dtype, true, working, 21);
      TestLayer fused = reference;
      ReferenceAdamW opt;
      for (int s = 1; s <= 5; ++s) {
        reference.NewGradient(s);
        fused.NewGradient(s);
        opt.Step(reference.view, TestStep(s));
        AdamWRange(Isa::kScalar, fused.view, MakeAdamWConstants(TestStep(s)), 0,
                   fused.view.count);
      }
      EXPECT_EQ(FirstBitDifference(fused.exp_avg, reference.exp_avg), -1);
      EXPECT_EQ(FirstBitDifference(fused.exp_avg_sq, reference.exp_avg_sq), -1);
      EXPECT_LT(MaxRelativeDifference(fused.param, reference.param), 1e-6);
      EXPECT_NE(fused.param,
                TestLayer(1003, 401, grad_dtype, true, working, 21).param);
    }
  }
}

TEST(ScalarPathTest, SumOfSquaresIsTheDoubleSum) {
  TestLayer layer(100, 0, DType::kFloat32, false, DType::kFloat32, 2);
  double expected = 0.0;
  for (float g : layer.grad32) expected += double{g * 0.5f} * (g * 0.5f);
  const StepStats stats = MeasureRange(Isa::kScalar, layer.view, 0.5f, 0, 100);
  EXPECT_NEAR(stats.grad_sq_sum, expected, 1e-12 * expected);
  EXPECT_EQ(stats.nonfinite_count, 0);
  EXPECT_EQ(stats.first_nonfinite, -1);
}

TEST(ValidateTest, RejectsInconsistentBuffersAndSteps) {
  TestLayer layer(10, 5, DType::kFloat32, false, DType::kFloat32, 1);
  EXPECT_TRUE(ValidateParamBuffer(layer.view).ok());
  ParamBuffer b = layer.view;
  b.decay_count = 11;
  EXPECT_EQ(ValidateParamBuffer(b).code(), absl::StatusCode::kInvalidArgument);
  b = layer.view;
  b.exp_avg = nullptr;
  EXPECT_EQ(ValidateParamBuffer(b).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateGradient(b).ok());
  b = layer.view;
  b.grad_dtype = DType::kBFloat16;  // but no grad_data
  EXPECT_EQ(ValidateParamBuffer(b).code(), absl::StatusCode::kInvalidArgument);
  AdamWStep step = TestStep(0);
  EXPECT_EQ(ValidateAdamWStep(step).code(), absl::StatusCode::kInvalidArgument);
  step = TestStep(1);
  step.beta2 = 1.0f;
  EXPECT_EQ(ValidateAdamWStep(step).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateAdamWStep(TestStep(1)).ok());
}

}  // namespace
}  // namespace stronghold::core
