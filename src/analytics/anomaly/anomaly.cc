#include "analytics/anomaly/anomaly.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <functional>
#include <mutex>
#include <numbers>
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
// The fit's Huber step clips residuals at 1.5 robust scales; its scale winsorizes them at 3.
constexpr double kHuberClip = 1.5;
constexpr double kWinsorClip = 3.0;
// E[min(Z², 3²)] for a standard normal Z: divides the winsorized mean square to estimate σ².
constexpr double kWinsorConsistency = 0.99501;
// The one-step Huber line's efficiency on normal noise: its variances are least squares' / 0.95.
constexpr double kHuberEfficiency = 0.95;
// Of the variance the window fit's slope adds to its prediction (beyond a flat median's), the
// share that widens the limits. Measured on white noise (per 100,000 readings) and 2σ shifts
// (absorbed by the line before the EWMA finds them): none, 8.8 anomalous readings and 1.2%; all,
// 1.4 and 9.2%; a quarter, 5.6 and 2.4% (the flat baseline: 6.6 and 0.9%).
constexpr double kTrendUncertaintyShare = 0.25;
// Memories, in windows of readings: of the comparison between the two fits, of the recent fit's
// measured excess error and of the window fit's (long: a 2σ step must not widen its own limit
// before the EWMA finds it).
constexpr double kComparisonMemory = 8, kRecentErrorMemory = 8, kWindowErrorMemory = 64;
// A reading's difference of squared errors counts at most ±2 (in the window fit's scale²) in
// the comparison, and a squared prediction error at most 3² scales² in the measured excess, so a
// shift or a burst cannot decide either alone.
constexpr double kComparisonClip = 2, kErrorClip = 9;

// The median of v (reorders it).
double MedianOf(std::vector<double>& v) {
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const double hi = v[mid];
  if (v.size() % 2 == 1) return hi;
  const double lo = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return lo + (hi - lo) / 2;
}

// The upper median of v (reorders it), for the fits: a quickselect whose partition step does not
// branch on the data (a swap every element, the boundary advanced by the comparison), about twice
// as fast as std::nth_element on noisy doubles, which mispredicts half its comparisons. The fits
// run every rebaseline_every readings on every series, and selection is most of their cost.
double MiddleOf(std::vector<double>& v) {
  double* a = v.data();
  const std::size_t k = v.size() / 2;
  std::size_t lo = 0, hi = v.size();
  while (hi - lo > 16) {
    const double x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];
    const double pivot = std::max(std::min(x, y), std::min(std::max(x, y), z));
    std::size_t less = lo;  // a[lo, less) < pivot <= a[less, i)
    for (std::size_t i = lo; i < hi; ++i) {
      const double e = a[i];
      a[i] = a[less];
      a[less] = e;
      less += e < pivot ? 1 : 0;
    }
    if (less == lo) {  // nothing below the pivot: it is the minimum; take its copies off too
      std::size_t upto = lo;
      for (std::size_t i = lo; i < hi; ++i) {
        const double e = a[i];
        a[i] = a[upto];
        a[upto] = e;
        upto += e == pivot ? 1 : 0;
      }
      if (k < upto) return pivot;
      lo = upto;
    } else if (k < less) {
      hi = less;
    } else {
      lo = less;
    }
  }
  std::sort(a + lo, a + hi);
  return a[k];
}

// How many of the window's n readings the window fit leaves out (the newest; the recent fit
// leaves out half as many), and how many the recent fit takes.
std::size_t GuardOf(std::size_t n, std::size_t every) {
  return n >= 32 ? std::min(every, n / 4) : 0;
}
std::size_t RecentOf(std::size_t n) { return std::min(n, std::max<std::size_t>(8, n / 4)); }

// The variance (in σ²) of a Huber line through n evenly spaced readings, `ahead` readings past
// its newest one.
double LineVariance(double n, double ahead) {
  if (n < 2) return 1;
  const double d = (n - 1) / 2 + ahead;
  return (1 / n + d * d * 12 / (n * (n * n - 1))) / kHuberEfficiency;
}

// The comparison's mean on white noise with a full window: the recent fit's prediction variance
// minus the window fit's, midway between refits (≈ 0.14 at the defaults).
double NoiseComparison(const AnomalyOptions& o) {
  const std::size_t n = std::max<std::size_t>(o.window, 1);
  const double guard = static_cast<double>(GuardOf(n, o.rebaseline_every));
  const double mid = (static_cast<double>(o.rebaseline_every) + 1) / 2;
  return std::max(0.0, LineVariance(static_cast<double>(RecentOf(n)), guard / 2 + mid) -
                           LineVariance(static_cast<double>(n) - guard, guard + mid));
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
// The verdict of the two scores: the detector whose score is the larger share of its threshold
// speaks for the reading.
void Decide(Verdict& v, double robust, double ewma, const AnomalyOptions& o) {
  const bool robust_first = robust / o.robust_threshold >= ewma / o.ewma_threshold;
  v.score = robust_first ? robust : ewma;
  v.threshold = robust_first ? o.robust_threshold : o.ewma_threshold;
  v.detector = robust_first ? "robust_z" : "ewma";
  v.anomalous = v.score > v.threshold;
  if (!v.anomalous) v.detector = "";
}

}  // namespace

double SeriesDetector::Line::Variance(double t) const {
  const double d = std::min(t, last + (last - first)) - center;
  return var_level + var_slope * d * d;
}

// The fit: a robust start, then one Huber step.
//   slope  the median of the slopes between readings half the readings apart, (i, i + n/2)
//          (Theil–Sen restricted to those pairs; every other pair in a full window);
//   level  the median of those pairs' midpoints, moved to `center` along that slope;
//   scale  1.4826 × the median absolute residual of all n readings against that start.
// Each tolerates a quarter of the pairs (or half the readings) contaminated: spikes, a recent
// step. The Huber step from there (least squares on residuals clipped at 1.5 of that scale) gets
// within 5% of least squares' variance on normal noise and bounds a spike's pull; the scale the
// detectors use is then the standard deviation of the n residuals winsorized at 3 of the start's.
// (The start's scale comes from residuals, not from the pairs' differences: a cycle whose period
// divides n/2 makes those differences all zero.)
SeriesDetector::Line SeriesDetector::Line::Fit(const double* x, const double* t, std::size_t n,
                                               std::vector<double>& work) {
  Line l;
  l.n = n;
  l.first = t[0];
  l.last = t[n - 1];
  double center = 0;
  for (std::size_t i = 0; i < n; ++i) center += t[i];
  center /= static_cast<double>(n);
  l.center = center;
  double sxx = 0;
  for (std::size_t i = 0; i < n; ++i) sxx += (t[i] - center) * (t[i] - center);
  const std::size_t half = std::max<std::size_t>(n / 2, 1);
  const std::size_t pairs = n - std::min(half, n);
  const std::size_t stride = pairs > 32 ? 2 : 1;
  work.clear();
  for (std::size_t i = 0; i < pairs; i += stride) {
    const double dt = t[i + half] - t[i];
    if (dt > 0) work.push_back((x[i + half] - x[i]) / dt);
  }
  l.slope = work.empty() ? 0 : MiddleOf(work);
  work.clear();
  for (std::size_t i = 0; i < pairs; i += stride) {
    work.push_back((x[i] + x[i + half]) / 2 - l.slope * ((t[i] + t[i + half]) / 2 - center));
  }
  l.level = work.empty() ? x[0] : MiddleOf(work);
  work.resize(n);
  for (std::size_t i = 0; i < n; ++i)
    work[i] = std::abs(x[i] - l.level - l.slope * (t[i] - center));
  const double start_scale = kMadToSigma * MiddleOf(work);
  const double floor = 1e-9 * std::max(1.0, std::abs(l.level));
  if (start_scale > floor) {
    const double clip = kHuberClip * start_scale;
    double sum = 0, sum_t = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double r = std::clamp(x[i] - l.level - l.slope * (t[i] - center), -clip, clip);
      sum += r;
      sum_t += r * (t[i] - center);
    }
    l.level += sum / static_cast<double>(n);
    if (sxx > 0) l.slope += sum_t / sxx;
    const double winsor = kWinsorClip * start_scale;
    double sq = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double r = x[i] - l.level - l.slope * (t[i] - center);
      sq += std::min(r * r, winsor * winsor);
    }
    // n - 2: the line took two degrees of freedom from the residuals.
    l.scale = std::sqrt(sq / kWinsorConsistency / std::max(1.0, static_cast<double>(n) - 2));
  }
  l.scale = std::max(l.scale, floor);
  l.var_level = 1 / (kHuberEfficiency * static_cast<double>(n));
  l.var_slope = sxx > 0 ? 1 / (kHuberEfficiency * sxx) : 0;
  return l;
}

SeriesDetector::SeriesDetector(const AnomalyOptions& options)
    : options_(&options), noise_comparison_(NoiseComparison(options)) {
  ring_.reserve(options.window);
}

void SeriesDetector::Refit() {
  // Chronological copies of the ring (the fits pair readings by position); scratch shared by
  // the detectors of a thread, so a series costs only its ring.
  thread_local std::vector<double> xs, ts, work;
  const std::size_t n = ring_.size();
  xs.resize(n);
  ts.resize(n);
  const std::size_t oldest = ring_.size() < options_->window ? 0 : next_;
  for (std::size_t i = 0; i < n; ++i) {
    const Point& p = ring_[(oldest + i) % n];
    xs[i] = p.x;
    ts[i] = p.t;
  }
  // Both leave the newest readings out (a shift shows against the line for a while before the
  // line can lean towards it): the window fit rebaseline_every, the recent fit half as many.
  const std::size_t guard = GuardOf(n, options_->rebaseline_every);
  window_.line = Line::Fit(xs.data(), ts.data(), n - guard, work);
  const std::size_t m = RecentOf(n), end = n - guard / 2;
  recent_.line = Line::Fit(xs.data() + (end - m), ts.data() + (end - m), m, work);
}

Verdict SeriesDetector::Observe(double x, double t) {
  const AnomalyOptions& o = *options_;
  Verdict v;
  if (!o.detrend) {
    v = ObserveFlat(x);
  } else if (count_ >= o.warmup && !ring_.empty()) {
    if (since_baseline_ == 0 || since_baseline_ >= o.rebaseline_every) {
      Refit();
      since_baseline_ = 0;
    }
    ++since_baseline_;
    const double window_readings = static_cast<double>(std::max<std::size_t>(o.window, 1));
    const double ewma_var = o.ewma_lambda / (2 - o.ewma_lambda);
    struct Scored {
      double residual, scale, ewma_sd;
    };
    // Residual, scale and EWMA limit against one fit; updates its EWMA and measured error.
    auto score = [&](Fit& f, double uncertainty, double error_memory) {
      const Line& l = f.line;
      const double s2 = l.scale * l.scale;
      const double r = x - l.At(t);
      const double u2 = s2 * (uncertainty + std::max(0.0, f.excess));
      const double scale = std::sqrt(s2 + u2);
      const double limit = o.robust_threshold * scale;
      f.ewma = o.ewma_lambda * std::clamp(r, -limit, limit) + (1 - o.ewma_lambda) * f.ewma;
      f.excess += (std::min(r * r / s2, kErrorClip) - 1 - l.Variance(t) - f.excess) / error_memory;
      return Scored{r, scale, std::sqrt(s2 * ewma_var + u2)};
    };
    // The window fit's limits widen by a share of what its slope adds to a flat median's
    // uncertainty, the recent fit's by all of its prediction variance.
    const Line& wl = window_.line;
    const double flat = std::numbers::pi / (2 * static_cast<double>(wl.n));
    const Scored w = score(window_, kTrendUncertaintyShare * std::max(0.0, wl.Variance(t) - flat),
                           kWindowErrorMemory * window_readings);
    const Scored r = score(recent_, recent_.line.Variance(t), kRecentErrorMemory * window_readings);
    // Which fit predicts the series better: squared errors, each clipped like the EWMA's input.
    const double a = std::min(std::abs(w.residual), o.robust_threshold * w.scale);
    const double b = std::min(std::abs(r.residual), o.robust_threshold * r.scale);
    const double decay = 1 - 1 / (kComparisonMemory * window_readings);
    comparison_sum_ = decay * comparison_sum_ + std::clamp((b * b - a * a) / (wl.scale * wl.scale),
                                                           -kComparisonClip, kComparisonClip);
    comparison_weight_ = decay * comparison_weight_ + 1;
    // As many readings' worth of white noise's value as there is evidence, up to a window.
    const double prior = std::min(comparison_weight_, window_readings) * noise_comparison_;
    const bool use_recent = comparison_sum_ + prior < 0;
    const Fit& f = use_recent ? recent_ : window_;
    const Scored& s = use_recent ? r : w;

    const double robust = std::abs(s.residual) / s.scale;
    const double ewma = std::abs(f.ewma) / s.ewma_sd;
    v.scored = true;
    v.baseline = f.line.At(t);
    v.scale = s.scale;
    v.ewma = f.ewma;
    v.slope = f.line.slope;
    v.recent_fit = use_recent;
    Decide(v, robust, ewma, o);
  }
  if (ring_.size() < o.window) {
    ring_.push_back({x, t});
  } else if (o.window > 0) {
    ring_[next_] = {x, t};
    next_ = (next_ + 1) % o.window;
  }
  ++count_;
  return v;
}

// detrend = false: the window's median and MAD, the EWMA of the readings against the median.
Verdict SeriesDetector::ObserveFlat(double x) {
  const AnomalyOptions& o = *options_;
  Verdict v;
  if (count_ >= o.warmup && !ring_.empty()) {
    if (since_baseline_ == 0 || since_baseline_ >= o.rebaseline_every) {
      thread_local std::vector<double> work;
      work.clear();
      for (const Point& p : ring_) work.push_back(p.x);
      median_ = MedianOf(work);
      for (double& d : work) d = std::abs(d - median_);
      const double mad = MedianOf(work);
      flat_scale_ = std::max(kMadToSigma * mad, 1e-9 * std::max(1.0, std::abs(median_)));
      since_baseline_ = 0;
    }
    ++since_baseline_;
    const double median = median_, scale = flat_scale_;
    const double robust = std::abs(x - median) / scale;
    // The EWMA takes the reading clipped to the robust limits, so one spike moves it by at most
    // λ × robust_threshold scales instead of dragging it off for many readings.
    const double limit = o.robust_threshold * scale;
    flat_ewma_ = o.ewma_lambda * std::clamp(x, median - limit, median + limit) +
                 (1 - o.ewma_lambda) * flat_ewma_;
    const double ewma =
        std::abs(flat_ewma_ - median) / (scale * std::sqrt(o.ewma_lambda / (2 - o.ewma_lambda)));
    v.scored = true;
    v.baseline = median;
    v.scale = scale;
    Decide(v, robust, ewma, o);
  } else {
    flat_ewma_ = count_ == 0 ? x : o.ewma_lambda * x + (1 - o.ewma_lambda) * flat_ewma_;
  }
  v.ewma = flat_ewma_;
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
  return json::object{
      {"twin", twin}, {"active", std::move(a)}, {"recent", std::move(r)}, {"series", std::move(s)}};
}

struct AnomalyMonitor::Series {
  explicit Series(const AnomalyOptions& o) : detector(o) {}
  SeriesDetector detector;
  AnomalyClock::time_point origin{}, newest{};  // the first reading's time, the newest's
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
      s->second.origin = source_time;
    } else if (source_time <= s->second.newest) {
      return;  // out of order or a redelivery: not scored
    }
    Series& series = s->second;
    series.newest = source_time;
    ++series.readings;
    ++shard.readings;
    // The trend is per second of source time (readings may come irregularly), counted from the
    // series' first reading so the doubles keep sub-microsecond precision.
    const double seconds = std::chrono::duration<double>(source_time - series.origin).count();
    const Verdict v = series.detector.Observe(value, seconds);
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
