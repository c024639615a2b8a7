// What the training tests share: a fresh directory per test, an observer
// that records every step, one training run to its end, and a bit-for-bit
// comparison of two runs.
#ifndef STRONGHOLD_TESTS_CORE_TRAINING_TEST_UTIL_H_
#define STRONGHOLD_TESTS_CORE_TRAINING_TEST_UTIL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/device/device.h"
#include "core/plan/planner.h"
#include "core/train/trainer.h"

namespace stronghold::core {

class Communicator;

// `model` as the llama architecture at the same width, depth and vocabulary
// (kGpt: `model` unchanged): grouped-query attention with heads/2 key/value
// heads (heads >= 2), an untied head, an intermediate size of 7h/4 (not a
// multiple of h, so a row mix-up shows). The parity tests run both.
ModelConfig WithArchitecture(ModelConfig model, Architecture architecture);

// $TEST_TMPDIR/<name> (or /tmp/<name>), emptied.
std::string TestDir(const std::string& name);

// Records each step's report; asks to stop with `stop_kind` once step
// `stop_after` (> 0) is done.
class StepRecorder : public TrainerObserver {
 public:
  void OnStep(const StepMetrics& r) override;
  void OnMessage(const std::string& m) override { messages.push_back(m); }
  void OnCheckpoint(const std::string& name) override {
    checkpoints.push_back(name);
  }
  StopRequest StopRequested() override { return stop; }
  void OnTrace(int64_t step, const std::string& json) override {
    traces[step] = json;
  }

  std::vector<int64_t> steps;
  std::vector<double> losses, norms, scales;  // scales: StepMetrics::loss_scale
  std::vector<bool> skipped;
  std::vector<std::string> messages, checkpoints;
  std::map<int64_t, std::string> traces;
  int64_t peak = 0;  // of the last step (the window may change after step 1)
  int window = 0;
  int64_t nvme_read_bytes = 0;                // summed over the steps
  std::vector<int64_t> h2d_bytes, d2h_bytes;  // each step's
  int64_t stop_after = 0;
  StopRequest stop_kind = StopRequest::kNone;
  StopRequest stop = StopRequest::kNone;
};

struct TrainedRun {
  StepRecorder recorder;
  std::vector<std::vector<float>> weights;  // fp32 masters at the end
  int64_t host_bytes = 0;  // host memory charged at the end (its ledger)
};

// The job's plan on `device` ("cpu": the host device; "cuda:N" plans
// RESIDENT as the engine with W = L, not as the host's reference step):
// `device_budget_bytes` (0 = the job's offload.gpu_memory_budget_bytes, else
// unlimited), host memory unlimited.
ExecutionPlan PlanFor(const JobConfig& config, int64_t device_budget_bytes = 0,
                      const std::string& device = "cpu");
// That plan with block layers 0..ssd_layers-1 on the NVMe tier (and
// 0..ssd_weight_layers-1's working copies or fp32 masters), as a short host
// budget would place them.
ExecutionPlan PlanWithSsd(const JobConfig& config, int ssd_layers,
                          int ssd_weight_layers = 0);

// Trains `config` to its end in TestDir(name) with two optimizer threads,
// tracing every step, as PlanFor(config, device_budget_bytes) says;
// `loss_scale` > 0 sets fp16's loss scale before step 1.
TrainedRun Train(const JobConfig& config, const std::string& name,
                 int64_t device_budget_bytes = 0, double loss_scale = 0);
// The same on `device` (not owned; tests/gpu passes a CUDA device), planned
// for it with no device budget.
TrainedRun TrainOn(Device* device, const JobConfig& config,
                   const std::string& name);

// Trains `config` to its end in TestDir(name) as `plan` says, on `device`
// (null: a host device of the plan's budget), with two optimizer threads,
// tracing every step; `loss_scale` > 0 sets fp16's loss scale before step 1.
// `comm` (not owned): one rank of a data-parallel job
// (tests/core/dist/data_parallel_util.h); its weights are its slices.
// `adjust`, if set, edits the trainer's options before it is created;
// `restore`, if not empty, is the checkpoint it resumes from.
TrainedRun TrainAsPlanned(
    const JobConfig& config, const ExecutionPlan& plan, Device* device,
    const std::string& name, double loss_scale, Communicator* comm = nullptr,
    const std::function<void(TrainerOptions*)>& adjust = nullptr,
    const std::string& restore = "");

// The largest relative difference of two runs' losses, step by step, and
// of their final fp32 masters' absolute difference (over the steps and
// buffers both have).
double MaxLossRelDiff(const TrainedRun& a, const TrainedRun& b);
double MaxWeightAbsDiff(const TrainedRun& a, const TrainedRun& b);

// Same losses and gradient norms at every step, same weight bits.
void ExpectBitIdentical(const TrainedRun& a, const TrainedRun& b,
                        const std::string& what);

}  // namespace stronghold::core

#endif  // STRONGHOLD_TESTS_CORE_TRAINING_TEST_UTIL_H_
