// The scalar AdamW path: the portable fallback, and the definition of what
// the vector paths must reproduce bit for bit. Built without -m flags.
#include <cstdint>

#include "core/optim/adamw_kernel_internal.h"

namespace stronghold::core::optim_internal {
namespace {

template <DType kGrad, bool kHasWorking, DType kWorking>
KernelResult Run(const KernelArgs& a, const AdamWConstants& c) {
  double lanes[kLanes] = {};
  KernelResult result;
  for (int64_t j = 0; j < a.n; ++j) {
    ScalarElement(a, c, kGrad, kHasWorking, kWorking, j, lanes, &result);
  }
  result.sq_sum = SumLanes(lanes);
  return result;
}

template <DType kGrad>
KernelResult Measure(const KernelArgs& a, float grad_scale) {
  double lanes[kLanes] = {};
  KernelResult result;
  for (int64_t j = 0; j < a.n; ++j) {
    ScalarMeasure(a, grad_scale, kGrad, j, lanes, &result);
  }
  result.sq_sum = SumLanes(lanes);
  return result;
}

}  // namespace

KernelResult AdamWScalar(const KernelArgs& a, const AdamWConstants& c) {
  return DispatchDTypes(a,
                        [&]<DType kGrad, bool kHasWorking, DType kWorking>() {
                          return Run<kGrad, kHasWorking, kWorking>(a, c);
                        });
}

KernelResult MeasureScalar(const KernelArgs& a, float grad_scale) {
  switch (a.grad_dtype) {
    case DType::kFloat32:
      return Measure<DType::kFloat32>(a, grad_scale);
    case DType::kBFloat16:
      return Measure<DType::kBFloat16>(a, grad_scale);
    case DType::kFloat16:
      return Measure<DType::kFloat16>(a, grad_scale);
  }
  return {};
}

}  // namespace stronghold::core::optim_internal
