// The hospital emergency department (HospitalFlow) and its sim::Unit.
//
// Patients live in a slab of slots; a patient is named by a key (slot | generation << 32), and a
// slot's generation changes when the patient leaves, so a stale key (a patient who left without
// being seen, still in the doctor queue, or a patience timer of a patient who was seen) is
// recognized and ignored. The doctor queue is one FIFO per acuity level, served lowest level
// first; entries of patients who left are skipped when they reach the front.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "sim/des/des.h"

namespace doppel::sim::des {

struct HospitalFlow::State {
  struct Patient {
    double arrived = 0, queued = 0;
    int acuity = 1;
    std::uint32_t generation = 0;
    bool waiting = false;  // in the doctor queue
  };

  explicit State(const HospitalConfig& c)
      : config(c),
        arrivals(StreamSeed(c.seed, 0)),
        acuity(StreamSeed(c.seed, 1)),
        triage(StreamSeed(c.seed, 2)),
        treat(StreamSeed(c.seed, 3)),
        admit(StreamSeed(c.seed, 4)),
        los(StreamSeed(c.seed, 5)),
        patience(StreamSeed(c.seed, 6)) {}

  HospitalConfig config;
  Simulator sim;
  double start = 0;
  RandomStream arrivals, acuity, triage, treat, admit, los, patience;
  std::optional<Distribution> triage_time, stay;
  std::vector<Distribution> treat_time;
  std::unique_ptr<Resource> nurses, beds;
  std::vector<Patient> patients;
  std::vector<std::uint32_t> free_slots;
  std::array<std::deque<std::uint64_t>, 3> queue;
  int waiting = 0, busy = 0, doctors = 0, in_system = 0;
  TimeWeighted waiting_avg, busy_avg, doctors_avg;
  double rate = 0;
  std::uint64_t arrival_token = 0;
  std::uint64_t arrived = 0, treated = 0, departed = 0, lwbs = 0;
  std::array<Tally, 4> wait_to_doctor, door_to_doctor;  // [0] all, [k] acuity k

  Patient& At(std::uint64_t key) { return patients[key & 0xffffffffU]; }
  bool Valid(std::uint64_t key) const {
    return patients[key & 0xffffffffU].generation == static_cast<std::uint32_t>(key >> 32);
  }

  std::uint64_t NewPatient() {
    std::uint32_t slot;
    if (free_slots.empty()) {
      slot = static_cast<std::uint32_t>(patients.size());
      patients.emplace_back();
    } else {
      slot = free_slots.back();
      free_slots.pop_back();
    }
    return (static_cast<std::uint64_t>(patients[slot].generation) << 32) | slot;
  }

  void Leave(std::uint64_t key) {
    Patient& p = At(key);
    ++p.generation;  // every key of this patient is stale from now on
    p.waiting = false;
    free_slots.push_back(static_cast<std::uint32_t>(key & 0xffffffffU));
    --in_system;
  }

  void ScheduleArrival() {
    if (rate <= 0) return;
    const std::uint64_t token = arrival_token;
    sim.Schedule(arrivals.Exponential(1 / rate), [this, token] { Arrive(token); });
  }

  int DrawAcuity() {
    const auto& s = config.acuity_share;
    const double u = acuity.Uniform01() * (s[0] + s[1] + s[2]);
    if (u < s[0]) return 1;
    if (u < s[0] + s[1]) return 2;
    return 3;
  }

  void Arrive(std::uint64_t token) {
    if (token != arrival_token) return;  // the rate changed since this arrival was drawn
    ScheduleArrival();
    const std::uint64_t key = NewPatient();
    Patient& p = At(key);
    p.arrived = sim.now();
    p.acuity = DrawAcuity();
    ++arrived;
    ++in_system;
    if (!triage_time) {
      EnterQueue(key);
      return;
    }
    nurses->Request([this, key] {
      sim.Schedule(triage_time->Sample(triage), [this, key] {
        nurses->Release();
        EnterQueue(key);
      });
    });
  }

  void SetWaiting(int w) {
    waiting = w;
    waiting_avg.Set(sim.now(), w);
  }

  void EnterQueue(std::uint64_t key) {
    Patient& p = At(key);
    p.queued = sim.now();
    if (busy < doctors && waiting == 0) {
      Start(key);
      return;
    }
    p.waiting = true;
    queue[p.acuity - 1].push_back(key);
    SetWaiting(waiting + 1);
    if (config.patience_mean > 0) {
      sim.Schedule(patience.Exponential(config.patience_mean), [this, key] { Renege(key); });
    }
  }

  void Renege(std::uint64_t key) {
    if (!Valid(key) || !At(key).waiting) return;
    SetWaiting(waiting - 1);
    ++lwbs;
    Leave(key);  // its queue entry is now stale and skipped
  }

  void Start(std::uint64_t key) {
    Patient& p = At(key);
    p.waiting = false;
    ++busy;
    busy_avg.Set(sim.now(), busy);
    if (p.arrived >= start + config.warmup) {
      for (int k : {0, p.acuity}) {
        wait_to_doctor[k].Add(sim.now() - p.queued);
        door_to_doctor[k].Add(sim.now() - p.arrived);
      }
    }
    sim.Schedule(treat_time[p.acuity - 1].Sample(treat), [this, key] { Finish(key); });
  }

  void StartNext() {
    while (busy < doctors && waiting > 0) {
      std::uint64_t key = 0;
      bool found = false;
      for (auto& q : queue) {
        while (!q.empty() && !found) {
          key = q.front();
          q.pop_front();
          found = Valid(key) && At(key).waiting;
        }
        if (found) break;
      }
      if (!found) break;  // cannot happen while waiting > 0
      SetWaiting(waiting - 1);
      Start(key);
    }
  }

  void Finish(std::uint64_t key) {
    --busy;
    busy_avg.Set(sim.now(), busy);
    ++treated;
    const Patient& p = At(key);
    if (admit.Uniform01() < config.p_admit[p.acuity - 1]) {
      beds->Request([this, key] {
        sim.Schedule(stay->Sample(los), [this, key] {
          beds->Release();
          Depart(key);
        });
      });
    } else {
      Depart(key);
    }
    StartNext();
  }

  void Depart(std::uint64_t key) {
    ++departed;
    Leave(key);
  }
};

namespace {

core::Status Check(bool ok, const std::string& what) {
  return ok ? core::Status() : core::Status("SIM_BAD_PARAMETER", what);
}

core::Status Validate(const HospitalConfig& c) {
  for (double x : {c.arrival_rate, c.triage_mean, c.triage_cv, c.treat_cv, c.los_mean, c.los_cv,
                   c.patience_mean, c.warmup, c.acuity_share[0], c.acuity_share[1],
                   c.acuity_share[2], c.treat_mean[0], c.treat_mean[1], c.treat_mean[2],
                   c.p_admit[0], c.p_admit[1], c.p_admit[2]}) {
    if (!std::isfinite(x)) return core::Status("SIM_NON_FINITE", "a hospital value is not finite");
  }
  core::Status s;
  auto check = [&](bool ok, const std::string& what) {
    if (s.ok()) s = Check(ok, what);
  };
  check(c.arrival_rate >= 0, fmt::format("arrival_rate must be >= 0 (got {})", c.arrival_rate));
  check(c.nurses >= 1, fmt::format("nurses must be at least 1 (got {})", c.nurses));
  check(c.doctors >= 0, fmt::format("doctors must be >= 0 (got {})", c.doctors));
  check(c.beds >= 1, fmt::format("beds must be at least 1 (got {})", c.beds));
  check(c.triage_mean >= 0 && c.triage_cv >= 0 && c.treat_cv >= 0 && c.los_cv >= 0,
        "triage_mean and the cvs must be >= 0");
  check(c.los_mean > 0, fmt::format("los_mean must be > 0 (got {})", c.los_mean));
  check(c.patience_mean >= 0 && c.warmup >= 0, "patience_mean and warmup must be >= 0");
  for (int k = 0; k < 3; ++k) {
    check(c.acuity_share[k] >= 0, fmt::format("a{}.share must be >= 0", k + 1));
    check(c.treat_mean[k] > 0, fmt::format("a{}.treat_mean must be > 0", k + 1));
    check(c.p_admit[k] >= 0 && c.p_admit[k] <= 1,
          fmt::format("a{}.p_admit must be in [0, 1]", k + 1));
  }
  check(c.acuity_share[0] + c.acuity_share[1] + c.acuity_share[2] > 0,
        "at least one acuity share must be > 0");
  return s;
}

}  // namespace

HospitalFlow::HospitalFlow(std::unique_ptr<State> state) : state_(std::move(state)) {}
HospitalFlow::~HospitalFlow() = default;

core::Result<std::unique_ptr<HospitalFlow>> HospitalFlow::Create(const HospitalConfig& config,
                                                                 double start_time) {
  if (core::Status s = Validate(config); !s.ok()) return s;
  if (!std::isfinite(start_time)) return core::Status("SIM_NON_FINITE", "start time not finite");
  auto s = std::make_unique<State>(config);
  s->sim.Schedule(0, [] {});  // moves the clock to start_time below
  s->sim.RunUntil(start_time);
  s->start = start_time;
  s->waiting_avg = TimeWeighted(start_time, 0);
  s->busy_avg = TimeWeighted(start_time, 0);
  s->doctors_avg = TimeWeighted(start_time, config.doctors);
  s->doctors = config.doctors;
  if (config.triage_mean > 0) {
    auto t = Distribution::WithMeanAndCv(config.triage_mean, config.triage_cv);
    if (!t.ok()) return t.status();
    s->triage_time = *t;
  }
  for (int k = 0; k < 3; ++k) {
    auto t = Distribution::WithMeanAndCv(config.treat_mean[k], config.treat_cv);
    if (!t.ok()) return t.status();
    s->treat_time.push_back(*t);
  }
  auto stay = config.los_cv == 0
                  ? Distribution::Constant(config.los_mean)
                  : Distribution::Lognormal(config.los_mean, config.los_cv * config.los_mean);
  if (!stay.ok()) return stay.status();
  s->stay = *stay;
  auto nurses = Resource::Create(s->sim, "nurses", config.nurses);
  if (!nurses.ok()) return nurses.status();
  s->nurses = std::move(*nurses);
  auto beds = Resource::Create(s->sim, "beds", config.beds);
  if (!beds.ok()) return beds.status();
  s->beds = std::move(*beds);
  s->rate = config.arrival_rate;
  s->ScheduleArrival();
  return std::make_unique<HospitalFlow>(std::move(s));
}

void HospitalFlow::RunUntil(double until) { state_->sim.RunUntil(until); }

void HospitalFlow::SetArrivalRate(double rate) {
  State& s = *state_;
  if (rate == s.rate) return;
  s.rate = rate;
  ++s.arrival_token;  // the pending arrival is void; memorylessness makes a fresh draw exact
  s.ScheduleArrival();
}

void HospitalFlow::SetDoctors(int doctors) {
  State& s = *state_;
  if (doctors == s.doctors) return;
  s.doctors = doctors;
  s.doctors_avg.Set(s.sim.now(), doctors);
  s.StartNext();
}

double HospitalFlow::now() const { return state_->sim.now(); }
std::uint64_t HospitalFlow::arrived() const { return state_->arrived; }
std::uint64_t HospitalFlow::treated() const { return state_->treated; }
std::uint64_t HospitalFlow::departed() const { return state_->departed; }
std::uint64_t HospitalFlow::left_without_being_seen() const { return state_->lwbs; }
int HospitalFlow::in_system() const { return state_->in_system; }
int HospitalFlow::waiting() const { return state_->waiting; }
double HospitalFlow::MeanWaiting() const { return state_->waiting_avg.Mean(now()); }
int HospitalFlow::triage_waiting() const {
  return static_cast<int>(state_->nurses->queue_length());
}
int HospitalFlow::doctors_busy() const { return state_->busy; }
double HospitalFlow::DoctorUtilization() const {
  const double on_duty = state_->doctors_avg.Mean(now());
  return on_duty > 0 ? state_->busy_avg.Mean(now()) / on_duty : 0;
}
int HospitalFlow::beds_occupied() const { return state_->beds->in_use(); }
int HospitalFlow::boarding() const { return static_cast<int>(state_->beds->queue_length()); }
double HospitalFlow::MeanBedOccupancy() const { return state_->beds->Utilization(); }
const Tally& HospitalFlow::WaitToDoctor(int acuity) const {
  return state_->wait_to_doctor.at(static_cast<std::size_t>(acuity));
}
const Tally& HospitalFlow::DoorToDoctor(int acuity) const {
  return state_->door_to_doctor.at(static_cast<std::size_t>(acuity));
}
std::uint64_t HospitalFlow::events_run() const { return state_->sim.events_run(); }

// ---- the sim::Unit ----

namespace {

enum What : int {
  kParam,
  kRateIn,
  kDoctorsIn,
  kPatientsIn,
  kPatientsOut,
  kLwbs,
  kInSystem,
  kWaiting,
  kTriageWaiting,
  kDoctorsBusy,
  kBedsOccupied,
  kBoarding,
  kMeanWaiting,
  kMeanWaitToDoctor,
  kDoorToDoctor,
  kWaitToDoctorK,  // + acuity - 1
  kDoorToDoctorK = kWaitToDoctorK + 3,
  kDoctorUtilization = kDoorToDoctorK + 3,
  kBedOccupancy,
  kMeanBedOccupancy
};

}  // namespace

HospitalFlowUnit::HospitalFlowUnit() {
  const HospitalConfig d;
  auto add = [&](std::string name, Causality causality, Value start, std::string unit,
                 std::string description, int what) {
    Variable var;
    var.name = std::move(name);
    var.causality = causality;
    var.type = std::holds_alternative<double>(start) ? ValueType::kReal : ValueType::kInteger;
    if (causality != Causality::kOutput) var.start = start;
    var.unit = std::move(unit);
    var.description = std::move(description);
    variables_.push_back(std::move(var));
    values_.push_back(std::move(start));
    what_.push_back(what);
  };
  auto param = [&](std::string name, Value v, std::string unit, std::string description) {
    add(std::move(name), Causality::kParameter, std::move(v), std::move(unit),
        std::move(description), kParam);
  };
  auto real_out = [&](std::string name, std::string unit, int what) {
    add(std::move(name), Causality::kOutput, 0.0, std::move(unit), "", what);
  };
  auto int_out = [&](std::string name, int what) {
    add(std::move(name), Causality::kOutput, std::int64_t{0}, "patients", "", what);
  };
  param("seed", std::int64_t{1}, "", "random seed");
  param("nurses", std::int64_t{d.nurses}, "", "triage nurses");
  param("triage_mean", d.triage_mean, "s", "mean triage time; 0: no triage");
  param("triage_cv", d.triage_cv, "", "coefficient of variation of the triage time");
  param("treat_cv", d.treat_cv, "", "coefficient of variation of the treatment time");
  for (int k = 1; k <= 3; ++k) {
    param(fmt::format("a{}.share", k), d.acuity_share[k - 1], "1",
          "share of arrivals with this acuity (normalized)");
    param(fmt::format("a{}.treat_mean", k), d.treat_mean[k - 1], "s", "mean treatment time");
    param(fmt::format("a{}.p_admit", k), d.p_admit[k - 1], "1", "probability of admission");
  }
  param("beds", std::int64_t{d.beds}, "", "inpatient beds");
  param("los_mean", d.los_mean, "s", "mean length of stay in a bed");
  param("los_cv", d.los_cv, "", "coefficient of variation of the length of stay (lognormal)");
  param("patience_mean", d.patience_mean, "s",
        "mean time a patient waits for a doctor before leaving; 0: never leaves");
  param("warmup", d.warmup, "s", "waits of patients arriving before t0 + warmup are not counted");
  add("arrival_rate", Causality::kInput, d.arrival_rate, "1/s", "patients per second", kRateIn);
  add("doctors", Causality::kInput, std::int64_t{d.doctors}, "", "doctors on duty", kDoctorsIn);
  int_out("patients_in", kPatientsIn);
  int_out("patients_out", kPatientsOut);
  int_out("lwbs", kLwbs);
  int_out("in_system", kInSystem);
  int_out("waiting", kWaiting);
  int_out("triage_waiting", kTriageWaiting);
  int_out("doctors_busy", kDoctorsBusy);
  int_out("beds_occupied", kBedsOccupied);
  int_out("boarding", kBoarding);
  real_out("mean_waiting", "patients", kMeanWaiting);
  real_out("mean_wait_to_doctor", "s", kMeanWaitToDoctor);
  real_out("door_to_doctor", "s", kDoorToDoctor);
  for (int k = 1; k <= 3; ++k) {
    real_out(fmt::format("a{}.wait_to_doctor", k), "s", kWaitToDoctorK + k - 1);
    real_out(fmt::format("a{}.door_to_doctor", k), "s", kDoorToDoctorK + k - 1);
  }
  real_out("doctor_utilization", "1", kDoctorUtilization);
  real_out("bed_occupancy", "1", kBedOccupancy);
  real_out("mean_bed_occupancy", "1", kMeanBedOccupancy);
}

core::Result<std::unique_ptr<HospitalFlowUnit>> HospitalFlowUnit::Create() {
  return std::make_unique<HospitalFlowUnit>();
}

core::Status HospitalFlowUnit::Set(std::size_t index, const Value& value) {
  if (index >= variables_.size()) {
    return {"SIM_UNKNOWN_VARIABLE", fmt::format("no variable with index {}", index)};
  }
  const Variable& var = variables_[index];
  if (var.causality == Causality::kOutput) {
    return {"SIM_BAD_STATE", fmt::format("'{}' is an output; it cannot be set", var.name)};
  }
  if (var.causality == Causality::kParameter && flow_ != nullptr) {
    return {"SIM_BAD_STATE", fmt::format("'{}' can only be set before Initialize", var.name)};
  }
  if (var.type == ValueType::kInteger) {
    const auto* v = std::get_if<std::int64_t>(&value);
    if (v == nullptr) return {"SIM_WRONG_TYPE", fmt::format("'{}' is an integer", var.name)};
    const std::int64_t lo = var.name == "doctors" ? 0 : 1;
    if (var.name != "seed" && (*v < lo || *v > 1000000)) {
      return {"SIM_BAD_PARAMETER",
              fmt::format("'{}' must be in [{}, 1000000] (got {})", var.name, lo, *v)};
    }
  } else {
    const auto* v = std::get_if<double>(&value);
    if (v == nullptr) return {"SIM_WRONG_TYPE", fmt::format("'{}' is a real", var.name)};
    if (!std::isfinite(*v)) {
      return {"SIM_NON_FINITE", fmt::format("'{}' cannot be set to {}", var.name, *v)};
    }
    const bool positive = var.name.ends_with(".treat_mean") || var.name == "los_mean";
    const bool probability = var.name.ends_with(".p_admit");
    if (*v < 0 || (positive && *v == 0) || (probability && *v > 1)) {
      return {"SIM_BAD_PARAMETER", fmt::format("'{}' must be {} (got {})", var.name,
                                               positive      ? "> 0"
                                               : probability ? "in [0, 1]"
                                                             : ">= 0",
                                               *v)};
    }
  }
  values_[index] = value;
  return {};
}

double HospitalFlowUnit::Real(std::string_view name) const {
  return std::get<double>(values_[Find(name).value()]);
}

std::int64_t HospitalFlowUnit::Integer(std::string_view name) const {
  return std::get<std::int64_t>(values_[Find(name).value()]);
}

void HospitalFlowUnit::ApplyInputs() {
  flow_->SetArrivalRate(Real("arrival_rate"));
  flow_->SetDoctors(static_cast<int>(Integer("doctors")));
}

core::Status HospitalFlowUnit::Initialize(double t0) {
  if (flow_ != nullptr) return {"SIM_BAD_STATE", "Initialize was already called"};
  HospitalConfig c;
  c.seed = static_cast<std::uint64_t>(Integer("seed"));
  c.arrival_rate = Real("arrival_rate");
  c.nurses = static_cast<int>(Integer("nurses"));
  c.triage_mean = Real("triage_mean");
  c.triage_cv = Real("triage_cv");
  c.doctors = static_cast<int>(Integer("doctors"));
  c.treat_cv = Real("treat_cv");
  for (int k = 0; k < 3; ++k) {
    c.acuity_share[k] = Real(fmt::format("a{}.share", k + 1));
    c.treat_mean[k] = Real(fmt::format("a{}.treat_mean", k + 1));
    c.p_admit[k] = Real(fmt::format("a{}.p_admit", k + 1));
  }
  c.beds = static_cast<int>(Integer("beds"));
  c.los_mean = Real("los_mean");
  c.los_cv = Real("los_cv");
  c.patience_mean = Real("patience_mean");
  c.warmup = Real("warmup");
  auto flow = HospitalFlow::Create(c, t0);
  if (!flow.ok()) return flow.status();
  flow_ = std::move(*flow);
  return {};
}

core::Result<StepOutcome> HospitalFlowUnit::Step(double t, double dt) {
  if (flow_ == nullptr) return core::Status("SIM_BAD_STATE", "Step before Initialize");
  if (!std::isfinite(t) || !std::isfinite(dt) || dt <= 0) {
    return core::Status("SIM_BAD_STEP",
                        fmt::format("Step needs a finite t and a positive dt (got {}, {})", t, dt));
  }
  if (std::abs(t - flow_->now()) > 1e-9 * std::max(1.0, std::abs(t))) {
    return core::Status("SIM_BAD_STEP",
                        fmt::format("Step starts at {} but the unit is at {}", t, flow_->now()));
  }
  ApplyInputs();  // inputs set since the last step act now, at t
  flow_->RunUntil(flow_->now() + dt);
  StepOutcome out;
  out.time_reached = flow_->now();
  return out;
}

core::Result<Value> HospitalFlowUnit::Get(std::size_t index) const {
  if (index >= variables_.size()) {
    return core::Status("SIM_UNKNOWN_VARIABLE", fmt::format("no variable with index {}", index));
  }
  const int what = what_[index];
  if (what == kParam || what == kRateIn || what == kDoctorsIn || flow_ == nullptr) {
    return values_[index];  // outputs hold 0 of their type before Initialize
  }
  const HospitalFlow& f = *flow_;
  auto count = [](auto n) { return Value(static_cast<std::int64_t>(n)); };
  if (what >= kWaitToDoctorK && what < kWaitToDoctorK + 3) {
    return Value(f.WaitToDoctor(what - kWaitToDoctorK + 1).mean());
  }
  if (what >= kDoorToDoctorK && what < kDoorToDoctorK + 3) {
    return Value(f.DoorToDoctor(what - kDoorToDoctorK + 1).mean());
  }
  switch (what) {
    case kPatientsIn:
      return count(f.arrived());
    case kPatientsOut:
      return count(f.departed());
    case kLwbs:
      return count(f.left_without_being_seen());
    case kInSystem:
      return count(f.in_system());
    case kWaiting:
      return count(f.waiting());
    case kTriageWaiting:
      return count(f.triage_waiting());
    case kDoctorsBusy:
      return count(f.doctors_busy());
    case kBedsOccupied:
      return count(f.beds_occupied());
    case kBoarding:
      return count(f.boarding());
    case kMeanWaiting:
      return Value(f.MeanWaiting());
    case kMeanWaitToDoctor:
      return Value(f.WaitToDoctor().mean());
    case kDoorToDoctor:
      return Value(f.DoorToDoctor().mean());
    case kDoctorUtilization:
      return Value(f.DoctorUtilization());
    case kBedOccupancy:
      return Value(static_cast<double>(f.beds_occupied()) /
                   static_cast<double>(std::get<std::int64_t>(values_[Find("beds").value()])));
    default:
      return Value(f.MeanBedOccupancy());
  }
}

}  // namespace doppel::sim::des
