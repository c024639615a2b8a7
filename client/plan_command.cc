// `strongholdctl plan`: the memory plan of a spec, with --predict its
// predicted step time on a hardware profile (docs/prediction.md), and with
// --case the seed's tables (algorithm.md §4) predicted for a profile: a
// loop of PlanJob requests here in the client, one per row.
//   largest     each method's largest trainable model under the budgets,
//               and its predicted samples/s at that size;
//   throughput  each method at the spec's size: samples/s and the ratio to
//               RESIDENT;
//   window      STRONGHOLD at each window of --windows.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "client/job_spec_flags.h"
#include "client/json_output.h"
#include "client/plan_printer.h"
#include "client/table.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace stronghold::client {
namespace {

constexpr int64_t kMaxProfileBytes = int64_t{1} << 20;

// --hardware NAME|FILE: a file (a path that exists) is sent as JSON, any
// other value as a built-in profile's name.
absl::Status SetHardware(const ParsedArgs& args, v1::PlanJobRequest& request) {
  std::optional<std::string> value = args.Get("hardware");
  if (!value.has_value()) return absl::OkStatus();
  if (value->empty()) return absl::InvalidArgumentError("--hardware: empty");
  absl::StatusOr<int64_t> size = core::FileSize(*value);
  if (!size.ok()) {
    if (value->find('/') != std::string::npos ||
        absl::EndsWith(*value, ".json")) {
      return absl::InvalidArgumentError(
          absl::StrCat("--hardware ", *value, ": ", size.status().message()));
    }
    request.set_hardware_profile(*value);
    return absl::OkStatus();
  }
  if (*size > kMaxProfileBytes) {
    return absl::InvalidArgumentError(absl::StrCat("--hardware ", *value, ": ",
                                                   *size, " bytes, more than ",
                                                   kMaxProfileBytes));
  }
  ASSIGN_OR_RETURN(std::string json, core::ReadFile(*value));
  request.set_hardware_profile_json(std::move(json));
  return absl::OkStatus();
}

struct CaseRow {
  std::string name;
  int layers = 0;  // 0: the daemon's default
  v1::MemoryPlan plan;
};

const char* MethodName(v1::OffloadMethod m) {
  return m == v1::L2L ? "L2L" : m == v1::STRONGHOLD ? "STRONGHOLD" : "RESIDENT";
}

std::string StepText(const v1::MemoryPlan& plan) {
  if (!plan.prediction().fits()) return "does not fit";
  const v1::PredictedStep& p = plan.prediction().predicted();
  return absl::StrFormat("%.3f", p.predicted_step_s());
}

absl::StatusOr<v1::MemoryPlan> Predict(CommandContext& context,
                                       const v1::PlanJobRequest& base,
                                       const v1::JobSpec& spec) {
  v1::PlanJobRequest request = base;
  *request.mutable_spec() = spec;
  request.set_predict(true);
  return context.client->PlanJob(request);
}

// --windows, or 1, 2, 4, ... below `layers` (up to 8 when unknown).
absl::StatusOr<std::vector<int>> Windows(const ParsedArgs& args, int layers) {
  std::vector<int> windows;
  std::optional<std::string> text = args.Get("windows");
  if (!text.has_value()) {
    for (int w = 1; w < (layers > 0 ? layers : 9); w *= 2) windows.push_back(w);
    return windows;
  }
  for (absl::string_view part : absl::StrSplit(*text, ',')) {
    int w = 0;
    if (!absl::SimpleAtoi(part, &w) || w < 0 || w > 1024) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--windows: \"", part, "\" is not a window in [0, 1024]"));
    }
    windows.push_back(w);
  }
  if (windows.empty() || windows.size() > 64)
    return absl::InvalidArgumentError("--windows: 1..64 windows");
  return windows;
}

// The rows of one --case, each a plan with its prediction.
absl::StatusOr<std::vector<CaseRow>> RunCase(CommandContext& context,
                                             const std::string& which,
                                             const std::vector<int>& windows,
                                             const v1::PlanJobRequest& base) {
  std::vector<CaseRow> rows;
  const v1::JobSpec& spec = base.spec();
  const int layers = spec.model().layers();
  if (which == "largest" || which == "throughput") {
    for (v1::OffloadMethod m : {v1::RESIDENT, v1::L2L, v1::STRONGHOLD}) {
      v1::JobSpec s = spec;
      s.mutable_offload()->set_method(m);
      if (m != v1::STRONGHOLD) s.mutable_offload()->clear_window();
      if (which == "largest") {
        ASSIGN_OR_RETURN(const v1::MemoryPlan probe, Predict(context, base, s));
        // The largest on the profile's machine (this node's for the
        // measured profile).
        const int largest = probe.prediction().max_layers();
        if (largest < 1) {
          rows.push_back({MethodName(m), 0, probe});
          continue;
        }
        s.mutable_model()->set_layers(largest);
      }
      ASSIGN_OR_RETURN(v1::MemoryPlan plan, Predict(context, base, s));
      rows.push_back({MethodName(m), s.model().layers(), std::move(plan)});
    }
    return rows;
  }
  if (which == "window") {
    for (int w : windows) {
      v1::JobSpec s = spec;
      s.mutable_offload()->set_method(v1::STRONGHOLD);
      s.mutable_offload()->set_window(w);
      ASSIGN_OR_RETURN(v1::MemoryPlan plan, Predict(context, base, s));
      rows.push_back({w == 0 ? std::string("automatic") : absl::StrCat("W=", w),
                      layers, std::move(plan)});
    }
    return rows;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--case ", which, ": expected largest, throughput or window"));
}

void PrintCase(const std::string& which, const std::vector<CaseRow>& rows,
               std::ostream& out) {
  if (!rows.empty() && rows[0].plan.has_prediction()) {
    const v1::StepPrediction& p = rows[0].plan.prediction();
    out << "predicted on hardware profile " << p.hardware_profile()
        << (p.measured_profile() ? " (measured on this node)" : "") << "\n\n";
  }
  double resident_samples = 0;
  Table table({"CASE", "LAYERS", "PARAMETERS", "WINDOW", "STEP S", "SAMPLES/S",
               "MFU", "BOTTLENECK", "VS RESIDENT"},
              /*right_aligned_columns=*/{1, 2, 3, 4, 5, 6});
  for (const CaseRow& row : rows) {
    const v1::MemoryPlan& plan = row.plan;
    const bool predicted =
        plan.prediction().fits() && plan.prediction().has_predicted();
    const v1::PredictedStep& p = plan.prediction().predicted();
    if (row.name == "RESIDENT" && predicted)
      resident_samples = p.samples_per_s();
    table.AddRow(
        {row.name, row.layers > 0 ? absl::StrCat(row.layers) : "-",
         absl::StrFormat("%.3fB", plan.parameters() / 1e9),
         predicted ? absl::StrCat(plan.prediction().window()) : "-",
         StepText(plan),
         predicted ? absl::StrFormat("%.4f", p.samples_per_s()) : "-",
         predicted ? absl::StrFormat("%.1f%%", 100 * p.mfu()) : "-",
         predicted
             ? p.bottleneck()
             : (plan.prediction().fits() ? "-" : plan.prediction().reason()),
         predicted && resident_samples > 0 && which != "window"
             ? absl::StrFormat("%.3fx", p.samples_per_s() / resident_samples)
             : "-"});
  }
  table.Print(out);
}

}  // namespace

Command PlanCommand() {
  std::vector<FlagSpec> flags = JobSpecFlags();
  flags.push_back({"predict", "",
                   "also predict the step time, the bottleneck and the "
                   "alternatives (docs/prediction.md)"});
  flags.push_back({"hardware", "NAME|FILE",
                   "profile to predict for: a built-in name (h200, "
                   "h100-pcie-gen5, v100-32gb-vm) or a JSON file; default: "
                   "the node's measured profile (implies --predict)"});
  flags.push_back({"case", "largest|throughput|window",
                   "print one of the seed's tables predicted for the profile "
                   "(implies --predict)"});
  flags.push_back({"windows", "LIST",
                   "--case window: windows, e.g. 0,1,2,4 (0 = automatic); "
                   "default 1,2,4,... below the layer count"});
  return {
      .name = "plan",
      .summary =
          "show the memory plan of a spec (nothing is queued); --predict: "
          "its step time",
      .flags = std::move(flags),
      .parse = [](const ParsedArgs& args) -> absl::StatusOr<Action> {
        v1::PlanJobRequest request;
        ASSIGN_OR_RETURN(*request.mutable_spec(), BuildJobSpec(args));
        RETURN_IF_ERROR(SetHardware(args, request));
        request.set_predict(args.Has("predict") || args.Has("hardware") ||
                            args.Has("case"));
        const std::string which = args.Get("case").value_or("");
        if (args.Has("windows") && which != "window")
          return absl::InvalidArgumentError(
              "--windows: only with --case window");
        if (!which.empty() && which != "largest" && which != "throughput" &&
            which != "window") {
          return absl::InvalidArgumentError(absl::StrCat(
              "--case ", which, ": expected largest, throughput or window"));
        }
        ASSIGN_OR_RETURN(const std::vector<int> windows,
                         Windows(args, request.spec().model().layers()));
        return [request, which,
                windows](CommandContext& context) -> absl::StatusOr<int> {
          if (!which.empty()) {
            ASSIGN_OR_RETURN(const std::vector<CaseRow> rows,
                             RunCase(context, which, windows, request));
            if (context.output == OutputFormat::kJson) {
              *context.out << "[\n";
              for (size_t i = 0; i < rows.size(); ++i) {
                ASSIGN_OR_RETURN(const std::string json,
                                 MessageToJson(rows[i].plan, false));
                *context.out << "{\"case\": " << JsonQuote(rows[i].name)
                             << ", \"plan\": " << json << "}"
                             << (i + 1 < rows.size() ? ",\n" : "\n");
              }
              *context.out << "]\n";
            } else {
              PrintCase(which, rows, *context.out);
            }
            return 0;
          }
          ASSIGN_OR_RETURN(const v1::MemoryPlan plan,
                           context.client->PlanJob(request));
          RETURN_IF_ERROR(PrintResult(plan, context, [&](std::ostream& out) {
            PrintPlan(plan,
                      request.spec().model().architecture() == v1::LLAMA
                          ? "llama"
                          : "gpt",
                      out);
          }));
          return 0;
        };
      },
  };
}

}  // namespace stronghold::client
