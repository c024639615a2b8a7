// Whether a plan fits its budgets (core/plan/fit.h).
#include "core/plan/fit.h"

#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/plan/memory_table.h"
#include "core/plan/ssd_placement.h"
#include "core/plan/window.h"

namespace stronghold::core {
namespace {

std::string Human(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return absl::StrFormat("%.1f %s", v, units[u]);
}

// What the ssd tier holds of the spilled layers, for the plan's reasons.
std::string SpilledStateName(const ExecutionPlan& plan, Precision precision) {
  if (!SsdHoldsMasters(precision)) {
    return plan.ssd_weight_layers == 0 ? "Adam moments"
                                       : "Adam moments and fp32 masters";
  }
  if (plan.ssd_weight_layers == 0) return "fp32 masters and Adam moments";
  return absl::StrCat("fp32 masters, Adam moments and ",
                      PrecisionName(precision), " working copies");
}

// The device and host budgets; the reason carries the numbers.
void FitMemory(const JobConfig& c, ExecutionPlan& plan, bool device_is_host) {
  plan.fits = true;
  if (plan.budget_device_bytes > 0 &&
      plan.bytes_device > plan.budget_device_bytes) {
    plan.fits = false;
    int64_t smallest = plan.bytes_device;
    if (c.offload.method != OffloadMethod::kResident)
      smallest = SmallestDeviceBudget(c);
    plan.reason = absl::StrCat(
        "device memory: needs ", Human(plan.bytes_device), " (",
        plan.bytes_device, " bytes), budget ", Human(plan.budget_device_bytes),
        " (", plan.budget_device_bytes,
        " bytes); the smallest budget that works is ", smallest, " bytes (",
        Human(smallest), ")");
    return;
  }
  // On the CPU device the device arena is host memory too.
  const int64_t host_need = HostNeedBytes(plan, device_is_host);
  if (plan.budget_host_bytes > 0 && host_need > plan.budget_host_bytes) {
    plan.fits = false;
    plan.reason =
        absl::StrCat("host memory: needs ", Human(host_need), " (", host_need,
                     " bytes), budget ", Human(plan.budget_host_bytes), " (",
                     plan.budget_host_bytes, " bytes)");
  }
}

}  // namespace

void DecideFit(const JobConfig& c, const NodeBudgets& node,
               ExecutionPlan& plan) {
  FitMemory(c, plan, node.device_is_host());
  if (plan.reference) return;  // the reference plan has no NVMe tier
  if (plan.fits && node.ssd_bytes > 0 && plan.bytes_ssd > node.ssd_bytes) {
    plan.fits = false;
    plan.reason = absl::StrCat(
        "ssd: needs ", Human(plan.bytes_ssd), " (", plan.bytes_ssd,
        " bytes) for the ", SpilledStateName(plan, c.training.precision),
        " of ", plan.ssd_layers, " layers, budget ", Human(node.ssd_bytes),
        " (", node.ssd_bytes, " bytes)");
  } else if (!plan.fits && plan.ssd_layers == c.model.layers &&
             absl::StartsWith(plan.reason, "host memory")) {
    absl::StrAppend(&plan.reason, ", even with the ",
                    SpilledStateName(plan, c.training.precision), " of all ",
                    c.model.layers, " layers on the NVMe tier");
  }
}

absl::Status CheckFits(const ExecutionPlan& plan) {
  if (plan.fits) return absl::OkStatus();
  return absl::ResourceExhaustedError(plan.reason);
}

}  // namespace stronghold::core
