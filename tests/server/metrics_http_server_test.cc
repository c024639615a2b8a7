#include "server/metrics_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace stronghold::server {
namespace {

// A connected socket to 127.0.0.1:port.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

// Sends `request` to 127.0.0.1:port and returns the whole response.
std::string Fetch(int port, const std::string& request) {
  const int fd = Connect(port);
  EXPECT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
    response.append(buf, static_cast<size_t>(n));
  close(fd);
  return response;
}

class MetricsHttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prometheus::BuildCounter()
        .Name("test_things_total")
        .Help("h")
        .Register(*registry_)
        .Add({})
        .Increment(3);
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
        MetricsHttpServer::Start({.listen = "127.0.0.1:0"}, registry_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
  }

  std::shared_ptr<prometheus::Registry> registry_ =
      std::make_shared<prometheus::Registry>();
  std::unique_ptr<MetricsHttpServer> server_;
};

TEST_F(MetricsHttpServerTest, ServesTheTextFormat) {
  const std::string r =
      Fetch(server_->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4"),
            std::string::npos);
  EXPECT_NE(r.find("\r\n\r\n# HELP test_things_total h\n# TYPE "
                   "test_things_total counter\ntest_things_total 3\n"),
            std::string::npos)
      << r;
}

TEST_F(MetricsHttpServerTest, ServesManyRequestsInTurn) {
  for (int i = 0; i < 20; ++i) {
    EXPECT_NE(Fetch(server_->port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n")
                  .find("test_things_total 3"),
              std::string::npos);
  }
}

TEST_F(MetricsHttpServerTest, HeadHasNoBody) {
  const std::string r =
      Fetch(server_->port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(r.find("test_things_total"), std::string::npos);
}

TEST_F(MetricsHttpServerTest, OtherPathsAndMethodsAreRefused) {
  EXPECT_EQ(
      Fetch(server_->port(), "GET / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0),
      0u);
  EXPECT_EQ(Fetch(server_->port(), "POST /metrics HTTP/1.1\r\n\r\n")
                .rfind("HTTP/1.1 405", 0),
            0u);
  EXPECT_EQ(Fetch(server_->port(), "nonsense\r\n\r\n").rfind("HTTP/1.1 400", 0),
            0u);
}

TEST(MetricsHttpServerStartTest, ReportsBadAddressesAndTakenPorts) {
  auto registry = std::make_shared<prometheus::Registry>();
  EXPECT_FALSE(MetricsHttpServer::Start({.listen = "no-port"}, registry).ok());
  EXPECT_FALSE(
      MetricsHttpServer::Start({.listen = "127.0.0.1:99999"}, registry).ok());
  auto first = MetricsHttpServer::Start({.listen = "127.0.0.1:0"}, registry);
  ASSERT_TRUE(first.ok());
  const std::string taken = "127.0.0.1:" + std::to_string((*first)->port());
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> second =
      MetricsHttpServer::Start({.listen = taken}, registry);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(taken), std::string::npos)
      << second.status();
}

TEST(MetricsHttpServerStartTest, ListensOnIpv6Loopback) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto server = MetricsHttpServer::Start({.listen = "[::1]:0"}, registry);
  if (!server.ok())
    GTEST_SKIP() << "no IPv6 loopback here: " << server.status();
  EXPECT_GT((*server)->port(), 0);
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

// Whether the server closed `fd` within `seconds`, reading whatever came
// (counted in `received`).
bool ClosedWithin(int fd, double seconds, size_t* received = nullptr) {
  const timeval timeout{
      .tv_sec = static_cast<time_t>(seconds),
      .tv_usec = static_cast<suseconds_t>((seconds - int(seconds)) * 1e6)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  char buf[65536];
  const auto start = std::chrono::steady_clock::now();
  while (SecondsSince(start) < seconds) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0 && received != nullptr) *received += static_cast<size_t>(n);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  }
  return false;
}

constexpr char kScrape[] = "GET /metrics HTTP/1.1\r\n\r\n";

// A response larger than the kernel's socket buffers (4 MiB at most on
// Linux), so a client that does not read it keeps the server writing.
class BigMetrics final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily family;
    family.name = "test_big";
    family.help = std::string(kHelpBytes, 'x');
    family.type = prometheus::MetricType::Untyped;
    family.metric.emplace_back().untyped.value = 1;
    return {family};
  }
  static constexpr size_t kHelpBytes = 12 << 20;
};

// Issue 15 item 4: one slow client kept /metrics from everyone else.
class SlowClientTest : public ::testing::Test {
 protected:
  void Start(int max_connections, absl::Duration deadline) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
        MetricsHttpServer::Start({.listen = "127.0.0.1:0",
                                  .request_deadline = deadline,
                                  .max_connections = max_connections},
                                 std::make_shared<BigMetrics>());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    for (int fd : open_) close(fd);
  }
  int Open() { return open_.emplace_back(Connect(server_->port())); }

  std::unique_ptr<MetricsHttpServer> server_;
  std::vector<int> open_;
};

TEST_F(SlowClientTest, OneByteThenSilenceDelaysNoOne) {
  Start(/*max_connections=*/4, absl::Seconds(5));
  const int slow = Open();
  ASSERT_EQ(send(slow, "G", 1, MSG_NOSIGNAL), 1);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NE(Fetch(server_->port(), kScrape).find("test_big 1"),
            std::string::npos);
  EXPECT_LT(SecondsSince(start), 1.0);
}

TEST_F(SlowClientTest, AClientThatNeverReadsDelaysNoOne) {
  Start(/*max_connections=*/4, absl::Seconds(5));
  const int stuck = Open();
  ASSERT_EQ(send(stuck, kScrape, sizeof(kScrape) - 1, MSG_NOSIGNAL),
            sizeof(kScrape) - 1);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_GT(Fetch(server_->port(), kScrape).size(), BigMetrics::kHelpBytes);
  EXPECT_LT(SecondsSince(start), 1.0);
}

TEST_F(SlowClientTest, TheDeadlineClosesAConnectionThatStalls) {
  Start(/*max_connections=*/4, absl::Milliseconds(300));
  const int silent = Open();
  ASSERT_EQ(send(silent, "G", 1, MSG_NOSIGNAL), 1);
  const int stuck = Open();
  ASSERT_EQ(send(stuck, kScrape, sizeof(kScrape) - 1, MSG_NOSIGNAL),
            sizeof(kScrape) - 1);
  usleep(600'000);  // past the deadline without reading a byte
  EXPECT_TRUE(ClosedWithin(silent, 1.0));
  size_t received = 0;
  EXPECT_TRUE(ClosedWithin(stuck, 1.0, &received));
  EXPECT_LT(received,
            BigMetrics::kHelpBytes);  // the rest of the response never came
}

TEST_F(SlowClientTest, ConnectionsPastTheCapAreClosedAtOnce) {
  Start(/*max_connections=*/2, absl::Seconds(2));
  Open();
  Open();
  usleep(100'000);  // both accepted
  const int third = Open();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(ClosedWithin(third, 1.0));
  EXPECT_LT(SecondsSince(start), 0.5);
  // Once the held ones pass their deadline, scrapes are served again.
  usleep(2'200'000);
  EXPECT_NE(Fetch(server_->port(), kScrape).find("test_big 1"),
            std::string::npos);
}

}  // namespace
}  // namespace stronghold::server
