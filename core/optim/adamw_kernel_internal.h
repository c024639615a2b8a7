// Internals shared by the scalar, AVX2 and AVX-512 AdamW kernels: the
// argument block, the per-element operation sequence every path must follow,
// and the 16-lane layout of the squared-sum accumulators.
//
// Every function here is ALWAYS_INLINE for the reason given in float16.h:
// this header is compiled with different -m flags per path.
#ifndef STRONGHOLD_CORE_OPTIM_ADAMW_KERNEL_INTERNAL_H_
#define STRONGHOLD_CORE_OPTIM_ADAMW_KERNEL_INTERNAL_H_

#include <bit>
#include <cmath>
#include <cstdint>

#include "absl/base/attributes.h"
#include "core/optim/adamw_kernel.h"
#include "core/optim/float16.h"

namespace stronghold::core::optim_internal {

// A contiguous run of elements that share one decay factor.
struct KernelArgs {
  float* param = nullptr;       // [n]
  float* exp_avg = nullptr;     // [n]
  float* exp_avg_sq = nullptr;  // [n]
  const void* grad = nullptr;   // [n] of grad_dtype
  DType grad_dtype = DType::kFloat32;
  void* working = nullptr;  // [n] of working_dtype, or null
  DType working_dtype = DType::kBFloat16;
  int64_t n = 0;
  float decay = 1.0f;  // multiplies param: constants.decay or 1
};

// Element j of a run adds its squared gradient to lane j % kLanes. Vector
// paths keep the lanes in registers (AVX-512: 2 x 8 doubles, AVX2: 4 x 4);
// the scalar path keeps an array. Same lanes, same order, same bits.
inline constexpr int kLanes = 16;

struct KernelResult {
  double sq_sum = 0.0;
  int64_t nonfinite_count = 0;
  int64_t first_nonfinite = -1;  // index into the run
};

KernelResult AdamWScalar(const KernelArgs& args, const AdamWConstants& c);
KernelResult AdamWAvx2(const KernelArgs& args, const AdamWConstants& c);
KernelResult AdamWAvx512(const KernelArgs& args, const AdamWConstants& c);

// args.param, exp_avg, exp_avg_sq and working are ignored.
KernelResult MeasureScalar(const KernelArgs& args, float grad_scale);
KernelResult MeasureAvx2(const KernelArgs& args, float grad_scale);
KernelResult MeasureAvx512(const KernelArgs& args, float grad_scale);

// The fixed order in which the lanes are summed.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline double SumLanes(const double* lanes) {
  double sum = 0.0;
  for (int l = 0; l < kLanes; ++l) sum += lanes[l];
  return sum;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool IsNonFinite(float x) {
  return (std::bit_cast<uint32_t>(x) & 0x7f800000u) == 0x7f800000u;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline float LoadGrad(const void* grad,
                                                   DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kFloat32:
      return static_cast<const float*>(grad)[i];
    case DType::kBFloat16:
      return FloatFromBFloat16(static_cast<const uint16_t*>(grad)[i]);
    case DType::kFloat16:
      return FloatFromHalf(static_cast<const uint16_t*>(grad)[i]);
  }
  return 0.0f;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void StoreWorking(void* working,
                                                      DType dtype, int64_t i,
                                                      float value) {
  switch (dtype) {
    case DType::kFloat32:
      static_cast<float*>(working)[i] = value;
      break;
    case DType::kBFloat16:
      static_cast<uint16_t*>(working)[i] = BFloat16FromFloat(value);
      break;
    case DType::kFloat16:
      static_cast<uint16_t*>(working)[i] = HalfFromFloat(value);
      break;
  }
}

// The AdamW update of one element: ReferenceAdamW's (torch.optim.AdamW's)
// sequence, except that the bias correction of v is folded into step_size
// and eps (see AdamWConstants). The vector paths spell out the same sequence
// with intrinsics; change one and you must change all.
// `g` is the already scaled gradient.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void UpdateElement(const AdamWConstants& c,
                                                       float decay, float g,
                                                       float& p, float& m,
                                                       float& v) {
  p = p * decay;
  m = m + c.one_minus_beta1 * (g - m);
  v = c.beta2 * v + (c.one_minus_beta2 * g) * g;
  p = p - (c.step_size * m) / (std::sqrt(v) + c.eps);
}

// The whole per-element job, lanes included, for the scalar path and the
// tails of the vector paths. `j` is the index within the run. The dtypes and
// has_working are passed separately from `a` so that callers passing
// compile-time constants get the switches folded away.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void ScalarElement(
    const KernelArgs& a, const AdamWConstants& c, DType grad_dtype,
    bool has_working, DType working_dtype, int64_t j, double* lanes,
    KernelResult* result) {
  const float g = LoadGrad(a.grad, grad_dtype, j) * c.grad_scale;
  if (IsNonFinite(g)) {
    if (result->nonfinite_count++ == 0) result->first_nonfinite = j;
  }
  const double gd = g;
  lanes[j % kLanes] += gd * gd;
  float p = a.param[j], m = a.exp_avg[j], v = a.exp_avg_sq[j];
  UpdateElement(c, a.decay, g, p, m, v);
  a.param[j] = p;
  a.exp_avg[j] = m;
  a.exp_avg_sq[j] = v;
  if (has_working) StoreWorking(a.working, working_dtype, j, p);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void ScalarMeasure(const KernelArgs& a,
                                                       float grad_scale,
                                                       DType grad_dtype,
                                                       int64_t j, double* lanes,
                                                       KernelResult* result) {
  const float g = LoadGrad(a.grad, grad_dtype, j) * grad_scale;
  if (IsNonFinite(g)) {
    if (result->nonfinite_count++ == 0) result->first_nonfinite = j;
  }
  const double gd = g;
  lanes[j % kLanes] += gd * gd;
}

// Calls f.template operator()<kGrad, kHasWorking, kWorking>() with a's
// dtypes as compile-time constants, so each path compiles one loop per
// combination without a branch per element. (kWorking is kFloat32 and
// meaningless when !kHasWorking.)
template <DType kGrad, typename F>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline KernelResult DispatchWorking(
    const KernelArgs& a, F& f) {
  if (a.working == nullptr) {
    return f.template operator()<kGrad, false, DType::kFloat32>();
  }
  switch (a.working_dtype) {
    case DType::kFloat32:
      return f.template operator()<kGrad, true, DType::kFloat32>();
    case DType::kBFloat16:
      return f.template operator()<kGrad, true, DType::kBFloat16>();
    case DType::kFloat16:
      return f.template operator()<kGrad, true, DType::kFloat16>();
  }
  return {};
}

template <typename F>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline KernelResult DispatchDTypes(
    const KernelArgs& a, F&& f) {
  switch (a.grad_dtype) {
    case DType::kFloat32:
      return DispatchWorking<DType::kFloat32>(a, f);
    case DType::kBFloat16:
      return DispatchWorking<DType::kBFloat16>(a, f);
    case DType::kFloat16:
      return DispatchWorking<DType::kFloat16>(a, f);
  }
  return {};
}

}  // namespace stronghold::core::optim_internal

#endif  // STRONGHOLD_CORE_OPTIM_ADAMW_KERNEL_INTERNAL_H_
