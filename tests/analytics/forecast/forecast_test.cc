// Forecaster (src/analytics/forecast/forecast.h): each family recovers known structure from
// synthetic series, selection picks the right family, conformal intervals reach their nominal
// coverage on held-out forecasts, bad input gives the documented codes, JSON round-trips.
#include "analytics/forecast/forecast.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <string>

namespace doppel::analytics::forecast {
namespace {

constexpr std::int64_t kHour = 3'600'000;
// 2024-01-01T00:00:00Z, a Monday.
constexpr std::int64_t kMonday = 1'704'067'200'000;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

double Param(const ForecasterInfo& info, const std::string& name) {
  for (const auto& [n, v] : info.parameters) {
    if (n == name) return v;
  }
  ADD_FAILURE() << "no parameter " << name;
  return kNaN;
}

ForecastOptions Only(Family f, int horizon = 24) {
  ForecastOptions o;
  o.families = {f};
  o.horizon = horizon;
  return o;
}

// level + slope·t + amplitude·sin(2πt/24) + N(0, sigma), hourly from a Monday.
Series TrendSeason(std::size_t n, double level, double slope, double amplitude, double sigma,
                   unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, sigma);
  Series s{.t0_ms = kMonday, .step_ms = kHour, .values = {}};
  for (std::size_t t = 0; t < n; ++t) {
    const double x = static_cast<double>(t);
    s.values.push_back(level + slope * x + amplitude * std::sin(2 * std::numbers::pi * x / 24) +
                       noise(rng));
  }
  return s;
}

// y_t = c + φ1·y_{t−1} + φ2·y_{t−2} + N(0, 1), after a burn-in.
std::vector<double> Ar2(std::size_t n, double c, double phi1, double phi2, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 1);
  std::vector<double> y = {0, 0};
  for (std::size_t t = 0; t < n + 200; ++t) {
    y.push_back(c + phi1 * y[y.size() - 1] + phi2 * y[y.size() - 2] + noise(rng));
  }
  return std::vector<double>(y.end() - static_cast<std::ptrdiff_t>(n), y.end());
}

double Mae(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += std::abs(a[i] - b[i]);
  return s / static_cast<double>(a.size());
}

// ---------------------------------------------------------------------------------------------
// Each family recovers the structure it models.

TEST(ForecastFamilyTest, SeasonalNaiveIsExactOnAPureSeasonalSeries) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 100);
  std::vector<double> day(24);
  for (double& v : day) v = u(rng);
  Series s{.t0_ms = kMonday, .step_ms = kHour, .values = {}};
  for (int t = 0; t < 24 * 10; ++t) s.values.push_back(day[t % 24]);
  auto f = Forecaster::Fit(s, Only(Family::kSeasonalNaive, 30));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->info().season, 24);
  EXPECT_EQ(f->info().season_source, "step");
  auto fc = f->Predict();
  ASSERT_TRUE(fc.ok()) << fc.status().ToString();
  ASSERT_EQ(fc->mean.size(), 30u);
  for (std::size_t k = 0; k < 30; ++k) EXPECT_EQ(fc->mean[k], day[(240 + k) % 24]) << k;
  EXPECT_EQ(fc->start_ms, kMonday + 240 * kHour);
  EXPECT_EQ(f->report().families[0].mae, 0.0);
  // Exact backtests: intervals of the minimum width, never zero.
  ASSERT_EQ(fc->bands.size(), 2u);
  for (const Band& b : fc->bands) {
    EXPECT_GT(b.high[0] - b.low[0], 0.0);
    EXPECT_LT(b.high[0] - b.low[0], 1e-3);
  }
}

TEST(ForecastFamilyTest, HoltWintersRecoversLevelTrendAndSeason) {
  const std::size_t n = 24 * 20;
  const Series s = TrendSeason(n, 50, 0.2, 5, 0.3, 11);
  auto f = Forecaster::Fit(s, Only(Family::kExponentialSmoothing));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const ForecasterInfo& info = f->info();
  EXPECT_NE(info.description.find("Holt-Winters"), std::string::npos) << info.description;
  EXPECT_NEAR(Param(info, "trend"), 0.2, 0.03);
  // The level at the last time, without its season.
  EXPECT_NEAR(Param(info, "level"), 50 + 0.2 * static_cast<double>(n - 1), 1.0);
  double lo = 1e9, hi = -1e9;
  for (int j = 0; j < 24; ++j) {
    const double v = Param(info, "season[" + std::to_string(j) + "]");
    lo = std::min(lo, v), hi = std::max(hi, v);
    // season[j] belongs to times t ≡ j (mod 24): 5·sin(2πj/24).
    EXPECT_NEAR(v, 5 * std::sin(2 * std::numbers::pi * j / 24), 0.6) << j;
  }
  EXPECT_NEAR((hi - lo) / 2, 5, 0.5);
  // The forecast follows the noise-free continuation.
  auto fc = f->Predict();
  ASSERT_TRUE(fc.ok());
  const Series truth = TrendSeason(n + 24, 50, 0.2, 5, 0, 0);
  const std::vector<double> future(truth.values.end() - 24, truth.values.end());
  EXPECT_LT(Mae(fc->mean, future), 0.4);
}

TEST(ForecastFamilyTest, AutoregressiveRecoversAr2Coefficients) {
  Series s{.t0_ms = 0, .step_ms = 1000, .values = Ar2(2000, 2.0, 0.6, -0.3, 3)};
  ForecastOptions o = Only(Family::kAutoregressive, 5);
  o.season = 1;
  auto f = Forecaster::Fit(s, o);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const ForecasterInfo& info = f->info();
  const int order = static_cast<int>(Param(info, "order"));
  EXPECT_GE(order, 2);
  EXPECT_LE(order, 4);
  EXPECT_NEAR(Param(info, "phi1"), 0.6, 0.06);
  EXPECT_NEAR(Param(info, "phi2"), -0.3, 0.06);
  for (int i = 3; i <= order; ++i) {
    EXPECT_NEAR(Param(info, "phi" + std::to_string(i)), 0, 0.08) << i;
  }
  // The intercept gives the process mean c / (1 − φ1 − φ2).
  double sum = 0;
  for (int i = 1; i <= order; ++i) sum += Param(info, "phi" + std::to_string(i));
  EXPECT_NEAR(Param(info, "intercept") / (1 - sum), 2.0 / 0.7, 0.15);
}

TEST(ForecastFamilyTest, XgboostForecastsSeasonAndTrendToTheNoiseLevel) {
  const std::size_t n = 24 * 30, h = 24;
  const double sigma = 0.5;
  const Series all = TrendSeason(n + h, 20, 0.05, 4, sigma, 5);
  Series train = all;
  train.values.resize(n);
  auto f = Forecaster::Fit(train, Only(Family::kXgboost, static_cast<int>(h)));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  auto fc = f->Predict();
  ASSERT_TRUE(fc.ok()) << fc.status().ToString();
  const std::vector<double> future(all.values.end() - static_cast<std::ptrdiff_t>(h),
                                   all.values.end());
  // The best possible MAE against noisy actuals is σ·√(2/π) ≈ 0.40.
  const double noise_mae = sigma * std::sqrt(2 / std::numbers::pi);
  const double mae = Mae(fc->mean, future);
  EXPECT_LT(mae, 1.5 * noise_mae) << "MAE " << mae;
  EXPECT_LT(f->report().families[0].mae, 1.5 * noise_mae);
}

// ---------------------------------------------------------------------------------------------
// Selection by rolling-origin backtest.

std::string Scores(const BacktestReport& r) {
  std::string out;
  for (const FamilyScore& s : r.families) {
    out += std::string(FamilyName(s.family)) + " MAE " + std::to_string(s.mae) + " (" +
           s.description + s.skipped + "); ";
  }
  return out;
}

TEST(ForecastSelectionTest, PicksTheFamilyOfTheStructure) {
  {  // a pure seasonal pattern: seasonal naive is exact
    Series s{.t0_ms = kMonday, .step_ms = kHour, .values = {}};
    for (int t = 0; t < 24 * 12; ++t) {
      s.values.push_back(std::pow(t % 24 - 11.5, 2) + ((t % 24) % 5 == 0 ? 7 : 0));
    }
    auto f = Forecaster::Fit(s, ForecastOptions{});
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ(f->report().chosen, Family::kSeasonalNaive) << Scores(f->report());
  }
  {  // a strongly oscillating AR(2), no season
    Series s{.t0_ms = 0, .step_ms = 1000, .values = Ar2(600, 0, 1.2, -0.8, 21)};
    ForecastOptions o;
    o.horizon = 6;
    o.season = 1;
    auto f = Forecaster::Fit(s, o);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ(f->report().chosen, Family::kAutoregressive) << Scores(f->report());
  }
  {  // trend + an irregular daily shape + noise: Holt-Winters (a smooth sine would be an AR(2))
    std::mt19937_64 rng(8);
    std::uniform_real_distribution<double> u(-10, 10);
    std::normal_distribution<double> noise(0, 1);
    std::vector<double> day(24);
    for (double& v : day) v = u(rng);
    Series s{.t0_ms = kMonday, .step_ms = kHour, .values = {}};
    for (int t = 0; t < 24 * 20; ++t) s.values.push_back(100 + 0.3 * t + day[t % 24] + noise(rng));
    auto f = Forecaster::Fit(s, ForecastOptions{});
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ(f->report().chosen, Family::kExponentialSmoothing) << Scores(f->report());
  }
  {  // hourly, with a different day shape on weekends: only the calendar features see it
    std::mt19937_64 rng(4);
    std::normal_distribution<double> noise(0, 0.3);
    Series s{.t0_ms = kMonday, .step_ms = kHour, .values = {}};
    for (int t = 0; t < 24 * 7 * 6; ++t) {
      const int hour = t % 24, day = (t / 24) % 7;
      const double shape = day >= 5 ? 2 * std::cos(2 * std::numbers::pi * hour / 24)
                                    : 8 * std::sin(2 * std::numbers::pi * hour / 24);
      s.values.push_back(30 + shape + noise(rng));
    }
    auto f = Forecaster::Fit(s, ForecastOptions{});
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ(f->report().chosen, Family::kXgboost) << Scores(f->report());
  }
}

TEST(ForecastSelectionTest, ReportHasEveryMetric) {
  const Series s = TrendSeason(24 * 15, 100, 0.1, 10, 1.0, 2);
  auto f = Forecaster::Fit(s, ForecastOptions{});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const BacktestReport& r = f->report();
  EXPECT_EQ(r.horizon, 24);
  EXPECT_EQ(r.families.size(), 4u);
  EXPECT_EQ(r.origins, 100u);
  EXPECT_EQ(r.first_origin + r.origins + 24 - 1, s.values.size());
  for (const FamilyScore& sc : r.families) {
    ASSERT_TRUE(sc.skipped.empty()) << FamilyName(sc.family) << ": " << sc.skipped;
    EXPECT_GT(sc.mae, 0);
    EXPECT_GE(sc.rmse, sc.mae);
    ASSERT_TRUE(sc.mape.has_value());
    EXPECT_GT(*sc.mape, 0);
    EXPECT_GT(sc.smape, 0);
    EXPECT_EQ(sc.forecasts, 100u * 24u);
    ASSERT_EQ(sc.coverage.size(), 2u);
    EXPECT_GT(sc.coverage[0].counted, 0u);
    EXPECT_LE(sc.coverage[0].coverage, sc.coverage[1].coverage + 1e-12);
  }
  EXPECT_EQ(f->info().family, r.chosen);
}

TEST(ForecastSelectionTest, MapeIsUndefinedNearZero) {
  // A sine around 0: some actuals are (near) zero.
  Series s{.t0_ms = 0, .step_ms = 1000, .values = {}};
  for (int t = 0; t < 200; ++t) s.values.push_back(std::sin(2 * std::numbers::pi * t / 12));
  auto f = Forecaster::Fit(s, Only(Family::kSeasonalNaive, 6));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->info().season, 12);
  EXPECT_EQ(f->info().season_source, "autocorrelation");
  EXPECT_FALSE(f->report().families[0].mape.has_value());
}

// ---------------------------------------------------------------------------------------------
// Coverage of the conformal intervals on held-out forecasts.

// 2,000 independent synthetic series (AR(1) with random φ, seasonal + noise with m = 12, and a
// local level: random walk plus noise), each fitted with automatic selection over seasonal
// naive, exponential smoothing and autoregressive on its first 160 values; the next 3 values are
// held out. Coverage is over all 6,000 step forecasts (and per step).
TEST(ForecastCoverageTest, ConformalIntervalsReachNominalCoverage) {
  constexpr int kSeries = 2000, kLength = 160, kHorizon = 3;
  std::mt19937_64 rng(2024);
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> uniform(0, 1);
  int inside80 = 0, inside95 = 0, total = 0;
  int step80[kHorizon] = {}, step95[kHorizon] = {};
  for (int i = 0; i < kSeries; ++i) {
    std::vector<double> y;
    const int kind = i % 3;
    const double scale = 0.5 + 3 * uniform(rng);
    if (kind == 0) {
      const double phi = -0.8 + 1.6 * uniform(rng);
      double x = 0;
      for (int t = 0; t < kLength + kHorizon + 50; ++t) {
        x = phi * x + normal(rng);
        if (t >= 50) y.push_back(10 + scale * x);
      }
    } else if (kind == 1) {
      const double amp = 1 + 4 * uniform(rng), phase = 6 * uniform(rng);
      for (int t = 0; t < kLength + kHorizon; ++t) {
        y.push_back(amp * std::sin(2 * std::numbers::pi * (t + phase) / 12) + scale * normal(rng));
      }
    } else {
      double level = 0;
      for (int t = 0; t < kLength + kHorizon; ++t) {
        level += 0.3 * scale * normal(rng);
        y.push_back(level + scale * normal(rng));
      }
    }
    Series s{.t0_ms = 0, .step_ms = 1000, .values = {y.begin(), y.begin() + kLength}};
    ForecastOptions o;
    o.horizon = kHorizon;
    o.families = {Family::kSeasonalNaive, Family::kExponentialSmoothing, Family::kAutoregressive};
    auto f = Forecaster::Fit(s, o);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    auto fc = f->Predict();
    ASSERT_TRUE(fc.ok());
    for (int k = 0; k < kHorizon; ++k) {
      const double actual = y[kLength + k];
      const bool in80 = fc->bands[0].low[k] <= actual && actual <= fc->bands[0].high[k];
      const bool in95 = fc->bands[1].low[k] <= actual && actual <= fc->bands[1].high[k];
      inside80 += in80, inside95 += in95, ++total;
      step80[k] += in80, step95[k] += in95;
    }
  }
  const double c80 = 100.0 * inside80 / total, c95 = 100.0 * inside95 / total;
  std::printf("coverage over %d held-out forecasts: 80%% -> %.1f%%, 95%% -> %.1f%%\n", total, c80,
              c95);
  for (int k = 0; k < kHorizon; ++k) {
    std::printf("  step %d (%d forecasts): 80%% -> %.1f%%, 95%% -> %.1f%%\n", k + 1, kSeries,
                100.0 * step80[k] / kSeries, 100.0 * step95[k] / kSeries);
    EXPECT_NEAR(100.0 * step80[k] / kSeries, 80, 3) << "step " << k + 1;
    EXPECT_NEAR(100.0 * step95[k] / kSeries, 95, 3) << "step " << k + 1;
  }
  EXPECT_NEAR(c80, 80, 3);
  EXPECT_NEAR(c95, 95, 3);
}

// ---------------------------------------------------------------------------------------------
// Bad input.

Series Noise(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(5, 1);
  Series s{.t0_ms = 0, .step_ms = 1000, .values = {}};
  for (std::size_t i = 0; i < n; ++i) s.values.push_back(noise(rng));
  return s;
}

TEST(ForecastInputTest, ConstantSeriesGivesTheConstantWithMinimumWidth) {
  Series s{.t0_ms = 0, .step_ms = kHour, .values = std::vector<double>(300, 42.0)};
  auto f = Forecaster::Fit(s, ForecastOptions{});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE(f->info().constant);
  EXPECT_EQ(f->info().family, Family::kSeasonalNaive);
  EXPECT_EQ(f->info().season, 1);
  auto fc = f->Predict();
  ASSERT_TRUE(fc.ok());
  for (std::size_t k = 0; k < fc->mean.size(); ++k) {
    EXPECT_EQ(fc->mean[k], 42.0);
    EXPECT_NEAR(fc->bands[1].high[k] - fc->mean[k], 42.0 * 1e-6, 1e-12);
  }
  for (const FamilyScore& sc : f->report().families) {
    if (sc.family != Family::kSeasonalNaive) {
      EXPECT_EQ(sc.skipped, "constant series");
    }
  }
}

TEST(ForecastInputTest, ShortGapsAreInterpolatedAndEndsTrimmed) {
  Series s = Noise(200, 1);
  s.values[0] = s.values[1] = kNaN;                   // leading: trimmed
  s.values[50] = s.values[51] = s.values[52] = kNaN;  // interior, 3: interpolated
  s.values[199] = kNaN;                               // trailing: trimmed
  auto f = Forecaster::Fit(s, Only(Family::kAutoregressive, 4));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->info().interpolated, 3u);
  EXPECT_EQ(f->info().length, 197u);
  EXPECT_EQ(f->info().t0_ms, 2000);
  auto fc = f->Predict();
  ASSERT_TRUE(fc.ok());
  EXPECT_EQ(fc->start_ms, 199 * 1000);  // right after the last value
}

TEST(ForecastInputTest, BadInputGivesTheDocumentedCodes) {
  auto code = [](const Series& s, const ForecastOptions& o) {
    auto f = Forecaster::Fit(s, o);
    return f.ok() ? std::string("OK") : f.status().code();
  };
  const ForecastOptions ar = Only(Family::kAutoregressive, 4);
  {
    Series s = Noise(200, 2);
    s.values[10] = std::numeric_limits<double>::infinity();
    EXPECT_EQ(code(s, ar), "FORECAST_BAD_VALUE");
  }
  {
    Series s = Noise(200, 2);
    for (int i = 40; i < 44; ++i) s.values[i] = kNaN;  // 4 > max_gap 3
    EXPECT_EQ(code(s, ar), "FORECAST_GAPS");
  }
  {
    Series s = Noise(200, 2);
    for (int i = 1; i < 190; i += 3) s.values[i] = kNaN;  // a third missing, in short runs
    EXPECT_EQ(code(s, ar), "FORECAST_GAPS");
  }
  {
    auto f = Forecaster::Fit(Noise(30, 2), ar);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), "FORECAST_TOO_SHORT");
    // max(2·1, 10) + 4 + 20 − 1 = 33
    EXPECT_NE(f.status().message().find("at least 33"), std::string::npos) << f.status().message();
    EXPECT_EQ(code(Noise(33, 2), ar), "OK");
    EXPECT_EQ(code(Series{.t0_ms = 0, .step_ms = 1000, .values = {kNaN, kNaN}}, ar),
              "FORECAST_TOO_SHORT");
  }
  {
    ForecastOptions o = ar;
    o.horizon = 0;
    EXPECT_EQ(code(Noise(200, 2), o), "FORECAST_HORIZON");
    o.horizon = 10001;
    EXPECT_EQ(code(Noise(200, 2), o), "FORECAST_HORIZON");
    auto f = Forecaster::Fit(Noise(200, 2), ar);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->Predict(5).status().code(), "FORECAST_HORIZON");
    EXPECT_EQ(f->Predict(-1).status().code(), "FORECAST_HORIZON");
    EXPECT_EQ(f->Predict(2)->mean.size(), 2u);
  }
  {
    ForecastOptions o = ar;
    o.levels = {0.8, 1.0};
    EXPECT_EQ(code(Noise(200, 2), o), "FORECAST_BAD_OPTIONS");
    o = ar;
    o.families = {};
    EXPECT_EQ(code(Noise(200, 2), o), "FORECAST_BAD_OPTIONS");
    Series s = Noise(200, 2);
    s.step_ms = 0;
    EXPECT_EQ(code(s, ar), "FORECAST_BAD_OPTIONS");
  }
  EXPECT_EQ(ParseFamily("arima").status().code(), "FORECAST_BAD_OPTIONS");
  EXPECT_EQ(*ParseFamily("xgboost"), Family::kXgboost);
}

TEST(ForecastInputTest, FamiliesThatNeedMoreDataAreSkipped) {
  // 60 hourly values: m = 24 needs 72 for the step rule, so no season; XGBoost needs 38.
  ForecastOptions o;
  o.horizon = 6;
  const Series s = TrendSeason(45, 10, 0, 3, 0.5, 3);
  auto f = Forecaster::Fit(s, o);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  bool skipped = false;
  for (const FamilyScore& sc : f->report().families) {
    if (sc.family == Family::kXgboost) skipped = !sc.skipped.empty();
  }
  EXPECT_TRUE(skipped);
}

TEST(ForecastInputTest, HighLevelsWidenAndSayUncalibrated) {
  ForecastOptions o = Only(Family::kAutoregressive, 2);
  o.levels = {0.8, 0.999};
  auto f = Forecaster::Fit(Noise(300, 9), o);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  auto fc = f->Predict();
  ASSERT_TRUE(fc.ok());
  EXPECT_TRUE(fc->bands[0].calibrated);
  EXPECT_FALSE(fc->bands[1].calibrated);
  EXPECT_GT(fc->bands[1].high[0] - fc->bands[1].low[0], fc->bands[0].high[0] - fc->bands[0].low[0]);
}

// ---------------------------------------------------------------------------------------------
// Season detection, serialization.

TEST(ForecastSeasonTest, FromStepOrAutocorrelation) {
  std::string source;
  const Series hourly = TrendSeason(24 * 4, 0, 0, 1, 0.1, 1);
  EXPECT_EQ(DetectSeason(kHour, hourly.values, &source), 24);
  EXPECT_EQ(source, "step");
  EXPECT_EQ(DetectSeason(kHour / 4, std::vector<double>(400, 1.0), &source), 96);
  // One-minute steps: 1440 is beyond the step rule; white noise has no peak.
  EXPECT_EQ(DetectSeason(60'000, Noise(3000, 4).values, &source), 1);
  EXPECT_EQ(source, "none");
  std::vector<double> seven;
  for (int t = 0; t < 300; ++t) seven.push_back((t % 7 == 3 ? 5 : 0) + 0.01 * t);
  EXPECT_EQ(DetectSeason(1000, seven, &source), 7);
  EXPECT_EQ(source, "autocorrelation");
}

TEST(ForecastJsonTest, RoundTripForecastsIdentically) {
  const Series s = TrendSeason(24 * 12, 40, 0.1, 6, 0.7, 13);
  for (Family family : {Family::kSeasonalNaive, Family::kExponentialSmoothing,
                        Family::kAutoregressive, Family::kXgboost}) {
    auto f = Forecaster::Fit(s, Only(family, 12));
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    const std::string doc = f->ToJson();
    auto g = Forecaster::FromJson(doc);
    ASSERT_TRUE(g.ok()) << FamilyName(family) << ": " << g.status().ToString();
    auto a = f->Predict();
    auto b = g->Predict();
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->mean, b->mean) << FamilyName(family);
    EXPECT_EQ(a->start_ms, b->start_ms);
    ASSERT_EQ(a->bands.size(), b->bands.size());
    for (std::size_t i = 0; i < a->bands.size(); ++i) {
      EXPECT_EQ(a->bands[i].level, b->bands[i].level);
      EXPECT_EQ(a->bands[i].low, b->bands[i].low) << FamilyName(family);
      EXPECT_EQ(a->bands[i].high, b->bands[i].high) << FamilyName(family);
    }
    EXPECT_EQ(g->info().family, family);
    EXPECT_EQ(g->info().description, f->info().description);
    EXPECT_EQ(g->info().parameters, f->info().parameters);
    EXPECT_EQ(g->report().chosen, f->report().chosen);
    EXPECT_EQ(g->report().families[0].mae, f->report().families[0].mae);
    // Saving the loaded forecaster gives the same model (the report's numbers are plain JSON
    // numbers, which Boost.JSON 1.81 may read back 1 ulp off: compare up to "report").
    const std::string again = g->ToJson();
    EXPECT_EQ(again.substr(0, again.find("\"report\"")), doc.substr(0, doc.find("\"report\"")))
        << FamilyName(family);
  }
}

TEST(ForecastJsonTest, BadDocumentsAreRefused) {
  auto f = Forecaster::Fit(Noise(200, 5), Only(Family::kAutoregressive, 4));
  ASSERT_TRUE(f.ok());
  const std::string doc = f->ToJson();
  EXPECT_EQ(Forecaster::FromJson("{").status().code(), "FORECAST_MODEL_IO");
  EXPECT_EQ(Forecaster::FromJson("[]").status().code(), "FORECAST_MODEL_IO");
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string d = doc;
    const std::size_t at = d.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) d.replace(at, from.size(), to);
    return Forecaster::FromJson(d);
  };
  EXPECT_EQ(replace("\"version\":1", "\"version\":2").status().code(), "FORECAST_MODEL_IO");
  EXPECT_EQ(replace("\"doppel-forecast\"", "\"other\"").status().code(), "FORECAST_MODEL_IO");
  auto bad = replace("\"intercept\":\"", "\"intercept\":\"x");
  EXPECT_EQ(bad.status().code(), "FORECAST_MODEL_IO");
  EXPECT_NE(bad.status().message().find("model/intercept"), std::string::npos)
      << bad.status().message();
  EXPECT_EQ(replace("\"tail\":[\"", "\"tail\":[\"1\",\"").status().code(), "FORECAST_MODEL_IO");
}

}  // namespace
}  // namespace doppel::analytics::forecast
