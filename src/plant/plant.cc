#include "plant/plant.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <iterator>
#include <numbers>

#include "core/json.h"
#include "core/time.h"

namespace doppel::plant {

namespace json = boost::json;

namespace {

constexpr int kFields = 6;  // temperature, vibration, spindleSpeed, power, partsProduced, status

std::uint64_t SplitMix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// A JSON number for a double: the shortest text that reads back the same, always with a '.' or
// an exponent so that it reads back as a double ("43.0", not "43"); null if not finite.
void AppendDouble(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  const std::size_t start = out.size();
  fmt::format_to(std::back_inserter(out), "{}", v);
  if (out.find_first_of(".eEn", start) == std::string::npos) out += ".0";
}

void AppendJson(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_: AppendDouble(out, v.get_double()); return;
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(json::string_view(key));
        out += ':';
        AppendJson(out, value);
      }
      out += '}';
      return;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& element : v.get_array()) {
        if (!first) out += ',';
        first = false;
        AppendJson(out, element);
      }
      out += ']';
      return;
    }
    default: out += json::serialize(v); return;
  }
}

bool IsTopicLevel(std::string_view s) { return s.find_first_of("/+#") == std::string_view::npos; }

core::Status BadOptions(std::string message) {
  return {"PLANT_BAD_OPTIONS", std::move(message)};
}

// A JSON number as a finite double, or nullopt.
std::optional<double> NumberOf(const json::value& v) {
  if (!v.is_number()) return std::nullopt;
  const double d = v.to_number<double>();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

}  // namespace

std::string ToJsonText(const json::value& v) {
  std::string out;
  AppendJson(out, v);
  return out;
}

std::string_view StatusName(MachineStatus status) {
  switch (status) {
    case MachineStatus::kRunning: return "running";
    case MachineStatus::kIdle: return "idle";
    case MachineStatus::kDown: return "down";
    case MachineStatus::kMaintenance: return "maintenance";
  }
  return "idle";
}

std::optional<MachineStatus> ParseStatus(std::string_view name) {
  for (MachineStatus s : {MachineStatus::kRunning, MachineStatus::kIdle, MachineStatus::kDown,
                          MachineStatus::kMaintenance}) {
    if (StatusName(s) == name) return s;
  }
  return std::nullopt;
}

MachineStatus MachineState::status() const {
  if (fault_remaining_s > 0) return MachineStatus::kDown;
  switch (mode) {
    case MachineMode::kProduction: return MachineStatus::kRunning;
    case MachineMode::kMaintenance: return MachineStatus::kMaintenance;
    case MachineMode::kSetup:
    case MachineMode::kStop: return MachineStatus::kIdle;
  }
  return MachineStatus::kIdle;
}

std::string MachineTopic(std::string_view line, std::string_view machine, std::string_view rest) {
  std::string topic;
  topic.reserve(8 + line.size() + machine.size() + rest.size());
  topic += "plant/";
  topic += line;
  topic += '/';
  topic += machine;
  topic += '/';
  topic += rest;
  return topic;
}

std::string FormatTimestampMs(Clock::time_point t) {
  // "....SS.123000Z" -> "....SS.123Z"
  std::string s = core::FormatRfc3339(std::chrono::floor<std::chrono::milliseconds>(t));
  s.erase(s.size() - 4, 3);
  return s;
}

int ResponseStatus(const core::Status& status) {
  if (status.ok()) return 200;
  if (status.code() == "PLANT_UNKNOWN_MACHINE") return 404;
  if (status.code() == "PLANT_MACHINE_DOWN") return 409;
  return 400;
}

// ---------------------------------------------------------------------------------------------
// PlantSimulator

double PlantSimulator::Random::Normal() {
  const double u1 = 1.0 - Uniform();  // (0, 1]
  const double u2 = Uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

core::Status PlantSimulator::Validate(const SimulatorOptions& o) {
  if (o.machines < 1 || o.machines > 100000) return BadOptions("machines must be 1..100000");
  if (!IsTopicLevel(o.id_prefix)) {
    return BadOptions("the machine id prefix must not contain '/', '+' or '#'");
  }
  if (core::Status s = sync::ValidateTopicName("x" + o.id_prefix); !s.ok()) {
    return BadOptions("the machine id prefix is not usable in a topic: " + s.message());
  }
  if (!(o.fault_rate >= 0 && o.fault_rate <= 1)) return BadOptions("fault rate must be 0..1");
  if (!(o.missing_rate >= 0 && o.missing_rate <= 1)) return BadOptions("missing rate must be 0..1");
  const PhysicsParams& p = o.physics;
  if (!(p.nominal_speed_rpm > 0) || !(p.max_speed_rpm > 0) || !(p.speed_tau_s > 0) ||
      !(p.thermal_tau_s > 0) || !(p.initial_cycle_time_s > 0) || !(p.repair_min_s > 0) ||
      !(p.repair_max_s >= p.repair_min_s)) {
    return BadOptions("physics parameters out of range (speeds, time constants, cycle and repair "
                      "times must be > 0, repair_max_s >= repair_min_s)");
  }
  return {};
}

PlantSimulator::PlantSimulator(SimulatorOptions options) : options_(std::move(options)) {
  const PhysicsParams& p = options_.physics;
  const auto n = static_cast<std::size_t>(options_.machines);
  machines_.reserve(n);
  random_.reserve(n);
  last_reported_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    // One stream per machine, so machine i behaves the same whatever the number of machines.
    random_.emplace_back(SplitMix64(options_.seed ^ SplitMix64(i + 1)));
    Random& r = random_.back();
    MachineState m;
    m.id = options_.id_prefix + std::to_string(i + 1);
    m.mode = MachineMode::kProduction;
    m.setpoint_rpm = p.nominal_speed_rpm;
    m.speed_rpm = p.nominal_speed_rpm;
    m.wear = r.Uniform() * p.initial_wear_max;
    m.parts = static_cast<std::int64_t>(r.Uniform() * 5000);
    m.part_fraction = r.Uniform();
    m.cycle_time_s = p.initial_cycle_time_s + 0.5 * static_cast<double>(i % 7);
    m.alarm_threshold_c = p.alarm_threshold_c;
    m.power_kw = p.idle_power_kw + p.kw_per_rpm * m.speed_rpm;
    const double ratio = m.speed_rpm / p.nominal_speed_rpm;
    m.vibration_mm_s = p.vibration_floor + ratio * (p.vibration_nominal + p.vibration_wear * m.wear);
    m.temperature_c = EquilibriumTemperature(m);
    index_.emplace(m.id, i);
    machines_.push_back(std::move(m));
  }
}

const MachineState* PlantSimulator::Find(std::string_view id) const {
  auto it = index_.find(std::string(id));
  return it == index_.end() ? nullptr : &machines_[it->second];
}

MachineState* PlantSimulator::FindMutable(std::string_view id) {
  return const_cast<MachineState*>(Find(id));
}

double PlantSimulator::EffectiveSetpoint(const MachineState& m) const {
  if (m.fault_remaining_s > 0) return 0;
  switch (m.mode) {
    case MachineMode::kProduction: return m.setpoint_rpm;
    case MachineMode::kSetup: return options_.physics.setup_speed_rpm;
    case MachineMode::kStop:
    case MachineMode::kMaintenance: return 0;
  }
  return 0;
}

double PlantSimulator::EquilibriumTemperature(const MachineState& m) const {
  const PhysicsParams& p = options_.physics;
  return p.ambient_c + p.c_per_kw * m.power_kw + p.wear_c * m.wear;
}

void PlantSimulator::StartFault(std::size_t index) {
  const PhysicsParams& p = options_.physics;
  MachineState& m = machines_[index];
  m.fault_remaining_s = p.repair_min_s + random_[index].Uniform() * (p.repair_max_s - p.repair_min_s);
  ++m.faults;
}

void PlantSimulator::Step(std::size_t index, double dt) {
  const PhysicsParams& p = options_.physics;
  MachineState& m = machines_[index];
  Random& r = random_[index];
  if (m.fault_remaining_s > 0) {
    m.fault_remaining_s = std::max(0.0, m.fault_remaining_s - dt);
  } else if (m.status() == MachineStatus::kRunning && options_.fault_rate > 0 &&
             r.Uniform() < options_.fault_rate) {
    StartFault(index);
  }
  const double target = EffectiveSetpoint(m);
  m.speed_rpm += (target - m.speed_rpm) * (1.0 - std::exp(-dt / p.speed_tau_s));
  if (target == 0 && m.speed_rpm < 0.5) m.speed_rpm = 0;
  const double ratio = m.speed_rpm / p.nominal_speed_rpm;
  m.power_kw = p.idle_power_kw + p.kw_per_rpm * m.speed_rpm;
  if (m.mode != MachineMode::kMaintenance) m.wear += p.wear_per_hour * ratio * dt / 3600.0;
  m.vibration_mm_s = p.vibration_floor + ratio * (p.vibration_nominal + p.vibration_wear * m.wear);
  m.temperature_c += (EquilibriumTemperature(m) - m.temperature_c) *
                     (1.0 - std::exp(-dt / p.thermal_tau_s));
  if (m.status() == MachineStatus::kRunning) {
    m.part_fraction += dt * ratio / m.cycle_time_s;
    const double whole = std::floor(m.part_fraction);
    m.parts += static_cast<std::int64_t>(whole);
    m.part_fraction -= whole;
  }
}

std::optional<std::string> PlantSimulator::Telemetry(std::size_t index, Clock::time_point now) {
  const PhysicsParams& p = options_.physics;
  const MachineState& m = machines_[index];
  Random& r = random_[index];
  const double missing = options_.missing_rate;
  if (missing > 0 && r.Uniform() < missing) return std::nullopt;
  int omit = -1;
  if (missing > 0 && r.Uniform() < missing) {
    omit = std::min(kFields - 1, static_cast<int>(r.Uniform() * kFields));
  }
  const double temperature = m.temperature_c + p.temperature_noise * r.Normal();
  const double vibration = std::max(0.0, m.vibration_mm_s + p.vibration_noise * r.Normal());
  const double speed_noise = p.speed_noise * r.Normal();
  const double speed = m.speed_rpm == 0 ? 0.0 : std::max(0.0, m.speed_rpm + speed_noise);
  const double power = std::max(0.0, m.power_kw + p.power_noise * r.Normal());

  std::string out;
  out.reserve(160);
  auto it = std::back_inserter(out);
  out += R"({"ts":")";
  out += FormatTimestampMs(now);
  out += '"';
  if (omit != 0) fmt::format_to(it, R"(,"temperature":{:.2f})", temperature);
  if (omit != 1) fmt::format_to(it, R"(,"vibration":{:.3f})", vibration);
  if (omit != 2) fmt::format_to(it, R"(,"spindleSpeed":{:.1f})", speed);
  if (omit != 3) fmt::format_to(it, R"(,"power":{:.2f})", power);
  if (omit != 4) fmt::format_to(it, R"(,"partsProduced":{})", m.parts);
  if (omit != 5) fmt::format_to(it, R"(,"status":"{}")", StatusName(m.status()));
  out += '}';
  return out;
}

std::vector<MachineMessage> PlantSimulator::Tick(double dt, Clock::time_point now) {
  std::vector<MachineMessage> out;
  out.reserve(machines_.size());
  for (std::size_t i = 0; i < machines_.size(); ++i) {
    Step(i, dt);
    if (auto payload = Telemetry(i, now)) out.push_back({machines_[i].id, std::move(*payload)});
  }
  return out;
}

core::Status PlantSimulator::SetMode(MachineState& m, MachineMode mode) {
  if (mode == MachineMode::kProduction && m.fault_remaining_s > 0) {
    return {"PLANT_MACHINE_DOWN",
            fmt::format("{} is down (fault, {:.0f} s of repair left); it cannot start", m.id,
                        std::ceil(m.fault_remaining_s))};
  }
  if (mode == MachineMode::kMaintenance) {
    m.wear = 0;
    m.fault_remaining_s = 0;
  }
  m.mode = mode;
  return {};
}

core::Result<json::value> PlantSimulator::Apply(std::string_view machine,
                                                std::string_view command,
                                                std::string_view payload) {
  MachineState* m = FindMutable(machine);
  if (m == nullptr) {
    return core::Status("PLANT_UNKNOWN_MACHINE",
                        fmt::format("no machine '{}' on this line", machine));
  }
  auto parse = [&]() -> core::Result<json::value> {
    auto parsed = core::ParseJson(payload, core::JsonLimits{1u << 16, 8});
    if (!parsed) {
      return core::Status("PLANT_BAD_PAYLOAD",
                          fmt::format("{} needs a JSON payload: {}", command,
                                      parsed.status().message()));
    }
    return parsed;
  };
  if (command == "setSpeed") {
    auto parsed = parse();
    if (!parsed) return parsed.status();
    const json::value* v = &*parsed;
    if (v->is_object() && v->get_object().size() == 1 && v->get_object().contains("rpm")) {
      v = &v->get_object().at("rpm");
    }
    auto rpm = NumberOf(*v);
    const double max = options_.physics.max_speed_rpm;
    if (!rpm || *rpm < 0 || *rpm > max) {
      return core::Status("PLANT_BAD_PAYLOAD",
                          fmt::format("setSpeed needs a number of rpm in 0..{}, got {}", max,
                                      core::Abbreviate(*parsed)));
    }
    m->setpoint_rpm = *rpm;
    return json::value(true);
  }
  if (command == "stop" || command == "start") {
    core::Status s =
        SetMode(*m, command == "start" ? MachineMode::kProduction : MachineMode::kStop);
    if (!s.ok()) return s;
    return json::value(true);
  }
  if (command == "setMode") {
    auto parsed = parse();
    if (!parsed) return parsed.status();
    std::optional<MachineMode> mode;
    if (parsed->is_string()) {
      const auto& s = parsed->get_string();
      if (s == "production") mode = MachineMode::kProduction;
      if (s == "setup") mode = MachineMode::kSetup;
      if (s == "stop") mode = MachineMode::kStop;
    }
    if (!mode) {
      return core::Status("PLANT_BAD_PAYLOAD",
                          fmt::format("setMode needs \"production\", \"setup\" or \"stop\", got {}",
                                      core::Abbreviate(*parsed)));
    }
    core::Status s = SetMode(*m, *mode);
    if (!s.ok()) return s;
    return json::value(true);
  }
  return core::Status("PLANT_UNKNOWN_COMMAND",
                      fmt::format("unknown command '{}' (known: setSpeed, stop, start, setMode)",
                                  command));
}

core::Status PlantSimulator::ApplyDesiredValue(MachineState& m, std::size_t index,
                                               std::string_view path, const json::value& value) {
  if (path == "/cycleTime") {
    auto v = NumberOf(value);
    if (!v || *v <= 0 || *v > 86400) {
      return {"PLANT_BAD_VALUE", "/cycleTime must be a number of seconds > 0 and <= 86400"};
    }
    m.cycle_time_s = *v;
    return {};
  }
  if (path == "/motorTemperature/alarmThreshold") {
    auto v = NumberOf(value);
    if (!v || *v < -50 || *v > 500) {
      return {"PLANT_BAD_VALUE",
              "/motorTemperature/alarmThreshold must be a number of °C in -50..500"};
    }
    m.alarm_threshold_c = *v;
    return {};
  }
  if (path == "/status") {
    std::optional<MachineStatus> status;
    if (value.is_string()) status = ParseStatus(value.get_string());
    if (!status) {
      return {"PLANT_BAD_VALUE", "/status must be \"running\", \"idle\", \"down\" or \"maintenance\""};
    }
    switch (*status) {
      case MachineStatus::kRunning: return SetMode(m, MachineMode::kProduction);
      case MachineStatus::kIdle: return SetMode(m, MachineMode::kStop);
      case MachineStatus::kMaintenance: return SetMode(m, MachineMode::kMaintenance);
      case MachineStatus::kDown:
        if (m.fault_remaining_s <= 0) StartFault(index);
        return {};
    }
  }
  return {"PLANT_UNKNOWN_PATH",
          fmt::format("'{}' is not writable here (writable: /cycleTime, /status, "
                      "/motorTemperature/alarmThreshold)",
                      path)};
}

json::object PlantSimulator::ApplyDesired(std::string_view machine, std::string_view payload,
                                          core::Status* error) {
  json::value correlation_id = nullptr;
  json::value path = nullptr;
  const json::value* value = nullptr;
  core::Status status;
  auto parsed = core::ParseJson(payload, core::JsonLimits{1u << 16, 16});
  if (!parsed) {
    status = core::Status("PLANT_BAD_DESIRED", "the payload is not JSON: " + parsed.status().message());
  } else if (!parsed->is_object()) {
    status = core::Status("PLANT_BAD_DESIRED",
                          "the payload must be an object {\"correlationId\", \"path\", \"value\"}");
  } else {
    const json::object& o = parsed->get_object();
    if (const auto* c = o.if_contains("correlationId"); c != nullptr && c->is_string()) {
      correlation_id = *c;
    }
    if (const auto* p = o.if_contains("path"); p != nullptr && p->is_string()) path = *p;
    value = o.if_contains("value");
    if (correlation_id.is_null()) {
      status = core::Status("PLANT_BAD_DESIRED", "correlationId must be a string");
    } else if (path.is_null()) {
      status = core::Status("PLANT_BAD_DESIRED", "path must be a string");
    } else if (value == nullptr) {
      status = core::Status("PLANT_BAD_DESIRED", "value is missing");
    } else if (auto it = index_.find(std::string(machine)); it == index_.end()) {
      status = core::Status("PLANT_UNKNOWN_MACHINE",
                            fmt::format("no machine '{}' on this line", machine));
    } else {
      status = ApplyDesiredValue(machines_[it->second], it->second, path.get_string(), *value);
    }
  }
  json::object ack;
  ack["correlationId"] = correlation_id;
  ack["status"] = status.ok() ? "applied" : "rejected";
  ack["path"] = path;
  if (status.ok()) {
    ack["value"] = *value;
  } else {
    ack["error"] = status.ToString();
  }
  if (error != nullptr) *error = std::move(status);
  return ack;
}

std::vector<MachineMessage> PlantSimulator::TakeReported(Clock::time_point now, bool all) {
  std::vector<MachineMessage> out;
  std::string ts;
  for (std::size_t i = 0; i < machines_.size(); ++i) {
    const MachineState& m = machines_[i];
    const Reported current{m.status(), m.cycle_time_s, m.alarm_threshold_c};
    if (!all && last_reported_[i] == current) continue;
    last_reported_[i] = current;
    if (ts.empty()) ts = FormatTimestampMs(now);
    std::string payload = R"({"ts":")" + ts + R"(","cycleTime":)";
    AppendDouble(payload, m.cycle_time_s);
    payload += R"(,"status":")";
    payload += StatusName(current.status);
    payload += R"(","motorTemperature":{"alarmThreshold":)";
    AppendDouble(payload, m.alarm_threshold_c);
    payload += "}}";
    out.push_back({m.id, std::move(payload)});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Plant

std::string FormatStats(const PlantStats& s) {
  return fmt::format(
      "telemetry {} | reported {} | commands {} ({} rejected) | desired {} ({} rejected) | "
      "queued {} | publish errors {} | skipped ticks {}",
      s.telemetry, s.reported,
      s.commands + s.commands_rejected, s.commands_rejected, s.desired + s.desired_rejected,
      s.desired_rejected, s.mqtt.queued, s.publish_errors, s.ticks_skipped);
}

Plant::Plant(PlantOptions options)
    : options_(std::move(options)), topic_prefix_("plant/" + options_.line + "/") {}

Plant::~Plant() { (void)Stop(std::chrono::seconds(5)); }

core::Status Plant::Start() {
  if (client_) return {"MQTT_ALREADY_STARTED", "a Plant runs once; make a new one"};
  const PlantOptions& o = options_;
  if (o.line.empty() || !IsTopicLevel(o.line)) {
    return BadOptions("the line must be a non-empty topic level (no '/', '+' or '#')");
  }
  if (core::Status s = sync::ValidateTopicName(topic_prefix_); !s.ok()) {
    return BadOptions("the line is not usable in a topic: " + s.message());
  }
  if (!(o.rate > 0 && o.rate <= 100000)) return BadOptions("rate must be > 0 and <= 100000");
  if (o.reported_interval.count() <= 0) return BadOptions("reported_interval must be > 0");
  if (core::Status s = PlantSimulator::Validate(o.simulator); !s.ok()) return s;
  sim_ = std::make_unique<PlantSimulator>(o.simulator);

  sync::MqttOptions mqtt;
  mqtt.host = o.host;
  mqtt.port = o.port;
  mqtt.client_id = "doppel-plant-" + o.line;
  mqtt.protocol = sync::MqttProtocol::kV5;
  mqtt.persistent_session = false;
  mqtt.reconnect_max = o.reconnect_max;
  mqtt.max_inflight = o.max_inflight;
  mqtt.max_queued = o.max_queued;
  sync::MqttCallbacks callbacks;
  callbacks.on_message = [this](const sync::MqttMessage& m) { OnMessage(m); };
  callbacks.on_connection = [this](const sync::MqttConnectionEvent& e) {
    if (e.connected || e.error.ok()) return;
    std::lock_guard lock(error_mu_);
    connection_error_ = e.error;
  };
  client_ = std::make_unique<sync::MqttClient>(std::move(mqtt), std::move(callbacks));
  for (const char* filter : {"+/commands/+", "+/desired"}) {
    if (core::Status s = client_->Subscribe(topic_prefix_ + filter, 1); !s.ok()) return s;
  }
  if (core::Status s = client_->Start(); !s.ok()) return s;
  timer_ = std::thread([this] { TimerLoop(); });
  return {};
}

core::Status Plant::WaitUntilSubscribed(std::chrono::milliseconds timeout) {
  if (!client_) return {"MQTT_NOT_STARTED", "the plant is not started"};
  return client_->WaitUntilSubscribed(timeout);
}

core::Status Plant::Stop(std::chrono::milliseconds flush_timeout) {
  if (stopped_) return {};
  stopped_ = true;
  {
    std::lock_guard lock(timer_mu_);
    stopping_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  if (!client_) return {};
  core::Status flushed = client_->Flush(flush_timeout);
  client_->Stop();
  return flushed;
}

PlantStats Plant::stats() const {
  PlantStats s;
  s.ticks = ticks_.load();
  s.ticks_skipped = ticks_skipped_.load();
  s.telemetry = telemetry_.load();
  s.reported = reported_.load();
  s.commands = commands_.load();
  s.commands_rejected = commands_rejected_.load();
  s.desired = desired_.load();
  s.desired_rejected = desired_rejected_.load();
  s.ignored = ignored_.load();
  s.publish_errors = publish_errors_.load();
  {
    std::lock_guard lock(error_mu_);
    s.connection_error = connection_error_;
  }
  if (client_) {
    s.connected = client_->connected();
    s.mqtt = client_->counters();
  }
  return s;
}

void Plant::PublishAll(const std::vector<MachineMessage>& messages, std::string_view kind,
                       std::atomic<std::uint64_t>* counter) {
  for (const auto& m : messages) {
    auto r = client_->Publish(MachineTopic(options_.line, m.machine, kind), m.payload, 1);
    (r.ok() ? *counter : publish_errors_).fetch_add(1);
  }
}

void Plant::PublishReported(bool all) {
  std::vector<MachineMessage> reported;
  {
    std::lock_guard lock(sim_mu_);
    reported = sim_->TakeReported(Clock::now(), all);
  }
  PublishAll(reported, "reported", &reported_);
}

void Plant::TimerLoop() {
  using std::chrono::duration;
  using std::chrono::steady_clock;
  const double rate = options_.rate;
  const double dt = 1.0 / rate;
  const auto start = steady_clock::now();
  const auto start_system = Clock::now();
  const auto max_backlog = static_cast<std::uint64_t>(std::max(1.0, std::ceil(rate)));  // 1 s
  auto tick_time = [&](std::uint64_t k) {
    return duration<double>(static_cast<double>(k) / rate);
  };
  std::uint64_t done = 0;  // ticks run (or skipped) so far; tick k is due at start + k / rate
  PublishReported(true);
  auto next_reported = start + options_.reported_interval;
  std::unique_lock lock(timer_mu_);
  while (!stopping_) {
    lock.unlock();
    const auto now = steady_clock::now();
    const auto due = static_cast<std::uint64_t>(duration<double>(now - start).count() * rate);
    if (due > done + max_backlog) {
      ticks_skipped_ += due - done - max_backlog;
      done = due - max_backlog;
    }
    const bool ticked = done < due;
    while (done < due && !stopping_) {
      ++done;
      const auto t = start_system + std::chrono::duration_cast<Clock::duration>(tick_time(done));
      std::vector<MachineMessage> telemetry;
      {
        std::lock_guard sim_lock(sim_mu_);
        telemetry = sim_->Tick(dt, t);
      }
      PublishAll(telemetry, "telemetry", &telemetry_);
      ticks_.fetch_add(1);
    }
    if (now >= next_reported) {
      PublishReported(true);
      while (next_reported <= now) next_reported += options_.reported_interval;
    } else if (ticked) {
      PublishReported(false);  // status changes from faults and repairs
    }
    const auto next_tick =
        start + std::chrono::duration_cast<steady_clock::duration>(tick_time(done + 1));
    lock.lock();
    timer_cv_.wait_until(lock, std::min(next_tick, next_reported), [this] { return stopping_.load(); });
  }
}

void Plant::OnMessage(const sync::MqttMessage& message) {
  std::string_view topic = message.topic;
  if (topic.substr(0, topic_prefix_.size()) != topic_prefix_) {
    ignored_.fetch_add(1);
    return;
  }
  topic.remove_prefix(topic_prefix_.size());
  const std::size_t slash = topic.find('/');
  if (slash == std::string_view::npos) {
    ignored_.fetch_add(1);
    return;
  }
  const std::string_view machine = topic.substr(0, slash);
  const std::string_view rest = topic.substr(slash + 1);
  constexpr std::string_view kCommands = "commands/";
  if (rest == "desired") {
    core::Status error;
    std::string ack;
    {
      std::lock_guard lock(sim_mu_);
      ack = ToJsonText(sim_->ApplyDesired(machine, message.payload, &error));
    }
    (error.ok() ? desired_ : desired_rejected_).fetch_add(1);
    auto r = client_->Publish(MachineTopic(options_.line, machine, "ack"), ack, 1);
    if (!r.ok()) publish_errors_.fetch_add(1);
    if (error.ok()) PublishReported(false);
    return;
  }
  if (rest.substr(0, kCommands.size()) != kCommands ||
      rest.find('/', kCommands.size()) != std::string_view::npos) {
    ignored_.fetch_add(1);
    return;
  }
  const std::string_view command = rest.substr(kCommands.size());
  core::Result<json::value> result = core::Status("PLANT_UNKNOWN_COMMAND", "");
  {
    std::lock_guard lock(sim_mu_);
    result = sim_->Apply(machine, command, message.payload);
  }
  const core::Status status = result.ok() ? core::Status() : result.status();
  (status.ok() ? commands_ : commands_rejected_).fetch_add(1);
  if (message.properties.response_topic) {
    sync::MqttProperties properties;
    properties.correlation_data = message.properties.correlation_data;
    properties.content_type = "application/json";
    properties.user_properties.emplace_back("status", std::to_string(ResponseStatus(status)));
    const std::string payload =
        result.ok() ? ToJsonText(*result) : ToJsonText(json::object{{"error", status.ToString()}});
    auto r = client_->Publish(*message.properties.response_topic, payload, 1, false, properties);
    if (!r.ok()) publish_errors_.fetch_add(1);
  }
  if (status.ok()) PublishReported(false);
}

}  // namespace doppel::plant
