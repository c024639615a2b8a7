// Whole command lines through RunCli, without a daemon: exit codes, usage
// errors and the "daemon unreachable" advice.
#include "client/cli.h"

#include <sstream>
#include <string>
#include <vector>

#include "client/daemon_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::client {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

struct Result {
  int exit_code;
  std::string out;
  std::string err;
};

// A socket path where no daemon listens. Not under TempDir(): Bazel's is
// longer than a Unix socket path may be.
std::string NoDaemon() { return "/nonexistent/strongholdctl-test.sock"; }

Result RunLine(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int exit_code =
      RunCli(args, {.address_env = {.stronghold_daemon = NoDaemon()},
                    .out = &out,
                    .err = &err});
  return {exit_code, out.str(), err.str()};
}

TEST(CliTest, HelpExitsZero) {
  Result result = RunLine({"--help"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.out, HasSubstr("Commands:"));
  for (const char* command : {"submit", "status", "list", "cancel", "watch",
                              "fetch", "plan", "node"}) {
    EXPECT_THAT(result.out, HasSubstr(command));
  }
  result = RunLine({"submit", "--help"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.out, HasSubstr("--gpu-memory-budget SIZE"));
}

TEST(CliTest, NoCommandIsUsageError) {
  Result result = RunLine({});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("Usage:"));
}

TEST(CliTest, UsageErrorsExitTwo) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"frobnicate"}, "unknown command \"frobnicate\""},
      {{"submit", "--layers", "x"}, "--layers"},
      {{"submit", "--bogus", "1"}, "unknown flag --bogus for command submit"},
      {{"plan", "--gpu-memory-budget", "8G"}, "--gpu-memory-budget"},
      {{"status"}, "status takes one argument: JOB, got 0"},
      {{"status", "jobs/"}, "JOB must be a job id"},
      {{"list", "extra"}, "list takes no arguments"},
      {{"fetch", "7"}, "--out DIR"},
      {{"--output", "yaml", "list"}, "--output"},
      {{"list", "--timeout", "soon"}, "--timeout"},
      {{"--daemon", "a", "list", "--daemon", "b"},
       "--daemon given more than once"},
      {{"--daemon", "/" + std::string(120, 'x'), "list"}, "at most 107"},
  };
  for (const auto& [args, message] : cases) {
    Result result = RunLine(args);
    EXPECT_EQ(result.exit_code, 2) << args[0];
    EXPECT_THAT(result.err, HasSubstr(message)) << args[0];
    EXPECT_THAT(result.out, IsEmpty());
  }
}

TEST(CliTest, UnreachableDaemonSaysWhereAndHowToStart) {
  for (const std::vector<std::string> args :
       {std::vector<std::string>{"list"},
        std::vector<std::string>{"--daemon", NoDaemon(), "status", "7"},
        std::vector<std::string>{"node", "--timeout=5"}}) {
    Result result = RunLine(args);
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_THAT(result.err, HasSubstr("strongholdctl: UNAVAILABLE: "));
    EXPECT_THAT(result.err, HasSubstr("unix:" + NoDaemon()));
    EXPECT_THAT(result.err, HasSubstr("strongholdd --socket " + NoDaemon() +
                                      " --state_dir DIR"));
    EXPECT_THAT(result.err, HasSubstr("systemctl start strongholdd"));
  }
}

TEST(CliTest, InterruptedStreamIsNotCalledUnreachable) {
  absl::Status status = absl::UnavailableError("connection reset");
  MarkInterruptedStream(status);
  std::ostringstream err;
  ReportError(status, "unix:/x.sock", err);
  EXPECT_EQ(err.str(),
            "strongholdctl: UNAVAILABLE: lost the connection to strongholdd at "
            "unix:/x.sock (connection reset)\n");
}

TEST(CliTest, ReportErrorUsesCodeName) {
  std::ostringstream err;
  ReportError(absl::NotFoundError("job jobs/9 not found"), "unix:/x", err);
  EXPECT_EQ(err.str(), "strongholdctl: NOT_FOUND: job jobs/9 not found\n");
}

}  // namespace
}  // namespace stronghold::client
