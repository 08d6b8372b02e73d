// Sync quality (sync/sync_quality.h) and flood protection (sync/rate_limit.h): the tracker with an
// injected clock (no sleeping, no wall-clock assertions), the lag histogram against a naive
// reference, stale/fresh events on a real change feed, and the Ingestor feeding the tracker.
#include "sync/sync_quality.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "model/model_repository.h"
#include "sync/ingest.h"
#include "sync/rate_limit.h"
#include "twin/change_feed.h"
#include "twin/twin_graph.h"

namespace doppel::sync {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// A slot-aligned start (a multiple of 10 s and of 60 s), so window arithmetic is exact.
const SyncClock::time_point kT0 = SyncClock::time_point(std::chrono::seconds(1'700'000'400));

struct ManualClock {
  SyncClock::time_point now = kT0;
  std::function<SyncClock::time_point()> Fn() {
    return [this] { return now; };
  }
};

SyncOptions Options(ManualClock& clock, const std::function<void(SyncOptions&)>& tweak = {}) {
  SyncOptions o;
  o.clock = clock.Fn();
  if (tweak) tweak(o);
  return o;
}

// ---- LagHistogram ----------------------------------------------------------------------------

double NaiveQuantile(std::vector<std::uint64_t> v, double q) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::max<std::size_t>(rank, 1);
  return static_cast<double>(v[rank - 1]);
}

TEST(LagHistogram, QuantilesWithinTheDocumentedErrorOfANaiveReference) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::uint64_t> lags;
    LagHistogram h;
    const int n = 1 + static_cast<int>(rng() % 5000);
    std::uniform_real_distribution<double> log_uniform(0, std::log(1e11));
    for (int i = 0; i < n; ++i) {
      auto v = static_cast<std::uint64_t>(std::exp(log_uniform(rng))) - 1;
      lags.push_back(v);
      h.Add(v);
    }
    ASSERT_EQ(h.count(), static_cast<std::uint64_t>(n));
    for (double q : {0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0}) {
      const double naive = NaiveQuantile(lags, q);
      const double got = *h.Quantile(q);
      EXPECT_LE(std::fabs(got - naive), 0.0625 * naive + 1e-9)
          << "q=" << q << " n=" << n << " naive=" << naive << " got=" << got;
    }
  }
}

TEST(LagHistogram, SmallValuesAreExactAndBucketsAreMonotonic) {
  for (std::uint64_t v = 0; v < 16; ++v) {
    EXPECT_EQ(LagHistogram::BucketValue(LagHistogram::BucketOf(v)), static_cast<double>(v));
  }
  std::size_t last = 0;
  for (std::uint64_t v = 1; v < (1ull << 41); v = v * 3 / 2 + 1) {
    std::size_t b = LagHistogram::BucketOf(v);
    EXPECT_GE(b, last);
    last = b;
    const double mid = LagHistogram::BucketValue(b);
    EXPECT_LE(std::fabs(mid - static_cast<double>(v)), 0.0625 * static_cast<double>(v)) << v;
  }
  EXPECT_EQ(LagHistogram::BucketOf(~0ull), LagHistogram::kBuckets - 1);
  LagHistogram empty;
  EXPECT_FALSE(empty.Quantile(0.5).has_value());
}

// ---- SyncTracker with an injected clock ------------------------------------------------------

void Apply(SyncTracker& t, std::string_view twin, SyncClock::time_point source,
           SyncClock::time_point applied, ReadingOutcome o = ReadingOutcome::kApplied) {
  Observation ob{o, source};
  t.Record(twin, std::span<const Observation>(&ob, 1), applied);
}

TEST(SyncTracker, LagPercentilesPerTwinAndOverall) {
  ManualClock clock;
  SyncTracker t(Options(clock));
  // m1: lags 1..1000 ms; m2: lags of 5 s.
  std::vector<std::uint64_t> all;
  for (int i = 1; i <= 1000; ++i) {
    Apply(t, "m1", kT0 - milliseconds(i), kT0);
    all.push_back(static_cast<std::uint64_t>(i) * 1000);
  }
  for (int i = 0; i < 10; ++i) {
    Apply(t, "m2", kT0 - 5s - milliseconds(i), kT0);
    all.push_back(5'000'000 + static_cast<std::uint64_t>(i) * 1000);
  }
  auto m1 = t.Twin("m1");
  ASSERT_TRUE(m1.has_value());
  EXPECT_EQ(m1->lag_samples, 1000u);
  EXPECT_NEAR(*m1->lag_p50_ms, 500, 500 * 0.0625);
  EXPECT_NEAR(*m1->lag_p99_ms, 990, 990 * 0.0625);
  auto m2 = t.Twin("m2");
  EXPECT_NEAR(*m2->lag_p50_ms, 5004, 5004 * 0.0625);
  SyncSummary s = t.Overall();
  EXPECT_EQ(s.lag_samples, 1010u);
  EXPECT_NEAR(*s.lag_p50_ms, NaiveQuantile(all, 0.5) / 1000, NaiveQuantile(all, 0.5) / 16000);
  EXPECT_NEAR(*s.lag_p99_ms, NaiveQuantile(all, 0.99) / 1000, NaiveQuantile(all, 0.99) / 16000);
  EXPECT_EQ(s.lag_count, 1010u);
  EXPECT_EQ(s.twins, 2u);
}

TEST(SyncTracker, LagWindowForgetsOldReadings) {
  ManualClock clock;
  SyncTracker t(Options(clock, [](SyncOptions& o) { o.lag_window = 60s; }));
  Apply(t, "m1", kT0 - 10ms, kT0);
  clock.now = kT0 + 61s;  // the previous window still counts
  EXPECT_EQ(t.Twin("m1")->lag_samples, 1u);
  clock.now = kT0 + 121s;  // two windows later: gone
  EXPECT_EQ(t.Twin("m1")->lag_samples, 0u);
  EXPECT_FALSE(t.Twin("m1")->lag_p50_ms.has_value());
  EXPECT_FALSE(t.Overall().lag_p50_ms.has_value());
  EXPECT_EQ(t.Overall().lag_count, 1u);  // the cumulative count stays
  // A reading applied in this window, then a straggler applied two windows ago (same slot of
  // the two-window ring): the straggler does not wipe the current window.
  Apply(t, "m1", kT0 + 120s, kT0 + 121s);
  Apply(t, "m1", kT0 - 1s, kT0);
  EXPECT_EQ(t.Twin("m1")->lag_samples, 1u);
  EXPECT_EQ(t.Overall().lag_samples, 1u);
}

TEST(SyncTracker, DuplicatesHaveNoLagAndClockSkewIsCounted) {
  ManualClock clock;
  SyncTracker t(Options(clock));
  Apply(t, "m1", kT0 - 1s, kT0, ReadingOutcome::kDuplicate);
  Apply(t, "m1", kT0 + 2s, kT0);  // device clock ahead
  Apply(t, "m1", kT0 - 3s, kT0, ReadingOutcome::kOutOfOrder);
  auto m = *t.Twin("m1");
  EXPECT_EQ(m.counters.duplicates, 1u);
  EXPECT_EQ(m.counters.out_of_order, 1u);
  EXPECT_EQ(m.counters.clock_skew, 1u);
  EXPECT_EQ(m.counters.applied, 1u);
  EXPECT_EQ(m.counters.received, 3u);
  EXPECT_EQ(m.lag_samples, 2u);
  EXPECT_EQ(*m.lag_p50_ms, 0.0);  // the skewed reading counts as 0
  EXPECT_EQ(*m.newest_source, kT0 + 2s);
}

TEST(SyncTracker, FreshnessWithInferredIntervalAndStaleFreshTransitions) {
  ManualClock clock;
  SyncTracker t(Options(clock, [](SyncOptions& o) { o.stale_factor = 3.0; }));
  Apply(t, "m1", kT0, kT0);
  Apply(t, "m1", kT0 + 1s, kT0 + 1s);
  Apply(t, "m1", kT0 + 2s, kT0 + 2s);
  clock.now = kT0 + 2s;
  EXPECT_EQ(t.Twin("m1")->state, FreshState::kUnknown);  // 2 gaps: not enough to infer
  Apply(t, "m1", kT0 + 3s, kT0 + 3s);
  Apply(t, "m1", kT0 + 4s, kT0 + 4s);
  clock.now = kT0 + 4s;
  auto m = *t.Twin("m1");
  EXPECT_EQ(m.state, FreshState::kFresh);
  EXPECT_EQ(m.expected_interval, milliseconds(1000));
  EXPECT_EQ(m.interval_source, "inferred");
  EXPECT_EQ(m.age, milliseconds(0));
  EXPECT_TRUE(t.Tick().empty());

  clock.now = kT0 + 4s + 3000ms;  // exactly 3 intervals: still fresh
  EXPECT_EQ(t.Twin("m1")->state, FreshState::kFresh);
  EXPECT_TRUE(t.Tick().empty());
  clock.now = kT0 + 4s + 3001ms;
  EXPECT_EQ(t.Twin("m1")->state, FreshState::kStale);
  auto tr = t.Tick();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(tr[0].twin, "m1");
  EXPECT_EQ(tr[0].state, FreshState::kStale);
  EXPECT_EQ(tr[0].age, milliseconds(3001));
  EXPECT_EQ(tr[0].expected_interval, milliseconds(1000));
  EXPECT_EQ(tr[0].newest_source, kT0 + 4s);
  EXPECT_TRUE(t.Tick().empty());  // reported once
  EXPECT_EQ(t.Twins(FreshState::kStale).size(), 1u);
  EXPECT_TRUE(t.Twins(FreshState::kFresh).empty());
  EXPECT_EQ(t.Overall().stale, 1u);
  EXPECT_EQ(t.Overall().oldest_age, milliseconds(3001));

  // The device comes back.
  clock.now = kT0 + 10s;
  Apply(t, "m1", kT0 + 10s, kT0 + 10s);
  tr = t.Tick();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(tr[0].state, FreshState::kFresh);
  EXPECT_TRUE(t.Tick().empty());
}

TEST(SyncTracker, ConfiguredIntervalWinsOverDefaultWinsOverInferred) {
  ManualClock clock;
  SyncTracker t(Options(clock, [](SyncOptions& o) { o.default_expected_interval = 500ms; }));
  Apply(t, "m1", kT0, kT0);
  EXPECT_EQ(t.Twin("m1")->interval_source, "default");
  EXPECT_EQ(t.Twin("m1")->expected_interval, 500ms);
  t.SetExpectedInterval("m1", 2s);
  EXPECT_EQ(t.Twin("m1")->interval_source, "configured");
  clock.now = kT0 + 6s;
  EXPECT_EQ(t.Twin("m1")->state, FreshState::kFresh);
  clock.now = kT0 + 6001ms;
  EXPECT_EQ(t.Twin("m1")->state, FreshState::kStale);
  t.SetExpectedInterval("nobody", 1s);  // not tracked: no entry
  EXPECT_FALSE(t.Twin("nobody").has_value());
}

TEST(SyncTracker, CompletenessCountsSamplesAgainstTheExpectedInterval) {
  ManualClock clock;
  // A 100 s completeness window.
  SyncTracker t(Options(clock, [](SyncOptions& o) { o.completeness_slot = 10s; }));
  for (int i = 0; i < 100; ++i) {
    if (i % 4 == 3) continue;  // every 4th sample is missing
    const auto ts = kT0 + std::chrono::seconds(i);
    // Two readings of one message share a source time: one sample.
    Observation obs[2] = {{ReadingOutcome::kApplied, ts}, {ReadingOutcome::kTelemetry, ts}};
    t.Record("m1", obs, ts + 5ms);
  }
  t.SetExpectedInterval("m1", 1s);
  clock.now = kT0 + 100s;
  auto m = *t.Twin("m1");
  EXPECT_EQ(m.window_samples, 75u);
  EXPECT_DOUBLE_EQ(m.window_expected, 100.0);
  EXPECT_DOUBLE_EQ(*m.completeness, 0.75);
  EXPECT_DOUBLE_EQ(*t.Overall().completeness, 0.75);
  // Half the window later, only the second half of the samples is in it.
  clock.now = kT0 + 150s;
  m = *t.Twin("m1");
  EXPECT_EQ(m.window_samples, 37u);  // 50..99 without 51, 55, ... (13 missing)
  EXPECT_DOUBLE_EQ(*m.completeness, 0.37);
  // Before a whole slot is covered there is no ratio.
  Apply(t, "m2", kT0 + 100s, kT0 + 100s);
  t.SetExpectedInterval("m2", 1s);
  clock.now = kT0 + 105s;
  EXPECT_FALSE(t.Twin("m2")->completeness.has_value());
}

TEST(SyncTracker, RejectionsByReasonPerTwinAndOverall) {
  ManualClock clock;
  SyncTracker t(Options(clock));
  Apply(t, "m1", kT0, kT0);
  t.RecordRejected("m1", "INGEST_WRONG_TYPE");
  t.RecordRejected("m1", "INGEST_WRONG_TYPE");
  t.RecordRejected("m1", "MAPPING_RANGE");
  t.RecordRejected("ghost", "INGEST_UNKNOWN_TWIN");  // never an entry
  t.RecordRejected("", "MAPPING_RATE_LIMITED");      // no twin known
  auto m = *t.Twin("m1");
  EXPECT_EQ(m.counters.rejected, 3u);
  EXPECT_EQ(m.counters.received, 4u);
  EXPECT_EQ(m.counters.rejected_by_code.at("INGEST_WRONG_TYPE"), 2u);
  EXPECT_EQ(m.counters.rejected_by_code.at("MAPPING_RANGE"), 1u);
  EXPECT_FALSE(t.Twin("ghost").has_value());
  auto s = t.Overall();
  EXPECT_EQ(s.counters.rejected, 5u);
  EXPECT_EQ(s.counters.rejected_by_code.at("INGEST_UNKNOWN_TWIN"), 1u);
  EXPECT_EQ(s.counters.rejected_by_code.at("MAPPING_RATE_LIMITED"), 1u);
  EXPECT_EQ(s.twins, 1u);
  json::value j = m.ToJson(t.options());
  EXPECT_DOUBLE_EQ(j.at("rejectionRate").as_double(), 0.75);
  EXPECT_EQ(j.at("readings").at("rejectedByCode").at("INGEST_WRONG_TYPE").as_uint64(), 2u);
}

TEST(SyncTracker, DivergenceIsShownPerTwinAndSummed) {
  SyncTracker t;
  t.SetDivergence("m1", 2);
  t.SetDivergence("m2", 3);
  EXPECT_EQ(t.Twin("m1")->divergence, 2);
  EXPECT_EQ(t.Overall().divergence, 5);
  t.Forget("m2");
  EXPECT_EQ(t.Overall().divergence, 2);
  EXPECT_TRUE(t.Twin("m1")->ToJson(t.options()).at("divergence") == 2);
}

TEST(SyncTracker, ConcurrentRecordingAndReadingKeepsExactCounts) {
  ManualClock clock;
  SyncTracker t(Options(clock, [](SyncOptions& o) { o.check_period = 1ms; }));
  t.Start();  // the checker runs Tick concurrently
  constexpr int kThreads = 4, kPerThread = 5000;
  std::vector<std::thread> threads;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done) {
      (void)t.Overall();
      (void)t.Twins(FreshState::kStale);
      (void)t.Twin("m0");
    }
  });
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string twin = "m" + std::to_string(i % 8);
        Apply(t, twin, kT0 - milliseconds(i % 100), kT0);
        if (i % 10 == k) t.RecordRejected(twin, "INGEST_WRONG_TYPE");
      }
    });
  }
  for (auto& th : threads) th.join();
  done = true;
  reader.join();
  t.Stop();
  SyncSummary s = t.Overall();
  EXPECT_EQ(s.counters.applied, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(s.counters.rejected, static_cast<std::uint64_t>(kThreads * kPerThread / 10));
  EXPECT_EQ(s.lag_count, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(s.twins, 8u);
  std::uint64_t per_twin = 0;
  for (const TwinSync& ts : t.Twins()) per_twin += ts.counters.received;
  EXPECT_EQ(per_twin, s.counters.received);
}

// ---- with a twin graph: only real twins, events on the change feed ---------------------------

constexpr char kModel[] = R"({
  "@context": "dtmi:dtdl:context;3", "@id": "dtmi:doppel:test:Sensor;1", "@type": "Interface",
  "contents": [
    {"@type": "Property", "name": "temperature", "schema": "double"},
    {"@type": "Property", "name": "status", "schema": "string"},
    {"@type": "Telemetry", "name": "level", "schema": "double"}]})";

class SyncGraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<model::SourceDocument> docs{{"sensor", kModel}};
    ASSERT_TRUE(models_.Add(docs).ok());
    graph_ = std::make_unique<twin::TwinGraph>(models_, nullptr);
    for (const char* id : {"s1", "s2"}) {
      auto r = graph_->PutTwinSync(
          id, json::parse(R"({"$metadata": {"$model": "dtmi:doppel:test:Sensor;1"}})"));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
  }
  model::ModelRepository models_;
  std::unique_ptr<twin::TwinGraph> graph_;
};

TEST_F(SyncGraphTest, StaleAndFreshEventsOnTheChangeFeed) {
  ManualClock clock;
  SyncTracker t(Options(clock, [&](SyncOptions& o) {
    o.graph = graph_.get();
    o.default_expected_interval = 1s;
  }));
  auto sub = graph_->feed().Subscribe(100, [] {});
  Apply(t, "s1", kT0, kT0);
  Apply(t, "s2", kT0, kT0);
  clock.now = kT0 + 2s;
  EXPECT_TRUE(t.Tick().empty());
  Apply(t, "s2", kT0 + 2s, kT0 + 2s);  // s2 keeps reporting
  clock.now = kT0 + 4s;
  ASSERT_EQ(t.Tick().size(), 1u);
  std::vector<twin::ChangeEventPtr> events;
  ASSERT_TRUE(sub->Drain(&events));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]->kind, twin::ChangeKind::kTwinStale);
  json::value j = events[0]->ToJson();
  EXPECT_EQ(j.at("type"), "twin.stale");
  EXPECT_EQ(j.at("twinId"), "s1");
  EXPECT_EQ(j.at("model"), "dtmi:doppel:test:Sensor;1");
  EXPECT_FALSE(j.as_object().contains("seq"));
  EXPECT_EQ(j.at("data").at("ageMs").as_int64(), 4000);
  EXPECT_EQ(j.at("data").at("expectedIntervalMs").as_int64(), 1000);
  EXPECT_EQ(j.at("data").at("expectedIntervalSource"), "default");
  EXPECT_DOUBLE_EQ(j.at("data").at("staleAfterMs").as_double(), 3000.0);
  EXPECT_EQ(j.at("data").at("lastSourceTime"), "2023-11-14T22:20:00.000000Z");
  // Recovery.
  Apply(t, "s1", kT0 + 4s, kT0 + 4s);
  ASSERT_EQ(t.Tick().size(), 1u);
  events.clear();
  ASSERT_TRUE(sub->Drain(&events));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]->ToJson().at("type"), "twin.fresh");
  graph_->feed().Unsubscribe(sub);
}

TEST_F(SyncGraphTest, OnlyExistingTwinsGetEntriesAndDeletedTwinsAreDropped) {
  ManualClock clock;
  SyncTracker t(Options(clock, [&](SyncOptions& o) {
    o.graph = graph_.get();
    o.default_expected_interval = 1s;
  }));
  t.RecordRejected("made-up", "INGEST_FUTURE_TIME");
  t.SetDivergence("made-up", 1);
  EXPECT_FALSE(t.Twin("made-up").has_value());
  t.RecordRejected("s1", "INGEST_FUTURE_TIME");
  EXPECT_TRUE(t.Twin("s1").has_value());
  Apply(t, "s2", kT0, kT0);
  ASSERT_TRUE(graph_->DeleteTwinSync("s2").ok());
  clock.now = kT0 + 10s;
  EXPECT_TRUE(t.Tick().empty());  // s2 went stale but is gone: no event, dropped
  EXPECT_FALSE(t.Twin("s2").has_value());
}

TEST_F(SyncGraphTest, TheIngestorFeedsTheTrackerPerTwinAndReason) {
  SyncOptions options;
  options.graph = graph_.get();
  SyncTracker t(options);
  IngestOptions io;
  io.sync = &t;
  Ingestor ingest(models_, *graph_, io);
  auto submit = [&](std::vector<Reading> readings) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    IngestOutcome out;
    ingest.Submit(std::move(readings), [&](IngestOutcome o) {
      std::lock_guard lock(mu);
      out = std::move(o);
      done = true;
      cv.notify_all();
    });
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    return out;
  };
  const auto now = SyncClock::now();
  const auto t1 = now - 2s, t2 = now - 1s;
  auto o = submit({{"s1", "temperature", 20.5, t2, "test"},
                   {"s1", "temperature", 20.0, t1, "test"},       // superseded
                   {"s1", "level", 3.0, t2, "test"},              // telemetry
                   {"s1", "temperature", "hot", t2, "test"},      // INGEST_WRONG_TYPE
                   {"s1", "pressure", 1.0, t2, "test"},           // INGEST_UNKNOWN_ELEMENT
                   {"nope", "temperature", 1.0, t2, "test"},      // INGEST_UNKNOWN_TWIN
                   {"s2", "temperature", 1.0, now + 1h, "test"},  // INGEST_FUTURE_TIME
                   {"s2", "status", "ok", t2, "test"}});
  EXPECT_EQ(o.rejected.size(), 4u);
  o = submit({{"s1", "temperature", 20.5, t2, "test"},  // duplicate
              {"s2", "status", "older", t1, "test"}});  // out of order
  EXPECT_EQ(o.duplicates, 1u);
  EXPECT_EQ(o.out_of_order, 1u);

  auto s1 = *t.Twin("s1");
  EXPECT_EQ(s1.counters.applied, 1u);
  EXPECT_EQ(s1.counters.superseded, 1u);
  EXPECT_EQ(s1.counters.telemetry, 1u);
  EXPECT_EQ(s1.counters.duplicates, 1u);
  EXPECT_EQ(s1.counters.rejected_by_code,
            (std::map<std::string, std::uint64_t, std::less<>>{{"INGEST_UNKNOWN_ELEMENT", 1},
                                                               {"INGEST_WRONG_TYPE", 1}}));
  EXPECT_EQ(s1.counters.received, 6u);
  EXPECT_EQ(s1.lag_samples, 3u);     // applied, superseded, telemetry; not the duplicate
  EXPECT_GE(*s1.lag_p50_ms, 900.0);  // source times 1 s and 2 s before the write, within 6.25%
  EXPECT_EQ(*s1.newest_source, std::chrono::floor<microseconds>(t2));
  auto s2 = *t.Twin("s2");
  EXPECT_EQ(s2.counters.applied, 1u);
  EXPECT_EQ(s2.counters.out_of_order, 1u);
  EXPECT_EQ(s2.counters.rejected_by_code.at("INGEST_FUTURE_TIME"), 1u);
  EXPECT_FALSE(t.Twin("nope").has_value());
  // The overall numbers agree with the Ingestor's own.
  IngestStats st = ingest.Stats();
  SyncSummary sum = t.Overall();
  EXPECT_EQ(sum.counters.applied, st.applied);
  EXPECT_EQ(sum.counters.duplicates, st.duplicates);
  EXPECT_EQ(sum.counters.out_of_order, st.out_of_order);
  EXPECT_EQ(sum.counters.superseded, st.superseded);
  EXPECT_EQ(sum.counters.telemetry, st.telemetry);
  std::uint64_t rejected = 0;
  for (const auto& [code, n] : st.rejected) {
    EXPECT_EQ(sum.counters.rejected_by_code.at(code), n) << code;
    rejected += n;
  }
  EXPECT_EQ(sum.counters.rejected, rejected);
  EXPECT_EQ(sum.counters.received, st.received);
}

// ---- RateLimiter -----------------------------------------------------------------------------

TEST(RateLimiter, BurstThenRateAndOtherKeysUnaffected) {
  RateLimiter r;
  const auto t0 = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += r.Allow("flood", 10, 5, t0) ? 1 : 0;
  EXPECT_EQ(allowed, 5);
  EXPECT_TRUE(r.Allow("quiet", 10, 5, t0));
  EXPECT_FALSE(r.Allow("flood", 10, 5, t0 + 99ms));
  EXPECT_TRUE(r.Allow("flood", 10, 5, t0 + 100ms));  // one token per 100 ms
  EXPECT_FALSE(r.Allow("flood", 10, 5, t0 + 100ms));
  allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += r.Allow("flood", 10, 5, t0 + 1h) ? 1 : 0;
  EXPECT_EQ(allowed, 5);                       // refilled to the burst, not beyond
  EXPECT_TRUE(r.Allow("anything", 0, 0, t0));  // rate 0: no limit
}

TEST(RateLimiter, BoundedKeysDropIdleBucketsAndRefuseWhenAllAreBusy) {
  RateLimiter r(2);
  const auto t0 = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  EXPECT_TRUE(r.Allow("a", 1, 1, t0));
  EXPECT_TRUE(r.Allow("b", 1, 1, t0));
  EXPECT_FALSE(r.Allow("c", 1, 1, t0));  // a and b are busy (empty buckets)
  EXPECT_EQ(r.overflow_refusals(), 1u);
  EXPECT_TRUE(r.Allow("c", 1, 1, t0 + 2s));  // a and b refilled: dropped
  EXPECT_LE(r.size(), 2u);
}

}  // namespace
}  // namespace doppel::sync
