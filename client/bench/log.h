// The per-run log of `strongholdctl bench`, named and laid out like the
// seed's run.sh logs (log_<method>_l-<L>_h-<H>_bs-<B>_ws-<W>_<time>.txt), so
// that the seed's habit of `grep SamplesPerSec` still works. Each iteration is
// one line of " | "-separated "name: value" fields:
//
//   warmup 1/5 | elapsed time per iteration (ms): 41.2 | SamplesPerSec: ...
//   iteration 2/5 | elapsed time per iteration (ms): 30.1 | ...
//   summary | iterations: 2-5 | elapsed time per iteration (ms): 30.4 | ...
//   result: SUCCEEDED
//
// Warm-up iterations (and the automatic window's profiling iteration) come
// first and are left out of the summary. docs/bench.md lists every field.
#ifndef STRONGHOLD_CLIENT_BENCH_LOG_H_
#define STRONGHOLD_CLIENT_BENCH_LOG_H_

#include <string>

#include "absl/time/time.h"
#include "client/bench/options.h"
#include "client/bench/runner.h"

namespace stronghold::client {

// "log_stronghold_l-4_h-64_bs-2_ws-0_20240501-123456.txt"; ws is the
// point's requested window (BenchPoint::window: 0 = automatic, or none).
std::string LogFileName(const BenchPoint& point, const BenchOptions& options,
                        absl::Time time);

// The `strongholdctl bench` command line that repeats this one run.
std::string RepeatCommand(const BenchPoint& point, const BenchOptions& options);

// The whole log of a run, whatever its outcome.
std::string FormatLog(const BenchRun& run, const BenchOptions& options,
                      const BenchEnvironment& environment);

// MFU as a percentage for the tables ("0.75%"), "n/a" without a peak.
std::string FormatMfu(double model_tflops, const DevicePeak& peak);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_BENCH_LOG_H_
