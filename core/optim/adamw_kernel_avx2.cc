// The AVX2 (+F16C) AdamW path: two vectors of 8 floats per step of 16, the
// statistics in four vectors of 4 doubles (lanes 0-3, 4-7, 8-11, 12-15).
// Built with -mavx2 -mf16c and called only when the CPU has both. Mirrors
// adamw_kernel_internal.h's UpdateElement operation for operation.
#include <immintrin.h>

#include <cstdint>

#include "core/optim/adamw_kernel_internal.h"

namespace stronghold::core::optim_internal {
namespace {

template <DType kGrad>
inline __m256 LoadGrad8(const void* grad, int64_t j) {
  if constexpr (kGrad == DType::kFloat32) {
    return _mm256_loadu_ps(static_cast<const float*>(grad) + j);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(
        static_cast<const uint16_t*>(grad) + j));
    if constexpr (kGrad == DType::kBFloat16) {
      return _mm256_castsi256_ps(
          _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    } else {
      return _mm256_cvtph_ps(h);  // exact; quiets NaN like FloatFromHalf
    }
  }
}

// BFloat16FromFloat on 8 lanes, widened to 32 bits.
inline __m256i BFloat16Bits(__m256 x) {
  const __m256i bits = _mm256_castps_si256(x);
  const __m256i high = _mm256_srli_epi32(bits, 16);
  const __m256i lsb = _mm256_and_si256(high, _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(
      _mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))),
      16);
  const __m256i abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
  const __m256i quiet = _mm256_or_si256(high, _mm256_set1_epi32(0x0040));
  return _mm256_blendv_epi8(rounded, quiet, nan);
}

// Stores the working copy of the 16 elements p0 (first 8) and p1 (next 8).
template <DType kWorking>
inline void StoreWorking16(void* working, int64_t j, __m256 p0, __m256 p1) {
  if constexpr (kWorking == DType::kFloat32) {
    _mm256_storeu_ps(static_cast<float*>(working) + j, p0);
    _mm256_storeu_ps(static_cast<float*>(working) + j + 8, p1);
  } else {
    uint16_t* out = static_cast<uint16_t*>(working) + j;
    if constexpr (kWorking == DType::kBFloat16) {
      // packus interleaves 128-bit halves: [p0 0-3, p1 0-3, p0 4-7, p1 4-7];
      // the permute puts the quarters back in order. Values are <= 0xffff,
      // so the unsigned saturation never triggers.
      const __m256i packed =
          _mm256_packus_epi32(BFloat16Bits(p0), BFloat16Bits(p1));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                          _mm256_permute4x64_epi64(packed, 0xd8));
    } else {
      constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                       _mm256_cvtps_ph(p0, kRound));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8),
                       _mm256_cvtps_ph(p1, kRound));
    }
  }
}

struct Stats16 {
  __m256d lanes[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(),
                      _mm256_setzero_pd(), _mm256_setzero_pd()};

  inline int NonFiniteMask(__m256 g) {
    const __m256i exponent = _mm256_set1_epi32(0x7f800000);
    return _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(
        _mm256_and_si256(_mm256_castps_si256(g), exponent), exponent)));
  }

  inline void AddHalf(__m256 g, int half) {
    const __m256d g_lo = _mm256_cvtps_pd(_mm256_castps256_ps128(g));
    const __m256d g_hi = _mm256_cvtps_pd(_mm256_extractf128_ps(g, 1));
    lanes[2 * half] = _mm256_add_pd(lanes[2 * half], _mm256_mul_pd(g_lo, g_lo));
    lanes[2 * half + 1] =
        _mm256_add_pd(lanes[2 * half + 1], _mm256_mul_pd(g_hi, g_hi));
  }

  // g0, g1: elements j..j+7 and j+8..j+15 of the run.
  inline void Add(__m256 g0, __m256 g1, int64_t j, KernelResult* result) {
    const int bad = NonFiniteMask(g0) | (NonFiniteMask(g1) << 8);
    if (bad != 0) [[unlikely]] {
      if (result->nonfinite_count == 0) {
        result->first_nonfinite = j + __builtin_ctz(bad);
      }
      result->nonfinite_count += __builtin_popcount(bad);
    }
    AddHalf(g0, 0);
    AddHalf(g1, 1);
  }

  inline void Store(double* out) const {
    for (int k = 0; k < 4; ++k) _mm256_storeu_pd(out + 4 * k, lanes[k]);
  }
};

struct Constants8 {
  __m256 decay, one_minus_beta1, beta2, one_minus_beta2, step_size, eps;
};

// UpdateElement on 8 lanes; g is the scaled gradient.
inline void Update8(const Constants8& k, __m256 g, float* param, float* exp_avg,
                    float* exp_avg_sq, __m256* p_out) {
  __m256 p = _mm256_loadu_ps(param);
  __m256 m = _mm256_loadu_ps(exp_avg);
  __m256 v = _mm256_loadu_ps(exp_avg_sq);
  p = _mm256_mul_ps(p, k.decay);
  m = _mm256_add_ps(m, _mm256_mul_ps(k.one_minus_beta1, _mm256_sub_ps(g, m)));
  v = _mm256_add_ps(_mm256_mul_ps(k.beta2, v),
                    _mm256_mul_ps(_mm256_mul_ps(k.one_minus_beta2, g), g));
  const __m256 denom = _mm256_add_ps(_mm256_sqrt_ps(v), k.eps);
  p = _mm256_sub_ps(p, _mm256_div_ps(_mm256_mul_ps(k.step_size, m), denom));
  _mm256_storeu_ps(param, p);
  _mm256_storeu_ps(exp_avg, m);
  _mm256_storeu_ps(exp_avg_sq, v);
  *p_out = p;
}

template <DType kGrad, bool kHasWorking, DType kWorking>
KernelResult Run(const KernelArgs& a, const AdamWConstants& c) {
  const __m256 scale = _mm256_set1_ps(c.grad_scale);
  const Constants8 k = {
      _mm256_set1_ps(a.decay),     _mm256_set1_ps(c.one_minus_beta1),
      _mm256_set1_ps(c.beta2),     _mm256_set1_ps(c.one_minus_beta2),
      _mm256_set1_ps(c.step_size), _mm256_set1_ps(c.eps)};
  KernelResult result;
  Stats16 stats;
  const int64_t vector_end = a.n - a.n % kLanes;
  for (int64_t j = 0; j < vector_end; j += 16) {
    const __m256 g0 = _mm256_mul_ps(LoadGrad8<kGrad>(a.grad, j), scale);
    const __m256 g1 = _mm256_mul_ps(LoadGrad8<kGrad>(a.grad, j + 8), scale);
    stats.Add(g0, g1, j, &result);
    __m256 p0, p1;
    Update8(k, g0, a.param + j, a.exp_avg + j, a.exp_avg_sq + j, &p0);
    Update8(k, g1, a.param + j + 8, a.exp_avg + j + 8, a.exp_avg_sq + j + 8,
            &p1);
    if constexpr (kHasWorking) StoreWorking16<kWorking>(a.working, j, p0, p1);
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
  const __m256 scale = _mm256_set1_ps(grad_scale);
  KernelResult result;
  Stats16 stats;
  const int64_t vector_end = a.n - a.n % kLanes;
  for (int64_t j = 0; j < vector_end; j += 16) {
    stats.Add(_mm256_mul_ps(LoadGrad8<kGrad>(a.grad, j), scale),
              _mm256_mul_ps(LoadGrad8<kGrad>(a.grad, j + 8), scale), j,
              &result);
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

KernelResult AdamWAvx2(const KernelArgs& a, const AdamWConstants& c) {
  return DispatchDTypes(a,
                        [&]<DType kGrad, bool kHasWorking, DType kWorking>() {
                          return Run<kGrad, kHasWorking, kWorking>(a, c);
                        });
}

KernelResult MeasureAvx2(const KernelArgs& a, float grad_scale) {
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
