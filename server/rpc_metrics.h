// RPC metrics through a gRPC server interceptor, so that every method of
// every service (ours, health, reflection) is counted without the service
// code knowing: stronghold_rpc_requests_total{service,method,code} and
// stronghold_rpc_duration_seconds{service,method}. The duration of a
// server-streaming RPC (WatchJob, DownloadCheckpoint) is the whole stream.
//
// Thread safety: the factory is called concurrently by gRPC's threads; the
// prometheus families it records into are thread-safe.
#ifndef STRONGHOLD_SERVER_RPC_METRICS_H_
#define STRONGHOLD_SERVER_RPC_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace stronghold::server {

class RpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // Registers the RPC families in `registry`, which must outlive the factory.
  explicit RpcMetricsInterceptorFactory(prometheus::Registry& registry);

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_RPC_METRICS_H_
