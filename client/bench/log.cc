#include "client/bench/log.h"

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "client/human_format.h"
#include "stronghold/v1/names.h"

namespace stronghold::client {
namespace {

constexpr int kVocabPadding = 128;  // as core::ModelConfig::padded_vocab()

int PaddedVocab(int vocab) {
  return (vocab + kVocabPadding - 1) / kVocabPadding * kVocabPadding;
}

// `word` as a shell reads it back: as is when it holds only characters the
// shell leaves alone, else in single quotes (a job name may hold spaces).
std::string ShellWord(absl::string_view word) {
  const bool plain = !word.empty() && absl::c_all_of(word, [](char c) {
    return absl::ascii_isalnum(c) ||
           absl::string_view("-_./:=,+@%").find(c) != absl::string_view::npos;
  });
  if (plain) return std::string(word);
  return absl::StrCat("'", absl::StrReplaceAll(word, {{"'", "'\\''"}}), "'");
}

std::string Iterations(size_t n) {
  return absl::StrCat(n, n == 1 ? " iteration" : " iterations");
}

std::string Ms(double seconds) {
  return absl::StrFormat("%.3f", 1e3 * seconds);
}

std::string Bytes(int64_t bytes) {
  return absl::StrCat(HumanBytes(bytes), " (", bytes, " bytes)");
}

std::string Budget(int64_t bytes) {
  return bytes > 0 ? absl::StrCat(HumanBytes(bytes), " (", bytes, " bytes)")
                   : "none";
}

// The fields every iteration line and the summary share.
std::vector<std::string> RateFields(double step_s, double samples_per_s,
                                    double tokens_per_s, double model_tflops,
                                    const DevicePeak& peak) {
  return {
      absl::StrCat("elapsed time per iteration (ms): ", Ms(step_s)),
      absl::StrFormat("SamplesPerSec: %.4f", samples_per_s),
      absl::StrFormat("tokens/s: %.1f", tokens_per_s),
      absl::StrFormat("model TFLOPS: %.6g", model_tflops),
      absl::StrCat("MFU: ", FormatMfu(model_tflops, peak)),
  };
}

std::vector<std::string> BreakdownFields(double compute_s, double h2d_wait_s,
                                         double d2h_wait_s,
                                         double optimizer_s) {
  return {
      absl::StrCat("compute (ms): ", Ms(compute_s)),
      absl::StrCat("H2D wait (ms): ", Ms(h2d_wait_s)),
      absl::StrCat("D2H wait (ms): ", Ms(d2h_wait_s)),
      absl::StrCat("optimizer (ms): ", Ms(optimizer_s)),
  };
}

std::string IterationLine(absl::string_view label, const v1::StepMetrics& m,
                          int steps, const DevicePeak& peak) {
  std::vector<std::string> fields = {
      absl::StrCat(label, " ", m.step(), "/", steps)};
  for (std::string& f : RateFields(m.step_s(), m.samples_per_s(),
                                   m.tokens_per_s(), m.model_tflops(), peak)) {
    fields.push_back(std::move(f));
  }
  fields.push_back(absl::StrFormat("loss: %.4f", m.loss()));
  for (std::string& f : BreakdownFields(m.compute_s(), m.h2d_wait_s(),
                                        m.d2h_wait_s(), m.optimizer_s())) {
    fields.push_back(std::move(f));
  }
  fields.push_back(absl::StrCat("window: ", m.window()));
  fields.push_back(absl::StrCat("device peak bytes: ", m.device_peak_bytes()));
  return absl::StrJoin(fields, " | ");
}

std::string SummaryLine(const BenchRun& run, const DevicePeak& peak) {
  const IterationSummary& s = run.summary;
  std::vector<std::string> fields = {
      "summary",
      absl::StrCat("iterations: ", s.first_step, "-", s.last_step),
  };
  for (std::string& f : RateFields(s.step_s, s.samples_per_s, s.tokens_per_s,
                                   s.model_tflops, peak)) {
    fields.push_back(std::move(f));
  }
  fields.push_back(absl::StrCat("min (ms): ", Ms(s.min_step_s)));
  fields.push_back(absl::StrCat("max (ms): ", Ms(s.max_step_s)));
  for (std::string& f : BreakdownFields(s.compute_s, s.h2d_wait_s, s.d2h_wait_s,
                                        s.optimizer_s)) {
    fields.push_back(std::move(f));
  }
  fields.push_back(absl::StrCat("window: ", run.window_used));
  fields.push_back(absl::StrCat("device peak bytes: ", s.device_peak_bytes));
  return absl::StrJoin(fields, " | ");
}

// A rank's share of the job: its own iteration time and rates.
std::string RankSummaryLine(const RankRun& rank, const DevicePeak& peak) {
  const IterationSummary& s = rank.summary;
  std::vector<std::string> fields = {
      absl::StrCat("rank ", rank.rank, " summary"),
      absl::StrCat("job: ", rank.job),
      absl::StrCat("daemon: ", rank.daemon),
      absl::StrCat("iterations: ", s.first_step, "-", s.last_step),
  };
  for (std::string& f : RateFields(s.step_s, s.samples_per_s, s.tokens_per_s,
                                   s.model_tflops, peak)) {
    fields.push_back(std::move(f));
  }
  for (std::string& f : BreakdownFields(s.compute_s, s.h2d_wait_s, s.d2h_wait_s,
                                        s.optimizer_s)) {
    fields.push_back(std::move(f));
  }
  return absl::StrJoin(fields, " | ");
}

// The requested window; for L2L the one the daemon's plan resolved.
std::string WindowText(const BenchPoint& point, const v1::MemoryPlan& plan) {
  switch (point.method) {
    case v1::RESIDENT:
      return "none (every layer resident)";
    case v1::L2L:
      return absl::StrCat(plan.window(), " (L2L: one layer at a time)");
    default:
      return point.window == 0 ? "0 (automatic)" : absl::StrCat(point.window);
  }
}

}  // namespace

std::string LogFileName(const BenchPoint& point, const BenchOptions& options,
                        absl::Time time) {
  return absl::StrCat(
      "log_", v1::OffloadMethodName(point.method), "_l-", point.layers, "_h-",
      options.spec.model().hidden(), "_bs-", options.spec.training().batch(),
      "_ws-", point.window, "_",
      absl::FormatTime("%Y%m%d-%H%M%S", time, absl::LocalTimeZone()), ".txt");
}

std::string RepeatCommand(const BenchPoint& point,
                          const BenchOptions& options) {
  const v1::ModelSpec& model = options.spec.model();
  std::string command = absl::StrCat(
      "strongholdctl bench --method ", v1::OffloadMethodName(point.method),
      " --layers ", point.layers, " --hidden ", model.hidden(), " --heads ",
      model.heads(), " --seq-len ", model.seq_len(), " --vocab ", model.vocab(),
      " --batch ", options.spec.training().batch());
  if (point.method == v1::STRONGHOLD) {
    absl::StrAppend(&command, " --window ", point.window);
  }
  absl::StrAppend(&command, " --steps ", point.steps);
  // Every other spec flag as given: the run had them (BenchRunner::Spec
  // leaves out what its method does not take, and so would the repeat).
  for (const std::string& word : options.spec_args) {
    absl::StrAppend(&command, " ", ShellWord(word));
  }
  if (options.peak_tflops > 0) {
    absl::StrAppend(&command, " --peak-tflops ", options.peak_tflops);
  }
  if (!options.daemons.empty()) {
    absl::StrAppend(&command, " --daemons ",
                    ShellWord(absl::StrJoin(options.daemons, ",")));
  }
  return command;
}

std::string FormatMfu(double model_tflops, const DevicePeak& peak) {
  if (peak.tflops <= 0) return "n/a";
  return absl::StrFormat("%.2f%%", 100.0 * model_tflops / peak.tflops);
}

std::string FormatLog(const BenchRun& run, const BenchOptions& options,
                      const BenchEnvironment& environment) {
  const BenchPoint& p = run.point;
  const v1::Node& node = environment.node;
  const v1::MemoryPlan& plan = run.plan;
  const v1::ModelSpec& model = options.spec.model();
  const int batch = options.spec.training().batch();
  const int vocab = PaddedVocab(model.vocab());
  std::string log;
  auto line = [&log](auto&&... parts) {
    absl::StrAppend(&log, parts..., "\n");
  };
  line("# strongholdctl bench: ", v1::OffloadMethod_Name(p.method), ", ",
       p.layers, " layers, hidden ", model.hidden(), ", batch ", batch,
       ", window ", WindowText(p, plan));
  line("command: ", RepeatCommand(p, options));
  line("job: ", run.job.empty() ? "none (not submitted)" : run.job);
  if (options.world_size > 1) {
    const v1::DistributedSpec& d = run.spec.distributed();
    line("ranks: ", options.world_size, ", meeting at ", d.master_addr(), ":",
         d.master_port(),
         "; the plan is one rank's (rank 0's), the "
         "iterations and summary the whole job's (each step's slowest rank), "
         "each rank summary that rank's share");
    for (const RankRun& rank : run.ranks) {
      line("rank ", rank.rank, ": ", rank.job, " on ", rank.daemon);
    }
  }
  line("device: ", node.device(), " (host ", node.hostname(), ", ",
       node.cpu_threads(), " CPU threads, strongholdd ", node.version(),
       ", LibTorch ", node.torch_version(), ")");
  line("model: GPT, layers ", p.layers, ", hidden ", model.hidden(), ", heads ",
       model.heads(), ", seq_len ", model.seq_len(), ", vocab ", model.vocab(),
       " (padded ", vocab, "), batch ", batch, ", ",
       v1::PrecisionName(options.spec.training().precision()));
  line("total parameters: ", plan.parameters());
  line("iterations: ", p.steps, " (", run.warmup_iterations,
       " of them warm-up, reported apart)");
  line("model FLOPs per iteration: ",
       absl::StrFormat("%.6g", plan.model_flops_per_step()),
       " (72*B*s*L*h^2*(1 + s/(6h) + V/(12*L*h)))");
  const bool recompute = p.method != v1::RESIDENT;
  line(
      "hardware FLOPs per iteration: ",
      absl::StrFormat("%.6g", IterationFlops(batch, model.seq_len(), p.layers,
                                             model.hidden(), vocab, recompute)),
      recompute
          ? " (with recomputation: 96*B*s*L*h^2*(1 + s/(6h) + V/(16*L*h)))"
          : " (no recomputation: the model FLOPs)");
  line("device peak: ", environment.peak.source);
  line("plan: ", plan.fits() ? "fits" : "does not fit", "; device ",
       Bytes(plan.device_bytes()), " of budget ",
       Budget(plan.device_budget_bytes()), "; pinned ",
       Bytes(plan.pinned_bytes()), "; host ", Bytes(plan.host_bytes()),
       " of budget ", Budget(plan.host_budget_bytes()), "; window ",
       plan.window());
  for (const std::string& note : run.notes) line("note: ", note);
  if (!run.warmup.empty()) {
    line("warm-up (", run.warmup.size(), " iterations, not in the summary):");
    for (const v1::StepMetrics& m : run.warmup) {
      line(IterationLine("warmup", m, p.steps, environment.peak));
    }
  }
  if (!run.measured.empty()) {
    line("measured (", Iterations(run.measured.size()), "):");
    for (const v1::StepMetrics& m : run.measured) {
      line(IterationLine("iteration", m, p.steps, environment.peak));
    }
    line(SummaryLine(run, environment.peak));
    for (const RankRun& rank : run.ranks) {
      line(RankSummaryLine(rank, environment.peak));
    }
  }
  line("result: ", OutcomeName(run.outcome),
       run.reason.empty() ? "" : absl::StrCat(": ", run.reason));
  return log;
}

}  // namespace stronghold::client
