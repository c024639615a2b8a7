#include <cmath>

#include "core/optim/optimizer.h"

namespace stronghold::core {

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
    const float g = b.grad[i] * h.grad_scale;
    float p = b.param[i];
    if (i < b.decay_count) p *= decay;
    const float m = b.exp_avg[i] + (1.0f - h.beta1) * (g - b.exp_avg[i]);
    const float v = h.beta2 * b.exp_avg_sq[i] + (1.0f - h.beta2) * g * g;
    b.exp_avg[i] = m;
    b.exp_avg_sq[i] = v;
    b.param[i] = p - step_size * m / (std::sqrt(v) / bc2_sqrt + h.eps);
  }
}

}  // namespace stronghold::core
