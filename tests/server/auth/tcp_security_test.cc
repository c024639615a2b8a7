// The TCP listener's flags: TLS and client authentication, or plain TCP on
// loopback for tests; every refusal names the flags. Certificates are made
// by tests/integration/make_test_pki.sh (no private key is committed).
#include "server/auth/tcp_security.h"

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "core/util/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

class TcpSecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/pki"));
    const std::string script =
        absl::StrCat("set -e; ", std::getenv("TEST_SRCDIR"),
                     "/stronghold/tests/integration/make_test_pki.sh ", *dir_,
                     "; cd ", *dir_, "; echo ", core::Sha256Hex("t"),
                     " robot > tokens; echo bad line > bad-tokens");
    ASSERT_EQ(std::system(script.c_str()), 0)
        << "openssl (Debian package openssl) is needed";
  }
  static std::string File(const std::string& name) {
    return *dir_ + "/" + name;
  }

  TcpSecurityOptions Tls(const std::string& listen) {
    return {.listen = listen,
            .tls_cert_file = File("server.crt"),
            .tls_key_file = File("server.key")};
  }

  static std::string* dir_;
};
std::string* TcpSecurityTest::dir_ = nullptr;

TEST_F(TcpSecurityTest, NoListenerNoFlags) {
  absl::StatusOr<TcpSecurity> s = SetUpTcpSecurity({});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->credentials, nullptr);
  EXPECT_THAT(SetUpTcpSecurity({.tls_cert_file = File("server.crt")})
                  .status()
                  .message(),
              HasSubstr("--listen is not set"));
  EXPECT_FALSE(SetUpTcpSecurity({.insecure_loopback = true}).ok());
}

TEST_F(TcpSecurityTest,
       NonLoopbackWithoutTlsAndClientAuthIsRefusedNamingTheFlags) {
  for (const char* listen :
       {"0.0.0.0:7070", ":7070", "[::]:7070", "10.1.2.3:7070"}) {
    const absl::Status s = SetUpTcpSecurity({.listen = listen}).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(),
                AllOf(HasSubstr("needs TLS and client authentication"),
                      HasSubstr("--tls_cert"), HasSubstr("--tls_key"),
                      HasSubstr("--tls_client_ca"), HasSubstr("--token_file"),
                      Not(HasSubstr("--insecure_loopback"))));
  }
  // TLS without client authentication is not enough.
  EXPECT_THAT(SetUpTcpSecurity(Tls("0.0.0.0:7070")).status().message(),
              HasSubstr("needs TLS and client authentication"));
  // Client authentication without TLS neither.
  EXPECT_FALSE(
      SetUpTcpSecurity({.listen = "0.0.0.0:7070", .token_file = File("tokens")})
          .ok());
}

TEST_F(TcpSecurityTest, PlainLoopbackNeedsInsecureLoopback) {
  EXPECT_THAT(SetUpTcpSecurity({.listen = "127.0.0.1:7070"}).status().message(),
              HasSubstr("--insecure_loopback"));
  absl::StatusOr<TcpSecurity> s =
      SetUpTcpSecurity({.listen = "[::1]:7070", .insecure_loopback = true});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->policy.insecure_loopback);
  EXPECT_NE(s->credentials, nullptr);
  EXPECT_THAT(
      SetUpTcpSecurity({.listen = "0.0.0.0:7070", .insecure_loopback = true})
          .status()
          .message(),
      HasSubstr("is not a loopback address"));
  TcpSecurityOptions both = Tls("127.0.0.1:7070");
  both.insecure_loopback = true;
  EXPECT_THAT(SetUpTcpSecurity(both).status().message(),
              HasSubstr("cannot be combined"));
}

TEST_F(TcpSecurityTest, ClientCertificatesTokensOrBoth) {
  TcpSecurityOptions mtls = Tls("0.0.0.0:7070");
  mtls.tls_client_ca_file = File("ca.crt");
  absl::StatusOr<TcpSecurity> s = SetUpTcpSecurity(mtls);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->policy.client_certificates);
  EXPECT_EQ(s->policy.tokens, nullptr);
  EXPECT_NE(s->credentials, nullptr);

  TcpSecurityOptions tokens = Tls("0.0.0.0:7070");
  tokens.token_file = File("tokens");
  s = SetUpTcpSecurity(tokens);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->policy.client_certificates);
  ASSERT_NE(s->policy.tokens, nullptr);
  EXPECT_EQ(s->policy.tokens->Find("t"), "robot");

  tokens.tls_client_ca_file = File("ca.crt");
  s = SetUpTcpSecurity(tokens);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->policy.client_certificates);
  EXPECT_NE(s->policy.tokens, nullptr);
}

TEST_F(TcpSecurityTest, BadFilesAreRefusedNamingFlagAndFile) {
  struct Case {
    std::string cert, key, ca, tokens, expected;
  };
  const Case cases[] = {
      {"garbage.pem", "server.key", "ca.crt", "",
       absl::StrCat("--tls_cert: ", File("garbage.pem"),
                    ": not a PEM certificate")},
      {"missing.crt", "server.key", "ca.crt", "", "--tls_cert: "},
      {"server.crt", "server.crt", "ca.crt", "", "--tls_key: "},
      {"server.crt", "other.key", "ca.crt", "",
       "does not belong to the certificate"},
      {"server.crt", "server.key", "garbage.pem", "", "--tls_client_ca: "},
      {"server.crt", "server.key", "", "bad-tokens", "--token_file: "},
  };
  for (const Case& c : cases) {
    const absl::Status s =
        SetUpTcpSecurity({.listen = "0.0.0.0:7070",
                          .tls_cert_file = File(c.cert),
                          .tls_key_file = File(c.key),
                          .tls_client_ca_file = c.ca.empty() ? "" : File(c.ca),
                          .token_file = c.tokens.empty() ? "" : File(c.tokens)})
            .status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.expected;
    EXPECT_THAT(s.message(), HasSubstr(c.expected));
  }
  EXPECT_THAT(SetUpTcpSecurity({.listen = "0.0.0.0:7070",
                                .tls_cert_file = File("server.crt"),
                                .tls_key_file = File("server.key"),
                                .token_file = File("bad-tokens")})
                  .status()
                  .message(),
              HasSubstr("line 1"));
}

TEST(LoopbackAddressTest, TellsLoopbackFromTheRest) {
  for (const char* yes :
       {"127.0.0.1:1", "127.3.4.5:1", "[::1]:1", "localhost:1"}) {
    EXPECT_TRUE(*IsLoopbackAddress(yes)) << yes;
  }
  for (const char* no : {"0.0.0.0:1", ":1", "[::]:1", "10.0.0.1:1",
                         "example.com:1", "[::2]:1"}) {
    EXPECT_FALSE(*IsLoopbackAddress(no)) << no;
  }
  EXPECT_FALSE(IsLoopbackAddress("127.0.0.1").ok());
  EXPECT_FALSE(IsLoopbackAddress("127.0.0.1:").ok());
}

}  // namespace
}  // namespace stronghold::server
