// doppel::sim::ode — ordinary differential equation units.
//
// An OdeModel is dx/dt = f(t, x, p, u) with states x, parameters p, inputs u, outputs
// y = h(t, x, p, u), and optional events: indicator functions g_i(t, x, p, u) whose zero
// crossings (in a chosen direction) are located by the solver's root finding and then run an
// action that resets states (a bouncing ball: v = -e v). Models come two ways:
//   * C++ classes registered by name (ModelRegistry; the built-ins are listed in
//     docs/sim-models.md: exponential_decay, harmonic_oscillator, logistic_growth,
//     bouncing_ball, van_der_pol, machine_thermal);
//   * the declarative JSON form (ParseModelDefinition; expressions evaluated by muParser),
//     documented with its error codes in docs/sim-models.md.
//
// OdeUnit puts a model behind sim::Unit (kind "ode"). Variables, in this order: parameters
// (kParameter), states (kState), inputs (kInput), outputs (kOutput); all are reals. Inputs are
// held constant over a step; a changed input restarts the solver at the next step (the
// right-hand side has a jump there). Solvers: CVODE BDF with Newton iteration and a dense direct
// linear solver (stiff models), or ARKODE ERKStep (explicit Runge-Kutta, non-stiff models).
//
// A Step integrates to exactly t + dt (a solver stop time, so nothing past t + dt is ever
// evaluated). When an event indicator crosses zero the integration stops at the located root,
// the event actions run, the solver restarts there and integration continues; the outcome lists
// each event with its located time.
//
// Errors (codes, all stable): see ParseModelDefinition and the OdeUnit methods below; the full
// table is in docs/sim-models.md. Nothing here throws; muParser's exceptions are caught inside.
//
// Threads: a model instance and a unit belong to one thread at a time. Definitions
// (ModelDefinition) and the registry are safe to share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "sim/unit.h"

namespace doppel::sim::ode {

struct ModelVariable {
  std::string name;
  double start =
      0;  // start value (states, inputs) or default value (parameters); unused for outputs
  std::string unit;
  std::string description;
};

// Which zero crossings of an event indicator fire the event.
enum class Crossing { kEither, kRising, kFalling };

struct ModelEvent {
  std::string name;
  Crossing crossing = Crossing::kEither;
};

// The description of a model: names, start values, events. Immutable once the model exists.
struct ModelInfo {
  std::vector<ModelVariable> states, parameters, inputs, outputs;
  std::vector<ModelEvent> events;
};

// The values a model function reads at one instant.
struct ModelPoint {
  double t = 0;
  std::span<const double> x, p, u;
};

// One model instance. Its functions may keep scratch state (the declarative form binds its
// expressions to its own storage), hence non-const; an instance serves one unit.
// Each returns false when it cannot evaluate at that point (the step fails with
// SIM_STEP_FAILED); they must not throw.
class OdeModel {
 public:
  virtual ~OdeModel() = default;
  virtual const ModelInfo& info() const = 0;

  // dx/dt at `at`, into dxdt (size = states).
  virtual bool Derivatives(const ModelPoint& at, std::span<double> dxdt) = 0;

  // Outputs at `at`, into y (size = outputs).
  virtual bool Outputs(const ModelPoint& /*at*/, std::span<double> /*y*/) { return true; }

  // Event indicators at `at`, into g (size = events); event i fires when g[i] crosses zero in
  // its direction.
  virtual bool EventIndicators(const ModelPoint& /*at*/, std::span<double> /*g*/) { return true; }

  // Event `index` fired at at.t; x holds the states there (at.x aliases nothing in x) and
  // receives the new states.
  virtual bool OnEvent(std::size_t /*index*/, const ModelPoint& /*at*/, std::span<double> /*x*/) {
    return true;
  }
};

// Builds a fresh model instance (each unit needs its own).
using ModelFactory = std::function<core::Result<std::unique_ptr<OdeModel>>()>;

// Models by name. The built-in models are present from the start. Thread-safe.
class ModelRegistry {
 public:
  // SIM_DUPLICATE_NAME when `name` is taken; SIM_BAD_NAME when it is empty.
  static core::Status Register(std::string name, ModelFactory factory);
  // A new instance of model `name`, or SIM_UNKNOWN_MODEL.
  static core::Result<std::unique_ptr<OdeModel>> Create(std::string_view name);
  // Every registered name, sorted.
  static std::vector<std::string> Names();
};

// A parsed and checked declarative model. Immutable; share it between threads and instantiate
// one model per unit.
class ModelDefinition;

// Parses the declarative JSON form (docs/sim-models.md). Every expression is compiled and every
// name it uses is resolved here, so a definition that parses instantiates and evaluates.
// Errors carry the JSON pointer of the offending member:
//   JSON_SYNTAX / JSON_TOO_LARGE / JSON_TOO_DEEP  the text is not JSON (core::ParseJson)
//   SIM_BAD_DEFINITION   wrong shape: not an object, a member of the wrong type, an unknown
//                        member, no states, a bad direction
//   SIM_BAD_NAME         a name that is not an identifier, or is reserved (t, function names)
//   SIM_DUPLICATE_NAME   a name used twice (states, parameters, inputs, outputs share one
//                        namespace; event names are unique among events)
//   SIM_NON_FINITE       a start value or parameter that is not finite (e.g. 1e999)
//   SIM_MISSING_DER      a state without "der"
//   SIM_EXPR_SYNTAX      an expression muParser cannot parse (message has the position)
//   SIM_UNKNOWN_SYMBOL   an expression uses a name that is not defined (message has the name and
//                        position)
//   SIM_CYCLIC_OUTPUTS   outputs that depend on each other in a cycle (message has the cycle)
//   SIM_BAD_EVENT_TARGET an event "set" member that is not a state
core::Result<std::shared_ptr<const ModelDefinition>> ParseModelDefinition(std::string_view json);
// The same from an already parsed JSON value (e.g. a member of a larger document).
core::Result<std::shared_ptr<const ModelDefinition>> ModelDefinitionFromJson(
    const core::json::value& json);

// The ModelInfo of a definition (names, start values, events).
const ModelInfo& DefinitionInfo(const ModelDefinition& definition);

// A new model instance evaluating `definition`.
core::Result<std::unique_ptr<OdeModel>> Instantiate(
    std::shared_ptr<const ModelDefinition> definition);

// A factory for ModelRegistry::Register that instantiates `definition`.
ModelFactory DefinitionFactory(std::shared_ptr<const ModelDefinition> definition);

enum class SolverKind {
  kCvodeBdf,   // CVODE, BDF, Newton iteration with a dense direct linear solver: stiff models
  kArkodeErk,  // ARKODE ERKStep, explicit adaptive Runge-Kutta: non-stiff models
};

struct SolverOptions {
  SolverKind solver = SolverKind::kCvodeBdf;
  double rtol = 1e-6;                      // relative tolerance
  double atol = 1e-9;                      // absolute tolerance, every state
  long max_internal_steps = 100000;        // per Step call, between events
  int erk_order = 0;                       // ERKStep method order; 0 = ARKODE's default (4)
  std::size_t max_events_per_step = 1000;  // more is taken as chattering (SIM_STEP_FAILED)
};

// Solver work so far, summed over restarts.
struct SolverStats {
  long internal_steps = 0;
  long rhs_evaluations = 0;
  long events = 0;
  long restarts = 0;  // after events and input changes
};

class OdeUnit final : public Unit {
  struct PrivateKey {
    explicit PrivateKey() = default;
  };

 public:
  // SIM_BAD_OPTIONS: rtol/atol not finite and positive, max_* zero, erk_order negative.
  // SIM_BAD_DEFINITION: a null model, or a model without states.
  static core::Result<std::unique_ptr<OdeUnit>> Create(std::unique_ptr<OdeModel> model,
                                                       const SolverOptions& options = {});
  OdeUnit(PrivateKey, std::unique_ptr<OdeModel> model, const SolverOptions& options);
  ~OdeUnit() override;
  OdeUnit(const OdeUnit&) = delete;
  OdeUnit& operator=(const OdeUnit&) = delete;

  std::string_view kind() const override { return "ode"; }
  const std::vector<Variable>& variables() const override { return variables_; }

  // Reals only (SIM_WRONG_TYPE otherwise); SIM_NON_FINITE for NaN/Inf; SIM_BAD_STATE for a
  // parameter or state after Initialize, or an output; SIM_UNKNOWN_VARIABLE for a bad index.
  core::Status Set(std::size_t index, const Value& value) override;
  core::Result<Value> Get(std::size_t index) const override;

  // SIM_BAD_STATE when called twice; SIM_NON_FINITE for a non-finite t0; SIM_STEP_FAILED when
  // the solver cannot be set up or the model cannot be evaluated at t0.
  core::Status Initialize(double t0) override;

  // SIM_BAD_STATE before Initialize or after a failed step; SIM_BAD_STEP when dt is not finite
  // and positive or t is not the time reached; SIM_STEP_FAILED when the solver fails (message
  // has SUNDIALS' reason) or more than max_events_per_step events fire.
  core::Result<StepOutcome> Step(double t, double dt) override;

  const OdeModel& model() const { return *model_; }
  SolverStats stats() const;
  double time() const { return time_; }

 private:
  struct Integrator;  // the SUNDIALS objects (ode_unit.cc)

  void UpdateOutputs();
  ModelPoint PointAt(double t, std::span<const double> x) const;

  std::unique_ptr<OdeModel> model_;
  SolverOptions options_;
  std::vector<Variable> variables_;
  std::vector<double> p_, x_, u_, y_;
  double time_ = 0;
  bool initialized_ = false;
  bool failed_ = false;
  bool inputs_changed_ = false;
  std::unique_ptr<Integrator> integrator_;
};

}  // namespace doppel::sim::ode
