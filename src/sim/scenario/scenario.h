// doppel::sim::scenario — what-if scenarios: a co-simulation (co_simulation.h) built from a JSON
// definition, started from a twin's state, run over a horizon, summarized as KPIs; with
// uncertain parameters, a Monte Carlo of it (montecarlo.h); and scenarios compared and ranked.
//
// Definition (JSON; full reference in docs/scenarios.md):
//   {
//     "name": "faster spindle",
//     "units": {"motor": {"kind": "ode", "model": "thermal"}, ...},   // kinds: UnitKinds
//     "bindings": [{"variable": "motor.T", "twin": "machine-1",
//                   "path": "motorTemperature/temperature"}],        // start from the twin
//     "at": "2026-11-26T10:00:00Z",                                   // optional: state at t
//     "connections": [{"from": "motor.T", "to": "ctrl.measured"}],
//     "parameters": {"motor.k": 0.3},                                 // overrides
//     "inputs": {"motor.P": {"times": [0, 3600], "values": [500, 1500],
//                            "interpolation": "step"}},               // or "linear"
//     "events": [{"at": 3600, "name": "M2 fails", "set": {"line.m2.down": 1}}],
//     "start": 0, "horizon": 7200, "step": 10,                        // seconds
//     "record": ["motor.T"],
//     "kpis": {"peakTemp": "max(motor.T)", "energyKWh": "integral(motor.P) / 3.6e6"},
//     "uncertainty": {"runs": 200, "seed": 7,
//                     "parameters": {"motor.k": {"normal": {"mean": 0.5, "sd": 0.05}},
//                                    "motor.load": {"empirical": {"twin": "m1",
//                                      "path": "power", "from": "now-7d"}}}}
//   }
// Order of values: the unit's own start values, then bindings (the twin's state), then
// "parameters", then the Monte Carlo draw. Inputs are set at every communication point
// (interpolated at that time); an event acts at the first communication point at or after its
// time (make "at" a multiple of "step" to be exact). Variables a KPI aggregates are recorded
// whether listed in "record" or not.
//
// Errors: SCENARIO_INVALID (the definition: what and where, as a JSON pointer), SCENARIO_KPI
// (kpi.h), SCENARIO_UNKNOWN_KIND, SCENARIO_BINDING (a bound twin or path without a usable value),
// SCENARIO_HISTORY (an empirical distribution from history without at least 2 finite values),
// SCENARIO_CANCELLED, SCENARIO_NON_FINITE (a KPI of the base run is NaN or infinite), and the
// SIM_* / MC_* codes of the master and units, prefixed with the unit.
#pragma once

#include <atomic>
#include <boost/json.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "sim/co_simulation.h"
#include "sim/montecarlo/montecarlo.h"
#include "sim/scenario/kpi.h"

namespace doppel::sim::scenario {

struct UnitSpec {
  std::string name;
  std::string kind;
  boost::json::object spec;  // the whole unit object (kind included)
  std::string pointer;       // where it is in the definition, for errors
};

struct Binding {
  PortRef variable;
  std::string twin;
  std::string path;  // "name" or "component/name"
};

struct InputSeries {
  PortRef variable;
  std::vector<double> times, values;
  bool linear = false;  // else a step (the value of the last time at or before t)
  double At(double t) const;
};

struct InjectedEvent {
  double at = 0;
  std::string name;
  std::vector<std::pair<PortRef, boost::json::value>> set;
};

// The values of a twin's property over a time range, for an empirical distribution
// ({"empirical": {"twin": "m1", "path": "cycleTime", "from": "now-7d", "to": "now"}}).
struct HistorySample {
  std::string twin, path;
  std::int64_t from_ns = 0, to_ns = 0;
};

struct UncertainParameter {
  PortRef variable;
  montecarlo::ParameterDistribution distribution;
  std::optional<HistorySample> from_history;  // distribution is filled from it before a run
  std::string pointer;                        // where it is in the definition
};

struct ScenarioDefinition {
  std::string name;
  std::vector<UnitSpec> units;
  std::vector<Binding> bindings;
  std::optional<std::int64_t> at_ns;  // bindings read the state at this time (history)
  std::vector<Connection> connections;
  std::vector<std::pair<PortRef, boost::json::value>> parameters;
  std::vector<InputSeries> inputs;
  std::vector<InjectedEvent> events;
  double start = 0, horizon = 0, step = 0;
  std::vector<PortRef> record;
  std::vector<std::pair<std::string, KpiExpression>> kpis;
  std::size_t runs = 0;  // Monte Carlo runs; 0: none
  std::uint64_t seed = 1;
  std::vector<UncertainParameter> uncertain;
};

// Parses and checks a definition's shape (not yet against the units: Validate does that).
core::Result<ScenarioDefinition> ParseScenario(const boost::json::value& json);

// Builds a unit of a kind from its spec object. Registered by the caller (the server registers
// "ode", "des", "fmu": sim/scenario/unit_kinds.h).
using UnitBuilder = std::function<core::Result<std::unique_ptr<Unit>>(const UnitSpec& spec)>;
using UnitKinds = std::map<std::string, UnitBuilder, std::less<>>;

// Reads a binding's value: the twin's current value (at_ns empty) or its value at a time.
using BindingSource = std::function<core::Result<boost::json::value>(
    const Binding& binding, std::optional<std::int64_t> at_ns)>;

// Reads the numeric values of a twin's property history (for empirical distributions).
using HistorySource = std::function<core::Result<std::vector<double>>(const HistorySample& sample)>;

struct RunControl {
  const std::atomic<bool>* cancel = nullptr;
  // (fraction done 0..1, what) — from the running thread(s), serialized.
  std::function<void(double, const std::string&)> progress;
  std::size_t threads = 1;  // Monte Carlo threads
};

struct KpiSpread {
  std::size_t runs = 0, non_finite = 0;
  double mean = 0, stddev = 0, p5 = 0, p50 = 0, p95 = 0;
  // The finite runs' values in equal bins over [histogram_lo, histogram_hi] (the last bin
  // includes histogram_hi); 20 bins.
  double histogram_lo = 0, histogram_hi = 0;
  std::vector<std::uint64_t> histogram;
};

// A recorded variable across the Monte Carlo runs: at each of up to kMaxBandPoints times of the
// base run's recording (evenly spread over its rows; fewer when many variables are recorded, so
// that a run keeps at most kMaxBandOutputs values for the bands), the quantiles of the runs' values
// there (a run's value at a time is its last recorded row at or before it). Runs that failed, and
// non-finite values, are left out of that time's quantiles; `runs` counts the rest.
struct TimeBand {
  std::string name;  // "unit.variable"
  std::vector<double> time;
  std::vector<double> p5, p25, p50, p75, p95, mean;
  std::vector<std::size_t> runs;
};
inline constexpr std::size_t kMaxBandPoints = 200;
inline constexpr std::size_t kMaxBandOutputs = 4000;

struct KpiResult {
  std::string name;
  double value = 0;                 // the base run (no draws)
  std::optional<KpiSpread> spread;  // with uncertainty
};

struct ScenarioResult {
  std::string name;
  Recording recording;  // the base run
  std::vector<KpiResult> kpis;
  std::size_t runs_requested = 0, runs_completed = 0, runs_failed = 0;
  core::Status first_failure;
  std::uint64_t seed = 0;
  std::vector<std::vector<double>> kpi_runs;  // [kpi][run], NaN where a run failed
  std::vector<TimeBand> bands;                // with Monte Carlo runs: every recorded variable
};

// Builds and initializes the co-simulation without running it: every unit, variable,
// connection, binding, input and KPI is checked.
core::Status ValidateScenario(const ScenarioDefinition& def, const UnitKinds& kinds,
                              const BindingSource& bindings, const HistorySource& history = {});

// Runs the base run, then the Monte Carlo runs (if any).
core::Result<ScenarioResult> RunScenario(const ScenarioDefinition& def, const UnitKinds& kinds,
                                         const BindingSource& bindings, const RunControl& control,
                                         const HistorySource& history = {});

// Scenario results side by side against the first (the baseline), ranked by one KPI.
struct Ranked {
  std::string scenario;
  double value = 0;           // the objective KPI (base run, or Monte Carlo mean)
  double change_pct = 0;      // vs the baseline's value, percent (positive: larger)
  double plus_minus_pct = 0;  // 95% confidence half-width of change_pct; 0 without uncertainty
  bool paired = false;        // same seed and runs: differences run by run
};
struct Recommendation {
  std::vector<Ranked> ranking;  // best first (the baseline included)
  std::string best;
  std::string text;  // "B cuts downtime 18% ± 4% vs baseline (...)"
};
core::Result<Recommendation> Recommend(
    const std::vector<std::pair<std::string, const ScenarioResult*>>& results,
    const std::string& objective, bool minimize);

}  // namespace doppel::sim::scenario
