// Scenarios end to end on a unit whose solution is known in closed form: a first-order tank,
// dx/dt = u - k x, stepped exactly for a held input.
#include "sim/scenario/scenario.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/json.h"
#include "sim/scenario/unit_kinds.h"

namespace doppel::sim::scenario {
namespace {

namespace json = boost::json;

class Tank : public Unit {
 public:
  Tank() {
    vars_ = {{"k", Causality::kParameter, ValueType::kReal, Value(0.5), "1/s", ""},
             {"x", Causality::kState, ValueType::kReal, Value(0.0), "", ""},
             {"u", Causality::kInput, ValueType::kReal, Value(0.0), "", ""},
             {"y", Causality::kOutput, ValueType::kReal, Value(0.0), "", ""},
             {"open", Causality::kInput, ValueType::kBoolean, Value(true), "", ""}};
    for (const auto& v : vars_) values_.push_back(*v.start);
  }
  std::string_view kind() const override { return "tank"; }
  const std::vector<Variable>& variables() const override { return vars_; }
  core::Status Set(std::size_t i, const Value& v) override {
    if (v.index() != values_[i].index()) return core::Status("SIM_WRONG_TYPE", "wrong type");
    if (vars_[i].causality == Causality::kParameter && initialized_) {
      return core::Status("SIM_BAD_STATE", "parameter after initialize");
    }
    values_[i] = v;
    values_[3] = values_[1];
    return {};
  }
  core::Result<Value> Get(std::size_t i) const override { return values_[i]; }
  core::Status Initialize(double) override {
    initialized_ = true;
    return {};
  }
  core::Result<StepOutcome> Step(double t, double dt) override {
    const double k = std::get<double>(values_[0]);
    const double u = std::get<bool>(values_[4]) ? std::get<double>(values_[2]) : 0.0;
    const double x = std::get<double>(values_[1]);
    const double ss = u / k;
    values_[1] = ss + (x - ss) * std::exp(-k * dt);
    values_[3] = values_[1];
    return StepOutcome{t + dt, false, {}};
  }
  bool HasDirectFeedthrough(std::size_t) const override { return false; }

 private:
  std::vector<Variable> vars_;
  std::vector<Value> values_;
  bool initialized_ = false;
};

UnitKinds Kinds() {
  UnitKinds k;
  k["tank"] = [](const UnitSpec&) -> core::Result<std::unique_ptr<Unit>> {
    return std::unique_ptr<Unit>(std::make_unique<Tank>());
  };
  return k;
}

ScenarioDefinition Parse(const std::string& text) {
  auto j = core::ParseJson(text);
  EXPECT_TRUE(j.ok()) << text;
  auto def = ParseScenario(*j);
  EXPECT_TRUE(def.ok()) << def.status().ToString();
  return def.ok() ? std::move(*def) : ScenarioDefinition{};
}

core::Status ParseError(const std::string& text) {
  auto j = core::ParseJson(text);
  EXPECT_TRUE(j.ok()) << text;
  auto def = ParseScenario(*j);
  EXPECT_FALSE(def.ok()) << text;
  return def.ok() ? core::Status() : def.status();
}

constexpr const char* kBase = R"j({
  "name": "base",
  "units": {"tank": {"kind": "tank"}},
  "parameters": {"tank.k": 0.5},
  "inputs": {"tank.u": {"times": [0, 10], "values": [0, 4], "interpolation": "step"}},
  "horizon": 30, "step": 0.5,
  "record": ["tank.u"],
  "kpis": {"peak": "max(tank.x)", "final": "last(tank.x)", "above": "time_above(tank.x, 4)",
           "inflow": "integral(tank.u)"}
})j";

TEST(ScenarioTest, RunMatchesTheClosedFormSolutionAndItsKpis) {
  ScenarioDefinition def = Parse(kBase);
  auto r = RunScenario(def, Kinds(), {}, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto* x = r->recording.Column("tank.x");
  ASSERT_NE(x, nullptr);
  ASSERT_EQ(r->recording.time.size(), 61u);
  for (std::size_t i = 0; i < x->size(); ++i) {
    const double t = r->recording.time[i];
    const double expect = t <= 10 ? 0.0 : 8.0 * (1 - std::exp(-0.5 * (t - 10)));
    EXPECT_NEAR((*x)[i], expect, 1e-9) << t;
  }
  ASSERT_EQ(r->kpis.size(), 4u);
  // kpis come in the definition's member order
  auto kpi = [&](const std::string& name) {
    for (const auto& k : r->kpis) {
      if (k.name == name) return k.value;
    }
    ADD_FAILURE() << name;
    return 0.0;
  };
  EXPECT_NEAR(kpi("final"), 8.0 * (1 - std::exp(-10)), 1e-9);
  EXPECT_NEAR(kpi("peak"), kpi("final"), 1e-12);
  // x crosses 4 at t = 10 + 2 ln 2; linear interpolation between points is within a step.
  EXPECT_NEAR(kpi("above"), 30 - (10 + 2 * std::log(2.0)), 0.05);
  EXPECT_NEAR(kpi("inflow"), 4 * 20 + 0.5 * 4 * 0.5, 1e-9);  // the step edge is a trapezoid
}

TEST(ScenarioTest, EventsActAtTheirCommunicationPointAndBindingsSetTheStart) {
  ScenarioDefinition def = Parse(R"j({
    "units": {"tank": {"kind": "tank"}},
    "bindings": [{"variable": "tank.x", "twin": "tank-7", "path": "level"}],
    "inputs": {"tank.u": {"times": [0], "values": [4]}},
    "events": [{"at": 5, "name": "valve closes", "set": {"tank.open": false}}],
    "horizon": 10, "step": 1, "kpis": {"final": "last(tank.x)"}
  })j");
  BindingSource twins = [](const Binding& b,
                           std::optional<std::int64_t>) -> core::Result<json::value> {
    if (b.twin == "tank-7" && b.path == "level") return json::value(std::int64_t{2});
    return core::Status("NOT_FOUND", "no such twin");
  };
  auto r = RunScenario(def, Kinds(), twins, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // From x0 = 2 (the twin's integer level, as a real) toward 8 for 5 s, then drained for 5 s.
  const double at5 = 8 + (2 - 8) * std::exp(-2.5);
  EXPECT_NEAR(r->kpis[0].value, at5 * std::exp(-2.5), 1e-9);

  BindingSource missing = [](const Binding&,
                             std::optional<std::int64_t>) -> core::Result<json::value> {
    return core::Status("TWIN_NOT_FOUND", "no twin 'tank-7'");
  };
  auto bad = RunScenario(def, Kinds(), missing, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "SCENARIO_BINDING");
  EXPECT_EQ(bad.status().pointer(), "/bindings/0");
  auto none = RunScenario(def, Kinds(), {}, {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), "SCENARIO_BINDING");
}

TEST(ScenarioTest, MonteCarloIsReproducibleAndRecommendsWithPairedUncertainty) {
  const std::string uncertain = R"j(,
    "uncertainty": {"runs": 200, "seed": 11,
                    "parameters": {"tank.k": {"uniform": {"min": 0.4, "max": 0.6}}}}})j";
  std::string base_text = kBase;
  base_text.erase(base_text.rfind('}'));
  ScenarioDefinition base = Parse(base_text + uncertain);
  std::string alt_text = base_text;
  alt_text.replace(alt_text.find("\"values\": [0, 4]"), 16, "\"values\": [0, 3]");
  alt_text.replace(alt_text.find("\"base\""), 6, "\"gentle\"");
  ScenarioDefinition alt = Parse(alt_text + uncertain);

  RunControl one;
  RunControl two;
  two.threads = 2;
  auto a1 = RunScenario(base, Kinds(), {}, one);
  auto a2 = RunScenario(base, Kinds(), {}, two);
  auto b = RunScenario(alt, Kinds(), {}, two);
  ASSERT_TRUE(a1.ok() && a2.ok() && b.ok());
  ASSERT_TRUE(a1->kpis[0].spread.has_value());
  EXPECT_EQ(a1->kpi_runs, a2->kpi_runs);  // same seed: same runs, whatever the threads
  const KpiSpread& s = *a1->kpis[0].spread;
  EXPECT_EQ(s.runs, 200u);
  // peak = 4/k (1 - e^{-10k}) for k in [0.4, 0.6]: between ~6.6 and ~9.8.
  EXPECT_GT(s.p5, 6.5);
  EXPECT_LT(s.p95, 9.9);
  EXPECT_LT(s.p5, s.p50);
  EXPECT_LT(s.p50, s.p95);

  auto rec = Recommend({{"base", &*a1}, {"gentle", &*b}}, "peak", true);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->best, "gentle");
  const Ranked& best = rec->ranking.front();
  EXPECT_TRUE(best.paired);
  // The peak scales with the inflow: alt_i = 0.75 base_i in every run (same draws of k), so
  // the mean change is -25% and its 95% half-width is 1.96 sd(0.25 base) / sqrt(n) / mean.
  EXPECT_NEAR(best.change_pct, -25.0, 1e-6);
  EXPECT_NEAR(best.plus_minus_pct, 1.96 * 0.25 * s.stddev / std::sqrt(200.0) / s.mean * 100, 1e-6);
  EXPECT_NE(rec->text.find("gentle cuts peak 25.0%"), std::string::npos) << rec->text;

  auto unknown = Recommend({{"base", &*a1}, {"gentle", &*b}}, "nope", true);
  EXPECT_EQ(unknown.status().code(), "SCENARIO_INVALID");

  // Bands over time: every recorded variable at every row of the base run (61 < 200).
  const TimeBand* xb = nullptr;
  const TimeBand* ub = nullptr;
  for (const TimeBand& band : a1->bands) {
    if (band.name == "tank.x") xb = &band;
    if (band.name == "tank.u") ub = &band;
  }
  ASSERT_NE(xb, nullptr);
  ASSERT_NE(ub, nullptr);
  EXPECT_EQ(xb->time, a1->recording.time);
  for (std::size_t j = 0; j < xb->time.size(); ++j) {
    const double t = xb->time[j];
    EXPECT_EQ(xb->runs[j], 200u);
    EXPECT_LE(xb->p5[j], xb->p25[j]);
    EXPECT_LE(xb->p25[j], xb->p50[j]);
    EXPECT_LE(xb->p50[j], xb->p75[j]);
    EXPECT_LE(xb->p75[j], xb->p95[j]);
    // The inflow is not uncertain: its band is a line.
    EXPECT_EQ(ub->p5[j], ub->p95[j]) << t;
    EXPECT_EQ(ub->p50[j], t < 10 ? 0.0 : 4.0) << t;
    // x(t) = 4/k (1 - e^{-k (t - 10)}) falls as k rises, so its median is near k = 0.5's.
    const double mid = t <= 10 ? 0.0 : 8 * (1 - std::exp(-0.5 * (t - 10)));
    EXPECT_NEAR(xb->p50[j], mid, 0.25) << t;
  }
  // At the last time the band is the distribution of the "final" KPI (last(tank.x)).
  const std::size_t last = xb->time.size() - 1;
  const KpiSpread& fin = *a1->kpis[1].spread;
  ASSERT_EQ(a1->kpis[1].name, "final");
  EXPECT_DOUBLE_EQ(xb->p5[last], fin.p5);
  EXPECT_DOUBLE_EQ(xb->p50[last], fin.p50);
  EXPECT_DOUBLE_EQ(xb->p95[last], fin.p95);
  EXPECT_DOUBLE_EQ(xb->mean[last], fin.mean);
  EXPECT_GT(xb->p95[last] - xb->p5[last], 2.0);  // 4/0.6 .. 4/0.4
  // Reproducible whatever the threads.
  ASSERT_EQ(a2->bands.size(), a1->bands.size());
  for (std::size_t i = 0; i < a1->bands.size(); ++i) EXPECT_EQ(a1->bands[i].p50, a2->bands[i].p50);
}

TEST(ScenarioTest, EmpiricalDistributionsComeFromATwinsHistory) {
  std::string text = kBase;
  text.erase(text.rfind('}'));
  text += R"j(,
    "uncertainty": {"runs": 400, "seed": 5, "parameters": {"tank.k": {"empirical": {
      "twin": "tank-7", "path": "drain", "from": "now-7d"}}}}})j";
  ScenarioDefinition def = Parse(text);
  ASSERT_EQ(def.uncertain.size(), 1u);
  ASSERT_TRUE(def.uncertain[0].from_history.has_value());
  EXPECT_EQ(def.uncertain[0].from_history->path, "drain");
  HistorySample asked;
  HistorySource history = [&](const HistorySample& h) -> core::Result<std::vector<double>> {
    asked = h;
    return std::vector<double>{0.4, 0.6, std::nan("")};  // the NaN is left out
  };
  auto r = RunScenario(def, Kinds(), {}, {}, history);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(asked.twin, "tank-7");
  EXPECT_NEAR(static_cast<double>(asked.to_ns - asked.from_ns), 7 * 86400e9, 60e9);
  // Every run drew k = 0.4 or 0.6: the final level is 4/k (1 - e^{-20k}) for one of them.
  const auto& runs = r->kpi_runs[1];  // "final"
  std::size_t low = 0, high = 0;
  for (double v : runs) {
    if (std::abs(v - 4 / 0.4 * (1 - std::exp(-8.0))) < 1e-9) ++low;
    if (std::abs(v - 4 / 0.6 * (1 - std::exp(-12.0))) < 1e-9) ++high;
  }
  EXPECT_EQ(low + high, 400u);
  EXPECT_GT(low, 150u);
  EXPECT_GT(high, 150u);

  HistorySource sparse = [](const HistorySample&) -> core::Result<std::vector<double>> {
    return std::vector<double>{0.5};
  };
  const core::Status s = ValidateScenario(def, Kinds(), {}, sparse);
  EXPECT_EQ(s.code(), "SCENARIO_HISTORY");
  EXPECT_EQ(s.pointer(), "/uncertainty/parameters/tank.k");
  EXPECT_EQ(ValidateScenario(def, Kinds(), {}).code(), "SCENARIO_HISTORY");
  std::string bad = text;
  bad.replace(bad.find("now-7d"), 6, "last week");
  auto j = core::ParseJson(bad);
  ASSERT_TRUE(j.ok());
  auto parsed = ParseScenario(*j);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().pointer(), "/uncertainty/parameters/tank.k/empirical/from");
}

TEST(ScenarioTest, StochasticUnitsGetASeedOfTheirOwnPerMonteCarloRun) {
  // A two-machine line with exponential processing times; the drawn parameter barely varies, so
  // the spread of the parts made comes from the line's own randomness.
  std::string text = R"j({
    "units": {"line": {"kind": "des", "machines": 2}},
    "parameters": {"line.m1.process_cv": 1, "line.m2.process_cv": 1, "line.m2.process_mean": 10},
    "horizon": 3600, "step": 600, "kpis": {"parts": "last(line.parts_out)"},
    "uncertainty": {"runs": 20, "seed": 3,
                    "parameters": {"line.m1.process_mean": {"uniform": {"min": 10, "max": 10.000001}}}}
  })j";
  auto distinct = [](const std::vector<double>& v) {
    return std::set<double>(v.begin(), v.end()).size();
  };
  ScenarioDefinition def = Parse(text);
  auto a = RunScenario(def, DefaultUnitKinds(), {}, {});
  auto b = RunScenario(def, DefaultUnitKinds(), {}, {});
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString();
  EXPECT_EQ(a->kpi_runs, b->kpi_runs);  // reproducible
  EXPECT_GT(distinct(a->kpi_runs[0]), 5u);
  // A seed the definition sets is kept: every run then replays the same line.
  std::string fixed = text;
  fixed.replace(fixed.find("\"line.m1.process_cv\""), 0, "\"line.seed\": 7, ");
  auto c = RunScenario(Parse(fixed), DefaultUnitKinds(), {}, {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(distinct(c->kpi_runs[0]), 1u);
}

TEST(ScenarioTest, CancelStopsTheRun) {
  ScenarioDefinition def = Parse(kBase);
  std::atomic<bool> cancel{true};
  RunControl c;
  c.cancel = &cancel;
  auto r = RunScenario(def, Kinds(), {}, c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "SCENARIO_CANCELLED");
}

TEST(ScenarioTest, BadDefinitionsNameWhatAndWhere) {
  struct Case {
    const char* text;
    const char* code;
    const char* pointer;
  };
  const Case cases[] = {
      {R"j([])j", "SCENARIO_INVALID", ""},
      {R"j({"units": {}, "horizon": 1, "step": 1, "record": ["a.b"]})j", "SCENARIO_INVALID",
       "/units"},
      {R"j({"units": {"t": {"kind": "tank"}}, "step": 1, "record": ["t.x"]})j", "SCENARIO_INVALID",
       "/horizon"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": -1, "step": 1, "record": ["t.x"]})j",
       "SCENARIO_INVALID", "/horizon"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": 10, "step": "fast", "record": ["t.x"]})j",
       "SCENARIO_INVALID", "/step"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": 10, "step": 1, "record": ["tx"]})j",
       "SCENARIO_INVALID", "/record/0"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": 10, "step": 1, "speed": 3,
           "record": ["t.x"]})j",
       "SCENARIO_INVALID", "/speed"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": 10, "step": 1,
           "kpis": {"k": "max(t.x"}})j",
       "SCENARIO_KPI", "/kpis/k"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": 10, "step": 1,
           "kpis": {"k": "t.x + 1"}})j",
       "SCENARIO_KPI", "/kpis/k"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": 10, "step": 1,
           "inputs": {"t.u": {"times": [0, 0], "values": [1, 2]}}, "record": ["t.x"]})j",
       "SCENARIO_INVALID", "/inputs/t.u/times/1"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": 10, "step": 1, "kpis": {"p": "max(t.x)"},
           "uncertainty": {"runs": 10, "parameters": {"t.k": {"normal": {"mean": 1, "sd": -1}}}}})j",
       "SCENARIO_INVALID", "/uncertainty/parameters/t.k/normal"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": 10, "step": 1, "kpis": {"p": "max(t.x)"},
           "uncertainty": {"runs": 1, "parameters": {"t.k": {"normal": {"mean": 1, "sd": 1}}}}})j",
       "SCENARIO_INVALID", "/uncertainty/runs"},
  };
  for (const Case& c : cases) {
    const core::Status s = ParseError(c.text);
    EXPECT_EQ(s.code(), c.code) << c.text << "\n" << s.ToString();
    EXPECT_EQ(s.pointer(), c.pointer) << c.text << "\n" << s.ToString();
  }
}

TEST(ScenarioTest, DefinitionsThatDoNotFitTheUnitsFailValidation) {
  struct Case {
    const char* text;
    const char* code;
  };
  const Case cases[] = {
      {R"j({"units": {"t": {"kind": "boiler"}}, "horizon": 10, "step": 1, "record": ["t.x"]})j",
       "SCENARIO_UNKNOWN_KIND"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": 10, "step": 1, "record": ["t.level"]})j",
       "SIM_UNKNOWN_VARIABLE"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": 10, "step": 1, "record": ["u.x"]})j",
       "SIM_UNKNOWN_UNIT"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": 10, "step": 1, "record": ["t.x"],
           "parameters": {"t.k": "fast"}})j",
       "SIM_WRONG_TYPE"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": 10, "step": 1, "record": ["t.x"],
           "events": [{"at": 2, "set": {"t.open": 3}}]})j",
       "SIM_WRONG_TYPE"},
      {R"j({"units": {"a": {"kind": "tank"}, "b": {"kind": "tank"}}, "horizon": 10, "step": 1,
           "record": ["a.x"], "connections": [{"from": "a.y", "to": "b.k"}]})j",
       "SIM_BAD_CONNECTION"},
      {R"j({"units": {"t": {"kind": "tank"}}, "horizon": 10, "step": 1,
           "kpis": {"k": "max(t.nope)"}})j",
       "SIM_UNKNOWN_VARIABLE"},
  };
  for (const Case& c : cases) {
    ScenarioDefinition def = Parse(c.text);
    const core::Status s = ValidateScenario(def, Kinds(), {});
    EXPECT_EQ(s.code(), c.code) << c.text << "\n" << s.ToString();
  }
  EXPECT_TRUE(ValidateScenario(Parse(kBase), Kinds(), {}).ok());
}

TEST(ScenarioTest, OdeUnitsOfTheDefaultKindsFollowTheirAnalyticSolution) {
  // A registered model feeds a declarative first-order lag: x = e^{-kt}, y' = x - y with
  // y(0) = 0 gives y = (e^{-kt} - e^{-t}) / (1 - k).
  ScenarioDefinition def = Parse(R"j({
    "units": {
      "decay": {"kind": "ode", "model": "exponential_decay", "rtol": 1e-10, "atol": 1e-12},
      "lag": {"kind": "ode", "solver": "arkode", "rtol": 1e-10, "atol": 1e-12,
              "definition": {"states": {"y": {"start": 0, "der": "u - y"}}, "inputs": {"u": 0},
                             "outputs": {"out": "y"}}}},
    "connections": [{"from": "decay.x", "to": "lag.u"}],
    "parameters": {"decay.k": 0.5},
    "horizon": 4, "step": 0.001,
    "kpis": {"x": "last(decay.x)", "y": "last(lag.y)"}
  })j");
  auto r = RunScenario(def, DefaultUnitKinds(), {}, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NEAR(r->kpis[0].value, std::exp(-2.0), 1e-8);
  // The lag sees x held over each 1 ms step (zero-order hold): first order in the step.
  EXPECT_NEAR(r->kpis[1].value, (std::exp(-2.0) - std::exp(-4.0)) / 0.5, 1e-3);

  // Two units whose outputs follow their inputs at once, fed into each other: an algebraic
  // loop. The same pair connected through their states is not one.
  const char* kLoop = R"j({
    "units": {
      "a": {"kind": "ode", "definition": {"states": {"s": {"start": 0, "der": "-s"}},
                                          "inputs": {"u": 0}, "outputs": {"y": "u + s"}}},
      "b": {"kind": "ode", "definition": {"states": {"s": {"start": 1, "der": "-s"}},
                                          "inputs": {"u": 0}, "outputs": {"y": "u + s"}}}},
    "connections": [{"from": "a.y", "to": "b.u"}, {"from": "b.OUT", "to": "a.u"}],
    "horizon": 1, "step": 0.1, "record": ["a.s"]})j";
  std::string loop = kLoop;
  loop.replace(loop.find("b.OUT"), 5, "b.y");
  EXPECT_EQ(ValidateScenario(Parse(loop), DefaultUnitKinds(), {}).code(), "SIM_ALGEBRAIC_LOOP");
  std::string through_state = kLoop;
  through_state.replace(through_state.find("b.OUT"), 5, "b.s");
  EXPECT_TRUE(ValidateScenario(Parse(through_state), DefaultUnitKinds(), {}).ok());

  ScenarioDefinition bad = Parse(R"j({
    "units": {"decay": {"kind": "ode", "model": "no_such_model"}},
    "horizon": 1, "step": 0.1, "record": ["decay.x"]})j");
  const core::Status s = ValidateScenario(bad, DefaultUnitKinds(), {});
  EXPECT_EQ(s.code(), "SIM_UNKNOWN_MODEL");
  EXPECT_EQ(s.pointer(), "/units/decay/model");
  ScenarioDefinition fmu = Parse(R"j({
    "units": {"c": {"kind": "fmu", "file": "x.fmu"}},
    "horizon": 1, "step": 0.1, "record": ["c.x"]})j");
  EXPECT_EQ(ValidateScenario(fmu, DefaultUnitKinds(), {}).code(), "SCENARIO_UNKNOWN_KIND");
  UnitKindOptions with_dir;
  with_dir.fmu_dir = "/nonexistent";
  ScenarioDefinition escape = Parse(R"j({
    "units": {"c": {"kind": "fmu", "file": "../etc/x.fmu"}},
    "horizon": 1, "step": 0.1, "record": ["c.x"]})j");
  const core::Status e = ValidateScenario(escape, DefaultUnitKinds(with_dir), {});
  EXPECT_EQ(e.code(), "SCENARIO_INVALID");
  EXPECT_EQ(e.pointer(), "/units/c/file");
}

}  // namespace
}  // namespace doppel::sim::scenario
