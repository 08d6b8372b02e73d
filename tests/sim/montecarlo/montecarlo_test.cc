// The Monte Carlo runner: distributions' moments, reproducibility across thread counts,
// cancellation, progress, non-finite and failed runs, units as runs, and the error codes.
#include "sim/montecarlo/montecarlo.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <set>
#include <stdexcept>

#include "sim/des/des.h"
#include "sim/ode/ode.h"

namespace doppel::sim::montecarlo {
namespace {

TEST(ParameterDistribution, SampleMomentsMatch) {
  const std::vector<ParameterDistribution> cases = {
      ParameterDistribution::Normal(3, 2).value(),
      ParameterDistribution::Lognormal(2, 0.8).value(),
      ParameterDistribution::Uniform(-1, 5).value(),
      ParameterDistribution::Triangular(1, 2, 6).value(),
      ParameterDistribution::Empirical({1, 2, 2, 3, 10}).value(),
      ParameterDistribution::Constant(7).value(),
  };
  des::RandomStream rng(des::StreamSeed(11, 0));
  const int n = 400000;
  for (const auto& d : cases) {
    double sum = 0, sum2 = 0;
    std::vector<double> v(n);
    for (int i = 0; i < n; ++i) {
      v[i] = d.Sample(rng);
      sum += v[i];
    }
    const double mean = sum / n;
    for (double x : v) sum2 += (x - mean) * (x - mean);
    const double var = sum2 / (n - 1);
    const double se = std::sqrt(d.variance() / n);
    EXPECT_NEAR(mean, d.mean(), 5 * se + 1e-12) << static_cast<int>(d.kind());
    EXPECT_NEAR(var, d.variance(), 0.03 * d.variance() + 1e-12) << static_cast<int>(d.kind());
  }
  // Known closed forms, so the moments above are not checked against themselves only.
  EXPECT_DOUBLE_EQ(ParameterDistribution::Uniform(-1, 5).value().variance(), 3.0);
  EXPECT_DOUBLE_EQ(ParameterDistribution::Triangular(1, 2, 6).value().mean(), 3.0);
  EXPECT_DOUBLE_EQ(ParameterDistribution::Empirical({1, 2, 2, 3, 10}).value().mean(), 3.6);
  EXPECT_NEAR(ParameterDistribution::Lognormal(2, 0.8).value().variance(), 0.64, 1e-12);
}

TEST(ParameterDistribution, EmpiricalDrawsOnlySampleValues) {
  auto d = ParameterDistribution::Empirical({4, 8}).value();
  des::RandomStream rng(1);
  int fours = 0;
  for (int i = 0; i < 10000; ++i) {
    const double x = d.Sample(rng);
    ASSERT_TRUE(x == 4 || x == 8);
    fours += x == 4;
  }
  EXPECT_NEAR(fours, 5000, 250);
}

TEST(ParameterDistribution, BadParameters) {
  EXPECT_EQ(ParameterDistribution::Normal(0, -1).status().code(), "MC_BAD_DISTRIBUTION");
  EXPECT_EQ(ParameterDistribution::Normal(std::nan(""), 1).status().code(), "MC_BAD_DISTRIBUTION");
  EXPECT_EQ(ParameterDistribution::Lognormal(0, 1).status().code(), "MC_BAD_DISTRIBUTION");
  EXPECT_EQ(ParameterDistribution::Lognormal(1, -1).status().code(), "MC_BAD_DISTRIBUTION");
  EXPECT_EQ(ParameterDistribution::Uniform(2, 1).status().code(), "MC_BAD_DISTRIBUTION");
  EXPECT_EQ(ParameterDistribution::Uniform(0, INFINITY).status().code(), "MC_BAD_DISTRIBUTION");
  EXPECT_EQ(ParameterDistribution::Triangular(0, 5, 2).status().code(), "MC_BAD_DISTRIBUTION");
  EXPECT_EQ(ParameterDistribution::Empirical({}).status().code(), "MC_BAD_DISTRIBUTION");
  EXPECT_EQ(ParameterDistribution::Empirical({1, NAN}).status().code(), "MC_BAD_DISTRIBUTION");
  EXPECT_EQ(ParameterDistribution::Constant(INFINITY).status().code(), "MC_BAD_DISTRIBUTION");
}

std::vector<Parameter> TwoParameters() {
  return {{"a", ParameterDistribution::Normal(10, 2).value()},
          {"b", ParameterDistribution::Uniform(0, 1).value()}};
}

// A run with its own randomness too (from in.seed), to check that it is reproducible as well.
core::Result<std::vector<double>> Sum(const RunInput& in) {
  des::RandomStream own(in.seed);
  return std::vector<double>{in.parameters[0] + in.parameters[1], own.Uniform01()};
}

TEST(Run, SameSeedSameResultsWithOneOrFourThreads) {
  Options options;
  options.runs = 5000;
  options.seed = 99;
  options.keep_runs = true;
  options.threads = 1;
  auto one = montecarlo::Run(TwoParameters(), {"sum", "noise"}, Sum, options);
  options.threads = 4;
  auto four = montecarlo::Run(TwoParameters(), {"sum", "noise"}, Sum, options);
  ASSERT_TRUE(one.ok() && four.ok());
  EXPECT_EQ(one->results, four->results);
  EXPECT_EQ(one->parameters, four->parameters);
  ASSERT_EQ(one->outputs.size(), 2u);
  for (std::size_t o = 0; o < 2; ++o) {
    EXPECT_EQ(one->outputs[o].mean, four->outputs[o].mean);
    EXPECT_EQ(one->outputs[o].stddev, four->outputs[o].stddev);
    EXPECT_EQ(one->outputs[o].quantiles, four->outputs[o].quantiles);
    EXPECT_EQ(one->outputs[o].histogram.counts, four->outputs[o].histogram.counts);
  }
  EXPECT_FALSE(one->cancelled);
  EXPECT_EQ(one->runs_completed, 5000u);
  // And the statistics are right: sum ~ N(10, 2) + U(0, 1): mean 10.5, median ~10.5.
  EXPECT_NEAR(one->outputs[0].mean, 10.5, 0.1);
  EXPECT_NEAR(one->outputs[0].quantiles[2], 10.5, 0.1);
  // p5 and p95 of the sum: +-1.645 sd, sd = sqrt(4 + 1/12).
  const double sd = std::sqrt(4 + 1.0 / 12);
  EXPECT_NEAR(one->outputs[0].quantiles[0], 10.5 - 1.645 * sd, 0.15);
  EXPECT_NEAR(one->outputs[0].quantiles[4], 10.5 + 1.645 * sd, 0.15);
  std::uint64_t total = 0;
  for (auto c : one->outputs[0].histogram.counts) total += c;
  EXPECT_EQ(total, 5000u);
  // Another seed: other numbers.
  options.seed = 100;
  auto other = montecarlo::Run(TwoParameters(), {"sum", "noise"}, Sum, options);
  EXPECT_NE(other->outputs[0].mean, one->outputs[0].mean);
}

TEST(Run, QuantilesInterpolate) {
  // Runs 0..4 return 0, 10, 20, 30, 40.
  Options options;
  options.runs = 5;
  options.quantiles = {0, 0.5, 0.9, 1};
  options.histogram_bins = 4;
  auto r = montecarlo::Run(
      {}, {"x"},
      [](const RunInput& in) -> core::Result<std::vector<double>> {
        return std::vector<double>{10.0 * static_cast<double>(in.index)};
      },
      options);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outputs[0].quantiles, (std::vector<double>{0, 20, 36, 40}));
  EXPECT_EQ(r->outputs[0].histogram.counts, (std::vector<std::uint64_t>{1, 1, 1, 2}));
  EXPECT_DOUBLE_EQ(r->outputs[0].stddev, std::sqrt(250.0));
}

TEST(Run, CancelStopsEarlyAndSaysSo) {
  std::atomic<bool> cancel{false};
  std::atomic<int> started{0};
  Options options;
  options.runs = 100000;
  options.threads = 2;
  options.cancel = &cancel;
  auto r = montecarlo::Run(
      TwoParameters(), {"sum", "noise"},
      [&](const RunInput& in) {
        if (started.fetch_add(1) == 100) cancel = true;
        return Sum(in);
      },
      options);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cancelled);
  EXPECT_GE(r->runs_completed, 101u);
  EXPECT_LT(r->runs_completed, 200u);  // each thread finishes at most its current run
  EXPECT_EQ(r->outputs[0].finite, r->runs_completed);
}

TEST(Run, ProgressIsReportedUpToTheTotal) {
  std::vector<std::size_t> seen;
  Options options;
  options.runs = 300;
  options.threads = 3;
  options.progress = [&](std::size_t done, std::size_t total) {
    EXPECT_EQ(total, 300u);
    seen.push_back(done);  // serialized by the runner
  };
  ASSERT_TRUE(montecarlo::Run(TwoParameters(), {"sum", "noise"}, Sum, options).ok());
  ASSERT_EQ(seen.size(), 300u);
  std::sort(seen.begin(), seen.end());
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
}

TEST(Run, NonFiniteOutputsAreCountedNotAveraged) {
  Options options;
  options.runs = 100;
  options.threads = 2;
  auto r = montecarlo::Run(
      {}, {"x"},
      [](const RunInput& in) -> core::Result<std::vector<double>> {
        if (in.index % 10 == 0) return std::vector<double>{std::nan("")};
        if (in.index % 10 == 1) return std::vector<double>{INFINITY};
        return std::vector<double>{1.0};
      },
      options);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outputs[0].non_finite, 20u);
  EXPECT_EQ(r->outputs[0].finite, 80u);
  EXPECT_EQ(r->outputs[0].mean, 1.0);
  EXPECT_EQ(r->runs_failed, 0u);
}

TEST(Run, FailedRunsAreCountedWithTheFirstFailure) {
  Options options;
  options.runs = 50;
  options.threads = 4;
  auto r = montecarlo::Run(
      {}, {"x"},
      [](const RunInput& in) -> core::Result<std::vector<double>> {
        if (in.index == 7) throw std::runtime_error("boom");
        if (in.index == 3) return core::Status("SIM_STEP_FAILED", "diverged");
        if (in.index == 20) return std::vector<double>{1, 2};  // wrong count
        return std::vector<double>{2.0};
      },
      options);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->runs_failed, 3u);
  EXPECT_EQ(r->first_failure.code(), "SIM_STEP_FAILED");
  EXPECT_EQ(r->first_failure_run, 3u);
  EXPECT_EQ(r->outputs[0].finite, 47u);
  EXPECT_EQ(r->outputs[0].mean, 2.0);

  options.runs = 10;
  auto threw = montecarlo::Run(
      {}, {"x"},
      [](const RunInput&) -> core::Result<std::vector<double>> {
        throw std::runtime_error("boom");
      },
      options);
  EXPECT_EQ(threw->first_failure.code(), "MC_RUN_THREW");
  auto wrong = montecarlo::Run(
      {}, {"x"},
      [](const RunInput&) -> core::Result<std::vector<double>> { return std::vector<double>{}; },
      options);
  EXPECT_EQ(wrong->first_failure.code(), "MC_BAD_OUTPUT");
  EXPECT_TRUE(std::isnan(wrong->outputs[0].mean));
}

TEST(Run, BadOptions) {
  auto check = [](const Options& o, const std::vector<Parameter>& params = {},
                  const std::vector<std::string>& outputs = {"sum", "noise"}) {
    auto r = montecarlo::Run(params, outputs, Sum, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), "MC_BAD_OPTIONS");
  };
  Options o;
  o.runs = 0;
  check(o);
  o = {};
  o.threads = 0;
  check(o);
  o = {};
  o.quantiles = {0.5, 1.5};
  check(o);
  o = {};
  o.quantiles = {std::nan("")};
  check(o);
  o = {};
  o.histogram_bins = 0;
  check(o);
  check(Options{}, {{"a", ParameterDistribution::Constant(1).value()},
                    {"a", ParameterDistribution::Constant(2).value()}});
  check(Options{}, TwoParameters(), {"x", "x"});
}

TEST(UnitRun, ExponentialDecayQuantilesMatchTheClosedForm) {
  // x(t) = exp(-k t) is decreasing in k, so its p-quantile is exp(-k_(1-p) t) for k ~ U(0.2, 0.6).
  ode::SolverOptions solver;
  solver.rtol = 1e-10;
  solver.atol = 1e-12;
  auto factory = [solver]() -> core::Result<std::unique_ptr<Unit>> {
    auto model = ode::ModelRegistry::Create("exponential_decay");
    if (!model.ok()) return model.status();
    auto unit = ode::OdeUnit::Create(std::move(model).value(), solver);
    if (!unit.ok()) return unit.status();
    return std::unique_ptr<Unit>(std::move(unit).value());
  };
  Options options;
  options.runs = 4000;
  options.threads = 2;
  options.quantiles = {0.05, 0.5, 0.95};
  options.keep_runs = true;
  auto r = montecarlo::Run({{"k", ParameterDistribution::Uniform(0.2, 0.6).value()}}, {"x"},
                           UnitRun(factory, {"k"}, {"x"}, 2.0, 0.5), options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->runs_failed, 0u) << r->first_failure.ToString();
  // Each run exactly (1e-6) on its closed form.
  for (std::size_t i = 0; i < 4000; ++i) {
    const double k = r->parameters[i][0];
    ASSERT_NEAR(r->results[i][0], std::exp(-2 * k), 1e-6 * std::exp(-2 * k));
  }
  const auto& q = r->outputs[0].quantiles;
  EXPECT_NEAR(q[0], std::exp(-2 * 0.58), 0.01);
  EXPECT_NEAR(q[1], std::exp(-2 * 0.40), 0.01);
  EXPECT_NEAR(q[2], std::exp(-2 * 0.22), 0.01);
}

TEST(UnitRun, ProductionLineGetsTheRunSeed) {
  auto factory = []() -> core::Result<std::unique_ptr<Unit>> {
    auto unit = des::ProductionLineUnit::Create(2);
    if (!unit.ok()) return unit.status();
    return std::unique_ptr<Unit>(std::move(unit).value());
  };
  Options options;
  options.runs = 40;
  options.threads = 2;
  options.keep_runs = true;
  auto run = UnitRun(factory, {"m2.process_mean"}, {"throughput", "parts_out"}, 500, 100);
  auto a = montecarlo::Run({{"m2.process_mean", ParameterDistribution::Uniform(0.5, 1.5).value()}},
                           {"throughput", "parts_out"}, run, options);
  options.threads = 1;
  auto b = montecarlo::Run({{"m2.process_mean", ParameterDistribution::Uniform(0.5, 1.5).value()}},
                           {"throughput", "parts_out"}, run, options);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->runs_failed, 0u) << a->first_failure.ToString();
  EXPECT_EQ(a->results, b->results);
  // Different runs got different seeds: with the same parameter they still differ.
  auto same = montecarlo::Run({{"m2.process_mean", ParameterDistribution::Constant(1.0).value()}},
                              {"throughput", "parts_out"}, run, options);
  ASSERT_TRUE(same.ok());
  std::set<double> distinct;
  for (const auto& row : same->results) distinct.insert(row[1]);
  EXPECT_GT(distinct.size(), 10u);
}

TEST(UnitRun, UnitErrorsBecomeFailedRuns) {
  auto factory = []() -> core::Result<std::unique_ptr<Unit>> {
    auto unit = des::ProductionLineUnit::Create(1);
    if (!unit.ok()) return unit.status();
    return std::unique_ptr<Unit>(std::move(unit).value());
  };
  Options options;
  options.runs = 5;
  // A negative processing mean: the unit refuses it.
  auto r = montecarlo::Run({{"m1.process_mean", ParameterDistribution::Constant(-1).value()}},
                           {"throughput"},
                           UnitRun(factory, {"m1.process_mean"}, {"throughput"}, 10, 1), options);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->runs_failed, 5u);
  EXPECT_EQ(r->first_failure.code(), "SIM_BAD_PARAMETER");
  auto unknown =
      montecarlo::Run({{"nope", ParameterDistribution::Constant(1).value()}}, {"throughput"},
                      UnitRun(factory, {"nope"}, {"throughput"}, 10, 1), options);
  EXPECT_EQ(unknown->first_failure.code(), "SIM_UNKNOWN_VARIABLE");
}

}  // namespace
}  // namespace doppel::sim::montecarlo
