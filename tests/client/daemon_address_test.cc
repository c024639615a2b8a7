#include "client/daemon_address.h"

#include "gtest/gtest.h"

namespace stronghold::client {
namespace {

TEST(DaemonAddressTest, DefaultIsSystemSocket) {
  EXPECT_EQ(*ResolveDaemonAddress(std::nullopt, {}),
            "unix:/run/stronghold/strongholdd.sock");
}

TEST(DaemonAddressTest, DefaultUsesXdgRuntimeDir) {
  const AddressEnvironment env{.xdg_runtime_dir = "/run/user/1000"};
  EXPECT_EQ(*ResolveDaemonAddress(std::nullopt, env),
            "unix:/run/user/1000/stronghold/strongholdd.sock");
}

TEST(DaemonAddressTest, EnvVariableBeatsDefault) {
  const AddressEnvironment env{.stronghold_daemon = "/tmp/sh.sock",
                               .xdg_runtime_dir = "/run/user/1000"};
  EXPECT_EQ(*ResolveDaemonAddress(std::nullopt, env), "unix:/tmp/sh.sock");
}

TEST(DaemonAddressTest, FlagBeatsEnvVariable) {
  const AddressEnvironment env{.stronghold_daemon = "/tmp/sh.sock"};
  EXPECT_EQ(*ResolveDaemonAddress("localhost:7070", env), "localhost:7070");
}

TEST(DaemonAddressTest, EmptyFlagIsAnError) {
  absl::StatusOr<std::string> address = ResolveDaemonAddress("", {});
  ASSERT_FALSE(address.ok());
  EXPECT_NE(address.status().message().find("--daemon"), std::string::npos);
}

TEST(DaemonAddressTest, OverlongSocketPathIsAnError) {
  const std::string path = "/tmp/" + std::string(103, 'x');  // 108 bytes
  absl::StatusOr<std::string> address = ResolveDaemonAddress(path, {});
  ASSERT_FALSE(address.ok());
  EXPECT_NE(address.status().message().find("at most 107"), std::string::npos)
      << address.status();
  EXPECT_TRUE(ResolveDaemonAddress(path.substr(1), {}).ok());  // 107 bytes

  const AddressEnvironment env{.xdg_runtime_dir = "/" + std::string(100, 'r')};
  address = ResolveDaemonAddress(std::nullopt, env);
  ASSERT_FALSE(address.ok());
  EXPECT_NE(address.status().message().find("$XDG_RUNTIME_DIR"),
            std::string::npos);
}

TEST(DaemonAddressTest, Normalize) {
  EXPECT_EQ(NormalizeDaemonAddress("/tmp/x.sock"), "unix:/tmp/x.sock");
  EXPECT_EQ(NormalizeDaemonAddress("./x.sock"), "unix:./x.sock");
  EXPECT_EQ(NormalizeDaemonAddress("unix:/tmp/x.sock"), "unix:/tmp/x.sock");
  EXPECT_EQ(NormalizeDaemonAddress("host:5000"), "host:5000");
  EXPECT_EQ(NormalizeDaemonAddress("127.0.0.1:5000"), "127.0.0.1:5000");
  EXPECT_EQ(NormalizeDaemonAddress("[::1]:5000"), "[::1]:5000");
  EXPECT_EQ(NormalizeDaemonAddress("dns:///host:5000"), "dns:///host:5000");
  EXPECT_EQ(NormalizeDaemonAddress("ipv4:10.0.0.1:5000"), "ipv4:10.0.0.1:5000");
}

TEST(DaemonAddressTest, UnixSocketPath) {
  EXPECT_EQ(UnixSocketPath("unix:/tmp/x.sock"), "/tmp/x.sock");
  EXPECT_EQ(UnixSocketPath("unix:///tmp/x.sock"), "/tmp/x.sock");
  EXPECT_EQ(UnixSocketPath("host:5000"), std::nullopt);
}

}  // namespace
}  // namespace stronghold::client
