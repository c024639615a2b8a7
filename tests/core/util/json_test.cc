// One test per rule of the strict reader (core/util/json.h): each refused
// document is refused with the byte offset of the fault, each accepted one
// reads back as written.
#include "core/util/json.h"

#include <cstdint>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

// Expects `text` refused, with "at byte <at>" and `what` in the message.
void ExpectRefused(const std::string& text, size_t at, const std::string& what,
                   const JsonOptions& options = {}) {
  auto v = ParseJson(text, options);
  ASSERT_FALSE(v.ok()) << "accepted: " << text;
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find(absl::StrCat("at byte ", at, ":")),
            absl::string_view::npos)
      << text << " -> " << v.status();
  EXPECT_NE(v.status().message().find(what), absl::string_view::npos)
      << text << " -> " << v.status();
}

TEST(JsonTest, ParsesEveryKind) {
  auto v = ParseJson(
      R"( {"a": [1, -2.5e3, "x\"y"], "b": {"c": true, "d": null, "e": false},
                         "big": 18446744073709551615} )");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->kind, JsonValue::Kind::kObject);
  EXPECT_EQ(v->object.at("a").array[0].text, "1");
  EXPECT_EQ(*v->object.at("a").array[1].AsDouble("a[1]"), -2500.0);
  EXPECT_EQ(v->object.at("a").array[2].text, "x\"y");
  EXPECT_TRUE(v->object.at("b").object.at("c").boolean);
  EXPECT_EQ(v->object.at("b").object.at("d").kind, JsonValue::Kind::kNull);
  EXPECT_EQ(v->object.at("b").object.at("e").kind, JsonValue::Kind::kBool);
  EXPECT_FALSE(v->object.at("b").object.at("e").boolean);
  EXPECT_EQ(*v->Uint("big"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(*v->Double("big"), 18446744073709551615.0);
  EXPECT_EQ(v->object.at("b").offset, 33u);
  for (const char* scalar :
       {"0", "-0", "\"\"", "true", "null", "[]", "{}", "1E+2", "1e-2"}) {
    EXPECT_TRUE(ParseJson(scalar).ok()) << scalar;
  }
}

TEST(JsonTest, RefusesTrailingCommas) {
  ExpectRefused("[1,]", 3, "expected a value");
  ExpectRefused("{\"a\":1,}", 7, "expected a string key");
}

TEST(JsonTest, RefusesComments) {
  ExpectRefused("{} // c", 3, "trailing characters");
  ExpectRefused("[/* c */ 1]", 1, "expected a value");
}

TEST(JsonTest, RefusesNanAndInfinity) {
  ExpectRefused("NaN", 0, "expected a value");
  ExpectRefused("[Infinity]", 1, "expected a value");
  ExpectRefused("-Infinity", 1, "expected a digit");
}

TEST(JsonTest, RefusesMalformedNumbers) {
  ExpectRefused("[01]", 2, "leading zeros");
  ExpectRefused("-012", 2, "leading zeros");
  ExpectRefused("+1", 0, "expected a value");
  ExpectRefused(".5", 0, "expected a value");
  ExpectRefused("1.", 2, "after '.'");
  ExpectRefused("1.e3", 2, "after '.'");
  ExpectRefused("1e", 2, "exponent");
  ExpectRefused("1e+", 3, "exponent");
  ExpectRefused("0x10", 1, "trailing characters");
  ExpectRefused("-", 1, "expected a digit");
}

TEST(JsonTest, RefusesBadLiteralsAndStructure) {
  ExpectRefused("", 0, "unexpected end");
  ExpectRefused("tru", 0, "expected a value");
  ExpectRefused("[true false]", 6, "expected ',' or ']'");
  ExpectRefused("{\"a\" 1}", 5, "expected ':'");
  ExpectRefused("{a: 1}", 1, "expected a string key");
  ExpectRefused("['a']", 1, "expected a value");
  ExpectRefused("{\"a\": 1", 7, "expected ',' or '}'");
  ExpectRefused("1 2", 2, "trailing characters");
  ExpectRefused("\xEF\xBB\xBF{}", 0, "expected a value");  // a byte-order mark
}

TEST(JsonTest, RefusesDuplicateKeysAfterUnescaping) {
  ExpectRefused(R"({"a": 1, "a": 2})", 9, "duplicate key \"a\"");
  ExpectRefused(R"({"a": 1, "\u0061": 2})", 9, "duplicate key \"a\"");
  EXPECT_TRUE(ParseJson(R"({"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]})").ok());
}

TEST(JsonTest, DecodesEscapesAndSurrogatePairs) {
  auto v =
      ParseJson(R"("\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00\u0000")");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->text,
            std::string(
                "\"\\/\b\f\n\r\tA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\0", 19));
}

TEST(JsonTest, RefusesBadEscapes) {
  ExpectRefused(R"("\x41")", 2, "invalid escape");
  ExpectRefused(R"("\'")", 2, "invalid escape");
  ExpectRefused(R"("\u12G4")", 5, "4 hex digits");
  ExpectRefused(R"("\u12")", 5, "4 hex digits");
  ExpectRefused(R"("\ude00")", 7, "low surrogate without a high one");
  ExpectRefused(R"("\ud83d")", 7, "high surrogate without a low one");
  ExpectRefused(R"("\ud83d\u0041")", 13, "high surrogate without a low one");
  ExpectRefused(R"("\ud83dx")", 7, "high surrogate without a low one");
  ExpectRefused("\"abc", 4, "unterminated string");
  ExpectRefused("\"a\\", 3, "unterminated string");
  ExpectRefused("\"a\tb\"", 2, "control character");
}

TEST(JsonTest, AcceptsValidUtf8) {
  const std::string text =
      "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF\xED\x9F\xBF\"";
  auto v = ParseJson(text);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->text, text.substr(1, text.size() - 2));
}

TEST(JsonTest, RefusesInvalidUtf8) {
  ExpectRefused("\"a\x80\"", 2,
                "cannot start a character");  // lone continuation
  ExpectRefused("\"\xC0\xAF\"", 1, "cannot start a character");  // overlong '/'
  ExpectRefused("\"\xE0\x80\xAF\"", 1, "overlong");      // overlong, 3 bytes
  ExpectRefused("\"\xF0\x80\x80\xAF\"", 1, "overlong");  // overlong, 4 bytes
  ExpectRefused("\"\xED\xA0\x80\"", 1, "surrogate");     // U+D800 encoded
  ExpectRefused("\"\xF4\x90\x80\x80\"", 1, "U+10FFFF");  // U+110000
  ExpectRefused("\"\xF5\x80\x80\x80\"", 1, "cannot start a character");
  ExpectRefused("\"\xC3\"", 1, "continuation");  // cut by the quote
  ExpectRefused("\"\xE2\x82", 1, "truncated character");
  ExpectRefused("\xC3\xA9", 0, "expected a value");  // outside a string
}

TEST(JsonTest, LimitsNestingDepth) {
  JsonOptions options;
  options.max_depth = 3;
  EXPECT_TRUE(ParseJson("[[[1]]]", options).ok());
  ExpectRefused("[[[[1]]]]", 3, "nested deeper than 3", options);
  ExpectRefused("{\"a\":{\"b\":{\"c\":{}}}}", 15, "nested deeper than 3",
                options);
  // The default stops a hostile document long before the stack would.
  ExpectRefused(std::string(100000, '['), 64, "nested deeper than 64");
}

TEST(JsonTest, LimitsSizeAndValues) {
  JsonOptions options;
  options.max_bytes = 8;
  EXPECT_TRUE(ParseJson("[1,2,3] ", options).ok());
  ExpectRefused("[1,2,3,4]", 0, "9 bytes, more than the limit of 8", options);
  options = JsonOptions();
  options.max_values = 4;
  EXPECT_TRUE(ParseJson("[1,2,3]", options).ok());
  ExpectRefused("[1,2,3,4]", 7, "more than 4 values", options);
}

TEST(JsonTest, IntegersOutsideTheirTypeAreRefusedNotWrapped) {
  auto v =
      ParseJson(R"({"max": 9223372036854775807, "min": -9223372036854775808,
      "over": 9223372036854775808, "under": -9223372036854775809,
      "u_over": 18446744073709551616, "neg": -1, "frac": 1.0, "exp": 1e3})");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v->Int("max"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(*v->Int("min"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*v->Uint("over"), uint64_t{9223372036854775808u});
  for (const char* key : {"over", "under", "u_over"}) {
    auto i = v->Int(key);
    ASSERT_FALSE(i.ok()) << key;
    EXPECT_NE(
        i.status().message().find("does not fit in a 64-bit signed integer"),
        absl::string_view::npos)
        << i.status();
    EXPECT_NE(
        i.status().message().find(absl::StrCat("\"", key, "\" (at byte ")),
        absl::string_view::npos)
        << i.status();
  }
  EXPECT_NE(v->Uint("u_over").status().message().find("64-bit unsigned"),
            absl::string_view::npos);
  EXPECT_NE(v->Uint("neg").status().message().find("non-negative"),
            absl::string_view::npos);
  EXPECT_NE(v->Int("frac").status().message().find("must be an integer"),
            absl::string_view::npos);
  EXPECT_NE(v->Int("exp").status().message().find("must be an integer"),
            absl::string_view::npos);
  EXPECT_EQ(*v->Double("exp"), 1000.0);
}

TEST(JsonTest, IntRangeNamesTheLimits) {
  auto v = ParseJson(R"({"n": 5})");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v->Int("n", 0, 5), 5);
  auto r = v->Int("n", 0, 4);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is 5, outside [0, 4]"),
            absl::string_view::npos)
      << r.status();
}

TEST(JsonTest, DoublesThatOverflowAreRefused) {
  auto v = ParseJson(
      R"({"huge": 1e309, "neg_huge": -1e309, "tiny": 1e-400, "max": 1.7976931348623157e308})");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_NE(
      v->Double("huge").status().message().find("does not fit in a double"),
      absl::string_view::npos);
  EXPECT_FALSE(v->Double("neg_huge").ok());
  EXPECT_EQ(*v->Double("tiny"), 0.0);
  EXPECT_EQ(*v->Double("max"), std::numeric_limits<double>::max());
}

TEST(JsonTest, AccessorsNameTheKeyAndKind) {
  auto v = ParseJson(R"({"s": 1})");
  ASSERT_TRUE(v.ok());
  auto s = v->String("s");
  EXPECT_NE(s.status().message().find("\"s\" (at byte 6) must be a string"),
            absl::string_view::npos)
      << s.status();
  auto m = v->Int("absent");
  EXPECT_NE(m.status().message().find("\"absent\" (at byte 0) missing"),
            absl::string_view::npos)
      << m.status();
}

TEST(JsonTest, QuotedRoundTrips) {
  const std::string s = std::string("a\"b\\c\n\x01\x1f/\xC3\xA9", 11);
  auto v = ParseJson(JsonQuoted(s));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->text, s);
}

}  // namespace
}  // namespace stronghold::core
