// OdeUnit against closed-form solutions (both solvers), event location, the Unit contract and
// its error codes.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "sim/ode/ode.h"
#include "sim/ode/ode_test_util.h"

namespace doppel::sim::ode {
namespace {

using testing::Builtin;
using testing::GetReal;
using testing::SetReal;
using testing::Tight;

class BothSolvers : public ::testing::TestWithParam<SolverKind> {};

INSTANTIATE_TEST_SUITE_P(Solvers, BothSolvers,
                         ::testing::Values(SolverKind::kCvodeBdf, SolverKind::kArkodeErk),
                         [](const auto& info) {
                           return info.param == SolverKind::kCvodeBdf ? "Cvode" : "Erk";
                         });

TEST_P(BothSolvers, ExponentialDecayMatchesClosedForm) {
  auto unit = Builtin("exponential_decay", Tight(GetParam()));
  SetReal(*unit, "k", 0.7);
  SetReal(*unit, "x", 3);
  ASSERT_TRUE(unit->Initialize(0).ok());
  double t = 0;
  for (int i = 0; i < 100; ++i) {
    auto out = unit->Step(t, 0.1);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    t = out->time_reached;
    const double exact = 3 * std::exp(-0.7 * t);
    ASSERT_NEAR(GetReal(*unit, "x"), exact, 1e-6 * exact) << "t = " << t;
  }
  EXPECT_NEAR(t, 10.0, 1e-12);  // a sum of 100 steps of 0.1
}

TEST_P(BothSolvers, HarmonicOscillatorFollowsCosineOverSeveralPeriods) {
  auto unit = Builtin("harmonic_oscillator", Tight(GetParam()));
  const double w = 2.0;
  SetReal(*unit, "omega", w);
  ASSERT_TRUE(unit->Initialize(0).ok());
  const double period = 2 * std::numbers::pi / w;
  const int steps = 200;
  const double dt = 5 * period / steps;  // five periods
  double t = 0;
  for (int i = 0; i < steps; ++i) {
    auto out = unit->Step(t, dt);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    t = out->time_reached;
    // Relative to the amplitude (1): x crosses zero, where a pointwise relative error is
    // meaningless.
    ASSERT_NEAR(GetReal(*unit, "x"), std::cos(w * t), 1e-6) << "t = " << t;
    ASSERT_NEAR(GetReal(*unit, "v"), -w * std::sin(w * t), 1e-6 * w) << "t = " << t;
  }
  EXPECT_NEAR(GetReal(*unit, "energy"), 0.5 * w * w, 1e-6 * w * w);
}

TEST_P(BothSolvers, LogisticGrowthMatchesClosedForm) {
  auto unit = Builtin("logistic_growth", Tight(GetParam()));
  const double r = 1.3, k = 50, n0 = 0.5;
  SetReal(*unit, "r", r);
  SetReal(*unit, "capacity", k);
  SetReal(*unit, "n", n0);
  ASSERT_TRUE(unit->Initialize(0).ok());
  double t = 0;
  for (int i = 0; i < 60; ++i) {
    auto out = unit->Step(t, 0.25);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    t = out->time_reached;
    const double exact = k / (1 + (k / n0 - 1) * std::exp(-r * t));
    ASSERT_NEAR(GetReal(*unit, "n"), exact, 1e-6 * exact) << "t = " << t;
  }
}

// A ball dropped from h hits the ground at t1 = sqrt(2h/g); bounce k leaves with speed
// e^k g t1 and flies 2 e^k t1, so bounce n (1-based) is at t1 (1 + 2 (e + ... + e^(n-1))).
std::vector<double> BounceTimes(double h, double g, double e, int n) {
  std::vector<double> times;
  const double t1 = std::sqrt(2 * h / g);
  double t = t1, flight = 2 * e * t1;
  for (int i = 0; i < n; ++i) {
    times.push_back(t);
    t += flight;
    flight *= e;
  }
  return times;
}

TEST_P(BothSolvers, BouncingBallEventsAtAnalyticTimes) {
  auto unit = Builtin("bouncing_ball", Tight(GetParam()));
  const double h = 7.5, g = 9.81, e = 0.7;
  SetReal(*unit, "h", h);
  SetReal(*unit, "e", e);
  ASSERT_TRUE(unit->Initialize(0).ok());
  const std::vector<double> expected = BounceTimes(h, g, e, 6);
  std::vector<double> found;
  double t = 0;
  while (t < expected.back() + 0.01) {
    auto out = unit->Step(t, 0.05);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    for (const auto& ev : out->events) {
      EXPECT_EQ(ev.name, "bounce");
      EXPECT_GT(ev.time, t);
      EXPECT_LE(ev.time, out->time_reached);
      found.push_back(ev.time);
    }
    t = out->time_reached;
  }
  ASSERT_EQ(found.size(), expected.size());
  for (std::size_t i = 0; i < found.size(); ++i) {
    EXPECT_NEAR(found[i], expected[i], 1e-8) << "bounce " << i + 1;
  }
  EXPECT_EQ(unit->stats().events, static_cast<long>(expected.size()));
  // After the last bounce the ball rises with e^6 of the first impact speed.
  const double v_after = std::pow(e, 6) * g * std::sqrt(2 * h / g);
  const double since = t - expected.back();
  EXPECT_NEAR(GetReal(*unit, "v"), v_after - g * since, 1e-6);
}

TEST_P(BothSolvers, EventExactlyAtTheEndOfAStep) {
  auto unit = Builtin("bouncing_ball", Tight(GetParam()));
  SetReal(*unit, "h", 9.81 / 2);  // lands at t = 1
  ASSERT_TRUE(unit->Initialize(0).ok());
  auto a = unit->Step(0, 0.5);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->events.empty());
  auto b = unit->Step(0.5, 0.5);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto c = unit->Step(1.0, 0.5);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::size_t events = b->events.size() + c->events.size();
  ASSERT_EQ(events, 1u);
  const double when = b->events.empty() ? c->events[0].time : b->events[0].time;
  EXPECT_NEAR(when, 1.0, 1e-8);
  EXPECT_GT(GetReal(*unit, "v"), 0);  // rising again
}

TEST_P(BothSolvers, ChatteringBallFailsClearly) {
  SolverOptions options = Tight(GetParam());
  options.max_events_per_step = 20;
  auto unit = Builtin("bouncing_ball", options);
  SetReal(*unit, "e", 0.5);
  ASSERT_TRUE(unit->Initialize(0).ok());
  auto out = unit->Step(0, 100);  // the ball comes to rest after ~4.3 s: infinitely many bounces
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), "SIM_STEP_FAILED");
  auto again = unit->Step(0, 1);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), "SIM_BAD_STATE");
}

TEST_P(BothSolvers, MachineReachesPowerBalanceAndFollowsInputs) {
  SolverOptions options = GetParam() == SolverKind::kCvodeBdf ? Tight(GetParam()) : SolverOptions{};
  options.solver = GetParam();
  options.rtol = 1e-9;
  options.atol = 1e-9;
  auto unit = Builtin("machine_thermal", options);
  ASSERT_TRUE(unit->Initialize(0).ok());
  double t = 0;
  auto run = [&](double until) {
    while (t < until - 1e-9) {
      auto out = unit->Step(t, 10);
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      t = out->time_reached;
    }
  };
  run(8000);
  // Steady state: electrical power in = copper loss + friction loss + mechanical power out.
  const double w = GetReal(*unit, "speed");
  const double friction = GetReal(*unit, "friction");
  const double load = GetReal(*unit, "load_torque");
  const double balance = GetReal(*unit, "copper_loss") + friction * w * w + load * w;
  EXPECT_NEAR(GetReal(*unit, "power_in"), balance, 1e-4 * balance);
  // And the heat flows through the chain to ambient: coolant above ambient by losses * Rca.
  const double losses = GetReal(*unit, "copper_loss") + friction * w * w;
  EXPECT_NEAR(GetReal(*unit, "coolant_temp") - 25, losses * 0.05, 1e-3 * losses * 0.05);
  EXPECT_GT(GetReal(*unit, "winding_temp"), GetReal(*unit, "housing_temp"));

  // Halve the voltage: the speed drops towards the new equilibrium.
  const double before = w;
  SetReal(*unit, "voltage", 24);
  run(8100);
  EXPECT_LT(GetReal(*unit, "speed"), 0.6 * before);
  EXPECT_GE(unit->stats().restarts, 1);
}

TEST(OdeUnit, StiffVanDerPolWithCvode) {
  SolverOptions options;
  options.rtol = 1e-6;
  options.atol = 1e-8;
  auto unit = Builtin("van_der_pol", options);
  SetReal(*unit, "mu", 1000);
  ASSERT_TRUE(unit->Initialize(0).ok());
  auto out = unit->Step(0, 3000);  // about one relaxation period
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  // x stays on the slow manifold between the relaxation jumps: |x| within (0, 2.1).
  EXPECT_LT(std::abs(GetReal(*unit, "x")), 2.1);
  // BDF needs far fewer steps than the stiffness ratio (1e6) would force on an explicit method.
  EXPECT_LT(unit->stats().internal_steps, 20000);
}

TEST(OdeUnit, VariablesInOrderWithCausality) {
  auto unit = Builtin("harmonic_oscillator", {});
  const auto& vars = unit->variables();
  ASSERT_EQ(vars.size(), 4u);
  EXPECT_EQ(vars[0].name, "omega");
  EXPECT_EQ(vars[0].causality, Causality::kParameter);
  EXPECT_EQ(vars[1].name, "x");
  EXPECT_EQ(vars[1].causality, Causality::kState);
  EXPECT_EQ(vars[3].name, "energy");
  EXPECT_EQ(vars[3].causality, Causality::kOutput);
  EXPECT_EQ(unit->kind(), "ode");
  // Outputs are current before Initialize too.
  EXPECT_DOUBLE_EQ(GetReal(*unit, "energy"), 0.5);
}

TEST(OdeUnit, SetErrors) {
  auto unit = Builtin("harmonic_oscillator", {});
  const std::size_t omega = *unit->Find("omega");
  const std::size_t x = *unit->Find("x");
  const std::size_t energy = *unit->Find("energy");
  EXPECT_EQ(unit->Set(omega, std::nan("")).code(), "SIM_NON_FINITE");
  EXPECT_EQ(unit->Set(omega, INFINITY).code(), "SIM_NON_FINITE");
  EXPECT_EQ(unit->Set(x, -INFINITY).code(), "SIM_NON_FINITE");
  EXPECT_DOUBLE_EQ(GetReal(*unit, "omega"), 1.0);  // nothing was written
  EXPECT_EQ(unit->Set(omega, std::int64_t{2}).code(), "SIM_WRONG_TYPE");
  EXPECT_EQ(unit->Set(omega, std::string("2")).code(), "SIM_WRONG_TYPE");
  EXPECT_EQ(unit->Set(energy, 1.0).code(), "SIM_BAD_STATE");
  EXPECT_EQ(unit->Set(99, 1.0).code(), "SIM_UNKNOWN_VARIABLE");
  EXPECT_EQ(unit->Get(99).status().code(), "SIM_UNKNOWN_VARIABLE");
  EXPECT_EQ(unit->Find("nope").status().code(), "SIM_UNKNOWN_VARIABLE");
  ASSERT_TRUE(unit->Initialize(0).ok());
  EXPECT_EQ(unit->Set(omega, 3.0).code(), "SIM_BAD_STATE");
  EXPECT_EQ(unit->Set(x, 3.0).code(), "SIM_BAD_STATE");
  EXPECT_DOUBLE_EQ(GetReal(*unit, "omega"), 1.0);
  EXPECT_EQ(unit->Initialize(0).code(), "SIM_BAD_STATE");
}

TEST(OdeUnit, InputNonFinite) {
  auto unit = Builtin("machine_thermal", {});
  ASSERT_TRUE(unit->Initialize(0).ok());
  EXPECT_EQ(unit->Set(*unit->Find("voltage"), std::nan("")).code(), "SIM_NON_FINITE");
  EXPECT_DOUBLE_EQ(GetReal(*unit, "voltage"), 48.0);
}

TEST(OdeUnit, StepErrors) {
  auto unit = Builtin("exponential_decay", {});
  EXPECT_EQ(unit->Step(0, 1).status().code(), "SIM_BAD_STATE");
  EXPECT_EQ(unit->Initialize(std::nan("")).code(), "SIM_NON_FINITE");
  ASSERT_TRUE(unit->Initialize(0).ok());
  EXPECT_EQ(unit->Step(0, 0).status().code(), "SIM_BAD_STEP");
  EXPECT_EQ(unit->Step(0, -1).status().code(), "SIM_BAD_STEP");
  EXPECT_EQ(unit->Step(0, std::nan("")).status().code(), "SIM_BAD_STEP");
  EXPECT_EQ(unit->Step(5, 1).status().code(), "SIM_BAD_STEP");
  ASSERT_TRUE(unit->Step(0, 1).ok());  // still usable
  EXPECT_DOUBLE_EQ(unit->time(), 1.0);
}

TEST(OdeUnit, BadOptions) {
  for (auto mutate : std::vector<void (*)(SolverOptions&)>{
           [](SolverOptions& o) { o.rtol = 0; }, [](SolverOptions& o) { o.atol = -1; },
           [](SolverOptions& o) { o.rtol = std::nan(""); },
           [](SolverOptions& o) { o.max_internal_steps = 0; },
           [](SolverOptions& o) { o.max_events_per_step = 0; },
           [](SolverOptions& o) { o.erk_order = -1; }}) {
    SolverOptions o;
    mutate(o);
    auto unit = OdeUnit::Create(ModelRegistry::Create("exponential_decay").value(), o);
    ASSERT_FALSE(unit.ok());
    EXPECT_EQ(unit.status().code(), "SIM_BAD_OPTIONS");
  }
  EXPECT_EQ(OdeUnit::Create(nullptr).status().code(), "SIM_BAD_DEFINITION");
}

// A model that cannot be evaluated past x < 0.5.
class Fragile final : public OdeModel {
 public:
  const ModelInfo& info() const override { return info_; }
  bool Derivatives(const ModelPoint& at, std::span<double> dx) override {
    dx[0] = -1;
    return at.x[0] > 0.5;
  }

 private:
  ModelInfo info_{
      .states = {{"x", 1, "", ""}}, .parameters = {}, .inputs = {}, .outputs = {}, .events = {}};
};

TEST_P(BothSolvers, ModelFailureIsAStepFailure) {
  auto unit = OdeUnit::Create(std::make_unique<Fragile>(), SolverOptions{.solver = GetParam()});
  ASSERT_TRUE(unit.ok());
  ASSERT_TRUE((*unit)->Initialize(0).ok());
  auto out = (*unit)->Step(0, 2);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), "SIM_STEP_FAILED");
  EXPECT_NE(out.status().message().find("could not be evaluated"), std::string::npos)
      << out.status().message();
}

TEST(OdeUnit, ModelThatFailsAtStart) {
  auto model = std::make_unique<Fragile>();
  auto unit = OdeUnit::Create(std::move(model));
  ASSERT_TRUE(unit.ok());
  ASSERT_TRUE((*unit)->Set(*(*unit)->Find("x"), 0.1).ok());
  EXPECT_EQ((*unit)->Initialize(0).code(), "SIM_STEP_FAILED");
}

TEST(ModelRegistry, NamesCreateRegister) {
  const auto names = ModelRegistry::Names();
  for (const char* n : {"exponential_decay", "harmonic_oscillator", "logistic_growth",
                        "bouncing_ball", "van_der_pol", "machine_thermal"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
  EXPECT_EQ(ModelRegistry::Create("warp_drive").status().code(), "SIM_UNKNOWN_MODEL");
  auto factory = []() -> core::Result<std::unique_ptr<OdeModel>> {
    return std::unique_ptr<OdeModel>(std::make_unique<Fragile>());
  };
  ASSERT_TRUE(ModelRegistry::Register("fragile_test", factory).ok());
  EXPECT_EQ(ModelRegistry::Register("fragile_test", factory).code(), "SIM_DUPLICATE_NAME");
  EXPECT_EQ(ModelRegistry::Register("thermal_dup", nullptr).code(), "SIM_BAD_NAME");
  EXPECT_EQ(ModelRegistry::Register("", factory).code(), "SIM_BAD_NAME");
  EXPECT_TRUE(ModelRegistry::Create("fragile_test").ok());
}

}  // namespace
}  // namespace doppel::sim::ode
