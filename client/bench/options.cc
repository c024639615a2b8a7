#include "client/bench/options.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/job_spec_flags.h"
#include "core/util/status_macros.h"

namespace stronghold::client {
namespace {

// The seed's defaults, given to the spec flags as if typed before the user's
// (SeedSpec), and shown in the help of those flags.
const std::vector<std::pair<std::string, std::string>>& SeedFlags() {
  static const auto* flags =
      new std::vector<std::pair<std::string, std::string>>{
          {"name", "bench"},
          {"layers", "16"},
          {"hidden", "2048"},
          {"heads", "16"},
          {"seq-len", "1024"},
          {"vocab", "50304"},
          {"batch", "4"},
          {"window", "4"},
          {"steps", "5"},
          {"lr", "1e-4"},
          {"warmup-steps", "0"},
          {"precision", "fp32"},
          {"log-every", "1"},
          {"keep-last", "1"},
          // The seed ran none of these: a bench compares methods and
          // windows with them off unless a flag (auto included) says so.
          {"speculative-updates", "off"},
          {"device-embedding-optimizer", "off"},
          {"device-resident-layers", "0"},
      };
  return *flags;
}

// --method is the bench's: a list of methods, each run in turn. Each rank's
// rank and the job key are the bench's to set per run (ParseRanks), so the
// flags that give them are not taken.
JobSpecFlagsOptions SpecFlagOptions(v1::JobSpec base) {
  return {.base = std::move(base),
          .own_flags = {"method", "rank", "local-rank", "job-key",
                        "dist-from-env"}};
}

// The spec flags that the log's repeat command writes itself, from the point
// and the spec (log.cc: RepeatCommand).
constexpr const char* kRepeatedFromSpec[] = {"layers",  "hidden", "heads",
                                             "seq-len", "vocab",  "batch",
                                             "window",  "steps"};

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

// A value of the spec that the bench works from must be >= `min`, whether a
// flag or the --spec file gave it.
absl::Status AtLeast(absl::string_view flag, int64_t value, int min) {
  if (value >= min) return absl::OkStatus();
  return BadValue(flag, absl::StrCat(value),
                  absl::StrCat("an integer >= ", min));
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

// The highest rank count the API takes (DistributedSpec.world_size).
constexpr int kMaxWorldSize = 1024;
// torchrun's default rendezvous port.
constexpr int kDefaultMasterPort = 29500;

// Whether a daemon address is on this host: a unix socket or a loopback
// host, so that the ranks can meet on 127.0.0.1.
bool OnThisHost(absl::string_view address) {
  if (absl::StartsWith(address, "unix:") ||
      address.find(':') == absl::string_view::npos) {
    return true;  // a socket path (NormalizeDaemonAddress)
  }
  absl::string_view host = address.substr(0, address.rfind(':'));
  absl::ConsumePrefix(&host, "dns:");
  absl::ConsumePrefix(&host, "ipv4:");
  absl::ConsumePrefix(&host, "ipv6:");
  absl::ConsumePrefix(&host, "///");
  return host == "localhost" || host == "[::1]" ||
         absl::StartsWith(host, "127.");
}

// --world-size, --daemons and the rendezvous of every run's ranks.
absl::Status ParseRanks(const ParsedArgs& args, BenchOptions& o) {
  v1::DistributedSpec* d = o.spec.mutable_distributed();
  // The API reads 0 as 1; a bench asked for 0 ranks is a mistake.
  const bool zero_asked = args.Get("world-size") == std::optional("0");
  const int n = d->world_size() == 0 ? 1 : d->world_size();
  if (zero_asked || n < 1 || n > kMaxWorldSize) {
    return BadValue("world-size", absl::StrCat(d->world_size()),
                    absl::StrCat("an integer in 1..", kMaxWorldSize));
  }
  o.world_size = n;
  if (std::optional<std::string> text = args.Get("daemons")) {
    for (absl::string_view address : absl::StrSplit(*text, ',')) {
      if (address.empty()) {
        return BadValue("daemons", *text,
                        "comma-separated daemon addresses, rank 0's first");
      }
      o.daemons.emplace_back(address);
    }
    if (static_cast<int>(o.daemons.size()) != n) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--daemons: ", o.daemons.size(), " address(es) for --world-size ", n,
          "; give one daemon per rank, rank 0's first"));
    }
  } else if (n > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--daemons: missing; --world-size ", n,
        " needs one daemon per rank (one daemon serves one device), e.g. "
        "--daemons unix:/run/stronghold/gpu0/strongholdd.sock,unix:/run/"
        "stronghold/gpu1/strongholdd.sock"));
  }
  if (n == 1) return absl::OkStatus();
  v1::TrainingSpec* t = o.spec.mutable_training();
  // One micro-batch per rank and iteration unless --micro-batch says
  // otherwise, as one rank runs one micro-batch (the seed's run.sh).
  if (t->micro_batch() == 0 && t->batch() % n == 0) {
    t->set_micro_batch(t->batch() / n);
  }
  const int64_t per_step =
      int64_t{n} * (t->micro_batch() > 0 ? t->micro_batch() : t->batch());
  if (t->batch() % per_step != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--batch: ", t->batch(), " is not a multiple of --world-size ", n,
        " x --micro-batch ", per_step / n, " (= ", per_step,
        "): every rank takes whole micro-batches of the global batch"));
  }
  if (d->master_addr().empty()) {
    if (!absl::c_all_of(o.daemons, OnThisHost)) {
      return absl::InvalidArgumentError(
          "--master-addr: missing; the daemons are not all on this host, so "
          "name rank 0's host as every rank's daemon reaches it");
    }
    d->set_master_addr("127.0.0.1");
  }
  if (d->master_port() == 0) d->set_master_port(kDefaultMasterPort);
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

// The spec from the seed's defaults, --spec and the flags, and the flags as
// given for the repeat command.
absl::Status ParseSpec(const ParsedArgs& args, BenchOptions& o) {
  ASSIGN_OR_RETURN(o.spec, BuildJobSpec(args, SpecFlagOptions(SeedSpec())));
  const v1::JobSpec& spec = o.spec;
  RETURN_IF_ERROR(AtLeast("layers", spec.model().layers(), 1));
  RETURN_IF_ERROR(AtLeast("window", spec.offload().window(), 0));
  RETURN_IF_ERROR(AtLeast("steps", spec.training().steps(), 1));
  RETURN_IF_ERROR(AtLeast("device-resident-layers",
                          spec.offload().device_resident_layers(), 0));
  for (const FlagSpec& flag : JobSpecFlags(SpecFlagOptions({}))) {
    if (absl::c_linear_search(kRepeatedFromSpec, flag.name)) continue;
    for (const std::string& value : args.GetAll(flag.name)) {
      o.spec_args.push_back(absl::StrCat("--", flag.name));
      o.spec_args.push_back(value);
    }
  }
  return absl::OkStatus();
}

}  // namespace

v1::JobSpec SeedSpec() {
  static const auto* spec = [] {
    std::vector<std::string> words;
    for (const auto& [flag, value] : SeedFlags()) {
      words.push_back(absl::StrCat("--", flag));
      words.push_back(value);
    }
    // Constants, parsed in every unit test of the bench: they cannot fail.
    const std::vector<FlagSpec> flags = JobSpecFlags(SpecFlagOptions({}));
    const ParsedArgs args = ParseArgs(words, flags, {}).value();
    return new v1::JobSpec(BuildJobSpec(args, SpecFlagOptions({})).value());
  }();
  return *spec;
}

int BenchOptions::WarmupIterations(bool automatic_window, int steps) const {
  const int wanted = warmup_iterations >= 0 ? warmup_iterations
                     : automatic_window     ? 2
                                            : 1;
  return std::max(0, std::min(wanted, steps - 1));
}

const std::vector<FlagSpec>& BenchFlags() {
  static const auto* flags = [] {
    auto* all = new std::vector<FlagSpec>{
        {"method", "resident|l2l|stronghold|all",
         "methods to run (default all; stronghold for scaling and window)"},
        {"case", "largest|throughput|scaling|window",
         "one of the seed's cases (default: one run per method)"},
        {"warmup-iterations", "N",
         "first iterations reported apart (default 1; 2 with --window 0)"},
        {"daemons", "ADDRESS,...",
         "one daemon per rank with --world-size N, rank 0's first (default "
         "--daemon alone for N = 1)"},
        {"out-dir", "DIR", "where logs, CSV and plots go (default ./results)"},
        {"peak-tflops", "X",
         "device dense peak for MFU (default: nominal, see docs/bench.md)"},
        {"max-layers", "N", "largest: search up to N layers (default 1024)"},
        {"confirm-steps", "N",
         "largest: iterations of the confirming run (default 2)"},
        {"layers-list", "N,N,...",
         "scaling: layer counts (default L,2L,3L,4L)"},
        {"windows", "N,N,...",
         "window: windows, 0 = automatic (default 1,2,3,4,6,8 up to L)"},
        {"no-plot", "", "write CSV files but no PNG plots"},
        {"python", "PATH",
         "interpreter with matplotlib (default /usr/bin/python3)"},
        {"plot-script", "PATH", "the plotting script (default: found)"},
    };
    // Then every flag of `submit`, with the seed's default where it has one.
    for (FlagSpec flag : JobSpecFlags(SpecFlagOptions({}))) {
      for (const auto& [name, value] : SeedFlags()) {
        if (name == flag.name) {
          absl::StrAppend(&flag.help, " (bench default ", value, ")");
        }
      }
      all->push_back(std::move(flag));
    }
    return all;
  }();
  return *flags;
}

absl::StatusOr<BenchOptions> ParseBenchOptions(const ParsedArgs& args) {
  BenchOptions o;
  RETURN_IF_ERROR(ParseCase(args, o));
  RETURN_IF_ERROR(ParseMethods(args, o));
  RETURN_IF_ERROR(ParseSpec(args, o));
  RETURN_IF_ERROR(ParseRanks(args, o));
  RETURN_IF_ERROR(IntFlag(args, "warmup-iterations", 0, o.warmup_iterations));
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
  o.plot = !args.Has("no-plot");
  o.python = args.Get("python").value_or("");
  o.plot_script = args.Get("plot-script").value_or("");
  const int steps = o.spec.training().steps();
  if (o.warmup_iterations >= 0 && o.warmup_iterations >= steps) {
    return absl::InvalidArgumentError(
        absl::StrCat("--warmup-iterations: ", o.warmup_iterations,
                     " leaves no measured iteration of --steps ", steps));
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
