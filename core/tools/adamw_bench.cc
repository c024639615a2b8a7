// Benchmark: the fused CPU AdamW against the memory bandwidth of this machine
// and against LibTorch's torch::optim::AdamW, on the same buffers.
//
//   bazel run -c opt //core/optim:adamw_bench [-- PARAMS [THREADS]]
//
// PARAMS defaults to 64Mi; THREADS is a comma-separated list of thread counts
// for the sweeps (default 1..the usable CPUs; e.g. 1,8,16 on a big machine).
//
// Prints, per configuration, the best and median of several steps as
// parameters/s and effective GB/s. Bytes per parameter count what a step must
// move: fp32 gradients read p, g, m, v and write p, m, v (28 B); a bf16 working
// copy adds 2 B; bf16 gradients read 2 B instead of 4. The STREAM-like triad
// (a = b + s*c over fp32 arrays, 12 B per element as STREAM counts it) gives
// the memory bandwidth the optimizer is compared with.
#include <immintrin.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/optim/adamw_kernel.h"
#include "core/optim/cpu_budget.h"
#include "core/optim/float16.h"
#include "core/optim/fused_adamw.h"
#include "core/optim/optimizer.h"

namespace stronghold::core {
namespace {

constexpr int kRepeats = 5;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// Page-aligned, untouched memory (the first write decides its NUMA node),
// with the array starting `shift_bytes` into its first page.
template <typename T>
class Array {
 public:
  Array(int64_t count, size_t shift_bytes) {
    const size_t bytes = (count * sizeof(T) + shift_bytes + 4095) / 4096 * 4096;
    base_.reset(static_cast<char*>(std::aligned_alloc(4096, bytes)));
    data_ = reinterpret_cast<T*>(base_.get() + shift_bytes);
  }
  T* get() const { return data_; }
  T& operator[](int64_t i) const { return data_[i]; }

 private:
  std::unique_ptr<char, FreeDeleter> base_;
  T* data_ = nullptr;
};

// Shifts for the k-th array of a layer. With equal page offsets, element i
// of every array maps to the same L1 set, and the 4-7 streams of a step
// evict each other's lines (measured: ~14% slower on one core here).
// Multiples of 1088 B (17 lines) spread the streams over the sets.
constexpr size_t kStaggerBytes = 1088;

struct Timing {
  double best_s = 0;
  double median_s = 0;
};

// Runs `step` once to warm up, then kRepeats timed times.
Timing Measure(const std::function<void()>& step) {
  step();
  std::vector<double> seconds;
  for (int r = 0; r < kRepeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    step();
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(seconds.begin(), seconds.end());
  return {seconds.front(), seconds[seconds.size() / 2]};
}

// One line of the table; returns GB/s at the best time.
double Report(const std::string& name, int threads, int64_t count,
              double bytes_per_element, const Timing& t) {
  const double gbs = bytes_per_element * count / t.best_s / 1e9;
  std::printf("%-34s %7d %10.1f %10.1f %9.2f %9.2f %9.3f\n", name.c_str(),
              threads, count / t.best_s / 1e6, count / t.median_s / 1e6, gbs,
              bytes_per_element * count / t.median_s / 1e9, t.best_s);
  return gbs;
}

// a[i] = b[i] + s * c[i] over [begin, end), vectorized by hand: this file is
// built at -O2 for baseline x86-64, where GCC leaves the loop scalar (it
// cannot rule out aliasing cheaply) and one core then measures its own
// arithmetic, not the memory.
__attribute__((target("avx512f"))) void TriadAvx512(float* a, const float* b,
                                                    const float* c,
                                                    int64_t begin,
                                                    int64_t end) {
  const __m512 s = _mm512_set1_ps(3.0f);
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) {
    _mm512_storeu_ps(a + i,
                     _mm512_add_ps(_mm512_loadu_ps(b + i),
                                   _mm512_mul_ps(s, _mm512_loadu_ps(c + i))));
  }
  for (; i < end; ++i) a[i] = b[i] + 3.0f * c[i];
}

__attribute__((target("avx2"))) void TriadAvx2(float* a, const float* b,
                                               const float* c, int64_t begin,
                                               int64_t end) {
  const __m256 s = _mm256_set1_ps(3.0f);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    _mm256_storeu_ps(a + i,
                     _mm256_add_ps(_mm256_loadu_ps(b + i),
                                   _mm256_mul_ps(s, _mm256_loadu_ps(c + i))));
  }
  for (; i < end; ++i) a[i] = b[i] + 3.0f * c[i];
}

// The triad on `threads` threads, each on a contiguous slice. With a == b it
// is the in-place a += s * c: the optimizer's access pattern (every written
// line was read first, so no hidden write-allocate reads).
void Triad(float* a, const float* b, const float* c, int64_t count,
           int threads) {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([=] {
      const int64_t begin = count * t / threads;
      const int64_t end = count * (t + 1) / threads;
      if (IsaSupported(Isa::kAvx512)) {
        TriadAvx512(a, b, c, begin, end);
      } else if (IsaSupported(Isa::kAvx2)) {
        TriadAvx2(a, b, c, begin, end);
      } else {
        for (int64_t i = begin; i < end; ++i) a[i] = b[i] + 3.0f * c[i];
      }
    });
  }
  for (std::thread& t : pool) t.join();
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0)
      return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

int Main(int argc, char** argv) {
  const int64_t count = argc > 1 ? std::atoll(argv[1]) : int64_t{64} << 20;
  const int max_threads = UsableCpuCount();
  std::vector<int> sweep;  // the thread counts of the 1..N sweeps
  if (argc > 2) {
    for (absl::string_view t :
         absl::StrSplit(argv[2], ',', absl::SkipEmpty())) {
      int n = 0;
      if (!absl::SimpleAtoi(t, &n) || n < 1 || n > max_threads) {
        std::fprintf(stderr, "adamw_bench: THREADS entry '%s' must be 1..%d\n",
                     std::string(t).c_str(), max_threads);
        return 2;
      }
      sweep.push_back(n);
    }
  }
  if (sweep.empty()) {
    for (int t = 1; t <= max_threads; ++t) sweep.push_back(t);
  }
  std::printf(
      "CPU: %s; usable CPUs (affinity, cgroup quota): %d; "
      "hardware_concurrency: %u\n",
      CpuModel().c_str(), max_threads, std::thread::hardware_concurrency());
  std::printf(
      "params: %lld (%.1f MiB per fp32 array); best ISA: %s; %d timed steps "
      "after 1 warm-up\n\n",
      static_cast<long long>(count), count * 4.0 / (1 << 20),
      IsaName(BestIsa()), kRepeats);

  Array<float> param(count, 0), exp_avg(count, kStaggerBytes),
      exp_avg_sq(count, 2 * kStaggerBytes), grad(count, 3 * kStaggerBytes);
  Array<uint16_t> grad16(count, 4 * kStaggerBytes),
      working16(count, 5 * kStaggerBytes);
  {
    auto toucher = FusedAdamW::Create({.threads = max_threads});
    for (float* p :
         {param.get(), exp_avg.get(), exp_avg_sq.get(), grad.get()}) {
      (void)(*toucher)->FirstTouch(p, count, DType::kFloat32);
    }
    (void)(*toucher)->FirstTouch(grad16.get(), count, DType::kBFloat16);
    (void)(*toucher)->FirstTouch(working16.get(), count, DType::kBFloat16);
  }
  uint32_t x = 12345;
  for (int64_t i = 0; i < count; ++i) {
    x = x * 1664525u + 1013904223u;  // cheap LCG: values only need to be sane
    const float u = (x >> 8) * 0x1p-24f;  // [0, 1)
    param[i] = 0.5f + u;
    exp_avg[i] = 0.01f * (u - 0.5f);
    exp_avg_sq[i] = 1e-4f * u;
    grad[i] = u - 0.5f;
    grad16[i] = BFloat16FromFloat(grad[i]);
  }

  ParamBuffer buffer{param.get(), exp_avg.get(), exp_avg_sq.get(),
                     grad.get(),  count,         count * 9 / 10};
  AdamWStep hyper{.lr = 1e-4f, .weight_decay = 0.1f};

  std::printf("%-34s %7s %10s %10s %9s %9s %9s\n", "configuration", "threads",
              "Mparam/s", "(median)", "GB/s", "(median)", "best s");

  // Memory bandwidth: triad on three fresh arrays. STREAM counts 12 B per
  // element, but writing a[] whole lines also reads them first (write
  // allocate), so the bus moves 16 B: the in-place variant shows the
  // difference.
  double triad_gbs = 0, inplace_gbs = 0;
  {
    Array<float> a(count, 0), b(count, kStaggerBytes),
        c(count, 2 * kStaggerBytes);
    Triad(a.get(), param.get(), grad.get(), count, max_threads);  // touch a
    Triad(b.get(), param.get(), grad.get(), count, max_threads);
    Triad(c.get(), param.get(), grad.get(), count, max_threads);
    for (int t : sweep) {
      const Timing timing =
          Measure([&] { Triad(a.get(), b.get(), c.get(), count, t); });
      triad_gbs = std::max(
          triad_gbs, Report("triad a=b+s*c (12 B/elem)", t, count, 12, timing));
    }
    for (int t : sweep) {
      const Timing timing =
          Measure([&] { Triad(a.get(), a.get(), c.get(), count, t); });
      inplace_gbs = std::max(inplace_gbs, Report("in-place a+=s*c (12 B/elem)",
                                                 t, count, 12, timing));
    }
  }

  // Ours, widest ISA, 1..N threads, fp32 gradients.
  double ours_gbs = 0;
  Timing ours_best{1e30, 1e30};
  int hyper_step = 1;
  auto run_ours = [&](FusedAdamW& opt, const ParamBuffer& b) {
    return Measure([&] {
      hyper.step = hyper_step++;
      opt.Step(b, hyper);
    });
  };
  for (int t : sweep) {
    auto opt = FusedAdamW::Create({.threads = t});
    const Timing timing = run_ours(**opt, buffer);
    const double gbs =
        Report(std::string("fused AdamW ") + IsaName(BestIsa()) + " fp32 grad",
               t, count, 28, timing);
    if (gbs > ours_gbs) {
      ours_gbs = gbs;
      ours_best = timing;
    }
  }
  // The same with all four arrays at the same offset within their pages
  // (what four plain page-aligned allocations give).
  {
    Array<float> p(count, 0), m(count, 0), v(count, 0), g(count, 0);
    auto opt = FusedAdamW::Create({.threads = max_threads});
    for (Array<float>* x : {&p, &m, &v, &g}) {
      (void)(*opt)->FirstTouch(x->get(), count, DType::kFloat32);
    }
    std::memcpy(p.get(), param.get(), count * sizeof(float));
    std::memcpy(m.get(), exp_avg.get(), count * sizeof(float));
    std::memcpy(v.get(), exp_avg_sq.get(), count * sizeof(float));
    std::memcpy(g.get(), grad.get(), count * sizeof(float));
    const ParamBuffer aligned{p.get(), m.get(), v.get(),
                              g.get(), count,   buffer.decay_count};
    for (int t : sweep) {
      auto opt_t = FusedAdamW::Create({.threads = t});
      Report("  same page offsets (no stagger)", t, count, 28,
             run_ours(**opt_t, aligned));
    }
  }
  // Other paths and dtypes at N threads.
  for (Isa isa : {Isa::kAvx2, Isa::kScalar}) {
    if (!IsaSupported(isa)) continue;
    for (int t : {1, max_threads}) {
      if (t == 1 && max_threads == 1 && isa != Isa::kScalar) continue;
      auto opt = FusedAdamW::Create({.threads = t, .isa = isa});
      Report(std::string("fused AdamW ") + IsaName(isa) + " fp32 grad", t,
             count, 28, run_ours(**opt, buffer));
      if (t == max_threads) break;
    }
  }
  {
    auto opt = FusedAdamW::Create({.threads = max_threads});
    ParamBuffer with_copy = buffer;
    with_copy.working = working16.get();
    with_copy.working_dtype = DType::kBFloat16;
    Report("  + bf16 working copy (30 B)", max_threads, count, 30,
           run_ours(**opt, with_copy));
    ParamBuffer bf16 = with_copy;
    bf16.grad = nullptr;
    bf16.grad_data = grad16.get();
    bf16.grad_dtype = DType::kBFloat16;
    Report("  bf16 grad + bf16 copy (28 B)", max_threads, count, 28,
           run_ours(**opt, bf16));
    Report("  measure only, fp32 grad (4 B)", max_threads, count, 4,
           Measure([&] { (void)(*opt)->SubmitMeasure(buffer, 1.0f)->Wait(); }));
  }

  // LibTorch's AdamW on the same parameter and gradient memory (it keeps its
  // own m and v, allocated at the warm-up step).
  Timing torch_best{1e30, 1e30};
  {
    torch::Tensor p = torch::from_blob(param.get(), {count}, torch::kFloat32);
    p.set_requires_grad(true);
    p.mutable_grad() = torch::from_blob(grad.get(), {count}, torch::kFloat32);
    torch::optim::AdamW adamw({p}, torch::optim::AdamWOptions(1e-4)
                                       .betas({0.9, 0.95})
                                       .eps(1e-8)
                                       .weight_decay(0.1));
    for (int t : {1, max_threads}) {
      torch::set_num_threads(t);
      const Timing timing = Measure([&] { adamw.step(); });
      Report("torch::optim::AdamW", t, count, 28, timing);
      if (timing.best_s < torch_best.best_s) torch_best = timing;
      if (t == max_threads) break;
    }
  }

  std::printf(
      "\nours (best thread count) / triad bandwidth: %.2f (/ in-place triad: "
      "%.2f)\n",
      ours_gbs / triad_gbs, ours_gbs / inplace_gbs);
  std::printf("ours / torch::optim::AdamW (best of each, time ratio): %.2fx\n",
              torch_best.best_s / ours_best.best_s);
  return 0;
}

}  // namespace
}  // namespace stronghold::core

int main(int argc, char** argv) { return stronghold::core::Main(argc, argv); }
