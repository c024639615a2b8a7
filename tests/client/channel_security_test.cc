// strongholdctl's TLS and token flags, and what it says when the daemon
// refuses a connection or a credential. Certificates are made by
// tests/integration/make_test_pki.sh.
#include "client/channel_security.h"

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::client {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

class ChannelSecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/pki"));
    const std::string script =
        absl::StrCat(std::getenv("TEST_SRCDIR"),
                     "/stronghold/tests/integration/make_test_pki.sh ", *dir_);
    ASSERT_EQ(std::system(script.c_str()), 0)
        << "openssl (Debian package openssl) is needed";
    std::ofstream(File("token")) << "  s3cret-token \nsecond line ignored\n";
    std::ofstream(File("bad-token")) << "two words\n";
  }
  static std::string File(const std::string& name) {
    return *dir_ + "/" + name;
  }
  static std::string* dir_;
};
std::string* ChannelSecurityTest::dir_ = nullptr;

constexpr char kTcp[] = "node1.example:7070";

TEST_F(ChannelSecurityTest, UnixSocketsArePlainAndRefuseTlsFlags) {
  absl::StatusOr<ChannelSecurity> s =
      ResolveChannelSecurity({.token_env = "ignored"}, "unix:/run/x.sock");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->tls);
  EXPECT_TRUE(s->bearer_token.empty());
  s = ResolveChannelSecurity({.tls_ca = File("ca.crt")}, "unix:/run/x.sock");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("apply to TCP addresses"));
}

TEST_F(ChannelSecurityTest, TcpWithoutFlagsIsPlainAndAnyFlagTurnsTlsOn) {
  EXPECT_FALSE(ResolveChannelSecurity({}, kTcp)->tls);
  absl::StatusOr<ChannelSecurity> s =
      ResolveChannelSecurity({.tls_ca = File("ca.crt")}, kTcp);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->tls);
  EXPECT_THAT(s->root_certs_pem, HasSubstr("BEGIN CERTIFICATE"));
  s = ResolveChannelSecurity({.tls_ca = File("ca.crt"),
                              .tls_cert = File("alice.crt"),
                              .tls_key = File("alice.key")},
                             kTcp);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->private_key_pem, HasSubstr("PRIVATE KEY"));
}

TEST_F(ChannelSecurityTest, TokenFromFileOrEnvironment) {
  absl::StatusOr<ChannelSecurity> s =
      ResolveChannelSecurity({.token_env = "env-token"}, kTcp);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->tls) << "a token is only sent over TLS";
  EXPECT_EQ(s->bearer_token, "env-token");
  s = ResolveChannelSecurity(
      {.token_file = File("token"), .token_env = "env-token"}, kTcp);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->bearer_token, "s3cret-token")
      << "the flag wins; first line, trimmed";
  s = ResolveChannelSecurity({.token_file = File("bad-token")}, kTcp);
  EXPECT_THAT(s.status().message(),
              AllOf(HasSubstr("--token-file: " + File("bad-token")),
                    HasSubstr("one word"), Not(HasSubstr("two words"))));
  EXPECT_THAT(
      ResolveChannelSecurity({.token_env = "a\x1b"}, kTcp).status().message(),
      HasSubstr("$STRONGHOLD_TOKEN"));
  EXPECT_THAT(ResolveChannelSecurity({.token_file = File("missing")}, kTcp)
                  .status()
                  .message(),
              HasSubstr("--token-file: "));
}

TEST_F(ChannelSecurityTest, BadCertificateFilesAreNamed) {
  const std::pair<SecurityFlags, std::string> cases[] = {
      {{.tls_ca = File("garbage.pem")},
       absl::StrCat("--tls-ca: ", File("garbage.pem"),
                    ": not a PEM certificate")},
      {{.tls_ca = File("missing.pem")}, "--tls-ca: "},
      {{.tls_cert = File("alice.crt")}, "--tls-cert and --tls-key go together"},
      {{.tls_key = File("alice.key")}, "--tls-cert and --tls-key go together"},
      {{.tls_cert = File("alice.key"), .tls_key = File("alice.key")},
       "--tls-cert: "},
      {{.tls_cert = File("alice.crt"), .tls_key = File("alice.crt")},
       "--tls-key: "},
      {{.tls_cert = File("alice.crt"), .tls_key = File("other.key")},
       "does not belong to the certificate"},
  };
  for (const auto& [flags, expected] : cases) {
    absl::StatusOr<ChannelSecurity> s = ResolveChannelSecurity(flags, kTcp);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument)
        << expected;
    EXPECT_THAT(s.status().message(), HasSubstr(expected));
  }
}

TEST(SecurityAdviceTest, ExplainsRefusals) {
  const ChannelSecurity none{.tls = true};
  const ChannelSecurity token{.tls = true, .bearer_token = "t"};
  const ChannelSecurity cert{
      .tls = true, .cert_chain_pem = "c", .private_key_pem = "k"};
  auto advice = [](const absl::Status& s, const ChannelSecurity& security,
                   const std::string& address = kTcp) {
    return SecurityAdvice(s, address, security).value_or("(none)");
  };
  const absl::Status refused_token = absl::UnauthenticatedError(
      "the bearer token is not one the daemon accepts");
  EXPECT_THAT(
      advice(refused_token, token),
      AllOf(HasSubstr("did not accept your credentials (the bearer token"),
            HasSubstr("check the token")));
  EXPECT_THAT(
      advice(absl::UnauthenticatedError("requires"), none),
      HasSubstr(
          "give a client certificate (--tls-cert and --tls-key) or a token"));

  const absl::Status wrong_host = absl::UnavailableError(
      "failed to connect to all addresses; last error: UNKNOWN: "
      "ipv4:10.0.0.1:7070: Peer name 10.0.0.1 is not in peer certificate");
  EXPECT_THAT(
      advice(wrong_host, none),
      HasSubstr("certificate is not issued for \"10.0.0.1\", the host in"));

  const absl::Status closed = absl::UnavailableError(
      "failed to connect to all addresses; last error: UNAVAILABLE: "
      "ipv4:127.0.0.1:7070: Socket closed");
  EXPECT_THAT(advice(closed, cert),
              AllOf(HasSubstr("refused the connection"),
                    HasSubstr("does not trust your client certificate"),
                    HasSubstr("its --tls_client_ca")));
  EXPECT_THAT(advice(closed, none),
              HasSubstr("it requires a client certificate"));
  EXPECT_THAT(advice(closed, ChannelSecurity{}),
              HasSubstr("if it serves TLS, give its CA"));

  const absl::Status denied_socket = absl::UnavailableError(
      "failed to connect to all addresses; last error: UNKNOWN: "
      "unix:/run/s.sock: Permission denied");
  EXPECT_THAT(advice(denied_socket, ChannelSecurity{}, "unix:/run/s.sock"),
              HasSubstr("you may not open the socket /run/s.sock"));

  EXPECT_EQ(
      SecurityAdvice(absl::NotFoundError("job jobs/9 not found"), kTcp, token),
      std::nullopt);
  EXPECT_EQ(
      SecurityAdvice(absl::PermissionDeniedError("uid:1 may not cancel jobs/1"),
                     kTcp, token),
      std::nullopt);
  EXPECT_EQ(
      SecurityAdvice(absl::UnavailableError("connection refused"), kTcp, none),
      std::nullopt);
}

}  // namespace
}  // namespace stronghold::client
