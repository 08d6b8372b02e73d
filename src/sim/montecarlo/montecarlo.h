// doppel::sim::montecarlo — N runs of a model with uncertain parameters, over K threads, summarized
// as quantiles and histograms per output.
//
// Reproducible by seed regardless of thread count: run i draws its parameters from its own
// random stream, seeded StreamSeed(seed, i) (SplitMix64, des.h), and its results are stored at
// index i; summaries are computed after all runs, in run order. So 1 thread and 8 threads give
// the same numbers bit for bit. Only which runs complete after a cancellation depends on timing.
//
// Non-finite outputs (NaN, Inf) are counted per output and left out of its statistics — never
// averaged in silently. A run that fails (its function returns an error or throws, or returns
// the wrong number of outputs) is counted, the failure of the lowest run index is reported, and
// its outputs are left out.
//
// Error codes: MC_BAD_DISTRIBUTION (a parameter distribution that cannot be sampled: NaN/Inf,
// sd < 0, lo > hi, mode outside [lo, hi], lognormal mean <= 0, empty or non-finite empirical
// sample), MC_BAD_OPTIONS (runs or threads 0, a quantile outside [0, 1], no histogram bins,
// duplicate parameter or output names). Per run (in Report::first_failure): MC_BAD_OUTPUT,
// MC_RUN_THREW, or the code the run function returned.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "sim/des/des.h"
#include "sim/unit.h"

namespace doppel::sim::montecarlo {

class ParameterDistribution {
 public:
  enum class Kind { kConstant, kNormal, kLognormal, kUniform, kTriangular, kEmpirical };

  static core::Result<ParameterDistribution> Constant(double value);
  static core::Result<ParameterDistribution> Normal(double mean, double sd);
  // Of the variate itself (mean > 0, sd >= 0), not of its logarithm.
  static core::Result<ParameterDistribution> Lognormal(double mean, double sd);
  static core::Result<ParameterDistribution> Uniform(double lo, double hi);
  static core::Result<ParameterDistribution> Triangular(double lo, double mode, double hi);
  // Draws one of the sample's values, each with equal probability (a bootstrap).
  static core::Result<ParameterDistribution> Empirical(std::vector<double> sample);

  double Sample(des::RandomStream& rng) const;
  double mean() const;
  double variance() const;
  Kind kind() const { return kind_; }

 private:
  ParameterDistribution(Kind kind, double a, double b, double c)
      : kind_(kind), a_(a), b_(b), c_(c) {}
  Kind kind_;
  double a_ = 0, b_ = 0, c_ = 0;
  std::shared_ptr<const std::vector<double>> sample_;  // empirical only; shared, immutable
};

struct Parameter {
  std::string name;
  ParameterDistribution distribution;
};

// What one run gets: its index, its parameter values (in the order of the Parameter list) and a
// seed for any randomness of its own (a DES model's seed), derived from the master seed and the
// index like the parameters.
struct RunInput {
  std::size_t index = 0;
  std::span<const double> parameters;
  std::uint64_t seed = 0;
};

// One run: the outputs, in the order of the output names. Called concurrently from several
// threads (with different inputs): it must not share mutable state without locking.
using RunFunction = std::function<core::Result<std::vector<double>>(const RunInput&)>;

struct Options {
  std::size_t runs = 1000;
  std::size_t threads = 1;
  std::uint64_t seed = 1;
  std::vector<double> quantiles = {0.05, 0.25, 0.5, 0.75, 0.95};
  std::size_t histogram_bins = 20;
  // Checked before each run; when it becomes true no new run starts.
  const std::atomic<bool>* cancel = nullptr;
  // Called with (runs finished, runs requested) after each run, serialized (never two at once),
  // from the worker threads. Keep it cheap.
  std::function<void(std::size_t, std::size_t)> progress;
  bool keep_runs = false;  // fill Report::parameters and Report::results
};

struct Histogram {
  double lo = 0, hi = 0;  // the bins split [lo, hi] evenly; the last bin includes hi
  std::vector<std::uint64_t> counts;
};

struct OutputSummary {
  std::string name;
  std::size_t finite = 0;      // runs with a finite value
  std::size_t non_finite = 0;  // NaN or Inf: left out of everything below
  double mean = 0, stddev = 0, min = 0, max = 0;
  std::vector<double> quantiles;  // at Options::quantiles (linear interpolation between ranks)
  Histogram histogram;
};

struct Report {
  std::size_t runs_requested = 0;
  std::size_t runs_completed = 0;  // finished, failed or not
  std::size_t runs_failed = 0;
  bool cancelled = false;
  core::Status first_failure;  // of the lowest failed run index; OK when none failed
  std::size_t first_failure_run = 0;
  std::vector<OutputSummary> outputs;
  // With keep_runs: per run index, its parameters and outputs (NaN where the run did not
  // complete or failed).
  std::vector<std::vector<double>> parameters, results;
};

// Runs `options.runs` runs of `run`. Errors: MC_BAD_OPTIONS (see above). Failed runs and
// cancellation are reported in the Report, not as an error.
core::Result<Report> Run(const std::vector<Parameter>& parameters,
                         const std::vector<std::string>& output_names, const RunFunction& run,
                         const Options& options);

// A RunFunction that builds a unit, sets the parameters (by name; an integer variable gets the
// value rounded; a variable called "seed" of integer type, when present and not a parameter, gets
// the run's seed), initializes it at 0, steps it with `dt` to `t_end` and reads the outputs (by
// name; integers and booleans as doubles).
using UnitFactory = std::function<core::Result<std::unique_ptr<Unit>>()>;
RunFunction UnitRun(UnitFactory factory, std::vector<std::string> parameter_names,
                    std::vector<std::string> output_names, double t_end, double dt);

}  // namespace doppel::sim::montecarlo
