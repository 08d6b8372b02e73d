// The virtual plant: the simulator without a broker, then the MQTT contract against a real
// mosquitto (tests/sync/mosquitto_broker.h). Waits have generous deadlines; nothing asserts on
// elapsed time.
#include "plant/plant.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "sync/mosquitto_broker.h"
#include "sync/mqtt_client.h"

namespace doppel::plant {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

const Clock::time_point kT0 = Clock::time_point(std::chrono::milliseconds(1795705200123));

// Options with every random effect off unless a test turns it on.
SimulatorOptions Quiet(int machines = 1) {
  SimulatorOptions o;
  o.machines = machines;
  o.fault_rate = 0;
  o.missing_rate = 0;
  return o;
}

json::object Parse(const std::string& text) { return json::parse(text).as_object(); }

std::vector<std::string> Payloads(const std::vector<MachineMessage>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.push_back(m.machine + " " + m.payload);
  return out;
}

// Runs `seconds` of simulated time in ticks of dt; returns every message.
std::vector<MachineMessage> Simulate(PlantSimulator& sim, double seconds, double dt) {
  std::vector<MachineMessage> all;
  const auto ticks = static_cast<int>(std::lround(seconds / dt));
  for (int i = 0; i < ticks; ++i) {
    auto t = kT0 + std::chrono::milliseconds(static_cast<std::int64_t>(i * dt * 1000));
    auto out = sim.Tick(dt, t);
    all.insert(all.end(), out.begin(), out.end());
  }
  return all;
}

TEST(PlantSimulatorTest, ValidateRejectsBadOptions) {
  EXPECT_TRUE(PlantSimulator::Validate(SimulatorOptions{}).ok());
  auto bad = [](auto change) {
    SimulatorOptions o;
    change(o);
    return PlantSimulator::Validate(o).code();
  };
  EXPECT_EQ(bad([](auto& o) { o.machines = 0; }), "PLANT_BAD_OPTIONS");
  EXPECT_EQ(bad([](auto& o) { o.id_prefix = "a/b"; }), "PLANT_BAD_OPTIONS");
  EXPECT_EQ(bad([](auto& o) { o.id_prefix = "m+"; }), "PLANT_BAD_OPTIONS");
  EXPECT_EQ(bad([](auto& o) { o.fault_rate = 1.5; }), "PLANT_BAD_OPTIONS");
  EXPECT_EQ(bad([](auto& o) { o.missing_rate = -0.1; }), "PLANT_BAD_OPTIONS");
  EXPECT_EQ(bad([](auto& o) { o.missing_rate = std::nan(""); }), "PLANT_BAD_OPTIONS");
}

TEST(PlantSimulatorTest, TelemetryPayloadFollowsTheContract) {
  PlantSimulator sim(Quiet(3));
  auto out = sim.Tick(1.0, kT0);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].machine, "machine-1");
  EXPECT_EQ(out[2].machine, "machine-3");
  const std::regex number(R"(-?[0-9]+\.[0-9]+)");
  for (const auto& m : out) {
    json::object o = Parse(m.payload);
    EXPECT_EQ(o.at("ts").as_string(), "2026-11-26T15:00:00.123Z") << m.payload;
    std::vector<std::string> keys;
    for (const auto& [k, v] : o) keys.emplace_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"ts", "temperature", "vibration", "spindleSpeed",
                                              "power", "partsProduced", "status"}));
    for (const char* k : {"temperature", "vibration", "spindleSpeed", "power"}) {
      EXPECT_TRUE(o.at(k).is_double()) << k << " in " << m.payload;
    }
    EXPECT_TRUE(o.at("partsProduced").is_int64()) << m.payload;
    EXPECT_EQ(o.at("status").as_string(), "running");
    // Plausible values for a running machine at the nominal speed.
    EXPECT_NEAR(o.at("spindleSpeed").as_double(), 1500, 30);
    EXPECT_NEAR(o.at("temperature").as_double(), 72, 6);
    EXPECT_NEAR(o.at("power").as_double(), 11.4, 1);
    EXPECT_GT(o.at("vibration").as_double(), 1.0);
    EXPECT_LT(o.at("vibration").as_double(), 4.0);
  }
  EXPECT_EQ(FormatTimestampMs(kT0 + 999us), "2026-11-26T15:00:00.123Z");
}

TEST(PlantSimulatorTest, SameSeedSameSimulation) {
  SimulatorOptions o;  // faults and missing data on
  o.machines = 5;
  o.seed = 7;
  o.fault_rate = 0.01;
  o.missing_rate = 0.05;
  PlantSimulator a(o), b(o);
  auto pa = Payloads(Simulate(a, 500, 0.5));
  auto pb = Payloads(Simulate(b, 500, 0.5));
  ASSERT_GT(pa.size(), 4000u);
  EXPECT_EQ(pa, pb);

  o.seed = 8;
  PlantSimulator c(o);
  EXPECT_NE(Payloads(Simulate(c, 500, 0.5)), pa);

  // A machine's stream does not depend on how many machines there are.
  o.seed = 7;
  o.machines = 2;
  PlantSimulator d(o);
  std::vector<std::string> first_two;
  for (const auto& p : pa) {
    if (p.rfind("machine-1 ", 0) == 0 || p.rfind("machine-2 ", 0) == 0) first_two.push_back(p);
  }
  EXPECT_EQ(Payloads(Simulate(d, 500, 0.5)), first_two);
}

TEST(PlantSimulatorTest, SpeedFollowsItsSetpointWithAFirstOrderLag) {
  PlantSimulator sim(Quiet());
  const double tau = sim.options().physics.speed_tau_s;
  ASSERT_TRUE(sim.Apply("machine-1", "setSpeed", "3000").ok());
  EXPECT_EQ(sim.machines()[0].setpoint_rpm, 3000);
  Simulate(sim, tau, 0.01);
  // After one time constant: 63 % of the way from 1500 to 3000.
  EXPECT_NEAR(sim.machines()[0].speed_rpm, 1500 + 1500 * (1 - std::exp(-1.0)), 5);
  Simulate(sim, 10 * tau, 0.01);
  EXPECT_NEAR(sim.machines()[0].speed_rpm, 3000, 1);
  // The published value is the state plus noise.
  auto out = sim.Tick(0.01, kT0);
  EXPECT_NEAR(Parse(out[0].payload).at("spindleSpeed").as_double(), 3000, 20);

  ASSERT_TRUE(sim.Apply("machine-1", "setSpeed", R"({"rpm": 0})").ok());
  Simulate(sim, 20 * tau, 0.1);
  EXPECT_EQ(sim.machines()[0].speed_rpm, 0);
  EXPECT_EQ(Parse(sim.Tick(0.1, kT0)[0].payload).at("spindleSpeed").as_double(), 0.0);
}

TEST(PlantSimulatorTest, TemperatureSettlesAtItsEquilibrium) {
  SimulatorOptions o = Quiet();
  o.physics.initial_wear_max = 0;
  o.physics.wear_per_hour = 0;
  PlantSimulator sim(o);
  const PhysicsParams& p = sim.options().physics;
  ASSERT_TRUE(sim.Apply("machine-1", "setSpeed", "3000").ok());
  const double power = p.idle_power_kw + p.kw_per_rpm * 3000;
  const double equilibrium = p.ambient_c + p.c_per_kw * power;
  const double before = sim.machines()[0].temperature_c;
  EXPECT_LT(before, equilibrium - 20);
  Simulate(sim, p.thermal_tau_s, 1.0);  // one time constant: about 63 % of the way
  const double after_tau = sim.machines()[0].temperature_c;
  EXPECT_NEAR((after_tau - before) / (equilibrium - before), 1 - std::exp(-1.0), 0.03);
  Simulate(sim, 12 * p.thermal_tau_s, 1.0);
  EXPECT_NEAR(sim.machines()[0].temperature_c, equilibrium, 0.05);
  // Published readings scatter around it.
  double sum = 0;
  auto out = Simulate(sim, 1000, 1.0);
  for (const auto& m : out) sum += Parse(m.payload).at("temperature").as_double();
  EXPECT_NEAR(sum / static_cast<double>(out.size()), equilibrium, 0.05);
  EXPECT_NEAR(sim.machines()[0].power_kw, power, 1e-9);
}

TEST(PlantSimulatorTest, WearRaisesVibrationAndTemperatureOverTime) {
  SimulatorOptions o = Quiet();
  o.physics.initial_wear_max = 0;
  PlantSimulator sim(o);
  const double vibration = sim.machines()[0].vibration_mm_s;
  const double temperature = sim.machines()[0].temperature_c;
  Simulate(sim, 20 * 3600, 10.0);  // 20 h at the nominal speed
  EXPECT_NEAR(sim.machines()[0].wear, 20 * o.physics.wear_per_hour, 1e-6);
  EXPECT_GT(sim.machines()[0].vibration_mm_s, vibration + 4);
  EXPECT_GT(sim.machines()[0].temperature_c, temperature + 10);
  // Maintenance resets the wear.
  EXPECT_EQ(ToJsonText(sim.ApplyDesired(
                "machine-1", R"({"correlationId":"m","path":"/status","value":"maintenance"})")
                           .at("status")),
            "\"applied\"");
  EXPECT_EQ(sim.machines()[0].wear, 0);
}

TEST(PlantSimulatorTest, PartsAccumulateWithSpeedWhileRunning) {
  PlantSimulator sim(Quiet());
  const MachineState& m = sim.machines()[0];
  const std::int64_t start = m.parts;
  const double cycle = m.cycle_time_s;
  Simulate(sim, 100 * cycle, 1.0);  // nominal speed: one part per cycleTime
  EXPECT_NEAR(static_cast<double>(m.parts - start), 100, 1);

  // Twice the speed, twice the parts.
  ASSERT_TRUE(sim.Apply("machine-1", "setSpeed", "3000").ok());
  Simulate(sim, 60, 1.0);
  std::int64_t before = m.parts;
  Simulate(sim, 100 * cycle, 1.0);
  EXPECT_NEAR(static_cast<double>(m.parts - before), 200, 1);

  // A shorter cycle time, more parts.
  json::object ack = sim.ApplyDesired("machine-1", R"({"correlationId":"c","path":"/cycleTime",
                                                       "value":10})");
  EXPECT_EQ(ack.at("status"), "applied");
  before = m.parts;
  Simulate(sim, 100, 1.0);
  EXPECT_NEAR(static_cast<double>(m.parts - before), 20, 1);

  // Stopped: none.
  ASSERT_TRUE(sim.Apply("machine-1", "stop", "").ok());
  before = m.parts;
  Simulate(sim, 1000, 1.0);
  EXPECT_EQ(m.parts, before);
  EXPECT_EQ(m.speed_rpm, 0);
}

TEST(PlantSimulatorTest, FaultsHappenAtTheConfiguredRateAndGetRepaired) {
  SimulatorOptions o = Quiet(50);
  o.fault_rate = 0.002;
  o.physics.repair_min_s = 20;
  o.physics.repair_max_s = 40;
  PlantSimulator sim(o);
  std::uint64_t running_ticks = 0;
  std::uint64_t down_seen = 0;
  bool saw_repair = false;
  std::vector<MachineStatus> previous(50, MachineStatus::kRunning);
  for (int t = 0; t < 4000; ++t) {
    for (const auto& m : sim.machines()) running_ticks += m.status() == MachineStatus::kRunning;
    auto out = sim.Tick(1.0, kT0);
    for (std::size_t i = 0; i < out.size(); ++i) {
      const MachineState& m = sim.machines()[i];
      if (m.status() == MachineStatus::kDown) {
        ++down_seen;
        EXPECT_EQ(Parse(out[i].payload).at("status"), "down");
        EXPECT_GT(m.fault_remaining_s, 0);
        EXPECT_LE(m.fault_remaining_s, 40);
      }
      if (previous[i] == MachineStatus::kDown && m.status() == MachineStatus::kRunning) {
        saw_repair = true;
      }
      previous[i] = m.status();
    }
  }
  std::uint64_t faults = 0;
  for (const auto& m : sim.machines()) faults += m.faults;
  const double expected = o.fault_rate * static_cast<double>(running_ticks);  // about 360
  EXPECT_GT(static_cast<double>(faults), expected * 0.8);
  EXPECT_LT(static_cast<double>(faults), expected * 1.2);
  EXPECT_GT(down_seen, faults * 15);  // each fault lasts 20..40 ticks
  EXPECT_TRUE(saw_repair);
}

TEST(PlantSimulatorTest, ADownMachineStopsItsSpindleAndMakesNoParts) {
  PlantSimulator sim(Quiet());
  json::object ack = sim.ApplyDesired("machine-1", R"({"correlationId":"f","path":"/status",
                                                       "value":"down"})");
  EXPECT_EQ(ack.at("status"), "applied");
  const MachineState& m = sim.machines()[0];
  ASSERT_EQ(m.status(), MachineStatus::kDown);
  const double repair = m.fault_remaining_s;
  const std::int64_t parts = m.parts;
  Simulate(sim, 30, 1.0);
  EXPECT_EQ(m.speed_rpm, 0);
  EXPECT_LE(m.parts, parts + 1);  // at most the part in progress when it failed

  // While down: start is refused (409), a setpoint is kept for later.
  auto started = sim.Apply("machine-1", "start", "");
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.status().code(), "PLANT_MACHINE_DOWN");
  EXPECT_EQ(ResponseStatus(started.status()), 409);
  EXPECT_EQ(sim.ApplyDesired("machine-1", R"({"correlationId":"r","path":"/status",
                                              "value":"running"})")
                .at("status"),
            "rejected");
  ASSERT_TRUE(sim.Apply("machine-1", "setSpeed", "2000").ok());

  Simulate(sim, repair, 1.0);
  EXPECT_EQ(m.status(), MachineStatus::kRunning);
  Simulate(sim, 120, 1.0);
  EXPECT_NEAR(m.speed_rpm, 2000, 1);
  EXPECT_GT(m.parts, parts + 1);
}

TEST(PlantSimulatorTest, MissingDataDropsTicksAndSometimesOneField) {
  SimulatorOptions o = Quiet(20);
  o.missing_rate = 0.1;
  PlantSimulator sim(o);
  constexpr int kTicks = 1000;
  auto out = Simulate(sim, kTicks, 1.0);
  const double published = static_cast<double>(out.size()) / (20.0 * kTicks);
  EXPECT_NEAR(published, 0.9, 0.02);
  std::map<std::string, int> omitted;
  int partial = 0;
  for (const auto& m : out) {
    json::object p = Parse(m.payload);
    ASSERT_TRUE(p.contains("ts"));
    if (p.size() == 7) continue;
    ASSERT_EQ(p.size(), 6u) << m.payload;
    ++partial;
    for (const char* k :
         {"temperature", "vibration", "spindleSpeed", "power", "partsProduced", "status"}) {
      if (!p.contains(k)) ++omitted[k];
    }
  }
  EXPECT_NEAR(partial / static_cast<double>(out.size()), 0.1, 0.02);
  EXPECT_EQ(omitted.size(), 6u);  // every field is left out sometimes
}

TEST(PlantSimulatorTest, Commands) {
  PlantSimulator sim(Quiet(2));
  const MachineState& m = sim.machines()[1];
  auto ok = [&](std::string_view command, std::string_view payload) {
    auto r = sim.Apply("machine-2", command, payload);
    return r.ok() && *r == json::value(true);
  };
  auto code = [&](std::string_view command, std::string_view payload) {
    auto r = sim.Apply("machine-2", command, payload);
    return r.ok() ? std::string("OK") : r.status().code();
  };
  EXPECT_TRUE(ok("setSpeed", "1200"));
  EXPECT_EQ(m.setpoint_rpm, 1200);
  EXPECT_TRUE(ok("setSpeed", "0"));
  EXPECT_TRUE(ok("setSpeed", "6000"));
  EXPECT_TRUE(ok("setSpeed", "2500.5"));
  EXPECT_EQ(m.setpoint_rpm, 2500.5);
  EXPECT_TRUE(ok("setSpeed", R"({"rpm": 1800})"));
  EXPECT_EQ(m.setpoint_rpm, 1800);
  for (const char* bad : {"6000.1", "-1", "\"fast\"", "", "not json", "[1]", "{\"speed\":1}",
                          "null", "true"}) {
    EXPECT_EQ(code("setSpeed", bad), "PLANT_BAD_PAYLOAD") << bad;
  }
  EXPECT_EQ(m.setpoint_rpm, 1800);

  EXPECT_TRUE(ok("stop", ""));
  EXPECT_EQ(m.status(), MachineStatus::kIdle);
  Simulate(sim, 60, 1.0);
  EXPECT_EQ(m.speed_rpm, 0);
  EXPECT_EQ(Parse(sim.Tick(1.0, kT0)[1].payload).at("status"), "idle");
  EXPECT_TRUE(ok("start", "{}"));
  EXPECT_EQ(m.status(), MachineStatus::kRunning);
  Simulate(sim, 60, 1.0);
  EXPECT_NEAR(m.speed_rpm, 1800, 1);

  EXPECT_TRUE(ok("setMode", "\"setup\""));
  EXPECT_EQ(m.status(), MachineStatus::kIdle);
  Simulate(sim, 60, 1.0);
  EXPECT_NEAR(m.speed_rpm, sim.options().physics.setup_speed_rpm, 1);
  const std::int64_t parts = m.parts;
  Simulate(sim, 600, 1.0);
  EXPECT_EQ(m.parts, parts);  // setup makes no parts
  EXPECT_TRUE(ok("setMode", "\"stop\""));
  EXPECT_EQ(m.mode, MachineMode::kStop);
  EXPECT_TRUE(ok("setMode", "\"production\""));
  EXPECT_EQ(m.status(), MachineStatus::kRunning);
  for (const char* bad : {"\"fast\"", "production", "1", ""}) {
    EXPECT_EQ(code("setMode", bad), "PLANT_BAD_PAYLOAD") << bad;
  }
  EXPECT_EQ(code("explode", "{}"), "PLANT_UNKNOWN_COMMAND");
  EXPECT_EQ(ResponseStatus(sim.Apply("machine-2", "explode", "").status()), 400);
  auto unknown = sim.Apply("machine-9", "start", "");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), "PLANT_UNKNOWN_MACHINE");
  EXPECT_EQ(ResponseStatus(unknown.status()), 404);
  // The other machine was never touched.
  EXPECT_EQ(sim.machines()[0].setpoint_rpm, 1500);
}

TEST(PlantSimulatorTest, DesiredValuesAreAppliedOrRejected) {
  PlantSimulator sim(Quiet(2));
  const MachineState& m = sim.machines()[0];
  core::Status error;
  json::object ack = sim.ApplyDesired(
      "machine-1", R"({"correlationId":"abc","path":"/cycleTime","value":42.5})", &error);
  EXPECT_TRUE(error.ok());
  EXPECT_EQ(ToJsonText(ack),
            R"({"correlationId":"abc","status":"applied","path":"/cycleTime","value":42.5})");
  EXPECT_EQ(m.cycle_time_s, 42.5);

  ack = sim.ApplyDesired("machine-1",
                         R"({"correlationId":"t","path":"/motorTemperature/alarmThreshold",
                             "value":90})",
                         &error);
  EXPECT_EQ(ToJsonText(ack), R"({"correlationId":"t","status":"applied",)"
                             R"("path":"/motorTemperature/alarmThreshold","value":90})");
  EXPECT_EQ(m.alarm_threshold_c, 90);

  for (const char* status : {"idle", "maintenance", "running", "down"}) {
    ack = sim.ApplyDesired("machine-1", std::string(R"({"correlationId":"s","path":"/status",)") +
                                            R"("value":")" + status + "\"}");
    EXPECT_EQ(ack.at("status"), "applied") << status;
    EXPECT_EQ(StatusName(m.status()), status);
  }

  struct Case {
    const char* payload;
    const char* code;
  };
  const Case cases[] = {
      {R"({"correlationId":"a","path":"/cycleTime","value":0})", "PLANT_BAD_VALUE"},
      {R"({"correlationId":"a","path":"/cycleTime","value":-3})", "PLANT_BAD_VALUE"},
      {R"({"correlationId":"a","path":"/cycleTime","value":"42"})", "PLANT_BAD_VALUE"},
      {R"({"correlationId":"a","path":"/status","value":"broken"})", "PLANT_BAD_VALUE"},
      {R"({"correlationId":"a","path":"/status","value":1})", "PLANT_BAD_VALUE"},
      {R"({"correlationId":"a","path":"/motorTemperature/alarmThreshold","value":900})",
       "PLANT_BAD_VALUE"},
      {R"({"correlationId":"a","path":"/serialNumber","value":"x"})", "PLANT_UNKNOWN_PATH"},
      {R"({"correlationId":"a","path":"/cycleTime"})", "PLANT_BAD_DESIRED"},
      {R"({"path":"/cycleTime","value":3})", "PLANT_BAD_DESIRED"},
      {R"({"correlationId":"a","value":3})", "PLANT_BAD_DESIRED"},
      {R"([1,2])", "PLANT_BAD_DESIRED"},
      {R"(not json)", "PLANT_BAD_DESIRED"},
  };
  for (const Case& c : cases) {
    ack = sim.ApplyDesired("machine-1", c.payload, &error);
    EXPECT_EQ(error.code(), c.code) << c.payload;
    EXPECT_EQ(ack.at("status"), "rejected") << c.payload;
    EXPECT_EQ(ack.at("error").as_string().find(c.code), 0u) << ToJsonText(ack);
    EXPECT_FALSE(ack.contains("value"));
  }
  ack = sim.ApplyDesired("machine-1", R"({"correlationId":"x","path":"/cycleTime","value":0})");
  EXPECT_EQ(ack.at("correlationId"), "x");
  EXPECT_EQ(ack.at("path"), "/cycleTime");
  ack = sim.ApplyDesired("machine-1", R"({"correlationId":7,"path":"/cycleTime","value":3})");
  EXPECT_TRUE(ack.at("correlationId").is_null());
  ack = sim.ApplyDesired("machine-7", R"({"correlationId":"u","path":"/cycleTime","value":3})",
                         &error);
  EXPECT_EQ(error.code(), "PLANT_UNKNOWN_MACHINE");
  EXPECT_EQ(m.cycle_time_s, 42.5);  // nothing rejected changed anything
  EXPECT_EQ(m.alarm_threshold_c, 90);
}

TEST(PlantSimulatorTest, ReportedValuesWhenTheyChange) {
  PlantSimulator sim(Quiet(3));
  auto first = sim.TakeReported(kT0, false);
  ASSERT_EQ(first.size(), 3u);  // everything is new
  EXPECT_EQ(first[0].payload,
            R"({"ts":"2026-11-26T15:00:00.123Z","cycleTime":45.0,"status":"running",)"
            R"("motorTemperature":{"alarmThreshold":85.0}})");
  EXPECT_TRUE(sim.TakeReported(kT0, false).empty());
  EXPECT_EQ(sim.TakeReported(kT0, true).size(), 3u);

  (void)sim.ApplyDesired("machine-2", R"({"correlationId":"a","path":"/cycleTime","value":42.5})");
  auto changed = sim.TakeReported(kT0, false);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].machine, "machine-2");
  EXPECT_EQ(Parse(changed[0].payload).at("cycleTime").as_double(), 42.5);

  ASSERT_TRUE(sim.Apply("machine-3", "stop", "").ok());
  changed = sim.TakeReported(kT0, false);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(Parse(changed[0].payload).at("status"), "idle");
  ASSERT_TRUE(sim.Apply("machine-3", "setSpeed", "100").ok());  // not a reported value
  EXPECT_TRUE(sim.TakeReported(kT0, false).empty());
}

TEST(PlantSimulatorTest, JsonTextKeepsDoublesReadable) {
  EXPECT_EQ(ToJsonText(json::parse(R"({"a":42.5,"b":43.0,"c":7,"d":[true,null,"x\"y"],"e":1e30})")),
            R"({"a":42.5,"b":43.0,"c":7,"d":[true,null,"x\"y"],"e":1e+30})");
}

// ---------------------------------------------------------------------------------------------
// Against a real broker.

using sync::MqttClient;
using sync::MqttMessage;
using sync::testing::MosquittoBroker;

constexpr auto kWait = 20s;

class Inbox {
 public:
  void Add(const MqttMessage& m) {
    {
      std::lock_guard lock(mu_);
      messages_.push_back(m);
    }
    cv_.notify_all();
  }
  // Waits until some message satisfies `pred`; returns it.
  std::optional<MqttMessage> WaitFor(const std::function<bool(const MqttMessage&)>& pred) {
    std::unique_lock lock(mu_);
    std::optional<MqttMessage> found;
    cv_.wait_for(lock, kWait, [&] {
      for (const auto& m : messages_) {
        if (pred(m)) {
          found = m;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  bool WaitUntil(const std::function<bool(const std::vector<MqttMessage>&)>& pred) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return pred(messages_); });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<MqttMessage> messages_;
};

TEST(PlantTest, PublishesTelemetryObeysCommandsAndAcknowledgesDesiredValues) {
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());

  PlantOptions options;
  options.port = broker.port();
  options.line = "line-t";
  options.rate = 20;
  options.simulator = Quiet(3);
  Plant plant(options);
  ASSERT_TRUE(plant.Start().ok());
  ASSERT_TRUE(plant.WaitUntilSubscribed(kWait).ok());

  Inbox inbox;
  sync::MqttOptions client_options;
  client_options.port = broker.port();
  client_options.client_id = "plant-test-observer";
  client_options.persistent_session = false;
  sync::MqttCallbacks callbacks;
  callbacks.on_message = [&inbox](const MqttMessage& m) { inbox.Add(m); };
  MqttClient client(client_options, callbacks);
  ASSERT_TRUE(client.Subscribe("plant/line-t/+/telemetry", 1).ok());
  ASSERT_TRUE(client.Subscribe("plant/line-t/+/ack", 1).ok());
  ASSERT_TRUE(client.Subscribe("plant/line-t/+/reported", 1).ok());
  ASSERT_TRUE(client.Subscribe("replies/plant-test", 1).ok());
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.WaitUntilSubscribed(kWait).ok());

  // Telemetry from all three machines.
  ASSERT_TRUE(inbox.WaitUntil([](const std::vector<MqttMessage>& all) {
    std::set<std::string> machines;
    for (const auto& m : all) {
      if (m.topic.ends_with("/telemetry")) machines.insert(m.topic);
    }
    return machines.size() == 3;
  }));
  auto telemetry = inbox.WaitFor([](const MqttMessage& m) {
    return m.topic == "plant/line-t/machine-2/telemetry";
  });
  ASSERT_TRUE(telemetry);
  EXPECT_EQ(telemetry->qos, 1);
  json::object t = Parse(telemetry->payload);
  EXPECT_EQ(t.at("status"), "running");
  EXPECT_TRUE(t.contains("spindleSpeed"));

  // setSpeed with a response topic and correlation data.
  sync::MqttProperties request;
  request.response_topic = "replies/plant-test";
  request.correlation_data = std::string("\x01\x00req-1", 7);
  ASSERT_TRUE(
      client.Publish("plant/line-t/machine-2/commands/setSpeed", "2400", 1, false, request).ok());
  auto response = inbox.WaitFor([&](const MqttMessage& m) {
    return m.topic == "replies/plant-test" && m.properties.correlation_data == request.correlation_data;
  });
  ASSERT_TRUE(response);
  EXPECT_EQ(response->payload, "true");
  EXPECT_EQ(response->properties.user_properties,
            (std::vector<std::pair<std::string, std::string>>{{"status", "200"}}));
  // The spindle gets there.
  ASSERT_TRUE(inbox.WaitFor([](const MqttMessage& m) {
    if (m.topic != "plant/line-t/machine-2/telemetry") return false;
    json::object o = Parse(m.payload);
    return o.contains("spindleSpeed") && o.at("spindleSpeed").as_double() > 2000;
  }));

  // A bad payload: 400 and an error.
  request.correlation_data = "req-2";
  ASSERT_TRUE(
      client.Publish("plant/line-t/machine-1/commands/setSpeed", "\"x\"", 1, false, request).ok());
  response = inbox.WaitFor([](const MqttMessage& m) {
    return m.properties.correlation_data == std::optional<std::string>("req-2");
  });
  ASSERT_TRUE(response);
  EXPECT_EQ(response->properties.user_properties,
            (std::vector<std::pair<std::string, std::string>>{{"status", "400"}}));
  EXPECT_EQ(Parse(response->payload).at("error").as_string().find("PLANT_BAD_PAYLOAD"), 0u);

  // Without a response topic: executed, nothing answered.
  ASSERT_TRUE(client.Publish("plant/line-t/machine-3/commands/stop", "", 1).ok());
  ASSERT_TRUE(inbox.WaitFor([](const MqttMessage& m) {
    return m.topic == "plant/line-t/machine-3/reported" &&
           Parse(m.payload).at("status") == "idle";
  }));

  // A desired value and its ack, then the reported value.
  ASSERT_TRUE(client
                  .Publish("plant/line-t/machine-1/desired",
                           R"({"correlationId":"abc","path":"/cycleTime","value":42.5})", 1)
                  .ok());
  auto ack = inbox.WaitFor([](const MqttMessage& m) {
    return m.topic == "plant/line-t/machine-1/ack";
  });
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->payload,
            R"({"correlationId":"abc","status":"applied","path":"/cycleTime","value":42.5})");
  ASSERT_TRUE(inbox.WaitFor([](const MqttMessage& m) {
    return m.topic == "plant/line-t/machine-1/reported" &&
           Parse(m.payload).at("cycleTime").as_double() == 42.5;
  }));
  ASSERT_TRUE(client.Publish("plant/line-t/machine-1/desired",
                             R"({"correlationId":"def","path":"/cycleTime","value":-1})", 1)
                  .ok());
  ack = inbox.WaitFor([](const MqttMessage& m) {
    return m.topic == "plant/line-t/machine-1/ack" && m.payload.find("def") != std::string::npos;
  });
  ASSERT_TRUE(ack);
  EXPECT_EQ(Parse(ack->payload).at("status"), "rejected");

  EXPECT_TRUE(plant.Stop(kWait).ok());
  PlantStats stats = plant.stats();
  EXPECT_EQ(stats.commands, 2u);
  EXPECT_EQ(stats.commands_rejected, 1u);
  EXPECT_EQ(stats.desired, 1u);
  EXPECT_EQ(stats.desired_rejected, 1u);
  EXPECT_EQ(stats.publish_errors, 0u);
  EXPECT_GT(stats.telemetry, 3u);
  EXPECT_EQ(stats.mqtt.queued, 0u);
  EXPECT_EQ(stats.mqtt.publish_acks, stats.telemetry + stats.reported + 4);  // 2 responses, 2 acks
  client.Stop();
}

TEST(PlantTest, StartRejectsBadOptions) {
  PlantOptions options;
  options.line = "a/b";
  EXPECT_EQ(Plant(options).Start().code(), "PLANT_BAD_OPTIONS");
  options.line = "line-1";
  options.rate = 0;
  EXPECT_EQ(Plant(options).Start().code(), "PLANT_BAD_OPTIONS");
  options.rate = 1;
  options.simulator.machines = 0;
  EXPECT_EQ(Plant(options).Start().code(), "PLANT_BAD_OPTIONS");
}

}  // namespace
}  // namespace doppel::plant
