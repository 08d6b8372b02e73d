#include "analytics/forecast/forecast.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>
#include <set>

#include "analytics/forecast/families.h"
#include "analytics/rul/xgboost_booster.h"
#include "core/json.h"

namespace doppel::analytics::forecast {
namespace json = core::json;
using internal::Context;
using internal::Model;

namespace {

constexpr int kFormatVersion = 1;
constexpr int kMaxHorizon = 10000;
constexpr std::int64_t kDayMs = 86'400'000;
constexpr int kMaxStepSeason = 288;
constexpr std::size_t kMaxAcfLag = 500;
constexpr double kAcfThreshold = 0.3;
constexpr double kTieTolerance = 1e-3;  // relative MAE difference treated as a tie
constexpr double kMapeNearZero = 1e-3;  // |actual| below this × mean |actual|: MAPE undefined

core::Status BadOptions(const std::string& message) {
  return core::Status("FORECAST_BAD_OPTIONS", message);
}

core::Status ValidateOptions(const ForecastOptions& o) {
  if (o.horizon < 1 || o.horizon > kMaxHorizon) {
    return core::Status("FORECAST_HORIZON",
                        fmt::format("horizon {} is outside 1..{}", o.horizon, kMaxHorizon));
  }
  if (o.levels.empty()) return BadOptions("levels: at least one interval level is needed");
  for (double l : o.levels) {
    if (!(l > 0 && l < 1)) return BadOptions(fmt::format("levels: {} is not in (0, 1)", l));
  }
  if (o.season < 0) return BadOptions("season must be 0 (detect), 1 (none) or a length ≥ 2");
  if (o.families.empty()) return BadOptions("families: at least one family is needed");
  std::set<Family> seen;
  for (Family f : o.families) {
    if (!seen.insert(f).second) {
      return BadOptions(fmt::format("families: {} is listed twice", FamilyName(f)));
    }
  }
  if (o.min_origins < 2) return BadOptions("min_origins must be at least 2");
  if (o.max_origins < o.min_origins) return BadOptions("max_origins must be ≥ min_origins");
  if (o.refits < 1) return BadOptions("refits must be at least 1");
  if (o.max_gap < 0) return BadOptions("max_gap must be ≥ 0");
  if (!(o.max_gap_fraction >= 0 && o.max_gap_fraction < 1)) {
    return BadOptions("max_gap_fraction must be in [0, 1)");
  }
  if (!(o.min_interval_scale >= 0)) return BadOptions("min_interval_scale must be ≥ 0");
  if (o.max_ar_order < 0) return BadOptions("max_ar_order must be ≥ 0 (0: automatic)");
  if (o.xgb_rounds < 1) return BadOptions("xgb_rounds must be at least 1");
  if (!(o.xgb_learning_rate > 0 && o.xgb_learning_rate <= 1)) {
    return BadOptions("xgb_learning_rate must be in (0, 1]");
  }
  if (o.xgb_max_depth < 1 || o.xgb_max_depth > 16) {
    return BadOptions("xgb_max_depth must be in 1..16");
  }
  if (o.threads < 1) return BadOptions("threads must be at least 1");
  return core::Status::Ok();
}

// The series after trimming and interpolation.
struct Prepared {
  std::int64_t t0_ms = 0;
  std::vector<double> y;
  std::size_t interpolated = 0;
};

core::Result<Prepared> Prepare(const Series& s, const ForecastOptions& o) {
  if (s.step_ms <= 0) return BadOptions(fmt::format("step_ms {} is not positive", s.step_ms));
  const std::vector<double>& v = s.values;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (std::isinf(v[i])) {
      return core::Status("FORECAST_BAD_VALUE",
                          fmt::format("value {} (time {} ms) is infinite; NaN marks a gap", i,
                                      s.t0_ms + static_cast<std::int64_t>(i) * s.step_ms));
    }
  }
  std::size_t first = 0, last = v.size();
  while (first < last && std::isnan(v[first])) ++first;
  while (last > first && std::isnan(v[last - 1])) --last;
  Prepared p;
  p.t0_ms = s.t0_ms + static_cast<std::int64_t>(first) * s.step_ms;
  p.y.assign(v.begin() + static_cast<std::ptrdiff_t>(first),
             v.begin() + static_cast<std::ptrdiff_t>(last));
  std::size_t missing = 0, worst = 0, worst_at = 0;
  for (std::size_t i = 0; i < p.y.size();) {
    if (!std::isnan(p.y[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (std::isnan(p.y[j])) ++j;  // the trimmed series ends with a value
    missing += j - i;
    if (j - i > worst) worst = j - i, worst_at = i;
    i = j;
  }
  if (worst > static_cast<std::size_t>(o.max_gap)) {
    return core::Status(
        "FORECAST_GAPS",
        fmt::format("{} consecutive values are missing from time {} ms; at most {} (max_gap) are "
                    "interpolated",
                    worst, p.t0_ms + static_cast<std::int64_t>(worst_at) * s.step_ms, o.max_gap));
  }
  if (static_cast<double>(missing) > o.max_gap_fraction * static_cast<double>(p.y.size())) {
    return core::Status("FORECAST_GAPS",
                        fmt::format("{} of {} values are missing; at most {:.0f}% "
                                    "(max_gap_fraction) may be",
                                    missing, p.y.size(), o.max_gap_fraction * 100));
  }
  for (std::size_t i = 0; i < p.y.size(); ++i) {
    if (!std::isnan(p.y[i])) continue;
    std::size_t j = i;
    while (std::isnan(p.y[j])) ++j;
    const double a = p.y[i - 1], b = p.y[j], span = static_cast<double>(j - i + 1);
    for (std::size_t k = i; k < j; ++k)
      p.y[k] = a + (b - a) * static_cast<double>(k - i + 1) / span;
    i = j;
  }
  p.interpolated = missing;
  return p;
}

// The ⌈(n+1)·level⌉-th smallest score (split conformal); with too few scores for that rank, the
// largest times rank/n and *calibrated = false.
double ConformalQuantile(std::vector<double> scores, double level, bool* calibrated) {
  const std::size_t n = scores.size();
  if (n == 0) {
    *calibrated = false;
    return std::numeric_limits<double>::infinity();
  }
  const auto rank = static_cast<std::size_t>(std::ceil(static_cast<double>(n + 1) * level - 1e-9));
  if (rank > n) {
    *calibrated = false;
    return *std::max_element(scores.begin(), scores.end()) * static_cast<double>(rank) /
           static_cast<double>(n);
  }
  *calibrated = true;
  const std::size_t r = std::max<std::size_t>(rank, 1);
  std::nth_element(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(r - 1),
                   scores.end());
  return scores[r - 1];
}

int CostRank(Family f) {
  switch (f) {
    case Family::kSeasonalNaive:
      return 0;
    case Family::kAutoregressive:
      return 1;
    case Family::kExponentialSmoothing:
      return 2;
    case Family::kXgboost:
      return 3;
  }
  return 4;
}

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// The backtest of one family: its scores and absolute errors[k][i] (step k, origin i).
struct FamilyRun {
  FamilyScore score;
  std::vector<std::vector<double>> errors;
};

struct Plan {
  std::size_t first = 0, count = 0;  // origins first .. first+count−1
  int blocks = 1;
};

core::Result<FamilyRun> Backtest(Family family, const std::vector<double>& y, const Plan& plan,
                                 const Context& ctx, double floor) {
  const ForecastOptions& o = *ctx.options;
  const auto start = Clock::now();
  const std::size_t h = static_cast<std::size_t>(o.horizon);
  FamilyRun run;
  run.score.family = family;
  const std::size_t need = internal::MakeModel(family, ctx)->MinFit();
  if (need > plan.first) {
    run.score.skipped =
        fmt::format("needs {} values to fit, the first backtest origin has {}", need, plan.first);
    return run;
  }
  std::vector<double> preds;
  std::vector<std::size_t> origins;
  for (int b = 0; b < plan.blocks; ++b) {
    const std::size_t lo = plan.first + plan.count * static_cast<std::size_t>(b) /
                                            static_cast<std::size_t>(plan.blocks);
    const std::size_t hi = plan.first + plan.count * static_cast<std::size_t>(b + 1) /
                                            static_cast<std::size_t>(plan.blocks);
    if (lo == hi) continue;
    std::unique_ptr<Model> model = internal::MakeModel(family, ctx);
    if (auto s = model->Fit(std::span(y).first(lo)); !s.ok()) return s;
    run.score.description = model->Describe();
    origins.resize(hi - lo);
    std::iota(origins.begin(), origins.end(), lo);
    auto p = model->Forecast(std::span(y).first(hi - 1), origins, o.horizon);
    if (!p.ok()) return p.status();
    preds.insert(preds.end(), p->begin(), p->end());
  }
  // Metrics over every origin and step.
  const std::size_t n = plan.count;
  run.errors.assign(h, std::vector<double>(n));
  double abs_sum = 0, sq_sum = 0, smape_sum = 0, actual_abs = 0, ape_sum = 0, min_actual = 1e300;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < h; ++k) {
      const double actual = y[plan.first + i + k], f = preds[i * h + k], e = actual - f;
      run.errors[k][i] = std::abs(e);
      abs_sum += std::abs(e);
      sq_sum += e * e;
      const double denom = std::abs(actual) + std::abs(f);
      smape_sum += denom > 0 ? 200 * std::abs(e) / denom : 0;
      actual_abs += std::abs(actual);
      min_actual = std::min(min_actual, std::abs(actual));
      ape_sum += actual != 0 ? std::abs(e / actual) : 0;
    }
  }
  const double count = static_cast<double>(n * h);
  run.score.forecasts = n * h;
  run.score.mae = abs_sum / count;
  run.score.rmse = std::sqrt(sq_sum / count);
  run.score.smape = smape_sum / count;
  if (actual_abs > 0 && min_actual >= kMapeNearZero * actual_abs / count) {
    run.score.mape = 100 * ape_sum / count;
  }
  // Sequential conformal coverage: origin i's step-k interval from the step-k errors of origins
  // j ≤ i − k − 1 (those whose target time o_j + k is before o_i).
  for (double level : o.levels) {
    LevelCoverage c;
    c.level = level;
    std::size_t inside = 0;
    std::vector<double> earlier;  // sorted
    for (std::size_t k = 0; k < h; ++k) {
      earlier.clear();
      for (std::size_t i = k + 1; i < n; ++i) {
        const double e = run.errors[k][i - k - 1];
        earlier.insert(std::upper_bound(earlier.begin(), earlier.end(), e), e);
        const std::size_t size = earlier.size();
        const auto rank =
            static_cast<std::size_t>(std::ceil(static_cast<double>(size + 1) * level - 1e-9));
        if (rank > size) continue;  // too few errors yet for this level
        const double q = std::max(earlier[std::max<std::size_t>(rank, 1) - 1], floor);
        ++c.counted;
        if (run.errors[k][i] <= q) ++inside;
      }
    }
    c.coverage = c.counted > 0 ? static_cast<double>(inside) / static_cast<double>(c.counted) : 0;
    run.score.coverage.push_back(c);
  }
  run.score.seconds = Seconds(start);
  return run;
}

// Where the highest local peak of the autocorrelation of the first differences is, if above
// the threshold; 1 if none. Differences, not levels: a smooth trend leaves a slowly varying
// residual whose autocorrelation is high at every lag, with spurious local peaks.
int AcfSeason(const std::vector<double>& y) {
  const std::size_t n = y.size() < 9 ? 0 : y.size() - 1;
  if (n == 0) return 1;
  std::vector<double> d(n);
  for (std::size_t i = 0; i < n; ++i) d[i] = y[i + 1] - y[i];
  const double mean = std::accumulate(d.begin(), d.end(), 0.0) / static_cast<double>(n);
  for (double& x : d) x -= mean;
  double c0 = 0;
  for (double x : d) c0 += x * x;
  if (!(c0 > 0)) return 1;
  const std::size_t max_lag = std::min(n / 3, kMaxAcfLag);
  std::vector<double> acf(max_lag + 2, 0.0);
  for (std::size_t lag = 1; lag <= max_lag + 1 && lag < n; ++lag) {
    double c = 0;
    for (std::size_t i = lag; i < n; ++i) c += d[i] * d[i - lag];
    acf[lag] = c / c0;
  }
  int best = 1;
  double best_value = kAcfThreshold;
  for (std::size_t lag = 2; lag <= max_lag; ++lag) {
    if (acf[lag] > best_value && acf[lag] > acf[lag - 1] && acf[lag] >= acf[lag + 1]) {
      best = static_cast<int>(lag), best_value = acf[lag];
    }
  }
  return best;
}

}  // namespace

std::string_view FamilyName(Family family) {
  switch (family) {
    case Family::kSeasonalNaive:
      return "seasonal_naive";
    case Family::kExponentialSmoothing:
      return "exponential_smoothing";
    case Family::kAutoregressive:
      return "autoregressive";
    case Family::kXgboost:
      return "xgboost";
  }
  return "unknown";
}

core::Result<Family> ParseFamily(std::string_view name) {
  for (Family f : {Family::kSeasonalNaive, Family::kExponentialSmoothing, Family::kAutoregressive,
                   Family::kXgboost}) {
    if (FamilyName(f) == name) return f;
  }
  return BadOptions(fmt::format(
      "unknown family '{}' (seasonal_naive, exponential_smoothing, autoregressive, xgboost)",
      name));
}

int DetectSeason(std::int64_t step_ms, const std::vector<double>& values, std::string* source) {
  const std::size_t n = values.size();
  std::int64_t from_step = 0;
  if (step_ms > 0 && kDayMs % step_ms == 0 && kDayMs / step_ms >= 2 &&
      kDayMs / step_ms <= kMaxStepSeason) {
    from_step = kDayMs / step_ms;
  } else if (step_ms == kDayMs) {
    from_step = 7;
  }
  if (from_step > 0 && n >= 3 * static_cast<std::size_t>(from_step)) {
    *source = "step";
    return static_cast<int>(from_step);
  }
  const int acf = AcfSeason(values);
  *source = acf > 1 ? "autocorrelation" : "none";
  return acf;
}

struct Forecaster::Impl {
  ForecastOptions options;
  ForecasterInfo info;
  BacktestReport report;
  std::unique_ptr<Model> model;
  std::vector<double> tail;                      // the last model->Memory() training values
  std::vector<std::vector<double>> half_widths;  // [level][step]
  std::vector<bool> calibrated;                  // per level

  Context MakeContext() const {
    return Context{
        .t0_ms = info.t0_ms, .step_ms = info.step_ms, .season = info.season, .options = &options};
  }
};

Forecaster::Forecaster(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Forecaster::Forecaster(Forecaster&&) noexcept = default;
Forecaster& Forecaster::operator=(Forecaster&&) noexcept = default;
Forecaster::~Forecaster() = default;

const ForecasterInfo& Forecaster::info() const { return impl_->info; }
const BacktestReport& Forecaster::report() const { return impl_->report; }

core::Result<Forecaster> Forecaster::Fit(const Series& series, const ForecastOptions& options) {
  const auto start = Clock::now();
  if (auto s = ValidateOptions(options); !s.ok()) return s;
  auto prepared = Prepare(series, options);
  if (!prepared.ok()) return prepared.status();
  const std::vector<double>& y = prepared->y;
  const std::size_t n = y.size();
  const std::size_t h = static_cast<std::size_t>(options.horizon);

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  ForecasterInfo& info = impl->info;
  info.t0_ms = prepared->t0_ms;
  info.step_ms = series.step_ms;
  info.length = n;
  info.interpolated = prepared->interpolated;
  info.horizon = options.horizon;
  info.levels = options.levels;

  double lo = n > 0 ? y[0] : 0, hi = lo, abs_sum = 0;
  for (double v : y) lo = std::min(lo, v), hi = std::max(hi, v), abs_sum += std::abs(v);
  info.constant = n > 0 && hi - lo <= 1e-12 * std::max({1.0, std::abs(lo), std::abs(hi)});
  const double mean_abs = n > 0 ? abs_sum / static_cast<double>(n) : 0;
  const double floor = options.min_interval_scale * (mean_abs > 0 ? mean_abs : 1);

  if (info.constant) {
    info.season = 1;
    info.season_source = "constant series";
  } else if (options.season > 0) {
    info.season = options.season;
    info.season_source = options.season == 1 ? "none" : "given";
  } else {
    info.season = DetectSeason(series.step_ms, y, &info.season_source);
  }
  const std::size_t m = static_cast<std::size_t>(info.season);
  const std::size_t base_min = std::max<std::size_t>(2 * m, 10);
  const std::size_t min_origins = static_cast<std::size_t>(options.min_origins);
  const std::size_t minimum = base_min + h + min_origins - 1;
  if (n < minimum) {
    return core::Status(
        "FORECAST_TOO_SHORT",
        fmt::format("{} values{}; with season length {} and horizon {} at least {} are needed "
                    "(max(2·season, 10) to fit + horizon + min_origins {} − 1 to backtest)",
                    n, prepared->interpolated > 0 ? " after interpolation" : "", m, h, minimum,
                    min_origins));
  }
  Plan plan;
  plan.count =
      std::min<std::size_t>(static_cast<std::size_t>(options.max_origins), n - base_min - h + 1);
  plan.first = n - h - plan.count + 1;
  plan.blocks =
      static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(options.refits), plan.count));

  BacktestReport& report = impl->report;
  report.horizon = options.horizon;
  report.origins = plan.count;
  report.first_origin = plan.first;
  report.refits = plan.blocks;
  const Context ctx = impl->MakeContext();
  std::vector<std::vector<double>> chosen_errors;
  const FamilyScore* best = nullptr;
  std::vector<std::vector<std::vector<double>>> errors;
  for (Family f : options.families) {
    if (info.constant && f != Family::kSeasonalNaive) {
      FamilyScore skipped;
      skipped.family = f;
      skipped.skipped = "constant series";
      report.families.push_back(std::move(skipped));
      errors.emplace_back();
      continue;
    }
    auto run = Backtest(f, y, plan, ctx, floor);
    if (!run.ok()) return run.status();
    report.families.push_back(std::move(run->score));
    errors.push_back(std::move(run->errors));
  }
  if (info.constant && std::find(options.families.begin(), options.families.end(),
                                 Family::kSeasonalNaive) == options.families.end()) {
    // Every family forecasts a constant as the constant: use the cheapest.
    auto run = Backtest(Family::kSeasonalNaive, y, plan, ctx, floor);
    if (!run.ok()) return run.status();
    report.families.push_back(std::move(run->score));
    errors.push_back(std::move(run->errors));
  }
  double best_mae = std::numeric_limits<double>::infinity();
  for (const FamilyScore& s : report.families) {
    if (s.skipped.empty()) best_mae = std::min(best_mae, s.mae);
  }
  std::size_t best_index = 0;
  for (std::size_t i = 0; i < report.families.size(); ++i) {
    const FamilyScore& s = report.families[i];
    if (!s.skipped.empty() || s.mae > best_mae * (1 + kTieTolerance)) continue;
    if (best == nullptr || CostRank(s.family) < CostRank(best->family)) {
      best = &s;
      best_index = i;
    }
  }
  if (best == nullptr) {
    std::string why;
    for (const FamilyScore& s : report.families) {
      why += fmt::format("; {}: {}", FamilyName(s.family), s.skipped);
    }
    return core::Status("FORECAST_TOO_SHORT",
                        fmt::format("no family can be fitted on {} values{}", n, why));
  }
  report.chosen = best->family;
  chosen_errors = std::move(errors[best_index]);

  // The chosen family on the whole series.
  impl->model = internal::MakeModel(report.chosen, ctx);
  if (auto s = impl->model->Fit(y); !s.ok()) return s;
  impl->tail.assign(y.end() - static_cast<std::ptrdiff_t>(impl->model->Memory()), y.end());
  info.family = report.chosen;
  info.description = impl->model->Describe();
  info.parameters = impl->model->Parameters();
  for (double level : options.levels) {
    std::vector<double> widths;
    bool all_calibrated = true;
    for (std::size_t k = 0; k < h; ++k) {
      bool calibrated = false;
      widths.push_back(std::max(ConformalQuantile(chosen_errors[k], level, &calibrated), floor));
      all_calibrated = all_calibrated && calibrated;
    }
    impl->half_widths.push_back(std::move(widths));
    impl->calibrated.push_back(all_calibrated);
  }
  info.train_seconds = Seconds(start);
  return Forecaster(std::move(impl));
}

core::Result<Forecast> Forecaster::Predict(int horizon) const {
  const Impl& im = *impl_;
  if (horizon == 0) horizon = im.info.horizon;
  if (horizon < 1 || horizon > im.info.horizon) {
    return core::Status("FORECAST_HORIZON",
                        fmt::format("horizon {} is outside 1..{}, the horizon this forecaster was "
                                    "fitted and calibrated for",
                                    horizon, im.info.horizon));
  }
  auto mean = im.model->ForecastEnd(im.tail, im.info.length, horizon);
  if (!mean.ok()) return mean.status();
  Forecast f;
  f.step_ms = im.info.step_ms;
  f.start_ms = im.info.t0_ms + static_cast<std::int64_t>(im.info.length) * im.info.step_ms;
  f.mean = std::move(*mean);
  for (std::size_t l = 0; l < im.info.levels.size(); ++l) {
    Band b;
    b.level = im.info.levels[l];
    b.calibrated = im.calibrated[l];
    for (std::size_t k = 0; k < f.mean.size(); ++k) {
      b.low.push_back(f.mean[k] - im.half_widths[l][k]);
      b.high.push_back(f.mean[k] + im.half_widths[l][k]);
    }
    f.bands.push_back(std::move(b));
  }
  return f;
}

// ---------------------------------------------------------------------------------------------
// JSON.

namespace {

json::value OptionalNumber(const std::optional<double>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

json::object ReportJson(const BacktestReport& r) {
  json::array families;
  for (const FamilyScore& s : r.families) {
    json::object o{{"family", FamilyName(s.family)}};
    if (!s.skipped.empty()) {
      o["skipped"] = s.skipped;
    } else {
      json::array coverage;
      for (const LevelCoverage& c : s.coverage) {
        coverage.push_back(
            json::object{{"level", c.level}, {"coverage", c.coverage}, {"counted", c.counted}});
      }
      o["description"] = s.description;
      o["mae"] = s.mae;
      o["rmse"] = s.rmse;
      o["mape"] = OptionalNumber(s.mape);
      o["smape"] = s.smape;
      o["coverage"] = std::move(coverage);
      o["forecasts"] = s.forecasts;
      o["seconds"] = s.seconds;
    }
    families.push_back(std::move(o));
  }
  return {{"horizon", r.horizon},           {"origins", r.origins},
          {"first_origin", r.first_origin}, {"refits", r.refits},
          {"chosen", FamilyName(r.chosen)}, {"families", std::move(families)}};
}

double Number(const json::object& o, std::string_view key, bool* ok) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_number()) {
    *ok = false;
    return 0;
  }
  return v->to_number<double>();
}

std::string String(const json::object& o, std::string_view key, bool* ok) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) {
    *ok = false;
    return {};
  }
  return std::string(v->get_string());
}

core::Result<BacktestReport> ReportFromJson(const json::object& o) {
  BacktestReport r;
  bool ok = true;
  r.horizon = static_cast<int>(Number(o, "horizon", &ok));
  r.origins = static_cast<std::size_t>(Number(o, "origins", &ok));
  r.first_origin = static_cast<std::size_t>(Number(o, "first_origin", &ok));
  r.refits = static_cast<int>(Number(o, "refits", &ok));
  auto chosen = ParseFamily(String(o, "chosen", &ok));
  const json::value* families = o.if_contains("families");
  if (!ok || !chosen.ok() || families == nullptr || !families->is_array()) {
    return internal::ModelIo("report", "malformed");
  }
  r.chosen = *chosen;
  for (const json::value& v : families->get_array()) {
    if (!v.is_object()) return internal::ModelIo("report/families", "not an object");
    const json::object& f = v.get_object();
    FamilyScore s;
    auto family = ParseFamily(String(f, "family", &ok));
    if (!ok || !family.ok()) return internal::ModelIo("report/families/family", "malformed");
    s.family = *family;
    if (const json::value* skipped = f.if_contains("skipped");
        skipped != nullptr && skipped->is_string()) {
      s.skipped = std::string(skipped->get_string());
      r.families.push_back(std::move(s));
      continue;
    }
    s.description = String(f, "description", &ok);
    s.mae = Number(f, "mae", &ok);
    s.rmse = Number(f, "rmse", &ok);
    s.smape = Number(f, "smape", &ok);
    s.forecasts = static_cast<std::size_t>(Number(f, "forecasts", &ok));
    s.seconds = Number(f, "seconds", &ok);
    if (const json::value* mape = f.if_contains("mape"); mape != nullptr && mape->is_number()) {
      s.mape = mape->to_number<double>();
    }
    const json::value* coverage = f.if_contains("coverage");
    if (!ok || coverage == nullptr || !coverage->is_array()) {
      return internal::ModelIo("report/families", "malformed score");
    }
    for (const json::value& c : coverage->get_array()) {
      if (!c.is_object()) return internal::ModelIo("report/families/coverage", "malformed");
      LevelCoverage lc;
      lc.level = Number(c.get_object(), "level", &ok);
      lc.coverage = Number(c.get_object(), "coverage", &ok);
      lc.counted = static_cast<std::size_t>(Number(c.get_object(), "counted", &ok));
      if (!ok) return internal::ModelIo("report/families/coverage", "malformed");
      s.coverage.push_back(lc);
    }
    r.families.push_back(std::move(s));
  }
  return r;
}

}  // namespace

std::string Forecaster::ToJson() const {
  const Impl& im = *impl_;
  const ForecasterInfo& i = im.info;
  json::array widths;
  for (const auto& w : im.half_widths) widths.push_back(internal::EncodeDoubles(w));
  json::array calibrated(im.calibrated.begin(), im.calibrated.end());
  json::object doc{
      {"format", "doppel-forecast"},
      {"version", kFormatVersion},
      {"family", FamilyName(i.family)},
      {"description", i.description},
      {"season", i.season},
      {"season_source", i.season_source},
      {"t0_ms", i.t0_ms},
      {"step_ms", i.step_ms},
      {"length", i.length},
      {"interpolated", i.interpolated},
      {"constant", i.constant},
      {"horizon", i.horizon},
      {"levels", internal::EncodeDoubles(i.levels)},
      {"threads", im.options.threads},
      {"tail", internal::EncodeDoubles(im.tail)},
      {"half_widths", std::move(widths)},
      {"calibrated", std::move(calibrated)},
      {"model", im.model->Save()},
      {"report", ReportJson(im.report)},
      {"train_seconds", i.train_seconds},
  };
  if (i.family == Family::kXgboost) doc["xgboost"] = analytics::rul::XgbVersion();
  return json::serialize(doc);
}

core::Result<Forecaster> Forecaster::FromJson(std::string_view text) {
  auto parsed = core::ParseJson(text);
  if (!parsed.ok()) return internal::ModelIo("document", parsed.status().message());
  if (!parsed->is_object()) return internal::ModelIo("document", "not an object");
  const json::object& o = parsed->get_object();
  bool ok = true;
  if (String(o, "format", &ok) != "doppel-forecast" || !ok) {
    return internal::ModelIo("format", "not a doppel-forecast document");
  }
  if (Number(o, "version", &ok) != kFormatVersion || !ok) {
    return internal::ModelIo("version", fmt::format("not version {}", kFormatVersion));
  }
  auto impl = std::make_unique<Impl>();
  ForecasterInfo& info = impl->info;
  auto family = ParseFamily(String(o, "family", &ok));
  if (!family.ok()) return internal::ModelIo("family", family.status().message());
  info.family = *family;
  info.description = String(o, "description", &ok);
  info.season_source = String(o, "season_source", &ok);
  auto integer = [&](std::string_view key, std::int64_t lo, std::int64_t hi, std::int64_t* out) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr || !v->is_int64() || v->get_int64() < lo || v->get_int64() > hi) {
      return internal::ModelIo(key, fmt::format("missing or not an integer in {}..{}", lo, hi));
    }
    *out = v->get_int64();
    return core::Status::Ok();
  };
  std::int64_t season = 0, length = 0, interpolated = 0, horizon = 0, threads = 0;
  for (auto [key, lo, hi, out] :
       {std::tuple{"season", std::int64_t{1}, std::int64_t{1} << 30, &season},
        {"t0_ms", std::numeric_limits<std::int64_t>::min(),
         std::numeric_limits<std::int64_t>::max(), &info.t0_ms},
        {"step_ms", std::int64_t{1}, std::numeric_limits<std::int64_t>::max(), &info.step_ms},
        {"length", std::int64_t{1}, std::int64_t{1} << 40, &length},
        {"interpolated", std::int64_t{0}, std::int64_t{1} << 40, &interpolated},
        {"horizon", std::int64_t{1}, std::int64_t{kMaxHorizon}, &horizon},
        {"threads", std::int64_t{1}, std::int64_t{1024}, &threads}}) {
    if (auto s = integer(key, lo, hi, out); !s.ok()) return s;
  }
  info.season = static_cast<int>(season);
  info.length = static_cast<std::size_t>(length);
  info.interpolated = static_cast<std::size_t>(interpolated);
  info.horizon = static_cast<int>(horizon);
  impl->options.horizon = info.horizon;
  impl->options.threads = static_cast<int>(threads);
  if (const json::value* c = o.if_contains("constant"); c != nullptr && c->is_bool()) {
    info.constant = c->get_bool();
  } else {
    return internal::ModelIo("constant", "missing or not bool");
  }
  if (auto s = internal::DecodeDoubles(o, "levels", &info.levels); !s.ok()) return s;
  if (info.levels.empty()) return internal::ModelIo("levels", "empty");
  impl->options.levels = info.levels;
  if (auto s = internal::DecodeDoubles(o, "tail", &impl->tail); !s.ok()) return s;
  const json::value* widths = o.if_contains("half_widths");
  const json::value* calibrated = o.if_contains("calibrated");
  if (widths == nullptr || !widths->is_array() ||
      widths->get_array().size() != info.levels.size()) {
    return internal::ModelIo("half_widths", "missing or not one array per level");
  }
  for (const json::value& w : widths->get_array()) {
    json::object holder{{"w", w}};
    std::vector<double> v;
    if (auto s = internal::DecodeDoubles(holder, "w", &v); !s.ok()) {
      return internal::ModelIo("half_widths", s.message());
    }
    if (v.size() != static_cast<std::size_t>(info.horizon)) {
      return internal::ModelIo("half_widths", "not one width per horizon step");
    }
    impl->half_widths.push_back(std::move(v));
  }
  if (calibrated == nullptr || !calibrated->is_array() ||
      calibrated->get_array().size() != info.levels.size()) {
    return internal::ModelIo("calibrated", "missing or not one flag per level");
  }
  for (const json::value& c : calibrated->get_array()) {
    if (!c.is_bool()) return internal::ModelIo("calibrated", "not bool");
    impl->calibrated.push_back(c.get_bool());
  }
  const json::value* report = o.if_contains("report");
  if (report == nullptr || !report->is_object()) return internal::ModelIo("report", "missing");
  auto r = ReportFromJson(report->get_object());
  if (!r.ok()) return r.status();
  impl->report = std::move(*r);
  info.train_seconds = Number(o, "train_seconds", &ok);
  if (!ok) return internal::ModelIo("document", "a field is missing or of the wrong type");

  const json::value* model = o.if_contains("model");
  if (model == nullptr || !model->is_object()) return internal::ModelIo("model", "missing");
  impl->model = internal::MakeModel(info.family, impl->MakeContext());
  if (auto s = impl->model->Load(model->get_object()); !s.ok()) {
    if (s.code() == "FORECAST_MODEL_IO" && s.message().rfind("model/", 0) != 0) {
      return core::Status(s.code(), "model/" + s.message());
    }
    return s;
  }
  if (impl->tail.size() != impl->model->Memory()) {
    return internal::ModelIo("tail", fmt::format("has {} values, the model reads {}",
                                                 impl->tail.size(), impl->model->Memory()));
  }
  if (impl->tail.size() > info.length) return internal::ModelIo("tail", "longer than the data");
  info.parameters = impl->model->Parameters();
  return Forecaster(std::move(impl));
}

}  // namespace doppel::analytics::forecast
