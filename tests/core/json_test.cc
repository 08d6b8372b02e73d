#include "core/json.h"

#include <gtest/gtest.h>

namespace doppel::core {
namespace {

TEST(ParseJson, StripsBomAndParses) {
  auto r = ParseJson("\xEF\xBB\xBF{\"a\": 1}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("a").as_int64(), 1);
}

TEST(ParseJson, SyntaxErrorHasLineAndColumn) {
  auto r = ParseJson("{\n  \"a\": ,\n}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "JSON_SYNTAX");
  EXPECT_NE(r.status().message().find("line 2"), std::string::npos) << r.status().message();
}

TEST(ParseJson, RejectsTrailingGarbage) {
  auto r = ParseJson("{} {}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "JSON_SYNTAX");
}

TEST(ParseJson, RejectsEmpty) {
  EXPECT_EQ(ParseJson("").status().code(), "JSON_SYNTAX");
  EXPECT_EQ(ParseJson("   ").status().code(), "JSON_SYNTAX");
}

TEST(ParseJson, RejectsInvalidUtf8) {
  auto r = ParseJson("{\"a\": \"\xC3\x28\"}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "JSON_SYNTAX");
}

TEST(ParseJson, EnforcesDepth) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  auto r = ParseJson(deep, JsonLimits{.max_bytes = 1 << 20, .max_depth = 64});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "JSON_TOO_DEEP");
  EXPECT_TRUE(ParseJson(deep, JsonLimits{.max_bytes = 1 << 20, .max_depth = 200}).ok());
}

TEST(ParseJson, EnforcesSize) {
  std::string big = "\"" + std::string(2000, 'x') + "\"";
  auto r = ParseJson(big, JsonLimits{.max_bytes = 1000, .max_depth = 64});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "JSON_TOO_LARGE");
}

TEST(JsonPointer, EscapesTokens) {
  EXPECT_EQ(EscapePointerToken("a/b~c"), "a~1b~0c");
  EXPECT_EQ(PointerAppend("/x", "a/b"), "/x/a~1b");
  EXPECT_EQ(PointerAppend("", std::size_t{3}), "/3");
}

TEST(Utf8Length, CountsCodePoints) {
  EXPECT_EQ(Utf8Length("abc"), 3u);
  EXPECT_EQ(Utf8Length("\xC3\xA9t\xC3\xA9"), 3u);       // été
  EXPECT_EQ(Utf8Length("\xF0\x9F\x98\x80"), 1u);        // emoji
}

}  // namespace
}  // namespace doppel::core
