#include "server/metrics_http_server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"
#include "prometheus/text_serializer.h"

namespace stronghold::server {

namespace {

constexpr size_t kMaxRequestBytes = 16 << 10;

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Splits "host:port", "[v6]:port" or ":port" (host "" = every interface).
absl::Status SplitHostPort(const std::string& listen, std::string* host,
                           std::string* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", listen, "\" is not host:port, [v6addr]:port or :port"));
  }
  *host = listen.substr(0, colon);
  *port = listen.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  int number = 0;
  if (!absl::SimpleAtoi(*port, &number) || number < 0 || number > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad port in \"", listen, "\""));
  }
  return absl::OkStatus();
}

// Waits until `fd` is ready for `events`; false once `deadline` passes or
// the server is stopping (`stop_fd` readable).
bool WaitReady(int fd, short events, int stop_fd, absl::Time deadline) {
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    const int64_t ms =
        std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 60'000);
    if (poll(fds, 2, static_cast<int>(ms)) < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (fds[1].revents != 0) return false;
    if (fds[0].revents != 0)
      return true;  // ready, or an error the next call reports
  }
}

// One connection's non-blocking socket, every wait bounded by the request's
// deadline.
class ClientSocket {
 public:
  ClientSocket(int fd, int stop_fd, absl::Time deadline)
      : fd_(fd), stop_fd_(stop_fd), deadline_(deadline) {}

  bool SendAll(absl::string_view data) {
    while (!data.empty()) {
      const ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!WaitReady(fd_, POLLOUT, stop_fd_, deadline_)) return false;
        continue;
      }
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Up to `size` bytes; 0 at the end of the stream, the deadline or an error.
  size_t Receive(char* buf, size_t size) {
    while (true) {
      const ssize_t n = recv(fd_, buf, size, 0);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return 0;
      if (!WaitReady(fd_, POLLIN, stop_fd_, deadline_)) return 0;
    }
  }

 private:
  const int fd_;
  const int stop_fd_;
  const absl::Time deadline_;
};

void Reply(ClientSocket& c, absl::string_view status,
           absl::string_view content_type, absl::string_view body, bool head) {
  c.SendAll(absl::StrCat("HTTP/1.1 ", status, "\r\nContent-Type: ",
                         content_type, "\r\nContent-Length: ", body.size(),
                         "\r\nConnection: close\r\n\r\n", head ? "" : body));
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const MetricsHttpServerOptions& options,
    std::shared_ptr<prometheus::Collectable> metrics) {
  std::string host, port;
  if (absl::Status s = SplitHostPort(options.listen, &host, &port); !s.ok())
    return s;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int r = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(),
                          &hints, &found);
      r != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot resolve \"", options.listen, "\": ", gai_strerror(r)));
  }
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(found);
    return Errno("socket");
  }
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const bool bound =
      bind(fd, found->ai_addr, found->ai_addrlen) == 0 && listen(fd, 64) == 0;
  freeaddrinfo(found);
  if (!bound) {
    const absl::Status s =
        Errno(absl::StrCat("cannot listen on ", options.listen));
    close(fd);
    return s;
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int bound_port =
      ntohs(addr.ss_family == AF_INET6
                ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  const int stop_fd = eventfd(0, EFD_CLOEXEC);
  if (stop_fd < 0) {
    const absl::Status s = Errno("eventfd");
    close(fd);
    return s;
  }
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(
      options, std::move(metrics), fd, stop_fd, bound_port));
}

MetricsHttpServer::MetricsHttpServer(
    const MetricsHttpServerOptions& options,
    std::shared_ptr<prometheus::Collectable> metrics, int listen_fd,
    int stop_fd, int port)
    : options_(options),
      metrics_(std::move(metrics)),
      listen_fd_(listen_fd),
      stop_fd_(stop_fd),
      port_(port),
      thread_([this] { Loop(); }) {}

MetricsHttpServer::~MetricsHttpServer() {
  // The eventfd stays readable: every poll below returns.
  const uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof(one)) != sizeof(one))
    PLOG(ERROR) << "eventfd write";
  thread_.join();
  std::list<Connection> connections;
  {
    absl::MutexLock lock(&mu_);
    connections.splice(connections.end(), connections_);  // the nodes stay put
  }
  for (Connection& c : connections) c.thread.join();
  close(listen_fd_);
  close(stop_fd_);
}

int MetricsHttpServer::ReapLocked() {
  int open = 0;
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->done) {
      it->thread.join();  // it set `done` under mu_: only its close is left
      it = connections_.erase(it);
    } else {
      ++open;
      ++it;
    }
  }
  return open;
}

void MetricsHttpServer::Loop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      PLOG(ERROR) << "metrics server: poll";
      return;
    }
    if (fds[1].revents != 0) return;
    const int fd =
        accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;  // the client gave up, or out of descriptors for now
    const absl::Time deadline = absl::Now() + options_.request_deadline;
    absl::MutexLock lock(&mu_);
    if (ReapLocked() >= options_.max_connections) {
      close(fd);  // full: refused at once rather than queued behind the others
      continue;
    }
    Connection* c = &connections_.emplace_back();
    try {
      c->thread = std::thread([this, fd, deadline, c] {
        Serve(fd, deadline);
        // Done before the close: a client that sees its connection end
        // (and connects again at once) must find it no longer counted.
        // Reaping joins this thread, so it waits for the close.
        {
          absl::MutexLock done_lock(&mu_);
          c->done = true;
        }
        close(fd);
      });
    } catch (const std::system_error& e) {
      LOG(WARNING) << "metrics server: cannot start a thread: " << e.what();
      connections_.pop_back();
      close(fd);
    }
  }
}

void MetricsHttpServer::Serve(int fd, absl::Time deadline) {
  ClientSocket c(fd, stop_fd_, deadline);
  // The request line and headers; a body, if any, is ignored.
  std::string request;
  char buf[4096];
  while (request.find("\r\n\r\n") == std::string::npos &&
         request.size() < kMaxRequestBytes) {
    const size_t n = c.Receive(buf, sizeof(buf));
    if (n == 0) return;
    request.append(buf, n);
  }
  const std::vector<absl::string_view> line = absl::StrSplit(
      absl::string_view(request).substr(0, request.find("\r\n")), ' ');
  if (line.size() != 3) {
    Reply(c, "400 Bad Request", "text/plain", "bad request line\n", false);
    return;
  }
  const bool head = line[0] == "HEAD";
  if (line[0] != "GET" && !head) {
    Reply(c, "405 Method Not Allowed", "text/plain", "only GET and HEAD\n",
          false);
    return;
  }
  const absl::string_view path = line[1].substr(0, line[1].find('?'));
  if (path != "/metrics") {
    Reply(c, "404 Not Found", "text/plain",
          "strongholdd serves its metrics at /metrics\n", head);
    return;
  }
  const std::string body =
      prometheus::TextSerializer().Serialize(metrics_->Collect());
  Reply(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body, head);
}

}  // namespace stronghold::server
