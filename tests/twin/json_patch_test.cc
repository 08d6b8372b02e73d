#include "twin/json_patch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/json.h"

#ifndef DOPPEL_SOURCE_DIR
#error "DOPPEL_SOURCE_DIR must name the source tree (tests/CMakeLists.txt defines it)"
#endif

namespace doppel::twin {
namespace {

namespace json = boost::json;

json::value J(std::string_view text) {
  auto r = core::ParseJson(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << text;
  return r.ok() ? std::move(r).value() : json::value();
}

core::Result<json::value> Apply(std::string_view doc, std::string_view patch) {
  return ApplyJsonPatch(J(doc), J(patch));
}

// Applies and expects success with `expected` (boost::json object equality ignores member order).
void ExpectResult(std::string_view doc, std::string_view patch, std::string_view expected) {
  auto r = Apply(doc, patch);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, J(expected)) << json::serialize(*r);
}

core::Status ExpectError(std::string_view doc, std::string_view patch, std::string_view code,
                         std::string_view pointer) {
  auto r = Apply(doc, patch);
  EXPECT_FALSE(r.ok()) << json::serialize(r.ok() ? *r : json::value());
  if (r.ok()) return {};
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_EQ(r.status().pointer(), pointer) << r.status().ToString();
  return r.status();
}

// ---------------------------------------------------------------------------------------------
// RFC 6902 Appendix A, verbatim.

TEST(Rfc6902AppendixA, A1AddingAnObjectMember) {
  ExpectResult(R"({ "foo": "bar"})",
               R"([
     { "op": "add", "path": "/baz", "value": "qux" }
   ])",
               R"({
     "baz": "qux",
     "foo": "bar"
   })");
}

TEST(Rfc6902AppendixA, A2AddingAnArrayElement) {
  ExpectResult(R"({ "foo": [ "bar", "baz" ] })",
               R"([
     { "op": "add", "path": "/foo/1", "value": "qux" }
   ])",
               R"({ "foo": [ "bar", "qux", "baz" ] })");
}

TEST(Rfc6902AppendixA, A3RemovingAnObjectMember) {
  ExpectResult(R"({
     "baz": "qux",
     "foo": "bar"
   })",
               R"([
     { "op": "remove", "path": "/baz" }
   ])",
               R"({ "foo": "bar" })");
}

TEST(Rfc6902AppendixA, A4RemovingAnArrayElement) {
  ExpectResult(R"({ "foo": [ "bar", "qux", "baz" ] })",
               R"([
     { "op": "remove", "path": "/foo/1" }
   ])",
               R"({ "foo": [ "bar", "baz" ] })");
}

TEST(Rfc6902AppendixA, A5ReplacingAValue) {
  ExpectResult(R"({
     "baz": "qux",
     "foo": "bar"
   })",
               R"([
     { "op": "replace", "path": "/baz", "value": "boo" }
   ])",
               R"({
     "baz": "boo",
     "foo": "bar"
   })");
}

TEST(Rfc6902AppendixA, A6MovingAValue) {
  ExpectResult(R"({
     "foo": {
       "bar": "baz",
       "waldo": "fred"
     },
     "qux": {
       "corge": "grault"
     }
   })",
               R"([
     { "op": "move", "from": "/foo/waldo", "path": "/qux/thud" }
   ])",
               R"({
     "foo": {
       "bar": "baz"
     },
     "qux": {
       "corge": "grault",
       "thud": "fred"
     }
   })");
}

TEST(Rfc6902AppendixA, A7MovingAnArrayElement) {
  ExpectResult(R"({ "foo": [ "all", "grass", "cows", "eat" ] })",
               R"([
     { "op": "move", "from": "/foo/1", "path": "/foo/3" }
   ])",
               R"({ "foo": [ "all", "cows", "eat", "grass" ] })");
}

TEST(Rfc6902AppendixA, A8TestingAValueSuccess) {
  ExpectResult(R"({
     "baz": "qux",
     "foo": [ "a", 2, "c" ]
   })",
               R"([
     { "op": "test", "path": "/baz", "value": "qux" },
     { "op": "test", "path": "/foo/1", "value": 2 }
   ])",
               R"({
     "baz": "qux",
     "foo": [ "a", 2, "c" ]
   })");
}

TEST(Rfc6902AppendixA, A9TestingAValueError) {
  ExpectError(R"({ "baz": "qux" })",
              R"([
     { "op": "test", "path": "/baz", "value": "bar" }
   ])",
              "PATCH_TEST_FAILED", "/0/value");
}

TEST(Rfc6902AppendixA, A10AddingANestedMemberObject) {
  ExpectResult(R"({ "foo": "bar" })",
               R"([
     { "op": "add", "path": "/child", "value": { "grandchild": { } } }
   ])",
               R"({
     "foo": "bar",
     "child": {
       "grandchild": {
       }
     }
   })");
}

TEST(Rfc6902AppendixA, A11IgnoringUnrecognizedElements) {
  ExpectResult(R"({ "foo": "bar" })",
               R"([
     { "op": "add", "path": "/baz", "value": "qux", "xyz": 123 }
   ])",
               R"({
     "foo": "bar",
     "baz": "qux"
   })");
}

TEST(Rfc6902AppendixA, A12AddingToANonexistentTarget) {
  auto s = ExpectError(R"({ "foo": "bar" })",
                       R"([
     { "op": "add", "path": "/baz/bat", "value": "qux" }
   ])",
                       "PATCH_PATH_NOT_FOUND", "/0/path");
  EXPECT_EQ(s.message(), "operation 0 (add /baz/bat): no member 'baz' in the document");
}

// The RFC leaves duplicate members without standard error handling. boost::json keeps the last
// "op", so this is a remove of the nonexistent /baz — still an error, as A.13 wants.
TEST(Rfc6902AppendixA, A13InvalidJsonPatchDocument) {
  ExpectError(R"({ "foo": "bar" })",
              R"([
     { "op": "add", "path": "/baz", "value": "qux", "op": "remove" }
   ])",
              "PATCH_PATH_NOT_FOUND", "/0/path");
}

TEST(Rfc6902AppendixA, A14EscapeOrdering) {
  ExpectResult(R"({
     "/": 9,
     "~1": 10
   })",
               R"([
     {"op": "test", "path": "/~01", "value": 10}
   ])",
               R"({
     "/": 9,
     "~1": 10
   })");
}

TEST(Rfc6902AppendixA, A15ComparingStringsAndNumbers) {
  ExpectError(R"({
     "/": 9,
     "~1": 10
   })",
              R"([
     {"op": "test", "path": "/~01", "value": "10"}
   ])",
              "PATCH_TEST_FAILED", "/0/value");
}

TEST(Rfc6902AppendixA, A16AddingAnArrayValue) {
  ExpectResult(R"({ "foo": ["bar"] })",
               R"([
     { "op": "add", "path": "/foo/-", "value": ["abc", "def"] }
   ])",
               R"({ "foo": ["bar", ["abc", "def"]] })");
}

// ---------------------------------------------------------------------------------------------
// Community suite: tests/twin/json_patch_cases.json is transcribed from json-patch/json-patch-tests
// (tests.json, all cases) and its spec_tests.json (RFC examples), in their format.

struct SuiteCase {
  std::size_t index = 0;
  json::value c;
};

std::vector<SuiteCase> LoadSuite() {
  std::filesystem::path p =
      std::filesystem::path(DOPPEL_SOURCE_DIR) / "tests/twin/json_patch_cases.json";
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  auto parsed = core::ParseJson(ss.str());
  std::vector<SuiteCase> out;
  if (!parsed.ok() || !parsed->is_array()) {
    ADD_FAILURE() << "cannot load " << p << ": "
                  << (parsed.ok() ? "not an array" : parsed.status().ToString());
    return out;
  }
  for (std::size_t i = 0; i < parsed->get_array().size(); ++i) {
    out.push_back({i, parsed->get_array()[i]});
  }
  return out;
}

class CommunitySuite : public ::testing::TestWithParam<SuiteCase> {};

TEST_P(CommunitySuite, Case) {
  const json::object& c = GetParam().c.as_object();
  const json::value* comment = c.if_contains("comment");
  SCOPED_TRACE(comment != nullptr ? json::serialize(*comment) : "(no comment)");
  if (const json::value* d = c.if_contains("disabled");
      d != nullptr && d->is_bool() && d->get_bool()) {
    GTEST_SKIP() << "marked disabled in the suite";
  }
  const json::value& doc = c.at("doc");
  const json::value before = doc;
  auto r = ApplyJsonPatch(doc, c.at("patch"));
  EXPECT_EQ(doc, before);
  if (const json::value* error = c.if_contains("error")) {
    ASSERT_FALSE(r.ok()) << "expected error '" << json::serialize(*error) << "', got "
                         << json::serialize(*r);
    static const std::vector<std::string> kCodes = {"PATCH_INVALID_OPERATION",
                                                    "PATCH_INVALID_POINTER", "PATCH_PATH_NOT_FOUND",
                                                    "PATCH_TEST_FAILED"};
    EXPECT_NE(std::find(kCodes.begin(), kCodes.end(), r.status().code()), kCodes.end())
        << r.status().ToString();
    EXPECT_FALSE(r.status().pointer().empty()) << r.status().ToString();
    return;
  }
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  if (const json::value* expected = c.if_contains("expected")) {
    EXPECT_EQ(*r, *expected) << json::serialize(*r);
  }
}

std::string SuiteCaseName(const ::testing::TestParamInfo<SuiteCase>& info) {
  return "case" + std::to_string(info.param.index);
}

INSTANTIATE_TEST_SUITE_P(JsonPatchTests, CommunitySuite, ::testing::ValuesIn(LoadSuite()),
                         SuiteCaseName);

TEST(CommunitySuiteFile, HasEnoughCases) {
  auto cases = LoadSuite();
  EXPECT_GE(cases.size(), 60u);
}

// ---------------------------------------------------------------------------------------------
// JSON Pointer.

std::vector<std::string> Tokens(std::string_view p) {
  auto r = ParsePointer(p);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<std::string>{};
}

using V = std::vector<std::string>;

TEST(ParsePointer, Rfc6901Section5Examples) {
  EXPECT_EQ(Tokens(""), V{});
  EXPECT_EQ(Tokens("/foo"), V{"foo"});
  EXPECT_EQ(Tokens("/foo/0"), (V{"foo", "0"}));
  EXPECT_EQ(Tokens("/"), V{""});
  EXPECT_EQ(Tokens("/a~1b"), V{"a/b"});
  EXPECT_EQ(Tokens("/c%d"), V{"c%d"});
  EXPECT_EQ(Tokens("/e^f"), V{"e^f"});
  EXPECT_EQ(Tokens("/g|h"), V{"g|h"});
  EXPECT_EQ(Tokens("/i\\j"), V{"i\\j"});
  EXPECT_EQ(Tokens("/k\"l"), V{"k\"l"});
  EXPECT_EQ(Tokens("/ "), V{" "});
  EXPECT_EQ(Tokens("/m~0n"), V{"m~n"});
}

TEST(ParsePointer, EmptyTokensAndEscapeOrder) {
  EXPECT_EQ(Tokens("//"), (V{"", ""}));
  EXPECT_EQ(Tokens("/foo/"), (V{"foo", ""}));
  EXPECT_EQ(Tokens("/~01"), V{"~1"});  // not "/": ~0 is decoded first, left to right
  EXPECT_EQ(Tokens("/~10"), V{"/0"});
  EXPECT_EQ(Tokens("/~0~1~0"), V{"~/~"});
  EXPECT_EQ(Tokens("/-"), V{"-"});
  EXPECT_EQ(Tokens(std::string_view("/a\0b", 4)), V{std::string("a\0b", 3)});
}

TEST(ParsePointer, Errors) {
  for (std::string_view bad :
       {"foo", "#/foo", " /foo", "/~2", "/~", "/a~", "/a~/b", "/~a", "/~~0"}) {
    auto r = ParsePointer(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), "INVALID_POINTER") << bad;
  }
  EXPECT_NE(ParsePointer("foo").status().message().find("start with '/'"), std::string::npos);
  EXPECT_NE(ParsePointer("/a~2").status().message().find("offset 2"), std::string::npos)
      << ParsePointer("/a~2").status().message();
}

// ---------------------------------------------------------------------------------------------
// Error codes, pointers and messages.

TEST(ApplyJsonPatchErrors, MessageNamesOperationOpAndPath) {
  auto s = ExpectError(R"({"humidity": 40})",
                       R"([{"op": "test", "path": "/humidity", "value": 40},
                           {"op": "add", "path": "/x", "value": 1},
                           {"op": "replace", "path": "/temperature", "value": 21}])",
                       "PATCH_PATH_NOT_FOUND", "/2/path");
  EXPECT_EQ(s.message(),
            "operation 2 (replace /temperature): no member 'temperature' in the document");
  EXPECT_EQ(s.ToString().find("PATCH_PATH_NOT_FOUND"), 0u) << s.ToString();
}

TEST(ApplyJsonPatchErrors, NestedMissingMemberNamesItsParent) {
  auto s = ExpectError(R"({"a": {"b": {}}})", R"([{"op": "remove", "path": "/a/b/c"}])",
                       "PATCH_PATH_NOT_FOUND", "/0/path");
  EXPECT_EQ(s.message(), "operation 0 (remove /a/b/c): no member 'c' in /a/b");
}

TEST(ApplyJsonPatchErrors, PatchNotArray) {
  for (const char* patch : {R"({"op": "add", "path": "/a", "value": 1})", "null", "\"[]\"", "3"}) {
    ExpectError("{}", patch, "PATCH_NOT_ARRAY", "");
  }
}

TEST(ApplyJsonPatchErrors, OperationNotAnObject) {
  ExpectError("{}", R"([{"op": "test", "path": "", "value": {}}, 7])", "PATCH_INVALID_OPERATION",
              "/1");
  ExpectError("{}", R"([[]])", "PATCH_INVALID_OPERATION", "/0");
}

TEST(ApplyJsonPatchErrors, UnknownOrMistypedOp) {
  auto s = ExpectError("{}", R"([{"op": "merge", "path": "/a", "value": 1}])",
                       "PATCH_INVALID_OPERATION", "/0/op");
  EXPECT_NE(s.message().find("unknown op 'merge'"), std::string::npos) << s.message();
  ExpectError("{}", R"([{"op": "ADD", "path": "/a", "value": 1}])", "PATCH_INVALID_OPERATION",
              "/0/op");
  ExpectError("{}", R"([{"op": 1, "path": "/a", "value": 1}])", "PATCH_INVALID_OPERATION", "/0/op");
  ExpectError("{}", R"([{"path": "/a", "value": 1}])", "PATCH_INVALID_OPERATION", "/0");
}

TEST(ApplyJsonPatchErrors, MissingOrMistypedPathAndFrom) {
  ExpectError("{}", R"([{"op": "add", "value": 1}])", "PATCH_INVALID_OPERATION", "/0");
  ExpectError("{}", R"([{"op": "add", "path": null, "value": 1}])", "PATCH_INVALID_OPERATION",
              "/0/path");
  ExpectError("{}", R"([{"op": "add", "path": ["a"], "value": 1}])", "PATCH_INVALID_OPERATION",
              "/0/path");
  ExpectError(R"({"a": 1})", R"([{"op": "copy", "path": "/b"}])", "PATCH_INVALID_OPERATION", "/0");
  ExpectError(R"({"a": 1})", R"([{"op": "move", "from": 5, "path": "/b"}])",
              "PATCH_INVALID_OPERATION", "/0/from");
  // from on other ops is an unrecognized member, ignored even when malformed.
  ExpectResult(R"({"a": 1})", R"([{"op": "add", "path": "/b", "value": 2, "from": 5}])",
               R"({"a": 1, "b": 2})");
}

TEST(ApplyJsonPatchErrors, InvalidPointerSyntax) {
  auto s = ExpectError("{}", R"([{"op": "add", "path": "a", "value": 1}])", "PATCH_INVALID_POINTER",
                       "/0/path");
  EXPECT_EQ(s.message().find("operation 0 (add a): "), 0u) << s.message();
  ExpectError(R"({"a": 1})", R"([{"op": "copy", "from": "/~2", "path": "/b"}])",
              "PATCH_INVALID_POINTER", "/0/from");
  ExpectError(R"({"a~": 1})", R"([{"op": "remove", "path": "/a~"}])", "PATCH_INVALID_POINTER",
              "/0/path");
}

TEST(ApplyJsonPatchErrors, MissingValueIsAnErrorButNullIsAValue) {
  for (const char* op : {"add", "replace", "test"}) {
    std::string missing = std::string(R"([{"op": ")") + op + R"(", "path": "/a"}])";
    auto s = ExpectError(R"({"a": null})", missing, "PATCH_INVALID_OPERATION", "/0");
    EXPECT_NE(s.message().find("missing member 'value'"), std::string::npos) << s.message();
    std::string null_value =
        std::string(R"([{"op": ")") + op + R"(", "path": "/a", "value": null}])";
    ExpectResult(R"({"a": null})", null_value, R"({"a": null})");
  }
  // remove needs no value.
  ExpectResult(R"({"a": 1})", R"([{"op": "remove", "path": "/a"}])", "{}");
}

// The whole patch is checked before anything runs, so a malformed later operation wins over a
// failure an earlier one would hit in the document.
TEST(ApplyJsonPatchErrors, MalformedOperationReportedBeforeDocumentErrors) {
  ExpectError("{}",
              R"([{"op": "remove", "path": "/nope"},
                  {"op": "add", "path": "/a"}])",
              "PATCH_INVALID_OPERATION", "/1");
}

TEST(ApplyJsonPatchErrors, TooManyOperations) {
  json::array patch;
  for (int i = 0; i < 4; ++i) {
    patch.push_back(json::object{{"op", "add"}, {"path", "/a"}, {"value", i}});
  }
  auto ok = ApplyJsonPatch(json::object{}, patch, PatchLimits{.max_ops = 4});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, J(R"({"a": 3})"));
  auto r = ApplyJsonPatch(json::object{}, patch, PatchLimits{.max_ops = 3});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "PATCH_TOO_MANY_OPERATIONS");
  EXPECT_EQ(PatchLimits{}.max_ops, 1000u);
  json::array big(1001, json::object{{"op", "test"}, {"path", ""}, {"value", nullptr}});
  EXPECT_EQ(ApplyJsonPatch(nullptr, big).status().code(), "PATCH_TOO_MANY_OPERATIONS");
}

TEST(ApplyJsonPatchErrors, TestFailureShowsBothValues) {
  auto s = ExpectError(R"({"t": 20})", R"([{"op": "test", "path": "/t", "value": "20"}])",
                       "PATCH_TEST_FAILED", "/0/value");
  EXPECT_EQ(s.message(), "operation 0 (test /t): value is 20, expected \"20\"");
  // A test of a missing location is a path error, not a failed comparison.
  ExpectError(R"({"t": 20.5})", R"([{"op": "test", "path": "/u", "value": 21}])",
              "PATCH_PATH_NOT_FOUND", "/0/path");
}

TEST(ApplyJsonPatchErrors, LongPathsAreAbbreviatedInMessages) {
  std::string path = "/" + std::string(5000, 'x');
  json::array patch{json::object{{"op", "remove"}, {"path", path}}};
  auto r = ApplyJsonPatch(json::object{}, patch);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 400u) << r.status().message();
}

// ---------------------------------------------------------------------------------------------
// Semantics details.

TEST(ApplyJsonPatch, AtomicOnFailure) {
  const json::value doc = J(R"({"a": 1, "list": [1, 2]})");
  const json::value copy = doc;
  auto r = ApplyJsonPatch(doc, J(R"([{"op": "add", "path": "/b", "value": 2},
                                      {"op": "remove", "path": "/list/0"},
                                      {"op": "replace", "path": "/a", "value": 9},
                                      {"op": "test", "path": "/a", "value": 1}])"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "PATCH_TEST_FAILED");
  EXPECT_EQ(r.status().pointer(), "/3/value");
  EXPECT_EQ(doc, copy);
}

TEST(ApplyJsonPatch, OperationsSeeEarlierOperations) {
  ExpectResult(R"({})",
               R"([{"op": "add", "path": "/a", "value": {}},
                   {"op": "add", "path": "/a/b", "value": [1]},
                   {"op": "add", "path": "/a/b/-", "value": 2},
                   {"op": "test", "path": "/a/b", "value": [1, 2]},
                   {"op": "copy", "from": "/a/b", "path": "/c"},
                   {"op": "move", "from": "/a/b/0", "path": "/c/-"}])",
               R"({"a": {"b": [2]}, "c": [1, 2, 1]})");
}

TEST(ApplyJsonPatch, DashAppendsOnlyForAdd) {
  ExpectError(R"({"l": [1]})", R"([{"op": "remove", "path": "/l/-"}])", "PATCH_PATH_NOT_FOUND",
              "/0/path");
  ExpectError(R"({"l": [1]})", R"([{"op": "replace", "path": "/l/-", "value": 2}])",
              "PATCH_PATH_NOT_FOUND", "/0/path");
  ExpectError(R"({"l": [1]})", R"([{"op": "test", "path": "/l/-", "value": 1}])",
              "PATCH_PATH_NOT_FOUND", "/0/path");
  ExpectError(R"({"l": [1]})", R"([{"op": "copy", "from": "/l/-", "path": "/m"}])",
              "PATCH_PATH_NOT_FOUND", "/0/from");
  // "-" is only special as an array token: in an object it is an ordinary member name.
  ExpectResult(R"({})", R"([{"op": "add", "path": "/-", "value": 1}])", R"({"-": 1})");
  // ...and only as the last token of add: "/l/-/x" would need the element to exist.
  ExpectError(R"({"l": [{}]})", R"([{"op": "add", "path": "/l/-/x", "value": 1}])",
              "PATCH_PATH_NOT_FOUND", "/0/path");
}

TEST(ApplyJsonPatch, ArrayIndexRules) {
  // index == size is allowed for add (append) and nothing else.
  ExpectResult("[1, 2]", R"([{"op": "add", "path": "/2", "value": 3}])", "[1, 2, 3]");
  ExpectError("[1, 2]", R"([{"op": "replace", "path": "/2", "value": 3}])", "PATCH_PATH_NOT_FOUND",
              "/0/path");
  ExpectError("[1, 2]", R"([{"op": "add", "path": "/3", "value": 3}])", "PATCH_PATH_NOT_FOUND",
              "/0/path");
  for (const char* bad : {"/01", "/00", "/-1", "/+1", "/1e0", "/1.0", "/ 1", "/0x1", "/"}) {
    std::string patch = std::string(R"([{"op": "add", "path": ")") + bad + R"(", "value": 3}])";
    ExpectError("[1, 2]", patch, "PATCH_PATH_NOT_FOUND", "/0/path");
  }
  // Far beyond size_t must neither wrap around nor crash.
  ExpectError("[1, 2]", R"([{"op": "remove", "path": "/18446744073709551617"}])",
              "PATCH_PATH_NOT_FOUND", "/0/path");
  ExpectError("[1, 2]", R"([{"op": "add", "path": "/99999999999999999999999999", "value": 0}])",
              "PATCH_PATH_NOT_FOUND", "/0/path");
  // "0" is fine, and digit tokens are plain names in objects.
  ExpectResult(R"([[5]])", R"([{"op": "replace", "path": "/0/0", "value": 6}])", "[[6]]");
  ExpectResult(R"({"01": 1})", R"([{"op": "remove", "path": "/01"}])", "{}");
}

TEST(ApplyJsonPatch, AddIntoScalarFails) {
  auto s = ExpectError(R"({"a": 5})", R"([{"op": "add", "path": "/a/b", "value": 1}])",
                       "PATCH_PATH_NOT_FOUND", "/0/path");
  EXPECT_EQ(s.message(), "operation 0 (add /a/b): /a is a number, so 'b' cannot be added to it");
  ExpectError(R"({"a": "s"})", R"([{"op": "test", "path": "/a/0", "value": "s"}])",
              "PATCH_PATH_NOT_FOUND", "/0/path");
}

TEST(ApplyJsonPatch, AddReplacesExistingMemberInPlace) {
  auto r = Apply(R"({"a": 1, "b": 2, "c": 3})", R"([{"op": "add", "path": "/b", "value": 9}])");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json::serialize(*r), R"({"a":1,"b":9,"c":3})");
  auto r2 =
      Apply(R"({"a": 1, "b": 2, "c": 3})", R"([{"op": "replace", "path": "/b", "value": 9}])");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(json::serialize(*r2), R"({"a":1,"b":9,"c":3})");
}

TEST(ApplyJsonPatch, WholeDocument) {
  ExpectResult(R"({"a": 1})", R"([{"op": "replace", "path": "", "value": [1]}])", "[1]");
  ExpectResult(R"({"a": 1})", R"([{"op": "add", "path": "", "value": 7}])", "7");
  ExpectResult(R"({"a": 1})", R"([{"op": "test", "path": "", "value": {"a": 1.0}}])",
               R"({"a": 1})");
  ExpectResult(R"({"a": 1})", R"([{"op": "remove", "path": ""}])", "null");
  ExpectResult(R"({"a": 1})", R"([{"op": "copy", "from": "", "path": "/self"}])",
               R"({"a": 1, "self": {"a": 1}})");
  ExpectResult(R"({"a": 1})", R"([{"op": "move", "from": "", "path": ""}])", R"({"a": 1})");
}

TEST(ApplyJsonPatch, MoveIntoOwnChildIsAnError) {
  auto s = ExpectError(R"({"a": {"b": {}}})", R"([{"op": "move", "from": "/a", "path": "/a/b/c"}])",
                       "PATCH_INVALID_OPERATION", "/0/path");
  EXPECT_NE(s.message().find("into its own child"), std::string::npos) << s.message();
  ExpectError(R"({"a": {}})", R"([{"op": "move", "from": "", "path": "/a"}])",
              "PATCH_INVALID_OPERATION", "/0/path");
  ExpectError(R"({"a": [[1]]})", R"([{"op": "move", "from": "/a/0", "path": "/a/0/0"}])",
              "PATCH_INVALID_OPERATION", "/0/path");
  // Prefix by tokens, not by characters: /ab is not inside /a.
  ExpectResult(R"({"a": 1})", R"([{"op": "move", "from": "/a", "path": "/ab"}])", R"({"ab": 1})");
  // Moving up is fine, and copying into one's own child is too (the value is copied first).
  ExpectResult(R"({"a": {"b": {"c": 1}}})", R"([{"op": "move", "from": "/a/b", "path": "/a"}])",
               R"({"a": {"c": 1}})");
  ExpectResult(R"({"a": {"b": 1}})", R"([{"op": "copy", "from": "/a", "path": "/a/c"}])",
               R"({"a": {"b": 1, "c": {"b": 1}}})");
}

TEST(ApplyJsonPatch, MoveIsRemoveThenAdd) {
  // RFC 6902 §4.4: the target index is interpreted after the removal.
  ExpectResult("[0, 1, 2, 3]", R"([{"op": "move", "from": "/0", "path": "/3"}])", "[1, 2, 3, 0]");
  ExpectResult("[0, 1, 2, 3]", R"([{"op": "move", "from": "/3", "path": "/0"}])", "[3, 0, 1, 2]");
  ExpectResult("[0, 1, 2, 3]", R"([{"op": "move", "from": "/1", "path": "/-"}])", "[0, 2, 3, 1]");
  // After removing /0 the array has 3 elements, so /4 is out of range.
  ExpectError("[0, 1, 2, 3]", R"([{"op": "move", "from": "/0", "path": "/4"}])",
              "PATCH_PATH_NOT_FOUND", "/0/path");
  // Same location: a no-op, but "from" must still exist.
  ExpectError(R"({})", R"([{"op": "move", "from": "/a", "path": "/a"}])", "PATCH_PATH_NOT_FOUND",
              "/0/from");
  ExpectResult(R"({"x": {"y": 1}, "z": 2})", R"([{"op": "move", "from": "/x", "path": "/z"}])",
               R"({"z": {"y": 1}})");
}

TEST(ApplyJsonPatch, TestEqualityIsJsonEquality) {
  auto passes = [](std::string_view doc_value, std::string_view test_value) {
    std::string doc = std::string(R"({"v": )") + std::string(doc_value) + "}";
    std::string patch =
        std::string(R"([{"op": "test", "path": "/v", "value": )") + std::string(test_value) + "}]";
    auto r = Apply(doc, patch);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), "PATCH_TEST_FAILED") << r.status().ToString();
    }
    return r.ok();
  };
  // Numbers by value across int64, uint64 and double representations.
  EXPECT_TRUE(passes("1", "1.0"));
  EXPECT_TRUE(passes("1.0", "1"));
  EXPECT_TRUE(passes("1", "1e0"));
  EXPECT_TRUE(passes("100", "1E2"));
  EXPECT_TRUE(passes("0", "-0.0"));
  EXPECT_TRUE(passes("-0", "0"));
  EXPECT_TRUE(passes("0.5", "5e-1"));
  EXPECT_TRUE(passes("18446744073709551615", "18446744073709551615"));
  EXPECT_TRUE(passes("9223372036854775808", "9223372036854775808.0"));
  EXPECT_TRUE(passes("[1, {\"a\": 2}]", "[1.0, {\"a\": 2e0}]"));
  EXPECT_FALSE(passes("1", "1.5"));
  EXPECT_FALSE(passes("-1", "18446744073709551615"));
  EXPECT_FALSE(passes("9007199254740993", "9007199254740992.0"));  // 2^53 + 1 vs 2^53: exact
  EXPECT_FALSE(passes("1", "true"));
  EXPECT_FALSE(passes("0", "false"));
  EXPECT_FALSE(passes("0", "null"));
  EXPECT_FALSE(passes("\"1\"", "1"));
  EXPECT_FALSE(passes("[]", "{}"));
  EXPECT_FALSE(passes("\"\"", "null"));
  // Arrays are ordered, objects are not; sizes must match both ways.
  EXPECT_FALSE(passes("[1, 2]", "[2, 1]"));
  EXPECT_FALSE(passes("[1, 2]", "[1, 2, 3]"));
  EXPECT_TRUE(passes(R"({"a": 1, "b": 2})", R"({"b": 2, "a": 1})"));
  EXPECT_FALSE(passes(R"({"a": 1})", R"({"a": 1, "b": 2})"));
  EXPECT_FALSE(passes(R"({"a": 1, "b": 2})", R"({"a": 1})"));
  EXPECT_FALSE(passes(R"({"a": null})", R"({"b": null})"));
  // Strings compare exactly: no Unicode normalization, no case folding.
  EXPECT_TRUE(passes(R"("\u00e9")", "\"\xC3\xA9\""));
  EXPECT_FALSE(passes(R"("\u00e9")", R"("e\u0301")"));
  EXPECT_FALSE(passes(R"("A")", R"("a")"));
}

TEST(ApplyJsonPatch, ValuesAreCopiedNotShared) {
  const json::value patch = J(R"([{"op": "add", "path": "/a", "value": {"x": [1]}}])");
  auto r = ApplyJsonPatch(json::object{}, patch);
  ASSERT_TRUE(r.ok());
  r->as_object()["a"].as_object()["x"].as_array().push_back(2);
  EXPECT_EQ(patch, J(R"([{"op": "add", "path": "/a", "value": {"x": [1]}}])"));
}

TEST(ApplyJsonPatch, EscapedTokensAddressEscapedMembers) {
  ExpectResult(R"({"a/b": {"c~d": 1}})",
               R"([{"op": "replace", "path": "/a~1b/c~0d", "value": 2},
                   {"op": "move", "from": "/a~1b/c~0d", "path": "/~0~1"}])",
               R"({"a/b": {}, "~/": 2})");
  auto s = ExpectError(R"({})", R"([{"op": "remove", "path": "/a~1b"}])", "PATCH_PATH_NOT_FOUND",
                       "/0/path");
  EXPECT_EQ(s.message(), "operation 0 (remove /a~1b): no member 'a/b' in the document");
}

TEST(ApplyJsonPatch, EmptyPatchReturnsACopy) {
  ExpectResult("null", "[]", "null");
  ExpectResult(R"({"a": [1, {"b": null}]})", "[]", R"({"a": [1, {"b": null}]})");
}

// ---------------------------------------------------------------------------------------------
// TouchedPaths.

TEST(TouchedPaths, PathOfEachOperationAndFromOfMove) {
  auto paths = TouchedPaths(J(R"([
      {"op": "add", "path": "/a", "value": 1},
      {"op": "remove", "path": "/b"},
      {"op": "replace", "path": "/c/0", "value": 1},
      {"op": "move", "from": "/d", "path": "/e"},
      {"op": "copy", "from": "/f", "path": "/g"},
      {"op": "test", "path": "/h", "value": 1},
      {"op": "add", "path": "", "value": {}}])"));
  EXPECT_EQ(paths, (V{"/a", "/b", "/c/0", "/e", "/d", "/g", "/h", ""}));
}

TEST(TouchedPaths, SkipsMalformedOperations) {
  EXPECT_TRUE(TouchedPaths(J(R"({"op": "add", "path": "/a"})")).empty());
  EXPECT_EQ(TouchedPaths(J(R"([7, {"op": "add"}, {"op": "add", "path": 3},
                                {"op": "move", "path": "/x", "from": null},
                                {"op": "remove", "path": "/ok"}])")),
            (V{"/x", "/ok"}));
}

}  // namespace
}  // namespace doppel::twin
