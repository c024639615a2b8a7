// Serves a prometheus::Registry at GET /metrics over HTTP/1.1, one request
// per connection, on a thread of its own.
//
// Why not prometheus-cpp's pull Exposer: it runs on CivetWeb, whose Debian
// build creates every thread with a fixed 100 KiB stack, and glibc carves a
// thread's static TLS out of that stack. glog (30 KiB of TLS) and LibTorch
// (26 KiB) leave too little, and the first scrape overflows the stack
// (SIGSEGV in mg_printf). This server uses threads of the default size and
// prometheus-cpp's own TextSerializer.
//
// Requests are served one at a time with an I/O timeout per connection: a
// scrape takes microseconds, and one slow client can delay the others by at
// most the timeout.
//
// Thread safety: Start() and the destructor are called from one thread; the
// registry is read concurrently with its updates (prometheus-cpp allows it).
#ifndef STRONGHOLD_SERVER_METRICS_HTTP_SERVER_H_
#define STRONGHOLD_SERVER_METRICS_HTTP_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prometheus/collectable.h"

namespace stronghold::server {

struct MetricsHttpServerOptions {
  // "host:port", "[v6addr]:port", or ":port" for every interface. Port 0
  // picks a free port (see port()). Required.
  std::string listen;
  // Longest wait for a client to send its request or take the response.
  absl::Duration io_timeout = absl::Seconds(10);
};

class MetricsHttpServer {
 public:
  // Binds and listens (errors name the address), then serves `metrics`,
  // which must outlive the server.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const MetricsHttpServerOptions& options,
      std::shared_ptr<prometheus::Collectable> metrics);
  ~MetricsHttpServer();  // stops serving and joins the thread
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The bound port (the chosen one when listening on port 0).
  int port() const { return port_; }

 private:
  MetricsHttpServer(const MetricsHttpServerOptions& options,
                    std::shared_ptr<prometheus::Collectable> metrics,
                    int listen_fd, int stop_fd, int port);
  void Loop();
  void Serve(int fd);

  // Constant after construction.
  const MetricsHttpServerOptions options_;
  const std::shared_ptr<prometheus::Collectable> metrics_;
  const int listen_fd_;
  const int stop_fd_;  // eventfd: written once by the destructor
  const int port_;
  std::thread thread_;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_METRICS_HTTP_SERVER_H_
