// The per-layer optimizer interface the training engine drives.
//
// Parameters, gradients and Adam moments live in one flat fp32 buffer per
// layer (see core/gpt_layout.h). Within a buffer, the first `decay_count`
// elements are weight matrices that get AdamW's decoupled weight decay; the
// rest (biases, LayerNorm gains) do not.
//
// Thread safety: Step() may be called concurrently for different buffers.
#ifndef STRONGHOLD_CORE_OPTIM_OPTIMIZER_H_
#define STRONGHOLD_CORE_OPTIM_OPTIMIZER_H_

#include <cstdint>

namespace stronghold::core {

// Hyper-parameters of one AdamW step (PyTorch's torch.optim.AdamW semantics).
struct AdamWStep {
  float lr = 0.0f;            // learning rate of this step
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // decoupled: p -= lr * weight_decay * p
  int64_t step = 1;           // 1-based, for bias correction
  // Every gradient element is multiplied by this before use: the global-norm
  // clip factor times 1/loss_scale. 1 = unchanged.
  float grad_scale = 1.0f;
};

// One layer's flat buffers; all hold `count` fp32 elements.
struct ParamBuffer {
  float* param = nullptr;       // fp32 master weights, updated in place
  float* exp_avg = nullptr;     // m
  float* exp_avg_sq = nullptr;  // v
  const float* grad = nullptr;
  int64_t count = 0;
  int64_t decay_count = 0;      // elements [0, decay_count) are decayed
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Applies one AdamW step to `buffer`.
  virtual void Step(const ParamBuffer& buffer, const AdamWStep& hyper) = 0;
};

// A plain scalar AdamW, the reference every faster optimizer is checked
// against. Deterministic: element order and arithmetic are fixed.
class ReferenceAdamW final : public Optimizer {
 public:
  void Step(const ParamBuffer& buffer, const AdamWStep& hyper) override;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_OPTIM_OPTIMIZER_H_
