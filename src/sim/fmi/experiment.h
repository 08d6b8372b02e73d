// doppel::sim::fmi — running an FMU over an experiment (its DefaultExperiment or the caller's),
// and the CSV the CLI writes from it.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "sim/fmi/fmu.h"

namespace doppel::sim::fmi {

struct ExperimentOptions {
  std::optional<double> start_time;  // default: DefaultExperiment startTime, else 0
  std::optional<double> stop_time;   // default: DefaultExperiment stopTime, else start + 1
  std::optional<double> step_size;   // default: DefaultExperiment stepSize, else (stop-start)/500
  // name=value pairs set before Initialize, the value parsed as the variable's type.
  std::vector<std::pair<std::string, std::string>> start_values;
  // Called after each step with (steps done, steps in all).
  std::function<void(std::size_t, std::size_t)> progress;
};

// The resolved experiment: the communication points are start + i * step (no accumulated
// rounding), the last one clipped to stop when the FMU can handle a variable step size.
struct ExperimentPlan {
  double start = 0;
  double stop = 0;
  double step = 0;
  std::size_t steps = 0;
};

// FMI_BAD_EXPERIMENT when stop < start or step <= 0.
core::Result<ExperimentPlan> PlanExperiment(const FmuUnit& unit, const ExperimentOptions& options);

// Parses `text` as the type of variable `index`: reals (strtod), integers, booleans
// (true/false/1/0), strings as given. SIM_WRONG_TYPE when it does not parse.
core::Result<Value> ParseValue(const Unit& unit, std::size_t index, const std::string& text);

// The indices of the output variables, in model description order.
std::vector<std::size_t> OutputIndices(const Unit& unit);

// Sets the start values, initializes at plan.start (stop time and tolerance given to the FMU),
// steps to plan.stop and calls `row` with the time and the output values (OutputIndices order)
// after initialization and after every step. Stops early, successfully, when the FMU asks to
// terminate. Returns the first error of the unit or of `row`.
core::Status RunExperiment(
    FmuUnit& unit, const ExperimentOptions& options,
    const std::function<core::Status(double, const std::vector<Value>&)>& row);

// CSV: the header ("time" then the names) and one row; fields quoted when they need it (RFC 4180),
// reals in the shortest form that reads back to the same double, booleans as 1/0.
std::string CsvHeader(const Unit& unit, const std::vector<std::size_t>& columns);
std::string CsvRow(double time, const std::vector<Value>& values);

}  // namespace doppel::sim::fmi
