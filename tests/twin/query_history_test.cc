// Tests of history aggregates in the twin query language (MEAN(T.p, '5m') > x and its
// siblings) against an in-memory graph and a fake history seam (QueryOptions::history_aggregate).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "twin/in_memory_graph.h"
#include "twin/query/query.h"

namespace doppel::twin::query {
namespace {

namespace json = boost::json;
using testing::InMemoryGraph;

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kNow = 1'700'000'000 * kSecond;

std::int64_t Ago(std::int64_t seconds) { return kNow - seconds * kSecond; }

// A history store in a map: aggregates computed from the points, every request recorded.
class FakeHistory {
 public:
  struct Call {
    std::string twin, path, agg;
    std::int64_t from_ns = 0, to_ns = 0;
  };

  void Add(const std::string& twin, const std::string& path, std::int64_t t_ns, double v) {
    series_[{twin, path}].emplace_back(t_ns, v);
  }

  core::Result<std::optional<double>> operator()(const HistoryAggregateRequest& r) {
    calls.push_back(
        {std::string(r.twin), std::string(r.path), std::string(r.agg), r.from_ns, r.to_ns});
    using Number = std::optional<double>;
    auto it = series_.find({std::string(r.twin), std::string(r.path)});
    if (it == series_.end()) return Number();
    std::vector<std::pair<std::int64_t, double>> in;
    for (const auto& p : it->second) {
      if (p.first >= r.from_ns && p.first <= r.to_ns) in.push_back(p);
    }
    if (in.empty()) return Number();
    std::vector<double> v;
    v.reserve(in.size());
    for (const auto& p : in) v.push_back(p.second);
    std::sort(v.begin(), v.end());
    double sum = 0;
    for (double x : v) sum += x;
    auto percentile = [&](double q) {
      double rank = q * static_cast<double>(v.size() - 1);
      auto lo = static_cast<std::size_t>(std::floor(rank));
      std::size_t hi = std::min(lo + 1, v.size() - 1);
      return v[lo] + (rank - static_cast<double>(lo)) * (v[hi] - v[lo]);
    };
    if (r.agg == "mean") return Number(sum / static_cast<double>(v.size()));
    if (r.agg == "min") return Number(v.front());
    if (r.agg == "max") return Number(v.back());
    if (r.agg == "sum") return Number(sum);
    if (r.agg == "count") return Number(static_cast<double>(v.size()));
    if (r.agg == "last") {
      return Number(std::max_element(in.begin(), in.end())->second);
    }
    if (r.agg == "p50") return Number(percentile(0.50));
    if (r.agg == "p95") return Number(percentile(0.95));
    if (r.agg == "p99") return Number(percentile(0.99));
    return core::Status("TEST", fmt::format("unknown aggregate '{}'", r.agg));
  }

  std::vector<Call> calls;

 private:
  std::map<std::pair<std::string, std::string>, std::vector<std::pair<std::int64_t, double>>>
      series_;
};

constexpr const char* kModels = R"([
  {"@id": "dtmi:h:Motor;1", "@type": "Interface", "@context": "dtmi:dtdl:context;2",
   "contents": [{"@type": "Property", "name": "alarmThreshold", "schema": "double"},
                {"@type": "Telemetry", "name": "temperature", "schema": "double"}]},
  {"@id": "dtmi:h:Machine;1", "@type": "Interface", "@context": "dtmi:dtdl:context;2",
   "contents": [{"@type": "Telemetry", "name": "speed", "schema": "double"},
                {"@type": "Property", "name": "n", "schema": "integer"},
                {"@type": "Property", "name": "kind", "schema": "string"},
                {"@type": "Component", "name": "motor", "schema": "dtmi:h:Motor;1"},
                {"@type": "Relationship", "name": "feeds"}]},
  {"@id": "dtmi:h:Other;1", "@type": "Interface", "@context": "dtmi:dtdl:context;2",
   "contents": [{"@type": "Telemetry", "name": "speed", "schema": "double"},
                {"@type": "Property", "name": "n", "schema": "integer"}]}
])";

class QueryHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(graph_.AddModels(json::parse(kModels).as_array()).ok());
    AddTwin("m1", "dtmi:h:Machine;1", 1, "lathe", 90);
    AddTwin("m2", "dtmi:h:Machine;1", 2, "mill", 80);
    AddTwin("m3", "dtmi:h:Machine;1", 3, "mill", 75);
    AddTwin("m4", "dtmi:h:Machine;1", 4, "lathe", 90);
    AddTwin("o1", "dtmi:h:Other;1", 5, "", 0);
    json::object r{{"$relationshipId", "f1"},
                   {"$sourceId", "m1"},
                   {"$targetId", "m2"},
                   {"$relationshipName", "feeds"}};
    ASSERT_TRUE(graph_.AddRelationship(r).ok());
    r["$relationshipId"] = "f2";
    r["$targetId"] = "m3";
    ASSERT_TRUE(graph_.AddRelationship(r).ok());

    // m1 speed within 5 minutes: 1000 (newest), 1300, 1400; 5000 within the hour only.
    history_.Add("m1", "speed", Ago(10), 1000);
    history_.Add("m1", "speed", Ago(60), 1300);
    history_.Add("m1", "speed", Ago(200), 1400);
    history_.Add("m1", "speed", Ago(400), 5000);
    // m2: 1100 twice; its motor ran hot an hour ago.
    history_.Add("m2", "speed", Ago(30), 1100);
    history_.Add("m2", "speed", Ago(90), 1100);
    history_.Add("m2", "motor/temperature", Ago(120), 85);
    history_.Add("m2", "motor/temperature", Ago(3000), 60);
    // m3: no speed at all; a cool motor.
    history_.Add("m3", "motor/temperature", Ago(10), 70);
    // m4: one point two hours ago.
    history_.Add("m4", "speed", Ago(7200), 2000);
    // o1 is of another model.
    history_.Add("o1", "speed", Ago(5), 9999);
  }

  void AddTwin(const std::string& id, const std::string& model, int n, const std::string& kind,
               double alarm) {
    json::object d{
        {"$dtId", id},
        {"$metadata", json::object{{"$model", model}}},
        {"n", n},
        {"kind", kind},
        {"motor", json::object{{"$metadata", json::object{}}, {"alarmThreshold", alarm}}}};
    ASSERT_TRUE(graph_.AddTwin(std::move(d)).ok());
  }

  QueryOptions Options() {
    QueryOptions o;
    o.now_ns = kNow;
    o.page_size = 1000;
    o.history_aggregate = [this](const HistoryAggregateRequest& r) { return history_(r); };
    return o;
  }

  // The $dtIds the query's rows name (the query selects T.$dtId or similar), sorted.
  std::set<std::string> Ids(const std::string& query, const QueryOptions& opts) {
    auto r = RunQuery(graph_, query, opts);
    EXPECT_TRUE(r.ok()) << query << ": " << r.status().ToString();
    std::set<std::string> ids;
    if (!r.ok()) return ids;
    for (const auto& row : r->items) ids.emplace(row.at("$dtId").as_string());
    return ids;
  }
  std::set<std::string> Ids(const std::string& query) { return Ids(query, Options()); }

  // Ids of Machine twins matching `condition`.
  std::set<std::string> Machines(const std::string& condition) {
    return Ids("SELECT T.$dtId FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:h:Machine;1') AND " +
               condition);
  }

  InMemoryGraph graph_;
  FakeHistory history_;
};

using Set = std::set<std::string>;

TEST_F(QueryHistoryTest, EachAggregate) {
  struct Case {
    const char* condition;
    const char* agg;
    Set want;
  };
  for (const Case& c : std::vector<Case>{
           {"MEAN(T.speed, '5m') > 1200", "mean", {"m1"}},
           {"MEAN(T.speed, '5m') = 1100", "mean", {"m2"}},
           {"MIN(T.speed, '5m') < 1200", "min", {"m1", "m2"}},
           {"MIN(T.speed, '5m') = 1000", "min", {"m1"}},
           {"MAX(T.speed, '5m') >= 1400", "max", {"m1"}},
           {"SUM(T.speed, '5m') = 3700", "sum", {"m1"}},
           {"SUM(T.speed, '5m') = 2200", "sum", {"m2"}},
           {"COUNT_OF(T.speed, '5m') = 3", "count", {"m1"}},
           {"COUNT_OF(T.speed, '5m') = 2", "count", {"m2"}},
           {"LAST(T.speed, '5m') = 1000", "last", {"m1"}},
           {"LAST(T.speed, '5m') = 1100", "last", {"m2"}},
           {"P50(T.speed, '5m') = 1300", "p50", {"m1"}},
           {"P95(T.speed, '5m') > 1389.99 AND P95(T.speed, '5m') < 1390.01", "p95", {"m1"}},
           {"P99(T.speed, '5m') > 1397.99 AND P99(T.speed, '5m') < 1398.01", "p99", {"m1"}},
           // Names are case-insensitive, like every keyword.
           {"mean(T.speed, '5m') > 1200", "mean", {"m1"}},
           {"Count_Of(T.speed, '5m') = 3", "count", {"m1"}},
       }) {
    history_.calls.clear();
    EXPECT_EQ(Machines(c.condition), c.want) << c.condition;
    ASSERT_FALSE(history_.calls.empty()) << c.condition;
    for (const auto& call : history_.calls) {
      EXPECT_EQ(call.agg, c.agg) << c.condition;
      EXPECT_EQ(call.path, "speed") << c.condition;
    }
  }
}

TEST_F(QueryHistoryTest, WindowEndsAtNowAndStartsWindowBefore) {
  struct Case {
    const char* window;
    std::int64_t seconds;
    double m1_max;  // 0: no points
  };
  for (const Case& c : std::vector<Case>{{"90s", 90, 1300},
                                         {"5m", 300, 1400},
                                         {"1h", 3600, 5000},
                                         {"1h30m", 5400, 5000},
                                         {"1d", 86400, 5000},
                                         {"500ms", 0, 0},
                                         {"366d", 366 * 86400, 5000}}) {
    history_.calls.clear();
    auto r = RunQuery(graph_,
                      fmt::format("SELECT T.$dtId, T.n FROM DIGITALTWINS T WHERE T.$dtId = 'm1' "
                                  "AND MAX(T.speed, '{}') = {}",
                                  c.window, c.m1_max),
                      Options());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->items.size(), c.m1_max == 0 ? 0u : 1u) << c.window;
    ASSERT_EQ(history_.calls.size(), 1u);
    EXPECT_EQ(history_.calls[0].to_ns, kNow);
    std::int64_t window_ns = c.seconds != 0 ? c.seconds * kSecond : 500'000'000;
    EXPECT_EQ(history_.calls[0].from_ns, kNow - window_ns) << c.window;
    EXPECT_EQ(history_.calls[0].twin, "m1");
  }
  // m4's only point is two hours old.
  EXPECT_EQ(Machines("COUNT_OF(T.speed, '1h') > 0"), (Set{"m1", "m2"}));
  EXPECT_EQ(Machines("COUNT_OF(T.speed, '1d') > 0"), (Set{"m1", "m2", "m4"}));
  EXPECT_EQ(Machines("MEAN(T.speed, '1d') = 2000"), (Set{"m4"}));
}

TEST_F(QueryHistoryTest, ComponentPropertiesReadTheComponentSeries) {
  history_.calls.clear();
  EXPECT_EQ(Ids("SELECT T.$dtId FROM DIGITALTWINS T WHERE MAX(T.motor.temperature, '1h') >= 80"),
            (Set{"m2"}));
  ASSERT_FALSE(history_.calls.empty());
  for (const auto& c : history_.calls) EXPECT_EQ(c.path, "motor/temperature");
  // The earlier, cooler point is in the window too.
  EXPECT_EQ(Machines("MIN(T.motor.temperature, '1h') = 60"), (Set{"m2"}));
  EXPECT_EQ(Machines("MIN(T.motor.temperature, '10m') = 85"), (Set{"m2"}));
  // Compared with a property of the twin: m2 ran above its threshold, m3 did not.
  EXPECT_EQ(Machines("MAX(T.motor.temperature, '1h') > T.motor.alarmThreshold"), (Set{"m2"}));
  EXPECT_EQ(Machines("T.motor.alarmThreshold < MAX(T.motor.temperature, '1h')"), (Set{"m2"}));
}

TEST_F(QueryHistoryTest, NoPointsIsUndefinedButCountIsZero) {
  // m3 has no speed series and m4 no point in the window: neither side of the comparison
  // matches them, NOT included.
  EXPECT_EQ(Machines("MEAN(T.speed, '5m') > 1200"), (Set{"m1"}));
  EXPECT_EQ(Machines("NOT (MEAN(T.speed, '5m') > 1200)"), (Set{"m2"}));
  EXPECT_EQ(Machines("MEAN(T.speed, '5m') != 0"), (Set{"m1", "m2"}));
  // COUNT_OF counts: no points is 0.
  EXPECT_EQ(Machines("COUNT_OF(T.speed, '5m') = 0"), (Set{"m3", "m4"}));
  EXPECT_EQ(Machines("COUNT_OF(T.nothing, '5m') = 0"), (Set{"m1", "m2", "m3", "m4"}));
}

TEST_F(QueryHistoryTest, CombinedWithAndOrNot) {
  EXPECT_EQ(Machines("T.kind = 'lathe' AND MEAN(T.speed, '5m') > 1000"), (Set{"m1"}));
  EXPECT_EQ(Machines("(T.kind = 'lathe' OR MEAN(T.speed, '5m') < 1200)"), (Set{"m1", "m2", "m4"}));
  EXPECT_EQ(Machines("NOT (T.kind = 'lathe') AND NOT (COUNT_OF(T.speed, '5m') > 0)"), (Set{"m3"}));
  EXPECT_EQ(Machines("(MEAN(T.speed, '5m') > 1200 OR MAX(T.motor.temperature, '1h') > 80)"),
            (Set{"m1", "m2"}));
  // In a list, and against another aggregate.
  EXPECT_EQ(Machines("COUNT_OF(T.speed, '5m') IN [2, 3]"), (Set{"m1", "m2"}));
  EXPECT_EQ(Machines("COUNT_OF(T.speed, '5m') NIN [0]"), (Set{"m1", "m2"}));
  EXPECT_EQ(Machines("COUNT_OF(T.speed, '5m') NOT IN [0, 2]"), (Set{"m1"}));
  EXPECT_EQ(Machines("MAX(T.speed, '5m') > MIN(T.speed, '1h')"), (Set{"m1"}));
  // A single collection may leave its name out; other models count too without IS_OF_MODEL.
  EXPECT_EQ(Ids("SELECT $dtId FROM DIGITALTWINS WHERE MEAN(speed, '5m') > 1200"),
            (Set{"m1", "o1"}));
  // A joined collection.
  EXPECT_EQ(Ids("SELECT B.$dtId FROM DIGITALTWINS A JOIN B RELATED A.feeds "
                "WHERE A.$dtId = 'm1' AND MEAN(B.speed, '5m') = 1100"),
            (Set{"m2"}));
  EXPECT_EQ(Ids("SELECT B.$dtId FROM DIGITALTWINS MATCH (A)-[:feeds]->(B) "
                "WHERE A.$dtId = 'm1' AND COUNT_OF(B.speed, '5m') = 0"),
            (Set{"m3"}));
  // COUNT() of matching twins.
  auto r = RunQuery(graph_, "SELECT COUNT() FROM DIGITALTWINS T WHERE MEAN(T.speed, '5m') > 1000",
                    Options());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->items[0].at("COUNT").to_number<int>(), 3);  // m1, m2, o1
}

TEST_F(QueryHistoryTest, ReadLazilyAfterCheaperConditions) {
  auto twins_asked = [&] {
    std::multiset<std::string> s;
    for (const auto& c : history_.calls) s.insert(c.twin);
    return s;
  };
  // Written first, evaluated last: only the twin the $dtId finds is asked about.
  history_.calls.clear();
  EXPECT_EQ(Ids("SELECT T.$dtId FROM DIGITALTWINS T WHERE MEAN(T.speed, '5m') > 0 AND "
                "T.$dtId = 'm2'"),
            (Set{"m2"}));
  EXPECT_EQ(twins_asked(), (std::multiset<std::string>{"m2"}));
  // A scan: only twins passing T.n > 2.
  history_.calls.clear();
  EXPECT_EQ(Ids("SELECT T.$dtId FROM DIGITALTWINS T WHERE MEAN(T.speed, '5m') > 0 AND T.n > 2"),
            (Set{"o1"}));
  EXPECT_EQ(twins_asked(), (std::multiset<std::string>{"m3", "m4", "o1"}));
  // Inside OR: the cheap side first, the history only when it is not already true; and an
  // AND nested in it checks its cheap side first too.
  history_.calls.clear();
  EXPECT_EQ(Machines("(T.kind = 'lathe' OR MEAN(T.speed, '5m') = 1100)"), (Set{"m1", "m2", "m4"}));
  EXPECT_EQ(twins_asked(), (std::multiset<std::string>{"m2", "m3"}));
  history_.calls.clear();
  EXPECT_EQ(Ids("SELECT T.$dtId FROM DIGITALTWINS T WHERE (MEAN(T.speed, '5m') > 0 AND T.n > 4) "
                "OR T.$dtId = 'zzz'"),
            (Set{"o1"}));
  EXPECT_EQ(twins_asked(), (std::multiset<std::string>{"o1"}));
  // A condition on two collections runs once per row; the same twin in consecutive rows is
  // asked once per aggregate.
  history_.calls.clear();
  EXPECT_EQ(Ids("SELECT A.$dtId FROM DIGITALTWINS MATCH (A)-[:feeds]->(B) "
                "WHERE A.$dtId = 'm1' AND MEAN(A.speed, '5m') > B.n"),
            (Set{"m1"}));
  EXPECT_EQ(twins_asked(), (std::multiset<std::string>{"m1"}));
}

TEST_F(QueryHistoryTest, NeverAnIndexAndNeverNoted) {
  graph_.IndexProperty("n");
  auto q = Query::Parse("SELECT T.$dtId FROM DIGITALTWINS T WHERE MEAN(T.n, '5m') = 1");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->Explain(graph_), "Scan(T) -> Filter -> Project");
  EXPECT_FALSE(graph_.noted().contains("n"));
  auto q2 = Query::Parse(
      "SELECT T.$dtId FROM DIGITALTWINS T WHERE MEAN(T.n, '5m') = 1 AND "
      "IS_OF_MODEL(T, 'dtmi:h:Other;1')");
  ASSERT_TRUE(q2.ok());
  EXPECT_EQ(q2->Explain(graph_), "ModelIndex(T: dtmi:h:Other;1) -> Filter -> Project");
}

TEST_F(QueryHistoryTest, OneClockReadPerQuery) {
  QueryOptions o = Options();
  o.now_ns = 0;  // the system clock
  auto clock = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  history_.calls.clear();
  std::int64_t before = clock();
  auto r =
      RunQuery(graph_, "SELECT T.$dtId FROM DIGITALTWINS T WHERE COUNT_OF(T.speed, '1h') >= 0", o);
  std::int64_t after = clock();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->items.size(), 5u);
  ASSERT_EQ(history_.calls.size(), 5u);
  for (const auto& c : history_.calls) {
    EXPECT_EQ(c.to_ns, history_.calls[0].to_ns);
    EXPECT_EQ(c.from_ns, c.to_ns - 3600 * kSecond);
  }
  EXPECT_GE(history_.calls[0].to_ns, before);
  EXPECT_LE(history_.calls[0].to_ns, after);
}

TEST_F(QueryHistoryTest, PagingKeepsTheRows) {
  QueryOptions o = Options();
  o.page_size = 1;
  auto q = Query::Parse(
      "SELECT T.$dtId FROM DIGITALTWINS T WHERE COUNT_OF(T.speed, '1d') > 0 AND T.n < 5");
  ASSERT_TRUE(q.ok());
  std::vector<std::string> ids;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = q->Execute(graph_, o);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& row : page->items) ids.emplace_back(row.at("$dtId").as_string());
    if (page->continuation_token.empty()) break;
    o.continuation_token = page->continuation_token;
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"m1", "m2", "m4"}));
}

TEST_F(QueryHistoryTest, WithoutTheSeamItIsAnError) {
  QueryOptions o;  // no history_aggregate
  auto r =
      RunQuery(graph_, "SELECT T FROM DIGITALTWINS T WHERE T.n > 1 AND MEAN(T.speed, '5m') > 1", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "QUERY_HISTORY_UNAVAILABLE");
  EXPECT_EQ(r.status().message().rfind("line 1, column 48: ", 0), 0u) << r.status().message();
  // Even when no row would need it, and on an empty graph.
  InMemoryGraph empty;
  auto r2 = RunQuery(empty, "SELECT T FROM DIGITALTWINS T WHERE LAST(T.speed, '5m') > 1", o);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), "QUERY_HISTORY_UNAVAILABLE");
  // Queries without aggregates do not need it.
  EXPECT_TRUE(RunQuery(graph_, "SELECT T FROM DIGITALTWINS T WHERE T.n > 1", o).ok());
}

TEST_F(QueryHistoryTest, SeamErrorsStopTheQueryAndNaNIsUndefined) {
  QueryOptions o = Options();
  int calls = 0;
  o.history_aggregate =
      [&](const HistoryAggregateRequest& r) -> core::Result<std::optional<double>> {
    ++calls;
    if (r.twin == "m2") return core::Status("TSDB_CHUNK_CORRUPT", "chunk 7 of m2/speed");
    return std::optional<double>(1.0);
  };
  auto r = RunQuery(graph_, "SELECT T.$dtId FROM DIGITALTWINS T WHERE MEAN(T.speed, '5m') > 0", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "TSDB_CHUNK_CORRUPT");
  EXPECT_EQ(calls, 2);  // stopped at m2

  o.history_aggregate =
      [&](const HistoryAggregateRequest& r) -> core::Result<std::optional<double>> {
    if (r.twin == "m1") return std::optional<double>(std::nan(""));
    return std::optional<double>(5.0);
  };
  auto ids =
      Ids("SELECT T.$dtId FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:h:Machine;1') "
          "AND NOT (MEAN(T.speed, '5m') = 0)",
          o);
  EXPECT_EQ(ids, (Set{"m2", "m3", "m4"}));  // m1's NaN is neither equal nor unequal
}

// ---- errors ----

struct ErrorCase {
  const char* where;  // the WHERE condition, or a whole query when it starts with SELECT
  const char* code;
  const char* at;  // the error's position is where this text first starts
  const char* message;
};

class QueryHistoryErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(QueryHistoryErrors, NameThePlaceAndTheProblem) {
  const ErrorCase& c = GetParam();
  std::string text = std::string(c.where).starts_with("SELECT")
                         ? c.where
                         : std::string("SELECT T FROM DIGITALTWINS T WHERE ") + c.where;
  auto col = text.find(c.at);
  ASSERT_NE(col, std::string::npos) << c.at;
  auto q = Query::Parse(text);
  ASSERT_FALSE(q.ok()) << text;
  EXPECT_EQ(q.status().code(), c.code) << q.status().ToString();
  EXPECT_EQ(q.status().message().rfind(fmt::format("line 1, column {}: ", col + 1), 0), 0u)
      << text << "\n"
      << q.status().message();
  EXPECT_NE(q.status().message().find(c.message), std::string::npos) << q.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Aggregates, QueryHistoryErrors,
    ::testing::Values(
        ErrorCase{"MEAN(T.speed) > 1", "QUERY_INVALID", ") >",
                  "MEAN takes 2 arguments: a property path and a window such as '5m'"},
        ErrorCase{"MAX() > 1", "QUERY_INVALID", ") >", "MAX takes 2 arguments"},
        ErrorCase{"P95(T.speed, '5m', 3) > 1", "QUERY_INVALID", ", 3", "P95 takes 2 arguments"},
        ErrorCase{"MEAN(T.speed '5m') > 1", "QUERY_SYNTAX", "'5m'",
                  "expected ',' and a window such as '5m' in MEAN(...)"},
        ErrorCase{"MEAN(T.speed, '5m' > 1", "QUERY_SYNTAX", "> 1",
                  "expected ')' closing the aggregate"},
        ErrorCase{"MEAN(T.speed, 'soon') > 1", "QUERY_INVALID", "'soon'", "bad window 'soon'"},
        ErrorCase{"MEAN(T.speed, '5 m') > 1", "QUERY_INVALID", "'5 m'", "bad window '5 m'"},
        ErrorCase{"MEAN(T.speed, '') > 1", "QUERY_INVALID", "''", "bad window ''"},
        ErrorCase{"MEAN(T.speed, '0s') > 1", "QUERY_INVALID", "'0s'", "the window '0s' is empty"},
        ErrorCase{"MEAN(T.speed, '367d') > 1", "QUERY_UNSUPPORTED", "'367d'",
                  "longer than 366 days"},
        ErrorCase{"MEAN(T.speed, '53w') > 1", "QUERY_UNSUPPORTED", "'53w'", "longer than 366 days"},
        ErrorCase{"MEAN(T.speed, 300) > 1", "QUERY_INVALID", "300",
                  "window must be a duration string"},
        ErrorCase{"MEAN('speed', '5m') > 1", "QUERY_INVALID", "'speed'",
                  "first argument must be a property path"},
        ErrorCase{"MEAN(MAX(T.speed, '5m'), '5m') > 1", "QUERY_INVALID", "MAX",
                  "first argument must be a property path"},
        ErrorCase{"MEAN(T, '5m') > 1", "QUERY_INVALID", "MEAN", "needs a property of 'T'"},
        ErrorCase{"MEAN(T.$dtId, '5m') > 1", "QUERY_INVALID", "MEAN", "'$dtId' has no history"},
        ErrorCase{"SELECT T FROM DIGITALTWINS T JOIN C RELATED T.feeds WHERE "
                  "MEAN(X.speed, '5m') > 1",
                  "QUERY_INVALID", "X.speed", "unknown collection 'X'"},
        ErrorCase{"MEAN(T.speed, '5m') > 'fast'", "QUERY_INVALID", "'fast'",
                  "MEAN(...) is a number; compare it with a number"},
        ErrorCase{"null = LAST(T.speed, '5m')", "QUERY_INVALID", "null",
                  "compare it with a number"},
        ErrorCase{"MIN(T.speed, '5m') IN [1, 'a']", "QUERY_INVALID", "MIN",
                  "the list must hold numbers"},
        ErrorCase{"STARTSWITH(MEAN(T.speed, '5m'), 'a')", "QUERY_INVALID", "MEAN",
                  "use it in a comparison"},
        ErrorCase{"IS_DEFINED(SUM(T.speed, '5m'))", "QUERY_INVALID", "SUM",
                  "use it in a comparison"},
        ErrorCase{"T.n = 1 AND COUNT_OF(T.speed, '5m')", "QUERY_INVALID", "COUNT_OF",
                  "use it in a comparison"},
        ErrorCase{"AVG(T.speed) > 1", "QUERY_UNSUPPORTED", "AVG", "MEAN(T.property, '5m')"},
        ErrorCase{"COUNT(T.speed) > 1", "QUERY_UNSUPPORTED", "COUNT", "COUNT_OF(T.property, '5m')"},
        ErrorCase{"SELECT MEAN(T.speed, '5m') FROM DIGITALTWINS T", "QUERY_UNSUPPORTED", "MEAN",
                  "MEAN(...) is a history aggregate; it is not supported in SELECT"},
        ErrorCase{"SELECT T, MAX(T.speed, '1h') AS m FROM DIGITALTWINS T", "QUERY_UNSUPPORTED",
                  "MAX", "not supported in SELECT, only in WHERE"},
        ErrorCase{"SELECT R FROM RELATIONSHIPS R WHERE MEAN(R.speed, '5m') > 1", "QUERY_INVALID",
                  "MEAN", "reads a twin's history; 'R' is a relationship"},
        ErrorCase{"SELECT T FROM DIGITALTWINS T JOIN C RELATED T.feeds R WHERE "
                  "MEAN(R.speed, '5m') > 1",
                  "QUERY_INVALID", "MEAN", "'R' is a relationship"}));

TEST(QueryHistoryParse, ErrorsOnLaterLinesHaveTheirLine) {
  auto q = Query::Parse("SELECT T\nFROM DIGITALTWINS T\nWHERE MEAN(T.speed, '1y') > 1");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), "QUERY_INVALID");
  EXPECT_EQ(q.status().message().rfind("line 3, column 21: bad window '1y'", 0), 0u)
      << q.status().message();
}

TEST(QueryHistoryParse, AggregateNamesStayUsableAsPropertyNames) {
  // Without '(' they are names (MIN, MAX and SUM are reserved words, as before).
  EXPECT_TRUE(Query::Parse("SELECT T FROM DIGITALTWINS T WHERE T.mean > 1 AND T.last = 2 AND "
                           "T.min = 3 AND p95 = 4")
                  .ok());
  EXPECT_TRUE(Query::Parse("SELECT T.mean, T.max FROM DIGITALTWINS T").ok());
}

}  // namespace
}  // namespace doppel::twin::query
