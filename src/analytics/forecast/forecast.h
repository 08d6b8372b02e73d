// doppel::analytics::forecast — point forecasts with calibrated prediction intervals for one
// regular numeric series (a twin property's history at a fixed step).
//
// Input. A Series: values at t0, t0 + step, t0 + 2·step, ... (what the history store returns for
// `step=…&agg=mean`); NaN marks a step without data. ±Inf is refused.
//
// Families. Each is fitted by its own method:
//   seasonal_naive         ŷ(t+k) = y(t+k−m·⌈k/m⌉): the value one season ago (m = 1: the last
//                          value). No parameters; the baseline every other family must beat.
//   exponential_smoothing  additive state space (error-correction form): level only, damped
//                          trend, season only, or Holt-Winters (damped trend + season). α, β, γ,
//                          φ ∈ [0.8, 1] minimize the one-step-ahead SSE (Nelder-Mead on a
//                          logistic reparametrization with β ≤ α, γ ≤ 1−α); initial states from
//                          the first two seasons; the variant with the lowest AIC is kept.
//   autoregressive         AR(p) with intercept by least squares (Eigen); p ∈ 1..p_max chosen by
//                          AIC on a common sample; p_max = m+2 for a seasonal series, else 10,
//                          and at most a quarter of the data. Multi-step forecasts recursively.
//   xgboost                gradient-boosted trees (XGBoost, through analytics/rul's
//                          xgboost_booster.h) on the residual of a least-squares line: features
//                          are lagged residuals (1,2,3,m−1,m,m+1,2m; or 1..8 without a season),
//                          hour of day and day of week of the target time (UTC, from t0 + i·step,
//                          when step < 1 day / < 1 week) and the position in the season.
//                          Recursive multi-step forecasts; the line carries the trend (trees
//                          cannot extrapolate).
//
// Season length m (ForecastOptions::season = 0): if one day is a whole number d of steps with
// 2 ≤ d ≤ 288 (1 h → 24, 15 min → 96, 5 min → 288) and the series holds at least 3·d values,
// m = d; a 1-day step gives 7 the same way; otherwise the lag in 2..min(n/3, 500) where the
// autocorrelation of the first differences has its highest local peak, if that peak exceeds
// 0.3 (differences: a smooth trend would otherwise correlate at every lag); otherwise m = 1
// (no season). 1 min steps thus get no season unless the caller says (season = 1440), or the
// autocorrelation shows one.
//
// Selection and backtest. Rolling origin: the last `origins` positions that still have
// `horizon` actual values after them (at most ForecastOptions::max_origins, at least
// min_origins) each get an h-step forecast. The model is re-fitted at the start of each of
// `refits` contiguous blocks of origins on all data before that origin, and inside a block its
// parameters stay fixed while its state moves on with the actual values. The family with the
// lowest MAE over all origins and steps is chosen; when MAEs are within 0.1% of each other the
// cheaper family wins, in the order seasonal_naive, autoregressive, exponential_smoothing,
// xgboost. A family that needs more training data than the first origin has is skipped (the
// report says why). The chosen family is then re-fitted on the whole series.
//
// Intervals (split conformal, per horizon step k). The backtest's absolute errors of the chosen
// family at step k (one per origin, n of them) give the half-width: the ⌈(n+1)·level⌉-th smallest,
// i.e. the finite-sample corrected quantile. For exchangeable errors a new error at step k is
// at most that with probability ≥ level. When n is too small for the rank (level > n/(n+1),
// e.g. 99.9% with 100 origins) the half-width is the largest error times ⌈(n+1)·level⌉/n and the
// band is marked calibrated = false. Every half-width is at least min_interval_scale × the mean
// |value| (1 if that is 0), so no interval has zero width. The backtest report's coverage is
// honest, not in-sample: each origin's interval comes only from errors already observed at that
// origin (sequential conformal), and origins with too few such errors are not counted.
//
// Bad input.
//   * Leading and trailing NaN are dropped (Forecast::start says where the forecast begins);
//     interior runs of at most max_gap NaN are linearly interpolated; a longer run, or more than
//     max_gap_fraction of the values missing, is FORECAST_GAPS.
//   * A constant series (max − min ≤ 1e−12·max(1, max |value|)) is forecast by seasonal_naive
//     with m = 1, i.e. the constant, with intervals of the minimum width; the other families are
//     skipped ("constant series") since they can only agree.
//   * Too little history is FORECAST_TOO_SHORT; the message states the minimum, which is
//     max(2m, 10) + horizon + min_origins − 1 values after trimming.
//
// Error codes (Status::code):
//   FORECAST_BAD_OPTIONS  ForecastOptions or Series fields out of range (message names the field)
//   FORECAST_BAD_VALUE    a value is ±Inf (message: index and time)
//   FORECAST_GAPS         too many missing values (message: where and how long the worst run is)
//   FORECAST_TOO_SHORT    too little history (message: how much there is, the minimum)
//   FORECAST_HORIZON      horizon < 1, > 10000, or Forecast(h) beyond the fitted horizon
//   FORECAST_MODEL_IO     FromJson: not a forecaster document, other version, bad field (names it)
//   FORECAST_XGBOOST      XGBoost refused a call (message: XGBGetLastError())
//
// Usage:
//   Series s{.t0_ms = …, .step_ms = 3'600'000, .values = {…}};
//   auto f = Forecaster::Fit(s, ForecastOptions{.horizon = 24});
//   auto fc = f->Predict();             // fc->mean[k], fc->bands[i].low[k] / high[k]
//   f->report();                        // the backtest of every family, the chosen one
//   std::string doc = f->ToJson();  auto same = Forecaster::FromJson(doc);
//
// Guarantees. Deterministic: the same series and options give the same forecaster (fixed seed,
// one XGBoost thread by default). FromJson(ToJson()) forecasts bit-identically (model state is
// stored as exact decimal strings: Boost.JSON 1.81 does not round-trip every double). A
// Forecaster may be shared between threads: Forecast is const and serialized inside for
// XGBoost. It forecasts from the end of its training data; to forecast from newer data, fit
// again (a fit of the cheap families costs milliseconds, see bench/forecast_bench).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace doppel::analytics::forecast {

// A regular series: values[i] is at t0_ms + i·step_ms (milliseconds since the Unix epoch, UTC).
struct Series {
  std::int64_t t0_ms = 0;
  std::int64_t step_ms = 0;    // > 0
  std::vector<double> values;  // NaN: no data at that step
};

enum class Family { kSeasonalNaive, kExponentialSmoothing, kAutoregressive, kXgboost };

// "seasonal_naive", "exponential_smoothing", "autoregressive", "xgboost" (stable: in JSON).
std::string_view FamilyName(Family family);
// The inverse; FORECAST_BAD_OPTIONS for an unknown name.
core::Result<Family> ParseFamily(std::string_view name);

struct ForecastOptions {
  int horizon = 24;                           // steps forecast (and backtested); 1..10000
  std::vector<double> levels = {0.80, 0.95};  // interval levels, each in (0, 1)
  int season = 0;                             // 0: detect (see above); 1: none; ≥ 2: this length
  // Candidate families (at least one, distinct). One family: no selection, but still the
  // backtest (it calibrates the intervals).
  std::vector<Family> families = {Family::kSeasonalNaive, Family::kExponentialSmoothing,
                                  Family::kAutoregressive, Family::kXgboost};
  int min_origins = 20;           // ≥ 2; 20 calibrates 95% without widening
  int max_origins = 100;          // ≥ min_origins
  int refits = 5;                 // ≥ 1: re-estimations over the backtest (cost: refits + 1 fits)
  int max_gap = 3;                // longest run of NaN interpolated
  double max_gap_fraction = 0.2;  // most of the values that may be NaN
  double min_interval_scale = 1e-6;
  int max_ar_order = 0;  // 0: automatic (see autoregressive above)

  // XGBoost (reg:squarederror, tree_method hist).
  int xgb_rounds = 150;
  double xgb_learning_rate = 0.1;
  int xgb_max_depth = 4;
  std::uint64_t seed = 1;
  int threads = 1;  // XGBoost nthread, fixed so that results do not depend on the machine
};

// One interval level over the horizon.
struct Band {
  double level = 0;
  std::vector<double> low, high;  // one per step
  bool calibrated = true;         // false: widened, too few backtest errors for this level
};

struct Forecast {
  std::int64_t start_ms = 0;  // time of mean[0]: one step after the last value fitted
  std::int64_t step_ms = 0;
  std::vector<double> mean;  // point forecasts, one per step
  std::vector<Band> bands;   // in ForecastOptions::levels order
};

struct LevelCoverage {
  double level = 0;
  double coverage = 0;      // share of counted backtest forecasts inside their interval
  std::size_t counted = 0;  // forecasts counted (those with enough earlier errors)
};

// One family in the backtest.
struct FamilyScore {
  Family family = Family::kSeasonalNaive;
  std::string skipped;      // empty: backtested; else why not ("needs 78 values to fit, …")
  std::string description;  // of the last backtest fit, e.g. "AR(2)", "Holt-Winters damped, m=24"
  double mae = 0, rmse = 0;
  // Mean absolute percentage error, %. nullopt (JSON null) when undefined: some actual value is
  // near zero (|actual| < 1e−3 × the mean |actual|), where it would explode.
  std::optional<double> mape;
  double smape = 0;  // symmetric MAPE, % (0..200): mean of 200·|F−A|/(|F|+|A|), 0 when both 0
  std::vector<LevelCoverage> coverage;
  std::size_t forecasts = 0;  // origins × horizon
  double seconds = 0;         // the family's backtest (fits and forecasts)
};

struct BacktestReport {
  int horizon = 0;
  std::size_t origins = 0;
  std::size_t first_origin = 0;  // index (after trimming) of the first origin
  int refits = 0;
  Family chosen = Family::kSeasonalNaive;
  std::vector<FamilyScore> families;  // in ForecastOptions::families order
};

// What the fitted forecaster is (also in its JSON).
struct ForecasterInfo {
  Family family = Family::kSeasonalNaive;
  std::string description;
  int season = 1;
  std::string season_source;  // "given", "step", "autocorrelation", "none", "constant series"
  std::int64_t t0_ms = 0;     // of the training data after trimming leading NaN
  std::int64_t step_ms = 0;
  std::size_t length = 0;        // training values after trimming
  std::size_t interpolated = 0;  // NaN filled by interpolation
  bool constant = false;
  int horizon = 0;
  std::vector<double> levels;
  double train_seconds = 0;  // the whole Fit: backtest of every family and the final fit
  // Fitted parameters and state by name, e.g. alpha, beta, gamma, phi, level, trend,
  // season[0..m−1] (season[j]: the seasonal term of times with index ≡ j mod m); intercept,
  // phi1..phip; trend_intercept, trend_slope, rounds. For people and tests.
  std::vector<std::pair<std::string, double>> parameters;
};

class Forecaster {
 public:
  // Checks and prepares the series, detects the season, backtests every candidate family,
  // chooses one, fits it on the whole series and calibrates its intervals.
  // Errors: FORECAST_BAD_OPTIONS, FORECAST_BAD_VALUE, FORECAST_GAPS, FORECAST_TOO_SHORT,
  // FORECAST_HORIZON, FORECAST_XGBOOST.
  static core::Result<Forecaster> Fit(const Series& series, const ForecastOptions& options);

  // The forecast of `horizon` steps (0: the fitted horizon) after the training data.
  // Errors: FORECAST_HORIZON (beyond the fitted horizon: no calibrated intervals there),
  // FORECAST_XGBOOST.
  core::Result<Forecast> Predict(int horizon = 0) const;

  const ForecasterInfo& info() const;
  const BacktestReport& report() const;

  // A JSON document with everything needed to forecast (family, parameters, state, the last
  // values the family reads, interval half-widths per step and level, step and t0, the backtest
  // report, training time; an XGBoost booster as base64 of its UBJSON model).
  std::string ToJson() const;
  // Errors: FORECAST_MODEL_IO (message names the bad field), FORECAST_XGBOOST.
  static core::Result<Forecaster> FromJson(std::string_view json);

  Forecaster(Forecaster&&) noexcept;
  Forecaster& operator=(Forecaster&&) noexcept;
  ~Forecaster();

 private:
  struct Impl;
  explicit Forecaster(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Season length detection on its own (see above): m ≥ 2, or 1 for none; `source` gets "step",
// "autocorrelation" or "none". `values` must be finite.
int DetectSeason(std::int64_t step_ms, const std::vector<double>& values, std::string* source);

}  // namespace doppel::analytics::forecast
