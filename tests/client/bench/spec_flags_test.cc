// The bench builds its jobs with the flag code of `submit`
// (client/job_spec_flags.h): every submit flag is a bench flag, and what a
// flag sets reaches every spec the bench plans or submits, in every case. The
// specs are caught by a fake daemon that plans everything as fitting and runs
// every job to SUCCEEDED at once.
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/arg_parser.h"
#include "client/bench/cases.h"
#include "client/bench/options.h"
#include "client/bench/runner.h"
#include "client/daemon_client.h"
#include "client/job_spec_flags.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "stronghold/v1/stronghold.grpc.pb.h"

namespace stronghold::client {
namespace {

using ::testing::ElementsAre;

class RecordingDaemon final : public v1::Stronghold::Service {
 public:
  // Every spec planned or submitted, in order.
  std::vector<v1::JobSpec> specs() const {
    absl::MutexLock lock(&mu_);
    return specs_;
  }

  grpc::Status PlanJob(grpc::ServerContext*, const v1::PlanJobRequest* request,
                       v1::MemoryPlan* plan) override {
    Record(request->spec());
    plan->set_fits(true);
    plan->set_parameters(1000);
    plan->set_window(request->spec().offload().window());
    return grpc::Status::OK;
  }

  grpc::Status SubmitJob(grpc::ServerContext*,
                         const v1::SubmitJobRequest* request,
                         v1::Job* job) override {
    Record(request->spec());
    absl::MutexLock lock(&mu_);
    job->set_name(absl::StrCat("jobs/", steps_.size() + 1));
    job->set_state(v1::Job::QUEUED);
    steps_[job->name()] = request->spec().training().steps();
    return grpc::Status::OK;
  }

  grpc::Status WatchJob(grpc::ServerContext*,
                        const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::JobEvent>* writer) override {
    int steps = 0;
    {
      absl::MutexLock lock(&mu_);
      steps = steps_[request->name()];
    }
    for (int step = 1; step <= steps; ++step) {
      v1::JobEvent event;
      v1::StepMetrics* metrics = event.mutable_metrics();
      metrics->set_step(step);
      metrics->set_step_s(0.01);
      metrics->set_samples_per_s(100);
      writer->Write(event);
    }
    v1::JobEvent done;
    done.set_state(v1::Job::SUCCEEDED);
    done.mutable_job()->set_name(request->name());
    done.mutable_job()->set_state(v1::Job::SUCCEEDED);
    writer->Write(done);
    return grpc::Status::OK;
  }

 private:
  void Record(const v1::JobSpec& spec) {
    absl::MutexLock lock(&mu_);
    specs_.push_back(spec);
  }

  mutable absl::Mutex mu_;
  std::vector<v1::JobSpec> specs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> steps_ ABSL_GUARDED_BY(mu_);
};

// Flags that only `submit` had before the bench took its flags: none of them
// is swept, so each must reach every job as given. Flag and value pairs.
// clang-format off
const std::vector<std::string> kSubmitOnlyFlags = {
    "--name", "nightly", "--lr", "0.002", "--precision", "bf16",
    "--micro-batch", "2", "--seed", "7", "--clip-norm", "0.5",
    "--beta2", "0.95", "--kept-activation-layers", "-1", "--data", "builtin",
    "--checkpoint-every", "3", "--ssd-dir", "/nvme0/sh"};
// clang-format on

TEST(BenchSpecFlagsTest, EverySubmitFlagIsABenchFlag) {
  // But those that give one rank and the job key: the bench submits every
  // rank itself, with a fresh key per run (--world-size, --daemons).
  const std::vector<std::string> per_rank = {"rank", "local-rank", "job-key",
                                             "dist-from-env"};
  for (const FlagSpec& flag : JobSpecFlags()) {
    if (absl::c_linear_search(per_rank, flag.name)) continue;
    bool found = false;
    for (const FlagSpec& bench : BenchFlags()) found |= bench.name == flag.name;
    EXPECT_TRUE(found) << "--" << flag.name;
  }
}

TEST(BenchSpecFlagsTest, SubmitOnlyFlagsReachEveryJobOfEveryCase) {
  // What `submit` makes of the same flags.
  absl::StatusOr<ParsedArgs> submit_args =
      ParseArgs(kSubmitOnlyFlags, JobSpecFlags(), {});
  ASSERT_TRUE(submit_args.ok()) << submit_args.status();
  absl::StatusOr<v1::JobSpec> submitted = BuildJobSpec(*submit_args);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  // The name gets the point's description after it; the list is compared
  // whole below (merging would append to it).
  v1::JobSpec want = *submitted;
  want.clear_name();
  want.mutable_offload()->clear_ssd_dirs();

  RecordingDaemon daemon;
  int port = 0;
  std::unique_ptr<grpc::Server> server =
      grpc::ServerBuilder()
          .AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                            &port)
          .RegisterService(&daemon)
          .BuildAndStart();
  ASSERT_NE(server, nullptr);
  DaemonClient client({.address = absl::StrCat("127.0.0.1:", port)});

  size_t seen = 0;
  for (const char* bench_case :
       {"run", "largest", "throughput", "scaling", "window"}) {
    std::vector<std::string> words = kSubmitOnlyFlags;
    if (std::string(bench_case) != "run") {
      words.insert(words.end(), {"--case", bench_case});
    }
    // clang-format off
    words.insert(words.end(),
                 {"--layers", "2", "--hidden", "64", "--heads", "4",
                  "--seq-len", "64", "--vocab", "256", "--batch", "2",
                  "--steps", "2", "--max-layers", "2", "--layers-list", "1,2",
                  "--windows", "0,1", "--no-plot", "--out-dir",
                  absl::StrCat(testing::TempDir(), "/", bench_case)});
    // clang-format on
    absl::StatusOr<ParsedArgs> args =
        ParseArgs(words, BenchFlags(), {.context = "command bench"});
    ASSERT_TRUE(args.ok()) << bench_case << ": " << args.status();
    absl::StatusOr<BenchOptions> options = ParseBenchOptions(*args);
    ASSERT_TRUE(options.ok()) << bench_case << ": " << options.status();
    BenchRunner runner(*options, {.client = &client,
                                  .peak = {.tflops = 1},
                                  .out_dir = options->out_dir});
    std::ostringstream out, err;
    absl::StatusOr<int> exit_code = RunBench(runner, out, err);
    ASSERT_TRUE(exit_code.ok()) << bench_case << ": " << exit_code.status();
    EXPECT_EQ(*exit_code, 0) << bench_case << ": " << out.str() << err.str();

    const std::vector<v1::JobSpec> specs = daemon.specs();
    ASSERT_GT(specs.size(), seen) << bench_case << ": no job planned";
    for (; seen < specs.size(); ++seen) {
      const v1::JobSpec& spec = specs[seen];
      v1::JobSpec merged = spec;
      merged.MergeFrom(want);  // changes nothing if every value arrived
      EXPECT_TRUE(
          google::protobuf::util::MessageDifferencer::Equals(merged, spec))
          << bench_case << ": the bench's spec\n"
          << spec.DebugString() << "lacks some of submit's\n"
          << want.DebugString();
      EXPECT_TRUE(absl::StartsWith(spec.name(), "nightly "))
          << bench_case << ": " << spec.name();
      EXPECT_THAT(spec.offload().ssd_dirs(), ElementsAre("/nvme0/sh"))
          << bench_case;
    }
  }
  server->Shutdown();
}

}  // namespace
}  // namespace stronghold::client
