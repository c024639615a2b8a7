#include "server/metrics_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace stronghold::server {
namespace {

// Sends `request` to 127.0.0.1:port and returns the whole response.
std::string Fetch(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
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
                   "test_things_total counter\n"
                   "test_things_total 3\n"),
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

}  // namespace
}  // namespace stronghold::server
