// Tests of the twin query language: every case file under tests/twin/query_cases (format in
// query_cases/README.md) as its own test, plus lexer, parser, paging, timeout and planner
// tests against an in-memory graph.
#include "twin/query/query.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "core/json.h"
#include "twin/in_memory_graph.h"
#include "twin/query/lexer.h"

namespace doppel::twin::query {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::InMemoryGraph;

const fs::path kCaseDir = fs::path(DOPPEL_SOURCE_DIR) / "tests/twin/query_cases";

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json::value ReadJson(const fs::path& p) {
  auto parsed = core::ParseJson(ReadAll(p));
  EXPECT_TRUE(parsed.ok()) << p << ": " << parsed.status().ToString();
  return parsed.ok() ? std::move(*parsed) : json::value();
}

// Serializes with object keys sorted, so equal documents compare equal as strings.
void Canonical(const json::value& v, std::string* out) {
  switch (v.kind()) {
    case json::kind::object: {
      std::vector<const json::key_value_pair*> kv;
      for (const auto& e : v.get_object()) kv.push_back(&e);
      std::sort(kv.begin(), kv.end(), [](auto* a, auto* b) { return a->key() < b->key(); });
      *out += '{';
      for (std::size_t i = 0; i < kv.size(); ++i) {
        if (i) *out += ',';
        *out += json::serialize(json::value(kv[i]->key()));
        *out += ':';
        Canonical(kv[i]->value(), out);
      }
      *out += '}';
      break;
    }
    case json::kind::array: {
      *out += '[';
      const auto& a = v.get_array();
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (i) *out += ',';
        Canonical(a[i], out);
      }
      *out += ']';
      break;
    }
    case json::kind::double_: {
      double d = v.get_double();
      // 40.0 and 40 are the same JSON number for the comparison.
      if (d == static_cast<double>(static_cast<std::int64_t>(d))) {
        *out += std::to_string(static_cast<std::int64_t>(d));
      } else {
        *out += json::serialize(v);
      }
      break;
    }
    default:
      *out += json::serialize(v);
  }
}

std::vector<std::string> CanonicalRows(const json::array& rows, bool ordered) {
  std::vector<std::string> out;
  for (const auto& r : rows) {
    std::string s;
    Canonical(r, &s);
    out.push_back(std::move(s));
  }
  if (!ordered) std::sort(out.begin(), out.end());
  return out;
}

std::string Lines(const std::vector<std::string>& rows) {
  std::string s;
  for (const auto& r : rows) s += "    " + r + "\n";
  return s.empty() ? "    (none)\n" : s;
}

// Runs every page of `q`; returns the concatenated rows or the first error.
core::Result<json::array> AllPages(const Query& q, const GraphView& g, QueryOptions opts,
                                   std::size_t* pages = nullptr) {
  json::array all;
  std::size_t n = 0;
  for (;;) {
    auto page = q.Execute(g, opts);
    if (!page.ok()) return page.status();
    ++n;
    for (auto& r : page->items) all.push_back(std::move(r));
    if (page->continuation_token.empty()) break;
    if (n > 100000) return core::Status("TEST", "paging does not end");
    opts.continuation_token = page->continuation_token;
  }
  if (pages) *pages = n;
  return all;
}

void RunCase(const fs::path& file) {
  json::value cv = ReadJson(file);
  ASSERT_TRUE(cv.is_object());
  const json::object& c = cv.as_object();
  SCOPED_TRACE(std::string(c.contains("description") ? c.at("description").as_string() : ""));
  const std::string text(c.at("query").as_string());
  SCOPED_TRACE("query: " + text);

  InMemoryGraph graph;
  json::value graph_doc;
  if (const auto* gf = c.if_contains("graph_file")) {
    graph_doc = ReadJson(file.parent_path() / std::string(gf->as_string()));
  } else if (const auto* g = c.if_contains("graph")) {
    graph_doc = *g;
  }
  if (graph_doc.is_object()) {
    auto st = graph.Load(graph_doc.as_object());
    ASSERT_TRUE(st.ok()) << "the case's graph is invalid: " << st.ToString();
  }
  if (const auto* ix = c.if_contains("indexes")) {
    for (const auto& p : ix->as_array()) graph.IndexProperty(std::string(p.as_string()));
  }

  QueryOptions opts;
  if (const auto* o = c.if_contains("options")) {
    const auto& oo = o->as_object();
    if (const auto* v = oo.if_contains("page_size")) opts.page_size = v->to_number<std::size_t>();
    if (const auto* v = oo.if_contains("max_query_length")) {
      opts.max_query_length = v->to_number<std::size_t>();
    }
    if (const auto* v = oo.if_contains("timeout_ms")) {
      opts.timeout = std::chrono::milliseconds(v->to_number<std::int64_t>());
    }
    if (const auto* v = oo.if_contains("continuation_token")) {
      opts.continuation_token = std::string(v->as_string());
    }
  }

  const json::object& expect = c.at("expect").as_object();
  auto q = Query::Parse(text, opts);
  core::Result<json::array> rows =
      q.ok() ? AllPages(*q, graph, opts) : core::Result<json::array>(q.status());
  if (const auto* err = expect.if_contains("error")) {
    ASSERT_FALSE(rows.ok()) << "expected " << err->as_string() << ", got "
                            << json::serialize(*rows);
    EXPECT_EQ(rows.status().code(), err->as_string()) << rows.status().ToString();
    if (const auto* m = expect.if_contains("message_contains")) {
      EXPECT_NE(rows.status().message().find(std::string(m->as_string())), std::string::npos)
          << "message: " << rows.status().message();
    }
    return;
  }
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_TRUE(q.ok());

  bool ordered = expect.contains("ordered") && expect.at("ordered").as_bool();
  if (const auto* want = expect.if_contains("rows")) {
    auto got_rows = CanonicalRows(*rows, ordered);
    auto want_rows = CanonicalRows(want->as_array(), ordered);
    EXPECT_EQ(got_rows, want_rows) << "got:\n" << Lines(got_rows) << "want:\n" << Lines(want_rows);
  }
  if (const auto* n = expect.if_contains("row_count")) {
    EXPECT_EQ(rows->size(), n->to_number<std::size_t>());
  }
  if (const auto* p = c.if_contains("plan_contains")) {
    std::string plan = q->Explain(graph);
    std::vector<std::string> wants;
    if (p->is_string()) {
      wants.emplace_back(p->as_string());
    } else {
      for (const auto& s : p->as_array()) wants.emplace_back(s.as_string());
    }
    for (const auto& w : wants) {
      EXPECT_NE(plan.find(w), std::string::npos) << "plan: " << plan << "\nwanted: " << w;
    }
  }

  // Paging must not change the result: the same rows one at a time, in the same order.
  if (!opts.continuation_token.empty()) return;
  QueryOptions one = opts;
  one.page_size = 1;
  std::size_t pages = 0;
  auto paged = AllPages(*q, graph, one, &pages);
  ASSERT_TRUE(paged.ok()) << paged.status().ToString();
  EXPECT_EQ(CanonicalRows(*paged, true), CanonicalRows(*rows, true)) << "page size 1 differs";
  EXPECT_EQ(pages, std::max<std::size_t>(rows->size(), 1)) << "one row per page";
}

bool IsCaseFile(const fs::path& p) {
  return p.extension() == ".json" && p.parent_path().filename() != "graphs";
}

std::vector<fs::path> CaseFiles() {
  std::vector<fs::path> files;
  if (!fs::exists(kCaseDir)) return files;
  for (const auto& e : fs::recursive_directory_iterator(kCaseDir)) {
    if (e.is_regular_file() && IsCaseFile(e.path())) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Registers one test per case file before main() runs.
const bool kRegistered = [] {
  for (const auto& f : CaseFiles()) {
    std::string name = fs::relative(f, kCaseDir).replace_extension().string();
    std::replace_if(
        name.begin(), name.end(), [](char ch) { return !std::isalnum(ch); }, '_');
    ::testing::RegisterTest("QueryCase", name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                            [f]() -> ::testing::Test* {
                              struct CaseTest : ::testing::Test {
                                explicit CaseTest(fs::path p) : path(std::move(p)) {}
                                void TestBody() override { RunCase(path); }
                                fs::path path;
                              };
                              return new CaseTest(f);
                            });
  }
  return true;
}();

TEST(QueryCases, FolderHasAtLeast60Cases) { EXPECT_GE(CaseFiles().size(), 60u); }

TEST(QueryCases, EveryErrorCodeIsCovered) {
  std::set<std::string> codes;
  for (const auto& f : CaseFiles()) {
    json::value c = ReadJson(f);
    if (const auto* e = c.as_object().at("expect").as_object().if_contains("error")) {
      codes.emplace(e->as_string());
    }
  }
  for (const char* code : {"QUERY_SYNTAX", "QUERY_TOO_LONG", "QUERY_UNSUPPORTED", "QUERY_INVALID",
                           "QUERY_TIMEOUT", "INVALID_CONTINUATION"}) {
    EXPECT_TRUE(codes.contains(code)) << "no case expects " << code;
  }
}

// ---- lexer and parser positions ----

TEST(QueryLexer, TokensCarryLineAndColumn) {
  auto toks = internal::Lex("SELECT *\n  FROM DIGITALTWINS T\nWHERE T.x >= -1.5e2");
  ASSERT_TRUE(toks.ok()) << toks.status().ToString();
  std::vector<std::tuple<std::string, int, int>> got;
  for (const auto& t : *toks) got.emplace_back(t.text, t.pos.line, t.pos.column);
  std::vector<std::tuple<std::string, int, int>> want = {
      {"SELECT", 1, 1}, {"*", 1, 8},     {"FROM", 2, 3}, {"DIGITALTWINS", 2, 8},
      {"T", 2, 21},     {"WHERE", 3, 1}, {"T", 3, 7},    {".", 3, 8},
      {"x", 3, 9},      {">=", 3, 11},   {"-", 3, 14},   {"1.5e2", 3, 15},
      {"", 3, 20}};
  EXPECT_EQ(got, want);
  EXPECT_EQ((*toks)[11].number.as_double(), 150.0);
}

TEST(QueryLexer, HopRangeIsNotADecimal) {
  auto toks = internal::Lex("*1..3");
  ASSERT_TRUE(toks.ok());
  ASSERT_EQ(toks->size(), 5u);
  EXPECT_EQ((*toks)[1].number.as_int64(), 1);
  EXPECT_EQ((*toks)[2].kind, internal::TokenKind::kDotDot);
  EXPECT_EQ((*toks)[3].number.as_int64(), 3);
}

TEST(QueryLexer, StringsAndEscapedNames) {
  auto toks = internal::Lex(R"('it\'s' "say \"hi\"" [[group]] '\u00e9')");
  ASSERT_TRUE(toks.ok()) << toks.status().ToString();
  EXPECT_EQ((*toks)[0].text, "it's");
  EXPECT_EQ((*toks)[1].text, "say \"hi\"");
  EXPECT_EQ((*toks)[2].kind, internal::TokenKind::kQuotedIdent);
  EXPECT_EQ((*toks)[2].text, "group");
  EXPECT_EQ((*toks)[3].text, "\xc3\xa9");
}

TEST(QueryLexer, SurrogatePairEscapes) {
  auto toks = internal::Lex(R"('\uD83D\uDE00')");
  ASSERT_TRUE(toks.ok()) << toks.status().ToString();
  EXPECT_EQ((*toks)[0].text, "\xF0\x9F\x98\x80");
  for (const char* bad : {R"('\uD83D')", R"('\uDE00')", R"('\uD83Dx')", R"('\u12')"}) {
    auto t = internal::Lex(bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.status().code(), "QUERY_SYNTAX");
  }
}

TEST(QueryLexer, ColumnsCountCharactersNotBytes) {
  // 'é' is two bytes; the '#' after it is still column 5.
  auto toks = internal::Lex("'é' #");
  ASSERT_FALSE(toks.ok());
  EXPECT_EQ(toks.status().code(), "QUERY_SYNTAX");
  EXPECT_NE(toks.status().message().find("line 1, column 5"), std::string::npos)
      << toks.status().message();
}

TEST(QueryLexer, UnterminatedStringPointsAtItsStart) {
  auto toks = internal::Lex("SELECT\n  'abc");
  ASSERT_FALSE(toks.ok());
  EXPECT_NE(toks.status().message().find("line 2, column 3"), std::string::npos)
      << toks.status().message();
}

struct SyntaxCase {
  const char* query;
  const char* code;
  const char* position;
  const char* expected;
};

class QueryParserErrors : public ::testing::TestWithParam<SyntaxCase> {};

TEST_P(QueryParserErrors, ReportPositionAndExpectation) {
  const SyntaxCase& c = GetParam();
  auto q = Query::Parse(c.query);
  ASSERT_FALSE(q.ok()) << c.query;
  EXPECT_EQ(q.status().code(), c.code) << q.status().ToString();
  EXPECT_EQ(q.status().message().rfind(c.position, 0), 0u) << q.status().message();
  EXPECT_NE(q.status().message().find(c.expected), std::string::npos) << q.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Positions, QueryParserErrors,
    ::testing::Values(
        SyntaxCase{"", "QUERY_SYNTAX", "line 1, column 1", "expected SELECT"},
        SyntaxCase{"SELECT * DIGITALTWINS", "QUERY_SYNTAX", "line 1, column 10",
                   "expected FROM, found 'DIGITALTWINS'"},
        SyntaxCase{"SELECT T.a FROM DIGITALTWINS T WHERE", "QUERY_SYNTAX", "line 1, column 37",
                   "expected a condition, found end of query"},
        SyntaxCase{"SELECT *\nFROM DIGITALTWINS T\nWHERE T.a = = 1", "QUERY_SYNTAX",
                   "line 3, column 13", "expected a value to compare with, found '='"},
        SyntaxCase{"SELECT * FROM DIGITALTWINS T WHERE (T.a = 1", "QUERY_SYNTAX",
                   "line 1, column 44", "expected ')'"},
        SyntaxCase{"SELECT * FROM DIGITALTWINS MATCH (a)-[:r]->b", "QUERY_SYNTAX",
                   "line 1, column 44", "expected '(' starting a twin pattern"},
        SyntaxCase{"SELECT * FROM DIGITALTWINS WHERE x IN ['a' 'b']", "QUERY_SYNTAX",
                   "line 1, column 44", "expected ',' or ']'"},
        SyntaxCase{"SELECT TOP 5 FROM DIGITALTWINS", "QUERY_SYNTAX", "line 1, column 12",
                   "expected '(' after TOP"},
        SyntaxCase{"SELECT T.name FROM DIGITALTWINS T JOIN C RELATED X.contains", "QUERY_INVALID",
                   "line 1, column 50", "unknown collection 'X'"},
        SyntaxCase{"SELECT C.x FROM DIGITALTWINS T\n JOIN C RELATED T.r WHERE Z.a = 1",
                   "QUERY_INVALID", "line 2, column 27", "unknown collection 'Z'"},
        SyntaxCase{"SELECT * FROM DIGITALTWINS ORDER BY x", "QUERY_UNSUPPORTED",
                   "line 1, column 28", "ORDER BY"}));

TEST(QueryParser, KeywordsAreCaseInsensitive) {
  EXPECT_TRUE(Query::Parse("select top(3) t.a as b from digitaltwins t where t.x in [1] "
                           "and not is_defined(t.y) or StartsWith(t.z, 'q')")
                  .ok());
}

TEST(QueryParser, TooLongCountsCharacters) {
  QueryOptions o;
  o.max_query_length = 30;
  std::string ok = "SELECT * FROM DIGITALTWINS";  // 26
  EXPECT_TRUE(Query::Parse(ok, o).ok());
  auto q = Query::Parse(ok + " WHERE", o);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), "QUERY_TOO_LONG");
  // The default limit is 8000 characters.
  std::string big = "SELECT * FROM DIGITALTWINS WHERE T.a = '" + std::string(8000, 'x') + "'";
  auto q2 = Query::Parse(big);
  ASSERT_FALSE(q2.ok());
  EXPECT_EQ(q2.status().code(), "QUERY_TOO_LONG");
}

// ---- a generated graph for paging, timeout and planner tests ----

json::object TwinDoc(const std::string& id, const std::string& model, int n) {
  json::object d;
  d["$dtId"] = id;
  d["$metadata"] = json::object{{"$model", model}};
  d["n"] = n;
  d["parity"] = n % 2 == 0 ? "even" : "odd";
  return d;
}

constexpr const char* kModels = R"([
  {"@id": "dtmi:t:Base;1", "@type": "Interface", "@context": "dtmi:dtdl:context;2",
   "contents": [{"@type": "Property", "name": "n", "schema": "integer"},
                {"@type": "Property", "name": "parity", "schema": "string"},
                {"@type": "Relationship", "name": "next"}]},
  {"@id": "dtmi:t:Child;1", "@type": "Interface", "@context": "dtmi:dtdl:context;2",
   "extends": "dtmi:t:Base;1"},
  {"@id": "dtmi:t:Other;1", "@type": "Interface", "@context": "dtmi:dtdl:context;2"}
])";

void Populate(InMemoryGraph* g, int n) {
  ASSERT_TRUE(g->AddModels(json::parse(kModels).as_array()).ok());
  for (int i = 0; i < n; ++i) {
    const char* model = i % 10 == 0   ? "dtmi:t:Child;1"
                        : i % 10 == 1 ? "dtmi:t:Other;1"
                                      : "dtmi:t:Base;1";
    ASSERT_TRUE(g->AddTwin(TwinDoc(fmt::format("t{:06}", i), model, i)).ok());
    if (i > 0) {
      json::object r;
      r["$relationshipId"] = fmt::format("r{}", i);
      r["$sourceId"] = fmt::format("t{:06}", i - 1);
      r["$targetId"] = fmt::format("t{:06}", i);
      r["$relationshipName"] = "next";
      ASSERT_TRUE(g->AddRelationship(std::move(r)).ok());
    }
  }
}

TEST(QueryPaging, UnionOfPagesEqualsFullResult) {
  InMemoryGraph g;
  Populate(&g, 250);
  auto q = Query::Parse("SELECT T.$dtId, T.n FROM DIGITALTWINS T WHERE T.parity = 'even'");
  ASSERT_TRUE(q.ok());
  QueryOptions all;
  all.page_size = 1000;
  auto full = q->Execute(g, all);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->items.size(), 125u);
  EXPECT_TRUE(full->continuation_token.empty());

  QueryOptions paged;
  paged.page_size = 7;
  std::size_t pages = 0;
  auto rows = AllPages(*q, g, paged, &pages);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(pages, 18u);  // 17 full pages and one of 6
  EXPECT_EQ(CanonicalRows(*rows, true), CanonicalRows(full->items, true));
}

TEST(QueryPaging, DefaultAndMaximumPageSize) {
  InMemoryGraph g;
  Populate(&g, 1500);
  auto q = Query::Parse("SELECT T.n FROM DIGITALTWINS T");
  ASSERT_TRUE(q.ok());
  auto p1 = q->Execute(g);
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(p1->items.size(), 100u);
  EXPECT_FALSE(p1->continuation_token.empty());
  QueryOptions big;
  big.page_size = 5000;
  auto p2 = q->Execute(g, big);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p2->items.size(), 1000u);
  big.page_size = 0;  // means the default
  auto p3 = q->Execute(g, big);
  ASSERT_TRUE(p3.ok());
  EXPECT_EQ(p3->items.size(), 100u);
}

TEST(QueryPaging, TopBoundsAllPages) {
  InMemoryGraph g;
  Populate(&g, 100);
  auto q = Query::Parse("SELECT TOP(25) T.n FROM DIGITALTWINS T");
  ASSERT_TRUE(q.ok());
  QueryOptions o;
  o.page_size = 10;
  std::size_t pages = 0;
  auto rows = AllPages(*q, g, o, &pages);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 25u);
  EXPECT_EQ(pages, 3u);
  // Exactly a page's worth at the TOP boundary gives no extra, empty page.
  auto q2 = Query::Parse("SELECT TOP(20) T.n FROM DIGITALTWINS T");
  ASSERT_TRUE(q2.ok());
  auto rows2 = AllPages(*q2, g, o, &pages);
  ASSERT_TRUE(rows2.ok());
  EXPECT_EQ(rows2->size(), 20u);
  EXPECT_EQ(pages, 2u);
}

TEST(QueryPaging, TokenOfAnotherQueryIsRejected) {
  InMemoryGraph g;
  Populate(&g, 50);
  QueryOptions o;
  o.page_size = 10;
  auto a = RunQuery(g, "SELECT T.n FROM DIGITALTWINS T", o);
  ASSERT_TRUE(a.ok());
  ASSERT_FALSE(a->continuation_token.empty());
  o.continuation_token = a->continuation_token;
  auto b = RunQuery(g, "SELECT T.$dtId FROM DIGITALTWINS T", o);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), "INVALID_CONTINUATION");
  for (const char* bad : {"x", "!!!!", "ZHExLjEyMy40", ""}) {
    o.continuation_token = bad;
    auto c = RunQuery(g, "SELECT T.n FROM DIGITALTWINS T", o);
    if (std::string(bad).empty()) {
      EXPECT_TRUE(c.ok());
    } else {
      ASSERT_FALSE(c.ok()) << bad;
      EXPECT_EQ(c.status().code(), "INVALID_CONTINUATION") << bad;
    }
  }
}

TEST(QueryPaging, PagesAreNotASnapshot) {
  // Documented behaviour: a write between pages is visible to later pages.
  InMemoryGraph g;
  Populate(&g, 10);
  auto q = Query::Parse("SELECT T.$dtId FROM DIGITALTWINS T");
  ASSERT_TRUE(q.ok());
  QueryOptions o;
  o.page_size = 5;
  auto p1 = q->Execute(g, o);
  ASSERT_TRUE(p1.ok());
  ASSERT_TRUE(g.AddTwin(TwinDoc("t999999", "dtmi:t:Base;1", 7)).ok());
  o.continuation_token = p1->continuation_token;
  auto p2 = q->Execute(g, o);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p2->items.size(), 5u);
  EXPECT_FALSE(p2->continuation_token.empty());  // the new twin is on a third page
}

TEST(QueryPaging, CountIsOnePage) {
  InMemoryGraph g;
  Populate(&g, 300);
  QueryOptions o;
  o.page_size = 1;
  auto r = RunQuery(g, "SELECT COUNT() FROM DIGITALTWINS WHERE IS_OF_MODEL('dtmi:t:Base;1')", o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->items.size(), 1u);
  EXPECT_EQ(r->items[0].at("COUNT").to_number<int>(), 270);  // Base and Child, not Other
  EXPECT_TRUE(r->continuation_token.empty());
}

// ---- timeout ----

// Delays every twin of a scan, so a query's time limit passes mid-scan.
class SlowGraph : public InMemoryGraph {
 public:
  void ForEachTwin(const std::function<bool(const TwinPtr&)>& fn) const override {
    InMemoryGraph::ForEachTwin([&](const TwinPtr& t) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      ++visited;
      return fn(t);
    });
  }
  mutable std::atomic<int> visited{0};
};

TEST(QueryTimeout, ScanStopsWithQueryTimeout) {
  SlowGraph g;
  Populate(&g, 2000);  // about 0.4 s of scanning
  QueryOptions o;
  o.timeout = std::chrono::milliseconds(20);
  auto r = RunQuery(g, "SELECT COUNT() FROM DIGITALTWINS T WHERE T.n < 0", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "QUERY_TIMEOUT");
  // Checked every 256 twins (each takes at least 200 us, so 256 of them outlast 20 ms): the scan
  // stops at a check, not at the end. Counted, not timed: no wall-clock assertion.
  EXPECT_LT(g.visited.load(), 2000);
}

TEST(QueryTimeout, FastQueryWithinLimit) {
  SlowGraph g;
  Populate(&g, 2000);
  QueryOptions o;
  o.timeout = std::chrono::milliseconds(20);
  auto r = RunQuery(g, "SELECT T.n FROM DIGITALTWINS T WHERE T.$dtId = 't000005'", o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->items.size(), 1u);
}

// ---- planner ----

TEST(QueryPlanner, SelectiveQueriesUseIndexes) {
  InMemoryGraph g;
  Populate(&g, 1000);
  struct Want {
    const char* query;
    const char* plan;
  };
  for (const Want& w : std::vector<Want>{
           {"SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 't000001'",
            "IndexSeek(T.$dtId) -> Filter -> Project"},
           {"SELECT * FROM DIGITALTWINS WHERE $dtId IN ['t000001', 't000002']",
            "IndexSeek($dtId) -> Filter -> Project"},
           {"SELECT * FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:t:Other;1') AND T.n > 5",
            "ModelIndex(T: dtmi:t:Other;1) -> Filter -> Project"},
           {"SELECT * FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:t:Base;1')",
            "ModelIndex(T: dtmi:t:Base;1, dtmi:t:Child;1) -> Filter -> Project"},
           {"SELECT * FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:t:Base;1', exact)",
            "ModelIndex(T: dtmi:t:Base;1) -> Filter -> Project"},
           {"SELECT * FROM DIGITALTWINS T WHERE T.n > 5", "Scan(T) -> Filter -> Project"},
           {"SELECT COUNT() FROM DIGITALTWINS", "Scan(twins) -> Count"},
           {"SELECT TOP(3) B FROM DIGITALTWINS A JOIN B RELATED A.next WHERE A.$dtId = 't1'",
            "IndexSeek(A.$dtId) -> Filter -> Expand(A-[:next]->B) -> Top(3) -> Project"},
           {"SELECT A FROM DIGITALTWINS A JOIN B RELATED A.next WHERE B.$dtId = 't1'",
            "IndexSeek(B.$dtId) -> Filter -> Expand(B<-[:next]-A) -> Project"},
           {"SELECT b FROM DIGITALTWINS MATCH (a)-[:next*..3]->(b) WHERE a.$dtId = 't1' AND "
            "b.n > 2",
            "IndexSeek(a.$dtId) -> Filter -> Expand(a-[:next 1-3 hops]->b) -> Filter -> "
            "Project"},
           {"SELECT * FROM RELATIONSHIPS WHERE $sourceId = 't1'",
            "IndexSeek($sourceId) -> Filter -> Project"},
       }) {
    auto q = Query::Parse(w.query);
    ASSERT_TRUE(q.ok()) << w.query << ": " << q.status().ToString();
    EXPECT_EQ(q->Explain(g), w.plan) << w.query;
  }
}

TEST(QueryPlanner, IdSeekDoesNotScan) {
  InMemoryGraph g;
  Populate(&g, 1000);
  auto r = RunQuery(g, "SELECT T.n FROM DIGITALTWINS T WHERE T.$dtId = 't000042' AND T.n = 42");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->items.size(), 1u);
  EXPECT_EQ(g.scans.load(), 0);
  EXPECT_EQ(g.finds.load(), 1);
}

TEST(QueryPlanner, ModelIndexDoesNotScan) {
  InMemoryGraph g;
  Populate(&g, 1000);
  auto r = RunQuery(g, "SELECT COUNT() FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:t:Child;1')");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->items[0].at("COUNT").to_number<int>(), 100);
  EXPECT_EQ(g.scans.load(), 0);
  EXPECT_EQ(g.model_lookups.load(), 1);
}

TEST(QueryPlanner, PropertyEqualityIsNotedAndIndexUsedOnceAvailable) {
  InMemoryGraph g;
  Populate(&g, 1000);
  const char* text = "SELECT T.$dtId FROM DIGITALTWINS T WHERE T.n = 77";
  auto q = Query::Parse(text);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->Explain(g), "Scan(T) -> Filter -> Project");
  EXPECT_TRUE(g.noted().contains("n"));
  g.set_auto_index(true);
  auto r = q->Execute(g);  // noting again now builds the (test graph's) index
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(q->Explain(g), "PropertyIndex(T.n) -> Filter -> Project");
  int scans = g.scans.load();
  auto r2 = q->Execute(g);
  ASSERT_TRUE(r2.ok());
  ASSERT_EQ(r2->items.size(), 1u);
  EXPECT_EQ(r2->items[0].at("$dtId").as_string(), "t000077");
  EXPECT_EQ(g.scans.load(), scans);  // answered from the index
}

TEST(QueryPlanner, SystemAndNestedPropertiesAreNotNoted) {
  InMemoryGraph g;
  Populate(&g, 10);
  ASSERT_TRUE(RunQuery(g,
                       "SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 'x' AND T.a.b = 1 AND "
                       "T.parity = 'odd'")
                  .ok());
  EXPECT_EQ(g.noted(), (std::set<std::string>{"parity"}));
}

TEST(QueryPlanner, ExpansionStartsFromTheBoundSide) {
  InMemoryGraph g;
  Populate(&g, 1000);
  auto r = RunQuery(g,
                    "SELECT A.$dtId FROM DIGITALTWINS A JOIN B RELATED A.next "
                    "WHERE B.$dtId = 't000500'");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->items.size(), 1u);
  EXPECT_EQ(r->items[0].at("$dtId").as_string(), "t000499");
  EXPECT_EQ(g.scans.load(), 0);
  EXPECT_LE(g.adjacency_calls.load(), 2);
}

TEST(QueryExecutor, SelectiveQueryOverManyTwinsIsFast) {
  InMemoryGraph g;
  Populate(&g, 100000);
  auto q = Query::Parse(
      "SELECT T FROM DIGITALTWINS T WHERE T.$dtId IN ['t000010', 't099999'] "
      "AND IS_OF_MODEL(T, 'dtmi:t:Base;1')");
  ASSERT_TRUE(q.ok());
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) {
    auto r = q->Execute(g);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->items.size(), 2u);
  }
  auto per_query = (std::chrono::steady_clock::now() - start) / 100;
  // Generous bound (sanitizer builds, loaded machines); the target is far lower.
  EXPECT_LT(per_query, std::chrono::milliseconds(10));
}

// Random sequences of the language's tokens: every one must come back as rows or as one of
// the documented error codes, never crash or hang.
TEST(QueryRobustness, TokenSoupGivesRowsOrKnownErrors) {
  static const std::vector<std::string> kVocab = {"SELECT",
                                                  "*",
                                                  "FROM",
                                                  "DIGITALTWINS",
                                                  "RELATIONSHIPS",
                                                  "T",
                                                  "R",
                                                  "a",
                                                  "WHERE",
                                                  "AND",
                                                  "OR",
                                                  "NOT",
                                                  "(",
                                                  ")",
                                                  "[",
                                                  "]",
                                                  ",",
                                                  ".",
                                                  "=",
                                                  "!=",
                                                  "<",
                                                  ">=",
                                                  "IN",
                                                  "NIN",
                                                  "'x'",
                                                  "\"y\"",
                                                  "1",
                                                  "-2.5",
                                                  "true",
                                                  "null",
                                                  "JOIN",
                                                  "RELATED",
                                                  "MATCH",
                                                  "-",
                                                  "->",
                                                  "<-",
                                                  ":",
                                                  "|",
                                                  "*2",
                                                  "*1..3",
                                                  "COUNT()",
                                                  "TOP(2)",
                                                  "AS",
                                                  "$dtId",
                                                  "IS_OF_MODEL",
                                                  "STARTSWITH",
                                                  "IS_DEFINED",
                                                  "exact",
                                                  "[[group]]",
                                                  "ORDER",
                                                  "BY",
                                                  "'",
                                                  "#",
                                                  "\n"};
  static const std::set<std::string> kCodes = {"QUERY_SYNTAX", "QUERY_INVALID", "QUERY_UNSUPPORTED",
                                               "QUERY_TOO_LONG"};
  InMemoryGraph g;
  Populate(&g, 20);
  std::uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::size_t>(state >> 33);
  };
  // Valid queries, split at spaces, that the loop damages a little.
  static const std::vector<std::string> kSeeds = {
      "SELECT * FROM DIGITALTWINS T WHERE T.n > 3 AND T.parity = 'odd'",
      "SELECT T.$dtId , T.n FROM DIGITALTWINS T WHERE T.$dtId IN [ 't000001' , 't000002' ]",
      "SELECT B FROM DIGITALTWINS A JOIN B RELATED A.next R WHERE A.$dtId = 't000001'",
      "SELECT B.n FROM DIGITALTWINS MATCH (A)-[:next*..3]->(B) WHERE A.$dtId = 't000001'",
      "SELECT COUNT() FROM DIGITALTWINS WHERE IS_OF_MODEL( 'dtmi:t:Base;1' , exact )",
      "SELECT TOP(3) FROM DIGITALTWINS WHERE NOT ( STARTSWITH( $dtId , 't' ) OR n = 1 )",
      "SELECT R.$relationshipId FROM RELATIONSHIPS R WHERE R.$sourceId = 't000003'"};
  auto split = [](const std::string& q) {
    std::vector<std::string> out;
    std::istringstream in(q);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
  };
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::string> words;
    if (i % 4 == 0) {
      std::size_t n = 1 + next() % 14;
      words.push_back("SELECT");
      for (std::size_t k = 0; k < n; ++k) words.push_back(kVocab[next() % kVocab.size()]);
    } else {
      words = split(kSeeds[next() % kSeeds.size()]);
      for (std::size_t m = next() % 3; m > 0; --m) {
        std::size_t at = next() % words.size();
        switch (next() % 3) {
          case 0:
            words.erase(words.begin() + static_cast<std::ptrdiff_t>(at));
            break;
          case 1:
            words.insert(words.begin() + static_cast<std::ptrdiff_t>(at),
                         kVocab[next() % kVocab.size()]);
            break;
          default:
            words[at] = kVocab[next() % kVocab.size()];
            break;
        }
        if (words.empty()) words.push_back("SELECT");
      }
    }
    std::string text;
    for (const auto& w : words) text += w + " ";
    auto r = RunQuery(g, text);
    if (r.ok()) {
      ++ok;
    } else {
      EXPECT_TRUE(kCodes.contains(r.status().code())) << text << " -> " << r.status().ToString();
      if (r.status().code() != "QUERY_TOO_LONG") {
        EXPECT_EQ(r.status().message().rfind("line ", 0), 0u) << r.status().message();
      }
    }
  }
  EXPECT_GT(ok, 0);
}

}  // namespace
}  // namespace doppel::twin::query
