// The production line (machines in series with finite buffers) and its sim::Unit.
//
// Each machine is a small state machine: starved (waiting for a part), busy, blocked (holding a
// finished part because the next buffer is full) or down. A pending completion carries a token;
// a failure bumps the token, so the completion scheduled before it is ignored and the part
// resumes with its remaining work after the repair. Every state change is charged to the state
// it leaves, which gives the busy / starved / blocked / down fractions.
//
// A machine is down while a random failure is being repaired or while it is forced down
// (ForceDown, the unit's input m<i>.down), whichever covers more: the two causes overlap freely.
// Work is counted in processing time at speed 1; at speed s a part with w left needs w / s more.
#include <fmt/format.h>

#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include "sim/des/des.h"

namespace doppel::sim::des {

struct ProductionLine::State {
  enum Phase { kStarved = 0, kBusy = 1, kBlocked = 2, kDown = 3 };
  struct Machine {
    MachineConfig config;
    RandomStream processing_rng;
    RandomStream failure_rng;
    Phase phase = kStarved;
    Phase before_down = kStarved;
    bool failed = false;  // a random failure is being repaired
    bool forced = false;  // forced down (ForceDown)
    double speed = 1;     // factor on the processing rate
    double work = 0;      // processing time (at speed 1) left of the current part
    double done_at = 0;   // while busy: when the current part completes
    std::uint64_t token = 0;
    double since = 0;
    std::array<double, 4> time_in{};
    std::uint64_t parts = 0;
    std::uint64_t failures = 0;
    std::uint64_t forced_downs = 0;
  };

  Simulator sim;
  double start = 0;
  std::vector<Machine> m;
  std::vector<int> buffer, capacity;
  std::uint64_t out = 0;
  int wip = 0;
  TimeWeighted wip_avg;
  std::vector<Event> events;

  void SetPhase(std::size_t i, Phase p) {
    Machine& x = m[i];
    x.time_in[x.phase] += sim.now() - x.since;
    x.since = sim.now();
    x.phase = p;
  }

  void SetWip(int w) {
    wip = w;
    wip_avg.Set(sim.now(), wip);
  }

  void Process(std::size_t i) {
    Machine& x = m[i];
    const double duration = x.work / x.speed;
    x.done_at = sim.now() + duration;
    const std::uint64_t token = ++x.token;
    SetPhase(i, kBusy);
    sim.Schedule(duration, [this, i, token] {
      if (m[i].token == token) Complete(i);
    });
  }

  void TryStart(std::size_t i) {
    Machine& x = m[i];
    if (x.phase != kStarved) return;
    if (i == 0) {
      SetWip(wip + 1);  // raw material is always there
    } else {
      if (buffer[i - 1] == 0) return;
      --buffer[i - 1];
    }
    x.work = x.config.processing.Sample(x.processing_rng);
    Process(i);
    if (i > 0) TryUnblock(i - 1);
  }

  // Machine i passes its finished part on if it can; true when it did.
  bool PassOn(std::size_t i) {
    if (i + 1 == m.size()) {
      ++out;
      SetWip(wip - 1);
    } else if (buffer[i] < capacity[i]) {
      ++buffer[i];
    } else {
      return false;
    }
    ++m[i].parts;
    SetPhase(i, kStarved);
    if (i + 1 < m.size()) TryStart(i + 1);
    TryStart(i);
    return true;
  }

  void Complete(std::size_t i) {
    if (!PassOn(i)) SetPhase(i, kBlocked);
  }

  void TryUnblock(std::size_t i) {
    if (m[i].phase == kBlocked) PassOn(i);
  }

  // Takes machine i down (a no-op when it is down already): a part in process is suspended.
  void GoDown(std::size_t i) {
    Machine& x = m[i];
    if (x.phase == kDown) return;
    x.before_down = x.phase;
    if (x.phase == kBusy) {
      x.work = (x.done_at - sim.now()) * x.speed;
      ++x.token;  // the pending completion is void
    }
    SetPhase(i, kDown);
  }

  // Brings machine i back unless a failure or a forced down still holds it.
  void GoUp(std::size_t i) {
    Machine& x = m[i];
    if (x.phase != kDown || x.failed || x.forced) return;
    switch (x.before_down) {
      case kBusy:
        Process(i);  // resumes the suspended part with its remaining work
        break;
      case kBlocked:
        SetPhase(i, kBlocked);
        TryUnblock(i);
        break;
      default:
        SetPhase(i, kStarved);
        TryStart(i);
        break;
    }
  }

  void Fail(std::size_t i) {
    Machine& x = m[i];
    ++x.failures;
    x.failed = true;
    GoDown(i);
    events.push_back(Event{sim.now(), fmt::format("m{}.failure", i + 1)});
    sim.Schedule(x.config.time_to_repair.Sample(x.failure_rng), [this, i] { Repair(i); });
  }

  void Repair(std::size_t i) {
    Machine& x = m[i];
    x.failed = false;
    events.push_back(Event{sim.now(), fmt::format("m{}.repair", i + 1)});
    sim.Schedule(x.config.time_to_failure->Sample(x.failure_rng), [this, i] { Fail(i); });
    GoUp(i);
  }

  void Force(std::size_t i, bool down) {
    Machine& x = m[i];
    if (x.forced == down) return;
    x.forced = down;
    events.push_back(
        Event{sim.now(), fmt::format("m{}.{}", i + 1, down ? "forced_down" : "forced_up")});
    if (down) {
      ++x.forced_downs;
      GoDown(i);
    } else {
      GoUp(i);
    }
  }

  void SetSpeed(std::size_t i, double speed) {
    Machine& x = m[i];
    if (speed == x.speed) return;
    if (x.phase == kBusy) {
      x.work = (x.done_at - sim.now()) * x.speed;
      x.speed = speed;
      Process(i);  // a new completion time; the old one is void (new token)
    } else {
      x.speed = speed;
    }
  }
};

ProductionLine::ProductionLine(std::unique_ptr<State> state) : state_(std::move(state)) {}
ProductionLine::~ProductionLine() = default;

core::Result<std::unique_ptr<ProductionLine>> ProductionLine::Create(const LineConfig& config,
                                                                     double start_time) {
  const std::size_t n = config.machines.size();
  if (n == 0) return core::Status("SIM_BAD_PARAMETER", "a production line needs a machine");
  if (config.buffer_capacities.size() != n - 1) {
    return core::Status("SIM_BAD_PARAMETER", fmt::format("{} machines need {} buffers, got {}", n,
                                                         n - 1, config.buffer_capacities.size()));
  }
  for (std::size_t j = 0; j < n - 1; ++j) {
    if (config.buffer_capacities[j] < 1) {
      return core::Status("SIM_BAD_PARAMETER",
                          fmt::format("buffer b{} needs a capacity of at least 1 (got {})", j + 1,
                                      config.buffer_capacities[j]));
    }
  }
  if (!std::isfinite(start_time)) return core::Status("SIM_NON_FINITE", "start time not finite");
  auto s = std::make_unique<State>();
  s->sim.Schedule(0, [] {});  // moves the clock to start_time below
  s->sim.RunUntil(start_time);
  s->start = start_time;
  s->wip_avg = TimeWeighted(start_time, 0);
  s->buffer.assign(n - 1, 0);
  s->capacity = config.buffer_capacities;
  for (std::size_t i = 0; i < n; ++i) {
    s->m.push_back(State::Machine{config.machines[i], RandomStream(StreamSeed(config.seed, 2 * i)),
                                  RandomStream(StreamSeed(config.seed, 2 * i + 1))});
    s->m.back().since = start_time;
  }
  State* raw = s.get();
  for (std::size_t i = 0; i < n; ++i) {
    if (s->m[i].config.time_to_failure) {
      s->sim.Schedule(s->m[i].config.time_to_failure->Sample(s->m[i].failure_rng),
                      [raw, i] { raw->Fail(i); });
    }
  }
  s->TryStart(0);
  return std::make_unique<ProductionLine>(std::move(s));
}

std::vector<Event> ProductionLine::RunUntil(double until) {
  state_->sim.RunUntil(until);
  return std::exchange(state_->events, {});
}

void ProductionLine::ForceDown(std::size_t machine, bool down) {
  static_cast<void>(state_->m.at(machine));  // bounds: throws std::out_of_range
  state_->Force(machine, down);
}

core::Status ProductionLine::SetSpeed(std::size_t machine, double factor) {
  if (!std::isfinite(factor)) return {"SIM_NON_FINITE", "a speed factor must be finite"};
  if (factor <= 0) {
    return {"SIM_BAD_PARAMETER",
            fmt::format("m{}: a speed factor must be > 0 (got {})", machine + 1, factor)};
  }
  static_cast<void>(state_->m.at(machine));
  state_->SetSpeed(machine, factor);
  return {};
}

double ProductionLine::now() const { return state_->sim.now(); }
std::uint64_t ProductionLine::parts_out() const { return state_->out; }
double ProductionLine::Throughput() const {
  const double span = now() - state_->start;
  return span > 0 ? static_cast<double>(state_->out) / span : 0;
}
int ProductionLine::Wip() const { return state_->wip; }
double ProductionLine::MeanWip() const { return state_->wip_avg.Mean(now()); }
int ProductionLine::BufferLevel(std::size_t buffer) const { return state_->buffer.at(buffer); }
std::size_t ProductionLine::machines() const { return state_->m.size(); }
std::uint64_t ProductionLine::events_run() const { return state_->sim.events_run(); }

MachineStats ProductionLine::Machine(std::size_t machine) const {
  const State::Machine& x = state_->m.at(machine);
  std::array<double, 4> t = x.time_in;
  t[x.phase] += now() - x.since;
  const double span = now() - state_->start;
  MachineStats s;
  if (span > 0) {
    s.starved = t[State::kStarved] / span;
    s.busy = t[State::kBusy] / span;
    s.blocked = t[State::kBlocked] / span;
    s.down = t[State::kDown] / span;
  }
  s.down_time = t[State::kDown];
  switch (x.phase) {
    case State::kStarved:
      s.state = MachineStats::kIdle;
      break;
    case State::kBusy:
      s.state = MachineStats::kBusy;
      break;
    case State::kDown:
      s.state = MachineStats::kDown;
      break;
    case State::kBlocked:
      s.state = MachineStats::kBlockedState;
      break;
  }
  s.parts = x.parts;
  s.failures = x.failures;
  s.forced_downs = x.forced_downs;
  return s;
}

// ---- the sim::Unit ----

namespace {

enum What : int {
  kParam,
  kDownIn,
  kSpeedIn,
  kThroughput,
  kPartsOut,
  kWipOut,
  kMeanWip,
  kUtil,
  kAvail,
  kBlockedOut,
  kStarvedOut,
  kDownTime,
  kStateOut,
  kLevel
};

}  // namespace

ProductionLineUnit::ProductionLineUnit(std::size_t machines) : machines_(machines) {
  auto add = [&](std::string name, Causality causality, ValueType type, Value start,
                 std::string unit, std::string description, int what, std::size_t index) {
    Variable var;
    var.name = std::move(name);
    var.causality = causality;
    var.type = type;
    if (causality != Causality::kOutput) var.start = start;
    var.unit = std::move(unit);
    var.description = std::move(description);
    variables_.push_back(std::move(var));
    values_.push_back(std::move(start));
    refs_.push_back(Ref{what, index});
  };
  auto param = [&](std::string name, Value v, std::string unit, std::string description) {
    const ValueType type =
        std::holds_alternative<double>(v) ? ValueType::kReal : ValueType::kInteger;
    add(std::move(name), Causality::kParameter, type, std::move(v), std::move(unit),
        std::move(description), kParam, 0);
  };
  auto output = [&](std::string name, ValueType type, std::string unit, int what,
                    std::size_t index) {
    add(std::move(name), Causality::kOutput, type,
        type == ValueType::kInteger ? Value(std::int64_t{0}) : Value(0.0), std::move(unit), "",
        what, index);
  };
  // Parameters first, in this order (Initialize reads them by position).
  param("seed", std::int64_t{1}, "", "random seed");
  for (std::size_t i = 1; i <= machines; ++i) {
    param(fmt::format("m{}.process_mean", i), 1.0, "s", "mean processing time");
    param(fmt::format("m{}.process_cv", i), 1.0, "",
          "coefficient of variation: 0 constant, 1 exponential, else lognormal");
    param(fmt::format("m{}.mtbf", i), 0.0, "s", "mean time between failures; 0: never fails");
    param(fmt::format("m{}.mttr", i), 1.0, "s", "mean time to repair");
  }
  for (std::size_t j = 1; j < machines; ++j) {
    param(fmt::format("b{}.capacity", j), std::int64_t{5}, "parts", "buffer capacity");
  }
  for (std::size_t i = 1; i <= machines; ++i) {
    add(fmt::format("m{}.down", i), Causality::kInput, ValueType::kReal, 0.0, "1",
        "forced down while >= 0.5 (a part in process resumes afterwards)", kDownIn, i - 1);
    add(fmt::format("m{}.speed", i), Causality::kInput, ValueType::kReal, 1.0, "1",
        "factor on the processing rate (> 0)", kSpeedIn, i - 1);
  }
  output("throughput", ValueType::kReal, "parts/s", kThroughput, 0);
  output("parts_out", ValueType::kInteger, "parts", kPartsOut, 0);
  output("wip", ValueType::kReal, "parts", kWipOut, 0);
  output("mean_wip", ValueType::kReal, "parts", kMeanWip, 0);
  for (std::size_t i = 0; i < machines; ++i) {
    output(fmt::format("m{}.utilization", i + 1), ValueType::kReal, "1", kUtil, i);
    output(fmt::format("m{}.availability", i + 1), ValueType::kReal, "1", kAvail, i);
    output(fmt::format("m{}.blocked", i + 1), ValueType::kReal, "1", kBlockedOut, i);
    output(fmt::format("m{}.starved", i + 1), ValueType::kReal, "1", kStarvedOut, i);
    output(fmt::format("m{}.down_time", i + 1), ValueType::kReal, "s", kDownTime, i);
    output(fmt::format("m{}.state", i + 1), ValueType::kInteger, "", kStateOut, i);
  }
  for (std::size_t j = 0; j + 1 < machines; ++j) {
    output(fmt::format("b{}.level", j + 1), ValueType::kInteger, "parts", kLevel, j);
  }
}

core::Result<std::unique_ptr<ProductionLineUnit>> ProductionLineUnit::Create(std::size_t machines) {
  if (machines == 0 || machines > 1000) {
    return core::Status("SIM_BAD_PARAMETER",
                        fmt::format("a line has 1 to 1000 machines, not {}", machines));
  }
  return std::make_unique<ProductionLineUnit>(machines);
}

core::Status ProductionLineUnit::Set(std::size_t index, const Value& value) {
  if (index >= variables_.size()) {
    return {"SIM_UNKNOWN_VARIABLE", fmt::format("no variable with index {}", index)};
  }
  const Variable& var = variables_[index];
  if (var.causality == Causality::kOutput) {
    return {"SIM_BAD_STATE", fmt::format("'{}' is an output; it cannot be set", var.name)};
  }
  if (var.causality == Causality::kInput) {
    const auto* v = std::get_if<double>(&value);
    if (v == nullptr) return {"SIM_WRONG_TYPE", fmt::format("'{}' is a real", var.name)};
    if (!std::isfinite(*v)) {
      return {"SIM_NON_FINITE", fmt::format("'{}' cannot be set to {}", var.name, *v)};
    }
    if (refs_[index].what == kSpeedIn && *v <= 0) {
      return {"SIM_BAD_PARAMETER",
              fmt::format("'{}' must be > 0 (got {}); use the machine's .down input to stop it",
                          var.name, *v)};
    }
    values_[index] = value;  // takes effect at the start of the next Step (or at Initialize)
    return {};
  }
  if (line_ != nullptr) {
    return {"SIM_BAD_STATE", fmt::format("'{}' can only be set before Initialize", var.name)};
  }
  if (var.type == ValueType::kInteger) {
    const auto* v = std::get_if<std::int64_t>(&value);
    if (v == nullptr) return {"SIM_WRONG_TYPE", fmt::format("'{}' is an integer", var.name)};
    if (var.name != "seed" && *v < 1) {
      return {"SIM_BAD_PARAMETER", fmt::format("'{}' must be at least 1 (got {})", var.name, *v)};
    }
  } else {
    const auto* v = std::get_if<double>(&value);
    if (v == nullptr) return {"SIM_WRONG_TYPE", fmt::format("'{}' is a real", var.name)};
    if (!std::isfinite(*v)) {
      return {"SIM_NON_FINITE", fmt::format("'{}' cannot be set to {}", var.name, *v)};
    }
    const bool zero_ok = var.name.ends_with(".process_cv") || var.name.ends_with(".mtbf");
    if (*v < 0 || (*v == 0 && !zero_ok)) {
      return {"SIM_BAD_PARAMETER",
              fmt::format("'{}' must be {} (got {})", var.name, zero_ok ? ">= 0" : "> 0", *v)};
    }
  }
  values_[index] = value;
  return {};
}

void ProductionLineUnit::ApplyInputs() {
  for (std::size_t k = 0; k < variables_.size(); ++k) {
    if (refs_[k].what == kDownIn) {
      line_->ForceDown(refs_[k].index, std::get<double>(values_[k]) >= 0.5);
    } else if (refs_[k].what == kSpeedIn) {
      (void)line_->SetSpeed(refs_[k].index, std::get<double>(values_[k]));  // checked by Set
    }
  }
}

core::Status ProductionLineUnit::Initialize(double t0) {
  if (line_ != nullptr) return {"SIM_BAD_STATE", "Initialize was already called"};
  LineConfig config;
  config.seed = static_cast<std::uint64_t>(std::get<std::int64_t>(values_[0]));
  for (std::size_t i = 0; i < machines_; ++i) {
    auto real = [&](std::size_t k) { return std::get<double>(values_[1 + 4 * i + k]); };
    auto processing = Distribution::WithMeanAndCv(real(0), real(1));
    if (!processing.ok()) return processing.status();
    MachineConfig m{*processing, std::nullopt, Distribution::Exponential(real(3)).value()};
    if (real(2) > 0) m.time_to_failure = Distribution::Exponential(real(2)).value();
    config.machines.push_back(m);
  }
  for (std::size_t j = 0; j + 1 < machines_; ++j) {
    config.buffer_capacities.push_back(
        static_cast<int>(std::get<std::int64_t>(values_[1 + 4 * machines_ + j])));
  }
  auto line = ProductionLine::Create(config, t0);
  if (!line.ok()) return line.status();
  line_ = std::move(*line);
  ApplyInputs();
  return {};
}

core::Result<StepOutcome> ProductionLineUnit::Step(double t, double dt) {
  if (line_ == nullptr) return core::Status("SIM_BAD_STATE", "Step before Initialize");
  if (!std::isfinite(t) || !std::isfinite(dt) || dt <= 0) {
    return core::Status("SIM_BAD_STEP",
                        fmt::format("Step needs a finite t and a positive dt (got {}, {})", t, dt));
  }
  if (std::abs(t - line_->now()) > 1e-9 * std::max(1.0, std::abs(t))) {
    return core::Status("SIM_BAD_STEP",
                        fmt::format("Step starts at {} but the unit is at {}", t, line_->now()));
  }
  // Inputs set since the last step act now, at t: after every event at or before t (those ran
  // in the previous step), before any later one.
  ApplyInputs();
  StepOutcome out;
  out.events = line_->RunUntil(line_->now() + dt);
  out.time_reached = line_->now();
  return out;
}

core::Result<Value> ProductionLineUnit::Get(std::size_t index) const {
  if (index >= variables_.size()) {
    return core::Status("SIM_UNKNOWN_VARIABLE", fmt::format("no variable with index {}", index));
  }
  const Ref ref = refs_[index];
  if (ref.what == kParam || ref.what == kDownIn || ref.what == kSpeedIn) return values_[index];
  const bool is_int = variables_[index].type == ValueType::kInteger;
  if (line_ == nullptr) return is_int ? Value(std::int64_t{0}) : Value(0.0);
  const ProductionLine& l = *line_;
  switch (ref.what) {
    case kThroughput:
      return Value(l.Throughput());
    case kPartsOut:
      return Value(static_cast<std::int64_t>(l.parts_out()));
    case kWipOut:
      return Value(static_cast<double>(l.Wip()));
    case kMeanWip:
      return Value(l.MeanWip());
    case kLevel:
      return Value(static_cast<std::int64_t>(l.BufferLevel(ref.index)));
    default:
      break;
  }
  const MachineStats s = l.Machine(ref.index);
  switch (ref.what) {
    case kUtil:
      return Value(s.busy);
    case kAvail:
      return Value(1 - s.down);
    case kBlockedOut:
      return Value(s.blocked);
    case kStarvedOut:
      return Value(s.starved);
    case kDownTime:
      return Value(s.down_time);
    default:
      return Value(static_cast<std::int64_t>(s.state));
  }
}

}  // namespace doppel::sim::des
