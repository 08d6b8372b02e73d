// forecast_bench: latency of the forecasting library (src/analytics/forecast/forecast.h).
//
// Per family, and for automatic selection over all four: "fit" is Forecaster::Fit (the rolling-
// origin backtest of every candidate — 100 origins, 5 refits — the final fit and the interval
// calibration; i.e. the training time) followed by one Predict; "forecast" is Predict alone on a
// fitted forecaster (what a request costs when the model is kept in the registry). The baseline
// of every row, measured in the same run, is the seasonal naive forecaster on the same series.
// The backtest MAE and 80%/95% interval coverage of each family are printed too.
//
// Series: synthetic hourly (4 weeks: trend + daily season + weekend shape + noise; horizon 24)
// and NASA C-MAPSS FD001 train unit 1, sensor s11 (one reading per cycle, no season; horizon
// 10), read from $DOPPEL_SHARED_DATA/cmapss when present.
//
// Usage: forecast_bench [--quick]   (--quick: fewer repetitions)
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "analytics/forecast/forecast.h"
#include "analytics/rul/rul_model.h"
#include "bench_table.h"
#include "core/shared_data.h"

namespace fc = doppel::analytics::forecast;
namespace bench = doppel::bench;

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

fc::Series Hourly() {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> noise(0, 1);
  fc::Series s{.t0_ms = 1'704'067'200'000, .step_ms = 3'600'000, .values = {}};
  for (int t = 0; t < 24 * 28; ++t) {
    const int hour = t % 24, day = (t / 24) % 7;
    const double shape = day >= 5 ? 3 * std::cos(2 * std::numbers::pi * hour / 24)
                                  : 10 * std::sin(2 * std::numbers::pi * hour / 24);
    s.values.push_back(50 + 0.02 * t + shape + noise(rng));
  }
  return s;
}

struct Measured {
  double fit_ms = 0, forecast_ms = 0;  // medians
  const fc::FamilyScore* score = nullptr;
  fc::BacktestReport report;
  std::string description;
};

Measured Measure(const fc::Series& s, fc::ForecastOptions o, int reps) {
  Measured m;
  std::vector<double> fit, forecast;
  for (int r = 0; r < reps; ++r) {
    const auto start = Clock::now();
    auto f = fc::Forecaster::Fit(s, o);
    if (!f.ok()) {
      fmt::print(stderr, "fit failed: {}\n", f.status().ToString());
      std::exit(1);
    }
    auto p = f->Predict();
    fit.push_back(Ms(start));
    if (!p.ok()) std::exit(1);
    for (int i = 0; i < 20; ++i) {
      const auto t = Clock::now();
      auto q = f->Predict();
      forecast.push_back(Ms(t));
    }
    m.report = f->report();
    m.description = f->info().description;
  }
  m.fit_ms = bench::Quantile(fit, 0.5);
  m.forecast_ms = bench::Quantile(forecast, 0.5);
  return m;
}

void Run(const std::string& label, const fc::Series& s, int horizon, int reps,
         std::vector<bench::Row>* rows) {
  fc::ForecastOptions base;
  base.horizon = horizon;
  auto only = [&](fc::Family f) {
    fc::ForecastOptions o = base;
    o.families = {f};
    return o;
  };
  const Measured naive = Measure(s, only(fc::Family::kSeasonalNaive), reps);
  fmt::print("\n{} ({} values, horizon {}):\n", label, s.values.size(), horizon);
  fmt::print("{:<24} {:>10} {:>10} {:>8} {:>7} {:>7}  {}\n", "family", "fit", "forecast", "MAE",
             "cov80", "cov95", "model");
  auto add = [&](const std::string& name, const Measured& m, const fc::FamilyScore& sc) {
    fmt::print("{:<24} {:>10} {:>10} {:>8.3f} {:>6.1f}% {:>6.1f}%  {}\n", name, bench::Ms(m.fit_ms),
               bench::Ms(m.forecast_ms), sc.mae, 100 * sc.coverage[0].coverage,
               100 * sc.coverage[1].coverage, m.description);
    rows->push_back({fmt::format("{}: {} fit+forecast", label, name), bench::Ms(m.fit_ms),
                     bench::Ms(naive.fit_ms), fmt::format("{:.1f}x", m.fit_ms / naive.fit_ms), "-",
                     ""});
    rows->push_back({fmt::format("{}: {} forecast only", label, name), bench::Ms(m.forecast_ms),
                     bench::Ms(naive.forecast_ms),
                     fmt::format("{:.1f}x", m.forecast_ms / naive.forecast_ms), "-", ""});
  };
  add("seasonal_naive", naive, naive.report.families[0]);
  for (fc::Family f :
       {fc::Family::kExponentialSmoothing, fc::Family::kAutoregressive, fc::Family::kXgboost}) {
    const Measured m = Measure(s, only(f), reps);
    add(std::string(fc::FamilyName(f)), m, m.report.families[0]);
  }
  const Measured automatic = Measure(s, base, reps);
  for (const fc::FamilyScore& sc : automatic.report.families) {
    if (sc.family == automatic.report.chosen) {
      add(fmt::format("auto -> {}", fc::FamilyName(sc.family)), automatic, sc);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const int reps = quick ? 3 : 11;
  std::vector<bench::Row> rows;
  Run("hourly", Hourly(), 24, reps, &rows);

  const auto file = doppel::core::SharedDataDir() / "cmapss" / "train_FD001.txt";
  auto units = doppel::analytics::rul::ReadCmapssFile(file);
  if (units.ok() && !units->empty()) {
    const auto& s11 = units->front().history.sensors.at("s11");
    fc::Series s{.t0_ms = 0, .step_ms = 1, .values = s11};  // one step per cycle
    Run("C-MAPSS unit 1 s11", s, 10, reps, &rows);
  } else {
    fmt::print("\nC-MAPSS not found at {}: skipped\n", file.string());
  }
  bench::PrintTable(rows);
  return 0;
}
