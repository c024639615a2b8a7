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
// Each connection is served on a thread of its own, so a slow client delays
// no one else, within two bounds: a whole-request deadline (from accept to
// the response's last byte; a client that sends one byte and waits, or
// never reads the response, is closed when it passes) and a cap on the
// connections served at once, beyond which new ones are closed at once (a
// scraper retries; nothing queues behind a flood). A scrape itself takes
// microseconds.
//
// Thread safety: Start() and the destructor are called from one thread; the
// registry is read concurrently with its updates (prometheus-cpp allows it).
#ifndef STRONGHOLD_SERVER_METRICS_HTTP_SERVER_H_
#define STRONGHOLD_SERVER_METRICS_HTTP_SERVER_H_

#include <list>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/collectable.h"

namespace stronghold::server {

struct MetricsHttpServerOptions {
  // "host:port", "[v6addr]:port", or ":port" for every interface. Port 0
  // picks a free port (see port()). Required.
  std::string listen;
  // Whole-request deadline: a connection that has not sent its request and
  // taken the whole response this long after it was accepted is closed.
  absl::Duration request_deadline = absl::Seconds(5);
  // Connections served at once (>= 1); one more is closed as soon as it is
  // accepted. Each holds a thread until it ends or its deadline passes.
  int max_connections = 16;
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
  struct Connection {
    std::thread thread;
    bool done = false;  // guarded by mu_: the thread has finished serving
  };

  void Loop();
  // Joins the threads of connections that ended; returns how many remain.
  int ReapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Serve(int fd, absl::Time deadline);

  // Constant after construction.
  const MetricsHttpServerOptions options_;
  const std::shared_ptr<prometheus::Collectable> metrics_;
  const int listen_fd_;
  const int stop_fd_;  // eventfd: written once by the destructor, never read
  const int port_;

  absl::Mutex mu_;
  std::list<Connection> connections_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;  // accepts; started last
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_METRICS_HTTP_SERVER_H_
