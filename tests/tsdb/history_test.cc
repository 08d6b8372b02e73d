#include "tsdb/history.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <condition_variable>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace doppel::tsdb {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kMinute = 60 * kSecond;
constexpr std::int64_t kT0 = std::int64_t{1'790'000'000} * kSecond;  // 2026-09

HistoryOptions Manual(std::uint32_t chunk_points = 64) {
  HistoryOptions o;
  o.chunk_points = chunk_points;
  o.background = false;
  return o;
}

std::unique_ptr<HistoryStore> OpenOrDie(HistoryBackend& b, HistoryOptions o) {
  auto s = HistoryStore::Open(b, o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

void AppendOk(HistoryStore& h, const std::vector<Sample>& samples) {
  auto r = h.Append(samples);
  for (const core::Status& st : r) ASSERT_TRUE(st.ok()) << st.ToString();
}

std::vector<Point> ReadAll(const HistoryStore& h, const std::string& twin,
                           const std::string& path) {
  auto r = h.Read({twin, path}, {});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<Point>{};
}

bool SamePoints(const std::vector<Point>& a, const std::vector<Point>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!BitIdentical(a[i], b[i])) return false;
  }
  return true;
}

TEST(HistoryTest, RoundTripsEveryTypeAndKeepsSeriesApart) {
  MemoryBackend b;
  auto h = OpenOrDie(b, Manual());
  std::vector<Sample> batch;
  for (int i = 0; i < 300; ++i) {
    const std::int64_t t = kT0 + i * kSecond;
    batch.push_back({"m1", "power", t, 10.0 + i * 0.5});
    batch.push_back({"m1", "parts", t, std::int64_t{i}});
    batch.push_back({"m1", "running", t, i % 7 != 0});
    batch.push_back({"m1", "status", t, std::string(i % 50 < 40 ? "running" : "down")});
    batch.push_back({"m2", "motor/temperature", t, -0.0 + i});
  }
  AppendOk(*h, batch);
  for (const auto& [twin, path] :
       std::vector<std::pair<std::string, std::string>>{{"m1", "power"},
                                                        {"m1", "parts"},
                                                        {"m1", "running"},
                                                        {"m1", "status"},
                                                        {"m2", "motor/temperature"}}) {
    std::vector<Point> want;
    for (const Sample& s : batch) {
      if (s.twin == twin && s.path == path) want.push_back({s.t_ns, s.value});
    }
    EXPECT_TRUE(SamePoints(ReadAll(*h, twin, path), want)) << twin << " " << path;
  }
  auto info = h->Info({"m1", "status"});
  ASSERT_TRUE(info);
  EXPECT_EQ(info->type, ValueType::kString);
  EXPECT_EQ(info->points, 300u);
  EXPECT_GE(info->chunks, 4u);  // 64-point chunks
  EXPECT_EQ(h->ListSeries("m1").size(), 4u);
  EXPECT_EQ(h->ListSeries("").size(), 5u);
  EXPECT_FALSE(h->Info({"m1", "nothing"}));
  auto missing = h->Read({"m1", "nothing"}, {});
  EXPECT_EQ(missing.status().code(), "TSDB_NOT_FOUND");
}

TEST(HistoryTest, TypeMismatchRejectsOnlyThatPoint) {
  MemoryBackend b;
  auto h = OpenOrDie(b, Manual());
  AppendOk(*h, {{"m1", "power", kT0, 1.0}});
  std::vector<Sample> batch{{"m1", "power", kT0 + 1, std::int64_t{2}},
                            {"m1", "power", kT0 + 2, 3.0}};
  auto r = h->Append(batch);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].code(), "TSDB_TYPE_MISMATCH");
  EXPECT_NE(r[0].message().find("float64"), std::string::npos);
  EXPECT_TRUE(r[1].ok());
  EXPECT_EQ(ReadAll(*h, "m1", "power").size(), 2u);
  EXPECT_EQ(h->Stats().type_mismatches, 1u);
}

// A chunk never crosses a chunk_span_ns window: before 1970, across it, and at the very end of
// the time range (where the window's end is past INT64_MAX).
TEST(HistoryTest, ChunksNeverCrossTheirSpanWindow) {
  HistoryOptions o = Manual(1000);
  o.chunk_span_ns = 10 * kMinute;
  MemoryBackend b;
  auto h = OpenOrDie(b, o);
  std::vector<Sample> batch;
  // -15 min .. +24 min, a point a minute: windows [-20,-10) [-10,0) [0,10) [10,20) [20,30).
  for (int m = -15; m <= 24; ++m) batch.push_back({"m", "x", m * kMinute, 1.0 * m});
  AppendOk(*h, batch);
  auto info = h->Info({"m", "x"});
  ASSERT_TRUE(info);
  EXPECT_EQ(info->points, 40u);
  EXPECT_EQ(info->chunks, 4u);  // sealed; the [20,30) one is the head
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  AppendOk(*h, std::vector<Sample>{
                   {"m", "y", max - 2, 1.0}, {"m", "y", max - 1, 2.0}, {"m", "y", max, 3.0}});
  info = h->Info({"m", "y"});
  ASSERT_TRUE(info);
  EXPECT_EQ(info->points, 3u);
  EXPECT_EQ(info->chunks, 0u);  // all three in one head
}

TEST(HistoryTest, OutOfOrderPointsAreMergedByTime) {
  MemoryBackend b;
  auto h = OpenOrDie(b, Manual(16));
  std::vector<Point> want;
  std::mt19937_64 rng(7);
  std::vector<std::int64_t> times;
  for (int i = 0; i < 200; ++i) times.push_back(kT0 + i * kSecond);
  // Mostly in order, with some points arriving late (older than the head, and within it).
  for (int i = 0; i < 200; i += 10) {
    std::shuffle(times.begin() + i, times.begin() + std::min(i + 25, 200), rng);
  }
  for (std::int64_t t : times) {
    AppendOk(*h, {{"m", "x", t, static_cast<double>(t - kT0)}});
    want.push_back({t, static_cast<double>(t - kT0)});
  }
  std::stable_sort(want.begin(), want.end(),
                   [](const Point& a, const Point& c) { return a.t_ns < c.t_ns; });
  EXPECT_TRUE(SamePoints(ReadAll(*h, "m", "x"), want));
  EXPECT_GT(h->Stats().late, 0u);
  ASSERT_TRUE(h->Checkpoint().ok());
  EXPECT_TRUE(SamePoints(ReadAll(*h, "m", "x"), want));
  MemoryBackend crashed(b);
  auto reopened = OpenOrDie(crashed, Manual(16));
  EXPECT_TRUE(SamePoints(ReadAll(*reopened, "m", "x"), want));
}

TEST(HistoryTest, AcknowledgedPointsSurviveACrashBeforeAndAfterCheckpoints) {
  MemoryBackend b;
  auto h = OpenOrDie(b, Manual(32));
  std::vector<Point> want;
  auto add = [&](int from, int to) {
    std::vector<Sample> batch;
    for (int i = from; i < to; ++i) {
      batch.push_back({"m", "x", kT0 + i * kSecond, i * 1.5});
      want.push_back({kT0 + i * kSecond, i * 1.5});
    }
    AppendOk(*h, batch);
  };
  add(0, 50);
  {
    MemoryBackend crashed(b);  // only the write-ahead records
    auto r = OpenOrDie(crashed, Manual(32));
    EXPECT_TRUE(SamePoints(ReadAll(*r, "m", "x"), want));
  }
  ASSERT_TRUE(h->Checkpoint().ok());
  add(50, 120);
  {
    MemoryBackend crashed(b);  // chunks + a head snapshot + records after the checkpoint
    auto r = OpenOrDie(crashed, Manual(32));
    EXPECT_TRUE(SamePoints(ReadAll(*r, "m", "x"), want));
    // And the reopened store keeps appending and survives another crash.
    AppendOk(*r, {{"m", "x", kT0 + 500 * kSecond, 9.0}});
    ASSERT_TRUE(r->Checkpoint().ok());
    MemoryBackend again(crashed);
    auto r2 = OpenOrDie(again, Manual(32));
    auto all = ReadAll(*r2, "m", "x");
    ASSERT_EQ(all.size(), want.size() + 1);
    EXPECT_EQ(all.back().t_ns, kT0 + 500 * kSecond);
  }
  ASSERT_TRUE(h->Checkpoint().ok());
  // After a checkpoint the records it folded in are gone: only chunks, series, checkpoint.
  std::size_t records = 0;
  ASSERT_TRUE(b.Scan("h/w/", [&](std::string_view, std::string_view) { ++records; }).ok());
  EXPECT_EQ(records, 0u);
  MemoryBackend crashed(b);
  auto r = OpenOrDie(crashed, Manual(32));
  EXPECT_TRUE(SamePoints(ReadAll(*r, "m", "x"), want));
}

TEST(HistoryTest, BackendFailureStoresNothing) {
  MemoryBackend b;
  auto h = OpenOrDie(b, Manual());
  AppendOk(*h, {{"m", "x", kT0, 1.0}});
  b.FailWrites(true);
  auto r = h->Append(std::vector<Sample>{{"m", "x", kT0 + 1, 2.0}, {"n", "y", kT0, 1.0}});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].code(), "TSDB_IO");
  EXPECT_EQ(ReadAll(*h, "m", "x").size(), 1u);
  EXPECT_EQ(h->Read({"n", "y"}, {})->size(), 0u);  // the series exists, with no points
  EXPECT_FALSE(h->Checkpoint().ok());
  b.FailWrites(false);
  AppendOk(*h, {{"n", "y", kT0 + 5, 3.0}});  // the series record is written now
  ASSERT_TRUE(h->Checkpoint().ok());
  MemoryBackend crashed(b);
  auto r2 = OpenOrDie(crashed, Manual());
  EXPECT_EQ(ReadAll(*r2, "m", "x").size(), 1u);
  EXPECT_EQ(ReadAll(*r2, "n", "y").size(), 1u);
}

TEST(HistoryTest, DamagedChunkIsReportedNotReturned) {
  MemoryBackend b;
  {
    auto h = OpenOrDie(b, Manual(16));
    std::vector<Sample> batch;
    for (int i = 0; i < 40; ++i) {
      batch.push_back({"m", "x", kT0 + i * kSecond, i * 1.0});
      batch.push_back({"m", "ok", kT0 + i * kSecond, i * 1.0});
    }
    AppendOk(*h, batch);
    ASSERT_TRUE(h->Checkpoint().ok());
  }
  // Flip one bit in the first chunk of series "m/x" (series 1).
  std::string key, value;
  ASSERT_TRUE(b.Scan("h/c/", [&](std::string_view k, std::string_view v) {
                 if (key.empty()) {
                   key = std::string(k);
                   value = std::string(v);
                 }
               }).ok());
  value[value.size() / 2] = static_cast<char>(value[value.size() / 2] ^ 0x10);
  KeyOp op{key, value};
  ASSERT_TRUE(b.Write({&op, 1}).ok());
  auto h = OpenOrDie(b, Manual(16));
  EXPECT_EQ(h->Stats().corrupt_chunks, 1u);
  auto r = h->Read({"m", "x"}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "TSDB_CHUNK_CORRUPT");
  EXPECT_NE(r.status().message().find("checksum"), std::string::npos) << r.status().message();
  EXPECT_EQ(h->Aggregate({"m", "x"}, {}).status().code(), "TSDB_CHUNK_CORRUPT");
  EXPECT_EQ(ReadAll(*h, "m", "ok").size(), 40u);  // other series are unaffected
}

TEST(HistoryTest, DeleteTwinAndRetention) {
  MemoryBackend b;
  auto h = OpenOrDie(b, Manual(10));
  std::vector<Sample> batch;
  for (int i = 0; i < 100; ++i) {
    batch.push_back({"a", "x", kT0 + i * kSecond, 1.0 * i});
    batch.push_back({"a", "y", kT0 + i * kSecond, 1.0 * i});
    batch.push_back({"b", "x", kT0 + i * kSecond, 1.0 * i});
  }
  AppendOk(*h, batch);
  ASSERT_TRUE(h->Checkpoint().ok());
  auto deleted = h->DeleteTwin("a");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 2u);
  EXPECT_EQ(h->Read({"a", "x"}, {}).status().code(), "TSDB_NOT_FOUND");
  // Retention: drop b's sealed chunks older than point 50.
  auto dropped = h->ApplyRetention([](std::string_view twin) -> std::optional<std::int64_t> {
    if (twin == "b") return kT0 + 50 * kSecond;
    return std::nullopt;
  });
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 50u);
  auto left = ReadAll(*h, "b", "x");
  ASSERT_EQ(left.size(), 50u);
  EXPECT_EQ(left.front().t_ns, kT0 + 50 * kSecond);
  MemoryBackend crashed(b);
  auto r = OpenOrDie(crashed, Manual(10));
  EXPECT_EQ(r->ListSeries("").size(), 1u);
  EXPECT_EQ(ReadAll(*r, "b", "x").size(), 50u);
  // A new series under the deleted name starts empty.
  AppendOk(*r, {{"a", "x", kT0, 5.0}});
  EXPECT_EQ(ReadAll(*r, "a", "x").size(), 1u);
}

TEST(HistoryTest, RetentionPolicyTwinOverModelOverDefault) {
  RetentionPolicy p;
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.For("t", "dtmi:m;1"), std::nullopt);  // forever
  ASSERT_TRUE(RetentionPolicy::AddSpec("dtmi:acme:Pump;1=7d", &p.by_model));
  ASSERT_TRUE(RetentionPolicy::AddSpec("pump=3=12h", &p.by_twin));  // the last '=' splits
  p.default_ns = 30 * 24 * 3600 * kSecond;
  EXPECT_FALSE(p.empty());
  EXPECT_EQ(p.For("pump=3", "dtmi:acme:Pump;1"), 12 * 3600 * kSecond);
  EXPECT_EQ(p.For("pump-4", "dtmi:acme:Pump;1"), 7 * 24 * 3600 * kSecond);
  EXPECT_EQ(p.For("fan", "dtmi:acme:Fan;1"), 30 * 24 * 3600 * kSecond);
  for (const char* bad : {"7d", "=7d", "x=", "x=soon", "x=-1d", "x=0s"}) {
    EXPECT_FALSE(RetentionPolicy::AddSpec(bad, &p.by_twin)) << bad;
  }
  EXPECT_EQ(p.by_twin.size(), 1u);
}

TEST(HistoryTest, DropDuplicatesStoresAPointOnceAcrossACrash) {
  MemoryBackend b;
  HistoryOptions o = Manual(8);
  o.drop_duplicates = true;
  auto h = OpenOrDie(b, o);
  std::vector<Sample> batch;
  for (int i = 0; i < 40; ++i) batch.push_back({"m", "x", kT0 + i * kSecond, 1.0 * i});
  AppendOk(*h, batch);
  ASSERT_TRUE(h->Checkpoint().ok());
  AppendOk(*h, {{"m", "x", kT0 + 40 * kSecond, 40.0}});  // in the head, not checkpointed
  h.reset();
  MemoryBackend crashed(b);
  h = OpenOrDie(crashed, o);
  // The same points again (a redelivery): in sealed chunks, in the head, and one new one; a
  // point at a stored time with another value is not a duplicate.
  std::vector<Sample> again = {{"m", "x", kT0 + 3 * kSecond, 3.0},
                               {"m", "x", kT0 + 39 * kSecond, 39.0},
                               {"m", "x", kT0 + 40 * kSecond, 40.0},
                               {"m", "x", kT0 + 7 * kSecond, 7.5},
                               {"m", "x", kT0 + 41 * kSecond, 41.0}};
  auto r = h->Append(again);
  ASSERT_EQ(r.size(), again.size());
  EXPECT_EQ(r[0].code(), "TSDB_DUPLICATE");
  EXPECT_EQ(r[1].code(), "TSDB_DUPLICATE");
  EXPECT_EQ(r[2].code(), "TSDB_DUPLICATE");
  EXPECT_TRUE(r[3].ok());
  EXPECT_TRUE(r[4].ok());
  EXPECT_EQ(h->Stats().duplicates, 3u);
  auto pts = ReadAll(*h, "m", "x");
  EXPECT_EQ(pts.size(), 43u);  // 0..41 and the second value at 7 s
  // Everything checkpointed (no write-ahead record left to replay): still found after a reopen.
  ASSERT_TRUE(h->Checkpoint().ok());
  h.reset();
  MemoryBackend crashed2(crashed);
  h = OpenOrDie(crashed2, o);
  r = h->Append(std::vector<Sample>{{"m", "x", kT0 + 12 * kSecond, 12.0}});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].code(), "TSDB_DUPLICATE");
  EXPECT_EQ(ReadAll(*h, "m", "x").size(), 43u);
  // Without the option every append is stored.
  MemoryBackend plain_b;
  auto plain = OpenOrDie(plain_b, Manual(8));
  AppendOk(*plain, {{"m", "x", kT0, 1.0}});
  AppendOk(*plain, {{"m", "x", kT0, 1.0}});
  EXPECT_EQ(ReadAll(*plain, "m", "x").size(), 2u);
}

TEST(HistoryTest, LatestNAndLimits) {
  MemoryBackend b;
  auto h = OpenOrDie(b, Manual(16));
  std::vector<Sample> batch;
  for (int i = 0; i < 100; ++i) batch.push_back({"m", "x", kT0 + i * kSecond, 1.0 * i});
  AppendOk(*h, batch);
  RangeQuery q;
  q.limit = 5;
  q.latest = true;
  auto r = h->Read({"m", "x"}, q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ(std::get<double>(r->front().value), 95.0);
  EXPECT_EQ(std::get<double>(r->back().value), 99.0);
  q.latest = false;
  r = h->Read({"m", "x"}, q);
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ(std::get<double>(r->front().value), 0.0);
  q = {};
  q.from_ns = kT0 + 10 * kSecond;
  q.to_ns = kT0 + 5 * kSecond;
  EXPECT_EQ(h->Read({"m", "x"}, q).status().code(), "TSDB_BAD_QUERY");
  q = {};
  q.from_ns = kT0;
  q.to_ns = kT0 + 100 * kSecond;
  q.step_ns = 1;
  EXPECT_EQ(h->Aggregate({"m", "x"}, q).status().code(), "TSDB_BAD_QUERY");
  AppendOk(*h, {{"m", "s", kT0, std::string("on")}});
  q = {};
  q.agg = Agg::kMean;
  EXPECT_EQ(h->Aggregate({"m", "s"}, q).status().code(), "TSDB_BAD_QUERY");
  q.agg = Agg::kLast;
  auto last = h->Aggregate({"m", "s"}, q);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(std::get<std::string>(last->at(0).value), "on");
}

// ---- Query correctness against a naive reference, on randomized data --------------------------

struct Ref {
  std::vector<Point> points;  // in arrival order

  std::vector<Point> Sorted() const {
    auto p = points;
    std::stable_sort(p.begin(), p.end(),
                     [](const Point& a, const Point& b) { return a.t_ns < b.t_ns; });
    return p;
  }
};

double Num(const Value& v) {
  switch (v.index()) {
    case 0:
      return std::get<double>(v);
    case 1:
      return static_cast<double>(std::get<std::int64_t>(v));
    case 2:
      return std::get<bool>(v) ? 1 : 0;
    default:
      return 0;
  }
}

std::int64_t FloorDivRef(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(std::floor(static_cast<long double>(a) / b));
}

std::vector<Bucket> NaiveAggregate(const std::vector<Point>& sorted, const RangeQuery& q,
                                   ValueType type) {
  std::map<std::int64_t, std::vector<Point>> groups;
  for (const Point& p : sorted) {
    if (p.t_ns < q.from_ns || p.t_ns > q.to_ns) continue;
    groups[q.step_ns ? FloorDivRef(p.t_ns, q.step_ns) : 0].push_back(p);
  }
  std::vector<Bucket> out;
  for (auto& [k, pts] : groups) {
    Bucket b;
    b.t_ns = q.step_ns ? k * q.step_ns : pts.front().t_ns;
    b.count = pts.size();
    std::vector<double> nums;
    for (const Point& p : pts) {
      double v = Num(p.value);
      if (!std::isnan(v)) nums.push_back(v);
    }
    const double nan = std::numeric_limits<double>::quiet_NaN();
    double sum = 0;
    for (double v : nums) sum += v;
    auto pct = [&](double p) {
      if (nums.empty()) return nan;
      auto s = nums;
      std::sort(s.begin(), s.end());
      double h = (s.size() - 1) * p;
      auto lo = static_cast<std::size_t>(std::floor(h));
      auto hi = std::min(lo + 1, s.size() - 1);
      return s[lo] + (h - lo) * (s[hi] - s[lo]);
    };
    switch (q.agg) {
      case Agg::kMean:
        b.value = nums.empty() ? nan : sum / nums.size();
        break;
      case Agg::kSum:
        b.value = sum;
        break;
      case Agg::kMin:
        if (type == ValueType::kInt64) {
          b.value = std::get<std::int64_t>(
              std::min_element(pts.begin(), pts.end(), [](auto& a, auto& c) {
                return std::get<std::int64_t>(a.value) < std::get<std::int64_t>(c.value);
              })->value);
        } else {
          b.value = nums.empty() ? nan : *std::min_element(nums.begin(), nums.end());
        }
        break;
      case Agg::kMax:
        if (type == ValueType::kInt64) {
          b.value = std::get<std::int64_t>(
              std::max_element(pts.begin(), pts.end(), [](auto& a, auto& c) {
                return std::get<std::int64_t>(a.value) < std::get<std::int64_t>(c.value);
              })->value);
        } else {
          b.value = nums.empty() ? nan : *std::max_element(nums.begin(), nums.end());
        }
        break;
      case Agg::kLast: {
        // The newest point; among equal timestamps the last stored.
        b.value = pts.back().value;
        break;
      }
      case Agg::kCount:
        b.value = static_cast<std::int64_t>(pts.size());
        break;
      case Agg::kP50:
        b.value = pct(0.5);
        break;
      case Agg::kP95:
        b.value = pct(0.95);
        break;
      case Agg::kP99:
        b.value = pct(0.99);
        break;
    }
    out.push_back(b);
  }
  return out;
}

bool Close(const Value& a, const Value& b) {
  if (a.index() != b.index()) return false;
  if (a.index() == 0) {
    double x = std::get<double>(a), y = std::get<double>(b);
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
    return std::fabs(x - y) <= 1e-9 * std::max({1.0, std::fabs(x), std::fabs(y)});
  }
  return a == b;
}

class HistoryRandomTest : public ::testing::TestWithParam<int> {};

TEST_P(HistoryRandomTest, EveryAggregateAndStepMatchesANaiveReference) {
  const int seed = GetParam();
  std::mt19937_64 rng(seed);
  MemoryBackend b;
  HistoryOptions opts = Manual(1 + rng() % 40);
  opts.chunk_span_ns = (1 + rng() % 3) * 10 * kMinute;
  // Odd seeds: every chunk spanning two minutes or more gets a minute rollup, so whole-minute
  // steps read cells (even seeds: the points; the data is too sparse for the default density).
  if (seed % 2 == 1) opts.rollup_density = 0;
  auto h = OpenOrDie(b, opts);
  const ValueType types[] = {ValueType::kFloat64, ValueType::kInt64, ValueType::kBool};
  std::map<ValueType, Ref> refs;
  std::int64_t clock = kT0;
  for (int round = 0; round < 30; ++round) {
    std::vector<Sample> batch;
    const int n = 1 + static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) {
      // Mostly forward with jitter, sometimes equal times, sometimes late points.
      switch (rng() % 10) {
        case 0:
          break;  // equal timestamp
        case 1:
          clock -= static_cast<std::int64_t>(rng() % (5 * kMinute));
          break;  // late
        default:
          clock += static_cast<std::int64_t>(rng() % (20 * kSecond));
          break;
      }
      const std::int64_t t = clock;
      for (ValueType type : types) {
        Value v;
        switch (type) {
          case ValueType::kFloat64:
            v = rng() % 40 == 0
                    ? std::numeric_limits<double>::quiet_NaN()
                    : std::round(std::normal_distribution<double>(50, 20)(rng) * 100) / 100;
            break;
          case ValueType::kInt64:
            v = static_cast<std::int64_t>(rng() % 1000) - 500;
            break;
          case ValueType::kBool:
            v = rng() % 3 == 0;
            break;
          default:
            break;
        }
        const char* path = type == ValueType::kFloat64 ? "f"
                           : type == ValueType::kInt64 ? "i"
                                                       : "b";
        batch.push_back({"t", path, t, v});
        refs[type].points.push_back({t, v});
      }
    }
    AppendOk(*h, batch);
    if (rng() % 5 == 0) {
      ASSERT_TRUE(h->Checkpoint().ok());
    }
    if (rng() % 8 == 0) {  // crash (the store writes nothing on the way out) and reopen
      h.reset();
      h = OpenOrDie(b, opts);
    }
  }
  for (ValueType type : types) {
    const char* path = type == ValueType::kFloat64 ? "f" : type == ValueType::kInt64 ? "i" : "b";
    const std::vector<Point> sorted = refs[type].Sorted();
    // Raw reads keep every point; equal timestamps may come in any order across late merges, so
    // compare as multisets per timestamp.
    auto got = ReadAll(*h, "t", path);
    ASSERT_EQ(got.size(), sorted.size());
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i].t_ns, sorted[i].t_ns) << i;
    const std::int64_t lo = sorted.front().t_ns, hi = sorted.back().t_ns;
    for (int qi = 0; qi < 12; ++qi) {
      RangeQuery q;
      if (qi > 0) {
        q.from_ns = lo +
                    static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - lo + 1)) -
                    kMinute;
        q.to_ns =
            q.from_ns + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - lo + 1));
      }
      const std::int64_t steps[] = {0, kSecond, 7 * kSecond, kMinute, 10 * kMinute, 3600 * kSecond};
      q.step_ns = steps[rng() % 6];
      if (q.step_ns == kSecond && qi == 0) q.step_ns = kMinute;  // bounded bucket count
      for (Agg agg : {Agg::kMean, Agg::kMin, Agg::kMax, Agg::kLast, Agg::kCount, Agg::kSum,
                      Agg::kP50, Agg::kP95, Agg::kP99}) {
        q.agg = agg;
        auto got_agg = h->Aggregate({"t", path}, q);
        ASSERT_TRUE(got_agg.ok()) << got_agg.status().ToString();
        auto want = NaiveAggregate(sorted, q, type);
        ASSERT_EQ(got_agg->size(), want.size()) << AggName(agg) << " step " << q.step_ns;
        for (std::size_t i = 0; i < want.size(); ++i) {
          EXPECT_EQ((*got_agg)[i].t_ns, want[i].t_ns);
          EXPECT_EQ((*got_agg)[i].count, want[i].count);
          if (agg == Agg::kLast) {
            // Equal newest timestamps: any of them is "last"; check the time and the type.
            EXPECT_EQ((*got_agg)[i].value.index(), want[i].value.index());
            continue;
          }
          EXPECT_TRUE(Close((*got_agg)[i].value, want[i].value))
              << "seed " << seed << " " << ValueTypeName(type) << " " << AggName(agg) << " step "
              << q.step_ns << " bucket " << i;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, HistoryRandomTest, ::testing::Range(1, 13));

// Every aggregate of m/f, m/i, m/b at whole-minute steps over a few ranges is the same in both.
void ExpectSameWholeMinuteAggregates(const HistoryStore& h1, const HistoryStore& h2) {
  const std::int64_t ranges[][2] = {{kT0, kT0 + 2 * 3600 * kSecond},
                                    {kT0 + 17 * kSecond, kT0 + 5000 * kSecond},
                                    {kT0 - kMinute, kT0 + 45 * kMinute + 3}};
  for (const char* path : {"f", "i", "b"}) {
    for (const auto& range : ranges) {
      for (std::int64_t step : {kMinute, 5 * kMinute, 60 * kMinute}) {
        for (Agg agg : {Agg::kMean, Agg::kMin, Agg::kMax, Agg::kLast, Agg::kCount, Agg::kSum}) {
          RangeQuery q{.from_ns = range[0], .to_ns = range[1], .step_ns = step, .agg = agg};
          auto a = h1.Aggregate({"m", path}, q);
          auto b = h2.Aggregate({"m", path}, q);
          ASSERT_TRUE(a.ok() && b.ok());
          ASSERT_EQ(a->size(), b->size()) << path << " " << AggName(agg);
          for (std::size_t k = 0; k < a->size(); ++k) {
            EXPECT_EQ((*a)[k].t_ns, (*b)[k].t_ns);
            EXPECT_EQ((*a)[k].count, (*b)[k].count);
            EXPECT_TRUE(Close((*a)[k].value, (*b)[k].value))
                << path << " " << AggName(agg) << " step " << step << " bucket " << k;
          }
        }
      }
    }
  }
}

TEST(HistoryTest, MinuteRollupsAnswerWholeMinuteStepsAsThePointsDo) {
  // The same dense data (5 Hz, with NaNs and a late stretch) in a store that rolls every chunk up
  // by minute and in one that never does: every aggregate at whole-minute steps must agree.
  MemoryBackend with_b, without_b;
  HistoryOptions with = Manual(2048), without = Manual(2048);
  without.rollup_density = 1e18;
  auto h1 = OpenOrDie(with_b, with);
  auto h2 = OpenOrDie(without_b, without);
  std::mt19937_64 rng(7);
  std::vector<Sample> batch;
  std::vector<std::string> keep;
  for (int i = 0; i < 5 * 3600 * 2; ++i) {
    std::int64_t t = kT0 + i * (kSecond / 5);
    if (i % 5000 == 4999) t -= 10 * kMinute;  // late points: a chunk of their own
    const double f = i % 997 == 0
                         ? std::numeric_limits<double>::quiet_NaN()
                         : std::round(std::normal_distribution<double>(60, 9)(rng) * 10) / 10;
    batch.push_back({"m", "f", t, f});
    batch.push_back({"m", "i", t, static_cast<std::int64_t>(rng() % 100000) - 50000});
    batch.push_back({"m", "b", t, rng() % 2 == 0});
    if (batch.size() >= 3000) {
      AppendOk(*h1, batch);
      AppendOk(*h2, batch);
      batch.clear();
    }
  }
  AppendOk(*h1, batch);
  AppendOk(*h2, batch);
  ASSERT_TRUE(h1->Checkpoint().ok());
  ASSERT_TRUE(h2->Checkpoint().ok());
  EXPECT_GT(h1->Stats().rollup_bytes, 0u);
  EXPECT_EQ(h2->Stats().rollup_bytes, 0u);
  // The rollups kept as the heads filled, then the ones rebuilt from the stored chunks.
  for (int reopened = 0; reopened < 2; ++reopened) {
    SCOPED_TRACE(reopened ? "reopened" : "as appended");
    if (reopened) {
      h1.reset();
      h1 = OpenOrDie(with_b, with);
      EXPECT_GT(h1->Stats().rollup_bytes, 0u);
    }
    ExpectSameWholeMinuteAggregates(*h1, *h2);
  }
}

TEST(HistoryTest, AsyncAppendsAreGroupedAndAnsweredInOrder) {
  MemoryBackend b;
  auto h = OpenOrDie(b, Manual(32));
  constexpr int kCalls = 200;
  std::vector<std::vector<Sample>> batches(kCalls);
  std::mutex mu;
  std::vector<int> answered;
  std::condition_variable cv;
  for (int c = 0; c < kCalls; ++c) {
    for (int j = 0; j < 10; ++j) {
      batches[c].push_back({"m", c % 2 ? "x" : "y", kT0 + (c * 10 + j) * kSecond, 1.0 * j});
    }
    if (c == 7) batches[c].push_back({"m", "x", kT0, std::int64_t{1}});  // type mismatch
    h->AppendAsync(batches[c], [&, c](std::vector<core::Status> r) {
      std::lock_guard lock(mu);
      if (c == 7) {
        EXPECT_EQ(r.size(), 11u);
        EXPECT_EQ(r.back().code(), "TSDB_TYPE_MISMATCH");
      } else {
        EXPECT_TRUE(r.empty()) << c;
      }
      answered.push_back(c);
      cv.notify_all();
    });
  }
  h->WaitIdle();  // every done has run
  std::unique_lock lock(mu);
  EXPECT_EQ(answered.size(), static_cast<std::size_t>(kCalls));
  cv.wait(lock, [&] { return answered.size() == kCalls; });
  EXPECT_TRUE(std::is_sorted(answered.begin(), answered.end()));
  lock.unlock();
  EXPECT_EQ(ReadAll(*h, "m", "x").size(), kCalls / 2 * 10u);
  // Grouped: fewer write-ahead records than calls is likely but not guaranteed; every point is
  // durable either way.
  MemoryBackend crashed(b);
  auto r = OpenOrDie(crashed, Manual(32));
  EXPECT_EQ(ReadAll(*r, "m", "y").size(), kCalls / 2 * 10u);
  // A failing backend answers TSDB_IO to each call.
  b.FailWrites(true);
  std::promise<std::vector<core::Status>> failed;
  std::vector<Sample> one{{"m", "x", kT0 + kSecond * 100000, 1.0}};
  h->AppendAsync(one, [&](std::vector<core::Status> st) { failed.set_value(std::move(st)); });
  auto st = failed.get_future().get();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].code(), "TSDB_IO");
}

// Options with 100-point chunks, no background checkpoints and `n` write threads.
HistoryOptions WriteThreads(int n) {
  HistoryOptions o = Manual(100);
  o.write_threads = n;
  return o;
}

// Large writes are prepared and put into the heads by two threads (series split between them);
// a series' points keep their order across the calls of one async group, late points and chunk
// seals included. The same input through one thread must store exactly the same points.
TEST(HistoryTest, TwoWriteThreadsStoreWhatOneStores) {
  const HistoryOptions one = WriteThreads(1), two = WriteThreads(2);
  MemoryBackend b1, b2;
  auto h1 = OpenOrDie(b1, one);
  auto h2 = OpenOrDie(b2, two);
  constexpr int kSeries = 97, kCalls = 12, kPerSeries = 90;  // 8,730 points a call
  std::mt19937_64 rng(7);
  std::vector<std::string> twins, paths;  // Sample holds views
  for (int s = 0; s < kSeries; ++s) {
    twins.push_back("m" + std::to_string(s / 6));
    paths.push_back("p" + std::to_string(s % 6));
  }
  std::vector<std::vector<Sample>> calls(kCalls);
  for (int c = 0; c < kCalls; ++c) {
    for (int k = 0; k < kPerSeries; ++k) {
      for (int s = 0; s < kSeries; ++s) {
        std::int64_t t = kT0 + (c * kPerSeries + k) * kSecond;
        if (rng() % 50 == 0) t -= static_cast<std::int64_t>(rng() % 200) * kSecond;  // late
        Value v;
        switch (s % 4) {
          case 0:
            v = static_cast<double>(rng() % 1000) / 10;
            break;
          case 1:
            v = static_cast<std::int64_t>(rng() % 100);
            break;
          case 2:
            v = rng() % 2 == 0;
            break;
          default:
            v = std::string(rng() % 3 == 0 ? "idle" : "running");
            break;
        }
        calls[c].push_back({twins[s], paths[s], t, v});
      }
    }
  }
  // Sync: one call at a time. Async: the calls queue up and are applied as groups.
  for (const auto& call : calls) AppendOk(*h1, call);
  std::atomic<int> answered{0};
  for (const auto& call : calls) {
    h2->AppendAsync(call, [&](std::vector<core::Status> r) {
      EXPECT_TRUE(r.empty());
      ++answered;
    });
  }
  h2->WaitIdle();
  EXPECT_EQ(answered.load(), kCalls);
  for (int s = 0; s < kSeries; ++s) {
    const auto want = ReadAll(*h1, twins[s], paths[s]);
    EXPECT_EQ(want.size(), static_cast<std::size_t>(kCalls * kPerSeries));
    EXPECT_TRUE(SamePoints(ReadAll(*h2, twins[s], paths[s]), want)) << twins[s] << paths[s];
  }
  EXPECT_EQ(h2->Stats().appended, h1->Stats().appended);
}

// A large call is prepared in two halves on two threads and answers as one call: a new series
// takes the type of its first sample in the call even when the second half reaches the index
// first, refusals come back at their samples' indices, the call is one write-ahead record, and
// that record replays to the same points.
TEST(HistoryTest, LargeCallsPreparedInHalvesAnswerAsOne) {
  const HistoryOptions one = WriteThreads(1), two = WriteThreads(2);
  MemoryBackend b1, b2;
  auto h1 = OpenOrDie(b1, one);
  auto h2 = OpenOrDie(b2, two);
  constexpr int kCalls = 6, kPerCall = 10000;
  std::vector<std::string> fill, slow, names;  // Sample holds views
  for (int k = 0; k < 40; ++k) fill.push_back("f" + std::to_string(k));
  // Twins with long names, a different one each sample: the first half of a call takes far
  // longer to group than the second, which so reaches the index first.
  for (int k = 0; k < 50; ++k) slow.push_back(std::string(4000, 'a') + std::to_string(k));
  for (int c = 0; c < kCalls; ++c) {
    for (const char* n : {"x", "y", "z"}) names.push_back(n + std::to_string(c));
  }
  std::vector<std::vector<Sample>> calls(kCalls);
  for (int c = 0; c < kCalls; ++c) {
    const std::int64_t t0 = kT0 + std::int64_t{c} * kPerCall * kSecond;
    const std::string& x = names[3 * c];
    const std::string& y = names[3 * c + 1];
    const std::string& z = names[3 * c + 2];
    for (int i = 0; i < kPerCall; ++i) {
      const std::int64_t t = t0 + i * kSecond;
      const auto k = static_cast<std::size_t>(i);
      Sample smp = i < kPerCall / 2 ? Sample{slow[k % slow.size()], "p", t, 0.5 * i}
                                    : Sample{"m", fill[k % fill.size()], t, 0.5 * i};
      // New series of this call: x first as float (the first half's last sample), then as int
      // (the second half's first); y first in the second half as bool, then as float; z only in
      // the second half, as int.
      if (i == kPerCall / 2 - 1) smp = {x, "v", t, 1.5};
      if (i == kPerCall / 2) smp = {x, "v", t, std::int64_t{5}};
      if (i == 6000) smp = {y, "v", t, true};
      if (i == 9500) smp = {y, "v", t, 2.5};
      if (i == 7000 || i == 7001) smp = {z, "v", t, std::int64_t{i}};
      calls[c].push_back(smp);
    }
  }
  auto codes = [](const std::vector<core::Status>& r) {
    std::vector<std::string> out;
    for (const auto& st : r) out.push_back(st.code());
    return out;
  };
  // Sync calls into h1 (one thread) and h2; the same calls through AppendAsync (queued up: a
  // group's calls are shared between the threads) into h3.
  MemoryBackend b3;
  auto h3 = OpenOrDie(b3, two);
  std::vector<std::vector<std::string>> want(kCalls), async_codes(kCalls);
  for (int c = 0; c < kCalls; ++c) {
    want[c] = codes(h1->Append(calls[c]));
    ASSERT_EQ(want[c].size(), static_cast<std::size_t>(kPerCall));
    EXPECT_EQ(want[c][kPerCall / 2], "TSDB_TYPE_MISMATCH");
    EXPECT_EQ(want[c][9500], "TSDB_TYPE_MISMATCH");
    EXPECT_EQ(std::count(want[c].begin(), want[c].end(), ""), kPerCall - 2);
    EXPECT_EQ(codes(h2->Append(calls[c])), want[c]) << c;
    h3->AppendAsync(calls[c], [&, c](std::vector<core::Status> r) { async_codes[c] = codes(r); });
  }
  h3->WaitIdle();
  for (int c = 0; c < kCalls; ++c) EXPECT_EQ(async_codes[c], want[c]) << c;
  EXPECT_EQ(h2->Stats().wal_records, h1->Stats().wal_records);  // one record per call
  MemoryBackend crashed(b2);                                    // no checkpoint: the records replay
  auto r2 = OpenOrDie(crashed, two);
  std::vector<std::pair<std::string, std::string>> series;
  for (const std::string& f : fill) series.emplace_back("m", f);
  for (const std::string& w : slow) series.emplace_back(w, "p");
  for (const std::string& n : names) series.emplace_back(n, "v");
  for (const auto& [twin, path] : series) {
    const auto want = ReadAll(*h1, twin, path);
    EXPECT_FALSE(want.empty()) << twin << path;
    EXPECT_TRUE(SamePoints(ReadAll(*h2, twin, path), want)) << twin << path;
    EXPECT_TRUE(SamePoints(ReadAll(*h3, twin, path), want)) << twin << path;
    EXPECT_TRUE(SamePoints(ReadAll(*r2, twin, path), want)) << twin << path;
    EXPECT_EQ(h2->Info({twin, path})->type, h1->Info({twin, path})->type) << twin << path;
  }
}

TEST(HistoryTest, ConcurrentAppendsReadsAndCheckpoints) {
  MemoryBackend b;
  HistoryOptions o;
  o.chunk_points = 50;
  o.checkpoint_interval = std::chrono::milliseconds(2);
  o.checkpoint_bytes = 4096;
  auto h = OpenOrDie(b, o);
  constexpr int kThreads = 4, kBatches = 100, kPerBatch = 20;
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kBatches; ++i) {
        std::vector<Sample> batch;
        for (int j = 0; j < kPerBatch; ++j) {
          batch.push_back(
              {"m", w % 2 ? "x" : "y", kT0 + (i * kPerBatch + j) * kSecond + w, 1.0 * j});
        }
        EXPECT_TRUE(h->Append(batch).empty());
        (void)h->Read({"m", "x"}, {});
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(h->Checkpoint().ok());
  EXPECT_EQ(ReadAll(*h, "m", "x").size(), 2u * kBatches * kPerBatch);
  h.reset();
  MemoryBackend crashed(b);
  auto r = OpenOrDie(crashed, Manual());
  EXPECT_EQ(ReadAll(*r, "m", "x").size(), 2u * kBatches * kPerBatch);
  EXPECT_EQ(ReadAll(*r, "m", "y").size(), 2u * kBatches * kPerBatch);
}

}  // namespace
}  // namespace doppel::tsdb
