// A job's failures end the job, never the process: a device out of memory
// (RESOURCE_EXHAUSTED naming the buffer), a failed copy (the device's
// sticky error), a device lost for good (later jobs refused), and
// exceptions of every kind thrown inside a step, on the engine's thread or
// the CPU worker's. After a recoverable failure the same device trains the
// next job exactly as a fresh one does. Runs on the host device through
// FaultInjectingDevice, which fails the way CudaDevice does.
#include <c10/util/Exception.h>

#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "core/train/trainer.h"
#include "gtest/gtest.h"
#include "tests/core/fault_injecting_device.h"
#include "tests/core/training_test_util.h"

namespace stronghold::core {
namespace {

constexpr int64_t kBudget = int64_t{1} << 30;
constexpr int kSteps = 3;

JobConfig Small() {
  JobConfig c;
  c.model = {
      .layers = 4, .hidden = 64, .heads = 4, .seq_len = 32, .vocab = 256};
  c.training.steps = kSteps;
  c.training.batch = 4;
  c.training.micro_batch = 2;
  c.training.warmup_steps = 1;
  c.offload.method = OffloadMethod::kStronghold;
  c.offload.window = 2;
  return c;
}

struct Outcome {
  absl::Status status;
  TrainedRun run;
};

// A trainer for Small() on `device`, trained to its end.
Outcome TrainOn(Device* device, const std::string& name) {
  Outcome out;
  auto trainer = Trainer::Create(
      Small(), PlanFor(Small()),
      {.job_dir = TestDir(name), .device = device, .optimizer_threads = 2});
  if (!trainer.ok()) {
    out.status = trainer.status();
    return out;
  }
  out.status = (*trainer)->Run(&out.run.recorder);
  if (!out.status.ok()) return out;
  auto weights = (*trainer)->Weights();
  out.status = weights.status();
  if (weights.ok()) out.run.weights = *std::move(weights);
  return out;
}

bool Contains(const absl::Status& s, absl::string_view text) {
  return s.message().find(text) != absl::string_view::npos;
}

// The next job on `device` trains exactly as one on a fresh device.
void ExpectTrainsAsFresh(FaultInjectingDevice* device,
                         const std::string& name) {
  const Outcome next = TrainOn(device, name + "_next");
  ASSERT_TRUE(next.status.ok()) << next.status;
  FaultInjectingDevice fresh(kBudget);
  const Outcome clean = TrainOn(&fresh, name + "_clean");
  ASSERT_TRUE(clean.status.ok()) << clean.status;
  ASSERT_EQ(next.run.recorder.losses.size(), static_cast<size_t>(kSteps));
  ExpectBitIdentical(next.run, clean.run, name);
}

TEST(DeviceFaultTest,
     OutOfMemoryFailsTheJobNamingTheBufferAndTheNextJobTrains) {
  FaultInjectingDevice device(kBudget);
  device.FailNthAllocate(3);
  const Outcome failed = TrainOn(&device, "oom");
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kResourceExhausted)
      << failed.status;
  ASSERT_FALSE(device.failed_allocation().empty());
  EXPECT_TRUE(Contains(failed.status, device.failed_allocation()))
      << failed.status;
  EXPECT_TRUE(Contains(failed.status, "out of memory")) << failed.status;
  EXPECT_EQ(device.used_bytes(), 0)
      << "the failed job's device memory was not freed";
  ExpectTrainsAsFresh(&device, "oom");
}

TEST(DeviceFaultTest,
     AFailedCopyFailsTheJobWithTheDeviceErrorAndTheNextJobTrains) {
  FaultInjectingDevice counter(kBudget);
  ASSERT_TRUE(TrainOn(&counter, "copy_count").status.ok());
  const int64_t per_step = counter.copies_seen() / kSteps;
  ASSERT_GT(per_step, 4);

  FaultInjectingDevice device(kBudget);
  device.FailNthCopy(per_step + per_step / 2, /*lost=*/false);  // in step 2
  const Outcome failed = TrainOn(&device, "copy");
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kInternal) << failed.status;
  EXPECT_TRUE(Contains(failed.status, "failed (injected)")) << failed.status;
  EXPECT_LT(failed.run.recorder.losses.size(), static_cast<size_t>(kSteps))
      << "the step that met the error was reported";
  EXPECT_TRUE(failed.run.recorder.checkpoints.empty())
      << "a checkpoint after a device error";
  ExpectTrainsAsFresh(&device, "copy");
}

TEST(DeviceFaultTest, ALostDeviceRefusesLaterJobsAndAFreshOneTrains) {
  FaultInjectingDevice device(kBudget);
  device.FailNthCopy(5, /*lost=*/true);
  const Outcome failed = TrainOn(&device, "lost");
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kInternal) << failed.status;
  const Outcome later = TrainOn(&device, "lost_later");
  EXPECT_EQ(later.status.code(), absl::StatusCode::kFailedPrecondition)
      << later.status;
  EXPECT_TRUE(Contains(later.status, "restart")) << later.status;
  FaultInjectingDevice replacement(kBudget);
  ExpectTrainsAsFresh(&replacement, "lost_replaced");
}

struct ThrowCase {
  std::string name;
  std::exception_ptr (*make)();
  absl::StatusCode code;
  std::string message;  // part of the status message
};

std::exception_ptr Capture(void (*thrower)()) {
  try {
    thrower();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

class ThrowInStepTest : public ::testing::TestWithParam<ThrowCase> {};

TEST_P(ThrowInStepTest, BecomesTheJobsStatusAndTheNextJobTrains) {
  const ThrowCase& c = GetParam();
  FaultInjectingDevice device(kBudget);
  device.ThrowOnNthCopy(4, c.make());  // step 1, on the engine's thread
  auto trainer = Trainer::Create(Small(), PlanFor(Small()),
                                 {.job_dir = TestDir("throw_" + c.name),
                                  .device = &device,
                                  .optimizer_threads = 2});
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  StepRecorder recorder;
  const absl::Status s = (*trainer)->Run(&recorder);
  EXPECT_EQ(s.code(), c.code) << s;
  EXPECT_TRUE(Contains(s, "step 1: " + c.message)) << s;
  EXPECT_TRUE(recorder.losses.empty());
  // The step stopped half way: the engine refuses to go on from there.
  const absl::Status again = (*trainer)->Run(&recorder);
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_TRUE(Contains(again, "cannot step after an exception")) << again;
  trainer->reset();
  ExpectTrainsAsFresh(&device, "throw_" + c.name);
}

INSTANTIATE_TEST_SUITE_P(
    Exceptions, ThrowInStepTest,
    ::testing::Values(
        ThrowCase{"bad_alloc",
                  [] { return std::make_exception_ptr(std::bad_alloc()); },
                  absl::StatusCode::kResourceExhausted, "out of host memory"},
        ThrowCase{"std_exception",
                  [] {
                    return std::make_exception_ptr(
                        std::runtime_error("disk on fire"));
                  },
                  absl::StatusCode::kInternal, "disk on fire"},
        ThrowCase{"c10_error",
                  [] {
                    return Capture(
                        [] { TORCH_CHECK(false, "shapes do not match"); });
                  },
                  absl::StatusCode::kInternal, "LibTorch: shapes do not match"},
        ThrowCase{"c10_out_of_memory",
                  [] {
                    return Capture([] {
                      TORCH_CHECK_WITH(OutOfMemoryError, false,
                                       "CUDA out of memory");
                    });
                  },
                  absl::StatusCode::kResourceExhausted,
                  "out of memory in LibTorch: CUDA out of memory"},
        ThrowCase{"not_an_exception", [] { return std::make_exception_ptr(7); },
                  absl::StatusCode::kInternal, "unknown exception"}),
    [](const ::testing::TestParamInfo<ThrowCase>& info) {
      return info.param.name;
    });

TEST(DeviceFaultTest, AnExceptionOnTheCpuWorkerFailsTheJob) {
  FaultInjectingDevice device(kBudget);
  device.ThrowOnNthWorkerWait(
      2, std::make_exception_ptr(std::runtime_error("worker boom")));
  const Outcome failed = TrainOn(&device, "worker_throw");
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kInternal) << failed.status;
  EXPECT_TRUE(Contains(failed.status, "gradient and update: worker boom"))
      << failed.status;
  ExpectTrainsAsFresh(&device, "worker_throw");
}

}  // namespace
}  // namespace stronghold::core
