// The job state machine of the daemon, in process (no gRPC): queueing,
// running, success, cancel of queued and running jobs, the errors of each
// method, paging, and what a restart finds in the state directory.
#include "server/job_manager.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/job_store.h"
#include "storage/fault_spec.h"
#include "tests/server/job_manager_test_util.h"

namespace stronghold::server {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::stronghold::v1;

v1::Job::State WaitWhile(JobManager& m, const std::string& name,
                         v1::Job::State state) {
  for (int i = 0; i < 600; ++i) {
    const v1::Job::State now = m.Get(name)->state();
    if (now != state) return now;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return state;
}

// The state a job ends in (a tiny job may start and end between two polls).
v1::Job::State Ended(JobManager& m, const std::string& name) {
  const v1::Job::State state = WaitWhile(m, name, v1::Job::QUEUED);
  return state == v1::Job::RUNNING ? WaitWhile(m, name, v1::Job::RUNNING)
                                   : state;
}

TEST(JobManagerTest, QueuedRunningSucceeded) {
  auto m = Manager(StateDir("jm_success"));
  auto job = m->Submit(Tiny(5), kTestUser);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->name(), "jobs/1");
  EXPECT_EQ(job->state(), v1::Job::QUEUED);
  EXPECT_EQ(job->spec().training().micro_batch(), 2)
      << "defaults are filled in";
  std::vector<v1::Job::State> states;
  int metrics = 0;
  ASSERT_TRUE(m->Watch(
                   "jobs/1", 0,
                   [&](const v1::JobEvent& e) {
                     if (e.has_state()) states.push_back(e.state());
                     if (e.has_metrics()) ++metrics;
                     return true;
                   },
                   [] { return false; })
                  .ok());
  EXPECT_EQ(states,
            (std::vector<v1::Job::State>{v1::Job::QUEUED, v1::Job::RUNNING,
                                         v1::Job::SUCCEEDED}));
  EXPECT_EQ(metrics, 5);
  const v1::Job done = *m->Get("jobs/1");
  EXPECT_EQ(done.step(), 5);
  EXPECT_FALSE(done.checkpoints().empty());
  EXPECT_TRUE(m->CheckpointPath("jobs/1", "", "").ok());
  // A finished job cannot be cancelled.
  EXPECT_EQ(m->Cancel("jobs/1").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(JobManagerTest, CancelQueuedAndRunning) {
  auto m = Manager(StateDir("jm_cancel"));
  ASSERT_TRUE(m->Submit(Tiny(100000), kTestUser).ok());  // runs
  ASSERT_TRUE(m->Submit(Tiny(5), kTestUser)
                  .ok());  // waits behind it (FIFO, one device)
  EXPECT_EQ(WaitWhile(*m, "jobs/1", v1::Job::QUEUED), v1::Job::RUNNING);
  EXPECT_EQ(m->Get("jobs/2")->state(), v1::Job::QUEUED);
  EXPECT_EQ(m->Cancel("jobs/2")->state(), v1::Job::CANCELLED);
  EXPECT_EQ(m->Cancel("jobs/1")->state(), v1::Job::CANCELLED);
  EXPECT_EQ(m->Get("jobs/1")->error(), "cancelled by request");
}

TEST(JobManagerTest, ErrorsNameWhatIsWrong) {
  auto m = Manager(StateDir("jm_errors"));
  v1::JobSpec bad = Tiny(5);
  bad.mutable_model()->set_heads(3);  // 32 % 3 != 0
  EXPECT_EQ(m->Submit(bad, kTestUser).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m->Get("jobs/7").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(m->Get("job/x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m->List(5000, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m->List(0, "bogus").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m->Trace("jobs/7").status().code(), absl::StatusCode::kNotFound);
  v1::JobSpec huge = Tiny(5);
  huge.mutable_offload()->set_gpu_memory_budget_bytes(1024);
  huge.mutable_offload()->set_method(v1::STRONGHOLD);
  EXPECT_EQ(m->Submit(huge, kTestUser).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(m->CheckpointPath("jobs/1", "../x", "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The llama fields: a GPT spec that sets one, and a llama spec that breaks
// one's limit, are refused naming the field; a valid llama spec is taken.
TEST(JobManagerTest, ArchitectureFieldsAreCheckedByName) {
  auto m = Manager(StateDir("jm_arch"));
  const std::pair<std::function<void(v1::ModelSpec*)>, std::string> cases[] = {
      {[](v1::ModelSpec* s) { s->set_kv_heads(2); }, "model.kv_heads"},
      {[](v1::ModelSpec* s) { s->set_rope_theta(10000); }, "model.rope_theta"},
      {[](v1::ModelSpec* s) { s->set_tie_embeddings(false); },
       "model.tie_embeddings"},
      {[](v1::ModelSpec* s) {
         s->set_architecture(v1::LLAMA);
         s->set_kv_heads(3);
       },
       "model.kv_heads"},
      {[](v1::ModelSpec* s) {
         s->set_architecture(v1::LLAMA);
         s->set_norm_eps(0.5);
       },
       "model.norm_eps"},
      {[](v1::ModelSpec* s) {
         s->set_architecture(v1::LLAMA);
         s->set_intermediate(0);
       },
       "model.intermediate"}};
  for (const auto& [edit, field] : cases) {
    v1::JobSpec spec = Tiny(5);
    edit(spec.mutable_model());
    const absl::StatusOr<v1::Job> job = m->Submit(spec, kTestUser);
    ASSERT_FALSE(job.ok()) << field;
    EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(job.status().message().find(field), std::string::npos)
        << job.status();
  }
  v1::JobSpec llama = Tiny(2);
  llama.mutable_model()->set_architecture(v1::LLAMA);
  llama.mutable_model()->set_kv_heads(2);
  const absl::StatusOr<v1::Job> job = m->Submit(llama, kTestUser);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->spec().model().architecture(), v1::LLAMA);
  EXPECT_EQ(job->spec().model().intermediate(),
            core::DefaultIntermediate(llama.model().hidden()));
}

TEST(JobManagerTest, PlanReportsTheLargestTrainableModel) {
  auto m = Manager(StateDir("jm_plan"));
  v1::JobSpec spec = Tiny(5);
  spec.mutable_offload()->set_method(v1::STRONGHOLD);
  spec.mutable_offload()->set_gpu_memory_budget_bytes(64 << 20);
  spec.mutable_offload()->set_host_memory_budget_bytes(256 << 20);
  auto plan = m->Plan(spec);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->fits()) << plan->reason();
  ASSERT_GT(plan->max_layers(), 1);
  // One layer more than the largest does not fit; the largest does.
  spec.mutable_model()->set_layers(plan->max_layers());
  EXPECT_TRUE(m->Plan(spec)->fits());
  spec.mutable_model()->set_layers(plan->max_layers() + 1);
  EXPECT_FALSE(m->Plan(spec)->fits());
}

TEST(JobManagerTest, ListPagesNewestFirst) {
  auto m = Manager(StateDir("jm_list"));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(m->Submit(Tiny(1), kTestUser).ok());
  auto page = m->List(2, "");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs_size(), 2);
  EXPECT_EQ(page->jobs(0).name(), "jobs/5");
  EXPECT_EQ(page->jobs(1).name(), "jobs/4");
  std::vector<std::string> names;
  std::string token = page->next_page_token();
  while (!token.empty()) {
    auto next = m->List(2, token);
    ASSERT_TRUE(next.ok());
    for (const v1::Job& j : next->jobs()) names.push_back(j.name());
    token = next->next_page_token();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"jobs/3", "jobs/2", "jobs/1"}));
}

TEST(JobManagerTest, RestartKeepsRecordsAndQueuesUnfinishedJobs) {
  const std::string dir = StateDir("jm_restart");
  {
    auto m = Manager(dir);
    ASSERT_TRUE(m->Submit(Tiny(2), kTestUser).ok());
    ASSERT_TRUE(m->Watch(
                     "jobs/1", 0, [](const v1::JobEvent&) { return true; },
                     [] { return false; })
                    .ok());  // returns when the job has ended
    EXPECT_EQ(m->Get("jobs/1")->state(), v1::Job::SUCCEEDED);
    ASSERT_TRUE(m->Submit(Tiny(100000), kTestUser).ok());
    EXPECT_EQ(WaitWhile(*m, "jobs/2", v1::Job::QUEUED), v1::Job::RUNNING);
    m->Shutdown();  // like SIGTERM: the running job checkpoints and is queued
                    // again
    EXPECT_EQ(m->Get("jobs/2")->state(), v1::Job::QUEUED);
  }
  auto m = Manager(dir);
  EXPECT_EQ(m->Get("jobs/1")->state(), v1::Job::SUCCEEDED);
  const v1::Job::State again = m->Get("jobs/2")->state();
  EXPECT_TRUE(again == v1::Job::QUEUED || again == v1::Job::RUNNING) << again;
  auto next = m->Submit(Tiny(1), kTestUser);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->name(), "jobs/3") << "ids are never reused";
  EXPECT_EQ(m->Cancel("jobs/2")->state(), v1::Job::CANCELLED);
}

// --ssd_fault_injection: the faults reach the first job that opens an NVMe
// tier and no other; a job without a tier before it does not use them up.
TEST(JobManagerTest, InjectedSsdFaultsReachTheFirstJobWithATierOnly) {
  const std::string dir = StateDir("jm_ssd_faults");
  const std::string ssd = StateDir("jm_ssd_faults_tier");
  fs::create_directories(ssd);
  JobManagerOptions options{
      .state_dir = dir, .optimizer_threads = 1, .ssd_roots = {ssd}};
  auto spec = storage::ParseFaultSpec("eio_read@1");
  ASSERT_TRUE(spec.ok()) << spec.status();
  options.ssd_fault_injection = *spec;
  auto created = JobManager::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  JobManager& m = **created;

  // A windowed job whose host budget is a little short: some layers'
  // moments go to the tier.
  v1::JobSpec spilled = Tiny(2);
  spilled.mutable_model()->set_layers(8);
  spilled.mutable_model()->set_hidden(64);
  spilled.mutable_offload()->set_method(v1::STRONGHOLD);
  spilled.mutable_offload()->set_window(1);
  spilled.mutable_offload()->add_ssd_dirs(ssd);
  const int64_t host = m.Plan(spilled)->host_bytes();
  for (int64_t budget = host - 1; budget > host / 4; budget -= host / 256) {
    spilled.mutable_offload()->set_host_memory_budget_bytes(budget);
    const v1::MemoryPlan plan = *m.Plan(spilled);
    if (plan.fits() && plan.ssd_bytes() > 0) break;
  }
  ASSERT_GT(m.Plan(spilled)->ssd_bytes(), 0);
  ASSERT_TRUE(m.Plan(spilled)->fits()) << m.Plan(spilled)->reason();

  ASSERT_TRUE(
      m.Submit(Tiny(2), kTestUser).ok());  // no tier: the faults stay armed
  ASSERT_TRUE(m.Submit(spilled, kTestUser).ok());
  ASSERT_TRUE(m.Submit(spilled, kTestUser).ok());
  // The end state (a tiny job may start and finish between two polls).
  auto ended = [&](const std::string& name) {
    const auto state = WaitWhile(m, name, v1::Job::QUEUED);
    return state == v1::Job::RUNNING ? WaitWhile(m, name, v1::Job::RUNNING)
                                     : state;
  };
  EXPECT_EQ(ended("jobs/1"), v1::Job::SUCCEEDED);
  EXPECT_EQ(ended("jobs/2"), v1::Job::FAILED);
  const std::string error = m.Get("jobs/2")->error();
  EXPECT_NE(error.find("Input/output error (errno 5)"), std::string::npos)
      << error;
  EXPECT_NE(error.find(ssd + "/stronghold-"), std::string::npos) << error;
  EXPECT_NE(error.find("(injected fault)"), std::string::npos) << error;
  EXPECT_EQ(Ended(m, "jobs/3"), v1::Job::SUCCEEDED) << m.Get("jobs/3")->error();
  // Each job's private tier directory went with it, failed or not.
  EXPECT_TRUE(fs::is_empty(ssd));
}

// The paths a spec names are opened inside the daemon's roots, at Plan,
// Submit and each run: elsewhere PERMISSION_DENIED naming the field.
TEST(JobManagerTest, PathsOutsideTheRootsAreRefused) {
  const std::string dir = StateDir("jm_roots");
  const std::string data = StateDir("jm_roots_data");
  const std::string ssd = StateDir("jm_roots_ssd");
  fs::create_directories(data);
  fs::create_directories(ssd);
  {
    std::ofstream tokens(data + "/tokens.u16", std::ios::binary);
    for (int i = 0; i < 4096; ++i)
      tokens.put(static_cast<char>(i % 200)).put(0);
  }
  auto created = JobManager::Create({.state_dir = dir,
                                     .optimizer_threads = 1,
                                     .data_roots = {data},
                                     .ssd_roots = {ssd}});
  ASSERT_TRUE(created.ok()) << created.status();
  JobManager& m = **created;
  v1::JobSpec outside = Tiny(2);
  outside.mutable_data()->set_source("/etc/passwd");
  for (const auto& status :
       {m.Submit(outside, kTestUser).status(), m.Plan(outside).status()}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
    EXPECT_NE(status.message().find("data.source"), std::string::npos)
        << status;
  }
  v1::JobSpec shm = Tiny(2);
  shm.mutable_offload()->add_ssd_dirs("/dev/shm");
  EXPECT_EQ(m.Plan(shm).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(m.Submit(shm, kTestUser).status().code(),
            absl::StatusCode::kPermissionDenied);

  v1::JobSpec inside = Tiny(2);
  inside.mutable_data()->set_source("tokens.u16");  // relative to the data root
  auto job = m.Submit(inside, kTestUser);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(Ended(m, job->name()), v1::Job::SUCCEEDED)
      << m.Get(job->name())->error();
  // Gone by the time it runs (queued behind a long job): the run opens it
  // again, inside the roots, and fails the job with the same refusal.
  std::ofstream(data + "/later.u16", std::ios::binary)
      << std::string(8192, '\0');
  v1::JobSpec later = Tiny(2);
  later.mutable_data()->set_source("later.u16");
  auto first = m.Submit(Tiny(1'000'000), kTestUser);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = m.Submit(later, kTestUser);
  ASSERT_TRUE(second.ok()) << second.status();
  fs::remove(data + "/later.u16");
  ASSERT_TRUE(m.Cancel(first->name()).ok());
  EXPECT_EQ(Ended(m, second->name()), v1::Job::FAILED);
  EXPECT_NE(
      m.Get(second->name())->error().find("PERMISSION_DENIED: data.source"),
      std::string::npos)
      << m.Get(second->name())->error();
  EXPECT_EQ(m.Submit(later, kTestUser).status().code(),
            absl::StatusCode::kPermissionDenied);
}

// What a daemon killed with a job running left on the NVMe tier is removed
// at the next start; a directory that is not a tier's stays.
TEST(JobManagerTest, StartRemovesLeftoverTierDirectories) {
  const std::string ssd = StateDir("jm_leftover_ssd");
  const std::string leftover = ssd + "/nvme0/stronghold-job-3-00112233aabb";
  fs::create_directories(leftover);
  std::ofstream(leftover + "/tier.0") << "stale";
  fs::create_directories(ssd + "/keep");
  auto m = JobManager::Create({.state_dir = StateDir("jm_leftover"),
                               .optimizer_threads = 1,
                               .ssd_roots = {ssd}});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(fs::exists(leftover));
  EXPECT_TRUE(fs::exists(ssd + "/keep"));
  auto bad = JobManager::Create(
      {.state_dir = StateDir("jm_leftover2"), .ssd_roots = {ssd + "/missing"}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--ssd_root"), std::string::npos)
      << bad.status();
}

// A listener that throws from the job path (it is called from inside
// core::Trainer::Run, through the run's observer): std::bad_alloc on step 2
// of jobs/1, nothing for other jobs.
class ThrowingListener : public JobListener {
 public:
  void OnJobState(const v1::Job&) override {}
  void OnJobStep(const v1::Job& job, const v1::StepMetrics& m) override {
    if (job.name() == "jobs/1" && m.step() == 2) throw std::bad_alloc();
  }
};

TEST(JobManagerTest, AJobThatThrowsFailsAndTheDaemonKeepsServing) {
  ThrowingListener listener;
  auto created = JobManager::Create({.state_dir = StateDir("jm_throws"),
                                     .listener = &listener,
                                     .optimizer_threads = 1});
  ASSERT_TRUE(created.ok()) << created.status();
  JobManager& m = **created;
  ASSERT_TRUE(m.Submit(Tiny(5), kTestUser).ok());
  ASSERT_TRUE(m.Submit(Tiny(3), kTestUser).ok());
  auto ended = [&](const std::string& name) {
    const auto state = WaitWhile(m, name, v1::Job::QUEUED);
    return state == v1::Job::RUNNING ? WaitWhile(m, name, v1::Job::RUNNING)
                                     : state;
  };
  EXPECT_EQ(ended("jobs/1"), v1::Job::FAILED);
  // Thrown from the trainer's observer: core::Trainer::Run turns it into
  // its status (core/util/exception_status.h) before the runner's catch.
  EXPECT_EQ(
      m.Get("jobs/1")->error(),
      "RESOURCE_EXHAUSTED: training: out of host memory (std::bad_alloc)");
  EXPECT_EQ(ended("jobs/2"), v1::Job::SUCCEEDED) << m.Get("jobs/2")->error();
  EXPECT_EQ(m.List(0, "")->jobs_size(), 2);
}

// A job's settings are resolved once (issue 16): planned at submission to
// refuse what does not fit, then once when its run starts, the plan stored
// in the record and handed to the trainer. Nothing else plans it: not the
// trainer, not the metrics' view of the running job, not GetJob or GetNode.
TEST(JobManagerTest, ARunningJobIsPlannedOnce) {
  std::atomic<int> plans{0};
  auto created = JobManager::Create(
      {.state_dir = StateDir("jm_planned_once"),
       .optimizer_threads = 1,
       .planner = [&](const core::JobConfig& c, const core::NodeBudgets& node) {
         ++plans;
         return core::PlanExecution(c, node);
       }});
  ASSERT_TRUE(created.ok()) << created.status();
  JobManager& m = **created;
  v1::JobSpec spec = Tiny(4);
  spec.mutable_offload()->set_method(v1::STRONGHOLD);  // window 0: automatic
  const auto job = m.Submit(spec, kTestUser);
  ASSERT_TRUE(job.ok()) << job.status();
  // Submission plans before it returns (the run may have started since).
  EXPECT_GE(plans, 1) << "submission";
  EXPECT_TRUE(job->plan().automatic_window())
      << "the submission's plan is in the record";
  const auto state = WaitWhile(m, "jobs/1", v1::Job::QUEUED);
  if (state == v1::Job::RUNNING) {
    for (int i = 0; i < 5; ++i) {
      m.Get("jobs/1").IgnoreError();
      m.Node();
    }
  }
  EXPECT_EQ(WaitWhile(m, "jobs/1", v1::Job::RUNNING), v1::Job::SUCCEEDED)
      << m.Get("jobs/1")->error();
  EXPECT_EQ(plans, 2)
      << "once at submission, once when the run started, and never again";
  const v1::MemoryPlan& plan = m.Get("jobs/1")->plan();
  EXPECT_EQ(plan.method(), v1::STRONGHOLD);
  EXPECT_GE(plan.window(), 1);
  EXPECT_EQ(plan.slots(), std::min(plan.window() + 1, 1));
}

TEST(JobManagerTest, NegativeMaxJobRestartsIsRefused) {
  auto m = JobManager::Create(
      {.state_dir = StateDir("jm_restarts_bad"), .max_job_restarts = -1});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("max_job_restarts"), std::string::npos);
}

// A daemon that dies while a job runs leaves its record RUNNING; each
// start counts that, durably, and past max_job_restarts (default 2) the job
// fails instead of taking the daemon down again.
TEST(JobManagerTest, AJobTheDaemonDiesUnderIsResumedAtMostTwice) {
  const std::string dir = StateDir("jm_restarts");
  {
    auto m = Manager(dir);
    ASSERT_TRUE(m->Submit(Tiny(100000), kTestUser).ok());
    EXPECT_EQ(WaitWhile(*m, "jobs/1", v1::Job::QUEUED), v1::Job::RUNNING);
  }
  // What kill -9 leaves: the record as it was while the job ran (Shutdown()
  // above left it QUEUED).
  auto crashed = [&] {
    JobStore store = *JobStore::Open(dir);
    v1::Job job = store.LoadAll().at(0);
    job.set_state(v1::Job::RUNNING);
    ASSERT_TRUE(store.Save(job).ok());
  };
  for (int stop = 1; stop <= 2; ++stop) {
    crashed();
    auto m = Manager(dir);
    EXPECT_EQ(m->Get("jobs/1")->daemon_stops(), stop);
    EXPECT_EQ(WaitWhile(*m, "jobs/1", v1::Job::QUEUED), v1::Job::RUNNING);
    // On disk before it runs: a crash now counts.
    const v1::Job stored = JobStore::Open(dir)->LoadAll().at(0);
    EXPECT_EQ(stored.state(), v1::Job::RUNNING);
    EXPECT_EQ(stored.daemon_stops(), stop);
  }
  crashed();
  auto m = Manager(dir);
  const v1::Job failed = *m->Get("jobs/1");
  EXPECT_EQ(failed.state(), v1::Job::FAILED);
  EXPECT_EQ(failed.error(),
            "the daemon stopped 3 times while running this job");
  EXPECT_EQ(JobStore::Open(dir)->LoadAll().at(0).state(), v1::Job::FAILED);
  // And the manager serves: a new job runs.
  ASSERT_TRUE(m->Submit(Tiny(2), kTestUser).ok());
  EXPECT_TRUE(m->Watch(
                   "jobs/2", 0, [](const v1::JobEvent&) { return true; },
                   [] { return false; })
                  .ok());
  EXPECT_EQ(m->Get("jobs/2")->state(), v1::Job::SUCCEEDED);
}

}  // namespace
}  // namespace stronghold::server
