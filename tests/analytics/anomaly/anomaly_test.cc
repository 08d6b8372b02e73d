// Streaming anomaly detection (analytics/anomaly/anomaly.h): the detectors on series with known
// anomalies and on clean noise, trends and waves that must not raise episodes, irregular source
// times, episodes and their events on a real twin graph's change feed.
#include "analytics/anomaly/anomaly.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <random>
#include <vector>

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

// Episodes of one series as AnomalyMonitor counts them: the first anomalous reading opens one,
// clear_after normal readings in a row close it.
struct SeriesRun {
  std::vector<std::size_t> starts;  // reading index of each episode's first anomalous reading
  std::size_t anomalous = 0, scored = 0, recent_fit = 0;
};

// n readings, reading i at time time(i) with value value(i).
template <typename Time, typename Value>
SeriesRun RunSeries(const AnomalyOptions& o, std::size_t n, Time time, Value value) {
  SeriesDetector d(o);
  SeriesRun run;
  bool open = false;
  std::size_t normal = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const Verdict v = d.Observe(value(i), time(i));
    if (!v.scored) continue;
    ++run.scored;
    run.recent_fit += v.recent_fit ? 1 : 0;
    if (v.anomalous) {
      ++run.anomalous;
      normal = 0;
      if (!open) run.starts.push_back(i);
      open = true;
    } else if (open && ++normal >= o.clear_after) {
      open = false;
      normal = 0;
    }
  }
  return run;
}

std::size_t CountFrom(const std::vector<std::size_t>& starts, std::size_t from) {
  return static_cast<std::size_t>(
      std::count_if(starts.begin(), starts.end(), [&](std::size_t i) { return i >= from; }));
}

double Wave(std::size_t i, double period) {
  return std::sin(2 * std::numbers::pi * static_cast<double>(i) / period);
}

// A slow wave (4σ, 20,000 readings, 10 seeds) is followed, not flagged. The window fit (a line
// through the 128 readings) follows a wave of period 1000 (8 windows); a wave of period 400 curves
// too much within a window and moves to the recent fit (32 readings) within its first periods,
// which may raise an episode or two while it learns (measured: 14 in 10 runs, at most 2 in one).
// After two periods the waves raise no more episodes than white noise with the same seeds
// (measured: 1 and 8 against 12). The flat baseline (the window's median), for comparison, lags
// the wave by half a window and flags every swing (measured: 153 and 214 in one run).
TEST(SeriesDetector, SlowWavesRaiseNoMoreEpisodesThanNoiseOnceLearnt) {
  AnomalyOptions o;
  AnomalyOptions flat;
  flat.detrend = false;
  constexpr std::size_t kReadings = 20000, kSeeds = 10;
  auto index = [](std::size_t i) { return static_cast<double>(i); };
  std::size_t noise_episodes = 0;
  for (unsigned seed = 1; seed <= kSeeds; ++seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> noise(0, 1);
    noise_episodes +=
        RunSeries(o, kReadings, index, [&](std::size_t) { return 10 + noise(rng); }).starts.size();
  }
  for (double period : {400.0, 1000.0}) {
    std::size_t learning = 0, later = 0, recent = 0, scored = 0, worst_learning = 0;
    for (unsigned seed = 1; seed <= kSeeds; ++seed) {
      std::mt19937_64 rng(seed);
      std::normal_distribution<double> noise(0, 1);
      const SeriesRun run = RunSeries(o, kReadings, index, [&](std::size_t i) {
        return 10 + 4 * Wave(i, period) + noise(rng);
      });
      const std::size_t after = CountFrom(run.starts, static_cast<std::size_t>(2 * period));
      learning += run.starts.size() - after;
      worst_learning = std::max(worst_learning, run.starts.size() - after);
      later += after;
      recent += run.recent_fit;
      scored += run.scored;
    }
    std::mt19937_64 rng(1);
    std::normal_distribution<double> noise(0, 1);
    const SeriesRun flat_run = RunSeries(flat, kReadings, index, [&](std::size_t i) {
      return 10 + 4 * Wave(i, period) + noise(rng);
    });
    const double recent_share = static_cast<double>(recent) / static_cast<double>(scored);
    std::printf(
        "period %.0f: %zu episodes in the first two periods (worst %zu), %zu after, in %zu "
        "runs of %zu readings (white noise: %zu); recent fit %.3f; flat baseline: %zu in "
        "one run\n",
        period, learning, worst_learning, later, kSeeds, kReadings, noise_episodes, recent_share,
        flat_run.starts.size());
    RecordProperty(period == 400 ? "episodes_after_learning_period_400"
                                 : "episodes_after_learning_period_1000",
                   static_cast<int>(later));
    EXPECT_LE(later, noise_episodes) << period;
    EXPECT_LE(worst_learning, 2u) << period;
    if (period == 400) {
      EXPECT_GT(recent_share, 0.9);  // followed by the recent fit
    } else {
      EXPECT_LT(recent_share, 0.1);  // by the window fit
    }
    EXPECT_GE(flat_run.starts.size(), 100u) << period;
  }
}

// A straight trend changes nothing: the fits are equivariant to adding a line, so a ramp plus
// noise gets the verdicts its noise alone gets, whatever the slope (up to rounding, which can
// tip a borderline reading; after that the runs drift apart, at the same rate). The flat
// baseline, which lags a ramp by half a window, flags it throughout.
TEST(SeriesDetector, RampsGetTheVerdictsOfTheirNoise) {
  AnomalyOptions o;
  constexpr std::size_t kReadings = 20000;
  auto index = [](std::size_t i) { return static_cast<double>(i); };
  std::size_t total_noise = 0, total_ramp = 0;
  for (unsigned seed = 1; seed <= 5; ++seed) {
    std::vector<double> noise(kReadings);
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0, 1);
    for (double& x : noise) x = normal(rng);
    const SeriesRun alone = RunSeries(o, kReadings, index, [&](std::size_t i) { return noise[i]; });
    total_noise += alone.starts.size();
    for (double slope : {0.02, 0.5}) {
      const SeriesRun ramp = RunSeries(o, kReadings, index, [&](std::size_t i) {
        return 100 + slope * static_cast<double>(i) + noise[i];
      });
      // The first episode (if any) is the noise's, at the same reading.
      ASSERT_FALSE(alone.starts.empty() != ramp.starts.empty()) << seed << " " << slope;
      if (!alone.starts.empty()) {
        EXPECT_EQ(ramp.starts[0], alone.starts[0]) << seed;
      }
      EXPECT_LE(ramp.starts.size(), alone.starts.size() + 2) << "seed " << seed << " " << slope;
      EXPECT_LE(ramp.recent_fit, 100u);  // a line: the window fit, all but a few readings
      total_ramp += ramp.starts.size();
    }
  }
  std::printf("ramps: %zu episodes in 10 runs of %zu readings; their noise alone: %zu in 5\n",
              total_ramp, kReadings, total_noise);
  EXPECT_LE(total_ramp, 2 * total_noise + 4);
  AnomalyOptions flat;
  flat.detrend = false;
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal(0, 1);
  const SeriesRun flat_ramp = RunSeries(flat, kReadings, index, [&](std::size_t i) {
    return 100 + 0.05 * static_cast<double>(i) + normal(rng);
  });
  EXPECT_GT(flat_ramp.starts.size(), 100u);
}

// A persistent 2σ shift on top of a ramp (a machine warming up that then runs hot): the EWMA of
// the residuals finds it; no single reading is far enough out for robust_z. Once the shift is in
// the window fit the line leans towards it, so a few are absorbed before the EWMA gets there:
// over the seeds with no false alarm before the shift, ≥ 94% are found within 30 readings
// (measured: 98.2% of 281), with a median delay of ≤ 8 (measured: 6; 90% within 12).
TEST(SeriesDetector, TwoSigmaShiftOnARampIsFoundByTheEwma) {
  AnomalyOptions o;
  auto ramp = [](int i) { return 40 + 0.05 * i; };
  {
    SeriesDetector d(o);
    std::mt19937_64 rng(3);
    std::normal_distribution<double> noise(0, 1);
    for (int i = 0; i < 500; ++i) ASSERT_FALSE(d.Observe(ramp(i) + noise(rng)).anomalous) << i;
    int found_at = -1;
    const char* by = "";
    for (int i = 500; i < 530 && found_at < 0; ++i) {
      const Verdict v = d.Observe(ramp(i) + 2 + noise(rng));
      if (v.anomalous) {
        found_at = i - 500;
        by = v.detector;
        EXPECT_NEAR(v.baseline, ramp(i), 1);  // the trend line, not the window's median
        EXPECT_NEAR(v.slope, 0.05, 0.01);
      }
    }
    ASSERT_GE(found_at, 0) << "a 2-sigma shift on a ramp went unnoticed for 30 readings";
    EXPECT_STREQ(by, "ewma");
  }
  std::vector<int> delays;
  for (unsigned seed = 1; seed <= 300; ++seed) {
    SeriesDetector d(o);
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> noise(0, 1);
    bool quiet = true;
    for (int i = 0; i < 500; ++i) quiet = !d.Observe(ramp(i) + noise(rng)).anomalous && quiet;
    if (!quiet) continue;  // a false alarm before the shift (white noise's rate): not counted
    int delay = 1000;
    for (int i = 500; i < 530 && delay == 1000; ++i) {
      if (d.Observe(ramp(i) + 2 + noise(rng)).anomalous) delay = i - 500;
    }
    delays.push_back(delay);
  }
  ASSERT_GE(delays.size(), 250u);
  std::sort(delays.begin(), delays.end());
  const auto found = std::count_if(delays.begin(), delays.end(), [](int d) { return d < 1000; });
  const double share = static_cast<double>(found) / static_cast<double>(delays.size());
  std::printf(
      "2-sigma shift on a ramp: %zu seeds, found within 30 readings %.3f, median delay %d, "
      "90th percentile %d\n",
      delays.size(), share, delays[delays.size() / 2], delays[delays.size() * 9 / 10]);
  EXPECT_GE(share, 0.94);
  EXPECT_LE(delays[delays.size() / 2], 8);
}

// Once the detector follows a wave (here on the recent fit), a spike and a dropout are still
// robust_z's: the baseline is the wave's current value, not its mean.
TEST(SeriesDetector, SpikeAndDropoutOnAWaveAreRobustZ) {
  AnomalyOptions o;
  SeriesDetector d(o);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0, 1);
  auto wave = [](int i) { return 50 + 4 * Wave(static_cast<std::size_t>(i), 400); };
  int i = 0;
  for (; i < 3000; ++i) d.Observe(wave(i) + noise(rng));
  for (; i < 3100; ++i) {
    const Verdict v = d.Observe(wave(i) + noise(rng));
    EXPECT_FALSE(v.anomalous) << i << " score " << v.score;
    EXPECT_TRUE(v.recent_fit);
    EXPECT_NEAR(v.baseline, wave(i), 1.5);
  }
  // i = 3100 is a trough (46): 8σ above it is no higher than the crests, a spike only against a
  // baseline that follows the wave.
  Verdict spike = d.Observe(wave(i++) + 8);
  EXPECT_TRUE(spike.anomalous);
  EXPECT_STREQ(spike.detector, "robust_z");
  EXPECT_NEAR(spike.baseline, 46, 1.5);
  for (int k = 0; k < 30; ++k) d.Observe(wave(i++) + noise(rng));
  Verdict dropout = d.Observe(0);
  EXPECT_TRUE(dropout.anomalous);
  EXPECT_STREQ(dropout.detector, "robust_z");
  // A spike on a slow wave the window fit follows.
  SeriesDetector slow(o);
  int j = 0;
  for (; j < 3000; ++j) slow.Observe(50 + 4 * Wave(static_cast<std::size_t>(j), 1000) + noise(rng));
  spike = slow.Observe(50 + 4 * Wave(static_cast<std::size_t>(j), 1000) + 8);
  EXPECT_TRUE(spike.anomalous);
  EXPECT_FALSE(spike.recent_fit);
  EXPECT_STREQ(spike.detector, "robust_z");
}

// A device that reports every second for 500 readings, then every 10 s for 500, and so on: a
// trend in time changes its slope per reading at every switch, so the line has to be fitted
// against source time. Scored by source time the ramp gets its noise's verdicts; scored by
// reading index it raises episodes at the switches. The monitor passes seconds since the series'
// first reading.
TEST(SeriesDetector, IrregularSpacingIsFollowedInSourceTime) {
  AnomalyOptions o;
  constexpr std::size_t kReadings = 20000;
  auto seconds = [](std::size_t i) {
    const std::size_t block = i / 500, k = i % 500;
    return static_cast<double>((block / 2) * 5500 + (block % 2) * 500 + k * (block % 2 ? 10 : 1));
  };
  std::vector<double> noise(kReadings + 1);
  std::mt19937_64 rng(9);
  std::normal_distribution<double> normal(0, 0.5);
  for (double& x : noise) x = normal(rng);
  auto value = [&](std::size_t i) { return 20 + 0.05 * seconds(i) + noise[i]; };
  const SeriesRun by_time = RunSeries(o, kReadings, seconds, value);
  const SeriesRun alone = RunSeries(o, kReadings, seconds, [&](std::size_t i) { return noise[i]; });
  const SeriesRun by_index = RunSeries(
      o, kReadings, [](std::size_t i) { return static_cast<double>(i); }, value);
  std::printf("rate switches: %zu episodes in source time (its noise alone: %zu), %zu by index\n",
              by_time.starts.size(), alone.starts.size(), by_index.starts.size());
  EXPECT_LE(by_time.starts.size(), alone.starts.size() + 2);
  EXPECT_GE(by_index.starts.size(), 20u);  // 39 switches

  // The same through the monitor, with real source times.
  AnomalyMonitor monitor;
  const auto t0 = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  auto at = [&](std::size_t i) {
    return t0 + std::chrono::seconds(static_cast<std::int64_t>(seconds(i)));
  };
  for (std::size_t i = 0; i < kReadings; ++i) monitor.Observe("m1", "temperature", value(i), at(i));
  EXPECT_LE(monitor.Totals().episodes, alone.starts.size() + 2);
  // A spike is still one.
  monitor.Observe("m1", "temperature", value(kReadings) + 5, at(kReadings));
  auto a = monitor.Twin("m1");
  ASSERT_TRUE(a);
  ASSERT_EQ(a->active.size(), 1u);
  EXPECT_EQ(a->active[0].detector, "robust_z");
  EXPECT_NEAR(a->active[0].baseline, 20 + 0.05 * seconds(kReadings), 0.5);
}

// After an outage the line is continued to the reading's time, but its uncertainty is taken no
// further than one span of the fit past its newest reading: at the outage's length it would widen
// the limits until nothing was anomalous. A day later a series that stopped where it was is a
// shift (a series that went on along its trend is compared with the continued line, which after
// a day is off by the slope's error times 86,400 s).
TEST(SeriesDetector, AfterAnOutageTheTrendGoesOnButItsUncertaintyDoesNot) {
  AnomalyOptions o;
  std::mt19937_64 rng(2);
  std::normal_distribution<double> noise(0, 0.1);
  SeriesDetector d(o);
  for (double t = 0; t < 500; t += 1) d.Observe(0.01 * t + noise(rng), t);  // 0.01/s, 1 Hz
  const double later = 500 + 86400;
  const Verdict v = d.Observe(5, later);
  EXPECT_NEAR(v.slope, 0.01, 1e-4);
  EXPECT_NEAR(v.baseline, 0.01 * later, 0.01 * 86400 * 0.01);  // within 1% of the day's rise
  EXPECT_LT(v.scale, 0.2);  // the noise's 0.1 and a little for the slope, not a day of it
  EXPECT_TRUE(v.anomalous);
  EXPECT_STREQ(v.detector, "robust_z");
}

// detrend = false is the flat baseline: the median of the window.
TEST(SeriesDetector, WithoutDetrendTheBaselineIsTheWindowsMedian) {
  AnomalyOptions o;
  o.detrend = false;
  SeriesDetector d(o);
  for (int i = 0; i < 200; ++i) d.Observe(i % 2 == 0 ? 10.0 : 11.0);
  const Verdict v = d.Observe(10.5);
  EXPECT_EQ(v.baseline, 10.5);  // median of 64 tens and 64 elevens
  EXPECT_EQ(v.slope, 0);
  EXPECT_FALSE(v.recent_fit);
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
    ASSERT_TRUE(
        graph_
            ->PutTwinSync("p1",
                          json::parse(R"({"$metadata": {"$model": "dtmi:doppel:test:Pump;1"}})"))
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
