#include "client/bench/cases.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/bench/log.h"
#include "client/bench/report.h"
#include "client/human_format.h"
#include "client/table.h"
#include "core/util/status_macros.h"
#include "stronghold/v1/names.h"

namespace stronghold::client {
namespace {

std::string PlanBytes(int64_t need, int64_t budget) {
  return absl::StrCat(HumanBytes(need), " / ",
                      budget > 0 ? HumanBytes(budget) : "none");
}

// Why a method stops at its largest size, from the planner.
std::string Limit(const LargestSearch& search) {
  if (search.layers == 0) {
    return absl::StrCat("not even 1 layer fits: ", search.plan.reason());
  }
  if (search.at_bound) return "fits up to the search bound (--max-layers)";
  return absl::StrCat(search.layers + 1,
                      " layers do not fit: ", search.beyond.reason());
}

// The seed's columns after the layers: the rest of the model's shape.
void AppendWidth(const BenchOptions& o, std::vector<std::string>& row) {
  const v1::ModelSpec& model = o.spec.model();
  row.insert(
      row.end(),
      {absl::StrCat(model.hidden()), absl::StrCat(model.heads()),
       absl::StrCat(model.seq_len()), absl::StrCat(o.spec.training().batch())});
}

// The seed's columns after the figures: size and shape of the model.
void AppendShape(const BenchRun& run, const BenchOptions& o,
                 std::vector<std::string>& row) {
  row.insert(row.end(),
             {SizeText(run.parameters), absl::StrCat(run.point.layers)});
  AppendWidth(o, row);
}

const std::vector<std::string> kShapeHeader = {"Trainable Size",  "Layers",
                                               "Hidden Size",     "Heads",
                                               "Sequence Length", "Batch Size"};

}  // namespace

absl::StatusOr<CaseResult> RunEachMethod(BenchRunner& runner,
                                         std::ostream& out) {
  const BenchOptions& o = runner.options();
  const DevicePeak& peak = runner.environment().peak;
  std::vector<std::string> header = {"Methods", "Throughput", "Iteration (ms)",
                                     "TFLOPS", "MFU"};
  header.insert(header.end(), kShapeHeader.begin(), kShapeHeader.end());
  header.push_back("Window");
  AppendRankColumns(o, header);
  header.push_back("Log");
  Table table(header, {1, 2, 3, 4});
  CaseResult result;
  std::vector<BenchRun> runs;
  for (v1::OffloadMethod method : o.methods) {
    ASSIGN_OR_RETURN(BenchRun run,
                     runner.Run(runner.Point(method, o.spec.model().layers(),
                                             o.spec.training().steps())));
    if (run.outcome == RunOutcome::kFailed) ++result.failed_runs;
    std::vector<std::string> row = {
        v1::OffloadMethod_Name(method), SamplesText(run), IterationMsText(run),
        run.succeeded() ? absl::StrFormat("%.4g", run.summary.model_tflops)
                        : "-",
        run.succeeded() ? FormatMfu(run.summary.model_tflops, peak) : "-"};
    AppendShape(run, o, row);
    row.push_back(run.succeeded() ? absl::StrCat(run.window_used) : "-");
    AppendRankCells(run, o, row);
    row.push_back(run.log_path);
    table.AddRow(std::move(row));
    runs.push_back(std::move(run));
  }
  out << "\n";
  table.Print(out);
  for (const BenchRun& run : runs) {
    if (!run.succeeded()) {
      out << v1::OffloadMethod_Name(run.point.method) << ": " << ResultText(run)
          << "\n";
    }
  }
  out << "MFU against " << peak.source << "\n";
  return result;
}

absl::StatusOr<CaseResult> RunLargestCase(BenchRunner& runner,
                                          std::ostream& out) {
  const BenchOptions& o = runner.options();
  const absl::Time time = absl::Now();
  std::vector<std::string> csv_header = {"method",
                                         "largest_layers",
                                         "parameters",
                                         "at_search_bound",
                                         "window",
                                         "device_plan_bytes",
                                         "device_budget_bytes",
                                         "host_plan_bytes",
                                         "host_budget_bytes",
                                         "confirmed",
                                         "samples_per_s",
                                         "iteration_ms",
                                         "limit",
                                         "log"};
  Csv csv(csv_header);
  std::vector<std::string> header = {"Methods",
                                     "Largest Trainable Size",
                                     "Layers",
                                     "Hidden Size",
                                     "Heads",
                                     "Sequence Length",
                                     "Batch Size",
                                     "Window",
                                     "Device (plan / budget)",
                                     "Host (plan / budget)",
                                     "Confirming run"};
  Table table(header, {1, 2});
  std::vector<std::string> limits;
  CaseResult result;
  for (v1::OffloadMethod method : o.methods) {
    ASSIGN_OR_RETURN(LargestSearch search, runner.Largest(method));
    const v1::MemoryPlan& plan = search.plan;
    std::string confirmed = "-", samples, iteration_ms, log;
    if (search.layers > 0) {
      ASSIGN_OR_RETURN(
          BenchRun run,
          runner.Run(runner.Point(method, search.layers, o.confirm_steps)));
      if (run.outcome == RunOutcome::kFailed) ++result.failed_runs;
      confirmed = run.succeeded() ? absl::StrCat("SUCCEEDED, ",
                                                 SamplesText(run), " samples/s")
                                  : ResultText(run);
      if (run.succeeded()) {
        samples = absl::StrFormat("%.6f", run.summary.samples_per_s);
        iteration_ms = absl::StrFormat("%.3f", 1e3 * run.summary.step_s);
      }
      log = run.log_path;
    }
    const std::string name = v1::OffloadMethod_Name(method);
    std::vector<std::string> row = {
        name, search.layers > 0 ? SizeText(plan.parameters()) : "does not fit",
        absl::StrCat(search.layers, search.at_bound ? "+" : "")};
    AppendWidth(o, row);
    row.insert(
        row.end(),
        {method == v1::RESIDENT ? "-" : absl::StrCat(plan.window()),
         PlanBytes(plan.device_bytes(), plan.device_budget_bytes()),
         PlanBytes(plan.host_bytes(), plan.host_budget_bytes()), confirmed});
    table.AddRow(std::move(row));
    limits.push_back(absl::StrCat(name, ": ", Limit(search)));
    csv.AddRow({v1::OffloadMethodName(method), absl::StrCat(search.layers),
                search.layers > 0 ? absl::StrCat(plan.parameters()) : "0",
                search.at_bound ? "true" : "false", absl::StrCat(plan.window()),
                absl::StrCat(plan.device_bytes()),
                absl::StrCat(plan.device_budget_bytes()),
                absl::StrCat(plan.host_bytes()),
                absl::StrCat(plan.host_budget_bytes()),
                search.layers == 0 ? "DOES NOT FIT" : confirmed, samples,
                iteration_ms, Limit(search), log});
  }
  out << "\nThe largest trainable model size (planner search over layers, then "
         "a confirming run of "
      << o.confirm_steps << " iterations):\n";
  table.Print(out);
  for (const std::string& limit : limits) out << limit << "\n";
  RETURN_IF_ERROR(
      WriteCaseFiles(runner, "largest", time, {{"", std::move(csv)}}, out));
  return result;
}

absl::StatusOr<CaseResult> RunThroughputCase(BenchRunner& runner,
                                             std::ostream& out) {
  const BenchOptions& o = runner.options();
  const DevicePeak& peak = runner.environment().peak;
  const absl::Time time = absl::Now();
  // The sizes: each method's largest, and RESIDENT's even when it is not
  // run, since the seed compares every method at that size (case 2.1.3).
  std::vector<v1::OffloadMethod> sized = o.methods;
  if (sized.front() != v1::RESIDENT) sized.insert(sized.begin(), v1::RESIDENT);
  std::map<int, std::vector<v1::OffloadMethod>> owners;  // layers -> methods
  std::vector<int> order;
  for (v1::OffloadMethod method : sized) {
    ASSIGN_OR_RETURN(LargestSearch search, runner.Largest(method));
    if (search.layers == 0) {
      out << v1::OffloadMethod_Name(method)
          << " does not fit at 1 layer: " << search.plan.reason() << "\n";
      continue;
    }
    if (owners[search.layers].empty()) order.push_back(search.layers);
    owners[search.layers].push_back(method);
  }

  std::vector<std::string> csv_header = {"size", "size_layers", "relative"};
  for (const std::string& h : RunCsvHeader()) csv_header.push_back(h);
  Csv csv(csv_header);
  std::vector<std::string> header = {"Size",     "Methods",        "Throughput",
                                     "Relative", "Iteration (ms)", "MFU"};
  header.insert(header.end(), kShapeHeader.begin(), kShapeHeader.end());
  header.push_back("Window");
  AppendRankColumns(o, header);
  Table table(header, {2, 3, 4, 5});
  CaseResult result;
  std::vector<std::string> notes;
  for (int layers : order) {
    std::vector<std::string> names;
    for (v1::OffloadMethod m : owners[layers])
      names.push_back(v1::OffloadMethodName(m));
    const std::string size = absl::StrCat(absl::StrJoin(names, "/"), " max");
    std::vector<BenchRun> runs;
    for (v1::OffloadMethod method : o.methods) {
      ASSIGN_OR_RETURN(
          BenchRun run,
          runner.Run(runner.Point(method, layers, o.spec.training().steps())));
      if (run.outcome == RunOutcome::kFailed) ++result.failed_runs;
      runs.push_back(std::move(run));
    }
    // Relative to the method whose largest size this is, when it ran.
    double reference = 0;
    for (const BenchRun& run : runs) {
      if (run.point.method == owners[layers].front() && run.succeeded()) {
        reference = run.summary.samples_per_s;
      }
    }
    for (const BenchRun& run : runs) {
      const std::string relative =
          run.succeeded() && reference > 0
              ? absl::StrFormat("%.3f", run.summary.samples_per_s / reference)
              : "";
      std::vector<std::string> row = {
          size,
          v1::OffloadMethod_Name(run.point.method),
          SamplesText(run),
          relative.empty() ? "-" : relative,
          IterationMsText(run),
          run.succeeded() ? FormatMfu(run.summary.model_tflops, peak) : "-"};
      AppendShape(run, o, row);
      row.push_back(run.succeeded() ? absl::StrCat(run.window_used) : "-");
      AppendRankCells(run, o, row);
      table.AddRow(std::move(row));
      std::vector<std::string> cells = {size, absl::StrCat(layers), relative};
      for (std::string& c : RunCsvCells(run, peak))
        cells.push_back(std::move(c));
      csv.AddRow(std::move(cells));
      if (!run.succeeded()) {
        notes.push_back(absl::StrCat(v1::OffloadMethod_Name(run.point.method),
                                     " at ", layers,
                                     " layers: ", ResultText(run)));
      }
    }
  }
  out << "\nThroughput (samples/s) at each method's largest trainable size; "
         "Relative is against the method whose largest size it is:\n";
  table.Print(out);
  for (const std::string& note : notes) out << note << "\n";
  RETURN_IF_ERROR(
      WriteCaseFiles(runner, "throughput", time, {{"", std::move(csv)}}, out));
  return result;
}

absl::StatusOr<int> RunBench(BenchRunner& runner, std::ostream& out,
                             std::ostream& err) {
  absl::StatusOr<CaseResult> result;
  switch (runner.options().bench_case) {
    case BenchCase::kLargest:
      result = RunLargestCase(runner, out);
      break;
    case BenchCase::kThroughput:
      result = RunThroughputCase(runner, out);
      break;
    case BenchCase::kScaling:
      result = RunScalingCase(runner, out);
      break;
    case BenchCase::kWindow:
      result = RunWindowCase(runner, out);
      break;
    default:
      result = RunEachMethod(runner, out);
  }
  if (!result.ok()) return result.status();
  if (result->failed_runs > 0) {
    err << "strongholdctl: " << result->failed_runs
        << " benchmark job(s) failed; their logs say why\n";
    return 1;
  }
  return 0;
}

}  // namespace stronghold::client
