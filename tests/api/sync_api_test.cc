// Sync quality over the API, on a real server over real sockets: GET /sync,
// GET /digitaltwins/{id}/sync, `$sync` (?includeSync=true), the doppel_sync_* lines of /metrics
// (and the exposition-format rules of the whole /metrics answer), and twin.stale / twin.fresh on
// the /events WebSocket. The tracker's clock is injected and Tick() called by the test: nothing
// waits for time to pass.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "api/server.h"
#include "core/time.h"
#include "http_test_client.h"
#include "model/model_repository.h"
#include "sync/sync_quality.h"
#include "twin/twin_graph.h"

namespace doppel {
namespace {

namespace json = boost::json;
using apitest::HttpClient;
using apitest::HttpResponse;
using apitest::WsClient;
using namespace std::chrono_literals;

constexpr char kModel[] = R"({
  "@context": "dtmi:dtdl:context;3", "@id": "dtmi:doppel:test:Sensor;1", "@type": "Interface",
  "contents": [
    {"@type": "Property", "name": "temperature", "schema": "double"},
    {"@type": "Telemetry", "name": "level", "schema": "double"}]})";

class SyncApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Whole seconds: the source times below are exact.
    now_ = std::chrono::floor<std::chrono::seconds>(sync::SyncClock::now());
    std::vector<model::SourceDocument> docs{{"sensor", kModel}};
    ASSERT_TRUE(models_.Add(docs).ok());
    graph_ = std::make_unique<twin::TwinGraph>(models_, nullptr);
    for (const char* id : {"s1", "s2", "s3"}) {
      auto r = graph_->PutTwinSync(
          id, json::parse(R"({"$metadata": {"$model": "dtmi:doppel:test:Sensor;1"}})"));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
    sync::SyncOptions so;
    so.graph = graph_.get();
    so.clock = [this] {
      std::lock_guard lock(clock_mu_);
      return now_;
    };
    tracker_ = std::make_unique<sync::SyncTracker>(so);
    keys_ = std::make_unique<api::KeyStore>(nullptr);
    api::ServerOptions opts;
    opts.insecure = true;
    opts.port = 0;
    opts.io_threads = 1;
    api::Services services{&models_, graph_.get(), nullptr, keys_.get()};
    services.sync = tracker_.get();
    server_ = std::make_unique<api::Server>(services, opts);
    ASSERT_TRUE(server_->Start().ok());
    http_ = std::make_unique<HttpClient>(server_->port());
  }
  void TearDown() override {
    http_.reset();
    if (server_) server_->Stop();
    server_.reset();
  }

  void SetNow(sync::SyncClock::time_point t) {
    std::lock_guard lock(clock_mu_);
    now_ = t;
  }
  std::string At(std::chrono::seconds offset) { return core::FormatRfc3339(now_ + offset); }

  // s1: telemetry every second from -5 s to -1 s and one wrong-typed reading; s2: one Property.
  void IngestSomeReadings() {
    json::array readings;
    for (int i = 5; i >= 1; --i) {
      readings.push_back(json::object{{"twin", "s1"},
                                      {"element", "level"},
                                      {"value", 10 - i},
                                      {"sourceTime", At(-std::chrono::seconds(i))}});
    }
    readings.push_back(json::object{
        {"twin", "s1"}, {"element", "temperature"}, {"value", "hot"}, {"sourceTime", At(-1s)}});
    readings.push_back(json::object{
        {"twin", "s2"}, {"element", "temperature"}, {"value", 21.5}, {"sourceTime", At(-2s)}});
    readings.push_back(json::object{
        {"twin", "ghost"}, {"element", "temperature"}, {"value", 1}, {"sourceTime", At(-2s)}});
    auto r = http_->Post("/ingest", json::serialize(json::object{{"readings", readings}}));
    ASSERT_EQ(r.status, 400u) << r.body;  // INGEST_PARTIAL: two rejections
    ingested_at_ = sync::SyncClock::now();
  }

  std::mutex clock_mu_;
  sync::SyncClock::time_point now_;
  sync::SyncClock::time_point ingested_at_;  // real time, after the readings were applied
  model::ModelRepository models_;
  std::unique_ptr<twin::TwinGraph> graph_;
  std::unique_ptr<sync::SyncTracker> tracker_;
  std::unique_ptr<api::KeyStore> keys_;
  std::unique_ptr<api::Server> server_;
  std::unique_ptr<HttpClient> http_;
};

TEST_F(SyncApiTest, TwinSyncEndpointAndDollarSync) {
  IngestSomeReadings();
  HttpResponse r = http_->Get("/digitaltwins/s1/sync");
  ASSERT_EQ(r.status, 200u) << r.body;
  json::value s = r.json();
  EXPECT_EQ(s.at("twinId"), "s1");
  EXPECT_EQ(s.at("state"), "fresh");
  EXPECT_EQ(s.at("ageMs").as_int64(), 1000);
  EXPECT_EQ(s.at("expectedIntervalMs").as_int64(), 1000);
  EXPECT_EQ(s.at("expectedIntervalSource"), "inferred");
  EXPECT_EQ(s.at("lastSourceTime"), json::value(At(-1s)));
  EXPECT_EQ(s.at("readings").at("telemetry").to_number<std::uint64_t>(), 5u);
  EXPECT_EQ(s.at("readings").at("received").to_number<std::uint64_t>(), 6u);
  EXPECT_EQ(
      s.at("readings").at("rejectedByCode").at("INGEST_WRONG_TYPE").to_number<std::uint64_t>(), 1u);
  EXPECT_DOUBLE_EQ(s.at("rejectionRate").as_double(), 1.0 / 6);
  EXPECT_EQ(s.at("lagMs").at("samples").to_number<std::uint64_t>(), 5u);
  EXPECT_TRUE(s.at("lagMs").at("p50").is_double());
  EXPECT_TRUE(s.at("divergence").is_null());

  // $sync only when asked for; the rest of the twin is unchanged.
  HttpResponse plain = http_->Get("/digitaltwins/s1");
  ASSERT_EQ(plain.status, 200u);
  EXPECT_FALSE(plain.json().as_object().contains("$sync"));
  HttpResponse with = http_->Get("/digitaltwins/s1?includeSync=true");
  ASSERT_EQ(with.status, 200u);
  EXPECT_EQ(with.header("etag"), plain.header("etag"));
  json::object twin = with.json().as_object();
  ASSERT_TRUE(twin.contains("$sync"));
  EXPECT_EQ(twin.at("$sync").at("state"), "fresh");
  EXPECT_EQ(twin.at("$dtId"), "s1");
  twin.erase("$sync");
  EXPECT_EQ(json::value(twin), plain.json());

  // A twin without sync data; a twin that does not exist.
  r = http_->Get("/digitaltwins/s3/sync");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("state"), "unknown");
  EXPECT_EQ(r.json().at("readings").at("received").to_number<std::uint64_t>(), 0u);
  EXPECT_TRUE(r.json().at("lastSourceTime").is_null());
  r = http_->Get("/digitaltwins/ghost/sync");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.json().at("code"), "TWIN_NOT_FOUND");

  // Deleting a twin forgets its sync data.
  ASSERT_EQ(http_->Delete("/digitaltwins/s2").status, 204u);
  EXPECT_FALSE(tracker_->Twin("s2").has_value());
}

TEST_F(SyncApiTest, SyncListFiltersAndSortsAndStaleEventsReachTheWebSocket) {
  IngestSomeReadings();
  tracker_->SetExpectedInterval("s2", 1s);
  EXPECT_TRUE(tracker_->Tick().empty());  // both fresh
  WsClient ws;
  ASSERT_EQ(ws.Connect(server_->port(), "/events?twin=s1&path=/level"), 101u);
  auto first = ws.Next();
  ASSERT_TRUE(first && !first->closed);
  EXPECT_EQ(first->json().at("type"), "subscribed");

  SetNow(now_ + 10s);
  ASSERT_EQ(tracker_->Tick().size(), 2u);  // s1 and s2 went stale
  auto m = ws.Next();
  ASSERT_TRUE(m && !m->closed);
  json::value e = m->json();
  EXPECT_EQ(e.at("type"), "twin.stale");
  EXPECT_EQ(e.at("twinId"), "s1");
  EXPECT_EQ(e.at("model"), "dtmi:doppel:test:Sensor;1");
  EXPECT_EQ(e.at("data").at("ageMs").as_int64(), 11000);
  EXPECT_EQ(e.at("data").at("expectedIntervalMs").as_int64(), 1000);

  HttpResponse r = http_->Get("/sync?state=stale&orderBy=age");
  ASSERT_EQ(r.status, 200u) << r.body;
  json::value body = r.json();
  EXPECT_EQ(body.at("count").to_number<std::uint64_t>(), 2u);
  ASSERT_EQ(body.at("value").as_array().size(), 2u);
  EXPECT_EQ(body.at("value").at(0).at("twinId"), "s2");  // 12 s old, worse than s1's 11 s
  EXPECT_EQ(body.at("value").at(1).at("twinId"), "s1");
  EXPECT_EQ(body.at("overall").at("twins").at("stale").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(body.at("overall")
                .at("readings")
                .at("rejectedByCode")
                .at("INGEST_UNKNOWN_TWIN")
                .to_number<std::uint64_t>(),
            1u);
  r = http_->Get("/sync?state=fresh");
  EXPECT_EQ(r.json().at("count").to_number<std::uint64_t>(), 0u);
  r = http_->Get("/sync?orderBy=twin&limit=1");
  EXPECT_EQ(r.json().at("count").to_number<std::uint64_t>(), 2u);
  ASSERT_EQ(r.json().at("value").as_array().size(), 1u);
  EXPECT_EQ(r.json().at("value").at(0).at("twinId"), "s1");
  for (const char* bad : {"/sync?state=bogus", "/sync?orderBy=size", "/sync?limit=-1"}) {
    r = http_->Get(bad);
    EXPECT_EQ(r.status, 400u) << bad;
    EXPECT_EQ(r.json().at("code"), "INVALID_PARAMETER") << bad;
  }

  // s1 reports again: fresh.
  auto post = http_->Post(
      "/ingest",
      json::serialize(json::object{
          {"readings",
           json::array{json::object{
               {"twin", "s1"}, {"element", "level"}, {"value", 1}, {"sourceTime", At(0s)}}}}}));
  ASSERT_EQ(post.status, 204u) << post.body;
  ASSERT_EQ(tracker_->Tick().size(), 1u);
  m = ws.Next();
  ASSERT_TRUE(m && !m->closed);
  EXPECT_EQ(m->json().at("type"), "twin.fresh");
}

// Prometheus text exposition format 0.0.4: every sample belongs to a family declared once with
// # HELP and # TYPE before its samples; names and labels are well formed; values are floats.
struct Exposition {
  std::map<std::string, std::string> types;  // family -> type
  std::map<std::string, double> samples;     // "name{labels}" -> value
  std::vector<std::string> errors;
};

Exposition ParseExposition(const std::string& text) {
  Exposition x;
  static const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*$)");
  static const std::regex type(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? (\S+)$)");
  std::set<std::string> helped;
  std::istringstream in(text);
  std::string line;
  std::string current;  // the family whose samples may follow
  while (std::getline(in, line)) {
    std::smatch m;
    if (line.empty()) continue;
    if (std::regex_match(line, m, help)) {
      if (!helped.insert(m[1]).second) x.errors.push_back("second HELP: " + line);
      continue;
    }
    if (std::regex_match(line, m, type)) {
      if (x.types.contains(m[1])) x.errors.push_back("second TYPE: " + line);
      if (!helped.contains(m[1])) x.errors.push_back("TYPE before HELP: " + line);
      x.types[m[1]] = m[2];
      current = m[1];
      continue;
    }
    if (!std::regex_match(line, m, sample)) {
      x.errors.push_back("not a sample: " + line);
      continue;
    }
    std::string name = m[1];
    std::string family = name;
    const std::string& t = x.types.count(current) ? x.types[current] : std::string();
    for (const char* suffix : {"_sum", "_count", "_bucket"}) {
      if ((t == "summary" || t == "histogram") && name == current + suffix) family = current;
    }
    if (family != current) x.errors.push_back("sample outside its family: " + line);
    std::string value = m[7];
    double v = 0;
    if (value == "NaN") {
      v = std::numeric_limits<double>::quiet_NaN();
    } else if (value == "+Inf") {
      v = std::numeric_limits<double>::infinity();
    } else {
      try {
        std::size_t used = 0;
        v = std::stod(value, &used);
        if (used != value.size()) x.errors.push_back("bad value: " + line);
      } catch (...) {
        x.errors.push_back("bad value: " + line);
      }
    }
    std::string key = name + (m[2].matched ? std::string(m[2]) : std::string());
    if (x.samples.contains(key)) x.errors.push_back("duplicate sample: " + line);
    x.samples[key] = v;
  }
  return x;
}

TEST_F(SyncApiTest, MetricsFollowTheExpositionFormat) {
  // The parser catches what it should.
  EXPECT_FALSE(ParseExposition("x 1\n").errors.empty());
  EXPECT_FALSE(ParseExposition("# HELP x h\n# TYPE x gauge\nx{a=\"b} 1\n").errors.empty());
  EXPECT_FALSE(ParseExposition("# HELP x h\n# TYPE x gauge\nx one\n").errors.empty());
  EXPECT_TRUE(ParseExposition("# HELP x h\n# TYPE x gauge\nx{a=\"q\\\"\"} 1\n").errors.empty());

  IngestSomeReadings();
  SetNow(now_ + 10s);
  HttpResponse r = http_->Get("/metrics");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4");
  Exposition x = ParseExposition(r.body);
  for (const auto& e : x.errors) ADD_FAILURE() << e;
  EXPECT_EQ(x.types["doppel_sync_lag_seconds"], "summary");
  EXPECT_EQ(x.types["doppel_sync_twins"], "gauge");
  EXPECT_EQ(x.types["doppel_sync_rejected_total"], "counter");
  EXPECT_EQ(x.samples["doppel_sync_twins{state=\"stale\"}"], 1);    // s1
  EXPECT_EQ(x.samples["doppel_sync_twins{state=\"unknown\"}"], 1);  // s2: one reading, no interval
  EXPECT_EQ(x.samples["doppel_sync_twins{state=\"fresh\"}"], 0);
  EXPECT_EQ(x.samples["doppel_sync_rejected_total{reason=\"INGEST_WRONG_TYPE\"}"], 1);
  EXPECT_EQ(x.samples["doppel_sync_rejected_total{reason=\"INGEST_UNKNOWN_TWIN\"}"], 1);
  EXPECT_EQ(x.samples["doppel_sync_readings_total{outcome=\"telemetry\"}"], 5);
  EXPECT_EQ(x.samples["doppel_sync_readings_total{outcome=\"applied\"}"], 1);
  EXPECT_EQ(x.samples["doppel_sync_lag_seconds_count"], 6);
  // Lags of 1..5 s (telemetry) and 2 s (s2), each plus the (real) time between the test's "now"
  // and the write, at most `late`: the median is the 3rd of 6, 2 s + that, within 6.25%.
  const double late = std::chrono::duration<double>(ingested_at_ - (now_ - 10s)).count();
  const double p50 = x.samples["doppel_sync_lag_seconds{quantile=\"0.5\"}"];
  EXPECT_GE(p50, 2 * 0.9375);
  EXPECT_LE(p50, (2 + late) * 1.0625);
  EXPECT_EQ(x.samples["doppel_sync_oldest_age_seconds"], 11);  // s1 (s2's state is unknown)
}

}  // namespace
}  // namespace doppel
