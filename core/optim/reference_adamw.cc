#include <cmath>

#include "core/optim/float16.h"
#include "core/optim/optimizer.h"

namespace stronghold::core {
namespace {

float GradAt(const ParamBuffer& b, int64_t i) {
  if (b.grad_data == nullptr) return b.grad[i];
  const auto* g16 = static_cast<const uint16_t*>(b.grad_data);
  switch (b.grad_dtype) {
    case DType::kFloat32:
      return static_cast<const float*>(b.grad_data)[i];
    case DType::kBFloat16:
      return FloatFromBFloat16(g16[i]);
    case DType::kFloat16:
      return FloatFromHalf(g16[i]);
  }
  return 0.0f;
}

void StoreWorking(const ParamBuffer& b, int64_t i, float p) {
  auto* w16 = static_cast<uint16_t*>(b.working);
  switch (b.working_dtype) {
    case DType::kFloat32:
      static_cast<float*>(b.working)[i] = p;
      break;
    case DType::kBFloat16:
      w16[i] = BFloat16FromFloat(p);
      break;
    case DType::kFloat16:
      w16[i] = HalfFromFloat(p);
      break;
  }
}

}  // namespace

void ReferenceAdamW::Step(const ParamBuffer& b, const AdamWStep& h) {
  // Same operation order as torch.optim.AdamW (single-tensor path):
  //   p *= 1 - lr*wd;  m = lerp(m, g, 1-b1);  v = b2*v + (1-b2)*g*g;
  //   p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
  const double bc1 = 1.0 - std::pow(static_cast<double>(h.beta1), h.step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(h.beta2), h.step);
  const float step_size = static_cast<float>(h.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float decay = 1.0f - h.lr * h.weight_decay;
  for (int64_t i = 0; i < b.count; ++i) {
    const float g = GradAt(b, i) * h.grad_scale;
    float p = b.param[i];
    if (i < b.decay_count) p *= decay;
    const float m = b.exp_avg[i] + (1.0f - h.beta1) * (g - b.exp_avg[i]);
    const float v = h.beta2 * b.exp_avg_sq[i] + (1.0f - h.beta2) * g * g;
    b.exp_avg[i] = m;
    b.exp_avg_sq[i] = v;
    b.param[i] = p - step_size * m / (std::sqrt(v) / bc2_sqrt + h.eps);
    if (b.working != nullptr) StoreWorking(b, i, b.param[i]);
  }
}

StepStats Optimizer::StepAndMeasure(const ParamBuffer& buffer,
                                    const AdamWStep& hyper) {
  const StepStats stats = MeasureGradient(buffer, hyper.grad_scale);
  Step(buffer, hyper);
  return stats;
}

StepStats MeasureGradient(const ParamBuffer& b, float grad_scale) {
  StepStats stats;
  for (int64_t i = 0; i < b.count; ++i) {
    const float g = GradAt(b, i) * grad_scale;
    if (!std::isfinite(g) && stats.nonfinite_count++ == 0) {
      stats.first_nonfinite = i;
    }
    stats.grad_sq_sum += static_cast<double>(g) * g;
  }
  return stats;
}

}  // namespace stronghold::core
