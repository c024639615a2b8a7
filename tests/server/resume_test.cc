// How the daemon continues jobs (server/resume.h): checkpoint references,
// spec merging, the choice of checkpoint after a restart (damaged ones
// skipped, never a silent start over), and through the JobManager: submit
// with resume_from, cancel with a checkpoint, resume after Shutdown().
#include "server/resume.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "core/checkpoint/checkpoint.h"
#include "core/plan/planner.h"
#include "gtest/gtest.h"
#include "server/job_manager.h"
#include "tests/server/job_manager_test_util.h"

namespace stronghold::server {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::stronghold::v1;

core::JobConfig TinyConfig(int steps) {
  core::JobConfig c;
  c.model = {
      .layers = 1, .hidden = 32, .heads = 2, .seq_len = 16, .vocab = 256};
  c.training.batch = 2;
  c.training.micro_batch = 2;
  c.training.steps = steps;
  c.checkpoint.every_steps = 2;
  return c;
}

class NullObserver : public core::TrainerObserver {
 public:
  void OnStep(const core::StepMetrics&) override {}
  void OnMessage(const std::string&) override {}
  void OnCheckpoint(const std::string&) override {}
  core::StopRequest StopRequested() override {
    return core::StopRequest::kNone;
  }
};

std::unique_ptr<core::Trainer> MakeTrainer(const core::JobConfig& c,
                                           const std::string& dir) {
  auto t = core::Trainer::Create(c, core::PlanExecution(c, {.device = "cpu"}),
                                 {.job_dir = dir, .optimizer_threads = 1});
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(*t);
}

void Damage(const std::string& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(-1, std::ios::end);
  f.put('\x55');
}

TEST(CheckpointRefTest, ParsesTheForms) {
  for (const char* text : {"jobs/3", "3"}) {
    auto r = ParseCheckpointRef(text);
    ASSERT_TRUE(r.ok()) << text;
    EXPECT_EQ(r->job_id, 3);
    EXPECT_EQ(r->checkpoint, "");
  }
  for (const char* text :
       {"jobs/3@step-000010", "3@10", "jobs/3@step-000010"}) {
    auto r = ParseCheckpointRef(text);
    ASSERT_TRUE(r.ok()) << text;
    EXPECT_EQ(FormatCheckpointRef(*r), "jobs/3@step-000010");
  }
  for (const char* text :
       {"", "jobs/", "jobs/x", "3@", "3@-1", "3@step-1x", "3@step-10"}) {
    auto r = ParseCheckpointRef(text);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(r.status().message().find("resume_from"), absl::string_view::npos)
        << text;
  }
}

TEST(MergeSpecsTest, GivenFieldsOverrideAndListsAreReplaced) {
  v1::JobSpec base;
  base.set_name("base");
  base.mutable_model()->set_layers(4);
  base.mutable_training()->set_steps(10);
  base.mutable_training()->set_lr(0.1);
  base.mutable_offload()->add_ssd_dirs("/a");
  v1::JobSpec overrides;
  overrides.mutable_training()->set_steps(20);
  overrides.mutable_offload()->add_ssd_dirs("/b");
  const v1::JobSpec m = MergeSpecs(base, overrides);
  EXPECT_EQ(m.name(), "base");
  EXPECT_EQ(m.model().layers(), 4);
  EXPECT_EQ(m.training().steps(), 20);
  EXPECT_EQ(m.training().lr(), 0.1);
  ASSERT_EQ(m.offload().ssd_dirs_size(), 1);
  EXPECT_EQ(m.offload().ssd_dirs(0), "/b");
}

TEST(RestoreTrainerTest, NewestIntactOwnCheckpointElseResumeFromElseFresh) {
  const std::string dir = StateDir("restore_own");
  {
    auto t = MakeTrainer(TinyConfig(4), dir);
    NullObserver o;
    ASSERT_TRUE(t->Run(&o).ok());  // checkpoints at 2 and 4
  }
  const std::string own = dir + "/checkpoints";
  auto t = MakeTrainer(TinyConfig(6), StateDir("restore_other"));
  auto r = RestoreTrainer(*t, own, "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->step, 4);
  EXPECT_EQ(r->note, "resuming from checkpoint step-000004 (step 4)");

  // The newest damaged: the one before it, and the note says why.
  Damage(own + "/step-000004/model.safetensors");
  r = RestoreTrainer(*t, own, "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->step, 2);
  EXPECT_NE(r->note.find("checkpoint step-000004 is damaged"),
            std::string::npos)
      << r->note;
  EXPECT_NE(r->note.find("model.safetensors"), std::string::npos) << r->note;

  // All damaged: an error, not a silent start from step 0.
  Damage(own + "/step-000002/optimizer.safetensors");
  r = RestoreTrainer(*t, own, "");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  NullObserver o;
  EXPECT_EQ(t->Run(&o).code(), absl::StatusCode::kFailedPrecondition);

  // No own checkpoint: resume_from, else a fresh start.
  const std::string source = StateDir("restore_source");
  {
    auto s = MakeTrainer(TinyConfig(2), source);
    ASSERT_TRUE(s->Run(&o).ok());
  }
  auto fresh = MakeTrainer(TinyConfig(6), StateDir("restore_fresh"));
  r = RestoreTrainer(*fresh, StateDir("restore_none") + "/checkpoints",
                     source + "/checkpoints/step-000002");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->step, 2);
  r = RestoreTrainer(*fresh, StateDir("restore_none") + "/checkpoints", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->step, 0);
  EXPECT_EQ(r->note, "");
}

bool WaitFor(const std::function<bool()>& done) {
  for (int i = 0; i < 600; ++i) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

std::vector<std::string> Messages(JobManager& m, const std::string& name) {
  std::vector<std::string> out;
  // The job is still running: stop following once the replay is done.
  int64_t seen = 0;
  (void)m.Watch(
      name, 0,
      [&](const v1::JobEvent& e) {
        if (!e.message().empty()) out.push_back(e.message());
        return ++seen < 1000 && !e.has_metrics();
      },
      [] { return true; });
  return out;
}

TEST(JobManagerResumeTest, CancelWithCheckpointThenResumeFromIt) {
  auto m = Manager(StateDir("jm_resume"));
  ASSERT_TRUE(m->Submit(Tiny(100000), kTestUser).ok());
  ASSERT_TRUE(WaitFor([&] { return m->Get("jobs/1")->step() >= 2; }));
  auto cancelled = m->Cancel("jobs/1", /*checkpoint=*/true);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::Job::CANCELLED);
  ASSERT_GT(cancelled->checkpoints_size(), 0);
  const std::string name =
      cancelled->checkpoints(cancelled->checkpoints_size() - 1);
  const int64_t step = *core::CheckpointStep(name);
  EXPECT_EQ(step, cancelled->step());

  v1::JobSpec resume;
  resume.set_resume_from("1");
  resume.mutable_training()->set_steps(static_cast<int>(step) + 2);
  auto job = m->Submit(resume, kTestUser);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->spec().resume_from(), "jobs/1@" + name) << "pinned";
  EXPECT_EQ(job->spec().model().hidden(), 32) << "the source's spec";
  EXPECT_EQ(job->spec().training().steps(), step + 2)
      << "with the given fields on top";
  ASSERT_TRUE(WaitFor(
      [&] { return m->Get(job->name())->state() == v1::Job::SUCCEEDED; }));
  EXPECT_EQ(m->Get(job->name())->step(), step + 2);

  // Nothing left to train, another shape, no such checkpoint.
  resume.mutable_training()->set_steps(static_cast<int>(step));
  EXPECT_EQ(m->Submit(resume, kTestUser).status().code(),
            absl::StatusCode::kInvalidArgument);
  resume.mutable_training()->set_steps(static_cast<int>(step) + 2);
  resume.mutable_model()->set_hidden(64);
  auto other = m->Submit(resume, kTestUser);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument)
      << other.status();
  EXPECT_NE(other.status().message().find("manifest.json"),
            absl::string_view::npos);
  resume.clear_model();
  resume.set_resume_from("1@999");
  EXPECT_EQ(m->Submit(resume, kTestUser).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(JobManagerResumeTest, AfterShutdownTheJobResumesFromItsCheckpoint) {
  const std::string dir = StateDir("jm_restart_resume");
  int64_t stopped_at = 0;
  {
    auto m = Manager(dir);
    ASSERT_TRUE(m->Submit(Tiny(100000), kTestUser).ok());
    ASSERT_TRUE(WaitFor([&] { return m->Get("jobs/1")->step() >= 2; }));
    m->Shutdown();  // like SIGTERM: checkpoint, back to QUEUED
    stopped_at = m->Get("jobs/1")->step();
  }
  // A crash in a later checkpoint write would have left this behind.
  fs::create_directories(dir + "/jobs/1/checkpoints/.tmp-step-999999");
  auto m = Manager(dir);
  EXPECT_FALSE(fs::exists(dir + "/jobs/1/checkpoints/.tmp-step-999999"));
  ASSERT_TRUE(WaitFor([&] { return m->Get("jobs/1")->step() > stopped_at; }));
  const std::vector<std::string> messages = Messages(*m, "jobs/1");
  const std::string want = "resuming from checkpoint " +
                           core::CheckpointName(stopped_at) + " (step " +
                           std::to_string(stopped_at) + ")";
  EXPECT_NE(std::find(messages.begin(), messages.end(), want), messages.end())
      << "missing \"" << want << "\"";
  EXPECT_EQ(m->Cancel("jobs/1")->state(), v1::Job::CANCELLED);
}

}  // namespace
}  // namespace stronghold::server
