// Runs every data-driven DTDL case under tests/model/cases (format: cases/README.md) as its own
// GoogleTest test, named after its file.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "model/model.h"

namespace doppel::model {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

const fs::path kCaseDir = fs::path(DOPPEL_SOURCE_DIR) / "tests/model/cases";

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<SourceDocument> Documents(const json::object& c, std::string_view key_json,
                                      std::string_view key_raw, std::string_view prefix) {
  std::vector<SourceDocument> docs;
  if (const auto* d = c.if_contains(key_json)) {
    for (const auto& v : d->as_array()) {
      docs.push_back({fmt::format("{}{}", prefix, docs.size()), json::serialize(v)});
    }
  }
  if (const auto* d = c.if_contains(key_raw)) {
    for (const auto& v : d->as_array()) {
      docs.push_back({fmt::format("{}{}", prefix, docs.size()), std::string(v.as_string())});
    }
  }
  return docs;
}

std::set<std::string> StringSet(const json::value& v) {
  std::set<std::string> out;
  for (const auto& x : v.as_array()) out.emplace(x.as_string());
  return out;
}

std::string Join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
  return "[" + out + "]";
}

std::string Dump(const Diagnostics& diags) {
  std::string out;
  for (const auto& d : diags) out += "  " + FormatDiagnostic(d) + "\n";
  return out;
}

void RunCase(const fs::path& file) {
  auto parsed = core::ParseJson(ReadAll(file), core::JsonLimits{.max_bytes = 64u << 20,
                                                                 .max_depth = 512});
  ASSERT_TRUE(parsed.ok()) << file << ": " << parsed.status().ToString();
  const json::object& c = parsed->as_object();
  const json::object& expect = c.at("expect").as_object();

  ModelRepository repo;
  auto fixture = Documents(c, "repository", "raw_repository", "repo");
  if (!fixture.empty()) {
    auto r = repo.Add(fixture);
    ASSERT_TRUE(r.ok()) << "the case's repository fixture is invalid:\n" << Dump(r.diagnostics);
  }
  auto batch = Documents(c, "documents", "raw_documents", "doc");
  auto result = repo.Add(batch);

  std::set<std::string> errors, notes;
  for (const auto& d : result.diagnostics) {
    (d.severity == Severity::kError ? errors : notes).insert(d.code);
  }
  const bool valid = expect.at("valid").as_bool();
  if (valid) {
    EXPECT_TRUE(errors.empty()) << "expected valid, got:\n" << Dump(result.diagnostics);
  } else {
    std::set<std::string> want;
    for (const auto& e : expect.at("errors").as_array()) {
      want.emplace(e.is_string() ? e.as_string() : e.at("code").as_string());
    }
    EXPECT_EQ(Join(errors), Join(want)) << "diagnostics:\n" << Dump(result.diagnostics);
    for (const auto& e : expect.at("errors").as_array()) {
      if (!e.is_object() || !e.as_object().contains("pointer")) continue;
      std::string code(e.at("code").as_string());
      std::string ptr(e.at("pointer").as_string());
      std::string doc = fmt::format("doc{}", e.as_object().contains("document")
                                                 ? e.at("document").to_number<int>()
                                                 : 0);
      bool found = std::any_of(result.diagnostics.begin(), result.diagnostics.end(),
                               [&](const Diagnostic& d) {
                                 // At the element or at one of its members.
                                 return d.code == code && d.document == doc &&
                                        (d.pointer == ptr || d.pointer.starts_with(ptr + "/"));
                               });
      EXPECT_TRUE(found) << "no " << code << " at " << doc << ":" << ptr << "; got:\n"
                         << Dump(result.diagnostics);
    }
    EXPECT_TRUE(result.added.empty()) << "an invalid batch must add nothing";
  }
  if (const auto* n = expect.if_contains("notes")) {
    EXPECT_EQ(Join(notes), Join(StringSet(*n))) << "diagnostics:\n" << Dump(result.diagnostics);
  }
  if (!valid) return;

  if (const auto* res = expect.if_contains("resolved")) {
    for (const auto& [id, want] : res->as_object()) {
      auto r = repo.Resolve(id);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      const auto& w = want.as_object();
      if (const auto* contents = w.if_contains("contents")) {
        std::set<std::string> got;
        for (const auto& rc : (*r)->contents()) got.insert(rc.content->name);
        EXPECT_EQ(Join(got), Join(StringSet(*contents))) << "contents of " << id;
      }
      if (const auto* from = w.if_contains("defined_in")) {
        for (const auto& [name, where] : from->as_object()) {
          const ResolvedContent* rc = (*r)->Find(name);
          ASSERT_NE(rc, nullptr) << name << " not in " << id;
          EXPECT_EQ(rc->defined_in, where.as_string()) << name << " in " << id;
        }
      }
      if (const auto* ext = w.if_contains("extends")) {
        std::set<std::string> got((*r)->extends_closure().begin(), (*r)->extends_closure().end());
        EXPECT_EQ(Join(got), Join(StringSet(*ext))) << "extends closure of " << id;
      }
    }
  }
  if (const auto* values = expect.if_contains("values")) {
    for (const auto& v : values->as_array()) {
      const auto& o = v.as_object();
      std::string iface(o.at("interface").as_string());
      auto r = repo.Resolve(iface);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ValueErrors errs;
      std::string what;
      if (const auto* cmd = o.if_contains("command")) {
        const json::value* req = o.if_contains("request");
        errs = ValidateCommandRequest(**r, cmd->as_string(), req ? *req : json::value(nullptr));
        what = fmt::format("command {} request {}", json::serialize(*cmd),
                           req ? json::serialize(*req) : "null");
      } else {
        errs = ValidateElementValue(**r, o.at("path").as_string(), o.at("value"));
        what = fmt::format("{} = {}", json::serialize(o.at("path")), json::serialize(o.at("value")));
      }
      std::set<std::string> got;
      std::string detail;
      for (const auto& e : errs) {
        got.insert(e.code());
        detail += "  " + e.ToString() + "\n";
      }
      EXPECT_EQ(Join(got), Join(StringSet(o.at("errors")))) << what << "\n" << detail;
    }
  }
}

// Registers one test per case file before main() runs.
const bool kRegistered = [] {
  std::vector<fs::path> files;
  if (fs::exists(kCaseDir)) {
    for (const auto& e : fs::recursive_directory_iterator(kCaseDir)) {
      if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::string name = fs::relative(f, kCaseDir).replace_extension().string();
    std::replace_if(name.begin(), name.end(), [](char ch) { return !std::isalnum(ch); }, '_');
    testing::RegisterTest("DtdlCase", name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                          [f]() -> testing::Test* {
                            struct CaseTest : testing::Test {
                              explicit CaseTest(fs::path p) : path(std::move(p)) {}
                              void TestBody() override { RunCase(path); }
                              fs::path path;
                            };
                            return new CaseTest(f);
                          });
  }
  return true;
}();

TEST(DtdlCases, FolderHasAtLeast150Cases) {
  std::size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(kCaseDir)) {
    n += e.is_regular_file() && e.path().extension() == ".json";
  }
  EXPECT_GE(n, 150u);
}

}  // namespace
}  // namespace doppel::model
