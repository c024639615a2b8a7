// The token file: hashed tokens mapped to principals; malformed lines are
// refused naming the line.
#include "server/auth/token_file.h"

#include "core/util/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Line(const std::string& token, const std::string& principal) {
  return core::Sha256Hex(token) + " " + principal + "\n";
}

TEST(TokenFileTest, FindsThePrincipalOfEachToken) {
  absl::StatusOr<TokenTable> table =
      TokenTable::Parse("# tokens of the lab\n\n" + Line("s3cret-a", "alice") +
                            Line("s3cret-b", "CN=bob, O=Lab"),
                        "tokens");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 2);
  EXPECT_EQ(table->Find("s3cret-a"), "alice");
  EXPECT_EQ(table->Find("s3cret-b"), "CN=bob, O=Lab");
  EXPECT_EQ(table->Find("s3cret-c"), std::nullopt);
  EXPECT_EQ(table->Find(""), std::nullopt);
  // The file holds digests: the digest itself is not a token.
  EXPECT_EQ(table->Find(core::Sha256Hex("s3cret-a")), std::nullopt);
}

TEST(TokenFileTest, UpperCaseDigestsAndCrlfAreAccepted) {
  std::string digest = core::Sha256Hex("t");
  for (char& c : digest) c = static_cast<char>(toupper(c));
  absl::StatusOr<TokenTable> table =
      TokenTable::Parse(digest + "\tcarol\r\n", "tokens");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->Find("t"), "carol");
}

TEST(TokenFileTest, MalformedLinesAreRefusedNamingTheLine) {
  const std::string good = Line("a", "alice");
  const std::pair<std::string, std::string> cases[] = {
      {good + "deadbeef bob\n",
       "tokens line 2: the digest must be 64 hex digits"},
      {good + std::string(64, 'g') + " bob\n",
       "tokens line 2: the digest must be 64 hex"},
      {good + core::Sha256Hex("b") + "\n", "tokens line 2: no principal"},
      {good + core::Sha256Hex("b") + " bob\x1b]0;x\n",
       "tokens line 2: the principal must be printable ASCII"},
      {good + core::Sha256Hex("b") + " " + std::string(257, 'b') + "\n",
       "tokens line 2: the principal must be printable ASCII of at most 256 "
       "bytes"},
      {good + core::Sha256Hex("b") + " uid:0\n",
       "tokens line 2: the principal \"uid:0\" is reserved"},
      {good + core::Sha256Hex("b") + " insecure-loopback\n",
       "line 2: the principal \"insecure-loopback\" is reserved"},
      {good + "\n" + Line("a", "mallory"),
       "tokens line 3: the digest is already on line 1"},
      {"# nothing\n\n", "tokens: no token entries"},
  };
  for (const auto& [text, expected] : cases) {
    absl::StatusOr<TokenTable> table = TokenTable::Parse(text, "tokens");
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument)
        << text;
    EXPECT_THAT(table.status().message(), HasSubstr(expected));
    // The refusal never repeats a digest (nor anything else of the line).
    EXPECT_THAT(table.status().message(), Not(HasSubstr(core::Sha256Hex("b"))));
  }
}

}  // namespace
}  // namespace stronghold::server
