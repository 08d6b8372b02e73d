// The C++ models shipped with doppel and the registry that names them. Each is small enough to
// check against a closed form or physical intuition; docs/sim-models.md lists their variables.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "sim/ode/ode.h"

namespace doppel::sim::ode {
namespace {

ModelVariable Var(std::string name, double start, std::string unit = {},
                  std::string description = {}) {
  return ModelVariable{std::move(name), start, std::move(unit), std::move(description)};
}

class BuiltinModel : public OdeModel {
 public:
  explicit BuiltinModel(ModelInfo info) : info_(std::move(info)) {}
  const ModelInfo& info() const override { return info_; }

 private:
  ModelInfo info_;
};

// x' = -k x. x(t) = x0 exp(-k t).
class ExponentialDecay final : public BuiltinModel {
 public:
  ExponentialDecay()
      : BuiltinModel({.states = {Var("x", 1, "", "the decaying quantity")},
                      .parameters = {Var("k", 0.5, "1/s", "decay rate")},
                      .inputs = {},
                      .outputs = {},
                      .events = {}}) {}
  bool Derivatives(const ModelPoint& at, std::span<double> dx) override {
    dx[0] = -at.p[0] * at.x[0];
    return true;
  }
};

// x'' = -w^2 x as x' = v, v' = -w^2 x. x(t) = x0 cos(w t) + v0/w sin(w t).
class HarmonicOscillator final : public BuiltinModel {
 public:
  HarmonicOscillator()
      : BuiltinModel({.states = {Var("x", 1, "m", "position"), Var("v", 0, "m/s", "velocity")},
                      .parameters = {Var("omega", 1, "rad/s", "angular frequency")},
                      .inputs = {},
                      .outputs = {Var("energy", 0, "J/kg", "(v^2 + omega^2 x^2) / 2")},
                      .events = {}}) {}
  bool Derivatives(const ModelPoint& at, std::span<double> dx) override {
    dx[0] = at.x[1];
    dx[1] = -at.p[0] * at.p[0] * at.x[0];
    return true;
  }
  bool Outputs(const ModelPoint& at, std::span<double> y) override {
    const double w = at.p[0];
    y[0] = 0.5 * (at.x[1] * at.x[1] + w * w * at.x[0] * at.x[0]);
    return true;
  }
};

// n' = r n (1 - n / K). n(t) = K / (1 + (K / n0 - 1) exp(-r t)).
class LogisticGrowth final : public BuiltinModel {
 public:
  LogisticGrowth()
      : BuiltinModel({.states = {Var("n", 1, "", "population")},
                      .parameters = {Var("r", 1, "1/s", "growth rate"),
                                     Var("capacity", 10, "", "carrying capacity K")},
                      .inputs = {},
                      .outputs = {},
                      .events = {}}) {}
  bool Derivatives(const ModelPoint& at, std::span<double> dx) override {
    dx[0] = at.p[0] * at.x[0] * (1 - at.x[0] / at.p[1]);
    return true;
  }
};

// A ball falling under gravity and bouncing with restitution e: h' = v, v' = -g; when h falls
// through 0, v = -e v. Bounces get shorter geometrically; after about
// log(1e-12) / log(e) of them the flights are shorter than the solver can resolve and the unit
// fails with SIM_STEP_FAILED (max_events_per_step), which is the physics (Zeno) made visible.
class BouncingBall final : public BuiltinModel {
 public:
  BouncingBall()
      : BuiltinModel({.states = {Var("h", 10, "m", "height"), Var("v", 0, "m/s", "velocity")},
                      .parameters = {Var("g", 9.81, "m/s2", "gravity"),
                                     Var("e", 0.8, "", "coefficient of restitution")},
                      .inputs = {},
                      .outputs = {},
                      .events = {ModelEvent{"bounce", Crossing::kFalling}}}) {}
  bool Derivatives(const ModelPoint& at, std::span<double> dx) override {
    dx[0] = at.x[1];
    dx[1] = -at.p[0];
    return true;
  }
  bool EventIndicators(const ModelPoint& at, std::span<double> g) override {
    g[0] = at.x[0];
    return true;
  }
  bool OnEvent(std::size_t /*index*/, const ModelPoint& at, std::span<double> x) override {
    x[1] = -at.p[1] * at.x[1];
    return true;
  }
};

// x' = y, y' = mu (1 - x^2) y - x. Stiff for large mu (use CVODE).
class VanDerPol final : public BuiltinModel {
 public:
  VanDerPol()
      : BuiltinModel({.states = {Var("x", 2), Var("y", 0)},
                      .parameters = {Var("mu", 1, "", "damping; stiff when large")},
                      .inputs = {},
                      .outputs = {},
                      .events = {}}) {}
  bool Derivatives(const ModelPoint& at, std::span<double> dx) override {
    const double x = at.x[0];
    const double y = at.x[1];
    dx[0] = y;
    dx[1] = at.p[0] * (1 - x * x) * y - x;
    return true;
  }
};

// A DC motor driving a load, with a three-body thermal network: winding → housing → coolant →
// ambient. Electrical dynamics are taken as instantaneous (the L/R time constant is
// milliseconds against a mechanical second and thermal minutes), so the current is
// i = (V - k w) / R(Tw), with the copper resistance rising with winding temperature.
//   J w'          = k i - B w - load
//   Cw Tw'        = i^2 R(Tw) - (Tw - Th) / Rwh
//   Ch Th'        = (Tw - Th) / Rwh + B w^2 - (Th - Tc) / Rhc
//   Cc Tc'        = (Th - Tc) / Rhc - (Tc - Tamb) / Rca
// Time constants: ~1 s mechanical, 60 s winding, 200 s housing, 400 s coolant — mildly stiff.
class MachineThermal final : public BuiltinModel {
 public:
  MachineThermal()
      : BuiltinModel(
            {.states = {Var("speed", 0, "rad/s", "shaft speed"),
                        Var("winding_temp", 25, "degC", "winding temperature"),
                        Var("housing_temp", 25, "degC", "housing temperature"),
                        Var("coolant_temp", 25, "degC", "coolant / frame temperature")},
             .parameters = {Var("inertia", 0.05, "kg m2", "rotor + load inertia J"),
                            Var("friction", 2e-3, "N m s", "viscous friction B"),
                            Var("motor_constant", 0.2, "N m/A", "torque and back-EMF constant k"),
                            Var("resistance", 0.8, "ohm", "winding resistance at 25 degC"),
                            Var("alpha", 0.00393, "1/K", "copper temperature coefficient"),
                            Var("ambient_temp", 25, "degC", "ambient temperature"),
                            Var("c_winding", 200, "J/K", "winding heat capacity"),
                            Var("c_housing", 2000, "J/K", "housing heat capacity"),
                            Var("c_coolant", 8000, "J/K", "coolant heat capacity"),
                            Var("r_winding_housing", 0.3, "K/W", "thermal resistance"),
                            Var("r_housing_coolant", 0.1, "K/W", "thermal resistance"),
                            Var("r_coolant_ambient", 0.05, "K/W", "thermal resistance")},
             .inputs = {Var("voltage", 48, "V", "supply voltage"),
                        Var("load_torque", 2, "N m", "load torque")},
             .outputs = {Var("current", 0, "A", "winding current"),
                         Var("torque", 0, "N m", "motor torque"),
                         Var("power_in", 0, "W", "electrical input power"),
                         Var("copper_loss", 0, "W", "i^2 R")},
             .events = {}}) {}

  bool Derivatives(const ModelPoint& at, std::span<double> dx) override {
    const auto& p = at.p;
    const double w = at.x[0], tw = at.x[1], th = at.x[2], tc = at.x[3];
    const double r = Resistance(at);
    const double i = (at.u[0] - p[2] * w) / r;
    const double q_wh = (tw - th) / p[9];
    const double q_hc = (th - tc) / p[10];
    dx[0] = (p[2] * i - p[1] * w - at.u[1]) / p[0];
    dx[1] = (i * i * r - q_wh) / p[6];
    dx[2] = (q_wh + p[1] * w * w - q_hc) / p[7];
    dx[3] = (q_hc - (tc - p[5]) / p[11]) / p[8];
    return true;
  }

  bool Outputs(const ModelPoint& at, std::span<double> y) override {
    const double r = Resistance(at);
    const double i = (at.u[0] - at.p[2] * at.x[0]) / r;
    y[0] = i;
    y[1] = at.p[2] * i;
    y[2] = at.u[0] * i;
    y[3] = i * i * r;
    return true;
  }

 private:
  static double Resistance(const ModelPoint& at) {
    return at.p[3] * (1 + at.p[4] * (at.x[1] - 25));
  }
};

template <typename M>
ModelFactory Make() {
  return []() -> core::Result<std::unique_ptr<OdeModel>> {
    return std::unique_ptr<OdeModel>(std::make_unique<M>());
  };
}

struct Registry {
  Registry() {
    factories.emplace("exponential_decay", Make<ExponentialDecay>());
    factories.emplace("harmonic_oscillator", Make<HarmonicOscillator>());
    factories.emplace("logistic_growth", Make<LogisticGrowth>());
    factories.emplace("bouncing_ball", Make<BouncingBall>());
    factories.emplace("van_der_pol", Make<VanDerPol>());
    factories.emplace("machine_thermal", Make<MachineThermal>());
  }
  std::mutex mu;
  std::map<std::string, ModelFactory, std::less<>> factories;
};

Registry& TheRegistry() {
  static Registry registry;
  return registry;
}

}  // namespace

core::Status ModelRegistry::Register(std::string name, ModelFactory factory) {
  if (name.empty() || !factory) {
    return {"SIM_BAD_NAME", "a model needs a non-empty name and a factory"};
  }
  Registry& r = TheRegistry();
  std::lock_guard lock(r.mu);
  if (r.factories.contains(name)) {
    return {"SIM_DUPLICATE_NAME", fmt::format("a model called '{}' is already registered", name)};
  }
  r.factories.emplace(std::move(name), std::move(factory));
  return {};
}

core::Result<std::unique_ptr<OdeModel>> ModelRegistry::Create(std::string_view name) {
  ModelFactory factory;
  {
    Registry& r = TheRegistry();
    std::lock_guard lock(r.mu);
    auto it = r.factories.find(name);
    if (it == r.factories.end()) {
      return core::Status("SIM_UNKNOWN_MODEL", fmt::format("no model called '{}'", name));
    }
    factory = it->second;
  }
  return factory();
}

std::vector<std::string> ModelRegistry::Names() {
  Registry& r = TheRegistry();
  std::lock_guard lock(r.mu);
  std::vector<std::string> names;
  for (const auto& [name, f] : r.factories) names.push_back(name);
  return names;
}

}  // namespace doppel::sim::ode
