// gpu_bench's rows and their predictions (core/tools/gpu_rows.h).
#include "core/tools/gpu_rows.h"

#include <cstdio>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/plan/auto_config.h"
#include "core/plan/planner.h"
#include "core/plan/prediction.h"

namespace stronghold::core {

std::vector<RowSpec> GpuBenchRows(
    const GpuRowsOptions& o, const JobConfig& c,
    const absl::StatusOr<HardwareProfile>& profile,
    const std::string& device_name) {
  const int64_t budget = o.budget_bytes;
  std::vector<RowSpec> rows;
  auto engine = [&](const std::string& name, const JobConfig& g,
                    OffloadMethod method, int window, int64_t b = 0) {
    JobConfig e = g;
    e.offload.method = method;
    e.offload.window = window;
    rows.push_back({name, e, false, b > 0 ? b : budget, ""});
  };
  // What the targets are judged on first (the cases' time box skips the
  // runs that do not start in time).
  rows.push_back({"RESIDENT (all on GPU)", c, true, budget, ""});
  engine("RESIDENT (engine, W=L)", c, OffloadMethod::kResident, 0);
  engine("STRONGHOLD (auto window)", c, OffloadMethod::kStronghold, 0);
  // The daemon's default: the speed options chosen by the schedule model
  // on this GPU's measured profile (core/plan/auto_config.h), against the
  // hand-picked rows below.
  auto automatic = [&](const std::string& name, const JobConfig& g) {
    JobConfig a = g;
    a.offload.method = OffloadMethod::kStronghold;
    a.offload.automatic = {true, true, true};
    const AutomaticChoice choice = ChooseAutomaticOptions(
        a, {.device = device_name, .device_bytes = budget}, profile);
    rows.push_back(
        {name, choice.config, false, budget,
         "(next row, the automatic options: " + choice.reason + ")"});
  };
  automatic("STRONGHOLD (automatic options)", c);
  if (!o.quick) {
    // Without clipping each layer's update overlaps the backward of the
    // layers before it (docs/engine.md, "Global-norm clipping, honestly"),
    // against the all-GPU baseline without clipping too.
    JobConfig n = c;
    n.training.clip_norm = 0;
    rows.push_back({"RESIDENT (all GPU), no clip", n, true, budget, ""});
    engine("STRONGHOLD (auto), no clip", n, OffloadMethod::kStronghold, 0);
    // Clipping 1.0 with speculative updates: exact, and as fast as no
    // clipping on steps that turn out unclipped (the row says how many).
    JobConfig h = c;
    h.offload.speculative_updates = true;
    engine("STRONGHOLD (auto), speculative", h, OffloadMethod::kStronghold, 0);
    // The embedding's optimizer on the GPU: off the gap between steps.
    h.offload.speculative_updates = false;
    h.offload.device_embedding_optimizer = true;
    engine("STRONGHOLD (auto), emb. on GPU", h, OffloadMethod::kStronghold, 0);
    h.offload.speculative_updates = true;
    engine("STRONGHOLD, emb. on GPU + spec.", h, OffloadMethod::kStronghold, 0);
    // Layers 0..3 stay on the GPU too: the next forward starts while the CPU
    // updates the others, and the CPU updates 4 fewer layers.
    h.offload.speculative_updates = false;
    h.offload.device_resident_layers = 4;
    engine("STRONGHOLD, 4 layers+emb. on GPU", h, OffloadMethod::kStronghold,
           0);
  }
  for (int w : o.windows) {
    if (w >= c.model.layers) continue;
    engine("STRONGHOLD W=" + std::to_string(w), c, OffloadMethod::kStronghold,
           w);
  }
  if (!o.quick) {
    engine("L2L", c, OffloadMethod::kL2L, 0);
    JobConfig small = c;
    small.offload.method = OffloadMethod::kStronghold;
    const int64_t b = WindowedArenaBytes(small, 3) + WorkingBytes(small);
    engine("STRONGHOLD, budget for W=3", c, OffloadMethod::kStronghold, 0, b);
    rows.back().note = absl::StrFormat(
        "(next row: GPU budget %.2f GiB, the model's fp32 weights alone are "
        "%.2f GiB)",
        b / 1073741824.0, c.model.parameters() * 4 / 1073741824.0);
    // Mixed precision: bf16 weights, gradients and compute on the GPU.
    JobConfig bf = c;
    bf.training.precision = Precision::kBf16;
    rows.push_back({"RESIDENT bf16 (all on GPU, AMP)", bf, true, budget, ""});
    engine("STRONGHOLD bf16 (auto window)", bf, OffloadMethod::kStronghold, 0);
    automatic("STRONGHOLD bf16 (automatic options)", bf);
  }
  return rows;
}

absl::StatusOr<StepPrediction> PredictRow(const RowSpec& row,
                                          const std::string& device_name,
                                          const HardwareProfile& profile) {
  JobConfig c = row.config;
  if (row.all_on_gpu) c.offload.method = OffloadMethod::kResident;
  const ExecutionPlan plan =
      PlanExecution(c, {.device = row.all_on_gpu ? "cpu" : device_name,
                        .device_bytes = row.budget_bytes});
  if (!plan.fits) return absl::ResourceExhaustedError(plan.reason);
  return PredictStep(c, PredictSettledPlan(c, plan, profile), profile);
}

Predictions PredictRows(const std::vector<RowSpec>& rows,
                        const std::string& device_name,
                        const std::vector<HardwareProfile>& profiles) {
  Predictions out;
  for (const HardwareProfile& p : profiles) out.profiles.push_back(p.name);
  std::printf(
      "\npredictions (core/plan/schedule_model.h), made before any row runs; "
      "s/step and bottleneck per profile:\n%-36s",
      "row");
  for (const std::string& name : out.profiles)
    std::printf(" %28s", name.c_str());
  std::printf("\n");
  for (const RowSpec& row : rows) {
    std::printf("%-36s", row.name.c_str());
    out.steps.emplace_back();
    for (const HardwareProfile& p : profiles) {
      absl::StatusOr<StepPrediction> s = PredictRow(row, device_name, p);
      const std::string cell =
          s.ok()
              ? absl::StrFormat("%.4f %s", s->step_s,
                                BottleneckName(s->bottleneck))
              : "- (" + std::string(s.status().message()).substr(0, 22) + ")";
      std::printf(" %28s", cell.c_str());
      out.steps.back().push_back(std::move(s));
    }
    std::printf("\n");
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t p = 0; p < profiles.size(); ++p) {
      const absl::StatusOr<StepPrediction>& s = out.steps[r][p];
      if (s.ok()) {
        std::printf("csv,predicted,\"%s\",%s,%.6f,%s\n", rows[r].name.c_str(),
                    out.profiles[p].c_str(), s->step_s,
                    BottleneckName(s->bottleneck));
      }
    }
  }
  std::fflush(stdout);
  return out;
}

void PrintComparison(
    const std::vector<RowSpec>& rows, const Predictions& predicted,
    const std::function<double(const std::string&)>& samples_per_s) {
  std::printf("\npredicted / measured (s/step; goal within 15%%):\n%-36s %9s",
              "row", "measured");
  for (const std::string& name : predicted.profiles)
    std::printf(" %14s %6s", name.c_str(), "ratio");
  std::printf("\n");
  for (size_t r = 0; r < rows.size(); ++r) {
    const double sps = samples_per_s(rows[r].name);
    if (sps <= 0) continue;
    const double measured = rows[r].config.training.batch / sps;
    std::printf("%-36s %9.4f", rows[r].name.c_str(), measured);
    for (size_t p = 0; p < predicted.profiles.size(); ++p) {
      const absl::StatusOr<StepPrediction>& s = predicted.steps[r][p];
      if (s.ok()) {
        std::printf(" %14.4f %6.3f", s->step_s, s->step_s / measured);
      } else {
        std::printf(" %14s %6s", "-", "-");
      }
    }
    std::printf("\n");
  }
  for (const char* precision : {"", "bf16 "}) {
    const std::string automatic =
        absl::StrCat("STRONGHOLD ", precision, "(automatic options)");
    const double a = samples_per_s(automatic);
    if (a <= 0) continue;
    std::string best;
    double best_sps = 0;
    for (const RowSpec& row : rows) {
      const bool same_precision = (row.config.training.precision ==
                                   Precision::kBf16) == (*precision != '\0');
      if (row.all_on_gpu || row.name == automatic || !same_precision ||
          row.config.training.clip_norm !=
              rows.front().config.training.clip_norm ||
          row.name.find("budget for") != std::string::npos) {
        continue;
      }
      if (samples_per_s(row.name) > best_sps) {
        best_sps = samples_per_s(row.name);
        best = row.name;
      }
    }
    if (best_sps > 0) {
      std::printf(
          "%s: %.4f samples/s against the best hand-picked row with the same "
          "budget, precision and clipping (%s) %.4f: %.3f\n",
          automatic.c_str(), a, best.c_str(), best_sps, a / best_sps);
    }
  }
}

}  // namespace stronghold::core
