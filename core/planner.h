// The memory planner: a pure function from a job's configuration and the
// node's budgets to every buffer the job will allocate, with its tier and
// bytes. Jobs that do not fit are refused with these numbers before anything
// is allocated; `strongholdctl plan` prints the same table.
#ifndef STRONGHOLD_CORE_PLANNER_H_
#define STRONGHOLD_CORE_PLANNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/job_config.h"

namespace stronghold::core {

inline constexpr char kTierDevice[] = "device";
inline constexpr char kTierPinned[] = "pinned";
inline constexpr char kTierHost[] = "host";
inline constexpr char kTierSsd[] = "ssd";

struct PlannedBuffer {
  std::string name;   // e.g. "weights.fp32"
  std::string tier;   // kTier*
  int64_t bytes = 0;
  std::string shape;  // e.g. "[2 layers] x 49,408 fp32"
};

struct NodeBudgets {
  std::string device = "cpu";     // "cpu" or "cuda:N"
  int64_t device_bytes = 0;       // compute-device memory budget
  int64_t host_bytes = 0;         // host RAM budget
};

struct MemoryPlan {
  int64_t parameters = 0;
  int64_t parameters_per_layer = 0;
  int64_t bytes_device = 0;
  int64_t bytes_pinned = 0;
  int64_t bytes_host = 0;
  int64_t bytes_ssd = 0;
  int64_t budget_device_bytes = 0;
  int64_t budget_host_bytes = 0;
  bool fits = false;
  std::string reason;  // why it does not fit, with the numbers
  int window = 0;
  std::string device;
  double model_flops_per_step = 0.0;
  std::vector<PlannedBuffer> buffers;
};

// The job's budgets override the node's where set (and may only lower them).
MemoryPlan PlanMemory(const JobConfig& config, const NodeBudgets& node);

// Device slots the windowed engine allocates for `window` (L2L: one).
int WindowSlots(const JobConfig& config, int window);
// Device bytes the windowed engine allocates (its arena): slots (weights and
// gradient of one layer each), embedding and final norm (weights and
// gradient), activation checkpoints at the L+1 layer boundaries.
int64_t WindowedArenaBytes(const JobConfig& config, int window);
// Compute working memory outside the arena: one layer's forward+backward
// working set and the logits of one micro-batch.
int64_t WorkingBytes(const JobConfig& config);
// The largest window whose arena plus working memory fits `device_budget`
// (capped at the number of layers); 0 if not even a window of 1 fits.
int MaxWindow(const JobConfig& config, int64_t device_budget);

// Bytes of activations one micro-batch keeps per layer boundary and while
// one layer runs (forward + backward working set), fp32.
int64_t BoundaryActivationBytes(const JobConfig& config);
int64_t LayerWorkingBytes(const JobConfig& config);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLANNER_H_
