// DeviceAdamW's LibTorch path (what a CUDA device runs) on CPU tensors,
// against ReferenceAdamW (torch.optim.AdamW's order) and MeasureGradient:
// accumulation and its measure, three steps with a decay boundary inside a
// chunk and buffers longer than a chunk, fp32 and a bf16 working copy, and a
// non-finite gradient reported with its first element.
#include "core/optim/device_adamw.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/optim/float16.h"
#include "core/optim/optimizer.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

// Longer than the LibTorch path's chunk (4Mi elements), so the last chunk is
// short and the decay boundary falls inside the first.
constexpr int64_t kCount = (int64_t{1} << 22) + 4099;
constexpr int64_t kDecay = 1000003;

std::vector<float> Random(int64_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

double MaxRelDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::fabs(double(a[i]) - b[i]) /
                                std::max(1e-3, std::fabs(double(b[i]))));
  }
  return worst;
}

void ExpectMatchesReference(bool bf16) {
  std::vector<float> p = Random(kCount, 0.02f, 1), m(kCount, 0.0f),
                     v(kCount, 0.0f);
  std::vector<float> rp = p, rm = m, rv = v, acc(kCount), racc(kCount);
  std::vector<uint16_t> working(bf16 ? kCount : 0), rworking(bf16 ? kCount : 0);
  DeviceAdamWState s{.master = p.data(),
                     .exp_avg = m.data(),
                     .exp_avg_sq = v.data(),
                     .accumulator = acc.data(),
                     .working = bf16 ? working.data() : nullptr,
                     .working_dtype = bf16 ? DType::kBFloat16 : DType::kFloat32,
                     .count = kCount,
                     .decay_count = kDecay};
  std::unique_ptr<DeviceAdamW> adamw = DeviceAdamW::Torch(torch::kCPU);
  ReferenceAdamW reference;
  for (int step = 1; step <= 3; ++step) {
    // Two micro-batches of fp32 gradients; the reference adds them the same
    // way.
    const std::vector<float> g1 = Random(kCount, 1e-3f, 10 + step),
                             g2 = Random(kCount, 1e-3f, 20 + step);
    adamw->Accumulate(s, g1.data(), DType::kFloat32, /*first=*/true);
    const float scale = 0.5f;
    adamw->Accumulate(s, g2.data(), DType::kFloat32, /*first=*/false);
    const StepStats got = adamw->Measure(s, scale);
    for (int64_t i = 0; i < kCount; ++i) racc[i] = g1[i] + g2[i];
    EXPECT_EQ(acc, racc) << "accumulation, step " << step;
    ParamBuffer rb{.param = rp.data(),
                   .exp_avg = rm.data(),
                   .exp_avg_sq = rv.data(),
                   .grad = racc.data(),
                   .count = kCount,
                   .decay_count = kDecay};
    if (bf16) {
      rb.working = rworking.data();
      rb.working_dtype = DType::kBFloat16;
    }
    const StepStats want = MeasureGradient(rb, scale);
    EXPECT_NEAR(got.grad_sq_sum, want.grad_sq_sum, 1e-9 * want.grad_sq_sum)
        << "step " << step;
    EXPECT_EQ(got.nonfinite_count, 0);
    const AdamWStep h{
        .lr = 1e-3f, .weight_decay = 0.1f, .step = step, .grad_scale = scale};
    adamw->Step(s, h);
    reference.Step(rb, h);
    EXPECT_LT(MaxRelDiff(p, rp), 1e-5) << "master, step " << step;
    EXPECT_LT(MaxRelDiff(m, rm), 1e-5) << "exp_avg, step " << step;
    EXPECT_LT(MaxRelDiff(v, rv), 1e-5) << "exp_avg_sq, step " << step;
  }
  // The weights moved: decayed and updated elements on both sides of kDecay.
  const std::vector<float> init = Random(kCount, 0.02f, 1);
  EXPECT_NE(p[kDecay - 1], init[kDecay - 1]);
  EXPECT_NE(p[kCount - 1], init[kCount - 1]);
  if (bf16) {
    int64_t off = 0;
    for (int64_t i = 0; i < kCount; ++i)
      off += working[i] != BFloat16FromFloat(p[i]);
    EXPECT_EQ(off, 0)
        << "the working copy is the master rounded to nearest even";
  }
}

TEST(DeviceAdamWTest, TorchPathMatchesTheReferenceFp32) {
  ExpectMatchesReference(false);
}
TEST(DeviceAdamWTest, TorchPathMatchesTheReferenceWithBf16WorkingCopy) {
  ExpectMatchesReference(true);
}

TEST(DeviceAdamWTest, Bf16GradientsAccumulateExactly) {
  const int64_t n = 4096;
  std::vector<float> acc(n), a = Random(n, 1.0f, 3), b = Random(n, 1.0f, 4);
  std::vector<uint16_t> ga(n), gb(n);
  for (int64_t i = 0; i < n; ++i) {
    ga[i] = BFloat16FromFloat(a[i]);
    gb[i] = BFloat16FromFloat(b[i]);
  }
  DeviceAdamWState s{.accumulator = acc.data(), .count = n};
  std::unique_ptr<DeviceAdamW> adamw = DeviceAdamW::Torch(torch::kCPU);
  adamw->Accumulate(s, ga.data(), DType::kBFloat16, true);
  adamw->Accumulate(s, gb.data(), DType::kBFloat16, false);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(acc[i], FloatFromBFloat16(ga[i]) + FloatFromBFloat16(gb[i])) << i;
  }
}

TEST(DeviceAdamWTest, NonFiniteGradientIsReportedWithItsFirstElement) {
  const int64_t n = 10000;
  std::vector<float> acc(n), g = Random(n, 1.0f, 5);
  g[1234] = std::nanf("");
  g[5000] = INFINITY;
  DeviceAdamWState s{.accumulator = acc.data(), .count = n};
  std::unique_ptr<DeviceAdamW> adamw = DeviceAdamW::Torch(torch::kCPU);
  adamw->Accumulate(s, g.data(), DType::kFloat32, true);
  const StepStats st = adamw->Measure(s, 1.0f);
  EXPECT_FALSE(std::isfinite(st.grad_sq_sum));
  EXPECT_EQ(st.nonfinite_count, 2);
  EXPECT_EQ(st.first_nonfinite, 1234);
}

}  // namespace
}  // namespace stronghold::core
