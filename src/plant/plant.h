// doppel::plant — the virtual plant: a simulated production line for demos and load tests.
//
// What it does
//   Simulates N machines of one production line and speaks the plant side of doppel's MQTT
//   contract: it publishes telemetry, obeys commands (MQTT 5 request/response) and acknowledges
//   desired values. `doppel plant` (src/cli/plant_command.cc) runs it. Two layers:
//   * PlantSimulator: the machines and their physics, no I/O and no clock. Tick(dt, now) advances
//     every machine by dt seconds and returns the telemetry payloads; Apply (commands) and
//     ApplyDesired (desired values) change them. Deterministic: the same options (seed included)
//     and the same sequence of calls give the same payloads, byte for byte, on every platform
//     (mt19937_64 and a hand-written Box-Muller, never std:: distributions).
//   * Plant: one MqttClient plus a timer thread that ticks the simulator `rate` times a second
//     and publishes; the client's network thread executes commands and desired values.
//
// How to use it
//   PlantOptions options;  options.port = 1883;  options.line = "line-1";  options.rate = 1;
//   options.simulator.machines = 4;
//   Plant plant(options);
//   if (core::Status s = plant.Start(); !s.ok()) ...     // connects in the background
//   ...
//   core::Status flushed = plant.Stop(std::chrono::seconds(5));   // flushes QoS 1 publishes
//
// MQTT contract (all QoS 1; <line> and <machine> are single topic levels)
//   client id  doppel-plant-<line>, MQTT 5, clean start (commands sent while the plant is not
//              running are not executed later). Two plants with the same line kick each other out.
//   telemetry  plant/<line>/<machine>/telemetry, `rate` messages per second per machine:
//              {"ts":"2026-11-26T15:00:00.123Z","temperature":71.2,"vibration":2.31,
//               "spindleSpeed":1500.0,"power":11.7,"partsProduced":1234,"status":"running"}
//              temperature °C (motor), vibration mm/s RMS, spindleSpeed rpm, power kW,
//              partsProduced a running counter (integer), status running|idle|down|maintenance,
//              ts RFC 3339 UTC with milliseconds: the tick's nominal time (start + k / rate).
//   commands   subscribed: plant/<line>/+/commands/+ . A request on
//              plant/<line>/<machine>/commands/<name> with an MQTT 5 response topic gets one
//              response there (QoS 1, same correlation data, content type application/json):
//              success: user property status=200, payload the JSON result (`true`);
//              failure: user property status=400 (404 unknown machine, 409 machine down), payload
//              {"error":"CODE: message"}. A request without a response topic is executed silently.
//                setSpeed  payload a number (rpm, 0..6000; {"rpm": n} is accepted too): the
//                          spindle setpoint; takes effect whenever the machine is in production
//                stop      payload ignored: mode stop (status idle, spindle to 0)
//                start     payload ignored: mode production (status running). 409 while down.
//                setMode   payload "production" (= start, 409 while down), "setup" (status idle,
//                          spindle at the setup speed, no parts) or "stop" (= stop)
//   desired    subscribed: plant/<line>/+/desired, payload
//              {"correlationId":"abc","path":"/cycleTime","value":42.5}. Answered on
//              plant/<line>/<machine>/ack with
//              {"correlationId":"abc","status":"applied","path":"/cycleTime","value":42.5} or
//              {"correlationId":"abc","status":"rejected","path":"/cycleTime","error":"CODE: ..."}
//              (correlationId and path echoed as given, null when missing or not strings).
//                /cycleTime                        seconds per part at nominal speed, > 0, <= 86400
//                /status                           running (= start; rejected while down) | idle
//                                                  (= stop) | maintenance (spindle to 0, wear reset,
//                                                  clears a fault) | down (injects a fault)
//                /motorTemperature/alarmThreshold  °C, -50..500; stored and reported only
//   reported   plant/<line>/<machine>/reported when a reported value changes (a fault changes
//              status) and every 30 s for every machine (and once at start):
//              {"ts":"...","cycleTime":42.5,"status":"running","motorTemperature":{"alarmThreshold":85.0}}
//
// Physics (per machine, PhysicsParams; time is simulated time, dt per tick)
//   * Spindle: first-order lag towards the effective setpoint (the setSpeed value in production,
//     setup_speed in setup, 0 otherwise), time constant speed_tau_s. Below 0.5 rpm with a 0
//     setpoint it reads exactly 0.
//   * Power: idle_power_kw + kw_per_rpm · speed.
//   * Temperature: first-order lag towards ambient_c + c_per_kw · power + wear_c · wear, time
//     constant thermal_tau_s. Starts at its equilibrium.
//   * Wear: starts uniform in [0, initial_wear_max], grows by wear_per_hour per hour of spindle
//     turning (scaled by speed / nominal_speed); entering maintenance resets it to 0.
//     Vibration: vibration_floor + (speed / nominal_speed) · (vibration_nominal + vibration_wear ·
//     wear).
//   * Parts: while running, (speed / nominal_speed) / cycleTime parts per second, accumulated.
//   * Faults: a running machine goes down with probability fault_rate per tick: the spindle
//     setpoint becomes 0 for a repair time uniform in [repair_min_s, repair_max_s], then it
//     resumes its mode (running, or idle if stopped meanwhile). The rate is per tick, so at a
//     higher publishing rate faults come more often per second.
//   * Noise: Gaussian on every published signal (the *_noise sigmas); the state itself is
//     noise-free. Readings are rounded: temperature and power 0.01, vibration 0.001, speed 0.1.
//   * Missing data: with probability missing_rate a machine's tick publishes nothing; otherwise,
//     with the same probability, one field (not ts) is left out of the payload.
//
// Threads: PlantSimulator is not thread-safe (Plant serializes it with a mutex). Plant's public
// methods may be called from any thread but not concurrently with Stop or the destructor.
//
// Error codes (stable)
//   PLANT_BAD_OPTIONS      Validate / Plant::Start: an option is out of range (message says which)
//   PLANT_UNKNOWN_MACHINE  a command or desired value for a machine this plant does not simulate
//   PLANT_UNKNOWN_COMMAND  a command name other than setSpeed, stop, start, setMode
//   PLANT_BAD_PAYLOAD      a command payload that is not what the command takes
//   PLANT_MACHINE_DOWN     start / setMode production / desired status running while down
//   PLANT_BAD_DESIRED      a desired payload that is not {"correlationId", "path", "value"}
//   PLANT_UNKNOWN_PATH     a desired path other than the three writable ones
//   PLANT_BAD_VALUE        a desired value of the wrong type or out of range
//   Plant::Start and Stop also pass on the MqttClient's MQTT_* codes (sync/mqtt_client.h).
#pragma once

#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "sync/mqtt_client.h"

namespace doppel::plant {

using Clock = std::chrono::system_clock;

enum class MachineStatus { kRunning, kIdle, kDown, kMaintenance };
// What the operator asked for; the status follows from it and from a fault.
enum class MachineMode { kProduction, kSetup, kStop, kMaintenance };

std::string_view StatusName(MachineStatus status);  // "running", "idle", "down", "maintenance"
std::optional<MachineStatus> ParseStatus(std::string_view name);

struct PhysicsParams {
  double nominal_speed_rpm = 1500.0;  // initial setpoint; the speed cycleTime refers to
  double setup_speed_rpm = 300.0;
  double max_speed_rpm = 6000.0;
  double speed_tau_s = 2.0;
  double idle_power_kw = 1.2;
  double kw_per_rpm = 0.0068;
  double ambient_c = 22.0;
  double c_per_kw = 4.4;
  double wear_c = 15.0;
  double thermal_tau_s = 240.0;
  double initial_wear_max = 0.2;
  double wear_per_hour = 0.05;
  double vibration_floor = 0.2;
  double vibration_nominal = 1.6;
  double vibration_wear = 5.0;
  double initial_cycle_time_s = 45.0;  // machine i (0-based) starts at this + 0.5 · (i % 7)
  double alarm_threshold_c = 85.0;
  double repair_min_s = 30.0;
  double repair_max_s = 300.0;
  double temperature_noise = 0.15;
  double vibration_noise = 0.08;
  double speed_noise = 3.0;
  double power_noise = 0.12;
};

struct SimulatorOptions {
  int machines = 4;                    // 1..100000
  std::string id_prefix = "machine-";  // machine ids: <prefix>1 .. <prefix>N
  std::uint64_t seed = 42;
  double fault_rate = 0.001;   // per running machine per tick, 0..1
  double missing_rate = 0.01;  // 0..1
  PhysicsParams physics;
};

// The state of one machine (noise-free).
struct MachineState {
  std::string id;
  MachineMode mode = MachineMode::kProduction;
  double fault_remaining_s = 0;  // > 0: down
  double setpoint_rpm = 0;       // the setSpeed value (used in production)
  double speed_rpm = 0;
  double power_kw = 0;
  double temperature_c = 0;
  double wear = 0;
  double vibration_mm_s = 0;
  std::int64_t parts = 0;
  double part_fraction = 0;  // of the part in progress
  double cycle_time_s = 0;
  double alarm_threshold_c = 0;
  std::uint64_t faults = 0;  // fault onsets so far

  MachineStatus status() const;
};

// One payload for one machine.
struct MachineMessage {
  std::string machine;
  std::string payload;
};

// The parts of plant/<line>/<machine>/<rest> (rest e.g. "telemetry", "commands/setSpeed").
std::string MachineTopic(std::string_view line, std::string_view machine, std::string_view rest);

// "2026-11-26T15:00:00.123Z": UTC, milliseconds (truncated).
std::string FormatTimestampMs(Clock::time_point t);

// Compact JSON text; doubles as the shortest text that reads back the same, with a '.' or an
// exponent ("42.5", "43.0"; Boost.JSON would write "4.25E1").
std::string ToJsonText(const boost::json::value& v);

// The user property `status` for a command's outcome: 200 for OK, 404 PLANT_UNKNOWN_MACHINE,
// 409 PLANT_MACHINE_DOWN, 400 for everything else.
int ResponseStatus(const core::Status& status);

class PlantSimulator {
 public:
  // REQUIRES: Validate(options).ok().
  explicit PlantSimulator(SimulatorOptions options);

  // Error: PLANT_BAD_OPTIONS.
  static core::Status Validate(const SimulatorOptions& options);

  // Advances every machine by dt seconds (> 0) and returns the telemetry of those that publish
  // this tick, in machine order, with ts = now.
  std::vector<MachineMessage> Tick(double dt, Clock::time_point now);

  // Executes a command; returns its JSON result (true). Errors: PLANT_UNKNOWN_MACHINE,
  // PLANT_UNKNOWN_COMMAND, PLANT_BAD_PAYLOAD, PLANT_MACHINE_DOWN.
  core::Result<boost::json::value> Apply(std::string_view machine, std::string_view command,
                                         std::string_view payload);

  // Applies a desired value; returns the ack (applied or rejected, see the top comment).
  // `*error`, if given, receives why it was rejected (OK when applied).
  boost::json::object ApplyDesired(std::string_view machine, std::string_view payload,
                                   core::Status* error = nullptr);

  // The reported values (ts = now) of the machines whose reported values changed since the last
  // call, or of every machine when `all`.
  std::vector<MachineMessage> TakeReported(Clock::time_point now, bool all);

  const std::vector<MachineState>& machines() const { return machines_; }
  const MachineState* Find(std::string_view id) const;
  const SimulatorOptions& options() const { return options_; }

 private:
  // Uniform in [0, 1) and standard normal numbers from mt19937_64.
  class Random {
   public:
    explicit Random(std::uint64_t seed) : rng_(seed) {}
    double Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }
    double Normal();

   private:
    std::mt19937_64 rng_;
  };

  struct Reported {
    MachineStatus status = MachineStatus::kRunning;
    double cycle_time_s = 0;
    double alarm_threshold_c = 0;
    bool operator==(const Reported&) const = default;
  };

  MachineState* FindMutable(std::string_view id);
  core::Status SetMode(MachineState& m, MachineMode mode);
  void StartFault(std::size_t index);
  void Step(std::size_t index, double dt);
  double EffectiveSetpoint(const MachineState& m) const;
  double EquilibriumTemperature(const MachineState& m) const;
  std::optional<std::string> Telemetry(std::size_t index, Clock::time_point now);
  core::Status ApplyDesiredValue(MachineState& m, std::size_t index, std::string_view path,
                                 const boost::json::value& value);

  SimulatorOptions options_;
  std::vector<MachineState> machines_;
  std::vector<Random> random_;
  std::unordered_map<std::string, std::size_t> index_;  // machine id -> position
  std::vector<std::optional<Reported>> last_reported_;
};

struct PlantOptions {
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string line = "line-1";  // one topic level: no '/', '+', '#'
  double rate = 1.0;            // ticks (messages per machine) per second, > 0 and <= 100000
  SimulatorOptions simulator;
  std::chrono::milliseconds reported_interval{30000};
  // MQTT knobs (client id, protocol and session are fixed by the contract).
  std::chrono::milliseconds reconnect_max{10000};
  int max_inflight = 100;
  std::size_t max_queued = 60000;
};

// Monotonic counters since Start.
struct PlantStats {
  std::uint64_t ticks = 0;          // simulator ticks run
  std::uint64_t ticks_skipped = 0;  // ticks dropped because the plant fell > 1 s behind
  std::uint64_t telemetry = 0;      // telemetry messages published
  std::uint64_t reported = 0;       // reported messages published
  std::uint64_t commands = 0;       // commands executed
  std::uint64_t commands_rejected = 0;
  std::uint64_t desired = 0;  // desired values applied
  std::uint64_t desired_rejected = 0;
  std::uint64_t ignored = 0;         // messages on topics that are neither commands nor desired
  std::uint64_t publish_errors = 0;  // Publish refused (e.g. MQTT_QUEUE_FULL): message dropped
  bool connected = false;
  core::Status connection_error;  // why the last connection attempt failed or the connection ended
  sync::MqttCounters mqtt;
};

// "telemetry 1234 | reported 8 | commands 3 (1 rejected) | desired 2 (0 rejected) | queued 0
//  | publish errors 0 | skipped ticks 0" (commands and desired: all handled, then the rejected)
std::string FormatStats(const PlantStats& stats);

class Plant {
 public:
  explicit Plant(PlantOptions options);
  ~Plant();  // Stop with a 5 s flush
  Plant(const Plant&) = delete;
  Plant& operator=(const Plant&) = delete;

  // Validates the options, subscribes, starts the client (connecting in the background) and the
  // timer thread. Errors: PLANT_BAD_OPTIONS, MQTT_BAD_OPTIONS, MQTT_ALREADY_STARTED (a Plant runs
  // once).
  core::Status Start();

  // Waits until connected and both subscriptions are confirmed. Errors: those of
  // MqttClient::WaitUntilSubscribed.
  core::Status WaitUntilSubscribed(std::chrono::milliseconds timeout);

  // Stops ticking, waits up to flush_timeout for every QoS 1 publish to be acknowledged, then
  // disconnects. MQTT_TIMEOUT if some were not (they are lost). Idempotent.
  core::Status Stop(std::chrono::milliseconds flush_timeout);

  PlantStats stats() const;

 private:
  void TimerLoop();
  void OnMessage(const sync::MqttMessage& message);
  void PublishAll(const std::vector<MachineMessage>& messages, std::string_view kind,
                  std::atomic<std::uint64_t>* counter);
  void PublishReported(bool all);

  PlantOptions options_;
  std::string topic_prefix_;  // "plant/<line>/"

  mutable std::mutex sim_mu_;
  std::unique_ptr<PlantSimulator> sim_;

  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  std::atomic<bool> stopping_{false};  // set under timer_mu_
  std::thread timer_;
  bool stopped_ = false;

  mutable std::mutex error_mu_;
  core::Status connection_error_;

  std::atomic<std::uint64_t> ticks_{0}, ticks_skipped_{0}, telemetry_{0}, reported_{0},
      commands_{0}, commands_rejected_{0}, desired_{0}, desired_rejected_{0}, ignored_{0},
      publish_errors_{0};

  // Last: destroyed first, so its callbacks end before the members they use go away.
  std::unique_ptr<sync::MqttClient> client_;
};

}  // namespace doppel::plant
