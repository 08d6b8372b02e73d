// OdeUnit: a model behind sim::Unit, integrated by CVODE (BDF) or ARKODE ERKStep.
//
// Every SUNDIALS object is owned by a unique_ptr with its own free function, declared in the
// order that makes destruction safe (solver memory first, then linear solver and matrix, then
// the vector, the context last), so every path — a failed setup included — frees everything.
//
// Events: the solver's root finding stops at a located root (CV_ROOT_RETURN / ARK_ROOT_RETURN);
// the states there go to the model's OnEvent for every root found, then the solver restarts
// from the new states (ReInit: the history of a multistep method is invalid after a jump). The
// solver's stop time is always t + dt, so the right-hand side is never evaluated past the step
// (inputs may change there).
#include <arkode/arkode_erkstep.h>
#include <cvode/cvode.h>
#include <fmt/format.h>
#include <nvector/nvector_serial.h>
#include <sundials/sundials_context.h>
#include <sunlinsol/sunlinsol_dense.h>
#include <sunmatrix/sunmatrix_dense.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <type_traits>
#include <utility>

#include "sim/ode/ode.h"

namespace doppel::sim::ode {
namespace {

struct ContextFree {
  void operator()(SUNContext c) const { SUNContext_Free(&c); }
};
struct VectorFree {
  void operator()(N_Vector v) const { N_VDestroy(v); }
};
struct MatrixFree {
  void operator()(SUNMatrix m) const { SUNMatDestroy(m); }
};
struct LinearSolverFree {
  void operator()(SUNLinearSolver s) const { SUNLinSolFree(s); }
};
struct CvodeFree {
  void operator()(void* mem) const { CVodeFree(&mem); }
};
struct ErkFree {
  void operator()(void* mem) const { ERKStepFree(&mem); }
};

template <typename Handle, typename Free>
using Owned = std::unique_ptr<std::remove_pointer_t<Handle>, Free>;

// SUNDIALS' *GetReturnFlagName return malloc'd strings.
std::string FlagName(SolverKind kind, int flag) {
  char* name =
      kind == SolverKind::kCvodeBdf ? CVodeGetReturnFlagName(flag) : ERKStepGetReturnFlagName(flag);
  std::string out = name != nullptr ? name : fmt::format("flag {}", flag);
  std::free(name);  // NOLINT(cppcoreguidelines-no-malloc): allocated by SUNDIALS with malloc
  return out;
}

core::Status StepFailed(std::string message) { return {"SIM_STEP_FAILED", std::move(message)}; }

}  // namespace

struct OdeUnit::Integrator {
  SolverKind kind = SolverKind::kCvodeBdf;
  std::size_t n = 0;
  Owned<SUNContext, ContextFree> context;
  Owned<N_Vector, VectorFree> y;
  Owned<SUNMatrix, MatrixFree> matrix;
  Owned<SUNLinearSolver, LinearSolverFree> linear_solver;
  std::unique_ptr<void, CvodeFree> cvode;
  std::unique_ptr<void, ErkFree> erk;
  std::vector<int> roots_found;
  std::string last_error;  // SUNDIALS' last message, for SIM_STEP_FAILED
  bool model_failed = false;
  SolverStats done;  // of solver runs ended by a restart (ReInit resets the counters)

  void* mem() const { return kind == SolverKind::kCvodeBdf ? cvode.get() : erk.get(); }
  std::span<double> state() const { return {N_VGetArrayPointer(y.get()), n}; }

  static int Rhs(double t, N_Vector y, N_Vector ydot, void* data) {
    auto* unit = static_cast<OdeUnit*>(data);
    const std::size_t n = unit->x_.size();
    try {
      const bool ok = unit->model_->Derivatives(unit->PointAt(t, {N_VGetArrayPointer(y), n}),
                                                {N_VGetArrayPointer(ydot), n});
      if (!ok) unit->integrator_->model_failed = true;
      return ok ? 0 : -1;
    } catch (...) {  // a model must not throw; never let it cross into C
      unit->integrator_->model_failed = true;
      return -1;
    }
  }

  static int Roots(double t, N_Vector y, double* g, void* data) {
    auto* unit = static_cast<OdeUnit*>(data);
    const std::size_t n = unit->x_.size();
    try {
      const bool ok = unit->model_->EventIndicators(unit->PointAt(t, {N_VGetArrayPointer(y), n}),
                                                    {g, unit->model_->info().events.size()});
      if (!ok) unit->integrator_->model_failed = true;
      return ok ? 0 : -1;
    } catch (...) {
      unit->integrator_->model_failed = true;
      return -1;
    }
  }

  static void OnError(int /*code*/, const char* module, const char* function, char* msg,
                      void* data) {
    static_cast<Integrator*>(data)->last_error = fmt::format("{} {}: {}", module, function, msg);
  }

  // The solver's counters since its last (re)start.
  SolverStats Current() const {
    SolverStats s;
    if (kind == SolverKind::kCvodeBdf) {
      CVodeGetNumSteps(mem(), &s.internal_steps);
      CVodeGetNumRhsEvals(mem(), &s.rhs_evaluations);
    } else {
      ERKStepGetNumSteps(mem(), &s.internal_steps);
      ERKStepGetNumRhsEvals(mem(), &s.rhs_evaluations);
    }
    return s;
  }

  int Restart(double t) {
    const SolverStats c = Current();
    done.internal_steps += c.internal_steps;
    done.rhs_evaluations += c.rhs_evaluations;
    ++done.restarts;
    return kind == SolverKind::kCvodeBdf ? CVodeReInit(mem(), t, y.get())
                                         : ERKStepReInit(mem(), Rhs, t, y.get());
  }

  int SetStopTime(double t) {
    return kind == SolverKind::kCvodeBdf ? CVodeSetStopTime(mem(), t)
                                         : ERKStepSetStopTime(mem(), t);
  }

  int Advance(double tout, double* reached) {
    return kind == SolverKind::kCvodeBdf ? CVode(mem(), tout, y.get(), reached, CV_NORMAL)
                                         : ERKStepEvolve(mem(), tout, y.get(), reached, ARK_NORMAL);
  }

  int RootInfo() {
    return kind == SolverKind::kCvodeBdf ? CVodeGetRootInfo(mem(), roots_found.data())
                                         : ERKStepGetRootInfo(mem(), roots_found.data());
  }

  core::Status Fail(std::string_view what, int flag) const {
    std::string message = fmt::format("{} failed: {}", what, FlagName(kind, flag));
    if (model_failed) message += " (the model could not be evaluated)";
    if (!last_error.empty()) message += " — " + last_error;
    return StepFailed(std::move(message));
  }
};

OdeUnit::OdeUnit(PrivateKey /*key*/, std::unique_ptr<OdeModel> model, const SolverOptions& options)
    : model_(std::move(model)), options_(options) {
  const ModelInfo& info = model_->info();
  auto add = [&](const std::vector<ModelVariable>& vars, Causality causality,
                 std::vector<double>& values) {
    for (const auto& v : vars) {
      Variable var;
      var.name = v.name;
      var.causality = causality;
      var.type = ValueType::kReal;
      if (causality != Causality::kOutput) var.start = v.start;
      var.unit = v.unit;
      var.description = v.description;
      variables_.push_back(std::move(var));
      values.push_back(v.start);
    }
  };
  add(info.parameters, Causality::kParameter, p_);
  add(info.states, Causality::kState, x_);
  add(info.inputs, Causality::kInput, u_);
  add(info.outputs, Causality::kOutput, y_);
  std::fill(y_.begin(), y_.end(), 0.0);
  UpdateOutputs();
}

OdeUnit::~OdeUnit() = default;

core::Result<std::unique_ptr<OdeUnit>> OdeUnit::Create(std::unique_ptr<OdeModel> model,
                                                       const SolverOptions& options) {
  if (model == nullptr) return core::Status("SIM_BAD_DEFINITION", "no model given");
  if (model->info().states.empty()) {
    return core::Status("SIM_BAD_DEFINITION", "an ODE model needs at least one state");
  }
  auto positive = [](double v) { return std::isfinite(v) && v > 0; };
  if (!positive(options.rtol) || !positive(options.atol)) {
    return core::Status("SIM_BAD_OPTIONS",
                        fmt::format("rtol and atol must be finite and positive (got {} and {})",
                                    options.rtol, options.atol));
  }
  if (options.max_internal_steps <= 0 || options.max_events_per_step == 0 ||
      options.erk_order < 0) {
    return core::Status("SIM_BAD_OPTIONS",
                        "max_internal_steps and max_events_per_step must be positive and "
                        "erk_order not negative");
  }
  return std::make_unique<OdeUnit>(PrivateKey{}, std::move(model), options);
}

ModelPoint OdeUnit::PointAt(double t, std::span<const double> x) const {
  return ModelPoint{t, x, p_, u_};
}

void OdeUnit::UpdateOutputs() {
  if (y_.empty()) return;
  bool ok = false;
  try {
    ok = model_->Outputs(PointAt(time_, x_), y_);
  } catch (...) {
    ok = false;
  }
  if (!ok) std::fill(y_.begin(), y_.end(), std::nan(""));
}

core::Status OdeUnit::Set(std::size_t index, const Value& value) {
  if (index >= variables_.size()) {
    return {"SIM_UNKNOWN_VARIABLE", fmt::format("no variable with index {}", index)};
  }
  const Variable& var = variables_[index];
  const double* v = std::get_if<double>(&value);
  if (v == nullptr) {
    return {"SIM_WRONG_TYPE", fmt::format("'{}' is a real; set it to a double", var.name)};
  }
  if (!std::isfinite(*v)) {
    return {"SIM_NON_FINITE", fmt::format("'{}' cannot be set to {}", var.name, *v)};
  }
  const std::size_t np = p_.size();
  const std::size_t nx = x_.size();
  switch (var.causality) {
    case Causality::kParameter:
    case Causality::kState:
      if (initialized_) {
        return {"SIM_BAD_STATE", fmt::format("'{}' can only be set before Initialize", var.name)};
      }
      if (index < np) {
        p_[index] = *v;
      } else {
        x_[index - np] = *v;
      }
      break;
    case Causality::kInput: {
      double& u = u_[index - np - nx];
      if (u != *v) inputs_changed_ = true;
      u = *v;
      break;
    }
    default:
      return {"SIM_BAD_STATE", fmt::format("'{}' is an output; it cannot be set", var.name)};
  }
  UpdateOutputs();
  return {};
}

core::Result<Value> OdeUnit::Get(std::size_t index) const {
  const std::size_t np = p_.size();
  const std::size_t nx = x_.size();
  const std::size_t nu = u_.size();
  if (index < np) return Value(p_[index]);
  index -= np;
  if (index < nx) return Value(x_[index]);
  index -= nx;
  if (index < nu) return Value(u_[index]);
  index -= nu;
  if (index < y_.size()) return Value(y_[index]);
  return core::Status("SIM_UNKNOWN_VARIABLE",
                      fmt::format("no variable with index {}", index + np + nx + nu));
}

core::Status OdeUnit::Initialize(double t0) {
  if (initialized_) return {"SIM_BAD_STATE", "Initialize was already called"};
  if (!std::isfinite(t0)) return {"SIM_NON_FINITE", "the start time is not finite"};
  auto in = std::make_unique<Integrator>();
  in->kind = options_.solver;
  in->n = x_.size();
  const auto n = static_cast<sunindextype>(x_.size());
  const std::size_t ne = model_->info().events.size();

  SUNContext ctx = nullptr;
  if (SUNContext_Create(nullptr, &ctx) != 0) return StepFailed("SUNContext_Create failed");
  in->context.reset(ctx);
  in->y.reset(N_VNew_Serial(n, ctx));
  if (in->y == nullptr) return StepFailed("N_VNew_Serial failed");
  std::copy(x_.begin(), x_.end(), in->state().begin());
  time_ = t0;

  // Check the model evaluates at t0 before handing it to a solver, for a clear message.
  {
    std::vector<double> scratch(std::max(x_.size(), ne));
    bool ok = false;
    try {
      ok = model_->Derivatives(PointAt(t0, x_), {scratch.data(), x_.size()}) &&
           model_->EventIndicators(PointAt(t0, x_), {scratch.data(), ne});
    } catch (...) {
      ok = false;
    }
    if (!ok) return StepFailed(fmt::format("the model cannot be evaluated at t0 = {}", t0));
  }

  int flag = 0;
  auto check = [&](std::string_view what) -> core::Status {
    if (flag < 0) return in->Fail(what, flag);
    return {};
  };
  if (in->kind == SolverKind::kCvodeBdf) {
    in->cvode.reset(CVodeCreate(CV_BDF, ctx));
    if (in->cvode == nullptr) return StepFailed("CVodeCreate failed");
    void* mem = in->cvode.get();
    flag = CVodeSetErrHandlerFn(mem, Integrator::OnError, in.get());
    if (auto s = check("CVodeSetErrHandlerFn"); !s.ok()) return s;
    flag = CVodeInit(mem, Integrator::Rhs, t0, in->y.get());
    if (auto s = check("CVodeInit"); !s.ok()) return s;
    flag = CVodeSetUserData(mem, this);
    flag = CVodeSStolerances(mem, options_.rtol, options_.atol);
    if (auto s = check("CVodeSStolerances"); !s.ok()) return s;
    in->matrix.reset(SUNDenseMatrix(n, n, ctx));
    if (in->matrix == nullptr) return StepFailed("SUNDenseMatrix failed");
    in->linear_solver.reset(SUNLinSol_Dense(in->y.get(), in->matrix.get(), ctx));
    if (in->linear_solver == nullptr) return StepFailed("SUNLinSol_Dense failed");
    flag = CVodeSetLinearSolver(mem, in->linear_solver.get(), in->matrix.get());
    if (auto s = check("CVodeSetLinearSolver"); !s.ok()) return s;
    flag = CVodeSetMaxNumSteps(mem, options_.max_internal_steps);
    if (auto s = check("CVodeSetMaxNumSteps"); !s.ok()) return s;
    if (ne > 0) {
      flag = CVodeRootInit(mem, static_cast<int>(ne), Integrator::Roots);
      if (auto s = check("CVodeRootInit"); !s.ok()) return s;
    }
  } else {
    in->erk.reset(ERKStepCreate(Integrator::Rhs, t0, in->y.get(), ctx));
    if (in->erk == nullptr) return StepFailed("ERKStepCreate failed");
    void* mem = in->erk.get();
    flag = ERKStepSetErrHandlerFn(mem, Integrator::OnError, in.get());
    if (auto s = check("ERKStepSetErrHandlerFn"); !s.ok()) return s;
    flag = ERKStepSetUserData(mem, this);
    flag = ERKStepSStolerances(mem, options_.rtol, options_.atol);
    if (auto s = check("ERKStepSStolerances"); !s.ok()) return s;
    if (options_.erk_order > 0) {
      flag = ERKStepSetOrder(mem, options_.erk_order);
      if (auto s = check("ERKStepSetOrder"); !s.ok()) return s;
    }
    flag = ERKStepSetMaxNumSteps(mem, options_.max_internal_steps);
    if (auto s = check("ERKStepSetMaxNumSteps"); !s.ok()) return s;
    if (ne > 0) {
      flag = ERKStepRootInit(mem, static_cast<int>(ne), Integrator::Roots);
      if (auto s = check("ERKStepRootInit"); !s.ok()) return s;
    }
  }
  if (ne > 0) {
    std::vector<int> directions;
    for (const auto& e : model_->info().events) {
      directions.push_back(e.crossing == Crossing::kRising    ? 1
                           : e.crossing == Crossing::kFalling ? -1
                                                              : 0);
    }
    flag = in->kind == SolverKind::kCvodeBdf
               ? CVodeSetRootDirection(in->mem(), directions.data())
               : ERKStepSetRootDirection(in->mem(), directions.data());
    if (auto s = check("SetRootDirection"); !s.ok()) return s;
    // An indicator that is zero at the start (a ball resting on the floor) is not an error.
    if (in->kind == SolverKind::kCvodeBdf) {
      CVodeSetNoInactiveRootWarn(in->mem());
    } else {
      ERKStepSetNoInactiveRootWarn(in->mem());
    }
    in->roots_found.assign(ne, 0);
  }
  integrator_ = std::move(in);
  initialized_ = true;
  inputs_changed_ = false;
  UpdateOutputs();
  return {};
}

core::Result<StepOutcome> OdeUnit::Step(double t, double dt) {
  if (!initialized_) return core::Status("SIM_BAD_STATE", "Step before Initialize");
  if (failed_) return core::Status("SIM_BAD_STATE", "an earlier step failed; the unit is done");
  if (!std::isfinite(t) || !std::isfinite(dt) || dt <= 0) {
    return core::Status("SIM_BAD_STEP",
                        fmt::format("Step needs a finite t and a positive dt (got {}, {})", t, dt));
  }
  if (std::abs(t - time_) > 1e-9 * std::max(1.0, std::abs(time_))) {
    return core::Status("SIM_BAD_STEP",
                        fmt::format("Step starts at {} but the unit is at {}", t, time_));
  }
  Integrator& in = *integrator_;
  const double tout = time_ + dt;
  StepOutcome outcome;
  in.last_error.clear();
  in.model_failed = false;
  if (inputs_changed_) {
    std::copy(x_.begin(), x_.end(), in.state().begin());
    if (int flag = in.Restart(time_); flag < 0) {
      failed_ = true;
      return in.Fail("restart after an input change", flag);
    }
    inputs_changed_ = false;
  }
  const auto& events = model_->info().events;
  std::vector<double> before(x_.size());
  std::size_t fired = 0;
  double reached = time_;
  while (true) {
    if (int flag = in.SetStopTime(tout); flag < 0) {
      failed_ = true;
      return in.Fail("SetStopTime", flag);
    }
    const int flag = in.Advance(tout, &reached);
    if (flag == CV_ROOT_RETURN) {  // ARK_ROOT_RETURN has the same value
      in.RootInfo();
      std::span<double> y = in.state();
      std::copy(y.begin(), y.end(), before.begin());
      std::copy(y.begin(), y.end(), x_.begin());
      for (std::size_t i = 0; i < events.size(); ++i) {
        if (in.roots_found[i] == 0) continue;
        bool ok = false;
        try {
          ok = model_->OnEvent(i, PointAt(reached, before), x_);
        } catch (...) {
          ok = false;
        }
        if (!ok) {
          failed_ = true;
          return StepFailed(
              fmt::format("event '{}' at t = {} could not be applied", events[i].name, reached));
        }
        outcome.events.push_back(Event{reached, events[i].name});
        ++in.done.events;
        if (++fired > options_.max_events_per_step) {
          failed_ = true;
          return StepFailed(fmt::format(
              "more than {} events in one step (last '{}' at t = {}): the model chatters",
              options_.max_events_per_step, events[i].name, reached));
        }
      }
      std::copy(x_.begin(), x_.end(), y.begin());
      if (int f = in.Restart(reached); f < 0) {
        failed_ = true;
        return in.Fail("restart after an event", f);
      }
      // A root at the very end of the step: the step is done (a solver cannot start and stop
      // at the same time).
      if (tout - reached <= 1e-12 * std::max(1.0, std::abs(tout))) break;
      continue;
    }
    if (flag < 0) {
      failed_ = true;
      return in.Fail(in.kind == SolverKind::kCvodeBdf ? "CVode" : "ERKStepEvolve", flag);
    }
    break;  // CV_SUCCESS / CV_TSTOP_RETURN (and the ARK_ equivalents): at tout
  }
  std::span<const double> y = in.state();
  std::copy(y.begin(), y.end(), x_.begin());
  time_ = tout;
  UpdateOutputs();
  outcome.time_reached = tout;
  return outcome;
}

SolverStats OdeUnit::stats() const {
  if (integrator_ == nullptr) return {};
  SolverStats s = integrator_->done;
  const SolverStats c = integrator_->Current();
  s.internal_steps += c.internal_steps;
  s.rhs_evaluations += c.rhs_evaluations;
  return s;
}

}  // namespace doppel::sim::ode
