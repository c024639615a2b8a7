#include "core/optim/adamw_kernel.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/optim/adamw_kernel_internal.h"
#include "core/optim/float16.h"

namespace stronghold::core {
namespace {

using optim_internal::KernelArgs;
using optim_internal::KernelResult;

// The gradient of `b` as (pointer, dtype): grad_data wins over grad.
const void* GradPointer(const ParamBuffer& b) {
  return b.grad_data != nullptr ? b.grad_data
                                : static_cast<const void*>(b.grad);
}

DType GradDType(const ParamBuffer& b) {
  return b.grad_data != nullptr ? b.grad_dtype : DType::kFloat32;
}

// p + offset, leaving null (a measure-only buffer has no param) alone.
float* Offset(float* p, int64_t offset) {
  return p == nullptr ? nullptr : p + offset;
}

KernelArgs ArgsFor(const ParamBuffer& b, int64_t begin, int64_t end,
                   float decay) {
  KernelArgs a;
  a.param = Offset(b.param, begin);
  a.exp_avg = Offset(b.exp_avg, begin);
  a.exp_avg_sq = Offset(b.exp_avg_sq, begin);
  a.grad_dtype = GradDType(b);
  a.grad = static_cast<const char*>(GradPointer(b)) +
           begin * DTypeBytes(a.grad_dtype);
  if (b.working != nullptr) {
    a.working =
        static_cast<char*>(b.working) + begin * DTypeBytes(b.working_dtype);
    a.working_dtype = b.working_dtype;
  }
  a.n = end - begin;
  a.decay = decay;
  return a;
}

StepStats ToStats(const KernelResult& r, int64_t begin) {
  StepStats s;
  s.grad_sq_sum = r.sq_sum;
  s.nonfinite_count = r.nonfinite_count;
  s.first_nonfinite = r.first_nonfinite < 0 ? -1 : begin + r.first_nonfinite;
  return s;
}

KernelResult RunKernel(Isa isa, const KernelArgs& a, const AdamWConstants& c) {
  switch (isa) {
    case Isa::kAvx512:
      return optim_internal::AdamWAvx512(a, c);
    case Isa::kAvx2:
      return optim_internal::AdamWAvx2(a, c);
    case Isa::kScalar:
      break;
  }
  return optim_internal::AdamWScalar(a, c);
}

KernelResult RunMeasure(Isa isa, const KernelArgs& a, float grad_scale) {
  switch (isa) {
    case Isa::kAvx512:
      return optim_internal::MeasureAvx512(a, grad_scale);
    case Isa::kAvx2:
      return optim_internal::MeasureAvx2(a, grad_scale);
    case Isa::kScalar:
      break;
  }
  return optim_internal::MeasureScalar(a, grad_scale);
}

bool IsValidDType(DType d) {
  return d == DType::kFloat32 || d == DType::kBFloat16 || d == DType::kFloat16;
}

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

bool IsaSupported(Isa isa) {
  // __builtin_cpu_supports also checks that the OS saves the wider registers
  // (XGETBV), so a kernel that disabled AVX-512 state reads as "no".
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f");
  }
  return false;
}

Isa BestIsa() {
  if (IsaSupported(Isa::kAvx512)) return Isa::kAvx512;
  if (IsaSupported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

AdamWConstants MakeAdamWConstants(const AdamWStep& h) {
  // As ReferenceAdamW::Step: bias corrections in double, rounded once.
  const double bc1 = 1.0 - std::pow(static_cast<double>(h.beta1), h.step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(h.beta2), h.step);
  AdamWConstants c;
  c.decay = 1.0f - h.lr * h.weight_decay;
  c.one_minus_beta1 = 1.0f - h.beta1;
  c.beta2 = h.beta2;
  c.one_minus_beta2 = 1.0f - h.beta2;
  c.step_size = static_cast<float>(h.lr / bc1 * std::sqrt(bc2));
  c.eps = static_cast<float>(h.eps * std::sqrt(bc2));
  c.grad_scale = h.grad_scale;
  return c;
}

absl::Status ValidateGradient(const ParamBuffer& b) {
  if (b.count < 0) {
    return absl::InvalidArgumentError(absl::StrCat("negative count ", b.count));
  }
  if (b.decay_count < 0 || b.decay_count > b.count) {
    return absl::InvalidArgumentError(absl::StrCat(
        "decay_count ", b.decay_count, " outside [0, count=", b.count, "]"));
  }
  if (!IsValidDType(b.grad_dtype) || !IsValidDType(b.working_dtype)) {
    return absl::InvalidArgumentError("unknown grad_dtype or working_dtype");
  }
  if (b.grad_data == nullptr && b.grad_dtype != DType::kFloat32) {
    return absl::InvalidArgumentError(
        "a low-precision grad_dtype needs grad_data (grad is fp32 only)");
  }
  if (b.count > 0 && GradPointer(b) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("buffer of ", b.count, " elements has no gradient"));
  }
  return absl::OkStatus();
}

absl::Status ValidateParamBuffer(const ParamBuffer& b) {
  if (absl::Status s = ValidateGradient(b); !s.ok()) return s;
  if (b.count > 0 &&
      (b.param == nullptr || b.exp_avg == nullptr || b.exp_avg_sq == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "buffer of ", b.count, " elements lacks param, exp_avg or exp_avg_sq"));
  }
  return absl::OkStatus();
}

absl::Status ValidateAdamWStep(const AdamWStep& h) {
  if (h.step < 1) {
    return absl::InvalidArgumentError(absl::StrCat("step ", h.step, " < 1"));
  }
  if (!(h.beta1 >= 0.0f && h.beta1 < 1.0f && h.beta2 >= 0.0f &&
        h.beta2 < 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("betas (", h.beta1, ", ", h.beta2, ") outside [0, 1)"));
  }
  if (!(h.eps >= 0.0f) || !std::isfinite(h.eps) || !std::isfinite(h.lr) ||
      !std::isfinite(h.weight_decay) || !std::isfinite(h.grad_scale)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad hyper-parameter: lr ", h.lr, " eps ", h.eps, " weight_decay ",
        h.weight_decay, " grad_scale ", h.grad_scale));
  }
  return absl::OkStatus();
}

StepStats AdamWRange(Isa isa, const ParamBuffer& b, const AdamWConstants& c,
                     int64_t begin, int64_t end) {
  // A range that straddles decay_count runs as two runs, each with its own
  // decay factor (1 = none; p * 1.0f == p exactly, as ReferenceAdamW's skip).
  const int64_t split = std::clamp(b.decay_count, begin, end);
  StepStats stats;
  if (split > begin) {
    AppendStats(
        ToStats(RunKernel(isa, ArgsFor(b, begin, split, c.decay), c), begin),
        &stats);
  }
  if (end > split) {
    AppendStats(ToStats(RunKernel(isa, ArgsFor(b, split, end, 1.0f), c), split),
                &stats);
  }
  return stats;
}

StepStats MeasureRange(Isa isa, const ParamBuffer& b, float grad_scale,
                       int64_t begin, int64_t end) {
  // Split exactly as AdamWRange does, so the lanes and the bits agree.
  const int64_t split = std::clamp(b.decay_count, begin, end);
  StepStats stats;
  if (split > begin) {
    AppendStats(
        ToStats(RunMeasure(isa, ArgsFor(b, begin, split, 1.0f), grad_scale),
                begin),
        &stats);
  }
  if (end > split) {
    AppendStats(
        ToStats(RunMeasure(isa, ArgsFor(b, split, end, 1.0f), grad_scale),
                split),
        &stats);
  }
  return stats;
}

void AccumulateRange(const void* g, DType dtype, bool first, float* acc,
                     int64_t begin, int64_t end) {
  if (dtype == DType::kFloat32) {
    const float* s = static_cast<const float*>(g);
    if (first) {
      for (int64_t i = begin; i < end; ++i) acc[i] = 0.0f + s[i];
    } else {
      for (int64_t i = begin; i < end; ++i) acc[i] += s[i];
    }
    return;
  }
  const uint16_t* s = static_cast<const uint16_t*>(g);
  if (dtype == DType::kBFloat16) {
    for (int64_t i = begin; i < end; ++i) {
      const float x = FloatFromBFloat16(s[i]);
      acc[i] = first ? 0.0f + x : acc[i] + x;
    }
  } else {
    for (int64_t i = begin; i < end; ++i) {
      const float x = FloatFromHalf(s[i]);
      acc[i] = first ? 0.0f + x : acc[i] + x;
    }
  }
}

void AppendStats(const StepStats& next, StepStats* into) {
  into->grad_sq_sum += next.grad_sq_sum;
  if (into->first_nonfinite < 0) into->first_nonfinite = next.first_nonfinite;
  into->nonfinite_count += next.nonfinite_count;
}

}  // namespace stronghold::core
