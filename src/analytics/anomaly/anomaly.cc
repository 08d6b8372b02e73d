#include "analytics/anomaly/anomaly.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "core/time.h"
#include "sync/ingest.h"
#include "twin/change_feed.h"
#include "twin/twin_graph.h"

namespace doppel::analytics {
namespace json = boost::json;

namespace {
constexpr std::size_t kShards = 32;
constexpr double kMadToSigma = 1.4826;

// The median of v (reorders it).
double MedianOf(std::vector<double>& v) {
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const double hi = v[mid];
  if (v.size() % 2 == 1) return hi;
  const double lo =
      *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return lo + (hi - lo) / 2;
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
}  // namespace

SeriesDetector::SeriesDetector(const AnomalyOptions& options) : options_(&options) {
  ring_.reserve(options.window);
  scratch_.reserve(options.window);
}

Verdict SeriesDetector::Observe(double x) {
  const AnomalyOptions& o = *options_;
  Verdict v;
  if (count_ >= o.warmup && !ring_.empty()) {
    if (since_baseline_ == 0 || since_baseline_ >= o.rebaseline_every) {
      scratch_.assign(ring_.begin(), ring_.end());
      median_ = MedianOf(scratch_);
      for (double& d : scratch_) d = std::abs(d - median_);
      const double mad = MedianOf(scratch_);
      scale_ = std::max(kMadToSigma * mad, 1e-9 * std::max(1.0, std::abs(median_)));
      since_baseline_ = 0;
    }
    ++since_baseline_;
    const double median = median_, scale = scale_;
    const double robust = std::abs(x - median) / scale;
    // The EWMA takes the reading clipped to the robust limits, so one spike moves it by at most
    // λ × robust_threshold scales instead of dragging it off for many readings.
    const double limit = o.robust_threshold * scale;
    ewma_ = o.ewma_lambda * std::clamp(x, median - limit, median + limit) +
            (1 - o.ewma_lambda) * ewma_;
    const double ewma =
        std::abs(ewma_ - median) / (scale * std::sqrt(o.ewma_lambda / (2 - o.ewma_lambda)));
    v.scored = true;
    v.baseline = median;
    v.scale = scale;
    const double rel_robust = robust / o.robust_threshold;
    const double rel_ewma = ewma / o.ewma_threshold;
    const bool robust_first = rel_robust >= rel_ewma;
    v.score = robust_first ? robust : ewma;
    v.threshold = robust_first ? o.robust_threshold : o.ewma_threshold;
    v.detector = robust_first ? "robust_z" : "ewma";
    v.anomalous = v.score > v.threshold;
    if (!v.anomalous) v.detector = "";
  } else {
    ewma_ = count_ == 0 ? x : o.ewma_lambda * x + (1 - o.ewma_lambda) * ewma_;
  }
  v.ewma = ewma_;
  if (ring_.size() < o.window) {
    ring_.push_back(x);
  } else {
    ring_[next_] = x;
    next_ = (next_ + 1) % o.window;
  }
  ++count_;
  return v;
}

json::value AnomalyEpisode::ToJson() const {
  json::object o{{"path", path},
                 {"detector", detector},
                 {"score", score},
                 {"threshold", threshold},
                 {"value", value},
                 {"baseline", baseline},
                 {"scale", scale},
                 {"peakScore", peak_score},
                 {"anomalousReadings", anomalous_readings},
                 {"start", core::FormatRfc3339(start)}};
  o["end"] = end ? json::value(core::FormatRfc3339(*end)) : json::value(nullptr);
  return o;
}

json::value TwinAnomalies::ToJson() const {
  json::array a, r, s;
  for (const AnomalyEpisode& e : active) a.push_back(e.ToJson());
  for (const AnomalyEpisode& e : recent) r.push_back(e.ToJson());
  for (const SeriesAnomalyStats& x : series) {
    s.push_back(json::object{{"path", x.path},
                             {"readings", x.readings},
                             {"anomalousReadings", x.anomalous_readings},
                             {"episodes", x.episodes},
                             {"flagged", x.flagged}});
  }
  return json::object{{"twin", twin}, {"active", std::move(a)}, {"recent", std::move(r)},
                      {"series", std::move(s)}};
}

struct AnomalyMonitor::Series {
  explicit Series(const AnomalyOptions& o) : detector(o) {}
  SeriesDetector detector;
  AnomalyClock::time_point newest{};
  std::uint64_t readings = 0, anomalous = 0, episodes = 0;
  std::optional<AnomalyEpisode> open;
  std::size_t normal_run = 0;
};

struct AnomalyMonitor::TwinState {
  std::map<std::string, Series, std::less<>> series;
  std::deque<AnomalyEpisode> recent;  // newest first
};

struct AnomalyMonitor::Shard {
  mutable std::mutex mu;
  std::unordered_map<std::string, TwinState, StringHash, std::equal_to<>> twins;
  std::uint64_t readings = 0, scored = 0, anomalous = 0, episodes = 0;
  std::map<std::string, std::uint64_t> by_detector;
};

AnomalyMonitor::AnomalyMonitor(AnomalyMonitorOptions options)
    : options_(options), shards_(std::make_unique<Shard[]>(kShards)) {}

AnomalyMonitor::~AnomalyMonitor() = default;

AnomalyMonitor::Shard& AnomalyMonitor::ShardOf(std::string_view twin) const {
  return shards_[std::hash<std::string_view>{}(twin) % kShards];
}

void AnomalyMonitor::Observe(std::string_view twin, std::string_view path, double value,
                             AnomalyClock::time_point source_time) {
  if (!std::isfinite(value)) return;
  std::optional<AnomalyEpisode> raised, cleared;
  {
    Shard& shard = ShardOf(twin);
    std::lock_guard lock(shard.mu);
    auto t = shard.twins.find(twin);
    if (t == shard.twins.end()) t = shard.twins.try_emplace(std::string(twin)).first;
    TwinState& ts = t->second;
    auto s = ts.series.find(path);
    if (s == ts.series.end()) {
      s = ts.series.try_emplace(std::string(path), options_.detector).first;
    } else if (source_time <= s->second.newest) {
      return;  // out of order or a redelivery: not scored
    }
    Series& series = s->second;
    series.newest = source_time;
    ++series.readings;
    ++shard.readings;
    const Verdict v = series.detector.Observe(value);
    if (!v.scored) return;
    ++shard.scored;
    if (v.anomalous) {
      ++series.anomalous;
      ++shard.anomalous;
      series.normal_run = 0;
      if (series.open) {
        series.open->peak_score = std::max(series.open->peak_score, v.score);
        ++series.open->anomalous_readings;
      } else {
        AnomalyEpisode e;
        e.path = std::string(path);
        e.detector = v.detector;
        e.score = e.peak_score = v.score;
        e.threshold = v.threshold;
        e.value = value;
        e.baseline = v.baseline;
        e.scale = v.scale;
        e.anomalous_readings = 1;
        e.start = source_time;
        series.open = e;
        ++series.episodes;
        ++shard.episodes;
        ++shard.by_detector[e.detector];
        raised = std::move(e);
      }
    } else if (series.open && ++series.normal_run >= options_.detector.clear_after) {
      series.open->end = source_time;
      cleared = *series.open;
      ts.recent.push_front(std::move(*series.open));
      if (ts.recent.size() > options_.recent) ts.recent.pop_back();
      series.open.reset();
      series.normal_run = 0;
    }
  }
  if (options_.graph == nullptr || (!raised && !cleared)) return;
  twin::TwinPtr tw = options_.graph->FindTwin(twin);
  if (!tw) return;
  const AnomalyEpisode& e = raised ? *raised : *cleared;
  auto ev = std::make_shared<twin::ChangeEvent>();
  ev->kind = raised ? twin::ChangeKind::kTwinAnomaly : twin::ChangeKind::kTwinAnomalyCleared;
  ev->twin_id = std::string(twin);
  ev->model = tw->model;
  json::value data = e.ToJson();
  // The change feed's path filter and patches use JSON Pointers.
  data.as_object()["path"] = "/" + e.path;
  ev->data = std::move(data);
  ev->time = AnomalyClock::now();
  options_.graph->feed().Publish(ev);
}

void AnomalyMonitor::ObserveJson(std::string_view twin, std::string_view path,
                                 const json::value& value, AnomalyClock::time_point source_time) {
  if (value.is_double()) {
    Observe(twin, path, value.get_double(), source_time);
  } else if (value.is_int64()) {
    Observe(twin, path, static_cast<double>(value.get_int64()), source_time);
  } else if (value.is_uint64()) {
    Observe(twin, path, static_cast<double>(value.get_uint64()), source_time);
  }
}

std::optional<TwinAnomalies> AnomalyMonitor::Twin(std::string_view twin) const {
  Shard& shard = ShardOf(twin);
  std::lock_guard lock(shard.mu);
  auto t = shard.twins.find(twin);
  if (t == shard.twins.end()) return std::nullopt;
  TwinAnomalies out;
  out.twin = std::string(twin);
  for (const auto& [path, s] : t->second.series) {
    if (s.open) out.active.push_back(*s.open);
    out.series.push_back({path, s.readings, s.anomalous, s.episodes, s.open.has_value()});
  }
  out.recent.assign(t->second.recent.begin(), t->second.recent.end());
  return out;
}

std::vector<std::pair<std::string, AnomalyEpisode>> AnomalyMonitor::Active() const {
  std::vector<std::pair<std::string, AnomalyEpisode>> out;
  for (std::size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mu);
    for (const auto& [id, t] : shards_[i].twins) {
      for (const auto& [path, s] : t.series) {
        if (s.open) out.emplace_back(id, *s.open);
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first, a.second.path) < std::tie(b.first, b.second.path);
  });
  return out;
}

AnomalyTotals AnomalyMonitor::Totals() const {
  AnomalyTotals out;
  for (std::size_t i = 0; i < kShards; ++i) {
    const Shard& sh = shards_[i];
    std::lock_guard lock(sh.mu);
    out.readings += sh.readings;
    out.scored += sh.scored;
    out.anomalous_readings += sh.anomalous;
    out.episodes += sh.episodes;
    for (const auto& [d, n] : sh.by_detector) out.episodes_by_detector[d] += n;
    for (const auto& [id, t] : sh.twins) {
      out.series += t.series.size();
      for (const auto& [path, s] : t.series) out.active += s.open ? 1 : 0;
    }
  }
  return out;
}

void AnomalyMonitor::Forget(std::string_view twin) {
  Shard& shard = ShardOf(twin);
  std::lock_guard lock(shard.mu);
  if (auto t = shard.twins.find(twin); t != shard.twins.end()) shard.twins.erase(t);
}

std::function<void(const sync::Reading&)> IngestObserver(AnomalyMonitor& monitor) {
  return [&monitor](const sync::Reading& r) {
    monitor.ObserveJson(r.twin, r.element, r.value, r.source_time.value_or(sync::Clock::now()));
  };
}

}  // namespace doppel::analytics
