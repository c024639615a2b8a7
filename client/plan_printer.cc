#include "client/plan_printer.h"

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "client/human_format.h"
#include "client/table.h"

namespace stronghold::client {
namespace {

std::string BytesText(int64_t bytes) {
  return absl::StrCat(HumanBytes(bytes), " (", bytes, " bytes)");
}

// A budget of 0 would mean "unknown" here; say so rather than print 0 B.
std::string BudgetText(int64_t bytes) {
  return bytes > 0 ? BytesText(bytes) : "-";
}

std::string CountText(int64_t count) {
  return absl::StrCat(HumanCount(count), " (", count, ")");
}

const char* MethodText(v1::OffloadMethod m) {
  switch (m) {
    case v1::L2L:
      return "L2L";
    case v1::STRONGHOLD:
      return "STRONGHOLD";
    default:
      return "RESIDENT";
  }
}

}  // namespace

std::string RunsAsText(const v1::MemoryPlan& plan) {
  if (plan.reference())
    return "the reference: plain autograd over the whole model on the host "
           "device";
  std::string text = absl::StrCat(MethodText(plan.method()), " engine, window ",
                                  plan.window());
  if (plan.automatic_window()) {
    absl::StrAppend(&text,
                    " (automatic: the largest that fits; the smallest that "
                    "hides the copies is chosen after profiling step 1)");
  }
  absl::StrAppend(&text, ", ", plan.slots(), " device slot",
                  plan.slots() == 1 ? "" : "s");
  if (plan.host_checkpoints())
    absl::StrAppend(&text, ", activation checkpoints on the host");
  if (plan.device_resident_layers() > 0) {
    absl::StrAppend(&text, ", layers 0..", plan.device_resident_layers() - 1,
                    " resident on the device");
  }
  if (plan.device_embedding_optimizer())
    absl::StrAppend(&text, ", embedding updated on the device");
  if (plan.speculative_updates())
    absl::StrAppend(&text, ", speculative updates");
  return text;
}

void PrintPlan(const v1::MemoryPlan& plan, absl::string_view architecture,
               std::ostream& out) {
  // What H2D sends may be on the tier too: fp32 masters or 16-bit working
  // copies.
  const bool fp32_masters =
      std::any_of(plan.buffers().begin(), plan.buffers().end(),
                  [](const auto& b) { return b.name() == "ssd.master.fp32"; });
  KeyValues rows = {
      {"device", plan.device().empty() ? "-" : plan.device()},
      {"architecture", std::string(architecture)},
      {"parameters", CountText(plan.parameters())},
      {"parameters per layer", CountText(plan.parameters_per_layer())},
      {"runs as", RunsAsText(plan)},
      {"ranks",
       plan.world_size() > 1
           ? absl::StrCat(plan.world_size(),
                          " (the tables are one rank's: it holds the "
                          "optimizer state of ",
                          CountText(plan.rank_parameters()), " parameters)")
           : std::string("1")},
      {"D2H per step", BytesText(plan.d2h_bytes_per_step())},
      {"kept activations",
       absl::StrCat(plan.kept_activation_layers(),
                    " layers (the others are recomputed in backward)")},
      {"on the NVMe tier",
       absl::StrCat(
           plan.ssd_layers(), " layers' optimizer state, ",
           plan.ssd_weight_layers() == 0
               ? std::string("none of what the device reads")
               : absl::StrCat(plan.ssd_weight_layers(), " layers' ",
                              fp32_masters ? "fp32 masters" : "working copies",
                              " (sent to the device, read ahead)"),
           plan.ssd_grads_transient()
               ? "; their gradients one layer at a time (consumed as they "
                 "land)"
               : "")},
      {"model FLOPs per step", HumanCount(plan.model_flops_per_step())},
      {"device total", BytesText(plan.device_bytes())},
      {"pinned total", BytesText(plan.pinned_bytes())},
      {"host total", BytesText(plan.host_bytes())},
      {"ssd total", BytesText(plan.ssd_bytes())},
      {"device budget", BudgetText(plan.device_budget_bytes())},
      {"host budget", BudgetText(plan.host_budget_bytes())},
      {"fits", plan.fits() ? "yes" : "no"},
      {"largest trainable layers",
       absl::StrCat(plan.max_layers(), " (these budgets, all else as given",
                    plan.world_size() > 1
                        ? absl::StrCat(", on ", plan.world_size(), " ranks")
                        : std::string(),
                    ")")},
  };
  if (!plan.automatic_choice().empty()) {
    // The daemon's sentence names itself for the job's events; the row's
    // label already does.
    rows.push_back({"automatic options",
                    std::string(absl::StripPrefix(plan.automatic_choice(),
                                                  "automatic options: "))});
  }
  if (!plan.reason().empty()) rows.push_back({"reason", plan.reason()});
  PrintKeyValues(rows, out);

  if (!plan.buffers().empty()) {
    out << "\n";
    PrintBuffers(plan, out);
  }
  if (plan.has_prediction()) {
    out << "\n";
    PrintPrediction(plan.prediction(), out);
  }
}

void PrintBuffers(const v1::MemoryPlan& plan, std::ostream& out) {
  Table table({"NAME", "TIER", "BYTES", "SHAPE"},
              /*right_aligned_columns=*/{2});
  for (const v1::PlannedBuffer& buffer : plan.buffers()) {
    table.AddRow({buffer.name(), buffer.tier(), HumanBytes(buffer.bytes()),
                  buffer.shape()});
  }
  table.Print(out);
}

void PrintPrediction(const v1::StepPrediction& prediction, std::ostream& out) {
  out << "predicted on hardware profile " << prediction.hardware_profile()
      << (prediction.measured_profile()
              ? " (measured on this node), with this node's budgets"
              : absl::StrCat(", planned for its machine: device ",
                             HumanBytes(prediction.device_budget_bytes()),
                             ", host ",
                             HumanBytes(prediction.host_budget_bytes())))
      << "\n";
  if (!prediction.fits()) {
    out << "does not fit there: " << prediction.reason() << "\n";
  }
  if (prediction.has_predicted()) {
    const v1::PredictedStep& p = prediction.predicted();
    const v1::ResourceSeconds& f = p.floors();
    PrintKeyValues(
        {
            {"predicted step",
             absl::StrFormat("%.4f s (window %d, %d layers keep their "
                             "activations)",
                             p.predicted_step_s(), prediction.window(),
                             prediction.kept_activation_layers())},
            {"throughput",
             absl::StrFormat("%.4f samples/s, %.0f tokens/s", p.samples_per_s(),
                             p.tokens_per_s())},
            {"MFU", absl::StrFormat("%.1f%% (%.2f model TFLOPS)", 100 * p.mfu(),
                                    p.model_tflops())},
            {"bottleneck", p.bottleneck()},
            {"floors",
             absl::StrFormat("compute %.4f s, PCIe %.4f s, CPU optimizer %.4f "
                             "s, NVMe %.4f s (largest %.4f s)",
                             f.compute_s(), f.pcie_s(), f.cpu_optimizer_s(),
                             f.nvme_s(), p.largest_floor_s())},
            {"compute waits for",
             absl::StrFormat("PCIe %.4f s, CPU optimizer %.4f s, NVMe %.4f s",
                             p.critical().pcie_s(),
                             p.critical().cpu_optimizer_s(),
                             p.critical().nvme_s())},
            {"per layer", absl::StrFormat("forward %.2f ms, backward %.2f ms",
                                          1e3 * p.layer_forward_s(),
                                          1e3 * p.layer_backward_s())},
        },
        out);
  }
  if (prediction.alternatives().empty()) return;
  out << "\n";
  Table table({"ALTERNATIVE", "WINDOW", "KEPT", "STEP S", "SAMPLES/S", "MFU",
               "BOTTLENECK"},
              /*right_aligned_columns=*/{1, 2, 3, 4, 5});
  for (const v1::PlanAlternative& a : prediction.alternatives()) {
    const bool ok = a.fits() && a.has_predicted();
    const v1::PredictedStep& p = a.predicted();
    table.AddRow(
        {a.name(), ok ? absl::StrCat(a.window()) : "-",
         ok ? absl::StrCat(a.kept_activation_layers()) : "-",
         ok ? absl::StrFormat("%.4f", p.predicted_step_s()) : "does not fit",
         ok ? absl::StrFormat("%.4f", p.samples_per_s()) : "-",
         ok ? absl::StrFormat("%.1f%%", 100 * p.mfu()) : "-",
         ok ? p.bottleneck() : "-"});
  }
  table.Print(out);
}

void PrintNode(const v1::Node& node, std::ostream& out) {
  PrintKeyValues(
      {
          {"hostname", node.hostname()},
          {"device", node.device()},
          {"version", node.version()},
          {"torch version", node.torch_version()},
          {"cpu threads", absl::StrCat(node.cpu_threads())},
          {"queued jobs", absl::StrCat(node.queued_jobs())},
          {"running job",
           node.running_job().empty() ? "-" : node.running_job()},
      },
      out);
  if (node.has_profile()) {
    const v1::NodeProfile& p = node.profile();
    out << "\n";
    if (!p.error().empty()) {
      PrintKeyValues({{"hardware profile", p.error()}}, out);
    } else {
      PrintKeyValues(
          {
              {"hardware profile",
               p.from_cache() ? "measured earlier (state directory cache)"
                              : "measured at start-up"},
              {"copies",
               absl::StrFormat("H2D %.2f GB/s, D2H %.2f GB/s, latency %.1f us",
                               p.h2d_gbps(), p.d2h_gbps(),
                               1e6 * p.copy_latency_s())},
              {"CPU optimizer",
               absl::StrFormat("AdamW %.1f GB/s, accumulate %.1f GB/s at %d "
                               "threads, %.1f GB/s on one",
                               p.cpu_adamw_gbps(), p.cpu_copy_gbps(),
                               p.cpu_threads(), p.cpu_single_thread_gbps())},
              {"NVMe tier",
               absl::StartsWith(p.nvme_source(), "measured")
                   ? absl::StrFormat("read %.2f GB/s, write %.2f GB/s (%s)",
                                     p.nvme_read_gbps(), p.nvme_write_gbps(),
                                     p.nvme_source())
                   : p.nvme_source()},
              {"compute probe",
               absl::StrFormat("%.4f TFLOPS fp32", p.fp32_probe_tflops())},
              {"layer shapes measured", absl::StrCat(p.layer_shapes())},
          },
          out);
    }
  }
  if (node.tiers().empty()) return;
  out << "\n";
  Table table({"TIER", "CAPACITY", "BUDGET", "USED"},
              /*right_aligned_columns=*/{1, 2, 3});
  for (const v1::Tier& tier : node.tiers()) {
    table.AddRow({tier.name(), HumanBytes(tier.capacity_bytes()),
                  HumanBytes(tier.budget_bytes()),
                  HumanBytes(tier.used_bytes())});
  }
  table.Print(out);
}

}  // namespace stronghold::client
