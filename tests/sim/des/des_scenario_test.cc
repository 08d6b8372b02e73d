// The discrete-event units through scenario definitions: "machine M2 fails at 01:00 for 45 min"
// as an injected event and as an input series, the "model" member of kind "des", and the hospital
// flow with a surge.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "core/json.h"
#include "sim/scenario/scenario.h"
#include "sim/scenario/unit_kinds.h"

namespace doppel::sim::scenario {
namespace {

ScenarioDefinition Parse(const std::string& text) {
  auto j = core::ParseJson(text);
  EXPECT_TRUE(j.ok()) << text;
  auto def = ParseScenario(*j);
  EXPECT_TRUE(def.ok()) << def.status().ToString();
  return def.ok() ? std::move(*def) : ScenarioDefinition{};
}

double Kpi(const ScenarioResult& r, const std::string& name) {
  for (const auto& k : r.kpis) {
    if (k.name == name) return k.value;
  }
  ADD_FAILURE() << name;
  return 0;
}

// The deterministic line of des_test (ProductionLine.ForcedFailureOf...): constant times 1, 2, 1 s,
// buffers of 2, no random failures. 14399 parts in 8 h; machine 2 down for 45 min from 01:00
// costs exactly 2700 s of its 0.5 parts/s: 13049.
std::string Line(const std::string& injected, const std::string& extra_unit = "") {
  return R"j({
    "units": {"line": {"kind": "des", "machines": 3)j" +
         extra_unit + R"j(}},
    "parameters": {"line.m1.process_mean": 1, "line.m2.process_mean": 2,
                   "line.m3.process_mean": 1, "line.m1.process_cv": 0,
                   "line.m2.process_cv": 0, "line.m3.process_cv": 0,
                   "line.b1.capacity": 2, "line.b2.capacity": 2},
    "horizon": "8h", "step": 60)j" +
         injected + R"j(,
    "record": ["line.m2.state"],
    "kpis": {"parts": "last(line.parts_out)", "m2Down": "last(line.m2.down_time)",
             "m2DownState": "time_above(line.m2.state, 1.5)"}
  })j";
}

TEST(DesScenario, M2FailsAt0100For45MinutesAsEvents) {
  const auto kinds = DefaultUnitKinds();
  auto base = RunScenario(Parse(Line("")), kinds, {}, {});
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  EXPECT_EQ(Kpi(*base, "parts"), 14399);
  EXPECT_EQ(Kpi(*base, "m2Down"), 0);

  auto fails = RunScenario(Parse(Line(R"j(,
    "events": [{"at": "1h", "name": "M2 fails", "set": {"line.m2.down": 1}},
               {"at": 6300, "name": "M2 repaired", "set": {"line.m2.down": 0}}])j")),
                           kinds, {}, {});
  ASSERT_TRUE(fails.ok()) << fails.status().ToString();
  EXPECT_EQ(Kpi(*fails, "parts"), 13049);
  EXPECT_EQ(Kpi(*fails, "m2Down"), 2700);
  // The state series: 2 (down) at every communication point from 3660 to 6300 (sampled after
  // each step; linear between points, so the 1.5 crossings add half a step on each side).
  EXPECT_NEAR(Kpi(*fails, "m2DownState"), 2700, 60);
  // The unit's events, with their simulated times.
  int forced = 0;
  for (const auto& e : fails->recording.events) {
    if (e.name == "line.m2.forced_down") {
      EXPECT_EQ(e.time, 3600);
      ++forced;
    }
    if (e.name == "line.m2.forced_up") {
      EXPECT_EQ(e.time, 6300);
      ++forced;
    }
  }
  EXPECT_EQ(forced, 2);

  // The same as an input series, and with the default model named explicitly.
  auto series = RunScenario(Parse(Line(R"j(,
    "inputs": {"line.m2.down": {"times": [0, 3600, 6300], "values": [0, 1, 0]}})j",
                                       R"j(, "model": "production_line")j")),
                            kinds, {}, {});
  ASSERT_TRUE(series.ok()) << series.status().ToString();
  EXPECT_EQ(Kpi(*series, "parts"), 13049);
  EXPECT_EQ(Kpi(*series, "m2Down"), 2700);
}

TEST(DesScenario, AnEventBetweenCommunicationPointsActsAtTheNextOne) {
  // 01:00:30 with a 60 s step: the master sets the input at 01:01, and the repair at 01:46:30
  // acts at 01:47. The failure still lasts 2700 s, 60 s later: 30 more parts (the line makes 0.5
  // parts/s) are out before it, the same number are lost.
  auto r = RunScenario(Parse(Line(R"j(,
    "events": [{"at": 3630, "set": {"line.m2.down": 1}},
               {"at": 6330, "set": {"line.m2.down": 0}}])j")),
                       DefaultUnitKinds(), {}, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Kpi(*r, "m2Down"), 2700);
  EXPECT_EQ(Kpi(*r, "parts"), 13049);
  int seen = 0;
  for (const auto& e : r->recording.events) {
    if (e.name == "line.m2.forced_down") {
      EXPECT_EQ(e.time, 3660);
      ++seen;
    }
  }
  EXPECT_EQ(seen, 1);
}

TEST(DesScenario, BadInjectedValuesAndModelsAreRefused) {
  auto speed = ValidateScenario(Parse(Line(R"j(,
    "events": [{"at": 60, "set": {"line.m2.speed": 0}}])j")),
                                DefaultUnitKinds(), {});
  EXPECT_EQ(speed.code(), "SIM_BAD_PARAMETER") << speed.ToString();
  auto model =
      ValidateScenario(Parse(Line("", R"j(, "model": "assembly")j")), DefaultUnitKinds(), {});
  EXPECT_EQ(model.code(), "SCENARIO_INVALID");
  EXPECT_EQ(model.pointer(), "/units/line/model");
  auto member = ValidateScenario(Parse(R"j({
    "units": {"ed": {"kind": "des", "model": "hospital_flow", "machines": 3}},
    "horizon": 60, "step": 60, "kpis": {"w": "last(ed.waiting)"}})j"),
                                 DefaultUnitKinds(), {});
  EXPECT_EQ(member.code(), "SCENARIO_INVALID");
  EXPECT_EQ(member.pointer(), "/units/ed/machines");
}

TEST(DesScenario, HospitalSurgeRaisesTheWaitAndExtraDoctorsBringItDown) {
  const std::string head = R"j({
    "units": {"ed": {"kind": "des", "model": "hospital_flow"}},
    "parameters": {"ed.seed": 5, "ed.arrival_rate": 0.0016667, "ed.doctors": 4},
    "horizon": "2d", "step": 300,
    "kpis": {"meanWaiting": "mean(ed.waiting)", "d2d": "last(ed.door_to_doctor)",
             "peak": "max(ed.waiting)"})j";
  const auto kinds = DefaultUnitKinds();
  auto calm = RunScenario(Parse(head + "}"), kinds, {}, {});
  ASSERT_TRUE(calm.ok()) << calm.status().ToString();
  // A bus crash: 3x the arrivals for 3 h from 30 h on.
  const std::string surge = R"j(,
    "events": [{"at": "30h", "set": {"ed.arrival_rate": 0.005}},
               {"at": "33h", "set": {"ed.arrival_rate": 0.0016667}}])j";
  auto busy = RunScenario(Parse(head + surge + "}"), kinds, {}, {});
  ASSERT_TRUE(busy.ok()) << busy.status().ToString();
  EXPECT_GT(Kpi(*busy, "meanWaiting"), Kpi(*calm, "meanWaiting"));
  EXPECT_GT(Kpi(*busy, "peak"), Kpi(*calm, "peak") + 5);
  EXPECT_GT(Kpi(*busy, "d2d"), Kpi(*calm, "d2d"));
  // Two more doctors called in for the surge.
  const std::string staffed = R"j(,
    "events": [{"at": "30h", "set": {"ed.arrival_rate": 0.005, "ed.doctors": 6}},
               {"at": "33h", "set": {"ed.arrival_rate": 0.0016667}}])j";
  auto helped = RunScenario(Parse(head + staffed + "}"), kinds, {}, {});
  ASSERT_TRUE(helped.ok()) << helped.status().ToString();
  EXPECT_LT(Kpi(*helped, "peak"), Kpi(*busy, "peak"));
  EXPECT_LT(Kpi(*helped, "meanWaiting"), Kpi(*busy, "meanWaiting"));
}

// The example next to line-today.json: same bindings (fake twins here), machine 2 down 45 min.
TEST(DesScenario, TheM2FailsExampleRunsAndCostsPartsAgainstLineToday) {
  auto load = [](const std::string& name) {
    std::ifstream in(std::string(DOPPEL_SOURCE_DIR) + "/examples/scenarios/" + name);
    std::stringstream text;
    text << in.rdbuf();
    return Parse(text.str());
  };
  BindingSource twins = [](const Binding& b,
                           std::optional<std::int64_t>) -> core::Result<boost::json::value> {
    if (b.path != "cycleTime") return core::Status("NOT_FOUND", "no such property");
    return boost::json::value(b.twin == "machine-2" ? 50.0 : 40.0);
  };
  const auto kinds = DefaultUnitKinds();
  auto today = RunScenario(load("line-today.json"), kinds, twins, {});
  auto fails = RunScenario(load("line-m2-fails.json"), kinds, twins, {});
  ASSERT_TRUE(today.ok()) << today.status().ToString();
  ASSERT_TRUE(fails.ok()) << fails.status().ToString();
  // Down at least the 45 injected minutes (random failures come on top).
  EXPECT_GE(Kpi(*fails, "m2DownMinutes"), 45);
  // Same seed, same draws: the injected failure is the difference, run by run on average.
  ASSERT_TRUE(today->kpis[0].spread && fails->kpis[0].spread);
  EXPECT_EQ(today->kpis[0].name, "partsPerHour");
  EXPECT_LT(fails->kpis[0].spread->mean, today->kpis[0].spread->mean);
  auto rec = Recommend({{"today", &*today}, {"m2 fails", &*fails}}, "partsPerHour", false);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->best, "today");
}

}  // namespace
}  // namespace doppel::sim::scenario
