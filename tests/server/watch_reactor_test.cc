// WatchJob through a real gRPC server and client (in process, on a unix
// socket): events stream to the end, a client that goes away ends its
// stream at once and gives its watch slot back, errors arrive as statuses.
#include "server/watch_reactor.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/auth/unix_listener.h"
#include "server/service.h"
#include "tests/server/job_manager_test_util.h"

namespace stronghold::server {
namespace {

namespace v1 = ::stronghold::v1;

class WatchReactorTest : public ::testing::Test {
 protected:
  void Start(JobLimits limits) {
    auto m = JobManager::Create({.state_dir = StateDir("watch_reactor"),
                                 .limits = limits,
                                 .optimizer_threads = 1});
    ASSERT_TRUE(m.ok()) << m.status();
    jobs_ = *std::move(m);
    // Served as the daemon serves: its own unix socket, each connection
    // handed to gRPC with the peer's credentials recorded (the callback
    // API's calls are identified the same way, by their "fd:N" peer).
    service_ = std::make_unique<StrongholdService>(jobs_.get(), &identity_);
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto listener = UnixListener::Listen({.path = socket_}, &peers_);
    ASSERT_TRUE(listener.ok()) << listener.status();
    listener_ = *std::move(listener);
    grpc::Server* server = server_.get();
    listener_->Start(
        [server](int fd) { grpc::AddInsecureChannelFromFd(server, fd); });
    stub_ = v1::Stronghold::NewStub(grpc::CreateChannel(
        absl::StrCat("unix:", socket_), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (jobs_ != nullptr) jobs_->Shutdown();
    if (listener_ != nullptr) listener_->Stop();
    if (server_ != nullptr) server_->Shutdown();
    unlink(socket_.c_str());
  }

  // A stream on `job` whose first event has arrived.
  struct Watch {
    std::unique_ptr<grpc::ClientContext> context =
        std::make_unique<grpc::ClientContext>();
    std::unique_ptr<grpc::ClientReader<v1::JobEvent>> reader;
    bool first = false;
  };
  Watch Open(const std::string& job) {
    Watch w;
    v1::WatchJobRequest request;
    request.set_name(job);
    w.reader = stub_->WatchJob(w.context.get(), request);
    v1::JobEvent event;
    w.first = w.reader->Read(&event);
    return w;
  }

  const std::string socket_ =
      absl::StrCat("/tmp/sh-watch-reactor-", getpid(), ".sock");
  std::unique_ptr<JobManager> jobs_;
  UnixPeerTable peers_;
  const CallerIdentity identity_{&peers_, {}};
  std::unique_ptr<UnixListener> listener_;
  std::unique_ptr<StrongholdService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Stronghold::Stub> stub_;
};

TEST_F(WatchReactorTest, StreamsEveryEventToTheEnd) {
  Start({});
  ASSERT_TRUE(jobs_->Submit(Tiny(3), kTestUser).ok());
  grpc::ClientContext context;
  v1::WatchJobRequest request;
  request.set_name("jobs/1");
  auto reader = stub_->WatchJob(&context, request);
  std::vector<v1::Job::State> states;
  int metrics = 0;
  v1::JobEvent event;
  while (reader->Read(&event)) {
    if (event.has_state()) states.push_back(event.state());
    if (event.has_metrics()) ++metrics;
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(states,
            (std::vector<v1::Job::State>{v1::Job::QUEUED, v1::Job::RUNNING,
                                         v1::Job::SUCCEEDED}));
  EXPECT_EQ(metrics, 3);
}

TEST_F(WatchReactorTest, ErrorsArriveAsStatuses) {
  Start({.max_watch_streams = 1});
  grpc::ClientContext context;
  v1::WatchJobRequest request;
  request.set_name("jobs/9");
  auto reader = stub_->WatchJob(&context, request);
  v1::JobEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);

  ASSERT_TRUE(jobs_->Submit(Tiny(1'000'000), kTestUser).ok());
  Watch held = Open("jobs/1");
  ASSERT_TRUE(held.first);
  Watch refused = Open("jobs/1");
  EXPECT_FALSE(refused.first);
  const grpc::Status s = refused.reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("--max_watch_streams"), std::string::npos)
      << s.error_message();
  held.context->TryCancel();
  ASSERT_TRUE(jobs_->Cancel("jobs/1").ok());
}

// Issue 15 item 5: a stream on a job with no new events whose client went
// away held its thread (and now its slot) until the job's next event.
TEST_F(WatchReactorTest, AClientThatGoesAwayEndsItsStreamAtOnce) {
  Start({.max_watch_streams = 20});
  ASSERT_TRUE(jobs_->Submit(Tiny(1'000'000), kTestUser).ok());  // runs
  ASSERT_TRUE(jobs_->Submit(Tiny(1), kTestUser)
                  .ok());  // queued: no event until jobs/1 ends
  std::vector<Watch> watches;
  for (int i = 0; i < 20; ++i) {
    watches.push_back(Open("jobs/2"));
    ASSERT_TRUE(watches.back().first);
  }
  EXPECT_FALSE(Open("jobs/2").first) << "every slot is held";
  const auto start = std::chrono::steady_clock::now();
  for (Watch& w : watches) w.context->TryCancel();
  int reopened = 0;
  while (reopened < 20 &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(2)) {
    Watch w = Open("jobs/2");
    if (w.first) {
      ++reopened;
      watches.push_back(std::move(w));  // held again
    } else {
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  EXPECT_EQ(reopened, 20) << "slots given back in " << seconds << " s";
  EXPECT_LT(seconds, 1.0);
  for (Watch& w : watches) w.context->TryCancel();
  ASSERT_TRUE(jobs_->Cancel("jobs/1").ok());
}

TEST_F(WatchReactorTest, GetNodeAnswers) {
  Start({});
  grpc::ClientContext context;
  v1::Node node;
  ASSERT_TRUE(stub_->GetNode(&context, v1::GetNodeRequest(), &node).ok());
  EXPECT_EQ(node.device(), "cpu");
}

}  // namespace
}  // namespace stronghold::server
