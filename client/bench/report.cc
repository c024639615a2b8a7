#include "client/bench/report.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/bench/log.h"
#include "client/json_output.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "stronghold/v1/names.h"

namespace stronghold::client {
namespace {

std::string Fixed(double value, int decimals) {
  return absl::StrFormat("%.*f", decimals, value);
}

}  // namespace

std::string SizeText(int64_t parameters) {
  const double p = static_cast<double>(parameters);
  if (p >= 1e9) return absl::StrFormat("%.3f B", p / 1e9);
  if (p >= 1e6) return absl::StrFormat("%.3f M", p / 1e6);
  return absl::StrFormat("%.3f K", p / 1e3);
}

std::string SamplesText(const BenchRun& run) {
  return run.succeeded() ? Fixed(run.summary.samples_per_s, 4)
                         : OutcomeName(run.outcome);
}

std::string IterationMsText(const BenchRun& run) {
  return run.succeeded() ? Fixed(1e3 * run.summary.step_s, 1) : "-";
}

namespace {

// Each rank's `figure`, in rank order, joined by `separator`.
std::string PerRank(const BenchRun& run, absl::string_view separator,
                    const std::function<std::string(const RankRun&)>& figure) {
  std::vector<std::string> cells;
  for (const RankRun& rank : run.ranks) cells.push_back(figure(rank));
  return absl::StrJoin(cells, separator);
}

}  // namespace

std::string RankSamplesText(const BenchRun& run) {
  if (!run.succeeded()) return "-";
  return PerRank(run, " / ", [](const RankRun& rank) {
    return Fixed(rank.summary.samples_per_s, 4);
  });
}

std::string RankIterationMsText(const BenchRun& run) {
  if (!run.succeeded()) return "-";
  return PerRank(run, " / ", [](const RankRun& rank) {
    return Fixed(1e3 * rank.summary.step_s, 1);
  });
}

std::string TokensText(const BenchRun& run) {
  return run.succeeded() ? Fixed(run.summary.tokens_per_s, 1) : "-";
}

void AppendRankColumns(const BenchOptions& o,
                       std::vector<std::string>& header) {
  if (o.world_size == 1) return;
  header.insert(header.end(), {"Ranks", "Tokens/s", "Per-rank samples/s",
                               "Per-rank iteration (ms)"});
}

void AppendRankCells(const BenchRun& run, const BenchOptions& o,
                     std::vector<std::string>& row) {
  if (o.world_size == 1) return;
  row.insert(row.end(), {absl::StrCat(o.world_size), TokensText(run),
                         RankSamplesText(run), RankIterationMsText(run)});
}

std::string ResultText(const BenchRun& run) {
  return run.reason.empty()
             ? OutcomeName(run.outcome)
             : absl::StrCat(OutcomeName(run.outcome), ": ", run.reason);
}

std::vector<std::string> RunCsvHeader() {
  return {"method",
          "layers",
          "parameters",
          "window_requested",
          "window_used",
          "outcome",
          "samples_per_s",
          "iteration_ms",
          "tokens_per_s",
          "model_tflops",
          "mfu_percent",
          "compute_ms",
          "h2d_wait_ms",
          "d2h_wait_ms",
          "optimizer_ms",
          "device_plan_bytes",
          "device_budget_bytes",
          "host_plan_bytes",
          "host_budget_bytes",
          "device_peak_bytes",
          "reason",
          "log",
          "world_size",
          "rank_samples_per_s",
          "rank_iteration_ms"};
}

std::vector<std::string> RunCsvCells(const BenchRun& run,
                                     const DevicePeak& peak) {
  const IterationSummary& s = run.summary;
  const bool ok = run.succeeded();
  auto figure = [ok](double value, int decimals) {
    return ok ? Fixed(value, decimals) : std::string();
  };
  return {
      v1::OffloadMethodName(run.point.method),
      absl::StrCat(run.point.layers),
      absl::StrCat(run.parameters),
      absl::StrCat(run.point.window),
      ok ? absl::StrCat(run.window_used) : "",
      OutcomeName(run.outcome),
      figure(s.samples_per_s, 6),
      figure(1e3 * s.step_s, 3),
      figure(s.tokens_per_s, 3),
      figure(s.model_tflops, 9),
      ok && peak.tflops > 0 ? Fixed(100.0 * s.model_tflops / peak.tflops, 4)
                            : "",
      figure(1e3 * s.compute_s, 3),
      figure(1e3 * s.h2d_wait_s, 3),
      figure(1e3 * s.d2h_wait_s, 3),
      figure(1e3 * s.optimizer_s, 3),
      absl::StrCat(run.plan.device_bytes()),
      absl::StrCat(run.plan.device_budget_bytes()),
      absl::StrCat(run.plan.host_bytes()),
      absl::StrCat(run.plan.host_budget_bytes()),
      ok ? absl::StrCat(s.device_peak_bytes) : "",
      run.reason,
      run.log_path,
      absl::StrCat(std::max(1, run.spec.distributed().world_size())),
      ok ? PerRank(run, ";",
                   [](const RankRun& rank) {
                     return Fixed(rank.summary.samples_per_s, 6);
                   })
         : "",
      ok ? PerRank(run, ";",
                   [](const RankRun& rank) {
                     return Fixed(1e3 * rank.summary.step_s, 3);
                   })
         : "",
  };
}

namespace {

// `"key":value` for JSON, a figure `null` unless the run succeeded.
std::string JsonNumber(absl::string_view key, double value, bool ok) {
  return absl::StrCat(JsonQuote(key), ":",
                      ok ? absl::StrFormat("%.9g", value) : "null");
}
std::string JsonText(absl::string_view key, absl::string_view value) {
  return absl::StrCat(JsonQuote(key), ":", JsonQuote(value));
}
std::string JsonInt(absl::string_view key, int64_t value) {
  return absl::StrCat(JsonQuote(key), ":", value);
}

// The rates and iteration time of `s`.
std::vector<std::string> JsonFigures(const IterationSummary& s, bool ok) {
  return {JsonNumber("iteration_ms", 1e3 * s.step_s, ok),
          JsonNumber("samples_per_s", s.samples_per_s, ok),
          JsonNumber("tokens_per_s", s.tokens_per_s, ok),
          JsonNumber("model_tflops", s.model_tflops, ok)};
}

}  // namespace

std::string RunJson(const BenchRun& run, const DevicePeak& peak) {
  const bool ok = run.succeeded();
  std::vector<std::string> fields = {
      JsonText("method", v1::OffloadMethodName(run.point.method)),
      JsonInt("layers", run.point.layers),
      JsonInt("window_requested", run.point.window),
      JsonInt("window_used", ok ? run.window_used : 0),
      JsonInt("steps", run.point.steps),
      JsonInt("parameters", run.parameters),
      JsonText("outcome", OutcomeName(run.outcome)),
      JsonText("reason", run.reason),
      JsonText("job", run.job),
      JsonText("log", run.log_path),
      JsonInt("world_size", std::max(1, run.spec.distributed().world_size())),
      JsonInt("iterations", run.summary.iterations)};
  for (std::string& f : JsonFigures(run.summary, ok)) {
    fields.push_back(std::move(f));
  }
  fields.push_back(JsonNumber("mfu_percent",
                              100.0 * run.summary.model_tflops / peak.tflops,
                              ok && peak.tflops > 0));
  std::vector<std::string> ranks;
  for (const RankRun& rank : run.ranks) {
    std::vector<std::string> r = {JsonInt("rank", rank.rank),
                                  JsonText("daemon", rank.daemon),
                                  JsonText("job", rank.job)};
    for (std::string& f : JsonFigures(rank.summary, ok)) {
      r.push_back(std::move(f));
    }
    ranks.push_back(absl::StrCat("{", absl::StrJoin(r, ","), "}"));
  }
  fields.push_back(
      absl::StrCat(JsonQuote("ranks"), ":[", absl::StrJoin(ranks, ","), "]"));
  return absl::StrCat("{", absl::StrJoin(fields, ","), "}");
}

absl::Status WriteCaseFiles(const BenchRunner& runner, absl::string_view name,
                            absl::Time time, const std::vector<CaseCsv>& csvs,
                            std::ostream& out) {
  const std::string& dir = runner.environment().out_dir;
  RETURN_IF_ERROR(EnsureDir(dir));
  std::vector<std::string> paths;
  for (const CaseCsv& csv : csvs) {
    paths.push_back(
        CaseFilePath(dir, absl::StrCat(name, csv.suffix), time, "csv"));
    RETURN_IF_ERROR(
        core::WriteFileAtomically(paths.back(), csv.csv.ToString()));
    out << "csv: " << paths.back() << "\n";
  }
  if (!runner.options().plot) return absl::OkStatus();
  const std::string png = CaseFilePath(dir, name, time, "png");
  RETURN_IF_ERROR(Plot(runner.options(), name, png, paths));
  out << "plot: " << png << "\n";
  return absl::OkStatus();
}

}  // namespace stronghold::client
