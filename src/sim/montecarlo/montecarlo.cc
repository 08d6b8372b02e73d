// The Monte Carlo runner: parameter distributions, the thread pool over run indices, summaries.
#include "sim/montecarlo/montecarlo.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <numeric>
#include <set>
#include <thread>
#include <utility>

namespace doppel::sim::montecarlo {
namespace {

core::Status BadDistribution(std::string message) {
  return {"MC_BAD_DISTRIBUTION", std::move(message)};
}

bool AllFinite(std::initializer_list<double> values) {
  return std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); });
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

core::Result<ParameterDistribution> ParameterDistribution::Constant(double value) {
  if (!AllFinite({value})) return BadDistribution("a constant must be finite");
  return ParameterDistribution(Kind::kConstant, value, 0, 0);
}

core::Result<ParameterDistribution> ParameterDistribution::Normal(double mean, double sd) {
  if (!AllFinite({mean, sd}) || sd < 0) {
    return BadDistribution(
        fmt::format("normal needs a finite mean and sd >= 0 ({}, {})", mean, sd));
  }
  return ParameterDistribution(Kind::kNormal, mean, sd, 0);
}

core::Result<ParameterDistribution> ParameterDistribution::Lognormal(double mean, double sd) {
  if (!AllFinite({mean, sd}) || mean <= 0 || sd < 0) {
    return BadDistribution(fmt::format("lognormal needs mean > 0 and sd >= 0 ({}, {})", mean, sd));
  }
  const double s2 = std::log1p((sd / mean) * (sd / mean));
  return ParameterDistribution(Kind::kLognormal, std::log(mean) - s2 / 2, std::sqrt(s2), mean);
}

core::Result<ParameterDistribution> ParameterDistribution::Uniform(double lo, double hi) {
  if (!AllFinite({lo, hi}) || lo > hi) {
    return BadDistribution(fmt::format("uniform needs finite lo <= hi ({}, {})", lo, hi));
  }
  return ParameterDistribution(Kind::kUniform, lo, hi, 0);
}

core::Result<ParameterDistribution> ParameterDistribution::Triangular(double lo, double mode,
                                                                      double hi) {
  if (!AllFinite({lo, mode, hi}) || mode < lo || hi < mode) {
    return BadDistribution(
        fmt::format("triangular needs finite lo <= mode <= hi ({}, {}, {})", lo, mode, hi));
  }
  return ParameterDistribution(Kind::kTriangular, lo, mode, hi);
}

core::Result<ParameterDistribution> ParameterDistribution::Empirical(std::vector<double> sample) {
  if (sample.empty()) return BadDistribution("an empirical distribution needs a sample");
  for (double v : sample) {
    if (!std::isfinite(v)) return BadDistribution("an empirical sample must be finite");
  }
  ParameterDistribution d(Kind::kEmpirical, 0, 0, 0);
  d.sample_ = std::make_shared<const std::vector<double>>(std::move(sample));
  return d;
}

double ParameterDistribution::Sample(des::RandomStream& rng) const {
  switch (kind_) {
    case Kind::kConstant:
      return a_;
    case Kind::kNormal:
      return rng.Normal(a_, b_);
    case Kind::kLognormal:
      return std::exp(rng.Normal(a_, b_));
    case Kind::kUniform:
      return a_ + (b_ - a_) * rng.Uniform01();
    case Kind::kTriangular:
      return rng.Triangular(a_, b_, c_);
    case Kind::kEmpirical: {
      const auto n = static_cast<double>(sample_->size());
      const auto i = static_cast<std::size_t>(rng.Uniform01() * n);
      return (*sample_)[std::min(i, sample_->size() - 1)];
    }
  }
  return a_;
}

double ParameterDistribution::mean() const {
  switch (kind_) {
    case Kind::kConstant:
    case Kind::kNormal:
      return a_;
    case Kind::kLognormal:
      return c_;
    case Kind::kUniform:
      return (a_ + b_) / 2;
    case Kind::kTriangular:
      return (a_ + b_ + c_) / 3;
    case Kind::kEmpirical:
      return std::accumulate(sample_->begin(), sample_->end(), 0.0) /
             static_cast<double>(sample_->size());
  }
  return a_;
}

double ParameterDistribution::variance() const {
  switch (kind_) {
    case Kind::kConstant:
      return 0;
    case Kind::kNormal:
      return b_ * b_;
    case Kind::kLognormal:
      return std::expm1(b_ * b_) * c_ * c_;
    case Kind::kUniform:
      return (b_ - a_) * (b_ - a_) / 12;
    case Kind::kTriangular:
      return (a_ * a_ + b_ * b_ + c_ * c_ - a_ * b_ - a_ * c_ - b_ * c_) / 18;
    case Kind::kEmpirical: {
      const double m = mean();
      double s = 0;
      for (double v : *sample_) s += (v - m) * (v - m);
      return s / static_cast<double>(sample_->size());
    }
  }
  return 0;
}

namespace {

OutputSummary Summarize(std::string name, std::vector<double> values, std::size_t non_finite,
                        const Options& options) {
  OutputSummary s;
  s.name = std::move(name);
  s.finite = values.size();
  s.non_finite = non_finite;
  s.histogram.counts.assign(options.histogram_bins, 0);
  if (values.empty()) {
    s.mean = s.stddev = s.min = s.max = kNaN;
    s.quantiles.assign(options.quantiles.size(), kNaN);
    return s;
  }
  const auto n = static_cast<double>(values.size());
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
  double ss = 0;
  for (double v : values) ss += (v - s.mean) * (v - s.mean);
  s.stddev = values.size() > 1 ? std::sqrt(ss / (n - 1)) : 0;
  std::sort(values.begin(), values.end());
  s.min = values.front();
  s.max = values.back();
  for (double q : options.quantiles) {
    const double pos = q * (n - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const std::size_t hi = std::min(lo + 1, values.size() - 1);
    s.quantiles.push_back(values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]));
  }
  s.histogram.lo = s.min;
  s.histogram.hi = s.max;
  const double width = (s.max - s.min) / static_cast<double>(options.histogram_bins);
  for (double v : values) {
    std::size_t bin = width > 0 ? static_cast<std::size_t>((v - s.min) / width) : 0;
    s.histogram.counts[std::min(bin, options.histogram_bins - 1)]++;
  }
  return s;
}

core::Status CheckOptions(const std::vector<Parameter>& parameters,
                          const std::vector<std::string>& outputs, const Options& o) {
  auto bad = [](std::string m) { return core::Status("MC_BAD_OPTIONS", std::move(m)); };
  if (o.runs == 0) return bad("runs must be at least 1");
  if (o.threads == 0) return bad("threads must be at least 1");
  if (o.histogram_bins == 0) return bad("histogram_bins must be at least 1");
  for (double q : o.quantiles) {
    if (!(q >= 0 && q <= 1)) return bad(fmt::format("quantile {} is outside [0, 1]", q));
  }
  std::set<std::string> seen;
  for (const auto& p : parameters) {
    if (!seen.insert(p.name).second) return bad(fmt::format("parameter '{}' twice", p.name));
  }
  seen.clear();
  for (const auto& name : outputs) {
    if (!seen.insert(name).second) return bad(fmt::format("output '{}' twice", name));
  }
  return {};
}

// Per-run seeds: parameters from stream (seed, i); the run's own seed from a second derivation so
// it is unrelated to the parameter draws.
std::uint64_t RunSeed(std::uint64_t seed, std::size_t i) {
  return des::StreamSeed(des::StreamSeed(seed, i), 0);
}

}  // namespace

core::Result<Report> Run(const std::vector<Parameter>& parameters,
                         const std::vector<std::string>& output_names, const RunFunction& run,
                         const Options& options) {
  if (auto s = CheckOptions(parameters, output_names, options); !s.ok()) return s;
  const std::size_t runs = options.runs;
  const std::size_t np = parameters.size();
  const std::size_t no = output_names.size();
  // One row per run, written only by the thread that ran it.
  std::vector<double> params(runs * np, kNaN);
  std::vector<double> results(runs * no, kNaN);
  std::vector<char> done(runs, 0);  // 1 ok, 2 failed
  std::vector<core::Status> failures(runs);
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> finished{0};
  std::mutex progress_mu;

  auto work = [&] {
    while (options.cancel == nullptr || !options.cancel->load(std::memory_order_relaxed)) {
      const std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= runs) break;
      des::RandomStream rng(des::StreamSeed(options.seed, i));
      std::span<double> p(params.data() + i * np, np);
      for (std::size_t k = 0; k < np; ++k) p[k] = parameters[k].distribution.Sample(rng);
      core::Status failure;
      try {
        auto out = run(RunInput{i, p, RunSeed(options.seed, i)});
        if (!out.ok()) {
          failure = out.status();
        } else if (out->size() != no) {
          failure = core::Status("MC_BAD_OUTPUT", fmt::format("run {} returned {} outputs, not {}",
                                                              i, out->size(), no));
        } else {
          std::copy(out->begin(), out->end(),
                    results.begin() + static_cast<std::ptrdiff_t>(i * no));
        }
      } catch (const std::exception& e) {
        failure = core::Status("MC_RUN_THREW", fmt::format("run {} threw: {}", i, e.what()));
      } catch (...) {
        failure = core::Status("MC_RUN_THREW", fmt::format("run {} threw", i));
      }
      done[i] = failure.ok() ? 1 : 2;
      if (!failure.ok()) failures[i] = std::move(failure);
      const std::size_t n = finished.fetch_add(1) + 1;
      if (options.progress) {
        std::lock_guard lock(progress_mu);
        options.progress(n, runs);
      }
    }
  };

  const std::size_t k = std::min(options.threads, runs);
  if (k == 1) {
    work();
  } else {
    std::vector<std::jthread> pool;
    pool.reserve(k);
    for (std::size_t t = 0; t < k; ++t) pool.emplace_back(work);
  }  // joined here

  Report report;
  report.runs_requested = runs;
  for (std::size_t i = 0; i < runs; ++i) {
    if (done[i] == 0) continue;
    ++report.runs_completed;
    if (done[i] == 2) {
      if (report.runs_failed++ == 0) {
        report.first_failure = failures[i];
        report.first_failure_run = i;
      }
    }
  }
  report.cancelled = report.runs_completed < runs;
  for (std::size_t o = 0; o < no; ++o) {
    std::vector<double> values;
    std::size_t non_finite = 0;
    for (std::size_t i = 0; i < runs; ++i) {
      if (done[i] != 1) continue;
      const double v = results[i * no + o];
      if (std::isfinite(v)) {
        values.push_back(v);
      } else {
        ++non_finite;
      }
    }
    report.outputs.push_back(Summarize(output_names[o], std::move(values), non_finite, options));
  }
  if (options.keep_runs) {
    for (std::size_t i = 0; i < runs; ++i) {
      report.parameters.emplace_back(params.begin() + static_cast<std::ptrdiff_t>(i * np),
                                     params.begin() + static_cast<std::ptrdiff_t>((i + 1) * np));
      if (done[i] == 1) {
        report.results.emplace_back(results.begin() + static_cast<std::ptrdiff_t>(i * no),
                                    results.begin() + static_cast<std::ptrdiff_t>((i + 1) * no));
      } else {
        report.results.emplace_back(no, kNaN);
      }
    }
  }
  return report;
}

RunFunction UnitRun(UnitFactory factory, std::vector<std::string> parameter_names,
                    std::vector<std::string> output_names, double t_end, double dt) {
  return [factory = std::move(factory), parameter_names = std::move(parameter_names),
          output_names = std::move(output_names), t_end,
          dt](const RunInput& in) -> core::Result<std::vector<double>> {
    auto made = factory();
    if (!made.ok()) return made.status();
    Unit& unit = **made;
    const auto& vars = unit.variables();
    auto set = [&](std::size_t index, double v) {
      switch (vars[index].type) {
        case ValueType::kInteger:
          return unit.Set(index, static_cast<std::int64_t>(std::llround(v)));
        case ValueType::kBoolean:
          return unit.Set(index, v != 0);
        default:
          return unit.Set(index, v);
      }
    };
    for (std::size_t k = 0; k < parameter_names.size(); ++k) {
      auto index = unit.Find(parameter_names[k]);
      if (!index.ok()) return index.status();
      if (auto s = set(*index, in.parameters[k]); !s.ok()) return s;
    }
    if (std::find(parameter_names.begin(), parameter_names.end(), "seed") ==
        parameter_names.end()) {
      if (auto index = unit.Find("seed"); index.ok() && vars[*index].type == ValueType::kInteger) {
        // The run's seed as a non-negative int64 (drop the top bit).
        auto s = unit.Set(*index, static_cast<std::int64_t>(in.seed >> 1));
        if (!s.ok()) return s;
      }
    }
    if (auto s = unit.Initialize(0); !s.ok()) return s;
    double t = 0;
    while (t < t_end - 1e-12 * std::max(1.0, t_end)) {
      auto out = unit.Step(t, std::min(dt, t_end - t));
      if (!out.ok()) return out.status();
      t = out->time_reached;
      if (out->terminate) break;
    }
    std::vector<double> values;
    for (const auto& name : output_names) {
      auto index = unit.Find(name);
      if (!index.ok()) return index.status();
      auto v = unit.Get(*index);
      if (!v.ok()) return v.status();
      if (const auto* d = std::get_if<double>(&*v)) {
        values.push_back(*d);
      } else if (const auto* i = std::get_if<std::int64_t>(&*v)) {
        values.push_back(static_cast<double>(*i));
      } else if (const auto* b = std::get_if<bool>(&*v)) {
        values.push_back(*b ? 1 : 0);
      } else {
        return core::Status("SIM_WRONG_TYPE", fmt::format("output '{}' is not a number", name));
      }
    }
    return values;
  };
}

}  // namespace doppel::sim::montecarlo
