#include "server/rpc_metrics.h"

#include <chrono>
#include <string>

#include "absl/status/status.h"

namespace stronghold::server {

namespace {

using grpc::experimental::InterceptionHookPoints;

const prometheus::Histogram::BucketBoundaries kRpcBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5,    1,     2.5,    5,     10,   30,    60,   300};

// Observes one RPC: its start when gRPC creates it, its code when the status
// goes out. An RPC that ends without sending a status (the client went away
// first) counts as CANCELLED when gRPC destroys the interceptor.
class RpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(const char* method,
                        prometheus::Family<prometheus::Counter>& requests,
                        prometheus::Family<prometheus::Histogram>& duration)
      : requests_(requests),
        duration_(duration),
        start_(std::chrono::steady_clock::now()) {
    // "/package.Service/Method"
    const std::string full = method != nullptr ? method : "";
    const size_t slash = full.rfind('/');
    if (slash == std::string::npos || slash == 0) {
      method_ = full;
    } else {
      service_ = full.substr(1, slash - 1);
      method_ = full.substr(slash + 1);
    }
  }

  ~RpcMetricsInterceptor() override {
    if (!recorded_) Record(grpc::StatusCode::CANCELLED);
  }

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      Record(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void Record(grpc::StatusCode code) {
    recorded_ = true;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
            .count();
    // absl and gRPC share the canonical code numbering and names.
    const std::string code_name =
        absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
    requests_
        .Add({{"service", service_}, {"method", method_}, {"code", code_name}})
        .Increment();
    duration_.Add({{"service", service_}, {"method", method_}}, kRpcBuckets)
        .Observe(seconds);
  }

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  const std::chrono::steady_clock::time_point start_;
  std::string service_;
  std::string method_;
  bool recorded_ = false;
};

}  // namespace

RpcMetricsInterceptorFactory::RpcMetricsInterceptorFactory(
    prometheus::Registry& registry)
    : requests_(
          prometheus::BuildCounter()
              .Name("stronghold_rpc_requests_total")
              .Help("RPCs handled, by service, method and gRPC status code")
              .Register(registry)),
      duration_(prometheus::BuildHistogram()
                    .Name("stronghold_rpc_duration_seconds")
                    .Help("RPC latency from arrival to status (whole stream "
                          "for streaming RPCs)")
                    .Register(registry)) {}

grpc::experimental::Interceptor*
RpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RpcMetricsInterceptor(info->method(), requests_, duration_);
}

}  // namespace stronghold::server
