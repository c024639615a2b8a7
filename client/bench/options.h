// The options of `strongholdctl bench`: the seed's `run.sh -m METHOD -l LAYERS
// -h HIDDEN -b BATCH -w WINDOW` with the seed's defaults (GPT, 16 layers,
// hidden 2048, 16 heads, sequence 1024, batch 4, window 4, vocabulary 50304,
// fp32), every size overridable so that the same cases run small on a CPU,
// plus what the cases (docs/bench.md) need.
#ifndef STRONGHOLD_CLIENT_BENCH_OPTIONS_H_
#define STRONGHOLD_CLIENT_BENCH_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/arg_parser.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::client {

// What `bench` does: one run per method, or one of the seed's cases.
enum class BenchCase {
  kRun,         // each --method at the given size (the seed's run.sh)
  kLargest,     // largest trainable layers per method (seed case 1)
  kThroughput,  // at each method's largest size (seed cases 2 and 3)
  kScaling,     // iteration time against layers, linear fit (seed case 4)
  kWindow,      // iteration time against the window (seed case 5)
};

struct BenchOptions {
  BenchCase bench_case = BenchCase::kRun;
  // In the order RESIDENT, L2L, STRONGHOLD. Default: all three, except for
  // the scaling and window cases, which default to STRONGHOLD as the seed's.
  std::vector<v1::OffloadMethod> methods;

  // The model and the batch (fp32).
  int layers = 16;
  int hidden = 2048;
  int heads = 16;
  int seq_len = 1024;
  int vocab = 50304;
  int batch = 4;  // sequences per iteration, one micro-batch
  // STRONGHOLD's working window W; 0 = automatic (the daemon profiles the
  // first iteration and picks the smallest window that hides the copies).
  // Clamped to the layers of each run, since W <= L.
  int window = 4;
  int steps = 5;  // iterations per run; small so that CPU runs stay short
  // Iterations reported apart and left out of the averages: warm-up, and with
  // an automatic window the profiling iteration. -1 = 1, or 2 when the
  // window is automatic (profiling + the first at the chosen window).
  int warmup_iterations = -1;

  // Budgets of every job; 0 = the daemon's. The device budget emulates a
  // smaller card (or a GPU on the CPU device).
  int64_t gpu_memory_budget_bytes = 0;
  int64_t host_memory_budget_bytes = 0;

  std::string out_dir = "results";
  // Dense peak of the device for MFU, in TFLOPS; 0 = a nominal figure
  // (stats.h: NominalPeak), which the log names as such.
  double peak_tflops = 0;

  // largest: the search covers 1..max_layers; the confirming run is short.
  int max_layers = 1024;
  int confirm_steps = 2;
  // scaling: the layer counts; empty = L, 2L, 3L, 4L for --layers L.
  std::vector<int> layers_list;
  // window: the windows (0 = automatic); empty = 1, 2, 3, 4, 6, 8 up to L.
  std::vector<int> windows;

  // STRONGHOLD and L2L runs with offload.speculative_updates (RESIDENT has
  // no such option): layers updated during backward, clipped steps redone.
  bool speculative_updates = false;
  // STRONGHOLD and L2L runs with offload.device_embedding_optimizer, and
  // STRONGHOLD runs with offload.device_resident_layers (every point needs
  // more layers than that: the daemon refuses the others with
  // INVALID_ARGUMENT, which stops the bench).
  bool device_embedding_optimizer = false;
  int device_resident_layers = 0;

  // Plots (a PNG per case) by deploy/bench/plot.py with matplotlib.
  bool plot = true;
  std::string python;       // empty = /usr/bin/python3 if present, else python3
  std::string plot_script;  // empty = searched for (bench_plot.h)

  // The warm-up iterations of a run of `steps` (with the automatic window or
  // not): at most steps - 1, so that one iteration is always measured.
  int WarmupIterations(bool automatic_window, int steps) const;
};

const std::vector<FlagSpec>& BenchFlags();

// INVALID_ARGUMENT names the flag: bad numbers, unknown methods or cases, a
// method the case cannot run (window: STRONGHOLD only).
absl::StatusOr<BenchOptions> ParseBenchOptions(const ParsedArgs& args);

// "largest", ...; "run" for kRun.
std::string BenchCaseName(BenchCase bench_case);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_BENCH_OPTIONS_H_
