// Scenarios over the API on a real server and store: definitions checked before they are kept,
// runs as jobs (progress, result, cancel), the twin's state as the start, comparisons with a
// recommendation, and everything finished still there after a reopen.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>

#include "api/server.h"
#include "http_test_client.h"
#include "model/model_repository.h"
#include "store/store.h"
#include "sync/sync_test_util.h"
#include "test_server.h"
#include "tsdb/history.h"
#include "twin/twin_graph.h"

namespace doppel {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using apitest::HttpClient;
using apitest::HttpResponse;
using apitest::Serve;

constexpr char kModel[] = R"({
  "@context": "dtmi:dtdl:context;3", "@id": "dtmi:doppel:test:Motor;1", "@type": "Interface",
  "contents": [{"@type": "Property", "name": "temperature", "schema": "double"}]})";

// A motor cooling from the twin's temperature: C dT/dt = P - h (T - 20); with P = 0,
// T(t) = 20 + (T0 - 20) e^{-h t / C}.
std::string Scenario(double power, bool uncertain, double horizon = 600, double step = 1) {
  std::string u;
  if (uncertain) {
    u = R"(, "uncertainty": {"runs": 50, "seed": 3,
              "parameters": {"m.h": {"uniform": {"min": 8, "max": 12}}}})";
  }
  return fmt::format(R"j({{
    "name": "cooling at {0} W",
    "units": {{"m": {{"kind": "ode", "rtol": 1e-9, "atol": 1e-9, "definition": {{
      "states": {{"T": {{"start": 20, "der": "(P - h * (T - 20)) / C"}}}},
      "parameters": {{"h": 10, "C": 5000}}, "inputs": {{"P": 0}}}}}}}},
    "bindings": [{{"variable": "m.T", "twin": "motor-1", "path": "temperature"}}],
    "inputs": {{"m.P": {{"times": [0], "values": [{0}]}}}},
    "horizon": {1}, "step": {2},
    "kpis": {{"final": "last(m.T)", "peak": "max(m.T)"}}{3}
  }})j",
                     power, horizon, step, u);
}

class ScenarioApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "doppel-scenario-api-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    serve_ = std::make_unique<Serve>(dir_);
    std::vector<model::SourceDocument> docs{{"motor", kModel}};
    ASSERT_TRUE(serve_->models->Add(docs).ok());
    auto t = serve_->graph->PutTwinSync(
        "motor-1",
        json::parse(R"({"$metadata": {"$model": "dtmi:doppel:test:Motor;1"}, "temperature": 60})"));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
  }
  void TearDown() override {
    serve_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  HttpClient& http() { return *serve_->http; }

  json::value Json(const HttpResponse& r) {
    json::error_code ec;
    json::value v = json::parse(r.body, ec);
    EXPECT_FALSE(ec) << r.body;
    return v;
  }
  // Starts a run and waits until it leaves "running"; the run's JSON.
  json::object RunToEnd(const std::string& scenario) {
    HttpResponse r = http().Send("POST", "/scenarios/" + scenario + "/runs");
    EXPECT_EQ(r.status, 202u) << r.body;
    EXPECT_EQ(r.headers["location"].rfind("/scenarios/" + scenario + "/runs/run-", 0), 0u);
    const std::string location = r.headers["location"];
    json::object run;
    EXPECT_TRUE(sync::testing::WaitUntil([&] {
      HttpResponse g = http().Get(location);
      run = Json(g).as_object();
      return run.at("status") != "running";
    })) << location;
    return run;
  }

  fs::path dir_;
  std::unique_ptr<Serve> serve_;
};

TEST_F(ScenarioApiTest, RunStartsFromTheTwinAndMatchesTheAnalyticSolution) {
  HttpResponse put = http().Send("PUT", "/scenarios/cool", Scenario(0, false));
  ASSERT_EQ(put.status, 200u) << put.body;
  EXPECT_EQ(Json(http().Get("/scenarios")).at("value").as_array().size(), 1u);
  json::object run = RunToEnd("cool");
  ASSERT_EQ(run.at("status"), "succeeded") << json::serialize(run);
  EXPECT_EQ(run.at("progress").to_number<double>(), 1.0);
  const json::object& kpis = run.at("result").at("kpis").as_object();
  // From the twin's 60 degrees, not the model's start of 20.
  EXPECT_NEAR(kpis.at("peak").at("value").to_number<double>(), 60.0, 1e-9);
  EXPECT_NEAR(kpis.at("final").at("value").to_number<double>(),
              20 + 40 * std::exp(-10.0 * 600 / 5000), 1e-5);
  const json::object& series = run.at("result").at("series").as_object();
  EXPECT_EQ(series.at("time").as_array().size(), 601u);
  EXPECT_EQ(series.at("m.T").as_array().size(), 601u);
  // Decimated on request, the last point kept.
  json::object small = Json(http().Get("/scenarios/cool/runs/" +
                                       std::string(run.at("id").as_string()) + "?maxPoints=50"))
                           .as_object();
  const json::array& t = small.at("result").at("series").at("time").as_array();
  EXPECT_LE(t.size(), 50u);
  EXPECT_EQ(t.back().to_number<double>(), 600.0);
  EXPECT_EQ(Json(http().Get("/scenarios/cool/runs")).at("value").as_array().size(), 1u);
  // /metrics counts it.
  EXPECT_NE(http().Get("/metrics").body.find("doppel_scenario_runs_total{status=\"succeeded\"} 1"),
            std::string::npos);
}

TEST_F(ScenarioApiTest, ARunsRecordedVariablesAreInHistoryUnderItsNamespace) {
  ASSERT_EQ(http().Send("PUT", "/scenarios/cool", Scenario(0, false)).status, 200u);
  json::object run = RunToEnd("cool");
  ASSERT_EQ(run.at("status"), "succeeded") << json::serialize(run);
  const std::string id(run.at("id").as_string());
  const json::value& h = run.at("result").at("history");
  EXPECT_EQ(h.at("namespace"), json::value("$run/cool/" + id));
  EXPECT_EQ(h.at("points").to_number<int>(), 601) << json::serialize(h);
  const std::string base = "/scenarios/cool/runs/" + id + "/history/";

  // Raw points: the recorded series, one per simulated second.
  HttpResponse r = http().Get(base + "m.T?epoch=ns");
  ASSERT_EQ(r.status, 200u) << r.body;
  json::value v = Json(r);
  EXPECT_EQ(v.at("twin"), json::value("$run/cool/" + id));
  const json::array& points = v.at("points").as_array();
  ASSERT_EQ(points.size(), 601u);
  const json::array& recorded = run.at("result").at("series").at("m.T").as_array();
  for (std::size_t i = 0; i < points.size(); i += 100) {
    EXPECT_DOUBLE_EQ(points[i].at(1).to_number<double>(), recorded[i].to_number<double>());
  }
  EXPECT_EQ(points[600].at(0).to_number<std::int64_t>() - points[0].at(0).to_number<std::int64_t>(),
            std::int64_t{600} * 1'000'000'000);
  // Aggregates like any twin history: the one-minute means of an exponential decay fall.
  r = http().Get(base + "m.T?step=1m&agg=mean");
  ASSERT_EQ(r.status, 200u) << r.body;
  const json::array buckets = Json(r).at("points").as_array();
  ASSERT_GE(buckets.size(), 10u);
  for (std::size_t i = 1; i < buckets.size(); ++i) {
    EXPECT_LT(buckets[i].at(1).to_number<double>(), buckets[i - 1].at(1).to_number<double>());
  }
  r = http().Get(base + "m.nothing");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(Json(r).at("code"), "HISTORY_UNKNOWN_ELEMENT");
  r = http().Get(base + "m.T?agg=median");
  EXPECT_EQ(r.status, 400u);
  // Deleting the scenario deletes its runs' history.
  ASSERT_EQ(http().Send("DELETE", "/scenarios/cool").status, 204u);
  EXPECT_EQ(http().Get(base + "m.T").status, 404u);
}

TEST_F(ScenarioApiTest, BadDefinitionsAreRefusedWithWhereAndNothingIsKept) {
  struct Case {
    std::string body;
    unsigned status;
    const char* code;
    const char* pointer;
  };
  std::string bad_kpi = Scenario(0, false);
  bad_kpi.replace(bad_kpi.find("last(m.T)"), 9, "last(m.T");
  std::string unknown_var = Scenario(0, false);
  unknown_var.replace(unknown_var.find("\"m.P\""), 5, "\"m.Q\"");
  std::string unknown_twin = Scenario(0, false);
  unknown_twin.replace(unknown_twin.find("motor-1"), 7, "motor-9");
  std::string non_finite = Scenario(0, false);
  non_finite.replace(non_finite.find("\"horizon\""), 0, "\"parameters\": {\"m.h\": 1e999}, ");
  std::string bad_expr = Scenario(0, false);
  bad_expr.replace(bad_expr.find("h * (T - 20)"), 12, "h * (T - 20");
  const Case cases[] = {
      {"{", 400, "JSON_SYNTAX", ""},
      {bad_kpi, 400, "SCENARIO_KPI", "/kpis/final"},
      {unknown_var, 400, "SIM_UNKNOWN_VARIABLE", "/inputs/m.Q"},
      {unknown_twin, 400, "SCENARIO_BINDING", "/bindings/0"},
      {bad_expr, 400, "SIM_EXPR_SYNTAX", "/units/m/definition/states/T/der"},
      {R"({"units": {"m": {"kind": "boiler"}}, "horizon": 1, "step": 1, "record": ["m.x"]})", 400,
       "SCENARIO_UNKNOWN_KIND", "/units/m/kind"},
      {R"({"units": {
            "a": {"kind": "ode", "definition": {"states": {"s": {"start": 0, "der": "-s"}},
                                                "inputs": {"u": 0}, "outputs": {"y": "u"}}},
            "b": {"kind": "ode", "definition": {"states": {"s": {"start": 0, "der": "-s"}},
                                                "inputs": {"u": 0}, "outputs": {"y": "u"}}}},
           "connections": [{"from": "a.y", "to": "b.u"}, {"from": "b.y", "to": "a.u"}],
           "horizon": 1, "step": 1, "record": ["a.s"]})",
       400, "SIM_ALGEBRAIC_LOOP", ""},
      {non_finite, 400, "SIM_WRONG_TYPE", "/parameters/m.h"},
      {R"({"id": "other", "units": {"m": {"kind": "des", "machines": 2}}, "horizon": 1,
           "step": 1, "record": ["m.wip"]})",
       400, "SCENARIO_INVALID", "/id"},
  };
  for (const Case& c : cases) {
    HttpResponse r = http().Send("PUT", "/scenarios/s", c.body);
    EXPECT_EQ(r.status, c.status) << c.body << "\n" << r.body;
    json::value p = Json(r);
    EXPECT_EQ(p.at("code"), c.code) << r.body;
    if (*c.pointer != '\0') {
      EXPECT_EQ(p.at("pointer"), c.pointer) << r.body;
    }
    EXPECT_EQ(http().Get("/scenarios/s").status, 404u);
  }
  HttpResponse missing = http().Send("POST", "/scenarios/nope/runs");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(Json(missing).at("code"), "SCENARIO_NOT_FOUND");
  ASSERT_EQ(http().Send("PUT", "/scenarios/s", Scenario(0, false)).status, 200u);
  HttpResponse no_run = http().Get("/scenarios/s/runs/run-99");
  EXPECT_EQ(no_run.status, 404u);
  EXPECT_EQ(Json(no_run).at("code"), "SCENARIO_RUN_NOT_FOUND");
}

TEST_F(ScenarioApiTest, ComparisonRecommendsTheBetterScenarioWithItsUncertainty) {
  ASSERT_EQ(http().Send("PUT", "/scenarios/idle", Scenario(0, true)).status, 200u);
  ASSERT_EQ(http().Send("PUT", "/scenarios/loaded", Scenario(300, true)).status, 200u);
  json::object a = RunToEnd("idle");
  json::object b = RunToEnd("loaded");
  ASSERT_EQ(a.at("status"), "succeeded") << json::serialize(a);
  ASSERT_EQ(b.at("status"), "succeeded") << json::serialize(b);
  const json::object& spread = a.at("result").at("kpis").at("final").at("spread").as_object();
  EXPECT_EQ(spread.at("runs").to_number<int>(), 50);
  EXPECT_LT(spread.at("p5").to_number<double>(), spread.at("p95").to_number<double>());
  // The histogram holds every finite run, between the smallest and the largest value.
  const json::object& hist = spread.at("histogram").as_object();
  std::uint64_t in_bins = 0;
  for (const json::value& n : hist.at("counts").as_array()) in_bins += n.to_number<std::uint64_t>();
  EXPECT_EQ(in_bins, 50u);
  EXPECT_EQ(hist.at("counts").as_array().size(), 20u);
  EXPECT_LE(hist.at("lo").to_number<double>(), spread.at("p5").to_number<double>());
  EXPECT_GE(hist.at("hi").to_number<double>(), spread.at("p95").to_number<double>());
  // Bands over time for every recorded series; the last time's is the final KPI's spread.
  const json::array& bands = a.at("result").at("monteCarlo").at("bands").as_array();
  ASSERT_FALSE(bands.empty());
  const json::object& band = bands[0].as_object();
  const std::size_t n = band.at("time").as_array().size();
  ASSERT_GT(n, 1u);
  ASSERT_LE(n, 200u);
  for (const char* q : {"p5", "p25", "p50", "p75", "p95", "mean", "runs"}) {
    EXPECT_EQ(band.at(q).as_array().size(), n) << q;
  }
  for (std::size_t j = 0; j < n; ++j) {
    EXPECT_LE(band.at("p5").at(j).to_number<double>(), band.at("p95").at(j).to_number<double>());
  }
  const std::string target =
      fmt::format("/scenario-comparison?runs=idle/{},loaded/{}&objective=final&direction=minimize",
                  std::string(a.at("id").as_string()), std::string(b.at("id").as_string()));
  HttpResponse cmp = http().Get(target);
  ASSERT_EQ(cmp.status, 200u) << cmp.body;
  json::object o = Json(cmp).as_object();
  EXPECT_EQ(o.at("best").as_string().starts_with("idle/"), true) << cmp.body;
  EXPECT_NE(std::string(o.at("recommendation").as_string()).find("keep idle/"), std::string::npos)
      << cmp.body;
  const json::array& ranking = o.at("ranking").as_array();
  ASSERT_EQ(ranking.size(), 2u);
  // The loaded motor ends warmer in every paired run: a positive change with a real interval.
  EXPECT_GT(ranking[1].at("changePct").to_number<double>(), 0);
  EXPECT_GT(ranking[1].at("plusMinusPct").to_number<double>(), 0);
  EXPECT_EQ(ranking[1].at("paired"), true);
  HttpResponse bad = http().Get("/scenario-comparison?runs=idle/run-1&objective=final");
  EXPECT_EQ(bad.status, 400u) << bad.body;
  HttpResponse no_obj = http().Get(
      fmt::format("/scenario-comparison?runs=idle/{},loaded/{}&objective=nope",
                  std::string(a.at("id").as_string()), std::string(b.at("id").as_string())));
  EXPECT_EQ(Json(no_obj).at("code"), "SCENARIO_INVALID");
}

TEST_F(ScenarioApiTest, MonteCarloDrawsFromTheTwinsHistory) {
  // The cooling coefficient as it was measured over the last hour: 8, 10 or 12 W/K.
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  std::vector<tsdb::Sample> samples;
  for (int i = 0; i < 30; ++i) {
    samples.push_back({"motor-1", "cooling", now - (30 - i) * 60'000'000'000LL,
                       tsdb::Value(8.0 + 2.0 * (i % 3))});
  }
  for (const core::Status& st : serve_->history->Append(samples)) ASSERT_TRUE(st.ok());
  std::string def = Scenario(0, false);
  def.erase(def.rfind('}'));
  def += R"j(, "uncertainty": {"runs": 60, "seed": 1, "parameters": {"m.h": {"empirical":
            {"twin": "motor-1", "path": "cooling", "from": "now-1h"}}}}})j";
  ASSERT_EQ(http().Send("PUT", "/scenarios/hist", def).status, 200u);
  json::object run = RunToEnd("hist");
  ASSERT_EQ(run.at("status"), "succeeded") << json::serialize(run);
  const json::object& spread = run.at("result").at("kpis").at("final").at("spread").as_object();
  EXPECT_EQ(spread.at("runs").to_number<int>(), 60);
  // Every draw is 8, 10 or 12: the final temperature lies between theirs.
  auto final_at = [](double h) { return 20 + 40 * std::exp(-h * 600 / 5000); };
  EXPECT_GE(spread.at("p5").to_number<double>(), final_at(12) - 1e-4);
  EXPECT_LE(spread.at("p95").to_number<double>(), final_at(8) + 1e-4);
  // A range without history is refused when the scenario is stored.
  std::string empty = def;
  empty.replace(empty.find("now-1h"), 6, "now-1s");
  HttpResponse r = http().Send("PUT", "/scenarios/hist2", empty);
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(Json(r).at("code"), "SCENARIO_HISTORY");
}

TEST_F(ScenarioApiTest, CancelEndsARunWithoutAResult) {
  // 10 million steps of a stiff solver: far longer than the test waits.
  ASSERT_EQ(http().Send("PUT", "/scenarios/long", Scenario(0, false, 1e7, 1)).status, 200u);
  HttpResponse r = http().Send("POST", "/scenarios/long/runs");
  ASSERT_EQ(r.status, 202u) << r.body;
  const std::string location = r.headers["location"];
  ASSERT_EQ(http().Send("POST", location + "/cancel").status, 202u);
  json::object run;
  ASSERT_TRUE(sync::testing::WaitUntil([&] {
    run = Json(http().Get(location)).as_object();
    return run.at("status") != "running";
  }));
  EXPECT_EQ(run.at("status"), "cancelled");
  EXPECT_FALSE(run.contains("result"));
}

TEST_F(ScenarioApiTest, DefinitionsAndFinishedRunsSurviveAReopen) {
  ASSERT_EQ(http().Send("PUT", "/scenarios/cool", Scenario(0, false)).status, 200u);
  json::object run = RunToEnd("cool");
  ASSERT_EQ(run.at("status"), "succeeded");
  const std::string id(run.at("id").as_string());
  serve_.reset();
  serve_ = std::make_unique<Serve>(dir_);
  EXPECT_EQ(http().Get("/scenarios/cool").status, 200u);
  HttpResponse again = http().Get("/scenarios/cool/runs/" + id);
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(Json(again).at("result").at("kpis").at("final"),
            run.at("result").at("kpis").at("final"));
  // A new run gets a new id, and deleting the scenario removes its runs.
  json::object next = RunToEnd("cool");
  EXPECT_NE(next.at("id"), run.at("id"));
  EXPECT_EQ(http().Delete("/scenarios/cool").status, 204u);
  EXPECT_EQ(http().Get("/scenarios/cool/runs/" + id).status, 404u);
  serve_.reset();
  serve_ = std::make_unique<Serve>(dir_);
  EXPECT_EQ(http().Get("/scenarios/cool").status, 404u);
  EXPECT_EQ(http().Get("/scenarios/cool/runs/" + id).status, 404u);
}

}  // namespace
}  // namespace doppel
