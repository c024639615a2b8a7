// The AVX-512F AdamW path: 16 floats per step, the statistics in two vectors
// of 8 doubles (lanes 0-7 and 8-15). Built with -mavx512f and called only
// when the CPU has it. Mirrors adamw_kernel_internal.h's UpdateElement
// operation for operation; see adamw_kernel.h for why that matters.
#include <immintrin.h>

#include <cstdint>

#include "core/optim/adamw_kernel_internal.h"

namespace stronghold::core::optim_internal {
namespace {

template <DType kGrad>
inline __m512 LoadGrad16(const void* grad, int64_t j) {
  if constexpr (kGrad == DType::kFloat32) {
    return _mm512_loadu_ps(static_cast<const float*>(grad) + j);
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
        static_cast<const uint16_t*>(grad) + j));
    if constexpr (kGrad == DType::kBFloat16) {
      return _mm512_castsi512_ps(
          _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    } else {
      return _mm512_cvtph_ps(h);  // exact; quiets NaN like FloatFromHalf
    }
  }
}

// BFloat16FromFloat on 16 lanes, widened to 32 bits.
inline __m512i BFloat16Bits(__m512 x) {
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i high = _mm512_srli_epi32(bits, 16);
  const __m512i lsb = _mm512_and_si512(high, _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(
      _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))),
      16);
  const __m512i abs = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff));
  const __mmask16 nan =
      _mm512_cmpgt_epi32_mask(abs, _mm512_set1_epi32(0x7f800000));
  const __m512i quiet = _mm512_or_si512(high, _mm512_set1_epi32(0x0040));
  return _mm512_mask_mov_epi32(rounded, nan, quiet);
}

template <DType kWorking>
inline void StoreWorking16(void* working, int64_t j, __m512 p) {
  if constexpr (kWorking == DType::kFloat32) {
    _mm512_storeu_ps(static_cast<float*>(working) + j, p);
  } else {
    auto* out = reinterpret_cast<__m256i*>(static_cast<uint16_t*>(working) + j);
    if constexpr (kWorking == DType::kBFloat16) {
      _mm256_storeu_si256(out, _mm512_cvtepi32_epi16(BFloat16Bits(p)));
    } else {
      _mm256_storeu_si256(out, _mm512_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT |
                                                      _MM_FROUND_NO_EXC));
    }
  }
}

// Adds g's squares to the lanes and notes non-finite elements (j = index of
// g's first element within the run).
struct Stats16 {
  __m512d lo = _mm512_setzero_pd();  // lanes 0-7
  __m512d hi = _mm512_setzero_pd();  // lanes 8-15

  inline void Add(__m512 g, int64_t j, KernelResult* result) {
    const __m512i exponent = _mm512_set1_epi32(0x7f800000);
    const __mmask16 bad = _mm512_cmpeq_epi32_mask(
        _mm512_and_si512(_mm512_castps_si512(g), exponent), exponent);
    if (bad != 0) [[unlikely]] {
      if (result->nonfinite_count == 0) {
        result->first_nonfinite = j + __builtin_ctz(bad);
      }
      result->nonfinite_count += __builtin_popcount(bad);
    }
    const __m512d g_lo = _mm512_cvtps_pd(_mm512_castps512_ps256(g));
    const __m512d g_hi = _mm512_cvtps_pd(
        _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(g), 1)));
    lo = _mm512_add_pd(lo, _mm512_mul_pd(g_lo, g_lo));
    hi = _mm512_add_pd(hi, _mm512_mul_pd(g_hi, g_hi));
  }

  inline void Store(double* lanes) const {
    _mm512_storeu_pd(lanes, lo);
    _mm512_storeu_pd(lanes + 8, hi);
  }
};

template <DType kGrad, bool kHasWorking, DType kWorking>
KernelResult Run(const KernelArgs& a, const AdamWConstants& c) {
  const __m512 scale = _mm512_set1_ps(c.grad_scale);
  const __m512 decay = _mm512_set1_ps(a.decay);
  const __m512 one_minus_beta1 = _mm512_set1_ps(c.one_minus_beta1);
  const __m512 beta2 = _mm512_set1_ps(c.beta2);
  const __m512 one_minus_beta2 = _mm512_set1_ps(c.one_minus_beta2);
  const __m512 step_size = _mm512_set1_ps(c.step_size);
  const __m512 eps = _mm512_set1_ps(c.eps);
  KernelResult result;
  Stats16 stats;
  const int64_t vector_end = a.n - a.n % kLanes;
  for (int64_t j = 0; j < vector_end; j += 16) {
    const __m512 g = _mm512_mul_ps(LoadGrad16<kGrad>(a.grad, j), scale);
    stats.Add(g, j, &result);
    __m512 p = _mm512_loadu_ps(a.param + j);
    __m512 m = _mm512_loadu_ps(a.exp_avg + j);
    __m512 v = _mm512_loadu_ps(a.exp_avg_sq + j);
    p = _mm512_mul_ps(p, decay);
    m = _mm512_add_ps(m, _mm512_mul_ps(one_minus_beta1, _mm512_sub_ps(g, m)));
    v = _mm512_add_ps(_mm512_mul_ps(beta2, v),
                      _mm512_mul_ps(_mm512_mul_ps(one_minus_beta2, g), g));
    const __m512 denom = _mm512_add_ps(_mm512_sqrt_ps(v), eps);
    p = _mm512_sub_ps(p, _mm512_div_ps(_mm512_mul_ps(step_size, m), denom));
    _mm512_storeu_ps(a.param + j, p);
    _mm512_storeu_ps(a.exp_avg + j, m);
    _mm512_storeu_ps(a.exp_avg_sq + j, v);
    if constexpr (kHasWorking) StoreWorking16<kWorking>(a.working, j, p);
  }
  double lanes[kLanes];
  stats.Store(lanes);
  for (int64_t j = vector_end; j < a.n; ++j) {
    ScalarElement(a, c, kGrad, kHasWorking, kWorking, j, lanes, &result);
  }
  result.sq_sum = SumLanes(lanes);
  return result;
}

template <DType kGrad>
KernelResult Measure(const KernelArgs& a, float grad_scale) {
  const __m512 scale = _mm512_set1_ps(grad_scale);
  KernelResult result;
  Stats16 stats;
  const int64_t vector_end = a.n - a.n % kLanes;
  for (int64_t j = 0; j < vector_end; j += 16) {
    stats.Add(_mm512_mul_ps(LoadGrad16<kGrad>(a.grad, j), scale), j, &result);
  }
  double lanes[kLanes];
  stats.Store(lanes);
  for (int64_t j = vector_end; j < a.n; ++j) {
    ScalarMeasure(a, grad_scale, kGrad, j, lanes, &result);
  }
  result.sq_sum = SumLanes(lanes);
  return result;
}

}  // namespace

KernelResult AdamWAvx512(const KernelArgs& a, const AdamWConstants& c) {
  return DispatchDTypes(a,
                        [&]<DType kGrad, bool kHasWorking, DType kWorking>() {
                          return Run<kGrad, kHasWorking, kWorking>(a, c);
                        });
}

KernelResult MeasureAvx512(const KernelArgs& a, float grad_scale) {
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
