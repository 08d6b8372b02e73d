// doppel::sim::des — discrete-event simulation: an event calendar, resources with FIFO queues and
// failures, reproducible random streams, statistics, and two models built on them: a G/G/c queue
// (SimulateQueue) and a production line (ProductionLine, and ProductionLineUnit: the line behind
// sim::Unit, kind "des").
//
// Determinism: the calendar orders events by time, then by the order they were scheduled
// (a sequence number), so equal times never depend on heap internals. Random numbers come from
// std::mt19937_64 (its output is fixed by the standard) turned into variates by our own code
// (inverse CDF, Box-Muller), never by std::*_distribution, whose algorithms differ between
// standard libraries. Same seed and parameters → the same results, bit for bit, on any platform
// with IEEE doubles and the same libm.
//
// Error codes (stable): SIM_BAD_PARAMETER (a negative or zero rate/mean where one is needed,
// a zero capacity, an unknown distribution), SIM_NON_FINITE (NaN/Inf), plus the sim::Unit codes
// of ProductionLineUnit (SIM_WRONG_TYPE, SIM_BAD_STATE, SIM_BAD_STEP, SIM_UNKNOWN_VARIABLE).
// Single-threaded: one simulation belongs to one thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "sim/unit.h"

namespace doppel::sim::des {

// SplitMix64: the seed of stream `index` derived from a master seed; consecutive indices give
// unrelated seeds.
std::uint64_t StreamSeed(std::uint64_t seed, std::uint64_t index);

// One stream of random numbers.
class RandomStream {
 public:
  explicit RandomStream(std::uint64_t seed) : engine_(seed) {}
  // Uniform in the open interval (0, 1), 53 random bits.
  double Uniform01() { return (static_cast<double>(engine_() >> 11) + 0.5) * 0x1.0p-53; }
  double Exponential(double mean);                       // inverse CDF: -mean ln U
  double Normal(double mean, double sd);                 // Box-Muller (one of the pair)
  double Triangular(double lo, double mode, double hi);  // inverse CDF

 private:
  std::mt19937_64 engine_;
};

// A non-negative duration distribution.
class Distribution {
 public:
  enum class Kind { kConstant, kExponential, kUniform, kTriangular, kLognormal };

  // SIM_NON_FINITE for NaN/Inf; SIM_BAD_PARAMETER: value < 0 (constant), mean <= 0
  // (exponential, lognormal), sd < 0, lo < 0 or lo > hi, mode outside [lo, hi].
  static core::Result<Distribution> Constant(double value);
  static core::Result<Distribution> Exponential(double mean);
  static core::Result<Distribution> Uniform(double lo, double hi);
  static core::Result<Distribution> Triangular(double lo, double mode, double hi);
  static core::Result<Distribution> Lognormal(double mean, double sd);  // of the variate itself
  // Constant for cv = 0, exponential for cv = 1, lognormal otherwise: one knob from
  // deterministic to highly variable.
  static core::Result<Distribution> WithMeanAndCv(double mean, double cv);

  double Sample(RandomStream& rng) const;
  double mean() const;
  Kind kind() const { return kind_; }

 private:
  Distribution(Kind kind, double a, double b, double c) : kind_(kind), a_(a), b_(b), c_(c) {}
  Kind kind_;
  double a_, b_, c_;
};

// Mean and spread of observations (Welford).
class Tally {
 public:
  void Add(double x);
  std::uint64_t count() const { return n_; }
  double mean() const { return mean_; }
  double variance() const { return n_ > 1 ? m2_ / static_cast<double>(n_ - 1) : 0; }
  double min() const { return min_; }
  double max() const { return max_; }

 private:
  std::uint64_t n_ = 0;
  double mean_ = 0, m2_ = 0, min_ = 0, max_ = 0;
};

// The time average of a piecewise-constant quantity (a queue length, a busy count).
class TimeWeighted {
 public:
  explicit TimeWeighted(double start_time = 0, double value = 0)
      : start_(start_time), last_(start_time), value_(value) {}
  void Set(double now, double value);
  double value() const { return value_; }
  double Mean(double now) const;  // over [start, now]
  double max() const { return max_; }

 private:
  double start_, last_, value_, area_ = 0, max_ = 0;
};

// The event calendar: a binary heap keyed by (time, sequence number).
class Simulator {
 public:
  using Action = std::function<void()>;

  double now() const { return now_; }
  // REQUIRES: delay >= 0 and finite (asserted in debug; clamped to 0 otherwise).
  void Schedule(double delay, Action action);
  // Runs every event with time <= until in order, then sets now() = until. Returns the number of
  // events run. An action may schedule more events (at now() or later).
  std::uint64_t RunUntil(double until);
  // Stops RunUntil after the current event (now() stays at that event's time).
  void Stop() { stopped_ = true; }
  std::uint64_t events_run() const { return events_run_; }
  std::size_t pending() const { return heap_.size(); }

 private:
  struct Entry {
    double time;
    std::uint64_t seq;
    Action action;
  };
  std::vector<Entry> heap_;
  double now_ = 0;
  std::uint64_t next_seq_ = 0;
  std::uint64_t events_run_ = 0;
  bool stopped_ = false;
};

// `capacity` identical servers with one FIFO queue. A failure takes the whole resource down:
// no new grants until the repair (non-preemptive: units in use finish their work).
class Resource {
 public:
  // SIM_BAD_PARAMETER for capacity < 1.
  static core::Result<std::unique_ptr<Resource>> Create(Simulator& sim, std::string name,
                                                        int capacity);

  // One unit for the caller: `granted` runs when one is free and the resource is up, in the
  // order of requests (immediately, inside Request, when one is free now).
  void Request(Simulator::Action granted);
  // Returns one unit. REQUIRES: a unit was granted and not yet released.
  void Release();

  // Alternating up and down times drawn from the two distributions on `rng` (which must
  // outlive the resource). Call once, before running.
  void EnableFailures(Distribution time_to_failure, Distribution time_to_repair, RandomStream* rng);

  const std::string& name() const { return name_; }
  int capacity() const { return capacity_; }
  int in_use() const { return in_use_; }
  std::size_t queue_length() const { return queue_.size(); }
  bool up() const { return up_; }
  const Tally& waiting_times() const { return waits_; }
  double MeanQueueLength() const { return queue_len_.Mean(sim_.now()); }
  double Utilization() const { return busy_.Mean(sim_.now()) / capacity_; }
  double Availability() const { return 1 - down_.Mean(sim_.now()); }
  std::uint64_t served() const { return served_; }
  std::uint64_t failures() const { return failures_; }

  Resource(Simulator& sim, std::string name, int capacity);  // use Create

 private:
  struct Waiting {
    double since;
    Simulator::Action granted;
  };
  void Grant(const Waiting& w);
  void GrantWaiting();
  void Fail();
  void Repair();

  Simulator& sim_;
  std::string name_;
  int capacity_;
  int in_use_ = 0;
  bool up_ = true;
  std::deque<Waiting> queue_;
  Tally waits_;
  TimeWeighted queue_len_, busy_, down_;
  std::uint64_t served_ = 0, failures_ = 0;
  std::optional<Distribution> ttf_, ttr_;
  RandomStream* rng_ = nullptr;
};

// A G/G/c queue: customers arrive with the given interarrival times, wait in one FIFO queue for
// one of `servers`, are served, leave. Runs until `customers` have arrived and been served.
struct QueueConfig {
  Distribution interarrival = Distribution::Exponential(1).value();
  Distribution service = Distribution::Exponential(0.5).value();
  int servers = 1;
  std::uint64_t customers = 100000;
  std::uint64_t seed = 1;
  std::uint64_t warmup_customers = 0;  // not counted in the waiting-time statistics
};

struct QueueResult {
  double mean_wait = 0;          // in queue, before service (Wq)
  double mean_queue_length = 0;  // time average (Lq)
  double utilization = 0;
  double throughput = 0;  // customers per time unit
  double end_time = 0;
  std::uint64_t customers = 0;  // counted in mean_wait
  std::uint64_t events = 0;
};

// SIM_BAD_PARAMETER for servers < 1 or customers == 0.
core::Result<QueueResult> SimulateQueue(const QueueConfig& config);

// The Erlang C mean waiting time in queue of an M/M/c queue with arrival rate lambda and service
// rate mu per server (REQUIRES lambda < c mu).
double ErlangCMeanWait(double lambda, double mu, int c);

// Machines in series with finite buffers between them. Machine 1 never starves (raw material
// is always there) and the last machine never blocks (finished parts leave). A machine that
// finishes a part while the next buffer is full holds it (blocked after service). Failures run
// on calendar time in every state: a failure during processing suspends the part, which resumes
// with its remaining time after the repair.
//
// Injected failures: ForceDown(i, true) takes machine i down now, ForceDown(i, false) releases
// it; a forced down and a random failure overlap (the machine is down while either holds, and
// the random failure clock keeps running). The part in process is suspended and resumes with its
// remaining work (as for a random failure): nothing is scrapped. SetSpeed(i, s) scales the
// processing rate from now on (a part in process finishes its remaining work at the new rate).
struct MachineConfig {
  Distribution processing = Distribution::Exponential(1).value();
  std::optional<Distribution> time_to_failure;  // none: never fails
  Distribution time_to_repair = Distribution::Exponential(1).value();
};

struct LineConfig {
  std::vector<MachineConfig> machines;
  std::vector<int> buffer_capacities;  // machines - 1 of them, each >= 1
  std::uint64_t seed = 1;
};

struct MachineStats {
  enum State { kIdle = 0, kBusy = 1, kDown = 2, kBlockedState = 3 };  // idle = starved
  double busy = 0, starved = 0, blocked = 0, down = 0;  // fractions of the elapsed time
  double down_time = 0;                                 // time down since the start (any cause)
  int state = kIdle;                                    // now
  std::uint64_t parts = 0;                              // finished and passed on
  std::uint64_t failures = 0;                           // random failures
  std::uint64_t forced_downs = 0;                       // ForceDown(i, true) that took effect
};

class ProductionLine {
 public:
  // SIM_BAD_PARAMETER: no machines, buffer_capacities not machines - 1 long, a capacity < 1.
  static core::Result<std::unique_ptr<ProductionLine>> Create(const LineConfig& config,
                                                              double start_time = 0);
  ~ProductionLine();

  // Runs the calendar to `until`; returns failures and repairs in that interval, in order
  // ("m2.failure", "m2.repair"), and the forced downs and ups since the last call
  // ("m2.forced_down", "m2.forced_up").
  std::vector<Event> RunUntil(double until);

  // Forces machine `machine` (0-based) down or releases it, at now(); a no-op when it already is.
  // REQUIRES: machine < machines().
  void ForceDown(std::size_t machine, bool down);
  // The machine's speed factor from now() on. SIM_NON_FINITE, SIM_BAD_PARAMETER (<= 0).
  core::Status SetSpeed(std::size_t machine, double factor);

  double now() const;
  std::uint64_t parts_out() const;
  double Throughput() const;  // parts out per time unit since the start
  int Wip() const;            // parts in buffers and held by machines
  double MeanWip() const;     // time average
  int BufferLevel(std::size_t buffer) const;
  MachineStats Machine(std::size_t machine) const;
  std::size_t machines() const;
  std::uint64_t events_run() const;

  struct State;  // production_line.cc
  explicit ProductionLine(std::unique_ptr<State> state);

 private:
  std::unique_ptr<State> state_;
};

// The production line as a sim::Unit (kind "des"), for n machines. Variables (i = 1..n, buffer
// j = 1..n-1 sits after machine j):
//   parameters  seed (integer), m<i>.process_mean (real, > 0), m<i>.process_cv (real, >= 0: 0
//               constant, 1 exponential, else lognormal), m<i>.mtbf (real, >= 0; 0 = never fails),
//               m<i>.mttr (real, > 0), b<j>.capacity (integer, >= 1)
//   inputs      m<i>.down (real: >= 0.5 forces the machine down, default 0), m<i>.speed (real > 0,
//               a factor on the processing rate, default 1)
//   outputs     throughput (parts per time unit since t0), parts_out (integer), wip (real: now),
//               mean_wip, m<i>.utilization (busy fraction), m<i>.availability, m<i>.blocked,
//               m<i>.starved, m<i>.down_time (time down since t0, failures and forced),
//               m<i>.state (integer: 0 idle/starved, 1 busy, 2 down, 3 blocked), b<j>.level
//               (integer)
// Failure and repair times are exponential. Inputs may be set at any time; they act at the start
// of the next Step(t, dt), i.e. at time t, after the events at or before t (or at Initialize(t0)
// for values set before it). So an injected failure takes effect at the communication point
// where the master sets the input: exactly at its time when that time is a communication point.
// Outputs therefore change only in Step (no direct feedthrough). Step(t, dt) runs the calendar
// to t + dt; the outcome's events are the machines' failures and repairs and the forced downs
// and ups.
class ProductionLineUnit final : public Unit {
 public:
  // SIM_BAD_PARAMETER for machines == 0 or > 1000.
  static core::Result<std::unique_ptr<ProductionLineUnit>> Create(std::size_t machines);

  std::string_view kind() const override { return "des"; }
  const std::vector<Variable>& variables() const override { return variables_; }
  // Parameters only before Initialize, inputs any time; SIM_BAD_PARAMETER / SIM_NON_FINITE for
  // bad values (nothing is written).
  core::Status Set(std::size_t index, const Value& value) override;
  core::Result<Value> Get(std::size_t index) const override;
  core::Status Initialize(double t0) override;
  core::Result<StepOutcome> Step(double t, double dt) override;
  bool HasDirectFeedthrough(std::size_t) const override { return false; }

  const ProductionLine* line() const { return line_.get(); }

  explicit ProductionLineUnit(std::size_t machines);  // use Create

 private:
  struct Ref {
    int what;           // production_line.cc
    std::size_t index;  // the machine or buffer
  };
  void ApplyInputs();

  std::size_t machines_;
  std::vector<Variable> variables_;
  std::vector<Value> values_;  // parameters' and inputs' current values, by index
  std::vector<Ref> refs_;      // what each variable is
  std::unique_ptr<ProductionLine> line_;
};

// A hospital emergency department. Patients arrive as a Poisson process (rate changeable at any
// time: SetArrivalRate; piecewise constant, so redrawing the next arrival at a change is exact by
// memorylessness), get an acuity level 1 (most urgent) to 3 with the given shares, are triaged by
// one of `nurses` (FIFO; skipped when triage_mean is 0), then wait for one of the doctors in a
// priority queue (lower acuity level first, FIFO within a level; non-preemptive). A patient who
// waits for a doctor longer than his patience (exponential, mean patience_mean; 0 = infinite)
// leaves without being seen. After treatment a patient is admitted with probability
// p_admit[acuity]: he waits for a bed (FIFO, "boarding"), stays for a lognormal length of stay
// (los_mean, los_cv; cv 0: constant) and leaves; the others are discharged. Doctors can change
// at any time (SetDoctors): more start on the queue at once; fewer let the ones treating finish.
// Waiting-time statistics count the patients who arrived at or after start + warmup. All times
// in one unit (seconds in scenarios). Every random quantity has its own stream.
struct HospitalConfig {
  double arrival_rate = 6.0 / 3600;  // patients per time unit; 0: none
  int nurses = 2;
  double triage_mean = 300, triage_cv = 1;                // triage_mean 0: no triage
  int doctors = 4;                                        // >= 0
  std::array<double, 3> acuity_share = {0.1, 0.4, 0.5};   // normalized; sum > 0
  std::array<double, 3> treat_mean = {3600, 2400, 1200};  // > 0
  double treat_cv = 1;                                    // 0 constant, 1 exponential
  std::array<double, 3> p_admit = {0.7, 0.3, 0.05};       // in [0, 1]
  int beds = 36;
  double los_mean = 86400, los_cv = 0.8;  // length of stay in a bed
  double patience_mean = 0;               // 0: nobody leaves without being seen
  double warmup = 0;
  std::uint64_t seed = 1;
};

class HospitalFlow {
 public:
  // SIM_BAD_PARAMETER / SIM_NON_FINITE for values outside the ranges above.
  static core::Result<std::unique_ptr<HospitalFlow>> Create(const HospitalConfig& config,
                                                            double start_time = 0);
  ~HospitalFlow();

  void RunUntil(double until);
  void SetArrivalRate(double rate);  // REQUIRES: finite, >= 0 (the unit checks)
  void SetDoctors(int doctors);      // REQUIRES: >= 0

  double now() const;
  std::uint64_t arrived() const;
  std::uint64_t treated() const;   // treatment finished
  std::uint64_t departed() const;  // discharged after treatment or after the bed stay
  std::uint64_t left_without_being_seen() const;
  int in_system() const;
  int waiting() const;         // for a doctor, now
  double MeanWaiting() const;  // time average since the start
  int triage_waiting() const;  // for a nurse, now
  int doctors_busy() const;
  double DoctorUtilization() const;  // busy doctor time / doctor time on duty
  int beds_occupied() const;
  int boarding() const;             // admitted, waiting for a bed
  double MeanBedOccupancy() const;  // time average of occupied / beds
  // Waiting for a doctor (from the end of triage to the start of treatment) and from the door to
  // the doctor; acuity 0 = all, 1..3 one level. Patients who left without being seen are not in it.
  const Tally& WaitToDoctor(int acuity = 0) const;
  const Tally& DoorToDoctor(int acuity = 0) const;
  std::uint64_t events_run() const;

  struct State;  // hospital_flow.cc
  explicit HospitalFlow(std::unique_ptr<State> state);

 private:
  std::unique_ptr<State> state_;
};

// The hospital flow as a sim::Unit (kind "des", model "hospital_flow"). Variables (k = 1..3):
//   parameters  seed (integer), nurses (integer >= 1), triage_mean (real >= 0; 0: no triage),
//               triage_cv, treat_cv (real >= 0), a<k>.share (real >= 0, normalized),
//               a<k>.treat_mean (real > 0), a<k>.p_admit (real in [0, 1]), beds (integer >= 1),
//               los_mean (real > 0), los_cv (real >= 0), patience_mean (real >= 0; 0: never
//               leave), warmup (real >= 0)
//   inputs      arrival_rate (real >= 0, patients per second), doctors (integer >= 0); also
//               settable before Initialize as start values (scenario "parameters")
//   outputs     patients_in, patients_out, lwbs (left without being seen), in_system, waiting,
//               triage_waiting, doctors_busy, beds_occupied, boarding (integers); mean_waiting,
//               mean_wait_to_doctor, door_to_doctor, a<k>.wait_to_doctor, a<k>.door_to_doctor,
//               doctor_utilization, bed_occupancy (now), mean_bed_occupancy (reals; means of
//               the patients seen so far, 0 before the first)
// Inputs act at the start of the next Step (as for the production line).
class HospitalFlowUnit final : public Unit {
 public:
  static core::Result<std::unique_ptr<HospitalFlowUnit>> Create();

  std::string_view kind() const override { return "des"; }
  const std::vector<Variable>& variables() const override { return variables_; }
  core::Status Set(std::size_t index, const Value& value) override;
  core::Result<Value> Get(std::size_t index) const override;
  core::Status Initialize(double t0) override;
  core::Result<StepOutcome> Step(double t, double dt) override;
  bool HasDirectFeedthrough(std::size_t) const override { return false; }

  const HospitalFlow* flow() const { return flow_.get(); }

  HospitalFlowUnit();  // use Create

 private:
  void ApplyInputs();
  double Real(std::string_view name) const;
  std::int64_t Integer(std::string_view name) const;

  std::vector<Variable> variables_;
  std::vector<Value> values_;  // parameters' and inputs' current values, by index
  std::vector<int> what_;      // what each variable is (hospital_flow.cc)
  std::unique_ptr<HospitalFlow> flow_;
};

}  // namespace doppel::sim::des
