// The co-simulation master with small units whose exact behaviour is known.
#include "sim/co_simulation.h"

#include <gtest/gtest.h>

#include <cmath>

namespace doppel::sim {
namespace {

// A unit of real variables whose behaviour the test gives as lambdas.
class TestUnit : public Unit {
 public:
  TestUnit(std::vector<Variable> vars, bool feedthrough,
           std::function<void(std::vector<Value>&, double, double)> step,
           std::function<void(std::vector<Value>&)> outputs = {})
      : vars_(std::move(vars)),
        feedthrough_(feedthrough),
        step_(std::move(step)),
        outputs_(std::move(outputs)) {
    for (const Variable& v : vars_) values_.push_back(v.start.value_or(Value(0.0)));
  }
  std::string_view kind() const override { return "test"; }
  const std::vector<Variable>& variables() const override { return vars_; }
  core::Status Set(std::size_t i, const Value& v) override {
    if (v.index() != values_[i].index()) return core::Status("SIM_WRONG_TYPE", "type");
    values_[i] = v;
    if (outputs_) outputs_(values_);
    return {};
  }
  core::Result<Value> Get(std::size_t i) const override { return values_[i]; }
  core::Status Initialize(double) override {
    if (outputs_) outputs_(values_);
    return {};
  }
  core::Result<StepOutcome> Step(double t, double dt) override {
    step_(values_, t, dt);
    if (outputs_) outputs_(values_);
    StepOutcome out;
    out.time_reached = t + dt;
    if (terminate_at_ && t + dt >= *terminate_at_) {
      out.terminate = true;
      out.events.push_back({t + dt, "done"});
    }
    return out;
  }
  bool HasDirectFeedthrough(std::size_t) const override { return feedthrough_; }
  std::optional<double> terminate_at_;

 private:
  std::vector<Variable> vars_;
  bool feedthrough_;
  std::function<void(std::vector<Value>&, double, double)> step_;
  std::function<void(std::vector<Value>&)> outputs_;
  std::vector<Value> values_;
};

Variable Real(std::string name, Causality c, double start = 0) {
  return {std::move(name), c, ValueType::kReal, Value(start), "", ""};
}

// dx/dt = u, y = x (no feedthrough); exact for a held u.
std::unique_ptr<TestUnit> Integrator(double x0) {
  return std::make_unique<TestUnit>(
      std::vector<Variable>{Real("x", Causality::kState, x0), Real("u", Causality::kInput),
                            Real("y", Causality::kOutput, x0)},
      false,
      [](std::vector<Value>& v, double, double dt) {
        v[0] = std::get<double>(v[0]) + std::get<double>(v[1]) * dt;
      },
      [](std::vector<Value>& v) { v[2] = v[0]; });
}

// y = k u (feedthrough).
std::unique_ptr<TestUnit> Gain(double k) {
  return std::make_unique<TestUnit>(
      std::vector<Variable>{Real("k", Causality::kParameter, k), Real("u", Causality::kInput),
                            Real("y", Causality::kOutput)},
      true, [](std::vector<Value>&, double, double) {},
      [](std::vector<Value>& v) { v[2] = std::get<double>(v[0]) * std::get<double>(v[1]); });
}

TEST(CoSimulationTest, FeedbackLoopThroughAPlantFollowsTheZeroOrderHoldSolution) {
  CoSimulation sim;
  ASSERT_TRUE(sim.AddUnit("controller", Gain(-0.5)).ok());
  ASSERT_TRUE(sim.AddUnit("plant", Integrator(2.0)).ok());
  ASSERT_TRUE(sim.Connect({{"plant", "y"}, {"controller", "u"}}).ok());
  ASSERT_TRUE(sim.Connect({{"controller", "y"}, {"plant", "u"}}).ok());
  ASSERT_TRUE(sim.Record({"plant", "x"}).ok());
  ASSERT_TRUE(sim.Record({"controller", "y"}).ok());
  ASSERT_TRUE(sim.Initialize(0).ok());
  // The plant's output is its state (no feedthrough), known before its input is set; the
  // controller's output follows its input at once, so it is evaluated before the plant reads it.
  EXPECT_EQ(sim.EvaluationOrder(), (std::vector<std::string>{"controller", "plant"}));
  const double dt = 0.1;
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(sim.Step(dt).ok());
  const Recording& r = sim.recording();
  ASSERT_EQ(r.time.size(), 51u);
  const auto* x = r.Column("plant.x");
  const auto* u = r.Column("controller.y");
  ASSERT_NE(x, nullptr);
  ASSERT_NE(u, nullptr);
  for (std::size_t n = 0; n < r.time.size(); ++n) {
    const double expect = 2.0 * std::pow(1 - 0.5 * dt, static_cast<double>(n));
    EXPECT_NEAR((*x)[n], expect, 1e-12) << n;
    EXPECT_NEAR((*u)[n], -0.5 * expect, 1e-12) << n;  // consistent at each communication point
    EXPECT_NEAR(r.time[n], dt * static_cast<double>(n), 1e-12);
  }
  EXPECT_NEAR(sim.time(), 5.0, 1e-12);
}

TEST(CoSimulationTest, ChainOfFeedthroughUnitsIsEvaluatedInOrder) {
  CoSimulation sim;
  // Added in the wrong order on purpose: c needs b's output after b has read a's.
  ASSERT_TRUE(sim.AddUnit("c", Gain(3)).ok());
  ASSERT_TRUE(sim.AddUnit("b", Gain(2)).ok());
  ASSERT_TRUE(sim.AddUnit("a", Integrator(1)).ok());
  ASSERT_TRUE(sim.Connect({{"a", "y"}, {"b", "u"}}).ok());
  ASSERT_TRUE(sim.Connect({{"b", "y"}, {"c", "u"}}).ok());
  ASSERT_TRUE(sim.Set({"a", "u"}, Value(1.0)).ok());
  ASSERT_TRUE(sim.Record({"c", "y"}).ok());
  ASSERT_TRUE(sim.Initialize(0).ok());
  // b before c (b's output follows its input); a's output is its state, ready at any point.
  EXPECT_EQ(sim.EvaluationOrder(), (std::vector<std::string>{"b", "c", "a"}));
  ASSERT_TRUE(sim.Step(1).ok());
  // a.x = 2 after one step; c.y = 3 * 2 * 2 at the same communication point.
  EXPECT_DOUBLE_EQ(sim.recording().Column("c.y")->back(), 12.0);
  EXPECT_DOUBLE_EQ(sim.recording().Column("c.y")->front(), 6.0);
}

TEST(CoSimulationTest, AlgebraicLoopIsRefusedNamingTheCycle) {
  CoSimulation sim;
  ASSERT_TRUE(sim.AddUnit("g1", Gain(0.5)).ok());
  ASSERT_TRUE(sim.AddUnit("g2", Gain(0.5)).ok());
  ASSERT_TRUE(sim.Connect({{"g1", "y"}, {"g2", "u"}}).ok());
  ASSERT_TRUE(sim.Connect({{"g2", "y"}, {"g1", "u"}}).ok());
  core::Status s = sim.Initialize(0);
  EXPECT_EQ(s.code(), "SIM_ALGEBRAIC_LOOP");
  EXPECT_NE(s.message().find("g1 -> g2 -> g1"), std::string::npos) << s.message();
  EXPECT_EQ(sim.Step(1).code(), "SIM_BAD_STATE");
}

TEST(CoSimulationTest, BadConnectionsAndCallsAreRefusedWithTheirCodes) {
  CoSimulation sim;
  ASSERT_TRUE(sim.AddUnit("p", Integrator(0)).ok());
  ASSERT_TRUE(sim.AddUnit("g", Gain(1)).ok());
  EXPECT_EQ(sim.AddUnit("p", Gain(1)).code(), "SIM_DUPLICATE_UNIT");
  EXPECT_EQ(sim.AddUnit("a.b", Gain(1)).code(), "SIM_BAD_CONNECTION");
  EXPECT_EQ(sim.Connect({{"nope", "y"}, {"g", "u"}}).code(), "SIM_UNKNOWN_UNIT");
  EXPECT_EQ(sim.Connect({{"p", "nope"}, {"g", "u"}}).code(), "SIM_UNKNOWN_VARIABLE");
  EXPECT_EQ(sim.Connect({{"p", "y"}, {"g", "y"}}).code(), "SIM_BAD_CONNECTION");  // not an input
  EXPECT_EQ(sim.Connect({{"g", "k"}, {"p", "u"}}).code(), "SIM_BAD_CONNECTION");  // a parameter
  EXPECT_EQ(sim.Connect({{"g", "y"}, {"g", "u"}}).code(), "SIM_BAD_CONNECTION");  // itself
  ASSERT_TRUE(sim.Connect({{"p", "y"}, {"g", "u"}}).ok());
  EXPECT_EQ(sim.Connect({{"p", "x"}, {"g", "u"}}).code(), "SIM_BAD_CONNECTION");  // twice
  EXPECT_EQ(sim.Set({"g", "u"}, Value(1.0)).code(), "SIM_BAD_STATE");  // fed by a connection
  EXPECT_EQ(sim.Set({"g", "k"}, Value(std::int64_t{1})).code(), "SIM_WRONG_TYPE");
  EXPECT_EQ(ParsePortRef("novariable").status().code(), "SIM_UNKNOWN_VARIABLE");
  auto pr = ParsePortRef("fmu.body.pos");
  ASSERT_TRUE(pr.ok());
  EXPECT_EQ(pr->unit, "fmu");
  EXPECT_EQ(pr->variable, "body.pos");
  EXPECT_EQ(sim.Step(1).code(), "SIM_BAD_STATE");  // before Initialize
  ASSERT_TRUE(sim.Initialize(0).ok());
  EXPECT_EQ(sim.Step(0).code(), "SIM_BAD_STEP");
  EXPECT_EQ(sim.Step(std::nan("")).code(), "SIM_BAD_STEP");
  EXPECT_EQ(sim.Record({"p", "x"}).code(), "SIM_BAD_STATE");
  EXPECT_EQ(sim.Initialize(0).code(), "SIM_BAD_STATE");
}

TEST(CoSimulationTest, UnitThatTerminatesStopsTheRunAndItsEventsAreRecorded) {
  CoSimulation sim;
  auto p = Integrator(0);
  p->terminate_at_ = 3.0;
  ASSERT_TRUE(sim.AddUnit("p", std::move(p)).ok());
  ASSERT_TRUE(sim.Set({"p", "u"}, Value(1.0)).ok());
  ASSERT_TRUE(sim.Initialize(0).ok());
  for (int i = 0; i < 10 && !sim.terminated(); ++i) ASSERT_TRUE(sim.Step(1).ok());
  EXPECT_TRUE(sim.terminated());
  EXPECT_DOUBLE_EQ(sim.time(), 3.0);
  ASSERT_EQ(sim.recording().events.size(), 1u);
  EXPECT_EQ(sim.recording().events[0].name, "p.done");
  EXPECT_EQ(sim.Step(1).code(), "SIM_BAD_STATE");
}

}  // namespace
}  // namespace doppel::sim
