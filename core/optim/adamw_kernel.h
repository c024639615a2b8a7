// The fused AdamW kernel: one pass over a range of a layer's flat buffers.
//
// Per element it reads the fp32 master weight, m, v and the gradient (fp32,
// bf16 or fp16), writes weight, m, v and optionally the low-precision working
// copy, and measures the scaled gradient (squared sum, non-finite elements).
// That is 28 bytes of memory traffic per element for fp32 gradients, and the
// arithmetic is far below what the memory system allows, so one pass is what
// makes the step run at memory speed.
//
// Three code paths compute the same thing: scalar, AVX2 (+F16C) and AVX-512F.
// They give bit-identical results, and identical to ReferenceAdamW in fp32:
// all follow the same sequence of IEEE operations (+, -, *, /, sqrt are
// correctly rounded in SIMD and scalar alike), none uses fused multiply-add
// (the kernels are compiled with -ffp-contract=off), and the squared sum
// uses the same 16 double accumulators in the same order on every path.
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

// Per-step constants, derived from AdamWStep exactly as ReferenceAdamW does
// (bias corrections in double, then rounded to float once).
struct AdamWConstants {
  float decay = 1.0f;  // 1 - lr * weight_decay
  float one_minus_beta1 = 0.1f;
  float beta2 = 0.95f;
  float one_minus_beta2 = 0.05f;
  float step_size = 0.0f;  // lr / (1 - beta1^step)
  float bc2_sqrt = 1.0f;   // sqrt(1 - beta2^step)
  float eps = 1e-8f;
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

// Folds `next` (the statistics of a range that follows `into`'s) into `into`.
void AppendStats(const StepStats& next, StepStats* into);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_OPTIM_ADAMW_KERNEL_H_
