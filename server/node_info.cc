#include "server/node_info.h"

#include <unistd.h>

#include <cstdint>
#include <thread>

#include "core/train/trainer.h"
#include "server/version.h"

namespace stronghold::server {

namespace v1 = ::stronghold::v1;

namespace {

int64_t PhysicalMemoryBytes() {
  return static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
}

}  // namespace

core::NodeBudgets WithDefaultBudgets(core::NodeBudgets budgets) {
  const int64_t ram = PhysicalMemoryBytes();
  if (budgets.host_bytes == 0) budgets.host_bytes = ram;
  if (budgets.device_bytes == 0 && budgets.device == "cpu") {
    budgets.device_bytes = ram;
  }
  return budgets;
}

v1::Node NodeInfo(const core::NodeBudgets& budgets) {
  v1::Node node;
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  node.set_hostname(host);
  node.set_device(budgets.device);
  node.set_version(kVersion);
  node.set_torch_version(core::TorchVersion());
  node.set_cpu_threads(static_cast<int>(std::thread::hardware_concurrency()));
  const int64_t ram = PhysicalMemoryBytes();
  v1::Tier* device = node.add_tiers();
  device->set_name(core::kTierDevice);
  device->set_capacity_bytes(budgets.device == "cpu" ? ram : 0);
  device->set_budget_bytes(budgets.device_bytes);
  v1::Tier* host_tier = node.add_tiers();
  host_tier->set_name(core::kTierHost);
  host_tier->set_capacity_bytes(ram);
  host_tier->set_budget_bytes(budgets.host_bytes);
  return node;
}

}  // namespace stronghold::server
