// A job spec as the daemon receives it (stronghold.v1.JobSpec wire bytes)
// through what SubmitJob and PlanJob do before anything is allocated:
// server/proto_convert's ToJobConfig, core::ValidateJobConfig, and for a
// valid job core::PlanExecution and core::MaxTrainableLayers on a node like the
// daemon's. Besides the sanitizers it checks the plan's promises: no buffer
// or tier has negative bytes, and a plan that fits keeps within its budgets.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/plan/job_config.h"
#include "core/plan/planner.h"
#include "google/protobuf/stubs/logging.h"
#include "server/proto_convert.h"
#include "stronghold/v1/stronghold.pb.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  // Not one line per input about invalid UTF-8 in a string field.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stronghold;
  v1::JobSpec spec;
  if (!spec.ParseFromArray(data, static_cast<int>(size))) return 0;
  const core::JobConfig config = server::ToJobConfig(spec);
  const absl::Status valid = core::ValidateJobConfig(config);
  if (!valid.ok()) {
    FUZZ_CHECK(valid.code() == absl::StatusCode::kInvalidArgument,
               valid.ToString());
    return 0;
  }
  core::NodeBudgets
      node;  // a CPU node with 16 GiB for the device and 64 GiB of host memory
  node.device_bytes = int64_t{16} << 30;
  node.host_bytes = int64_t{64} << 30;
  const core::ExecutionPlan plan = core::PlanExecution(config, node);
  for (const core::PlannedBuffer& b : plan.buffers)
    FUZZ_CHECK(b.bytes >= 0, b.name, " ", b.bytes);
  FUZZ_CHECK(plan.bytes_device >= 0 && plan.bytes_pinned >= 0 &&
                 plan.bytes_host >= 0 && plan.bytes_ssd >= 0,
             "negative tier bytes");
  if (plan.fits && plan.budget_device_bytes > 0) {  // 0 = no device budget
    FUZZ_CHECK(plan.bytes_device <= plan.budget_device_bytes, plan.bytes_device,
               " > ", plan.budget_device_bytes);
  }
  const int max_layers = core::MaxTrainableLayers(config, node);
  FUZZ_CHECK(max_layers >= 0 && max_layers <= core::kMaxLayers, max_layers);
  return 0;
}
