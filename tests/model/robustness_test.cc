// Robustness of the DTDL reader: hostile or broken input never crashes and always ends in a
// documented diagnostic (docs/dtdl-errors.md), and a rejected batch never changes the repository.
//
// Inputs are real ontologies from the shared data folder, cut, mutated or blown up, plus
// generated extremes (huge, deep, random). Every random source is a fixed-seed std::mt19937, so a
// failure reproduces; nothing here asserts on wall-clock time. Crashes that fuzz/dtdl_parser_fuzz
// finds belong here too, as minimized inputs.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/shared_data.h"
#include "model/model.h"

namespace doppel::model {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr std::string_view kV3Context = "dtmi:dtdl:context;3";

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path DtdlDir() { return core::SharedDataDir() / "dtdl"; }

// Every ontology file, sorted so that seeded choices pick the same files everywhere.
std::vector<fs::path> OntologyFiles(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::exists(dir)) return files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The codes the error reference documents. Errors must come from its tables; notes (severity
// info) are described in prose, so for them any back-quoted mention counts. Read at test time so
// that a code added to the library without documenting it fails here.
struct DocumentedCodes {
  std::set<std::string> table;
  std::set<std::string> mentioned;

  bool Allows(const Diagnostic& d) const {
    return d.severity == Severity::kError ? table.contains(d.code) : mentioned.contains(d.code);
  }
};

const DocumentedCodes& Documented() {
  static const DocumentedCodes codes = [] {
    DocumentedCodes c;
    std::istringstream doc(ReadAll(fs::path(DOPPEL_SOURCE_DIR) / "docs/dtdl-errors.md"));
    const std::regex row(R"(^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|)");
    const std::regex mention(R"(`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`)");
    std::string line;
    while (std::getline(doc, line)) {
      std::smatch m;
      if (std::regex_search(line, m, row)) c.table.insert(m[1]);
      for (std::sregex_iterator it(line.begin(), line.end(), mention), end; it != end; ++it) {
        c.mentioned.insert((*it)[1]);
      }
    }
    return c;
  }();
  return codes;
}

std::string Dump(const Diagnostics& diags, std::size_t max = 10) {
  std::string out;
  for (std::size_t i = 0; i < diags.size() && i < max; ++i) {
    out += "  " + FormatDiagnostic(diags[i]) + "\n";
  }
  if (diags.size() > max) out += fmt::format("  ... and {} more\n", diags.size() - max);
  return out;
}

// Empty when every diagnostic is well-formed and documented; otherwise says what is wrong.
std::string UndocumentedProblems(const Diagnostics& diags) {
  std::string out;
  for (const auto& d : diags) {
    if (d.code.empty() || d.message.empty()) {
      out += "  diagnostic without code or message: " + FormatDiagnostic(d) + "\n";
    } else if (!Documented().Allows(d)) {
      out += "  code not in docs/dtdl-errors.md: " + FormatDiagnostic(d) + "\n";
    }
  }
  return out;
}

std::set<std::string> ErrorCodes(const Diagnostics& diags) {
  std::set<std::string> out;
  for (const auto& d : diags) {
    if (d.severity == Severity::kError) out.insert(d.code);
  }
  return out;
}

// Independent well-formedness oracle: Boost.JSON with no limits, after the BOM the reader strips.
bool IsCompleteJson(std::string_view text) {
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 1u << 20;
  (void)json::parse(core::StripUtf8Bom(text), ec, {}, opts);
  return !ec;
}

SourceDocument Doc(std::string name, std::string text) {
  return SourceDocument{std::move(name), std::move(text)};
}

// A small valid v3 Interface.
std::string SmallInterface(std::string_view id) {
  return fmt::format(
      R"({{"@context": "{}", "@id": "{}", "@type": "Interface",
          "contents": [{{"@type": "Property", "name": "p", "schema": "double"}}]}})",
      kV3Context, id);
}

TEST(Robustness, DocumentedCodeListIsRead) {
  // Guards the oracle itself: an unreadable doc would make every code "undocumented".
  EXPECT_GE(Documented().table.size(), 40u);
  EXPECT_TRUE(Documented().table.contains("JSON_SYNTAX"));
  EXPECT_TRUE(Documented().table.contains("SCHEMA_TOO_DEEP"));
  EXPECT_TRUE(Documented().mentioned.contains("UNDEFINED_RELATIONSHIP_TARGET"));
}

// Every prefix of a real RealEstateCore file (BOM included) is either not JSON — exactly one
// JSON_SYNTAX — or a complete JSON value with only documented diagnostics.
TEST(Robustness, EveryPrefixOfRealFileIsJsonSyntaxOrDiagnosed) {
  const fs::path file = DtdlDir() / "RealEstateCore/Ontology/Asset/Asset.json";
  if (!fs::exists(file)) GTEST_SKIP() << "no shared data at " << file;
  const std::string text = ReadAll(file);
  ASSERT_GT(text.size(), 1000u);

  ModelRepository repo;
  std::size_t complete = 0, failures = 0;
  for (std::size_t n = 0; n <= text.size() && failures < 5; ++n) {
    std::string_view prefix(text.data(), n);
    SourceDocument doc[] = {Doc("Asset.json", std::string(prefix))};
    auto r = repo.Check(doc);
    if (IsCompleteJson(prefix)) {
      ++complete;
      std::string problems = UndocumentedProblems(r.diagnostics);
      if (!problems.empty()) {
        ++failures;
        ADD_FAILURE() << "prefix of " << n << " bytes:\n" << problems;
      }
      continue;
    }
    const bool one_syntax_error = r.diagnostics.size() == 1 &&
                                  r.diagnostics[0].code == "JSON_SYNTAX" &&
                                  r.diagnostics[0].severity == Severity::kError;
    // The doc promises line and column for a document that has any text.
    const bool located = !one_syntax_error || core::StripUtf8Bom(prefix).empty() ||
                         r.diagnostics[0].message.find("line ") != std::string::npos;
    if (!one_syntax_error || !located || !r.added.empty()) {
      ++failures;
      ADD_FAILURE() << "prefix of " << n << " bytes: want one located JSON_SYNTAX, got:\n"
                    << Dump(r.diagnostics);
    }
  }
  EXPECT_EQ(failures, 0u);
  // The whole file at least (and the file without its trailing whitespace) is complete JSON.
  EXPECT_GE(complete, 1u);
  SourceDocument whole[] = {Doc("Asset.json", text)};
  auto r = repo.Check(whole);
  EXPECT_TRUE(r.ok()) << "the uncut file must be valid:\n" << Dump(r.diagnostics);
}

// A 100 MiB document: an array of a small valid Interface and one whose description is ~100 MiB
// of text (one huge string keeps the raised-limit test to seconds even under ASan; an array of
// half a million Interfaces would spend minutes resolving).
std::string HundredMegabyteDocument() {
  constexpr std::size_t kTarget = 100u << 20;
  std::string out = "[";
  out += SmallInterface("dtmi:example:robust:Big;1");
  out += fmt::format(R"(, {{"@context": "{}", "@id": "dtmi:example:robust:Pad;1", )"
                     R"("@type": "Interface", "description": ")",
                     kV3Context);
  out.append(kTarget - out.size(), 'x');
  out += "\"}]";
  return out;
}

TEST(Robustness, HundredMegabyteDocumentIsTooLargeAndAddsNothing) {
  ModelRepository repo;
  SourceDocument docs[] = {Doc("small.json", SmallInterface("dtmi:example:robust:Small;1")),
                           Doc("huge.json", HundredMegabyteDocument())};
  ASSERT_GE(docs[1].text.size(), 100u << 20);
  auto r = repo.Add(docs);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(ErrorCodes(r.diagnostics), std::set<std::string>{"JSON_TOO_LARGE"})
      << Dump(r.diagnostics);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].document, "huge.json");
  EXPECT_TRUE(r.added.empty());
  EXPECT_EQ(repo.size(), 0u) << "a batch with an error must add nothing, the valid document too";
  EXPECT_FALSE(repo.Resolve("dtmi:example:robust:Small;1").ok());
}

// With the byte limit raised, the same document is read and its real problems are reported:
// the padding Interface is over DTDL's 1 MiB per-Interface limit and its description is too long.
// The valid Interface beside it is still not added (all-or-nothing).
TEST(Robustness, HundredMegabyteDocumentWithRaisedLimitIsDiagnosed) {
  ParseOptions options;
  options.json_limits.max_bytes = 128u << 20;
  ModelRepository repo(nullptr, options);
  SourceDocument docs[] = {Doc("huge.json", HundredMegabyteDocument())};
  auto r = repo.Add(docs);
  EXPECT_EQ(ErrorCodes(r.diagnostics),
            (std::set<std::string>{"INTERFACE_TOO_LARGE", "STRING_TOO_LONG"}))
      << Dump(r.diagnostics);
  EXPECT_EQ(UndocumentedProblems(r.diagnostics), "");
  for (const auto& d : r.diagnostics) {
    EXPECT_TRUE(d.pointer.starts_with("/1"))
        << "only the padded Interface is wrong: " << FormatDiagnostic(d);
    EXPECT_LT(d.message.size(), 1000u) << "messages must not echo the huge value";
  }
  EXPECT_EQ(repo.size(), 0u);
  EXPECT_FALSE(repo.Resolve("dtmi:example:robust:Big;1").ok());
}

TEST(Robustness, TenThousandDeepNestingIsTooDeep) {
  constexpr std::size_t kDepth = 10000;
  std::string arrays = std::string(kDepth, '[') + std::string(kDepth, ']');
  std::string objects;
  for (std::size_t i = 0; i < kDepth; ++i) objects += R"({"a":)";
  objects += "1" + std::string(kDepth, '}');
  // Deep nesting inside an otherwise valid Interface, where the reader would recurse.
  std::string in_interface = fmt::format(
      R"({{"@context": "{}", "@id": "dtmi:example:robust:Deep;1", "@type": "Interface",
          "comment": {}}})",
      kV3Context, arrays);

  ModelRepository repo;
  for (const auto& [name, text] : {std::pair{"arrays", arrays}, std::pair{"objects", objects},
                                   std::pair{"in_interface", in_interface}}) {
    SourceDocument docs[] = {Doc(name, text)};
    auto r = repo.Add(docs);
    ASSERT_EQ(r.diagnostics.size(), 1u) << name << ":\n" << Dump(r.diagnostics);
    EXPECT_EQ(r.diagnostics[0].code, "JSON_TOO_DEEP") << name;
    EXPECT_NE(r.diagnostics[0].message.find("64"), std::string::npos)
        << name << ": the message should name the limit: " << r.diagnostics[0].message;
  }
  EXPECT_EQ(repo.size(), 0u);
}

// `levels` complex schemas nested inside one Property: Object in Object (each level one field
// named "f"), or Array in Array.
std::string NestedSchemaInterface(int levels, bool arrays) {
  std::string schema = "\"double\"";
  for (int i = 0; i < levels; ++i) {
    schema =
        arrays ? fmt::format(R"({{"@type": "Array", "elementSchema": {}}})", schema)
               : fmt::format(R"({{"@type": "Object", "fields": [{{"name": "f", "schema": {}}}]}})",
                             schema);
  }
  return fmt::format(
      R"({{"@context": "{}", "@id": "dtmi:example:robust:Nested;1", "@type": "Interface",
          "contents": [{{"@type": "Property", "name": "p", "schema": {}}}]}})",
      kV3Context, schema);
}

TEST(Robustness, FiftyNestedInlineSchemasAreTooDeep) {
  // An Object level costs 3 JSON levels, so the default JSON limit (64) stops 50 of them first;
  // with the limit raised the DTDL rule must catch it.
  for (bool arrays : {false, true}) {
    SCOPED_TRACE(arrays ? "Array in Array" : "Object in Object");
    SourceDocument docs[] = {Doc("nested.json", NestedSchemaInterface(50, arrays))};

    ModelRepository strict;
    auto r = strict.Check(docs);
    // An Array level is one JSON level, so 50 of them fit in the default JSON limit.
    EXPECT_EQ(ErrorCodes(r.diagnostics),
              std::set<std::string>{arrays ? "SCHEMA_TOO_DEEP" : "JSON_TOO_DEEP"});

    ParseOptions options;
    options.json_limits.max_depth = 1024;
    ModelRepository lenient(nullptr, options);
    r = lenient.Add(docs);
    EXPECT_EQ(ErrorCodes(r.diagnostics), std::set<std::string>{"SCHEMA_TOO_DEEP"})
        << Dump(r.diagnostics);
    EXPECT_EQ(UndocumentedProblems(r.diagnostics), "");
    EXPECT_EQ(lenient.size(), 0u);

    // The limit itself: 5 levels are allowed, 6 are not.
    SourceDocument five[] = {Doc("five.json", NestedSchemaInterface(5, arrays))};
    SourceDocument six[] = {Doc("six.json", NestedSchemaInterface(6, arrays))};
    EXPECT_TRUE(lenient.Check(five).ok()) << Dump(lenient.Check(five).diagnostics);
    EXPECT_EQ(ErrorCodes(lenient.Check(six).diagnostics), std::set<std::string>{"SCHEMA_TOO_DEEP"});
  }
}

TEST(Robustness, RandomBinaryGarbageIsJsonSyntax) {
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> length(1, 4096);
  ModelRepository repo;
  std::size_t syntax = 0, failures = 0;
  for (int i = 0; i < 1000 && failures < 5; ++i) {
    std::string buf(length(rng), '\0');
    for (char& c : buf) c = static_cast<char>(byte(rng));
    SourceDocument docs[] = {Doc(fmt::format("garbage{}", i), buf)};
    auto r = repo.Check(docs);
    if (IsCompleteJson(buf)) {
      // A few bytes can be valid JSON by chance ("7"); those only need documented diagnostics.
      if (std::string p = UndocumentedProblems(r.diagnostics); !p.empty()) {
        ++failures;
        ADD_FAILURE() << "buffer " << i << ":\n" << p;
      }
      continue;
    }
    if (r.diagnostics.size() == 1 && r.diagnostics[0].code == "JSON_SYNTAX" &&
        !r.diagnostics[0].message.empty()) {
      ++syntax;
    } else {
      ++failures;
      ADD_FAILURE() << "buffer " << i << " (" << buf.size() << " bytes): want one JSON_SYNTAX:\n"
                    << Dump(r.diagnostics);
    }
  }
  EXPECT_EQ(failures, 0u);
  EXPECT_GE(syntax, 990u);
  EXPECT_EQ(repo.size(), 0u);
}

// The @id of a document and every DTMI it mentions elsewhere (extends, schema references,
// relationship targets).
void CollectDtmis(const json::value& v, std::set<std::string>* refs) {
  if (v.is_string()) {
    if (v.get_string().starts_with("dtmi:")) refs->emplace(v.get_string());
  } else if (v.is_array()) {
    for (const auto& e : v.get_array()) CollectDtmis(e, refs);
  } else if (v.is_object()) {
    for (const auto& [k, e] : v.get_object()) {
      if (k != "@id" && k != "@context") CollectDtmis(e, refs);
    }
  }
}

// True if byte `at` of JSON text `text` lies inside a string literal (not on a quote or escape).
bool InsideString(std::string_view text, std::size_t at) {
  bool in = false;
  for (std::size_t i = 0; i < at; ++i) {
    if (in && text[i] == '\\') {
      if (++i == at) return false;  // the escaped character: changing it may break the escape
    } else if (text[i] == '"') {
      in = !in;
    }
  }
  return in && text[at] != '"' && text[at] != '\\';
}

// Random damage of the kinds that happen to real files: bit flips, random bytes, deleted and
// duplicated runs; plus line deletions/duplications and character swaps inside strings, which
// often keep the JSON well-formed so the damage reaches the DTDL rules and the resolver.
std::string Mutate(std::string text, std::mt19937& rng) {
  std::uniform_int_distribution<int> count(1, 4), kind(0, 6), bit(0, 7), byte(0, 255);
  std::uniform_int_distribution<int> printable(0x20, 0x7E);
  std::uniform_int_distribution<std::size_t> run(1, 32);
  const int n = count(rng);
  for (int i = 0; i < n && !text.empty(); ++i) {
    std::uniform_int_distribution<std::size_t> pos(0, text.size() - 1);
    const std::size_t at = pos(rng);
    const std::size_t len = std::min(run(rng), text.size() - at);
    const std::size_t newline_before = text.rfind('\n', at);
    const std::size_t line_start = newline_before == std::string::npos ? 0 : newline_before + 1;
    const std::size_t line_end = std::min(text.find('\n', at), text.size() - 1) + 1;
    switch (kind(rng)) {
      case 0:
        text[at] = static_cast<char>(text[at] ^ (1 << bit(rng)));
        break;
      case 1:
        text[at] = static_cast<char>(byte(rng));
        break;
      case 2:
        text.erase(at, len);
        break;
      case 3:
        text.insert(pos(rng), text.substr(at, len));
        break;
      case 4:
        text.erase(line_start, line_end - line_start);
        break;
      case 5:
        text.insert(line_start, text.substr(line_start, line_end - line_start));
        break;
      case 6:
        if (InsideString(text, at)) {
          char c = static_cast<char>(printable(rng));
          text[at] = c == '"' || c == '\\' ? '_' : c;
        }
        break;
    }
  }
  return text;
}

// 2,000 damaged copies of real ontology files, each checked against a repository holding the
// rest of the ontologies, so damage reaches the resolver and not just the JSON reader.
TEST(Robustness, MutatedOntologyFilesGetDocumentedDiagnostics) {
  const std::vector<fs::path> files = OntologyFiles(DtdlDir());
  if (files.size() < 100) GTEST_SKIP() << "no shared data under " << DtdlDir();

  // Hold out leaf files (nothing extends or embeds them) as mutation targets; add the rest.
  std::vector<SourceDocument> all;
  std::vector<std::string> ids;
  std::set<std::string> referenced;
  for (const auto& f : files) {
    all.push_back(Doc(fs::relative(f, DtdlDir()).string(), ReadAll(f)));
    auto v = core::ParseJson(all.back().text);
    ASSERT_TRUE(v.ok()) << f << ": " << v.status().ToString();
    const json::value* id = v->is_object() ? v->as_object().if_contains("@id") : nullptr;
    ids.emplace_back(id != nullptr && id->is_string() ? std::string(id->get_string()) : "");
    CollectDtmis(*v, &referenced);
  }
  std::vector<SourceDocument> base, targets;
  for (std::size_t i = 0; i < all.size(); ++i) {
    // Every 8th leaf: a spread over all three ontologies, and a base that is still almost whole.
    const bool leaf = !ids[i].empty() && !referenced.contains(ids[i]);
    (leaf && i % 8 == 0 ? targets : base).push_back(std::move(all[i]));
  }
  ASSERT_GE(targets.size(), 20u);
  ModelRepository repo;
  auto added = repo.Add(base);
  ASSERT_TRUE(added.ok()) << Dump(added.diagnostics);
  for (const auto& t : targets) {
    SourceDocument one[] = {t};
    auto r = repo.Check(one);
    ASSERT_TRUE(r.ok()) << t.name << " must be valid unmutated:\n" << Dump(r.diagnostics);
  }

  std::mt19937 rng(7);
  std::uniform_int_distribution<std::size_t> pick(0, targets.size() - 1);
  std::map<std::string, int> seen;  // error code -> how often, to show what the damage reached
  std::size_t ok = 0, failures = 0;
  for (int i = 0; i < 2000 && failures < 5; ++i) {
    const SourceDocument& original = targets[pick(rng)];
    SourceDocument docs[] = {Doc(original.name, Mutate(original.text, rng))};
    auto r = repo.Check(docs);
    if (r.ok()) ++ok;
    if (!r.ok() && r.diagnostics.empty()) {
      ++failures;
      ADD_FAILURE() << "iteration " << i << ": rejected without a diagnostic";
    }
    if (std::string p = UndocumentedProblems(r.diagnostics); !p.empty()) {
      ++failures;
      ADD_FAILURE() << "iteration " << i << " (" << original.name << "):\n" << p;
    }
    for (const auto& code : ErrorCodes(r.diagnostics)) ++seen[code];
  }
  EXPECT_EQ(failures, 0u);
  EXPECT_EQ(repo.size(), base.size()) << "Check must never change the repository";

  std::string summary;
  for (const auto& [code, n] : seen) summary += fmt::format(" {}={}", code, n);
  std::cout << "[ mutations ] ok=" << ok << summary << "\n";
  // The damage must get past the JSON reader often enough to test the DTDL rules too.
  EXPECT_GE(seen.size(), 5u) << summary;
}

}  // namespace
}  // namespace doppel::model
