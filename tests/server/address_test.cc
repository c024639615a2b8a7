#include "server/address.h"

#include <string>

#include "gtest/gtest.h"

namespace stronghold::server {
namespace {

// The unix forms strongholdctl --daemon accepts are accepted here too.
TEST(SocketPathFromFlagTest, AcceptsTheClientsUnixForms) {
  EXPECT_EQ(*SocketPathFromFlag("/run/x.sock"), "/run/x.sock");
  EXPECT_EQ(*SocketPathFromFlag("unix:/run/x.sock"), "/run/x.sock");
  EXPECT_EQ(*SocketPathFromFlag("unix:///run/x.sock"), "/run/x.sock");
  EXPECT_EQ(*SocketPathFromFlag("unix:relative/x.sock"), "relative/x.sock");
  EXPECT_EQ(*SocketPathFromFlag("./x.sock"), "./x.sock");
  EXPECT_EQ(*SocketPathFromFlag("x.sock"), "x.sock");
  EXPECT_EQ(*SocketPathFromFlag("./a:b.sock"), "./a:b.sock");
  EXPECT_EQ(*SocketPathFromFlag("/tmp/a:b.sock"), "/tmp/a:b.sock");
}

TEST(SocketPathFromFlagTest, RefusesWhatIsNotAPath) {
  for (const std::string text :
       {"dns:localhost", "unix-abstract:x", "localhost:7070",
        "ipv4:127.0.0.1:1", "a:b.sock", "unix:", "unix://", ""}) {
    absl::StatusOr<std::string> path = SocketPathFromFlag(text);
    ASSERT_FALSE(path.ok()) << text << " -> " << *path;
    EXPECT_EQ(path.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(path.status().message().find("--socket"), std::string::npos)
        << path.status();
  }
}

TEST(SocketPathFromFlagTest, RefusesPathsTooLongForAUnixSocket) {
  EXPECT_TRUE(SocketPathFromFlag("/" + std::string(106, 'a')).ok());
  absl::StatusOr<std::string> path =
      SocketPathFromFlag("unix:/" + std::string(107, 'a'));
  ASSERT_FALSE(path.ok());
  EXPECT_NE(path.status().message().find("107"), std::string::npos)
      << path.status();
}

}  // namespace
}  // namespace stronghold::server
