// The fused AdamW kernel: one pass over a range of a layer's flat buffers.
//
// Per element it reads the fp32 master weight, m, v and the gradient (fp32,
// bf16 or fp16), writes weight, m, v and optionally the low-precision working
// copy, and measures the scaled gradient (squared sum, non-finite elements).
// That is 28 bytes of memory traffic per element for fp32 gradients; one
// pass instead of the several of an op-by-op AdamW is what makes the step
// run near memory speed. The arithmetic is not free: a sqrt and a division
// per element keep a core's divider busy, so the operation sequence is
// chosen to need no more than those two.
//
// Three code paths compute the same thing: scalar, AVX2 (+F16C) and AVX-512F.
// They give bit-identical results (and agree with ReferenceAdamW up to the
// last bits, see AdamWConstants): all follow the same sequence of IEEE
// operations (+, -, *, /, sqrt are correctly rounded in SIMD and scalar
// alike), none uses fused multiply-add (the kernels are compiled with
// -ffp-contract=off), and the squared sum uses the same 16 double
// accumulators in the same order on every path.
//
// Thread safety: the functions here are pure apart from writing the buffers;
// disjoint ranges may be processed concurrently.
#ifndef STRONGHOLD_CORE_OPTIM_ADAMW_KERNEL_H_
#define STRONGHOLD_CORE_OPTIM_ADAMW_KERNEL_H_

#include <cstdint>

#include "absl/status/status.h"
#include "core/optim/optimizer.h"

namespace stronghold::core {

enum class Isa : uint8_t { kScalar, kAvx2, kAvx512 };

// "scalar", "avx2" or "avx512".
const char* IsaName(Isa isa);

// Whether this CPU (and OS) can run `isa`'s path: AVX2 needs AVX2 and F16C,
// AVX-512 needs AVX512F.
bool IsaSupported(Isa isa);

// The widest supported path.
Isa BestIsa();

// Per-step constants, derived from AdamWStep in double and rounded to float
// once.
struct AdamWConstants {
  float decay = 1.0f;  // 1 - lr * weight_decay
  float one_minus_beta1 = 0.1f;
  float beta2 = 0.95f;
  float one_minus_beta2 = 0.05f;
  // torch computes p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps). We multiply
  // through by sqrt(bc2): p -= step_size * m / (sqrt(v) + eps), the same
  // value with one division less per element. The divider (sqrt and div)
  // is what bounds a core here, so a core gets through more elements; the
  // price is last-bit differences from ReferenceAdamW (none between our
  // own paths).
  float step_size = 0.0f;  // lr / (1 - beta1^step) * sqrt(1 - beta2^step)
  float eps = 1e-8f;       // eps * sqrt(1 - beta2^step)
  float grad_scale = 1.0f;
};

AdamWConstants MakeAdamWConstants(const AdamWStep& hyper);

// InvalidArgument when `buffer` is inconsistent: negative count, decay_count
// outside [0, count], a missing pointer in a non-empty buffer, or a
// low-precision grad_dtype without grad_data.
absl::Status ValidateParamBuffer(const ParamBuffer& buffer);

// The part of ValidateParamBuffer that concerns the gradient alone (count,
// decay_count, gradient pointer and dtype): enough for a measure-only pass.
absl::Status ValidateGradient(const ParamBuffer& buffer);

// InvalidArgument for step < 1, betas outside [0, 1), eps < 0, or a
// non-finite lr, weight_decay or grad_scale.
absl::Status ValidateAdamWStep(const AdamWStep& hyper);

// Applies one AdamW step to elements [begin, end) of `buffer` on the calling
// thread with `isa`'s path. `buffer` must be valid and `isa` supported.
// first_nonfinite in the result is an index into the whole buffer.
StepStats AdamWRange(Isa isa, const ParamBuffer& buffer,
                     const AdamWConstants& constants, int64_t begin,
                     int64_t end);

// Only the measuring half of AdamWRange: reads the gradient of [begin, end),
// writes nothing. Gives the same bits as AdamWRange's statistics.
StepStats MeasureRange(Isa isa, const ParamBuffer& buffer, float grad_scale,
                       int64_t begin, int64_t end);

// acc[i] = (first ? 0 + g[i] : acc[i] + g[i]) for i in [begin, end), g of
// `dtype` converted exactly to fp32 (gradients of every precision are
// accumulated in fp32 on the host). `0 + g` turns -0 into +0, as autograd's
// first accumulation does. Exact elementwise IEEE adds: any split of the
// range gives the same bits.
void AccumulateRange(const void* g, DType dtype, bool first, float* acc,
                     int64_t begin, int64_t end);

// Folds `next` (the statistics of a range that follows `into`'s) into `into`.
void AppendStats(const StepStats& next, StepStats* into);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_OPTIM_ADAMW_KERNEL_H_
