#include "client/bench/options.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/util/size.h"
#include "core/util/status_macros.h"

namespace stronghold::client {
namespace {

absl::Status BadValue(absl::string_view flag, absl::string_view text,
                      absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag, ": invalid value \"", text, "\" (expected ", expected, ")"));
}

// Reads an int flag into `value` when given; it must be >= `min`.
absl::Status IntFlag(const ParsedArgs& args, absl::string_view name, int min,
                     int& value) {
  std::optional<std::string> text = args.Get(name);
  if (!text.has_value()) return absl::OkStatus();
  if (!absl::SimpleAtoi(*text, &value) || value < min) {
    return BadValue(name, *text, absl::StrCat("an integer >= ", min));
  }
  return absl::OkStatus();
}

absl::Status SizeFlag(const ParsedArgs& args, absl::string_view name,
                      int64_t& bytes) {
  std::optional<std::string> text = args.Get(name);
  if (!text.has_value()) return absl::OkStatus();
  ASSIGN_OR_RETURN(bytes, core::ParseSize(name, *text));
  return absl::OkStatus();
}

// "2,4,8" -> {2, 4, 8}; every element >= `min`.
absl::Status IntListFlag(const ParsedArgs& args, absl::string_view name,
                         int min, std::vector<int>& values) {
  std::optional<std::string> text = args.Get(name);
  if (!text.has_value()) return absl::OkStatus();
  values.clear();
  for (absl::string_view part : absl::StrSplit(*text, ',')) {
    int value = 0;
    if (!absl::SimpleAtoi(part, &value) || value < min) {
      return BadValue(name, *text,
                      absl::StrCat("comma-separated integers >= ", min));
    }
    values.push_back(value);
  }
  return absl::OkStatus();
}

absl::Status ParseMethods(const ParsedArgs& args, BenchOptions& options) {
  const bool sweep = options.bench_case == BenchCase::kScaling ||
                     options.bench_case == BenchCase::kWindow;
  const std::string text =
      args.Get("method").value_or(sweep ? "stronghold" : "all");
  if (text == "all") {
    options.methods = {v1::RESIDENT, v1::L2L, v1::STRONGHOLD};
  } else if (text == "resident") {
    options.methods = {v1::RESIDENT};
  } else if (text == "l2l") {
    options.methods = {v1::L2L};
  } else if (text == "stronghold") {
    options.methods = {v1::STRONGHOLD};
  } else {
    return BadValue("method", text, "resident|l2l|stronghold|all");
  }
  if (options.bench_case == BenchCase::kWindow &&
      options.methods != std::vector<v1::OffloadMethod>{v1::STRONGHOLD}) {
    return absl::InvalidArgumentError(
        "--case window: sweeps STRONGHOLD's window; --method must be "
        "stronghold (L2L always holds one layer, RESIDENT all of them)");
  }
  return absl::OkStatus();
}

absl::Status ParseCase(const ParsedArgs& args, BenchOptions& options) {
  std::optional<std::string> text = args.Get("case");
  if (!text.has_value()) return absl::OkStatus();
  for (BenchCase c : {BenchCase::kLargest, BenchCase::kThroughput,
                      BenchCase::kScaling, BenchCase::kWindow}) {
    if (*text == BenchCaseName(c)) {
      options.bench_case = c;
      return absl::OkStatus();
    }
  }
  return BadValue("case", *text, "largest|throughput|scaling|window");
}

}  // namespace

int BenchOptions::WarmupIterations(bool automatic_window, int steps) const {
  const int wanted = warmup_iterations >= 0 ? warmup_iterations
                     : automatic_window     ? 2
                                            : 1;
  return std::max(0, std::min(wanted, steps - 1));
}

const std::vector<FlagSpec>& BenchFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"method", "resident|l2l|stronghold|all",
       "methods to run (default all; stronghold for scaling and window)"},
      {"case", "largest|throughput|scaling|window",
       "one of the seed's cases (default: one run per method)"},
      {"layers", "N", "transformer layers (default 16)"},
      {"hidden", "N", "hidden size (default 2048)"},
      {"heads", "N", "attention heads (default 16)"},
      {"seq-len", "N", "sequence length (default 1024)"},
      {"vocab", "N", "vocabulary (default 50304)"},
      {"batch", "N", "batch size in sequences (default 4)"},
      {"window", "N", "STRONGHOLD's window; 0 = automatic (default 4)"},
      {"steps", "N", "iterations per run (default 5)"},
      {"warmup-iterations", "N",
       "first iterations reported apart (default 1; 2 with --window 0)"},
      {"gpu-memory-budget", "SIZE", "device budget of every job, e.g. 32GiB"},
      {"host-memory-budget", "SIZE", "host budget of every job, e.g. 64GiB"},
      {"out-dir", "DIR", "where logs, CSV and plots go (default ./results)"},
      {"peak-tflops", "X",
       "device dense peak for MFU (default: nominal, see docs/bench.md)"},
      {"max-layers", "N", "largest: search up to N layers (default 1024)"},
      {"confirm-steps", "N",
       "largest: iterations of the confirming run (default 2)"},
      {"layers-list", "N,N,...", "scaling: layer counts (default L,2L,3L,4L)"},
      {"windows", "N,N,...",
       "window: windows, 0 = automatic (default 1,2,3,4,6,8 up to L)"},
      {"speculative-updates", "on|off",
       "stronghold/l2l runs update layers during backward and redo clipped "
       "steps (default off; docs/engine.md)"},
      {"device-embedding-optimizer", "on|off",
       "stronghold/l2l runs update the embedding on the device (default off; "
       "docs/engine.md)"},
      {"device-resident-layers", "N",
       "stronghold runs keep layers 0..N-1 on the device, updated there "
       "(default 0; docs/engine.md)"},
      {"no-plot", "", "write CSV files but no PNG plots"},
      {"python", "PATH",
       "interpreter with matplotlib (default /usr/bin/python3)"},
      {"plot-script", "PATH", "the plotting script (default: found)"},
  };
  return *flags;
}

absl::StatusOr<BenchOptions> ParseBenchOptions(const ParsedArgs& args) {
  BenchOptions o;
  RETURN_IF_ERROR(ParseCase(args, o));
  RETURN_IF_ERROR(ParseMethods(args, o));
  RETURN_IF_ERROR(IntFlag(args, "layers", 1, o.layers));
  RETURN_IF_ERROR(IntFlag(args, "hidden", 1, o.hidden));
  RETURN_IF_ERROR(IntFlag(args, "heads", 1, o.heads));
  RETURN_IF_ERROR(IntFlag(args, "seq-len", 1, o.seq_len));
  RETURN_IF_ERROR(IntFlag(args, "vocab", 2, o.vocab));
  RETURN_IF_ERROR(IntFlag(args, "batch", 1, o.batch));
  RETURN_IF_ERROR(IntFlag(args, "window", 0, o.window));
  RETURN_IF_ERROR(IntFlag(args, "steps", 1, o.steps));
  RETURN_IF_ERROR(IntFlag(args, "warmup-iterations", 0, o.warmup_iterations));
  RETURN_IF_ERROR(
      SizeFlag(args, "gpu-memory-budget", o.gpu_memory_budget_bytes));
  RETURN_IF_ERROR(
      SizeFlag(args, "host-memory-budget", o.host_memory_budget_bytes));
  RETURN_IF_ERROR(IntFlag(args, "max-layers", 1, o.max_layers));
  RETURN_IF_ERROR(IntFlag(args, "confirm-steps", 1, o.confirm_steps));
  RETURN_IF_ERROR(IntListFlag(args, "layers-list", 1, o.layers_list));
  RETURN_IF_ERROR(IntListFlag(args, "windows", 0, o.windows));
  if (std::optional<std::string> text = args.Get("peak-tflops")) {
    if (!absl::SimpleAtod(*text, &o.peak_tflops) ||
        !std::isfinite(o.peak_tflops) || o.peak_tflops <= 0) {
      return BadValue("peak-tflops", *text, "a positive number such as 67");
    }
  }
  if (std::optional<std::string> dir = args.Get("out-dir")) {
    if (dir->empty()) return BadValue("out-dir", *dir, "a directory");
    o.out_dir = *dir;
  }
  if (std::optional<std::string> text = args.Get("speculative-updates")) {
    if (*text != "on" && *text != "off") {
      return BadValue("speculative-updates", *text, "on|off");
    }
    o.speculative_updates = *text == "on";
  }
  if (std::optional<std::string> text = args.Get("device-embedding-optimizer")) {
    if (*text != "on" && *text != "off") {
      return BadValue("device-embedding-optimizer", *text, "on|off");
    }
    o.device_embedding_optimizer = *text == "on";
  }
  RETURN_IF_ERROR(IntFlag(args, "device-resident-layers", 0, o.device_resident_layers));
  o.plot = !args.Has("no-plot");
  o.python = args.Get("python").value_or("");
  o.plot_script = args.Get("plot-script").value_or("");
  if (o.warmup_iterations >= 0 && o.warmup_iterations >= o.steps) {
    return absl::InvalidArgumentError(
        absl::StrCat("--warmup-iterations: ", o.warmup_iterations,
                     " leaves no measured iteration of --steps ", o.steps));
  }
  return o;
}

std::string BenchCaseName(BenchCase bench_case) {
  switch (bench_case) {
    case BenchCase::kLargest:
      return "largest";
    case BenchCase::kThroughput:
      return "throughput";
    case BenchCase::kScaling:
      return "scaling";
    case BenchCase::kWindow:
      return "window";
    default:
      return "run";
  }
}

}  // namespace stronghold::client
