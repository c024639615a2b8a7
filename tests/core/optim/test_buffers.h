// Random layer buffers for the optimizer tests: owned storage plus the
// ParamBuffer view the optimizers take.
#ifndef STRONGHOLD_TESTS_CORE_OPTIM_TEST_BUFFERS_H_
#define STRONGHOLD_TESTS_CORE_OPTIM_TEST_BUFFERS_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/optim/float16.h"
#include "core/optim/optimizer.h"

namespace stronghold::core {

struct TestLayer {
  std::vector<float> param, exp_avg, exp_avg_sq;
  std::vector<float> grad32;     // [count] when grad_dtype is fp32
  std::vector<uint16_t> grad16;  // [count] when it is bf16 or fp16
  std::vector<uint8_t> working;  // [count * bytes of working_dtype]
  ParamBuffer view;

  // Random state: weights in +-[0.5, 2) (away from zero, so relative errors
  // mean something), m ~ N(0, 0.1), v ~ U[0, 0.01), gradients ~ N(0, 1).
  TestLayer(int64_t count, int64_t decay_count, DType grad_dtype,
            bool with_working, DType working_dtype, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> magnitude(0.5f, 2.0f),
        unit(0.0f, 0.01f);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    param.resize(count);
    exp_avg.resize(count);
    exp_avg_sq.resize(count);
    for (int64_t i = 0; i < count; ++i) {
      param[i] = (rng() & 1) ? magnitude(rng) : -magnitude(rng);
      exp_avg[i] = 0.1f * normal(rng);
      exp_avg_sq[i] = unit(rng);
    }
    view.param = param.data();
    view.exp_avg = exp_avg.data();
    view.exp_avg_sq = exp_avg_sq.data();
    view.count = count;
    view.decay_count = decay_count;
    view.grad_dtype = grad_dtype;
    if (grad_dtype == DType::kFloat32) {
      grad32.resize(count);
      view.grad = grad32.data();
    } else {
      grad16.resize(count);
      view.grad_data = grad16.data();
    }
    if (with_working) {
      working.assign(count * DTypeBytes(working_dtype), 0);
      view.working = working.data();
      view.working_dtype = working_dtype;
    }
    NewGradient(seed + 1);
  }

  TestLayer(const TestLayer& other) { *this = other; }
  TestLayer& operator=(const TestLayer& other) {
    param = other.param;
    exp_avg = other.exp_avg;
    exp_avg_sq = other.exp_avg_sq;
    grad32 = other.grad32;
    grad16 = other.grad16;
    working = other.working;
    view = other.view;
    view.param = param.data();
    view.exp_avg = exp_avg.data();
    view.exp_avg_sq = exp_avg_sq.data();
    if (view.grad != nullptr) view.grad = grad32.data();
    if (view.grad_data != nullptr) view.grad_data = grad16.data();
    if (view.working != nullptr) view.working = working.data();
    return *this;
  }

  void NewGradient(uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int64_t i = 0; i < view.count; ++i) SetGrad(i, normal(rng));
  }

  // Stores g in the gradient's dtype (rounded for bf16/fp16).
  void SetGrad(int64_t i, float g) {
    switch (view.grad_dtype) {
      case DType::kFloat32:
        grad32[i] = g;
        break;
      case DType::kBFloat16:
        grad16[i] = BFloat16FromFloat(g);
        break;
      case DType::kFloat16:
        grad16[i] = HalfFromFloat(g);
        break;
    }
  }
};

// Bitwise equality of two float vectors; returns the first differing index
// or -1.
inline int64_t FirstBitDifference(const std::vector<float>& a,
                                  const std::vector<float>& b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0)
      return static_cast<int64_t>(i);
  }
  return -1;
}

// max |a[i] - b[i]| / |b[i]| (b's elements must be non-zero).
inline double MaxRelativeDifference(const std::vector<float>& a,
                                    const std::vector<float>& b) {
  double worst = 0.0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double d = std::abs(double{a[i]} - b[i]) / std::abs(double{b[i]});
    if (!(d <= worst)) worst = d;  // NaN propagates
  }
  return worst;
}

}  // namespace stronghold::core

#endif  // STRONGHOLD_TESTS_CORE_OPTIM_TEST_BUFFERS_H_
