// The two sweeps of cases.h: iteration time against layers (with its
// linear fit) and against STRONGHOLD's window.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/bench/cases.h"
#include "client/bench/log.h"
#include "client/bench/report.h"
#include "client/bench/stats.h"
#include "client/human_format.h"
#include "client/table.h"
#include "core/util/status_macros.h"
#include "stronghold/v1/names.h"

namespace stronghold::client {
namespace {

std::vector<int> ScalingLayers(const BenchOptions& o) {
  if (!o.layers_list.empty()) return o.layers_list;
  const int layers = o.spec.model().layers();
  return {layers, 2 * layers, 3 * layers, 4 * layers};
}

// The seed swept W = 2..14 at 32 layers; on small models a window past a few
// layers holds most of the model, so the default stays small.
std::vector<int> Windows(const BenchOptions& o) {
  if (!o.windows.empty()) return o.windows;
  std::vector<int> windows;
  for (int w : {1, 2, 3, 4, 6, 8}) {
    if (w <= o.spec.model().layers()) windows.push_back(w);
  }
  return windows;
}

std::string Ms(double seconds) {
  return absl::StrFormat("%.1f", 1e3 * seconds);
}

}  // namespace

absl::StatusOr<CaseResult> RunScalingCase(BenchRunner& runner,
                                          std::ostream& out) {
  const BenchOptions& o = runner.options();
  const DevicePeak& peak = runner.environment().peak;
  const absl::Time time = absl::Now();
  Csv points(RunCsvHeader());
  Csv fits({"method", "slope_ms_per_layer", "intercept_ms", "r2", "points"});
  std::vector<std::string> header = {"Methods",        "Layers",
                                     "Trainable Size", "Iteration (ms)",
                                     "Throughput",     "Window"};
  AppendRankColumns(o, header);
  header.push_back("Result");
  Table table(header, {1, 3, 4});
  std::vector<std::string> lines;
  CaseResult result;
  for (v1::OffloadMethod method : o.methods) {
    std::vector<double> xs, ys;
    for (int layers : ScalingLayers(o)) {
      ASSIGN_OR_RETURN(
          BenchRun run,
          runner.Run(runner.Point(method, layers, o.spec.training().steps())));
      if (run.outcome == RunOutcome::kFailed) ++result.failed_runs;
      std::vector<std::string> row = {
          v1::OffloadMethod_Name(method),
          absl::StrCat(layers),
          SizeText(run.parameters),
          IterationMsText(run),
          SamplesText(run),
          run.succeeded() ? absl::StrCat(run.window_used) : "-"};
      AppendRankCells(run, o, row);
      row.push_back(ResultText(run));
      table.AddRow(std::move(row));
      points.AddRow(RunCsvCells(run, peak));
      if (run.succeeded()) {
        xs.push_back(layers);
        ys.push_back(1e3 * run.summary.step_s);
      }
    }
    const std::string name = v1::OffloadMethod_Name(method);
    absl::StatusOr<LinearFit> fit = FitLine(xs, ys);
    if (!fit.ok()) {
      lines.push_back(
          absl::StrCat(name, ": no linear fit: ", fit.status().message()));
      continue;
    }
    lines.push_back(absl::StrFormat(
        "%s: iteration time = %.3f ms/layer x layers + %.3f ms, R^2 = %.4f (%d "
        "points)",
        name, fit->slope, fit->intercept, fit->r2, fit->points));
    fits.AddRow({v1::OffloadMethodName(method),
                 absl::StrFormat("%.6f", fit->slope),
                 absl::StrFormat("%.6f", fit->intercept),
                 absl::StrFormat("%.6f", fit->r2), absl::StrCat(fit->points)});
  }
  out << "\nElapsed time per iteration against the number of layers:\n";
  table.Print(out);
  for (const std::string& line : lines) out << line << "\n";
  RETURN_IF_ERROR(WriteCaseFiles(
      runner, "scaling", time,
      {{"", std::move(points)}, {"_fit", std::move(fits)}}, out));
  return result;
}

absl::StatusOr<CaseResult> RunWindowCase(BenchRunner& runner,
                                         std::ostream& out) {
  const BenchOptions& o = runner.options();
  const int layers = o.spec.model().layers();
  const DevicePeak& peak = runner.environment().peak;
  const absl::Time time = absl::Now();
  Csv csv(RunCsvHeader());
  std::vector<std::string> header = {
      "Window",        "Used",         "Iteration (ms)", "Throughput",
      "H2D wait (ms)", "Compute (ms)", "Device peak"};
  AppendRankColumns(o, header);
  header.push_back("Result");
  Table table(header, {0, 1, 2, 3, 4, 5, 6});
  CaseResult result;
  for (int window : Windows(o)) {
    const BenchPoint point{.method = v1::STRONGHOLD,
                           .layers = layers,
                           .window = std::min(window, layers),
                           .steps = o.spec.training().steps()};
    ASSIGN_OR_RETURN(BenchRun run, runner.Run(point));
    if (run.outcome == RunOutcome::kFailed) ++result.failed_runs;
    const bool ok = run.succeeded();
    std::vector<std::string> row = {
        point.window == 0 ? "auto" : absl::StrCat(point.window),
        ok ? absl::StrCat(run.window_used) : "-",
        IterationMsText(run),
        SamplesText(run),
        ok ? Ms(run.summary.h2d_wait_s) : "-",
        ok ? Ms(run.summary.compute_s) : "-",
        ok ? HumanBytes(run.summary.device_peak_bytes) : "-"};
    AppendRankCells(run, o, row);
    row.push_back(ResultText(run));
    table.AddRow(std::move(row));
    csv.AddRow(RunCsvCells(run, peak));
  }
  out << "\nImpact of the working window (STRONGHOLD, " << layers
      << " layers):\n";
  table.Print(out);
  RETURN_IF_ERROR(
      WriteCaseFiles(runner, "window", time, {{"", std::move(csv)}}, out));
  return result;
}

}  // namespace stronghold::client
