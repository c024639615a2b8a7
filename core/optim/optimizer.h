// The per-layer optimizer interface the training engine drives.
//
// Parameters, gradients and Adam moments live in one flat fp32 buffer per
// layer (see core/model/gpt_layout.h). Within a buffer, the first `decay_count`
// elements are weight matrices that get AdamW's decoupled weight decay; the
// rest (biases, LayerNorm gains) do not.
//
// Beyond fp32, a step may read a low-precision gradient (what the device
// sends back under mixed precision) and write a low-precision working copy of
// the updated weights (what the next host-to-device copy sends). It also
// measures the gradient, because global-norm clipping and fp16 loss scaling
// need its squared norm and any non-finite element.
//
// Thread safety: Step() may be called concurrently for different buffers.
#ifndef STRONGHOLD_CORE_OPTIM_OPTIMIZER_H_
#define STRONGHOLD_CORE_OPTIM_OPTIMIZER_H_

#include <cstdint>

namespace stronghold::core {

// Element type of a gradient or of the working copy.
enum class DType : uint8_t {
  kFloat32,
  kBFloat16,  // converted from fp32 with round-to-nearest-even
  kFloat16,   // IEEE binary16, correctly rounded, subnormals kept
};

// Bytes per element of `dtype`.
constexpr int DTypeBytes(DType dtype) {
  return dtype == DType::kFloat32 ? 4 : 2;
}

// Hyper-parameters of one AdamW step (PyTorch's torch.optim.AdamW semantics).
struct AdamWStep {
  float lr = 0.0f;  // learning rate of this step
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // decoupled: p -= lr * weight_decay * p
  int64_t step = 1;           // 1-based, for bias correction
  // Every gradient element is multiplied by this before use: the global-norm
  // clip factor times 1/loss_scale. 1 = unchanged.
  float grad_scale = 1.0f;
};

struct StepStats;

// One layer's flat buffers; all hold `count` elements.
struct ParamBuffer {
  float* param = nullptr;       // fp32 master weights, updated in place
  float* exp_avg = nullptr;     // m, fp32
  float* exp_avg_sq = nullptr;  // v, fp32
  const float* grad = nullptr;  // fp32 gradient; ignored if grad_data is set
  int64_t count = 0;
  int64_t decay_count = 0;  // elements [0, decay_count) are decayed

  // Optional low-precision gradient: when non-null it is read instead of
  // `grad`, as `count` elements of `grad_dtype`.
  const void* grad_data = nullptr;
  DType grad_dtype = DType::kFloat32;

  // Optional output: when non-null, receives the updated weights converted to
  // `working_dtype` (`count` elements), in the same pass as the update.
  void* working = nullptr;
  DType working_dtype = DType::kBFloat16;

  // Data parallelism (core/plan/shard.h): a rank's slice of a larger buffer
  // is cut into that buffer's chunks (> 0: this chunk length, a multiple of
  // 16, instead of the optimizer's own choice for `count`), so that each
  // element and each chunk's statistics come out as for the whole buffer.
  int64_t chunk_elements = 0;
  // Optional output of optimizers that work in chunks (FusedAdamW): each
  // chunk's statistics in chunk order (ceil(count / chunk) entries, indices
  // relative to this buffer), which summed in order give the total.
  StepStats* chunk_stats = nullptr;
};

// What a step saw in the (scaled) gradient g = grad * grad_scale.
struct StepStats {
  // Sum over elements of double(g)^2, accumulated in double. Non-finite when
  // any g is. A layer's piece of the global gradient norm.
  double grad_sq_sum = 0.0;
  int64_t nonfinite_count = 0;   // elements whose g is inf or NaN
  int64_t first_nonfinite = -1;  // lowest such index, -1 if none
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Applies one AdamW step to `buffer`.
  virtual void Step(const ParamBuffer& buffer, const AdamWStep& hyper) = 0;
  // Step() plus the gradient's statistics. The default reads the gradient a
  // second time; optimizers that can measure in the same pass override it.
  // A non-finite gradient is still applied (it turns the touched weights into
  // NaN): callers that must skip such steps measure first (MeasureGradient or
  // FusedAdamW::SubmitMeasure) and step only when the result is finite.
  virtual StepStats StepAndMeasure(const ParamBuffer& buffer,
                                   const AdamWStep& hyper);
};

// The statistics of `buffer`'s gradient scaled by `grad_scale`, scalar and
// single-threaded; reads nothing but the gradient.
StepStats MeasureGradient(const ParamBuffer& buffer, float grad_scale);

// A plain scalar AdamW, the reference every faster optimizer is checked
// against. Deterministic: element order and arithmetic are fixed.
class ReferenceAdamW final : public Optimizer {
 public:
  void Step(const ParamBuffer& buffer, const AdamWStep& hyper) override;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_OPTIM_OPTIMIZER_H_
