// The declarative JSON form: same trajectories as the C++ models, its features, and one test per
// bad definition asserting the exact code and JSON pointer.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "sim/ode/ode.h"
#include "sim/ode/ode_test_util.h"

namespace doppel::sim::ode {
namespace {

using testing::Builtin;
using testing::FromJson;
using testing::GetReal;
using testing::SetReal;
using testing::Tight;

constexpr const char* kBall = R"j({
  "name": "bouncing ball",
  "states": {"h": {"start": 10, "der": "v", "unit": "m"}, "v": {"start": 0, "der": "-g"}},
  "parameters": {"g": 9.81, "e": {"value": 0.8, "unit": "1"}},
  "events": [{"name": "bounce", "when": "h", "direction": "falling", "set": {"v": "-e*v"}}]
})j";

constexpr const char* kOscillator = R"j({
  "states": {"x": {"start": 1, "der": "v"}, "v": {"der": "-omega^2*x"}},
  "parameters": {"omega": 1},
  "outputs": {"energy": "0.5*(v^2 + omega^2*x^2)"
}
})j";

class BothSolvers : public ::testing::TestWithParam<SolverKind> {};

INSTANTIATE_TEST_SUITE_P(Solvers, BothSolvers,
                         ::testing::Values(SolverKind::kCvodeBdf, SolverKind::kArkodeErk),
                         [](const auto& info) {
                           return info.param == SolverKind::kCvodeBdf ? "Cvode" : "Erk";
                         });

// Runs both units side by side and compares every variable of the C++ model after each step.
void ExpectSameTrajectory(Unit& cpp, Unit& declared, double dt, int steps) {
  ASSERT_TRUE(cpp.Initialize(0).ok());
  ASSERT_TRUE(declared.Initialize(0).ok());
  double t = 0;
  for (int i = 0; i < steps; ++i) {
    auto a = cpp.Step(t, dt);
    auto b = declared.Step(t, dt);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    ASSERT_EQ(a->events.size(), b->events.size()) << "t = " << t;
    for (std::size_t k = 0; k < a->events.size(); ++k) {
      EXPECT_EQ(a->events[k].name, b->events[k].name);
      EXPECT_NEAR(a->events[k].time, b->events[k].time, 1e-10);
    }
    t = a->time_reached;
    for (const auto& var : cpp.variables()) {
      ASSERT_NEAR(GetReal(cpp, var.name), GetReal(declared, var.name), 1e-9)
          << var.name << " at t = " << t;
    }
  }
}

TEST_P(BothSolvers, DeclarativeBallMatchesCpp) {
  auto cpp = Builtin("bouncing_ball", Tight(GetParam()));
  auto declared = FromJson(kBall, Tight(GetParam()));
  ExpectSameTrajectory(*cpp, *declared, 0.1, 80);
}

TEST_P(BothSolvers, DeclarativeOscillatorMatchesCpp) {
  auto cpp = Builtin("harmonic_oscillator", Tight(GetParam()));
  auto declared = FromJson(kOscillator, Tight(GetParam()));
  SetReal(*cpp, "omega", 3);
  SetReal(*declared, "omega", 3);
  ExpectSameTrajectory(*cpp, *declared, 0.05, 200);
}

TEST(OdeDefinition, InfoFromDefinition) {
  auto def = ParseModelDefinition(kBall);
  ASSERT_TRUE(def.ok()) << def.status().ToString();
  const ModelInfo& info = DefinitionInfo(**def);
  ASSERT_EQ(info.states.size(), 2u);
  EXPECT_EQ(info.states[0].name, "h");
  EXPECT_EQ(info.states[0].unit, "m");
  EXPECT_EQ(info.states[0].start, 10);
  ASSERT_EQ(info.parameters.size(), 2u);
  EXPECT_EQ(info.parameters[1].name, "e");
  EXPECT_EQ(info.parameters[1].start, 0.8);
  ASSERT_EQ(info.events.size(), 1u);
  EXPECT_EQ(info.events[0].crossing, Crossing::kFalling);
}

TEST(OdeDefinition, OutputsUseOutputsInputsAndTime) {
  // Outputs listed before the outputs they use; der using an output and an input; t.
  auto unit = FromJson(R"j({
    "states": {"x": {"start": 0, "der": "rate"}},
    "inputs": {"u": {"start": 2, "unit": "1/s"}},
    "outputs": {"doubled": "2*rate", "rate": "u + 0*t", "clock": "t"}
  })j",
                       Tight(SolverKind::kCvodeBdf));
  ASSERT_TRUE(unit->Initialize(0).ok());
  ASSERT_TRUE(unit->Step(0, 1).ok());
  EXPECT_NEAR(GetReal(*unit, "x"), 2.0, 1e-9);
  EXPECT_DOUBLE_EQ(GetReal(*unit, "doubled"), 4.0);
  EXPECT_DOUBLE_EQ(GetReal(*unit, "clock"), 1.0);
  SetReal(*unit, "u", -1);
  ASSERT_TRUE(unit->Step(1, 1).ok());
  EXPECT_NEAR(GetReal(*unit, "x"), 1.0, 1e-9);
  EXPECT_DOUBLE_EQ(GetReal(*unit, "doubled"), -2.0);
}

TEST(OdeDefinition, EventSetsAreSimultaneous) {
  // Swapping two states needs every new value computed from the old ones.
  auto unit = FromJson(R"j({
    "states": {"a": {"start": 1, "der": "0"}, "b": {"start": 5, "der": "0"},
               "clock": {"start": 0, "der": "1"}},
    "events": [{"name": "swap", "when": "clock - 0.5", "direction": "rising",
                "set": {"a": "b", "b": "a"}}]
  })j",
                       Tight(SolverKind::kCvodeBdf));
  ASSERT_TRUE(unit->Initialize(0).ok());
  auto out = unit->Step(0, 1);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->events.size(), 1u);
  EXPECT_EQ(out->events[0].name, "swap");
  EXPECT_NEAR(out->events[0].time, 0.5, 1e-10);
  EXPECT_DOUBLE_EQ(GetReal(*unit, "a"), 5);
  EXPECT_DOUBLE_EQ(GetReal(*unit, "b"), 1);
}

TEST(OdeDefinition, RegisterADefinitionByName) {
  auto def = ParseModelDefinition(kOscillator);
  ASSERT_TRUE(def.ok());
  ASSERT_TRUE(ModelRegistry::Register("json_oscillator_test", DefinitionFactory(*def)).ok());
  auto model = ModelRegistry::Create("json_oscillator_test");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->info().outputs.at(0).name, "energy");
}

struct BadCase {
  const char* name;
  const char* json;
  const char* code;
  const char* pointer;
};

class BadDefinition : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadDefinition, ExactCodeAndPointer) {
  const BadCase& c = GetParam();
  auto def = ParseModelDefinition(c.json);
  ASSERT_FALSE(def.ok()) << c.name;
  EXPECT_EQ(def.status().code(), c.code) << def.status().ToString();
  EXPECT_EQ(def.status().pointer(), c.pointer) << def.status().ToString();
  EXPECT_FALSE(def.status().message().empty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadDefinition,
    ::testing::Values(
        BadCase{"json_syntax", R"j({"states": )j", "JSON_SYNTAX", ""},
        BadCase{"not_object", R"j([1])j", "SIM_BAD_DEFINITION", ""},
        BadCase{"unknown_top_member", R"j({"states": {"x": {"der": "1"}}, "stats": {}})j",
                "SIM_BAD_DEFINITION", "/stats"},
        BadCase{"no_states", R"j({"parameters": {"k": 1}})j", "SIM_BAD_DEFINITION", "/states"},
        BadCase{"empty_states", R"j({"states": {}})j", "SIM_BAD_DEFINITION", "/states"},
        BadCase{"state_not_object", R"j({"states": {"x": "-x"}})j", "SIM_BAD_DEFINITION",
                "/states/x"},
        BadCase{"unknown_state_member", R"j({"states": {"x": {"der": "1", "derr": "2"}}})j",
                "SIM_BAD_DEFINITION", "/states/x/derr"},
        BadCase{"start_not_number", R"j({"states": {"x": {"start": "1", "der": "1"}}})j",
                "SIM_BAD_DEFINITION", "/states/x/start"},
        BadCase{"der_not_string", R"j({"states": {"x": {"der": 1}}})j", "SIM_BAD_DEFINITION",
                "/states/x/der"},
        BadCase{"missing_der", R"j({"states": {"x": {"start": 1}}})j", "SIM_MISSING_DER",
                "/states/x"},
        BadCase{"non_finite_start", R"j({"states": {"x": {"start": 1e999, "der": "1"}}})j",
                "SIM_NON_FINITE", "/states/x/start"},
        BadCase{"non_finite_parameter",
                R"j({"states": {"x": {"der": "-k*x"}}, "parameters": {"k": -1e999}})j",
                "SIM_NON_FINITE", "/parameters/k"},
        BadCase{"non_finite_parameter_object",
                R"j({"states": {"x": {"der": "-k*x"}}, "parameters": {"k": {"value": 1e400}}})j",
                "SIM_NON_FINITE", "/parameters/k/value"},
        BadCase{"non_finite_input", R"j({"states": {"x": {"der": "u"}}, "inputs": {"u": 2e308}})j",
                "SIM_NON_FINITE", "/inputs/u"},
        BadCase{"parameter_without_value",
                R"j({"states": {"x": {"der": "-k*x"}}, "parameters": {"k": {"unit": "1/s"}}})j",
                "SIM_BAD_DEFINITION", "/parameters/k"},
        BadCase{"duplicate_state_parameter",
                R"j({"states": {"x": {"der": "-x"}}, "parameters": {"x": 1}})j",
                "SIM_DUPLICATE_NAME", "/parameters/x"},
        BadCase{"duplicate_output_input",
                R"j({"states": {"x": {"der": "-x"}}, "inputs": {"y": 0}, "outputs": {"y": "x"}})j",
                "SIM_DUPLICATE_NAME", "/outputs/y"},
        BadCase{"duplicate_event",
                R"j({"states": {"x": {"der": "-x"}}, "events": [{"name": "e1", "when": "x"},
                   {"name": "e1", "when": "x - 1"}]})j",
                "SIM_DUPLICATE_NAME", "/events/1/name"},
        BadCase{"bad_name", R"j({"states": {"2x": {"der": "1"}}})j", "SIM_BAD_NAME", "/states/2x"},
        BadCase{"name_with_space", R"j({"states": {"x": {"der": "1"}}, "parameters": {"a b": 1}})j",
                "SIM_BAD_NAME", "/parameters/a b"},
        BadCase{"reserved_time", R"j({"states": {"t": {"der": "1"}}})j", "SIM_BAD_NAME",
                "/states/t"},
        BadCase{"reserved_function",
                R"j({"states": {"x": {"der": "1"}}, "parameters": {"sin": 1}})j", "SIM_BAD_NAME",
                "/parameters/sin"},
        BadCase{"unknown_symbol_in_der", R"j({"states": {"x": {"der": "-k*x"}}})j",
                "SIM_UNKNOWN_SYMBOL", "/states/x/der"},
        BadCase{"syntax_error", R"j({"states": {"x": {"der": "-x*"}}})j", "SIM_EXPR_SYNTAX",
                "/states/x/der"},
        BadCase{"unbalanced_parenthesis", R"j({"states": {"x": {"der": "(x+1"}}})j",
                "SIM_EXPR_SYNTAX", "/states/x/der"},
        BadCase{"empty_expression", R"j({"states": {"x": {"der": ""}}})j", "SIM_EXPR_SYNTAX",
                "/states/x/der"},
        BadCase{"unknown_function", R"j({"states": {"x": {"der": "foo(x)"}
}
})j",
                "SIM_EXPR_SYNTAX", "/states/x/der"},
        BadCase{"output_unknown_name",
                R"j({"states": {"x": {"der": "-x"}}, "outputs": {"y": "2*z"}})j",
                "SIM_UNKNOWN_SYMBOL", "/outputs/y"},
        BadCase{
            "output_object_unknown_name",
            R"j({"states": {"x": {"der": "-x"}}, "outputs": {"y": {"expr": "q", "unit": "m"}}})j",
            "SIM_UNKNOWN_SYMBOL", "/outputs/y/expr"},
        BadCase{"output_without_expr",
                R"j({"states": {"x": {"der": "-x"}}, "outputs": {"y": {"unit": "m"}}})j",
                "SIM_BAD_DEFINITION", "/outputs/y"},
        BadCase{"cyclic_outputs",
                R"j({"states": {"x": {"der": "-x"}}, "outputs": {"a": "b + x", "b": "2*a"}})j",
                "SIM_CYCLIC_OUTPUTS", "/outputs/a"},
        BadCase{"self_referencing_output",
                R"j({"states": {"x": {"der": "-x"}}, "outputs": {"a": "a + 1"}})j",
                "SIM_CYCLIC_OUTPUTS", "/outputs/a"},
        BadCase{"event_not_array", R"j({"states": {"x": {"der": "-x"}}, "events": {}})j",
                "SIM_BAD_DEFINITION", "/events"},
        BadCase{"event_without_when", R"j({"states": {"x": {"der": "-x"}}, "events": [{}]})j",
                "SIM_BAD_DEFINITION", "/events/0"},
        BadCase{
            "event_bad_direction",
            R"j({"states": {"x": {"der": "-x"}}, "events": [{"when": "x", "direction": "up"}]})j",
            "SIM_BAD_DEFINITION", "/events/0/direction"},
        BadCase{"event_unknown_symbol",
                R"j({"states": {"x": {"der": "-x"}}, "events": [{"when": "x - level"}]})j",
                "SIM_UNKNOWN_SYMBOL", "/events/0/when"},
        BadCase{"event_sets_parameter",
                R"j({"states": {"x": {"der": "-k*x"}}, "parameters": {"k": 1},
                   "events": [{"when": "x - 0.5", "set": {"k": "2"}}]})j",
                "SIM_BAD_EVENT_TARGET", "/events/0/set/k"},
        BadCase{
            "event_set_syntax",
            R"j({"states": {"x": {"der": "-x"}}, "events": [{"when": "x", "set": {"x": "1+"}}]})j",
            "SIM_EXPR_SYNTAX", "/events/0/set/x"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(OdeDefinition, MessagesSayWhereAndWhat) {
  auto unknown = ParseModelDefinition(R"j({"states": {"x": {"der": "-rate*x"}}})j");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("'rate' at position 1"), std::string::npos)
      << unknown.status().message();
  auto syntax = ParseModelDefinition(R"j({"states": {"x": {"der": "x + * 2"}}})j");
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.status().message().find("position"), std::string::npos)
      << syntax.status().message();
  auto cycle = ParseModelDefinition(
      R"j({"states": {"x": {"der": "-x"}}, "outputs": {"a": "b", "b": "c", "c": "a"}})j");
  ASSERT_FALSE(cycle.ok());
  EXPECT_NE(cycle.status().message().find("a -> b -> c -> a"), std::string::npos)
      << cycle.status().message();
}

}  // namespace
}  // namespace doppel::sim::ode
