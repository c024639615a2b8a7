#include "server/systemd_notifier.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <string>

#include "gtest/gtest.h"

namespace stronghold::server {
namespace {

// A datagram socket standing in for systemd's $NOTIFY_SOCKET.
class SystemdNotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // An abstract socket ("@name"): no path length limit, nothing to clean up.
    name_ = "stronghold-notify-test-" + std::to_string(getpid());
    fd_ = socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    name_.copy(addr.sun_path + 1, name_.size());
    ASSERT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 +
                                          name_.size())),
              0);
    setenv("NOTIFY_SOCKET", ("@" + name_).c_str(), 1);
  }
  void TearDown() override {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    close(fd_);
  }

  // The next notification, or "" after 5 s.
  std::string Next() {
    pollfd p = {fd_, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return "";
    char buf[512];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

  std::string name_;
  int fd_ = -1;
};

TEST_F(SystemdNotifierTest, ReadyThenStopping) {
  SystemdNotifier notifier;
  notifier.Ready("serving");
  EXPECT_EQ(Next(), "READY=1\nSTATUS=serving");
  notifier.Stopping("bye");
  EXPECT_EQ(Next(), "STOPPING=1\nSTATUS=bye");
}

TEST_F(SystemdNotifierTest, NoWatchdogUnlessAsked) {
  unsetenv("WATCHDOG_USEC");
  SystemdNotifier notifier;
  EXPECT_EQ(notifier.StartWatchdog([] { return true; }), 0u);
}

TEST_F(SystemdNotifierTest, WatchdogPingsWhileHealthy) {
  setenv("WATCHDOG_USEC", "100000", 1);  // 100 ms: a ping every 50 ms
  SystemdNotifier notifier;
  EXPECT_EQ(notifier.StartWatchdog([] { return true; }), 50000u);
  EXPECT_EQ(Next(), "WATCHDOG=1");
  EXPECT_EQ(Next(), "WATCHDOG=1");
}

TEST_F(SystemdNotifierTest, UnhealthyMeansNoPings) {
  setenv("WATCHDOG_USEC", "100000", 1);
  SystemdNotifier notifier;
  notifier.StartWatchdog([] { return false; });
  pollfd p = {fd_, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 300), 0);
}

TEST(SystemdNotifierNoSocketTest, OutsideSystemdNothingHappens) {
  unsetenv("NOTIFY_SOCKET");
  SystemdNotifier notifier;
  notifier.Ready("x");
  notifier.Stopping("y");
}

}  // namespace
}  // namespace stronghold::server
