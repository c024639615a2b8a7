// Exact resume: 20 steps straight and 10 steps + checkpoint + a new Trainer
// (a restarted daemon) + Restore + 10 steps give bit-identical losses,
// weights and checkpoint files, with RESIDENT, STRONGHOLD and STRONGHOLD
// with the Adam moments spilled to the NVMe tier (fp32, host device), and in
// bf16 with the fp32 masters spilled too. Also: cancel with a checkpoint,
// refusal to train after a failed
// restore, and the exported safetensors read back by an independent reader
// (tests/core/safetensors_check.py).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/checkpoint/checkpoint.h"
#include "core/train/trainer.h"
#include "core/util/sha256.h"
#include "gtest/gtest.h"
#include "tests/core/training_test_util.h"

namespace stronghold::core {
namespace {

namespace fs = std::filesystem;

// Four layers so the window really slides; warm-up, cosine decay, clipping
// that acts and two micro-batches, so every piece of position matters.
JobConfig Config(OffloadMethod method, Precision precision = Precision::kFp32) {
  JobConfig c;
  c.training.precision = precision;
  c.model = {
      .layers = 4, .hidden = 32, .heads = 4, .seq_len = 32, .vocab = 256};
  c.training.steps = 20;
  c.training.batch = 4;
  c.training.micro_batch = 2;
  c.training.warmup_steps = 3;
  c.training.min_lr = 1e-4;
  c.training.clip_norm = 0.5;
  c.training.seed = 99;
  c.checkpoint.every_steps = 10;
  c.offload.method = method;
  c.offload.window = method == OffloadMethod::kStronghold ? 2 : 0;
  return c;
}

// ssd_layers > 0: that many layers keep their Adam moments on the NVMe tier,
// in files under `dir`/ssd (as a daemon with a short host budget does).
std::unique_ptr<Trainer> Make(JobConfig c, const std::string& dir,
                              int ssd_layers = 0) {
  if (ssd_layers > 0) {
    c.offload.ssd_dirs = {dir + "/ssd"};
    fs::create_directories(c.offload.ssd_dirs[0]);
  }
  auto trainer = Trainer::Create(c, PlanWithSsd(c, ssd_layers),
                                 {.job_dir = dir,
                                  .optimizer_threads = 2,
                                  .job_spec_json = "{\"name\": \"resume\"}\n"});
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  return trainer.ok() ? std::move(*trainer) : nullptr;
}

std::string Digest(const std::string& path) {
  auto d = Sha256File(path);
  return d.ok() ? *d : d.status().ToString();
}

struct ResumeCase {
  const char* name;
  OffloadMethod first;   // trains steps 1..10
  OffloadMethod second;  // resumes 11..20
  int ssd_layers = 0;    // layers whose moments are on the NVMe tier
  Precision precision = Precision::kFp32;
  // offload.device_embedding_optimizer for the windowed runs: the
  // embedding's state comes back from the device for each checkpoint and
  // goes to it again after the restore.
  bool emb_on_device = false;
  int resident_layers =
      0;  // offload.device_resident_layers of the STRONGHOLD runs
  Architecture architecture = Architecture::kGpt;
};

JobConfig Config(const ResumeCase& p, OffloadMethod method) {
  JobConfig c = Config(method, p.precision);
  c.model = WithArchitecture(c.model, p.architecture);
  c.offload.device_embedding_optimizer =
      p.emb_on_device && method != OffloadMethod::kResident;
  if (method == OffloadMethod::kStronghold)
    c.offload.device_resident_layers = p.resident_layers;
  return c;
}

class ResumeTest : public ::testing::TestWithParam<ResumeCase> {};

TEST_P(ResumeTest, TwentyStepsEqualTenCheckpointRestartTen) {
  const ResumeCase& p = GetParam();
  // Straight through.
  const std::string straight_dir = TestDir(absl::StrCat("straight_", p.name));
  StepRecorder straight;
  {
    auto t = Make(Config(p, p.second), straight_dir, p.ssd_layers);
    ASSERT_NE(t, nullptr);
    ASSERT_TRUE(t->Run(&straight).ok());
  }
  ASSERT_EQ(straight.losses.size(), 20u);

  // Ten steps, then stop as the daemon does on SIGTERM.
  const std::string split_dir = TestDir(absl::StrCat("split_", p.name));
  StepRecorder first;
  first.stop_after = 10;
  first.stop_kind = StopRequest::kShutdown;
  {
    auto t = Make(Config(p, p.first), split_dir, p.ssd_layers);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->Run(&first).code(), absl::StatusCode::kAborted);
  }
  EXPECT_EQ(first.checkpoints, std::vector<std::string>{"step-000010"});

  // A new trainer (fresh random init, zero moments) restores and finishes.
  StepRecorder second;
  std::vector<std::vector<float>> resumed_weights;
  {
    auto t = Make(Config(p, p.second), split_dir, p.ssd_layers);
    ASSERT_NE(t, nullptr);
    auto step = t->Restore(split_dir + "/checkpoints/step-000010");
    ASSERT_TRUE(step.ok()) << step.status();
    EXPECT_EQ(*step, 10);
    ASSERT_TRUE(t->Run(&second).ok());
    auto weights = t->Weights();
    ASSERT_TRUE(weights.ok()) << weights.status();
    resumed_weights = *std::move(weights);
  }
  ASSERT_EQ(second.steps.size(), 10u);
  // The spilled case really read its moments from the tier, before and
  // after the restore.
  EXPECT_EQ(first.nvme_read_bytes > 0, p.ssd_layers > 0);
  EXPECT_EQ(second.nvme_read_bytes > 0, p.ssd_layers > 0);
  EXPECT_EQ(second.steps.front(), 11);
  for (int i = 0; i < 20; ++i) {
    const StepRecorder& r = i < 10 ? first : second;
    EXPECT_EQ(r.losses[i % 10], straight.losses[i])
        << "loss of step " << i + 1;  // bit for bit
    EXPECT_EQ(r.norms[i % 10], straight.norms[i])
        << "grad norm of step " << i + 1;
  }
  // The final state, weights and optimizer moments, is the same file.
  for (const char* file :
       {"model.safetensors", "optimizer.safetensors", "job.json"}) {
    EXPECT_EQ(Digest(split_dir + "/checkpoints/step-000020/" + file),
              Digest(straight_dir + "/checkpoints/step-000020/" + file))
        << file;
  }
  // And the weights in memory match the straight run's final checkpoint.
  auto t = Make(Config(p, p.second), TestDir(absl::StrCat("reload_", p.name)));
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Restore(straight_dir + "/checkpoints/step-000020").ok());
  auto reloaded = t->Weights();
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_TRUE(*reloaded == resumed_weights);
}

INSTANTIATE_TEST_SUITE_P(
    Methods, ResumeTest,
    ::testing::Values(
        ResumeCase{"resident", OffloadMethod::kResident,
                   OffloadMethod::kResident},
        ResumeCase{"stronghold", OffloadMethod::kStronghold,
                   OffloadMethod::kStronghold},
        // Three of the four layers' moments on the NVMe tier:
        // the checkpoint streams them out of the tier and the
        // restore streams them back in.
        ResumeCase{"stronghold_spilled", OffloadMethod::kStronghold,
                   OffloadMethod::kStronghold, 3},
        // bf16: their fp32 masters too, through model.safetensors.
        ResumeCase{"stronghold_bf16_spilled", OffloadMethod::kStronghold,
                   OffloadMethod::kStronghold, 3, Precision::kBf16},
        // Host state is the same for every method: switch on resume.
        ResumeCase{"resident_then_stronghold", OffloadMethod::kResident,
                   OffloadMethod::kStronghold},
        ResumeCase{"stronghold_emb_on_device", OffloadMethod::kStronghold,
                   OffloadMethod::kStronghold, 0, Precision::kFp32, true},
        ResumeCase{"resident_then_bf16_emb_on_device", OffloadMethod::kResident,
                   OffloadMethod::kStronghold, 0, Precision::kBf16, true},
        // Layer 0 stays on the device with the embedding.
        ResumeCase{"stronghold_resident_layer", OffloadMethod::kStronghold,
                   OffloadMethod::kStronghold, 0, Precision::kFp32, true, 1},
        // The llama architecture (GQA, untied head), with spilled moments.
        ResumeCase{"llama_stronghold_spilled", OffloadMethod::kStronghold,
                   OffloadMethod::kStronghold, 3, Precision::kFp32, false, 0,
                   Architecture::kLlama},
        ResumeCase{"llama_resident_then_l2l", OffloadMethod::kResident,
                   OffloadMethod::kL2L, 0, Precision::kFp32, false, 0,
                   Architecture::kLlama}),
    [](const ::testing::TestParamInfo<ResumeCase>& info) {
      return std::string(info.param.name);
    });

TEST(ResumeTest, CancelWithCheckpointStopsAfterTheStepAndCheckpoints) {
  const std::string dir = TestDir("cancel_checkpoint");
  auto t = Make(Config(OffloadMethod::kResident), dir);
  ASSERT_NE(t, nullptr);
  StepRecorder r;
  r.stop_after = 4;
  r.stop_kind = StopRequest::kCheckpointAndCancel;
  const absl::Status s = t->Run(&r);
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  EXPECT_NE(s.message().find("step-000004"), absl::string_view::npos) << s;
  EXPECT_EQ(r.steps.size(), 4u);
  EXPECT_EQ(ListCheckpoints(dir + "/checkpoints"),
            std::vector<std::string>{"step-000004"});
}

TEST(ResumeTest, NoTrainingAfterAFailedRestore) {
  const std::string dir = TestDir("failed_restore");
  {
    auto t = Make(Config(OffloadMethod::kResident), dir);
    StepRecorder r;
    r.stop_after = 2;
    r.stop_kind = StopRequest::kCheckpointAndCancel;
    ASSERT_EQ(t->Run(&r).code(), absl::StatusCode::kCancelled);
  }
  const std::string ckpt = dir + "/checkpoints/step-000002";
  {
    std::fstream f(ckpt + "/optimizer.safetensors",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
  }
  auto t = Make(Config(OffloadMethod::kResident), dir);
  auto step = t->Restore(ckpt);
  ASSERT_FALSE(step.ok());
  EXPECT_EQ(step.status().code(), absl::StatusCode::kDataLoss) << step.status();
  EXPECT_NE(step.status().message().find("optimizer.safetensors"),
            absl::string_view::npos);
  StepRecorder r;
  EXPECT_EQ(t->Run(&r).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(r.steps.empty());

  // Another model shape: INVALID_ARGUMENT naming the manifest.
  JobConfig wider = Config(OffloadMethod::kResident);
  wider.model.hidden = 64;
  auto w = Make(wider, TestDir("wider"));
  step = w->Restore(dir + "/checkpoints/step-000002");
  EXPECT_EQ(step.status().code(), absl::StatusCode::kInvalidArgument)
      << step.status();
  EXPECT_NE(step.status().message().find("manifest.json"),
            absl::string_view::npos);
}

// The exported weights, read by a reader that shares no code with ours.
TEST(ResumeTest, SafetensorsReadBackByAnIndependentReader) {
  const std::string dir = TestDir("independent");
  JobConfig c = Config(OffloadMethod::kStronghold);
  c.training.steps = 3;
  auto t = Make(c, dir);
  ASSERT_NE(t, nullptr);
  StepRecorder r;
  ASSERT_TRUE(t->Run(&r).ok());
  auto trained = t->Weights();
  ASSERT_TRUE(trained.ok()) << trained.status();
  std::vector<std::vector<float>> weights = *std::move(trained);

  // The trained weights, tensor by tensor, as raw float32 and a name index.
  std::vector<CheckpointBuffer> buffers;
  const std::vector<BufferLayout> layouts = ModelLayout(c.model);
  for (size_t b = 0; b < layouts.size(); ++b) {
    buffers.push_back(
        {layouts[b], weights[b].data(), weights[b].data(), weights[b].data()});
  }
  std::ofstream values(dir + "/expected.f32", std::ios::binary);
  std::string index = "[";
  for (const SafetensorsTarget& tensor : ModelTensors(buffers)) {
    int64_t n = 1;
    for (int64_t d : tensor.shape) n *= d;
    values.write(reinterpret_cast<const char*>(tensor.data), n * 4);
    absl::StrAppend(&index, index.size() > 1 ? ", " : "", "[\"", tensor.name,
                    "\", [", absl::StrJoin(tensor.shape, ", "), "]]");
  }
  values.close();
  std::ofstream(dir + "/expected.json") << index << "]";

  const std::string script = std::string(std::getenv("TEST_SRCDIR")) +
                             "/stronghold/tests/core/safetensors_check.py";
  const std::string ckpt = dir + "/checkpoints/step-000003";
  EXPECT_EQ(
      std::system(("python3 " + script + " " + ckpt + "/model.safetensors " +
                   dir + "/expected.f32 " + dir + "/expected.json")
                      .c_str()),
      0);
  EXPECT_EQ(
      std::system(("python3 " + script + " " + ckpt + "/optimizer.safetensors")
                      .c_str()),
      0);
}

}  // namespace
}  // namespace stronghold::core
