// The arithmetic of `strongholdctl bench`, apart from any I/O so that it is
// unit-tested: averages over iterations as the seed reports them, the
// hardware-FLOPs formula, the device peak behind MFU, and the least-squares
// line of the scaling case.
#ifndef STRONGHOLD_CLIENT_BENCH_STATS_H_
#define STRONGHOLD_CLIENT_BENCH_STATS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::client {

// Iterations averaged the seed's way: throughput is work over total time
// (batch x iterations / sum of iteration times), not a mean of rates, so a
// slow iteration weighs as much as it cost.
struct IterationSummary {
  int iterations = 0;
  int64_t first_step = 0;
  int64_t last_step = 0;
  double step_s = 0;  // mean
  double min_step_s = 0;
  double max_step_s = 0;
  double samples_per_s = 0;
  double tokens_per_s = 0;
  double model_tflops = 0;
  // Mean per-iteration breakdown.
  double compute_s = 0;
  double h2d_wait_s = 0;
  double d2h_wait_s = 0;
  double optimizer_s = 0;
  int64_t device_peak_bytes = 0;  // the highest
};

// All zeros for no iterations.
IterationSummary Summarize(absl::Span<const v1::StepMetrics> steps);

// The steps of a job on many ranks as the job ran them: for each step that
// every rank reported, the slowest rank's metrics (the job's step ends when
// its last rank's does; a rank's rates are the whole job's over its own step
// time, so the slowest rank's are the job's). Steps some rank did not report
// (it failed) are left out. For one rank, its steps.
std::vector<v1::StepMetrics> JobSteps(
    absl::Span<const std::vector<v1::StepMetrics>> ranks);

// One rank's share of a job on `world_size` ranks: Summarize() with the
// rates (samples/s, tokens/s, model TFLOPS) divided by `world_size`, since
// each daemon reports the whole job's.
IterationSummary RankSummary(absl::Span<const v1::StepMetrics> steps,
                             int world_size);

// Hardware FLOPs of one iteration (Megatron's convention, design §4): with
// full recomputation (the windowed methods recompute each layer's forward in
// backward) 96*B*s*L*h^2*(1 + s/(6h) + V/(16*L*h)), otherwise the model
// FLOPs 72*B*s*L*h^2*(1 + s/(6h) + V/(12*L*h)). `vocab` is the padded one.
double IterationFlops(int batch, int seq_len, int layers, int hidden,
                      int padded_vocab, bool recompute);

// The dense peak of the device that MFU divides by.
struct DevicePeak {
  double tflops = 0;   // 0 = unknown: MFU is not reported
  std::string source;  // how the figure was chosen, for the log
};

// --peak-tflops when given (> 0); otherwise a nominal figure: on the cpu
// device, threads x 16 fp32 FLOP/cycle (AVX2 FMA; 32 with AVX-512) x 2.5 GHz,
// the same figure strongholdd's MFU metric uses; for known GPUs their fp32
// (non-tensor-core) dense peak, since jobs run fp32. `avx512` says whether
// the daemon's host has AVX-512 (the client can only tell for its own host).
DevicePeak ChoosePeak(double flag_tflops, const v1::Node& node, bool avx512);

// Least squares y = slope * x + intercept and the coefficient of
// determination R^2 = 1 - SS_res / SS_tot (1 when the points are exactly on
// the line, including all-equal y). INVALID_ARGUMENT for fewer than two
// points, mismatched sizes or all-equal x.
struct LinearFit {
  double slope = 0;
  double intercept = 0;
  double r2 = 0;
  int points = 0;
};
absl::StatusOr<LinearFit> FitLine(absl::Span<const double> x,
                                  absl::Span<const double> y);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_BENCH_STATS_H_
