// doppel::analytics — streaming anomaly detection on ingest. The component's manual.
//
// What it does
//   Every numeric reading ingest accepts (Property or Telemetry, integer or floating point) goes
//   through a detector for its series (twin + element path). Two detectors look at each reading:
//
//   robust_z  The reading against the last `window` (default 128) readings of the series before it:
//             score = |x - median| / scale, scale = 1.4826 × MAD (median absolute deviation,
//             which estimates the standard deviation for normal data and ignores outliers).
//             Anomalous when score > robust_threshold (default 6). Catches spikes, dropouts and
//             sudden level shifts.
//   ewma      An exponentially weighted moving average of the readings, z_t = λx_t + (1-λ)z_{t-1}
//             (λ = ewma_lambda, default 0.2), against the same median, in units of its own
//             standard deviation under no change, scale × sqrt(λ / (2 - λ)) (an EWMA control
//             chart). Anomalous when the score > ewma_threshold (default 4.5). Catches smaller shifts
//             that persist (a bearing running 2σ hot for a dozen readings), which robust_z
//             misses. Readings enter the EWMA clipped to median ± robust_threshold × scale, so a
//             single spike (robust_z's business) cannot hold it off for long.
//   The scale has a floor of 1e-9 × max(1, |median|), so a series that was constant and changes
//   is anomalous (a stuck sensor coming back, a setpoint jump), and a constant one is not.
//   No verdict before `warmup` readings (default 20) of the series. The median and the scale are
//   recomputed every `rebaseline_every` readings (default 8), not at every one: a baseline at
//   most 8 readings old scores as well, and costs an eighth.
//
//   Flags and events. A series becomes flagged at its first anomalous reading: the twin graph's
//   change feed gets a `twin.anomaly` event with the evidence (path, detector, score, threshold,
//   value, baseline median, scale, source time), and the flag is visible through the API
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
//   forecasts with aggregates instead, see forecast_service.h), and it keeps no state across
//   restarts (a restarted server warms up again).
//
// How to use it
//   AnomalyMonitor monitor({.graph = &graph});
//   IngestOptions io;  io.observe = IngestObserver(monitor);    // every accepted reading
//   monitor.Observe("machine-1", "temperature", 71.5, source_time);
//   std::optional<TwinAnomalies> a = monitor.Twin("machine-1");  a->ToJson()
//
// Cost: one shard lock, one hash lookup and, every 8th reading, two partial sorts of `window`
// doubles (bench/anomaly_bench reports the cost per reading). Memory: window × 8 bytes + ~200 bytes per
// series.
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
  std::size_t rebaseline_every = 8;  // readings between recomputations of median and MAD
};

// One reading's verdict.
struct Verdict {
  bool scored = false;     // false during warmup
  bool anomalous = false;
  const char* detector = "";  // "robust_z" or "ewma" when anomalous (the higher score relative
                              // to its threshold when both fire)
  double score = 0;      // of `detector`, or the larger relative score when normal
  double threshold = 0;
  double baseline = 0;   // median of the window before the reading
  double scale = 0;      // robust standard deviation of that window
  double ewma = 0;       // the EWMA after the reading
};

// The detectors of one series. Plain value type: no locking.
class SeriesDetector {
 public:
  explicit SeriesDetector(const AnomalyOptions& options);
  Verdict Observe(double x);
  std::uint64_t count() const { return count_; }

 private:
  const AnomalyOptions* options_;
  std::vector<double> ring_, scratch_;
  std::size_t next_ = 0;
  std::uint64_t count_ = 0;
  double ewma_ = 0;
  double median_ = 0, scale_ = 0;   // the baseline, recomputed every rebaseline_every readings
  std::size_t since_baseline_ = 0;  // readings scored against it (0: none yet)
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
