// Analytics over the API on a real server, store and history: anomaly flags found on ingest
// (GET /anomalies, /digitaltwins/{id}/anomalies, $anomalies, twin.anomaly on /events, /metrics),
// forecasts served from history with their model registry, bad requests, and accuracy tracking
// of served forecasts against the actuals that arrive later, kept across a restart.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <thread>
#include <tuple>

#include "core/time.h"
#include "http_test_client.h"
#include "test_server.h"

namespace doppel {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using apitest::HttpResponse;
using apitest::Serve;
using apitest::WsClient;
using namespace std::chrono_literals;

constexpr char kModel[] = R"({
  "@context": "dtmi:dtdl:context;3", "@id": "dtmi:doppel:test:Pump;1", "@type": "Interface",
  "contents": [{"@type": "Telemetry", "name": "pressure", "schema": "double"},
               {"@type": "Property", "name": "mode", "schema": "string"}]})";

constexpr std::int64_t kSecond = 1'000'000'000;

class AnalyticsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "doppel-analytics-api-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    serve_ = std::make_unique<Serve>(dir_);
    std::vector<model::SourceDocument> docs{{"pump", kModel}};
    ASSERT_TRUE(serve_->models->Add(docs).ok());
    for (const char* id : {"p1", "p2"}) {
      auto t = serve_->graph->PutTwinSync(
          id, json::parse(R"({"$metadata": {"$model": "dtmi:doppel:test:Pump;1"}})"));
      ASSERT_TRUE(t.ok()) << t.status().ToString();
    }
    // Whole minutes, two minutes ago: the last history point of the forecast tests, whose
    // forecasts then reach into the future (their steps are scored when data arrive for them).
    const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    end_ = (now / (60 * kSecond)) * 60 * kSecond - 2 * 60 * kSecond;
  }
  void TearDown() override {
    serve_.reset();
    fs::remove_all(dir_);
  }

  // The pressure of a pump with an hourly cycle: 50 + 3 sin(2π t / 1 h) + noise.
  static double Pressure(std::int64_t t_ns, std::mt19937_64& rng) {
    std::normal_distribution<double> noise(0, 0.2);
    const double hours = static_cast<double>(t_ns) / (3600.0 * kSecond);
    return 50 + 3 * std::sin(2 * std::numbers::pi * hours) + noise(rng);
  }
  // Points every 10 s in [from, to] straight into history.
  void AppendPressure(const std::string& twin, std::int64_t from, std::int64_t to,
                      std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<tsdb::Sample> samples;
    for (std::int64_t t = from; t <= to; t += 10 * kSecond) {
      samples.push_back({twin, "pressure", t, Pressure(t, rng)});
    }
    auto st = serve_->history->Append(samples);
    ASSERT_TRUE(st.empty()) << st.front().ToString();
  }

  fs::path dir_;
  std::unique_ptr<Serve> serve_;
  std::int64_t end_ = 0;
};

TEST_F(AnalyticsApiTest, AnomaliesFoundOnIngestAreFlaggedPublishedAndCounted) {
  WsClient ws;
  ASSERT_EQ(ws.Connect(serve_->server->port(), "/events?twin=p1&path=/pressure"), 101u);
  ASSERT_TRUE(ws.Next());  // {"type": "subscribed"}

  const auto t0 = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) - 200s;
  json::array readings;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0, 0.5);
  for (int i = 0; i < 120; ++i) {
    readings.push_back(json::object{{"twin", "p1"},
                                    {"element", "pressure"},
                                    {"value", 4 + noise(rng)},
                                    {"sourceTime", core::FormatRfc3339(t0 + i * 1s)}});
  }
  readings.push_back(json::object{{"twin", "p1"},
                                  {"element", "pressure"},
                                  {"value", 40.0},
                                  {"sourceTime", core::FormatRfc3339(t0 + 120s)}});
  // Strings are not scored.
  readings.push_back(json::object{{"twin", "p1"},
                                  {"element", "mode"},
                                  {"value", "auto"},
                                  {"sourceTime", core::FormatRfc3339(t0 + 120s)}});
  HttpResponse r =
      serve_->http->Post("/ingest", json::serialize(json::object{{"readings", readings}}));
  ASSERT_EQ(r.status, 204u) << r.body;

  // The event, with the evidence.
  std::optional<apitest::WsMessage> m;
  json::value ev;
  for (int k = 0; k < 10; ++k) {
    m = ws.Next(5s);
    ASSERT_TRUE(m && !m->closed);
    ev = m->json();
    if (ev.at("type") == "twin.anomaly") break;
  }
  ASSERT_EQ(ev.at("type"), "twin.anomaly") << m->text;
  EXPECT_EQ(ev.at("twinId"), "p1");
  EXPECT_EQ(ev.at("data").at("path"), "/pressure");
  EXPECT_EQ(ev.at("data").at("detector"), "robust_z");
  EXPECT_EQ(ev.at("data").at("value").as_double(), 40.0);
  EXPECT_EQ(ev.at("data").at("start"), json::value(core::FormatRfc3339(t0 + 120s)));
  EXPECT_NEAR(ev.at("data").at("baseline").as_double(), 4, 0.3);

  r = serve_->http->Get("/digitaltwins/p1/anomalies");
  ASSERT_EQ(r.status, 200u) << r.body;
  json::value a = r.json();
  ASSERT_EQ(a.at("active").as_array().size(), 1u) << r.body;
  EXPECT_EQ(a.at("active").at(0).at("path"), "pressure");
  ASSERT_EQ(a.at("series").as_array().size(), 1u) << r.body;  // `mode` is a string
  EXPECT_EQ(a.at("series").at(0).at("readings").to_number<int>(), 121);

  r = serve_->http->Get("/digitaltwins/p1?includeAnomalies=true");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("$anomalies"), a);
  r = serve_->http->Get("/digitaltwins/p1");
  EXPECT_FALSE(r.json().as_object().contains("$anomalies"));

  r = serve_->http->Get("/anomalies");
  ASSERT_EQ(r.status, 200u);
  ASSERT_EQ(r.json().at("active").as_array().size(), 1u);
  EXPECT_EQ(r.json().at("active").at(0).at("twin"), "p1");

  r = serve_->http->Get("/digitaltwins/p2/anomalies");
  ASSERT_EQ(r.status, 200u);
  EXPECT_TRUE(r.json().at("active").as_array().empty());
  r = serve_->http->Get("/digitaltwins/nope/anomalies");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.json().at("code"), "TWIN_NOT_FOUND");

  r = serve_->http->Get("/metrics");
  EXPECT_NE(r.body.find("doppel_anomaly_episodes_total{detector=\"robust_z\"} 1\n"),
            std::string::npos);
  EXPECT_NE(r.body.find("doppel_anomaly_active 1\n"), std::string::npos);
  EXPECT_NE(r.body.find("doppel_anomaly_readings_total 121\n"), std::string::npos);

  // Deleting the twin forgets its flags.
  ASSERT_EQ(serve_->http->Delete("/digitaltwins/p1").status, 204u);
  r = serve_->http->Get("/anomalies");
  EXPECT_TRUE(r.json().at("active").as_array().empty());
}

TEST_F(AnalyticsApiTest, ForecastsComeWithIntervalsAndAVersionedModel) {
  AppendPressure("p1", end_ - 6 * 3600 * kSecond, end_, 1);
  HttpResponse r = serve_->http->Get(
      "/digitaltwins/p1/forecast/pressure?step=1m&horizon=10&family=autoregressive");
  ASSERT_EQ(r.status, 200u) << r.body;
  json::value f = r.json();
  EXPECT_EQ(f.at("twin"), "p1");
  EXPECT_EQ(f.at("path"), "pressure");
  EXPECT_EQ(f.at("step"), "1m");
  EXPECT_EQ(f.at("model").at("version").to_number<int>(), 1);
  EXPECT_EQ(f.at("model").at("trainedNow"), true);
  EXPECT_EQ(f.at("info").at("family"), "autoregressive");
  EXPECT_EQ(f.at("backtest").at("chosen"), "autoregressive");
  // The forecast starts after the last complete minute: the one holding the last point.
  EXPECT_EQ(f.at("start"), json::value(core::FormatRfc3339(std::chrono::system_clock::time_point(
                               std::chrono::nanoseconds(end_ + 60 * kSecond)))));
  const json::array& points = f.at("points").as_array();
  ASSERT_EQ(points.size(), 10u);
  std::mt19937_64 rng(99);
  for (const json::value& p : points) {
    const double mean = p.at("mean").as_double();
    const auto& iv = p.at("intervals").as_array();
    ASSERT_EQ(iv.size(), 2u);
    EXPECT_LE(iv[1].at("low").as_double(), iv[0].at("low").as_double());  // 95% holds 80%
    EXPECT_LE(iv[0].at("low").as_double(), mean);
    EXPECT_GE(iv[0].at("high").as_double(), mean);
    EXPECT_GE(iv[1].at("high").as_double(), iv[0].at("high").as_double());
    // The hourly cycle is followed: within a few noise sigmas of the truth.
    auto t = core::ParseRfc3339(p.at("time").as_string());
    ASSERT_TRUE(t);
    const double truth =
        50 +
        3 * std::sin(2 * std::numbers::pi *
                     std::chrono::duration<double, std::ratio<3600>>(t->time_since_epoch() + 30s)
                         .count());
    EXPECT_NEAR(mean, truth, 1.0);
  }

  // Same data, same request: the registry's model, no new version.
  r = serve_->http->Get(
      "/digitaltwins/p1/forecast/pressure?step=1m&horizon=10&family=autoregressive");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("model").at("trainedNow"), false);
  EXPECT_EQ(r.json().at("model").at("version").to_number<int>(), 1);
  // Training on demand makes version 2.
  r = serve_->http->Post("/digitaltwins/p1/forecast-models/pressure?step=1m&horizon=10", "");
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(r.json().at("version").to_number<int>(), 2);
  EXPECT_EQ(r.json().at("familyChoice"), "auto");
  r = serve_->http->Get("/digitaltwins/p1/forecast-models");
  ASSERT_EQ(r.status, 200u);
  const json::value listed = r.json();
  const json::array& versions = listed.at("value").as_array();
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].at("version").to_number<int>(), 2);  // newest first
  EXPECT_TRUE(versions[0].at("backtest").at("families").is_array());

  // Versions survive a restart.
  serve_.reset();
  serve_ = std::make_unique<Serve>(dir_);
  r = serve_->http->Get("/digitaltwins/p1/forecast-models");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("value").as_array().size(), 2u);
}

TEST_F(AnalyticsApiTest, BadForecastRequestsSayWhatIsWrong) {
  AppendPressure("p1", end_ - 6 * 3600 * kSecond, end_, 1);
  AppendPressure("p2", end_ - 5 * 60 * kSecond, end_, 2);
  auto code = [&](const std::string& target) {
    HttpResponse r = serve_->http->Get(target);
    return std::make_pair(r.status, std::string(r.json().at("code").as_string()));
  };
  using P = std::pair<unsigned, std::string>;
  EXPECT_EQ(code("/digitaltwins/p1/forecast/pressure?horizon=0"), P(400, "INVALID_PARAMETER"));
  EXPECT_EQ(code("/digitaltwins/p1/forecast/pressure?horizon=ten"), P(400, "INVALID_PARAMETER"));
  EXPECT_EQ(code("/digitaltwins/p1/forecast/pressure?step=soon"), P(400, "INVALID_PARAMETER"));
  EXPECT_EQ(code("/digitaltwins/p1/forecast/pressure?levels=0.8,1.5"), P(400, "INVALID_PARAMETER"));
  EXPECT_EQ(code("/digitaltwins/p1/forecast/pressure?family=prophet"), P(400, "INVALID_PARAMETER"));
  EXPECT_EQ(code("/digitaltwins/nope/forecast/pressure"), P(404, "TWIN_NOT_FOUND"));
  EXPECT_EQ(code("/digitaltwins/p1/forecast/mode"), P(404, "FORECAST_NO_DATA"));
  EXPECT_EQ(code("/digitaltwins/p1/forecast/nope"), P(404, "HISTORY_UNKNOWN_ELEMENT"));
  EXPECT_EQ(code("/digitaltwins/p1/forecast/pressure?step=1h&refit=false"),
            P(404, "FORECAST_NO_MODEL"));
  auto [status, c] = code("/digitaltwins/p2/forecast/pressure?step=1m");
  EXPECT_EQ(status, 422u);
  EXPECT_EQ(c, "FORECAST_TOO_SHORT");
  // Nothing was kept for the refused requests.
  HttpResponse r = serve_->http->Get("/digitaltwins/p1/forecast-models");
  EXPECT_TRUE(r.json().at("value").as_array().empty());
  r = serve_->http->Get("/forecast-accuracy");
  EXPECT_EQ(r.json().at("pending").to_number<int>(), 0);
}

TEST_F(AnalyticsApiTest, ServedForecastsAreScoredWhenTheActualsArrive) {
  AppendPressure("p1", end_ - 6 * 3600 * kSecond, end_, 1);
  HttpResponse r = serve_->http->Get("/digitaltwins/p1/forecast/pressure?step=1m&horizon=10");
  ASSERT_EQ(r.status, 200u) << r.body;
  const std::string family(r.json().at("info").at("family").as_string());
  r = serve_->http->Get("/forecast-accuracy");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("pending").to_number<int>(), 1);
  EXPECT_TRUE(r.json().at("twins").as_array().empty());

  // Twelve more minutes of data: every forecast step's minute is complete.
  AppendPressure("p1", end_ + 10 * kSecond, end_ + 12 * 60 * kSecond, 3);
  r = serve_->http->Get("/forecast-accuracy?twin=p1");
  ASSERT_EQ(r.status, 200u) << r.body;
  json::value a = r.json();
  EXPECT_EQ(a.at("pending").to_number<int>(), 0);
  ASSERT_EQ(a.at("twins").as_array().size(), 1u) << r.body;
  const json::value& t = a.at("twins").at(0);
  EXPECT_EQ(t.at("twin"), "p1");
  EXPECT_EQ(t.at("family"), json::value(family));
  EXPECT_EQ(t.at("n").to_number<int>(), 10);
  EXPECT_LT(t.at("mae").as_double(), 1.0);
  ASSERT_EQ(t.at("coverage").as_array().size(), 2u);
  for (const json::value& c : t.at("coverage").as_array()) {
    EXPECT_EQ(c.at("counted").to_number<int>(), 10);
    EXPECT_GE(c.at("coverage").as_double(), 0.0);
    EXPECT_LE(c.at("coverage").as_double(), 1.0);
  }
  r = serve_->http->Get("/metrics");
  EXPECT_NE(
      r.body.find(fmt::format("doppel_forecast_evaluated_total{{family=\"{}\"}} 10\n", family)),
      std::string::npos)
      << r.body.substr(r.body.find("doppel_forecast"), 600);

  // The counts survive a restart.
  serve_.reset();
  serve_ = std::make_unique<Serve>(dir_);
  r = serve_->http->Get("/forecast-accuracy");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("families").at(family).at("n").to_number<int>(), 10) << r.body;
}

TEST_F(AnalyticsApiTest, ARetrainingScheduleTrainsOnItsOwnAndSkipsWhenNothingIsNew) {
  AppendPressure("p1", end_ - 6 * 3600 * kSecond, end_, 1);
  HttpResponse r = serve_->http->Put("/digitaltwins/p1/forecast-schedules/pressure",
                                     R"({"every": "1s", "step": "1m", "horizon": 10,
                                         "levels": [0.8, 0.95], "family": "autoregressive"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("every"), "1s");
  EXPECT_EQ(r.json().at("step"), "1m");
  EXPECT_EQ(r.json().at("family"), "autoregressive");
  EXPECT_TRUE(r.json().at("lastRun").is_null());

  // The worker trains it without a request, once; later runs find no new complete minute.
  json::value s;
  for (int i = 0; i < 200; ++i) {
    r = serve_->http->Get("/digitaltwins/p1/forecast-schedules");
    ASSERT_EQ(r.status, 200u) << r.body;
    ASSERT_EQ(r.json().at("value").as_array().size(), 1u) << r.body;
    s = r.json().at("value").at(0);
    if (s.at("runs").at("skipped").to_number<int>() >= 1) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(s.at("runs").at("trained").to_number<int>(), 1) << s;
  ASSERT_GE(s.at("runs").at("skipped").to_number<int>(), 1) << s;
  EXPECT_EQ(s.at("runs").at("failed").to_number<int>(), 0) << s;
  EXPECT_EQ(s.at("lastResult"), "skipped");
  EXPECT_EQ(s.at("lastVersion").to_number<int>(), 1);
  r = serve_->http->Get("/digitaltwins/p1/forecast-models");
  ASSERT_EQ(r.json().at("value").as_array().size(), 1u) << r.body;
  EXPECT_EQ(r.json().at("value").at(0).at("familyChoice"), "autoregressive");
  // A forecast with the schedule's parameters uses the scheduled model.
  r = serve_->http->Get(
      "/digitaltwins/p1/forecast/pressure?step=1m&horizon=10&family=autoregressive");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_FALSE(r.json().at("model").at("trainedNow").as_bool()) << r.body;
  r = serve_->http->Get("/metrics");
  EXPECT_NE(r.body.find("doppel_forecast_schedules 1\n"), std::string::npos);
  EXPECT_NE(r.body.find("doppel_forecast_scheduled_runs_total{result=\"trained\"} 1\n"),
            std::string::npos);

  // New data: the next run trains version 2.
  AppendPressure("p1", end_ + 10 * kSecond, end_ + 3 * 60 * kSecond, 3);
  for (int i = 0; i < 200; ++i) {
    s = serve_->http->Get("/forecast-schedules").json().at("value").at(0);
    if (s.at("runs").at("trained").to_number<int>() >= 2) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(s.at("lastVersion").to_number<int>(), 2) << s;

  // Kept across a restart.
  serve_.reset();
  serve_ = std::make_unique<Serve>(dir_);
  r = serve_->http->Get("/forecast-schedules");
  ASSERT_EQ(r.json().at("value").as_array().size(), 1u) << r.body;
  EXPECT_GE(r.json().at("value").at(0).at("runs").at("trained").to_number<int>(), 2) << r.body;

  r = serve_->http->Delete("/digitaltwins/p1/forecast-schedules/pressure");
  EXPECT_EQ(r.status, 204u) << r.body;
  r = serve_->http->Delete("/digitaltwins/p1/forecast-schedules/pressure");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.json().at("code"), "FORECAST_SCHEDULE_NOT_FOUND");
  EXPECT_TRUE(serve_->http->Get("/forecast-schedules").json().at("value").as_array().empty());
}

TEST_F(AnalyticsApiTest, BadSchedulesSayWhatIsWrongAndAreNotKept) {
  auto put = [&](const std::string& target, const std::string& body) {
    HttpResponse r = serve_->http->Put(target, body);
    json::value j = r.json();
    return std::make_tuple(r.status, std::string(j.at("code").as_string()),
                           j.as_object().contains("pointer")
                               ? std::string(j.at("pointer").as_string())
                               : std::string());
  };
  using T = std::tuple<unsigned, std::string, std::string>;
  const std::string p1 = "/digitaltwins/p1/forecast-schedules/pressure";
  EXPECT_EQ(put(p1, "{}"), T(400, "INVALID_BODY", "/every"));
  EXPECT_EQ(put(p1, "[1]"), T(400, "INVALID_BODY", ""));
  EXPECT_EQ(put(p1, "{\"every\": 60}"), T(400, "INVALID_BODY", "/every"));
  EXPECT_EQ(put(p1, R"({"every": "1h", "cron": "0 * * * *"})"), T(400, "INVALID_BODY", "/cron"));
  EXPECT_EQ(put(p1, R"({"every": "1h", "horizon": "10"})"), T(400, "INVALID_BODY", "/horizon"));
  EXPECT_EQ(put(p1, R"({"every": "1h", "levels": 0.9})"), T(400, "INVALID_BODY", "/levels"));
  EXPECT_EQ(put(p1, R"({"every": "hourly"})"), T(400, "INVALID_PARAMETER", ""));
  EXPECT_EQ(put(p1, R"({"every": "100ms"})"), T(400, "FORECAST_BAD_OPTIONS", ""));
  EXPECT_EQ(put(p1, R"({"every": "1h", "levels": [0.8, 1.5]})"), T(400, "INVALID_PARAMETER", ""));
  EXPECT_EQ(put(p1, R"({"every": "1h", "family": "prophet"})"), T(400, "INVALID_PARAMETER", ""));
  EXPECT_EQ(put(p1, "{\"every\""), T(400, "JSON_SYNTAX", ""));
  EXPECT_EQ(put("/digitaltwins/nope/forecast-schedules/pressure", R"({"every": "1h"})"),
            T(404, "TWIN_NOT_FOUND", ""));
  EXPECT_EQ(put("/digitaltwins/p1/forecast-schedules/nope", R"({"every": "1h"})"),
            T(404, "HISTORY_UNKNOWN_ELEMENT", ""));
  HttpResponse r = serve_->http->Get("/forecast-schedules");
  EXPECT_TRUE(r.json().at("value").as_array().empty()) << r.body;
  r = serve_->http->Get("/digitaltwins/nope/forecast-schedules");
  EXPECT_EQ(r.status, 404u);

  // A schedule without data yet is kept; its runs fail with the reason until data come.
  r = serve_->http->Put(p1, R"({"every": "1s"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  json::value s;
  for (int i = 0; i < 200; ++i) {
    s = serve_->http->Get("/forecast-schedules").json().at("value").at(0);
    if (s.at("runs").at("failed").to_number<int>() >= 1) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(s.at("lastResult"), "failed") << s;
  EXPECT_NE(std::string(s.at("lastError").as_string()).find("FORECAST_NO_DATA"), std::string::npos)
      << s;
  // Deleting the twin deletes its schedules.
  r = serve_->http->Delete("/digitaltwins/p1");
  ASSERT_EQ(r.status, 204u) << r.body;
  EXPECT_TRUE(serve_->http->Get("/forecast-schedules").json().at("value").as_array().empty());
}

}  // namespace
}  // namespace doppel

namespace doppel {
namespace {

constexpr char kOvenModel[] = R"({
  "@context": "dtmi:dtdl:context;3", "@id": "dtmi:doppel:test:Oven;1", "@type": "Interface",
  "contents": [{"@type": "Telemetry", "name": "temperature", "schema": "double"},
               {"@type": "Telemetry", "name": "power", "schema": "double"},
               {"@type": "Property", "name": "label", "schema": "string"}]})";

// C dT/dt = P - h (T - 20): the filter starts believing h = 10 W/K; the oven's is 7.
constexpr char kEstimator[] = R"({
  "twin": "oven-1", "filter": "ukf",
  "model": {"states": {"T": {"start": 20, "der": "(P - h * (T - 20)) / C"}},
            "parameters": {"h": 10, "C": 500}, "inputs": {"P": 0}},
  "inputs": {"P": "power"},
  "measurement": {"path": "temperature", "of": "T", "stddev": 0.2},
  "estimate": {"h": {"stddev": 3, "drift": 0.001}},
  "states": {"T": {"stddev": 2, "noise": 0.01}}})";

class EstimatorApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "doppel-estimator-api-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    serve_ = std::make_unique<Serve>(dir_);
    std::vector<model::SourceDocument> docs{{"oven", kOvenModel}};
    ASSERT_TRUE(serve_->models->Add(docs).ok());
    auto t = serve_->graph->PutTwinSync(
        "oven-1", json::parse(R"({"$metadata": {"$model": "dtmi:doppel:test:Oven;1"}})"));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
  }
  void TearDown() override {
    serve_.reset();
    fs::remove_all(dir_);
  }
  fs::path dir_;
  std::unique_ptr<Serve> serve_;
};

TEST_F(EstimatorApiTest, TheFilterRecoversTheOvensLossFromItsTelemetry) {
  HttpResponse r = serve_->http->Put("/estimators/oven-loss", kEstimator);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("updates").to_number<int>(), 0);

  // The oven: h = 7, power switching between 300 and 900 W every 100 s; readings every 5 s
  // (temperature with noise sd 0.2, then the power for the next 5 s).
  std::mt19937_64 rng(4);
  std::normal_distribution<double> noise(0, 0.2);
  const auto t0 = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) -
                  std::chrono::seconds(1500);
  double temp = 20, measured = 0;
  json::array readings;
  for (int k = 0; k <= 280; ++k) {
    const double power = (k / 20) % 2 == 0 ? 300 : 900;
    const std::string at = core::FormatRfc3339(t0 + std::chrono::seconds(5 * k));
    measured = temp;
    readings.push_back(json::object{{"twin", "oven-1"},
                                    {"element", "temperature"},
                                    {"value", temp + noise(rng)},
                                    {"sourceTime", at}});
    readings.push_back(json::object{
        {"twin", "oven-1"}, {"element", "power"}, {"value", power}, {"sourceTime", at}});
    for (int i = 0; i < 500; ++i) temp += 0.01 * (power - 7 * (temp - 20)) / 500;  // 5 s
  }
  r = serve_->http->Post("/ingest", json::serialize(json::object{{"readings", readings}}));
  ASSERT_EQ(r.status, 204u) << r.body;

  r = serve_->http->Get("/digitaltwins/oven-1/estimates");
  ASSERT_EQ(r.status, 200u) << r.body;
  json::value e = r.json().at("oven-loss");
  EXPECT_EQ(e.at("updates").to_number<int>(), 281) << r.body;
  const json::value& h = e.at("estimates").at("h");
  EXPECT_EQ(h.at("kind"), "parameter");
  EXPECT_NEAR(h.at("value").as_double(), 7.0, 0.15) << r.body;
  EXPECT_LT(h.at("stddev").as_double(), 0.15);
  EXPECT_GT(h.at("stddev").as_double(), 0.0);
  const json::value& T = e.at("estimates").at("T");
  EXPECT_EQ(T.at("kind"), "state");
  EXPECT_NEAR(T.at("value").as_double(), measured, 0.3);
  EXPECT_TRUE(e.at("nis").is_double());

  // As virtual properties of the twin, and listed.
  r = serve_->http->Get("/digitaltwins/oven-1?includeEstimates=true");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("$estimates").at("oven-loss").at("estimates").at("h"), h);
  r = serve_->http->Get("/estimators");
  ASSERT_EQ(r.json().at("value").as_array().size(), 1u);
  r = serve_->http->Get("/estimators/oven-loss");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("definition").at("twin"), "oven-1");

  // The definition survives a restart (the filter starts again).
  serve_.reset();
  serve_ = std::make_unique<Serve>(dir_);
  r = serve_->http->Get("/estimators/oven-loss");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("updates").to_number<int>(), 0);
  ASSERT_EQ(serve_->http->Delete("/estimators/oven-loss").status, 204u);
  EXPECT_EQ(serve_->http->Get("/estimators/oven-loss").status, 404u);
}

TEST_F(EstimatorApiTest, BadDefinitionsNameTheMemberAndChangeNothing) {
  auto put = [&](const std::string& body) {
    HttpResponse r = serve_->http->Put("/estimators/e", body);
    json::value v = r.json();
    std::string pointer =
        v.as_object().contains("pointer") ? std::string(v.at("pointer").as_string()) : "";
    return std::make_tuple(r.status, std::string(v.at("code").as_string()), pointer);
  };
  auto with = [](std::string_view from, std::string_view to) {
    std::string s(kEstimator);
    const std::size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  using T = std::tuple<unsigned, std::string, std::string>;
  EXPECT_EQ(put(with("\"oven-1\"", "\"oven-9\"")), T(404, "TWIN_NOT_FOUND", "/twin"));
  EXPECT_EQ(put(with("\"path\": \"temperature\"", "\"path\": \"label\"")),
            T(400, "ESTIMATOR_INVALID", "/measurement/path"));
  EXPECT_EQ(put(with("\"path\": \"temperature\"", "\"path\": \"humidity\"")),
            T(400, "ESTIMATOR_INVALID", "/measurement/path"));
  EXPECT_EQ(put(with("\"of\": \"T\"", "\"of\": \"Q\"")),
            T(400, "ESTIMATOR_INVALID", "/measurement/of"));
  EXPECT_EQ(put(with("\"stddev\": 0.2", "\"stddev\": 0")),
            T(400, "ESTIMATOR_INVALID", "/measurement/stddev"));
  EXPECT_EQ(put(with("\"h\": {\"stddev\": 3", "\"k\": {\"stddev\": 3")),
            T(400, "ESTIMATOR_INVALID", "/estimate/k"));
  EXPECT_EQ(put(with("\"P\": \"power\"", "\"Q\": \"power\"")),
            T(400, "ESTIMATOR_INVALID", "/inputs/Q"));
  EXPECT_EQ(put(with("\"filter\": \"ukf\"", "\"filter\": \"pf\"")),
            T(400, "ESTIMATOR_INVALID", "/filter"));
  auto [status, code, pointer] = put(with("(P - h * (T - 20)) / C", "(P - h * (T - 20) / C"));
  EXPECT_EQ(status, 400u);
  EXPECT_EQ(code, "SIM_EXPR_SYNTAX");
  EXPECT_EQ(pointer, "/model/states/T/der");
  EXPECT_EQ(std::get<1>(put("[1]")), "ESTIMATOR_INVALID");
  EXPECT_EQ(std::get<1>(put("{")), "JSON_SYNTAX");
  HttpResponse r = serve_->http->Get("/estimators");
  EXPECT_TRUE(r.json().at("value").as_array().empty());
  EXPECT_EQ(serve_->http->Get("/estimators/e").status, 404u);
}

}  // namespace
}  // namespace doppel
