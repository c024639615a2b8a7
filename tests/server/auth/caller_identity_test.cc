// How a TCP caller is identified: a token where tokens are accepted, else
// a verified certificate's subject; refused otherwise.
#include "server/auth/caller_identity.h"

#include "core/util/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::server {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<const TokenTable> Tokens() {
  absl::StatusOr<TokenTable> table =
      TokenTable::Parse(core::Sha256Hex("good-token") + " robot\n", "tokens");
  EXPECT_TRUE(table.ok()) << table.status();
  return std::make_shared<const TokenTable>(*std::move(table));
}

absl::StatusCode Code(const absl::StatusOr<Principal>& p) {
  return p.status().code();
}

TEST(IdentifyTcpCallerTest, TokenIdentifiesTheCaller) {
  const TcpAuthPolicy policy{.tokens = Tokens()};
  absl::StatusOr<Principal> p =
      IdentifyTcpCaller(policy, {.authorization = {"Bearer good-token"}});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "robot");
  EXPECT_EQ(p->kind, Principal::Kind::kToken);
  EXPECT_FALSE(p->admin);
  EXPECT_EQ(p->uid, -1);
  // The scheme is case-insensitive (RFC 7235).
  EXPECT_TRUE(
      IdentifyTcpCaller(policy, {.authorization = {"bearer good-token"}}).ok());
}

TEST(IdentifyTcpCallerTest, BadTokensAreRefused) {
  const TcpAuthPolicy policy{.client_certificates = true, .tokens = Tokens()};
  const std::vector<std::vector<std::string>> refused = {
      {"Bearer wrong-token"},
      {"Bearer "},
      {"Basic Z29vZC10b2tlbg=="},
      {"good-token"},
      {"Bearer good-token", "Bearer good-token"}};
  for (const auto& authorization : refused) {
    // A valid certificate does not rescue a wrong token.
    EXPECT_EQ(Code(IdentifyTcpCaller(policy, {.authorization = authorization,
                                              .verified_subject = "CN=alice"})),
              absl::StatusCode::kUnauthenticated)
        << authorization.front();
  }
  EXPECT_THAT(
      IdentifyTcpCaller(policy, {.authorization = {"Bearer wrong-token"}})
          .status()
          .message(),
      HasSubstr("the bearer token is not one the daemon accepts"));
}

TEST(IdentifyTcpCallerTest, VerifiedCertificateSubjectIsThePrincipal) {
  const TcpAuthPolicy policy{.client_certificates = true};
  absl::StatusOr<Principal> p =
      IdentifyTcpCaller(policy, {.verified_subject = "CN=alice,O=Lab"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "CN=alice,O=Lab");
  EXPECT_EQ(p->kind, Principal::Kind::kCertificate);
  // Tokens not accepted: an authorization header is ignored, the certificate
  // counts.
  p = IdentifyTcpCaller(
      policy, {.authorization = {"Bearer x"}, .verified_subject = "CN=alice"});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name, "CN=alice");
}

TEST(IdentifyTcpCallerTest, NothingPresentedIsRefusedSayingWhatIsNeeded) {
  EXPECT_THAT(
      IdentifyTcpCaller({.client_certificates = true, .tokens = Tokens()}, {})
          .status()
          .message(),
      HasSubstr("requires a client certificate signed by a CA it trusts or a "
                "bearer token"));
  EXPECT_THAT(IdentifyTcpCaller({.tokens = Tokens()}, {}).status().message(),
              HasSubstr("requires a bearer token"));
  // Certificates not accepted: a subject alone is not enough.
  EXPECT_EQ(Code(IdentifyTcpCaller({.tokens = Tokens()},
                                   {.verified_subject = "CN=alice"})),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Code(IdentifyTcpCaller({}, {.verified_subject = "CN=alice"})),
            absl::StatusCode::kUnauthenticated);
}

TEST(IdentifyTcpCallerTest, InsecureLoopbackIsOnePrincipal) {
  absl::StatusOr<Principal> p = IdentifyTcpCaller(
      {.insecure_loopback = true}, {.authorization = {"Bearer whoever"}});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name, "insecure-loopback");
  EXPECT_EQ(p->kind, Principal::Kind::kInsecureLoopback);
  EXPECT_FALSE(p->admin);
}

}  // namespace
}  // namespace stronghold::server
