#include "server/metrics_http_server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
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

bool SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void Reply(int fd, absl::string_view status, absl::string_view content_type,
           absl::string_view body, bool head) {
  SendAll(fd, absl::StrCat("HTTP/1.1 ", status, "\r\nContent-Type: ",
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
      bind(fd, found->ai_addr, found->ai_addrlen) == 0 && listen(fd, 16) == 0;
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
  const uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof(one)) != sizeof(one))
    PLOG(ERROR) << "eventfd write";
  thread_.join();
  close(listen_fd_);
  close(stop_fd_);
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
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // the client gave up, or out of descriptors for now
    Serve(fd);
    close(fd);
  }
}

void MetricsHttpServer::Serve(int fd) {
  const timeval timeout = absl::ToTimeval(options_.io_timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  // The request line and headers; a body, if any, is ignored.
  std::string request;
  char buf[4096];
  while (request.find("\r\n\r\n") == std::string::npos &&
         request.size() < kMaxRequestBytes) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    request.append(buf, static_cast<size_t>(n));
  }
  const std::vector<absl::string_view> line = absl::StrSplit(
      absl::string_view(request).substr(0, request.find("\r\n")), ' ');
  if (line.size() != 3) {
    Reply(fd, "400 Bad Request", "text/plain", "bad request line\n", false);
    return;
  }
  const bool head = line[0] == "HEAD";
  if (line[0] != "GET" && !head) {
    Reply(fd, "405 Method Not Allowed", "text/plain", "only GET and HEAD\n",
          false);
    return;
  }
  const absl::string_view path = line[1].substr(0, line[1].find('?'));
  if (path != "/metrics") {
    Reply(fd, "404 Not Found", "text/plain",
          "strongholdd serves its metrics at /metrics\n", head);
    return;
  }
  const std::string body =
      prometheus::TextSerializer().Serialize(metrics_->Collect());
  Reply(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body, head);
}

}  // namespace stronghold::server
