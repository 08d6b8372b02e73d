// Streaming anomaly detection (analytics/anomaly/anomaly.h): the detectors on series with known
// anomalies and on clean noise, episodes and their events on a real twin graph's change feed.
#include "analytics/anomaly/anomaly.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <random>

#include "model/model_repository.h"
#include "twin/change_feed.h"
#include "twin/twin_graph.h"

namespace doppel::analytics {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

TEST(SeriesDetector, NoVerdictDuringWarmupThenSpikesAreRobustZ) {
  AnomalyOptions o;
  SeriesDetector d(o);
  std::mt19937_64 rng(1);
  std::normal_distribution<double> noise(0, 1);
  for (std::size_t i = 0; i < o.warmup; ++i) EXPECT_FALSE(d.Observe(50 + noise(rng)).scored);
  for (int i = 0; i < 100; ++i) {
    Verdict v = d.Observe(50 + noise(rng));
    ASSERT_TRUE(v.scored);
    EXPECT_FALSE(v.anomalous) << i << " score " << v.score;
  }
  Verdict spike = d.Observe(50 + 12);
  EXPECT_TRUE(spike.anomalous);
  EXPECT_STREQ(spike.detector, "robust_z");
  EXPECT_NEAR(spike.baseline, 50, 0.5);
  EXPECT_NEAR(spike.scale, 1, 0.35);  // 1.4826 × MAD estimates the noise's sigma
  EXPECT_GT(spike.score, o.robust_threshold);
  // A drop the other way too.
  EXPECT_TRUE(d.Observe(50 - 12).anomalous);
}

TEST(SeriesDetector, CleanNoiseRaisesAlmostNothing) {
  AnomalyOptions o;
  SeriesDetector d(o);
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0, 2);
  int anomalous = 0;
  for (int i = 0; i < 100000; ++i) anomalous += d.Observe(20 + noise(rng)).anomalous ? 1 : 0;
  // 6σ and 4σ (of the EWMA) thresholds with a 64-point robust baseline: a handful at most in
  // 100,000 Gaussian readings.
  EXPECT_LE(anomalous, 10);
  RecordProperty("anomalous_of_100000", anomalous);
}

TEST(SeriesDetector, SmallSustainedShiftIsFoundByTheEwmaNotTheRobustZ) {
  AnomalyOptions o;
  SeriesDetector d(o);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 1);
  for (int i = 0; i < 200; ++i) ASSERT_FALSE(d.Observe(noise(rng)).anomalous);
  // +2σ from now on: no single reading is far out, but the EWMA moves off the median.
  int found_at = -1;
  const char* by = "";
  for (int i = 0; i < 30 && found_at < 0; ++i) {
    Verdict v = d.Observe(2 + noise(rng));
    if (v.anomalous) {
      found_at = i;
      by = v.detector;
    }
  }
  ASSERT_GE(found_at, 0) << "a 2-sigma shift went unnoticed for 30 readings";
  EXPECT_STREQ(by, "ewma");
}

TEST(SeriesDetector, ConstantSeriesIsNormalUntilItChanges) {
  AnomalyOptions o;
  SeriesDetector d(o);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(d.Observe(7.0).anomalous);
  Verdict v = d.Observe(7.5);
  EXPECT_TRUE(v.anomalous);
  EXPECT_STREQ(v.detector, "robust_z");
}

constexpr char kModel[] = R"({
  "@context": "dtmi:dtdl:context;3", "@id": "dtmi:doppel:test:Pump;1", "@type": "Interface",
  "contents": [{"@type": "Telemetry", "name": "pressure", "schema": "double"}]})";

class AnomalyMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<model::SourceDocument> docs{{"pump", kModel}};
    ASSERT_TRUE(models_.Add(docs).ok());
    graph_ = std::make_unique<twin::TwinGraph>(models_, nullptr);
    ASSERT_TRUE(graph_
                    ->PutTwinSync("p1", json::parse(
                                            R"({"$metadata": {"$model": "dtmi:doppel:test:Pump;1"}})"))
                    .ok());
    sub_ = graph_->feed().Subscribe(1000, [] {});
    AnomalyMonitorOptions mo;
    mo.graph = graph_.get();
    monitor_ = std::make_unique<AnomalyMonitor>(mo);
  }
  std::vector<twin::ChangeEventPtr> Notices() {
    std::vector<twin::ChangeEventPtr> all, out;
    sub_->Drain(&all);
    for (auto& e : all) {
      if (twin::IsNotice(e->kind)) out.push_back(e);
    }
    return out;
  }

  model::ModelRepository models_;
  std::unique_ptr<twin::TwinGraph> graph_;
  std::shared_ptr<twin::Subscription> sub_;
  std::unique_ptr<AnomalyMonitor> monitor_;
};

TEST_F(AnomalyMonitorTest, AnEpisodeRaisesOneEventAndClearsWithAnother) {
  const auto t0 = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0, 0.5);
  int i = 0;
  auto feed = [&](double v) { monitor_->Observe("p1", "pressure", v, t0 + i++ * 1s); };
  for (int k = 0; k < 100; ++k) feed(3 + noise(rng));
  EXPECT_TRUE(Notices().empty());
  for (int k = 0; k < 3; ++k) feed(30);  // a burst: one episode, not three
  auto raised = Notices();
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_EQ(raised[0]->kind, twin::ChangeKind::kTwinAnomaly);
  json::value ev = raised[0]->ToJson();
  EXPECT_EQ(ev.at("type"), "twin.anomaly");
  EXPECT_EQ(ev.at("twinId"), "p1");
  EXPECT_EQ(ev.at("model"), "dtmi:doppel:test:Pump;1");
  EXPECT_FALSE(ev.as_object().contains("seq"));
  EXPECT_EQ(ev.at("data").at("path"), "/pressure");
  EXPECT_EQ(ev.at("data").at("detector"), "robust_z");
  EXPECT_EQ(ev.at("data").at("value").as_double(), 30);
  EXPECT_NEAR(ev.at("data").at("baseline").as_double(), 3, 0.3);
  EXPECT_TRUE(ev.at("data").at("end").is_null());

  auto a = monitor_->Twin("p1");
  ASSERT_TRUE(a);
  ASSERT_EQ(a->active.size(), 1u);
  EXPECT_EQ(a->active[0].path, "pressure");
  EXPECT_EQ(a->active[0].anomalous_readings, 3u);
  ASSERT_EQ(monitor_->Active().size(), 1u);

  // Back to normal: cleared after clear_after normal readings in a row (the EWMA, which took
  // the burst clipped, needs a few readings to come back first).
  std::vector<twin::ChangeEventPtr> cleared;
  int normal = 0;
  while (cleared.empty() && normal < 40) {
    feed(3 + noise(rng));
    ++normal;
    cleared = Notices();
  }
  EXPECT_GE(normal, static_cast<int>(monitor_->options().detector.clear_after));
  EXPECT_LE(normal, 25);
  ASSERT_EQ(cleared.size(), 1u);
  EXPECT_EQ(cleared[0]->ToJson().at("type"), "twin.anomalyCleared");
  EXPECT_FALSE(cleared[0]->ToJson().at("data").at("end").is_null());
  a = monitor_->Twin("p1");
  EXPECT_TRUE(a->active.empty());
  ASSERT_EQ(a->recent.size(), 1u);
  EXPECT_EQ(a->series.at(0).episodes, 1u);
  // The burst, and the readings after it while the EWMA still sat off the median.
  EXPECT_GE(a->series.at(0).anomalous_readings, 3u);
  EXPECT_EQ(a->series.at(0).anomalous_readings, a->recent[0].anomalous_readings);
  AnomalyTotals t = monitor_->Totals();
  EXPECT_EQ(t.episodes, 1u);
  EXPECT_EQ(t.episodes_by_detector["robust_z"], 1u);
  EXPECT_EQ(t.active, 0u);
}

TEST_F(AnomalyMonitorTest, OutOfOrderNonFiniteAndNonNumericAreNotScored) {
  const auto t0 = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  for (int k = 0; k < 50; ++k) monitor_->Observe("p1", "pressure", 1.0 + (k % 3), t0 + k * 1s);
  monitor_->Observe("p1", "pressure", 1e9, t0 + 10s);  // older than the newest: skipped
  monitor_->Observe("p1", "pressure", std::nan(""), t0 + 100s);
  monitor_->ObserveJson("p1", "pressure", json::value("high"), t0 + 101s);
  monitor_->ObserveJson("p1", "pressure", json::value(true), t0 + 102s);
  EXPECT_TRUE(Notices().empty());
  EXPECT_EQ(monitor_->Twin("p1")->series.at(0).readings, 50u);
  monitor_->ObserveJson("p1", "pressure", json::value(std::int64_t{2}), t0 + 103s);
  EXPECT_EQ(monitor_->Twin("p1")->series.at(0).readings, 51u);
  monitor_->Forget("p1");
  EXPECT_FALSE(monitor_->Twin("p1"));
}

}  // namespace
}  // namespace doppel::analytics
