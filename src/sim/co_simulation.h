// doppel::sim — the co-simulation master: connects simulation units (unit.h) output → input,
// steps them together at a communication step, and records chosen variables.
//
//   CoSimulation sim;
//   sim.AddUnit("plant", std::move(ode_unit));
//   sim.AddUnit("controller", std::move(fmu_unit));
//   sim.Connect({{"plant", "T"}, {"controller", "measured"}});
//   sim.Connect({{"controller", "power"}, {"plant", "P"}});
//   sim.Record({"plant", "T"});
//   sim.Initialize(0);
//   while (sim.time() < 3600) sim.Step(1.0);
//   sim.recording()                       // time and every recorded variable, one row a step
//
// Algorithm (Jacobi with consistent communication points). At each communication time t the
// master visits the units in evaluation order, setting each unit's connected inputs from their
// sources' current values; then it records; then every unit steps from t to t + dt with its
// inputs held (zero-order hold). The evaluation order is a topological order of the graph whose
// edges are the connections A.y → B.u where A.y has direct feedthrough (Unit::
// HasDirectFeedthrough): B must see the A.y that A's own new inputs produce. A cycle in that
// graph is an algebraic loop (every output on it depends instantly on the next input): refused
// at Initialize with SIM_ALGEBRAIC_LOOP naming the cycle, since a fixed-point iteration would
// need units that can roll back (FMI's canGetAndSetFMUstate) — out of scope. A cycle through
// a unit without feedthrough (a plant whose outputs are its states) is fine.
//
// Error codes: SIM_DUPLICATE_UNIT, SIM_UNKNOWN_UNIT, SIM_UNKNOWN_VARIABLE, SIM_BAD_CONNECTION
// (target not an input, types differ, an input connected twice), SIM_ALGEBRAIC_LOOP,
// SIM_BAD_STATE (calls out of order), SIM_BAD_STEP (dt not positive and finite), and whatever a
// unit answers, prefixed with the unit's name.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "sim/unit.h"

namespace doppel::sim {

// "unit.variable". Variable names may contain dots (FMI: "body.pos"): the unit is up to the
// first dot.
struct PortRef {
  std::string unit;
  std::string variable;
  std::string ToString() const { return unit + "." + variable; }
};
core::Result<PortRef> ParsePortRef(std::string_view text);

struct Connection {
  PortRef from;  // an output (or a state or local: anything readable)
  PortRef to;    // an input
};

// Recorded values, one row per communication point (including the start). Numeric values only:
// integers and booleans as doubles.
struct Recording {
  std::vector<std::string> names;            // "unit.variable", in Record order
  std::vector<double> time;                  // one per row
  std::vector<std::vector<double>> columns;  // columns[i][row]
  std::vector<Event> events;                 // every unit event, name prefixed "unit."
  // The column of `name`, or nullptr.
  const std::vector<double>* Column(std::string_view name) const;
};

class CoSimulation {
 public:
  CoSimulation() = default;
  CoSimulation(const CoSimulation&) = delete;
  CoSimulation& operator=(const CoSimulation&) = delete;

  core::Status AddUnit(std::string name, std::unique_ptr<Unit> unit);
  core::Status Connect(const Connection& c);
  // Parameter and start values before Initialize; inputs that no connection feeds, any time.
  core::Status Set(const PortRef& p, const Value& v);
  core::Result<Value> Get(const PortRef& p) const;
  // Adds a variable to the recording (before Initialize). Strings cannot be recorded
  // (SIM_WRONG_TYPE).
  core::Status Record(const PortRef& p);

  // Called at every communication point before the values are propagated and recorded: at t0
  // before the units are initialized, then at each time a step reaches. The place to set
  // inputs and inject events so that the recording at t shows what the units see from t on.
  // An error stops Initialize or Step with it.
  void SetCommunicationHook(std::function<core::Status(double t)> hook) { hook_ = std::move(hook); }

  // Checks the connection graph, runs the hook at t0, initializes every unit at t0, propagates
  // and records t0.
  core::Status Initialize(double t0);
  // One communication step of dt. Stops early when a unit asks to terminate (terminated()).
  core::Status Step(double dt);

  double time() const { return time_; }
  bool terminated() const { return terminated_; }
  const Recording& recording() const { return recording_; }
  // Unit names in evaluation order (after Initialize).
  std::vector<std::string> EvaluationOrder() const;

 private:
  struct Slot {
    std::string name;
    std::unique_ptr<Unit> unit;
    // Connections into this unit: (source unit index, source variable, target variable).
    struct In {
      std::size_t from_unit, from_var, to_var;
    };
    std::vector<In> inputs;
  };
  struct Resolved {
    std::size_t unit, var;
  };
  core::Result<Resolved> Resolve(const PortRef& p) const;
  core::Status Propagate();
  void RecordRow();
  static core::Status Prefixed(const std::string& unit, const core::Status& s);

  std::vector<Slot> slots_;
  std::vector<std::size_t> order_;
  std::vector<Resolved> recorded_;
  Recording recording_;
  std::function<core::Status(double)> hook_;
  double time_ = 0;
  bool initialized_ = false;
  bool terminated_ = false;
};

}  // namespace doppel::sim
