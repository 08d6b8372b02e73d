// doppel::analytics::forecast — forecasts of twin properties served from history, a versioned
// model registry, and accuracy tracking of what was served. The manual of ForecastService.
//
// Serving. Serve(request) forecasts `path` of `twin` at a fixed `step` (buckets aligned on
// multiples of the step since the epoch, as the history store's aggregates): the training data
// are the step means (agg=mean) of the last `history` (default 500 steps) up to the last
// complete bucket, i.e. the bucket the newest point falls in is left out while it can still
// grow. The registry's newest model for (twin, path, step) is used when it was trained on data
// up to that same bucket with the same horizon, levels and family choice; otherwise a model is
// fitted (Forecaster::Fit: family chosen by rolling-origin backtest, conformal intervals) and
// stored as the next version. `refit = false` serves the newest model as it is, even when
// newer data exist (its forecast then starts where its data ended). `Train` always fits.
//
// Registry. Each fitted model is a version: `fc/m/<twin>\x1f<path>\x1f<step ns>\x1f<version>` in
// the store (when one is given) holding the forecaster's JSON (forecast.h: ToJson) with when and
// on what it was trained. The last `keep_versions` (default 10) versions per series and step are
// kept; older ones are deleted. Deleting a twin deletes its models (Forget).
//
// Accuracy tracking. Every served forecast is kept (`fc/s/...`) until each of its steps has been
// compared with what happened: the history mean of that step's bucket, once the bucket is
// complete (the series has a point at or after its end, or the clock is `grace` past it). A step
// whose bucket has no data is not counted. Per twin and family, and per family over all twins:
// n, MAE, RMSE, bias (mean forecast − actual) and the share of actuals inside each served
// interval level. Evaluation runs when accuracy is read (Accuracy, /metrics), and on every
// Serve; its counters are stored (`fc/a/...`) and survive a restart. Served forecasts older than
// their horizon plus `grace` are finished whatever their data.
//
// Retraining schedules. SetSchedule(request, every) keeps a series' model fresh without anyone
// asking: every `every` (at least 1 s), a new version is trained with the request's parameters,
// unless the newest version of (twin, path, step) was trained on data up to the same last
// complete bucket with the same horizon, levels and family choice. That run is "skipped": there
// is nothing new to learn, and the registry does not fill with copies. One schedule per twin and
// path; setting one again replaces it. Schedules are stored (`fc/r/<twin>\x1f<path>`) and resume
// after a restart. A due time missed while the server was down runs once, then the schedule goes
// on from now (no burst of catch-up runs). Each schedule keeps its last run's time, result
// (trained, skipped or failed with the error's code and message) and version, and counts of each.
// Forget(twin) deletes the twin's schedules with its models.
//
// Worker. The service owns one worker thread (ForecastServiceOptions::worker). It runs due
// schedules and the jobs Submit() queues: the HTTP routes submit every forecast and training
// request there, so a fit (about half a second with XGBoost) never holds an I/O thread. The queue
// holds at most `max_queued` jobs; Submit returns false beyond that (FORECAST_BUSY, 503).
// Without the thread (worker = false, tests), RunDueSchedules() runs the due schedules on the
// caller's thread.
//
// Errors: the forecaster's FORECAST_* codes (forecast.h); FORECAST_NO_DATA (404) when the
// series has no history or no complete bucket; FORECAST_NO_MODEL (404) for refit = false without
// a model; FORECAST_BAD_OPTIONS for bad steps, history windows or levels; the history store's
// TSDB_* codes; STORE_IO when a model cannot be stored (the forecast is not served).
//
// FORECAST_SCHEDULE_NOT_FOUND (404) when a schedule to delete does not exist; FORECAST_BUSY
// (503) when the worker's queue is full.
//
// Threads: every method may be called from any thread (one mutex; fits run outside it).
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "analytics/forecast/forecast.h"
#include "core/status.h"

namespace doppel::store {
class Store;
}
namespace doppel::tsdb {
class HistoryStore;
}

namespace doppel::analytics::forecast {

struct ForecastRequest {
  std::string twin, path;
  std::int64_t step_ns = std::int64_t{60} * 1'000'000'000;  // 1 min
  int horizon = 30;
  std::int64_t history_ns = 0;  // 0: 500 steps
  std::vector<double> levels = {0.80, 0.95};
  std::optional<Family> family;  // none: chosen by backtest
  bool refit = true;             // fit when the newest model is not current
};

struct ModelVersion {
  std::string twin, path;
  std::int64_t step_ns = 0;
  std::uint64_t version = 0;
  std::int64_t trained_at_ns = 0;
  std::int64_t data_end_ns = 0;  // end of the last bucket trained on (exclusive)
  int horizon = 0;
  std::vector<double> levels;
  std::string family_choice;  // "auto" or the family asked for
  std::string model;          // Forecaster::ToJson

  boost::json::value Summary() const;  // everything but the model, plus its family and report
};

struct ServedForecast {
  std::string id;  // of the served forecast (accuracy tracking)
  ModelVersion model;
  bool trained = false;  // fitted for this request
  Forecast forecast;
  ForecasterInfo info;
  BacktestReport report;

  boost::json::value ToJson() const;
};

struct AccuracyStats {
  std::uint64_t n = 0;
  double abs_sum = 0, sq_sum = 0, err_sum = 0;
  std::map<double, std::uint64_t> covered;  // level -> actuals inside that interval
  std::map<double, std::uint64_t> counted;  // level -> actuals compared with that interval

  boost::json::value ToJson() const;
};

struct AccuracyReport {
  std::map<std::string, AccuracyStats> by_family;                        // family ->
  std::map<std::pair<std::string, std::string>, AccuracyStats> by_twin;  // (twin, family) ->
  std::uint64_t pending = 0;  // served forecasts with steps still to compare

  boost::json::value ToJson(std::optional<std::string> twin = std::nullopt) const;
};

// A retraining schedule of one series (see "Retraining schedules" above).
struct RetrainSchedule {
  ForecastRequest request;  // refit is ignored
  std::int64_t every_ns = 0;
  std::int64_t created_ns = 0;
  std::int64_t next_run_ns = 0;
  std::int64_t last_run_ns = 0;  // 0: never ran
  std::string last_result;       // "", "trained", "skipped" or "failed"
  std::string last_error;        // "<CODE>: <message>" of the last failure
  std::uint64_t last_version = 0;
  std::uint64_t trained = 0, skipped = 0, failed = 0;
  std::uint64_t generation = 0;  // the service's, not stored

  boost::json::value ToJson() const;  // the API's shape (durations and times as text)
};

struct RetrainTotals {
  std::uint64_t trained = 0, skipped = 0, failed = 0;  // scheduled runs since start
  std::size_t schedules = 0;
  std::size_t queued = 0;  // jobs waiting for the worker
};

struct ForecastServiceOptions {
  tsdb::HistoryStore* history = nullptr;  // required
  store::Store* store = nullptr;          // null: registry and tracking in memory only
  std::size_t keep_versions = 10;
  std::chrono::seconds grace{60};
  std::function<std::int64_t()> now_ns;  // default: the system clock
  bool worker = true;                    // start the worker thread
  std::size_t max_queued = 64;           // Submit's bound
};

class ForecastService {
 public:
  // Loads the registry and the tracked forecasts from the store.
  static core::Result<std::unique_ptr<ForecastService>> Open(ForecastServiceOptions options);

  core::Result<ServedForecast> Serve(const ForecastRequest& request);
  // Fits now and stores a new version (a forecast is not served, nothing is tracked).
  core::Result<ModelVersion> Train(const ForecastRequest& request);
  // The versions of `twin`'s models, newest first per path and step.
  std::vector<ModelVersion> Models(std::string_view twin) const;
  AccuracyReport Accuracy();
  // Deletes the twin's models, tracked forecasts and schedules.
  void Forget(std::string_view twin);

  // Checks the request's options (not its data: a schedule may precede the data), stores the
  // schedule and returns it; its first run is `every` from now.
  core::Result<RetrainSchedule> SetSchedule(const ForecastRequest& request,
                                            std::chrono::nanoseconds every);
  // The schedules of `twin` (all twins without one), by twin and path.
  std::vector<RetrainSchedule> Schedules(std::optional<std::string_view> twin = {}) const;
  core::Status DeleteSchedule(std::string_view twin, std::string_view path);
  // Runs every schedule due at now_ns() (the worker calls this); returns how many ran.
  std::size_t RunDueSchedules();
  RetrainTotals Totals() const;

  // Queues `job` for the worker thread; false when the queue is full or the service is stopping
  // (the job is not run). Without a worker the job runs now on the caller's thread.
  bool Submit(std::function<void()> job);

  explicit ForecastService(ForecastServiceOptions options);  // use Open
  ~ForecastService();
  ForecastService(const ForecastService&) = delete;
  ForecastService& operator=(const ForecastService&) = delete;

 private:
  struct Pending;
  struct Window;
  core::Result<Window> DataWindow(const ForecastRequest& r) const;
  core::Result<ModelVersion> Fit(const ForecastRequest& r, const Window& w);
  // The newest version of the request's series, if it was trained on data up to `end_ns` with
  // the request's horizon (or a longer one), levels and family choice.
  std::optional<ModelVersion> CurrentModel(const ForecastRequest& r, std::int64_t end_ns) const;
  void Evaluate();
  void SaveAccuracy(const std::string& family, const std::string& twin);
  void SaveSchedule(const RetrainSchedule& s);
  void WorkerLoop();

  ForecastServiceOptions options_;
  mutable std::mutex mu_;
  // (twin, path, step) -> versions, oldest first
  std::map<std::tuple<std::string, std::string, std::int64_t>, std::vector<ModelVersion>> models_;
  std::map<std::string, Pending> pending_;  // by id
  AccuracyReport accuracy_;
  std::uint64_t next_served_ = 0;
  std::map<std::pair<std::string, std::string>, RetrainSchedule> schedules_;  // (twin, path) ->
  RetrainTotals totals_;

  std::uint64_t schedule_generation_ = 0;  // tells a replaced schedule from its successor
  mutable std::mutex work_mu_;             // guards jobs_ and stop_; never held with mu_
  std::condition_variable work_cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread worker_;  // last: started once everything above exists
};

}  // namespace doppel::analytics::forecast
