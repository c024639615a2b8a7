// The options of `strongholdctl bench`. The jobs' spec comes from the same
// flag code as `submit` (client/job_spec_flags.h), so every submit flag works
// here and reaches every job, on top of the seed's `run.sh -m METHOD -l LAYERS
// -h HIDDEN -b BATCH -w WINDOW` defaults (GPT, 16 layers, hidden 2048, 16
// heads, sequence 1024, batch 4, window 4, vocabulary 50304, fp32, 5
// iterations), which the help shows beside each flag. The bench adds only
// what it is about: the methods and the case to run (--method takes a list,
// so it is the bench's own flag), and how runs are measured and reported.
#ifndef STRONGHOLD_CLIENT_BENCH_OPTIONS_H_
#define STRONGHOLD_CLIENT_BENCH_OPTIONS_H_

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

// The seed's defaults as a spec: what the bench's jobs run when no flag says
// otherwise. Also a learning rate that keeps a few fp32 steps of a fresh model
// finite at any size (GPT-3's 1.3B used 2e-4; the loss is not what is
// measured), a metric event every iteration (each is measured), no warm-up
// of the learning rate, only the final checkpoint kept, and the engine's
// automatic options off as the seed had them (`--speculative-updates auto`,
// ... asks for the daemon's choice).
v1::JobSpec SeedSpec();

struct BenchOptions {
  BenchCase bench_case = BenchCase::kRun;
  // In the order RESIDENT, L2L, STRONGHOLD. Default: all three, except for
  // the scaling and window cases, which default to STRONGHOLD as the seed's.
  std::vector<v1::OffloadMethod> methods;

  // What every job runs: SeedSpec(), then --spec FILE, then the spec flags.
  // A point overrides only what the bench sweeps (BenchRunner::Spec). Three
  // fields are also where the sweeps start: model.layers (the layers of a
  // run; L of scaling's L, 2L, 3L, 4L), offload.window (STRONGHOLD's window
  // W, 0 = automatic, clamped to the layers of each run since W <= L) and
  // training.steps (iterations per run; small so that CPU runs stay short).
  v1::JobSpec spec = SeedSpec();
  // The spec flags as given, "--lr", "1e-3", ..., less those that the log's
  // repeat command writes from the point and the spec (log.h).
  std::vector<std::string> spec_args;

  // Iterations reported apart and left out of the averages: warm-up, and with
  // an automatic window the profiling iteration. -1 = 1, or 2 when the
  // window is automatic (profiling + the first at the chosen window).
  int warmup_iterations = -1;

  std::string out_dir = "results";
  // Dense peak of the device for MFU, in TFLOPS; 0 = a nominal figure
  // (stats.h: ChoosePeak), which the log names as such.
  double peak_tflops = 0;

  // largest: the search covers 1..max_layers; the confirming run is short.
  int max_layers = 1024;
  int confirm_steps = 2;
  // scaling: the layer counts; empty = L, 2L, 3L, 4L for --layers L.
  std::vector<int> layers_list;
  // window: the windows (0 = automatic); empty = 1, 2, 3, 4, 6, 8 up to L.
  std::vector<int> windows;

  // Plots (a PNG per case) by deploy/bench/plot.py with matplotlib.
  bool plot = true;
  std::string python;       // empty = /usr/bin/python3 if present, else python3
  std::string plot_script;  // empty = searched for (output.h)

  // Data parallelism (docs/bench.md, "Many ranks"): every run is one job on
  // `world_size` daemons, one per rank, `daemons[r]` rank r's address.
  // world_size comes from --world-size (spec.distributed.world_size, 1..1024;
  // 1 = a job on the --daemon alone, `daemons` empty). The rendezvous is the
  // spec's --master-addr (default 127.0.0.1 when every daemon is on this
  // host) and --master-port (default 29500); the bench sets each rank's rank
  // and a fresh random job key per run itself.
  int world_size = 1;
  std::vector<std::string> daemons;

  // The warm-up iterations of a run of `steps` (with the automatic window or
  // not): at most steps - 1, so that one iteration is always measured.
  int WarmupIterations(bool automatic_window, int steps) const;
};

// The bench's own flags and every spec flag of `submit` but --method.
const std::vector<FlagSpec>& BenchFlags();

// INVALID_ARGUMENT names the flag: bad numbers, unknown methods or cases, a
// method the case cannot run (window: STRONGHOLD only), a sweep start the
// bench cannot work from (--layers < 1, --window < 0, --steps < 1,
// --device-resident-layers < 0), and ranks it cannot run (--world-size
// outside 1..1024, fewer --daemons than ranks, a --batch that is not a
// multiple of world size x --micro-batch, --master-addr missing for
// daemons on other hosts). Other spec values are the daemon's to
// check: the first plan of a bench refuses them before any job runs.
absl::StatusOr<BenchOptions> ParseBenchOptions(const ParsedArgs& args);

// "largest", ...; "run" for kRun.
std::string BenchCaseName(BenchCase bench_case);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_BENCH_OPTIONS_H_
