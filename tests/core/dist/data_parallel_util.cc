#include "tests/core/dist/data_parallel_util.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/core/dist/thread_ranks.h"

namespace stronghold::core {

TrainedRun TrainRanks(const JobConfig& config, const ExecutionPlan& plan,
                      const std::string& name, int world, bool ordered,
                      std::vector<StepRecorder>* ranks,
                      const std::vector<double>& loss_scales,
                      const std::function<void(int, TrainerOptions*)>& adjust,
                      std::vector<int64_t>* host_bytes,
                      const std::string& restore) {
  // The test-only ordered mode stages every rank's piece of a slice (N
  // padded pieces) where a rank plans one gradient: room for it.
  ExecutionPlan ranks_plan = plan;
  if (ordered) {
    for (PlannedBuffer& b : ranks_plan.buffers) {
      if (b.name == "host.staging.gradients") b.bytes *= world;
    }
  }
  std::vector<TrainedRun> runs(world);
  testing::RunThreadRanks({.world_size = world, .ordered = ordered},
                          [&](int rank, Communicator& comm) {
                            const double scale =
                                loss_scales.empty() ? 0 : loss_scales[rank];
                            runs[rank] = TrainAsPlanned(
                                config, ranks_plan, /*device=*/nullptr,
                                absl::StrCat(name, "_rank", rank), scale, &comm,
                                [&](TrainerOptions* o) {
                                  if (adjust) adjust(rank, o);
                                },
                                restore);
                          });
  TrainedRun job;
  job.recorder = runs[0].recorder;
  if (ranks != nullptr) {
    ranks->clear();
    for (const TrainedRun& r : runs) ranks->push_back(r.recorder);
  }
  if (host_bytes != nullptr) {
    host_bytes->clear();
    for (const TrainedRun& r : runs) host_bytes->push_back(r.host_bytes);
  }
  for (const TrainedRun& r : runs) {
    if (r.weights.size() != runs[0].weights.size() || r.weights.empty()) {
      ADD_FAILURE() << name << ": a rank has no weights";
      return job;
    }
  }
  // Each rank holds its slice of each buffer; in rank order they are the
  // buffer.
  job.weights.resize(runs[0].weights.size());
  for (size_t b = 0; b < job.weights.size(); ++b) {
    for (const TrainedRun& r : runs) {
      job.weights[b].insert(job.weights[b].end(), r.weights[b].begin(),
                            r.weights[b].end());
    }
  }
  return job;
}

}  // namespace stronghold::core
