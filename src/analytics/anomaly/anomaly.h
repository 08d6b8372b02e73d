// doppel::analytics — streaming anomaly detection on ingest. The component's manual.
//
// What it does
//   Every numeric reading ingest accepts (Property or Telemetry, integer or floating point) goes
//   through a detector for its series (twin + element path). The detector keeps the last
//   `window` (default 128) readings of the series with their source times and follows the
//   series' trend with straight lines fitted to them: the baseline a reading is scored against is
//   a trend line at the reading's source time, not the window's median, so a slow drift (a
//   machine warming up, a daily cycle) is not a shift. Two detectors look at each reading's
//   residual r = value - baseline:
//
//   robust_z  score = |r| / scale. Anomalous when score > robust_threshold (default 6). Catches
//             spikes, dropouts and sudden level shifts.
//   ewma      An exponentially weighted moving average of the residuals, z_t = λr_t + (1-λ)z_{t-1}
//             (λ = ewma_lambda, default 0.2), in units of its own standard deviation under no
//             change, sqrt(s² λ/(2-λ) + u²) (an EWMA control chart; s and u below). Anomalous
//             when the score > ewma_threshold (default 4.5). Catches smaller shifts that persist
//             (a bearing running 2σ hot for a dozen readings), which robust_z misses. Residuals
//             enter the EWMA clipped to ± robust_threshold × scale, so a single spike (robust_z's
//             business) cannot hold it off for long. A trend is not a shift: it is in the
//             baseline, not in the residuals.
//
//   The trend lines. Every `rebaseline_every` readings (default 8) two lines are fitted:
//     window fit  the window's readings except the newest rebaseline_every;
//     recent fit  window/4 readings (at least 8) ending rebaseline_every/2 before the newest:
//                 it follows a curve that a line through the whole window cannot (a wave whose
//                 period is a few windows), and is noisier.
//   Leaving the newest readings out means a shift stands out against the lines for a while
//   before they can lean towards it. Both fits are robust and use source time, not reading
//   index (readings may come irregularly; AnomalyMonitor's slopes are per second): the slope
//   starts as the median of the slopes between readings half the fit apart, the level as the
//   median of those pairs' midpoints, the scale as 1.4826 × the median absolute residual; one
//   Huber step (least squares on residuals clipped at 1.5 of that scale) then brings the line
//   within 5% of least squares' precision on normal noise, a spike's pull bounded. s, the fit's
//   scale, is the standard deviation of its residuals winsorized at 3 of the starting scale.
//   Between fits the lines are extrapolated to each reading's time, also across an outage.
//   Each reading is scored against the fit that has been predicting the series better: both
//   predict every reading, and the recent fit takes over when its squared prediction errors have
//   been smaller, on average over the last ~8 windows of readings (each reading's difference
//   counted up to ±2 s², so one event cannot decide), by more than a window's worth of white
//   noise's difference in favour of the window fit.
//   White noise and straight ramps stay on the window fit; a wave whose period is a window to a
//   few moves to the recent fit within its first periods, which may raise an episode or two
//   while it learns.
//   u² is what the baseline itself may be off by, so the limits widen with it: for the recent
//   fit, its prediction variance plus its measured squared prediction error in excess of that
//   and of s² (over ~8 windows); for the window fit, a quarter of the variance its slope adds
//   over a flat median's (all of it would cost a 2σ shift) plus its measured excess error over
//   ~64 windows (a mild curve it follows imperfectly). The prediction variance is taken no
//   further than a fit's time span past its newest reading, so after an outage the limits do not
//   widen until nothing is anomalous. scale = sqrt(s² + u²), with a floor of
//   1e-9 × max(1, |level|): a series that was constant and changes is anomalous (a stuck sensor
//   coming back, a setpoint jump), and a constant one is not.
//   detrend = false (AnomalyOptions) restores the flat baseline: the median and 1.4826 × MAD of
//   the whole window, and the EWMA of the readings against that median. A slow trend then raises
//   episodes (the median lags a ramp by half a window).
//   No verdict before `warmup` readings (default 20) of the series.
//
//   Measured, on Gaussian noise of standard deviation σ with the defaults (20 runs of 100,000
//   readings, 1,000 seeds for the shifts; anomaly_test.cc checks each on fewer):
//     white noise     5.6 anomalous readings and 4 episodes per 100,000 (flat baseline: 6.6, 5)
//     a ramp          whatever its noise alone gives, at any slope (flat baseline at 0.05σ per
//                     reading: an episode every ~45 readings)
//     a 4σ wave       period 1000 readings: white noise's rate, on the window fit. Period 400:
//                     one to a few episodes in its first two periods, then white noise's rate,
//                     on the recent fit; faster waves (~100 readings) take a few more to learn.
//                     (flat baseline: an episode every ~100 readings)
//     a 2σ shift      found by the EWMA after a median of 6 readings, 90% within 13; 2.4% are
//                     absorbed into the line before the EWMA gets there (flat: 5, 12, 0.9%)
//     a 3σ shift      found after a median of 3 readings, 90% within 5, none missed (flat: 3, 4)
//     on the recent fit  wider limits and a line that leans sooner: on a 5σ wave of period 400
//                     a 6σ shift is found (median 3 readings), a 4σ one 78% of the time, a 2σ
//                     one not; spikes and dropouts are found.
//
//   Flags and events. A series becomes flagged at its first anomalous reading: the twin graph's
//   change feed gets a `twin.anomaly` event with the evidence (path, detector, score, threshold,
//   value, baseline, scale, source time), and the flag is visible through the API
//   (GET /digitaltwins/{id}/anomalies, GET /anomalies, and `$anomalies` in
//   GET /digitaltwins/{id}?includeAnomalies=true). Further anomalous readings of the same
//   episode raise no new event; they update the episode's peak score and count. After
//   `clear_after` normal readings in a row (default 10) the flag clears with a
//   `twin.anomalyCleared` event (the episode's start, end, peak and count). The last `recent`
//   episodes per twin (default 20) are kept for the API.
//   Readings of a series older than or as old as the newest one it saw (out of order,
//   redeliveries) are not scored: the detectors assume time order.
//
//   What it does not do: it does not compare readings with served forecasts (a forecast is of
//   step aggregates, a reading is a raw sample with its own noise; accuracy tracking compares
//   forecasts with aggregates instead, see forecast_service.h), it does not flag a slow drift
//   (it follows it; degradation trends are analytics/rul's business), and it keeps no state
//   across restarts (a restarted server warms up and learns again).
//
// How to use it
//   AnomalyMonitor monitor({.graph = &graph});
//   IngestOptions io;  io.observe = IngestObserver(monitor);    // every accepted reading
//   monitor.Observe("machine-1", "temperature", 71.5, source_time);
//   std::optional<TwinAnomalies> a = monitor.Twin("machine-1");  a->ToJson()
//
// Cost: one shard lock, one hash lookup, a few dozen flops and, every 8th reading, the two fits
// (selections over 30 + 30 + 120 and 16 + 16 + 32 doubles, and a few linear passes);
// bench/anomaly_bench reports the cost per reading against the history append. Memory: window ×
// 16 bytes (value and source time) + ~300 bytes per series.
//
// Threads: every method may be called from any thread. Series state lives in 32 shards, each
// under its own mutex; events are published without holding any.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace doppel::twin {
class TwinGraph;
}
namespace doppel::sync {
struct Reading;
}

namespace doppel::analytics {

using AnomalyClock = std::chrono::system_clock;

struct AnomalyOptions {
  std::size_t window = 128;
  std::size_t warmup = 20;
  double robust_threshold = 6.0;
  double ewma_lambda = 0.2;
  double ewma_threshold = 4.5;
  std::size_t clear_after = 10;
  std::size_t rebaseline_every = 8;  // readings between refits of the baseline
  bool detrend = true;  // the trend-following baseline; false: the window's median and MAD
};

// One reading's verdict.
struct Verdict {
  bool scored = false;  // false during warmup
  bool anomalous = false;
  const char* detector = "";  // "robust_z" or "ewma" when anomalous (the higher score relative
                              // to its threshold when both fire)
  double score = 0;           // of `detector`, or the larger relative score when normal
  double threshold = 0;
  double baseline = 0;  // what the reading was expected to be: the trend line at its time
                        // (detrend = false: the window's median)
  double scale = 0;     // robust standard deviation of the reading around the baseline: robust_z
                        // is |value - baseline| / scale
  double ewma = 0;      // the EWMA of the residuals after the reading (detrend = false: of the
                        // readings)
  double slope = 0;     // the trend line's, per unit of time (per second in AnomalyMonitor)
  bool recent_fit = false;  // scored against the recent fit rather than the window fit
};

// The detectors of one series. Plain value type: no locking.
class SeriesDetector {
 public:
  explicit SeriesDetector(const AnomalyOptions& options);
  // A reading taken at time `t`, in any unit (AnomalyMonitor passes seconds since the series'
  // first reading). REQUIRES: t not less than the previous reading's; use this or the other
  // overload for a detector, not both.
  Verdict Observe(double x, double t);
  // A reading of an evenly spaced series: its time is its index, count().
  Verdict Observe(double x) { return Observe(x, static_cast<double>(count_)); }
  std::uint64_t count() const { return count_; }

 private:
  // A straight line fitted to some readings of the window.
  struct Line {
    double level = 0, slope = 0, center = 0;  // the line is level + slope × (t - center)
    double scale = 0;                         // robust standard deviation of its residuals
    double var_level = 0, var_slope = 0;      // of level and slope, in scale² (and per time²)
    double first = 0, last = 0;               // times of its oldest and newest reading
    std::size_t n = 0;
    double At(double t) const { return level + slope * (t - center); }
    // Of At(t), in scale², taken no further than one span past `last` (after an outage the
    // line's uncertainty would otherwise grow without bound and hide every reading).
    double Variance(double t) const;
    // The robust line through (t[i], x[i]), i < n, t not decreasing; `work` is scratch space.
    static Line Fit(const double* x, const double* t, std::size_t n, std::vector<double>& work);
  };
  // One of the two fits and what follows it between refits.
  struct Fit {
    Line line;
    double ewma = 0;    // of the residuals against it
    double excess = 0;  // measured squared prediction error beyond noise and Variance, in scale²
  };
  struct Point {
    double x, t;
  };
  void Refit();
  Verdict ObserveFlat(double x);

  const AnomalyOptions* options_;
  std::vector<Point> ring_;
  std::size_t next_ = 0;
  std::uint64_t count_ = 0;
  std::size_t since_baseline_ = 0;  // readings scored against the current fits (0: none yet)
  Fit window_, recent_;
  // Decaying sum (and its weight) of the recent fit's squared prediction error minus the window
  // fit's: the recent fit scores the readings while the sum, plus up to a window's worth of
  // white noise's mean difference, is negative.
  double comparison_sum_ = 0, comparison_weight_ = 0;
  double noise_comparison_;  // the difference's mean on white noise
  // detrend = false: the window's median and scale, and the EWMA of the readings.
  double median_ = 0, flat_scale_ = 0, flat_ewma_ = 0;
};

// One anomaly episode of a series: from its first anomalous reading to the reading that cleared
// it (open while `end` is empty).
struct AnomalyEpisode {
  std::string path;  // element path: "temperature", "component/name"
  std::string detector;
  double score = 0;  // first anomalous reading's
  double threshold = 0;
  double value = 0;  // first anomalous reading's
  double baseline = 0;
  double scale = 0;
  double peak_score = 0;
  std::uint64_t anomalous_readings = 0;
  AnomalyClock::time_point start;
  std::optional<AnomalyClock::time_point> end;

  boost::json::value ToJson() const;
};

struct SeriesAnomalyStats {
  std::string path;
  std::uint64_t readings = 0, anomalous_readings = 0, episodes = 0;
  bool flagged = false;
};

struct TwinAnomalies {
  std::string twin;
  std::vector<AnomalyEpisode> active;  // by path
  std::vector<AnomalyEpisode> recent;  // ended episodes, newest first
  std::vector<SeriesAnomalyStats> series;

  boost::json::value ToJson() const;
};

struct AnomalyTotals {
  std::uint64_t readings = 0, scored = 0, anomalous_readings = 0, episodes = 0;
  std::map<std::string, std::uint64_t> episodes_by_detector;
  std::uint64_t active = 0, series = 0;
};

struct AnomalyMonitorOptions {
  twin::TwinGraph* graph = nullptr;  // events go to its change feed; null: none
  AnomalyOptions detector;
  std::size_t recent = 20;  // ended episodes kept per twin
};

class AnomalyMonitor {
 public:
  explicit AnomalyMonitor(AnomalyMonitorOptions options = {});
  ~AnomalyMonitor();
  AnomalyMonitor(const AnomalyMonitor&) = delete;
  AnomalyMonitor& operator=(const AnomalyMonitor&) = delete;

  // One reading of `twin`'s element `path`. Non-finite values are ignored.
  void Observe(std::string_view twin, std::string_view path, double value,
               AnomalyClock::time_point source_time);
  // The same for a JSON value: numbers are observed, anything else (boolean, string, object)
  // is ignored.
  void ObserveJson(std::string_view twin, std::string_view path, const boost::json::value& value,
                   AnomalyClock::time_point source_time);
  // nullopt when no reading of the twin was seen.
  std::optional<TwinAnomalies> Twin(std::string_view twin) const;
  // Every open episode, by twin then path.
  std::vector<std::pair<std::string, AnomalyEpisode>> Active() const;
  AnomalyTotals Totals() const;
  void Forget(std::string_view twin);  // a deleted twin

  const AnomalyMonitorOptions& options() const { return options_; }

 private:
  struct Series;
  struct TwinState;
  struct Shard;
  Shard& ShardOf(std::string_view twin) const;

  AnomalyMonitorOptions options_;
  std::unique_ptr<Shard[]> shards_;
};

// What ingest calls for every reading it accepted (sync::IngestOptions::observe): the reading's
// numeric value goes to `monitor`.
std::function<void(const sync::Reading&)> IngestObserver(AnomalyMonitor& monitor);

}  // namespace doppel::analytics
