// doppel::sim — one interface for every simulation unit: ODE models (sim/ode), imported FMI
// co-simulation units (sim/fmi) and discrete-event models (sim/des).
//
// A unit is a model description (its variables: parameters, states, inputs, outputs, each with a
// type and a start value) plus the evolving data of one instance. The life cycle follows FMI's
// co-simulation calling sequence so that every kind of unit can sit behind the same master:
//
//   Set(parameters / start values) → Initialize(t0) → { Set(inputs); Step(t, dt); Get(outputs) }*
//
// Errors are values: every call returns a Status or a Result with a stable code
// (SIM_UNKNOWN_VARIABLE, SIM_WRONG_TYPE, SIM_BAD_STATE, SIM_STEP_FAILED, …; each unit documents
// its own). A unit never throws and never aborts the process on bad input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/status.h"

namespace doppel::sim {

// What a variable is for. Parameters are fixed after Initialize; states evolve inside the unit
// (readable, settable only before Initialize as start values); inputs are set between steps by the
// master; outputs are read after each step. kLocal: computed, readable, not meant to be connected.
enum class Causality { kParameter, kState, kInput, kOutput, kLocal };

enum class ValueType { kReal, kInteger, kBoolean, kString };

using Value = std::variant<double, std::int64_t, bool, std::string>;

struct Variable {
  std::string name;  // unique within the unit; FMI units use the model description's names
  Causality causality = Causality::kLocal;
  ValueType type = ValueType::kReal;
  std::optional<Value> start;
  std::string unit;         // e.g. "K", "m/s"; empty when unknown
  std::string description;  // free text
};

// Something that happened inside a step: a state event located by root finding (a bounce), a
// time event, a discrete-event model's event. `time` is where it happened, not where the step
// ended.
struct Event {
  double time = 0;
  std::string name;
};

struct StepOutcome {
  double time_reached = 0;  // t + dt unless the unit stopped early (terminate)
  bool terminate = false;   // the unit asks the master to stop (FMI terminateSimulation)
  std::vector<Event> events;
};

class Unit {
 public:
  virtual ~Unit() = default;

  // The unit's kind: "ode", "fmi2", "fmi3", "des".
  virtual std::string_view kind() const = 0;

  // Every variable, in a fixed order; an index into this vector names a variable in Get/Set.
  virtual const std::vector<Variable>& variables() const = 0;

  // The index of the variable called `name`, or SIM_UNKNOWN_VARIABLE naming it.
  core::Result<std::size_t> Find(std::string_view name) const {
    const auto& vars = variables();
    for (std::size_t i = 0; i < vars.size(); ++i) {
      if (vars[i].name == name) return i;
    }
    return core::Status(
        "SIM_UNKNOWN_VARIABLE",
        "the " + std::string(kind()) + " unit has no variable '" + std::string(name) + "'");
  }

  // Sets a parameter or state start value (before Initialize) or an input (any time).
  // SIM_WRONG_TYPE when the value's type differs from the variable's; SIM_BAD_STATE when the
  // variable cannot be set now (a parameter after Initialize, an output).
  virtual core::Status Set(std::size_t index, const Value& value) = 0;

  // The current value of any variable.
  virtual core::Result<Value> Get(std::size_t index) const = 0;

  // Enters the simulation at t0 with the values set so far. Called once.
  virtual core::Status Initialize(double t0) = 0;

  // Advances from t to t + dt (t equals the previous time_reached). REQUIRES: Initialize ok.
  virtual core::Result<StepOutcome> Step(double t, double dt) = 0;

  // Whether output `index` may change when an input changes without a step in between (FMI's
  // direct dependency of an output on an input). The co-simulation master orders units by it and
  // reports a cycle of such dependencies as an algebraic loop. The default, true, is the safe
  // answer; a unit whose outputs are functions of its states alone says false.
  virtual bool HasDirectFeedthrough(std::size_t index) const {
    (void)index;
    return true;
  }
};

}  // namespace doppel::sim
