#include "client/bench/stats.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"

namespace stronghold::client {

IterationSummary Summarize(absl::Span<const v1::StepMetrics> steps) {
  IterationSummary s;
  if (steps.empty()) return s;
  s.iterations = static_cast<int>(steps.size());
  s.first_step = steps.front().step();
  s.last_step = steps.back().step();
  s.min_step_s = steps.front().step_s();
  double total_s = 0, samples = 0, tokens = 0, flops = 0;
  for (const v1::StepMetrics& m : steps) {
    total_s += m.step_s();
    // The daemon reports rates; rate x time is the iteration's work.
    samples += m.samples_per_s() * m.step_s();
    tokens += m.tokens_per_s() * m.step_s();
    flops += m.model_tflops() * m.step_s();
    s.min_step_s = std::min(s.min_step_s, m.step_s());
    s.max_step_s = std::max(s.max_step_s, m.step_s());
    s.compute_s += m.compute_s();
    s.h2d_wait_s += m.h2d_wait_s();
    s.d2h_wait_s += m.d2h_wait_s();
    s.optimizer_s += m.optimizer_s();
    s.device_peak_bytes = std::max(s.device_peak_bytes, m.device_peak_bytes());
  }
  const double n = s.iterations;
  s.step_s = total_s / n;
  if (total_s > 0) {
    s.samples_per_s = samples / total_s;
    s.tokens_per_s = tokens / total_s;
    s.model_tflops = flops / total_s;
  }
  s.compute_s /= n;
  s.h2d_wait_s /= n;
  s.d2h_wait_s /= n;
  s.optimizer_s /= n;
  return s;
}

std::vector<v1::StepMetrics> JobSteps(
    absl::Span<const std::vector<v1::StepMetrics>> ranks) {
  if (ranks.empty()) return {};
  std::map<int64_t, std::pair<int, v1::StepMetrics>> slowest;  // step ->
  for (const std::vector<v1::StepMetrics>& rank : ranks) {
    for (const v1::StepMetrics& m : rank) {
      auto [it, added] = slowest.try_emplace(m.step(), 0, m);
      ++it->second.first;
      if (!added && m.step_s() > it->second.second.step_s()) {
        it->second.second = m;
      }
    }
  }
  std::vector<v1::StepMetrics> steps;
  for (auto& [step, seen] : slowest) {
    if (seen.first == static_cast<int>(ranks.size())) {
      steps.push_back(std::move(seen.second));
    }
  }
  return steps;
}

IterationSummary RankSummary(absl::Span<const v1::StepMetrics> steps,
                             int world_size) {
  IterationSummary s = Summarize(steps);
  s.samples_per_s /= world_size;
  s.tokens_per_s /= world_size;
  s.model_tflops /= world_size;
  return s;
}

double IterationFlops(int batch, int seq_len, int layers, int hidden,
                      int padded_vocab, bool recompute) {
  const double b = batch, s = seq_len, l = layers, h = hidden, v = padded_vocab;
  if (recompute) {
    return 96.0 * b * s * l * h * h *
           (1.0 + s / (6.0 * h) + v / (16.0 * l * h));
  }
  return 72.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * l * h));
}

DevicePeak ChoosePeak(double flag_tflops, const v1::Node& node, bool avx512) {
  if (flag_tflops > 0) {
    return {flag_tflops,
            absl::StrFormat("%g TFLOPS from --peak-tflops", flag_tflops)};
  }
  const std::string& device = node.device();
  if (device == "cpu") {
    const int threads = std::max(1, node.cpu_threads());
    const int per_cycle = avx512 ? 32 : 16;
    const double tflops = threads * per_cycle * 2.5e9 / 1e12;
    return {tflops,
            absl::StrFormat(
                "%.3f TFLOPS nominal: %d CPU threads x %d fp32 FLOP/cycle (%s "
                "FMA) x 2.5 GHz; pass --peak-tflops for a measured figure",
                tflops, threads, per_cycle, avx512 ? "AVX-512" : "AVX2")};
  }
  // fp32 without tensor cores: the jobs run fp32 (the seed's precision).
  struct Known {
    const char* name;
    const char* variant;  // also in the name, or nullptr
    double tflops;
  };
  static constexpr Known kKnown[] = {
      {"H200", nullptr, 67.0}, {"H100", "PCIe", 51.0}, {"H100", nullptr, 67.0},
      {"A100", nullptr, 19.5}, {"V100", "PCIe", 14.0}, {"V100", nullptr, 15.7},
  };
  for (const Known& k : kKnown) {
    if (absl::StrContains(device, k.name) &&
        (k.variant == nullptr || absl::StrContains(device, k.variant))) {
      return {k.tflops, absl::StrFormat(
                            "%g TFLOPS nominal: the fp32 dense peak of %s%s%s "
                            "(no tensor cores); pass --peak-tflops to override",
                            k.tflops, k.name, k.variant ? " " : "",
                            k.variant ? k.variant : "")};
    }
  }
  return {0,
          absl::StrFormat(
              "unknown for device \"%s\": pass --peak-tflops for MFU", device)};
}

absl::StatusOr<LinearFit> FitLine(absl::Span<const double> x,
                                  absl::Span<const double> y) {
  if (x.size() != y.size()) {
    return absl::InvalidArgumentError("FitLine: x and y differ in size");
  }
  if (x.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrFormat("a line needs at least two points, got %d", x.size()));
  }
  const double n = static_cast<double>(x.size());
  double mean_x = 0, mean_y = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    mean_x += x[i] / n;
    mean_y += y[i] / n;
  }
  double sxx = 0, sxy = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxx += (x[i] - mean_x) * (x[i] - mean_x);
    sxy += (x[i] - mean_x) * (y[i] - mean_y);
    syy += (y[i] - mean_y) * (y[i] - mean_y);
  }
  if (sxx == 0) {
    return absl::InvalidArgumentError(
        "a line needs at least two different x values");
  }
  LinearFit fit;
  fit.points = static_cast<int>(x.size());
  fit.slope = sxy / sxx;
  fit.intercept = mean_y - fit.slope * mean_x;
  double ss_res = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double r = y[i] - (fit.slope * x[i] + fit.intercept);
    ss_res += r * r;
  }
  fit.r2 = syy > 0 ? 1.0 - ss_res / syy : (ss_res == 0 ? 1.0 : 0.0);
  return fit;
}

}  // namespace stronghold::client
