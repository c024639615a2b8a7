// Load for the daemon's limit tests (tests/integration/daemon_limits_test.sh),
// from a real gRPC client against a real strongholdd:
//
//   rpc_load watchers TARGET JOB N
//     opens N WatchJob streams on JOB, reads the first event of each,
//     prints "open N" and waits to be killed (kill -9: the clients go away
//     without a word); a stream the daemon refuses is printed with its code.
//   rpc_load flood TARGET CLIENTS SUBMITS INTERVAL_MS
//     CLIENTS callers, each on its own connection, submit SUBMITS tiny jobs
//     each, one every INTERVAL_MS; prints the count of each status code and
//     each distinct RESOURCE_EXHAUSTED message with its count.
//   rpc_load probe TARGET PID
//     times GetNode every 5 ms while process PID (the flood) runs; prints
//     the latency (p50, p99, max) and the failures.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "stronghold/v1/stronghold.grpc.pb.h"

namespace {

namespace v1 = ::stronghold::v1;
using Clock = std::chrono::steady_clock;

std::unique_ptr<v1::Stronghold::Stub> Connect(const std::string& target,
                                              int connection) {
  grpc::ChannelArguments args;
  // A connection of its own per caller, as separate clients would have.
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  args.SetInt("stronghold.test.connection", connection);
  return v1::Stronghold::NewStub(grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args));
}

int Watchers(const std::string& target, const std::string& job, int n) {
  auto stub = Connect(target, 0);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::JobEvent>>> readers;
  int open = 0;
  for (int i = 0; i < n; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    v1::WatchJobRequest request;
    request.set_name(job);
    readers.push_back(stub->WatchJob(contexts.back().get(), request));
    v1::JobEvent event;
    if (readers.back()->Read(&event)) {
      ++open;
    } else {
      const grpc::Status s = readers.back()->Finish();
      std::printf("refused %d %s\n", static_cast<int>(s.error_code()),
                  s.error_message().c_str());
    }
  }
  std::printf("open %d\n", open);
  std::fflush(stdout);
  pause();  // until killed
  return 0;
}

int Flood(const std::string& target, int clients, int submits,
          int interval_ms) {
  std::mutex mu;
  std::map<std::string, int> codes;
  std::map<std::string, int> exhausted;  // message -> count
  std::vector<std::thread> callers;
  for (int c = 0; c < clients; ++c) {
    callers.emplace_back([&, c] {
      auto stub = Connect(target, c + 1);
      Clock::time_point next = Clock::now();
      for (int i = 0; i < submits; ++i) {
        std::this_thread::sleep_until(next);
        next += std::chrono::milliseconds(interval_ms);
        v1::SubmitJobRequest request;
        v1::JobSpec& spec = *request.mutable_spec();
        spec.set_name("flood");
        spec.mutable_model()->set_layers(1);
        spec.mutable_model()->set_hidden(32);
        spec.mutable_model()->set_heads(2);
        spec.mutable_model()->set_seq_len(16);
        spec.mutable_training()->set_steps(1);
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(30));
        v1::Job job;
        const grpc::Status s = stub->SubmitJob(&context, request, &job);
        std::lock_guard<std::mutex> lock(mu);
        ++codes[s.ok() ? "OK" : std::to_string(s.error_code())];
        if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED)
          ++exhausted[s.error_message()];
      }
    });
  }
  for (std::thread& t : callers) t.join();
  for (const auto& [code, count] : codes)
    std::printf("code %s %d\n", code.c_str(), count);
  for (const auto& [message, count] : exhausted) {
    std::printf("exhausted %d %s\n", count, message.c_str());
  }
  return 0;
}

// Times GetNode every 5 ms while process `pid` (the flood) runs.
int Probe(const std::string& target, int pid) {
  auto prober = Connect(target, 0);
  std::vector<double> ms;
  int failures = 0;
  std::string error;
  while (kill(pid, 0) == 0) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    v1::Node node;
    const Clock::time_point start = Clock::now();
    const grpc::Status s =
        prober->GetNode(&context, v1::GetNodeRequest(), &node);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start)
                     .count());
    if (!s.ok()) {
      ++failures;
      error = s.error_message();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) {
    return ms.empty() ? 0 : ms[static_cast<size_t>(q * (ms.size() - 1))];
  };
  std::printf("probes %zu failures %d p50_ms %.2f p99_ms %.2f max_ms %.2f %s\n",
              ms.size(), failures, at(0.5), at(0.99),
              ms.empty() ? 0 : ms.back(), error.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "watchers" && argc == 5)
    return Watchers(argv[2], argv[3], std::atoi(argv[4]));
  if (mode == "probe" && argc == 4) return Probe(argv[2], std::atoi(argv[3]));
  if (mode == "flood" && argc == 6) {
    return Flood(argv[2], std::atoi(argv[3]), std::atoi(argv[4]),
                 std::atoi(argv[5]));
  }
  std::fprintf(stderr,
               "usage: rpc_load watchers TARGET JOB N | flood TARGET CLIENTS "
               "SUBMITS INTERVAL_MS | probe TARGET PID\n");
  return 2;
}
