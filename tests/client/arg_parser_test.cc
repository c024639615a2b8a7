#include "client/arg_parser.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::vector<FlagSpec> kFlags = {
    {"out", "DIR", "where"},
    {"seq-len", "N", "length"},
    {"ssd-dir", "DIR", "tier", /*repeatable=*/true},
    {"help", "", "help"},
};

absl::StatusOr<ParsedArgs> Parse(std::vector<std::string> args,
                                 ParseOptions options = {}) {
  return ParseArgs(args, kFlags, options);
}

TEST(ArgParserTest, SpaceAndEqualsForms) {
  absl::StatusOr<ParsedArgs> args =
      Parse({"7", "--out", "/tmp/a", "--seq-len=128"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(args->positional(), ElementsAre("7"));
  EXPECT_EQ(args->Get("out"), "/tmp/a");
  EXPECT_EQ(args->Get("seq-len"), "128");
  EXPECT_FALSE(args->Has("help"));
  EXPECT_EQ(args->Get("ssd-dir"), std::nullopt);
}

TEST(ArgParserTest, UnderscoresReadAsDashes) {
  absl::StatusOr<ParsedArgs> args = Parse({"--seq_len", "64"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->Get("seq-len"), "64");
}

TEST(ArgParserTest, ValueMayStartWithDash) {
  absl::StatusOr<ParsedArgs> args = Parse({"--seq-len", "-5"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->Get("seq-len"), "-5");
}

TEST(ArgParserTest, EqualsFormKeepsEqualsInValue) {
  absl::StatusOr<ParsedArgs> args = Parse({"--out=a=b"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->Get("out"), "a=b");
}

TEST(ArgParserTest, RepeatableFlagKeepsOrder) {
  absl::StatusOr<ParsedArgs> args =
      Parse({"--ssd-dir", "/a", "--ssd-dir=/b", "--ssd-dir", "/c"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(args->GetAll("ssd-dir"), ElementsAre("/a", "/b", "/c"));
}

TEST(ArgParserTest, SwitchesAndShortHelp) {
  absl::StatusOr<ParsedArgs> args = Parse({"-h"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->Has("help"));
}

TEST(ArgParserTest, DoubleDashEndsFlags) {
  absl::StatusOr<ParsedArgs> args = Parse({"--", "--out"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(args->positional(), ElementsAre("--out"));
}

TEST(ArgParserTest, StopAtPositionalLeavesTheRest) {
  absl::StatusOr<ParsedArgs> args = Parse(
      {"--out", "x", "list", "--bogus", "7"}, {.stop_at_positional = true});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->Get("out"), "x");
  EXPECT_THAT(args->positional(), ElementsAre("list"));
  EXPECT_THAT(args->rest(), ElementsAre("--bogus", "7"));
}

void ExpectError(std::vector<std::string> args, const std::string& text) {
  absl::StatusOr<ParsedArgs> parsed = Parse(args, {.context = "command fetch"});
  ASSERT_FALSE(parsed.ok()) << "accepted " << args.size() << " args";
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), HasSubstr(text));
}

TEST(ArgParserTest, Errors) {
  ExpectError({"--bogus", "1"}, "unknown flag --bogus for command fetch");
  ExpectError({"-x"}, "unknown flag -x");
  ExpectError({"--out"}, "flag --out needs a value");
  ExpectError({"--out", "a", "--out", "b"}, "--out given more than once");
  ExpectError({"--help=yes"}, "--help takes no value");
}

TEST(ArgParserTest, EmptyArgs) {
  absl::StatusOr<ParsedArgs> args = Parse({});
  ASSERT_TRUE(args.ok());
  EXPECT_THAT(args->positional(), IsEmpty());
}

}  // namespace
}  // namespace stronghold::client
