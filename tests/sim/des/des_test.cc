// The discrete-event engine: queues against Erlang C, determinism, distributions, failures,
// the production line and its Unit, and the error codes.
#include "sim/des/des.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

namespace doppel::sim::des {
namespace {

QueueConfig MMc(double lambda, double mu, int c, std::uint64_t customers, std::uint64_t seed) {
  QueueConfig q;
  q.interarrival = Distribution::Exponential(1 / lambda).value();
  q.service = Distribution::Exponential(1 / mu).value();
  q.servers = c;
  q.customers = customers;
  q.seed = seed;
  q.warmup_customers = 10000;
  return q;
}

TEST(ErlangC, KnownValues) {
  // M/M/1: Wq = rho / (mu - lambda).
  EXPECT_NEAR(ErlangCMeanWait(0.8, 1, 1), 4.0, 1e-12);
  // M/M/2, lambda = 1, mu = 1 (a = 1, rho = 0.5): P(wait) = 1/3, Wq = 1/3.
  EXPECT_NEAR(ErlangCMeanWait(1, 1, 2), 1.0 / 3, 1e-12);
}

// 10^6 customers (the first 10^4 not counted). The waits of successive customers are strongly
// correlated, so the estimate is noisier than 10^6 samples suggest: measured over seeds 1..20,
// the relative error of Wq had a standard deviation of 1.4% (M/M/1, rho 0.8) and 1.25% (M/M/3,
// rho 0.7), worst 2.4%. 2% is therefore about 1.5 sigma: a fixed seed keeps the test
// deterministic, and another seed could miss 2% for statistical reasons alone. Seeds 1 and 2 are
// simply the first ones (errors +1.6% and +0.7%), not picked.
TEST(Queue, MM1MatchesErlangC) {
  auto r = SimulateQueue(MMc(0.8, 1.0, 1, 1000000, 1));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const double expected = ErlangCMeanWait(0.8, 1.0, 1);
  EXPECT_NEAR(r->mean_wait, expected, 0.02 * expected);
  EXPECT_NEAR(r->utilization, 0.8, 0.01);
  // Little's law on the same run: Lq = lambda Wq.
  EXPECT_NEAR(r->mean_queue_length, 0.8 * r->mean_wait, 0.03 * 0.8 * r->mean_wait);
  EXPECT_EQ(r->customers, 1000000u - 10000u);
}

TEST(Queue, MM3MatchesErlangC) {
  const double mu = 1.0, lambda = 0.7 * 3 * mu;
  auto r = SimulateQueue(MMc(lambda, mu, 3, 1000000, 2));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const double expected = ErlangCMeanWait(lambda, mu, 3);
  EXPECT_NEAR(r->mean_wait, expected, 0.02 * expected);
  EXPECT_NEAR(r->utilization, 0.7, 0.01);
}

TEST(Queue, SameSeedSameResultsOtherSeedOtherResults) {
  auto a = SimulateQueue(MMc(0.9, 1, 1, 20000, 7));
  auto b = SimulateQueue(MMc(0.9, 1, 1, 20000, 7));
  auto c = SimulateQueue(MMc(0.9, 1, 1, 20000, 8));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->mean_wait, b->mean_wait);  // bit for bit
  EXPECT_EQ(a->end_time, b->end_time);
  EXPECT_EQ(a->events, b->events);
  EXPECT_NE(a->mean_wait, c->mean_wait);
}

TEST(Queue, BadParameters) {
  QueueConfig q;
  q.servers = 0;
  EXPECT_EQ(SimulateQueue(q).status().code(), "SIM_BAD_PARAMETER");
  q.servers = -2;
  EXPECT_EQ(SimulateQueue(q).status().code(), "SIM_BAD_PARAMETER");
  q.servers = 1;
  q.customers = 0;
  EXPECT_EQ(SimulateQueue(q).status().code(), "SIM_BAD_PARAMETER");
}

TEST(Distribution, BadParameters) {
  EXPECT_EQ(Distribution::Exponential(-1).status().code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(Distribution::Exponential(0).status().code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(Distribution::Exponential(std::nan("")).status().code(), "SIM_NON_FINITE");
  EXPECT_EQ(Distribution::Constant(-0.5).status().code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(Distribution::Constant(INFINITY).status().code(), "SIM_NON_FINITE");
  EXPECT_EQ(Distribution::Uniform(2, 1).status().code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(Distribution::Uniform(-1, 1).status().code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(Distribution::Triangular(0, 3, 2).status().code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(Distribution::Lognormal(1, -1).status().code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(Distribution::Lognormal(0, 1).status().code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(Distribution::WithMeanAndCv(1, -0.1).status().code(), "SIM_BAD_PARAMETER");
}

TEST(Distribution, SampleMeansAndVariances) {
  struct Case {
    Distribution d;
    double variance;
  };
  const std::vector<Case> cases = {
      {Distribution::Exponential(2).value(), 4},
      {Distribution::Uniform(1, 3).value(), 4.0 / 12},
      {Distribution::Triangular(0, 1, 4).value(), (0 + 1 + 16 - 0 - 0 - 4) / 18.0},
      {Distribution::Lognormal(2, 0.5).value(), 0.25},
      {Distribution::WithMeanAndCv(3, 0.2).value(), 0.36},
      {Distribution::Constant(1.5).value(), 0},
  };
  RandomStream rng(StreamSeed(42, 0));
  for (const auto& c : cases) {
    Tally t;
    for (int i = 0; i < 400000; ++i) t.Add(c.d.Sample(rng));
    const double se = std::sqrt(c.variance / 400000);
    EXPECT_NEAR(t.mean(), c.d.mean(), 5 * se + 1e-12) << static_cast<int>(c.d.kind());
    EXPECT_NEAR(t.variance(), c.variance, 0.03 * c.variance + 1e-12)
        << static_cast<int>(c.d.kind());
    EXPECT_GE(t.min(), 0);
  }
}

TEST(RandomStream, ReproducibleAndStreamsDiffer) {
  RandomStream a(StreamSeed(1, 0)), b(StreamSeed(1, 0)), c(StreamSeed(1, 1));
  for (int i = 0; i < 100; ++i) {
    const double x = a.Uniform01();
    EXPECT_EQ(x, b.Uniform01());
    EXPECT_GT(x, 0);
    EXPECT_LT(x, 1);
    EXPECT_NE(x, c.Uniform01());
  }
  // mt19937_64 is fixed by the standard: its 10000th output from the default seed.
  std::mt19937_64 e;
  e.discard(9999);
  EXPECT_EQ(e(), 9981545732273789042ULL);
}

TEST(Simulator, TiesRunInSchedulingOrder) {
  Simulator sim;
  std::vector<int> order;
  for (int i = 0; i < 50; ++i) sim.Schedule(1.0, [&order, i] { order.push_back(i); });
  sim.Schedule(0.5, [&order] { order.push_back(-1); });
  EXPECT_EQ(sim.RunUntil(2), 51u);
  ASSERT_EQ(order.size(), 51u);
  EXPECT_EQ(order[0], -1);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i + 1], i);
  EXPECT_EQ(sim.now(), 2);
}

TEST(Simulator, RunUntilLeavesLaterEvents) {
  Simulator sim;
  int ran = 0;
  sim.Schedule(1, [&] { ++ran; });
  sim.Schedule(3, [&] { ++ran; });
  sim.RunUntil(2);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(sim.pending(), 1u);
  EXPECT_EQ(sim.now(), 2);
  sim.RunUntil(3);
  EXPECT_EQ(ran, 2);
}

TEST(Resource, ZeroCapacity) {
  Simulator sim;
  EXPECT_EQ(Resource::Create(sim, "r", 0).status().code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(Resource::Create(sim, "r", -1).status().code(), "SIM_BAD_PARAMETER");
}

TEST(Resource, FifoAndCapacity) {
  Simulator sim;
  auto r = Resource::Create(sim, "r", 2).value();
  std::vector<int> granted;
  for (int i = 0; i < 5; ++i) {
    r->Request([&, i] {
      granted.push_back(i);
      sim.Schedule(1, [&] { r->Release(); });
    });
  }
  EXPECT_EQ(granted, (std::vector<int>{0, 1}));
  EXPECT_EQ(r->queue_length(), 3u);
  sim.RunUntil(10);
  EXPECT_EQ(granted, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(r->served(), 5u);
  // Waits: 0, 0, 1, 1, 2.
  EXPECT_DOUBLE_EQ(r->waiting_times().mean(), 4.0 / 5);
  // Busy 2 units for 2 time units, then 1 for 1: 5 unit-times over 10 time units, capacity 2.
  EXPECT_DOUBLE_EQ(r->Utilization(), 5.0 / 20);
}

TEST(Resource, FailuresGiveTheExpectedAvailability) {
  Simulator sim;
  auto r = Resource::Create(sim, "r", 1).value();
  RandomStream rng(StreamSeed(3, 0));
  r->EnableFailures(Distribution::Exponential(9).value(), Distribution::Exponential(1).value(),
                    &rng);
  sim.RunUntil(200000);
  EXPECT_NEAR(r->Availability(), 0.9, 0.01);
  EXPECT_NEAR(static_cast<double>(r->failures()), 200000 / 10.0, 0.05 * 20000);
}

TEST(Resource, NoGrantsWhileDown) {
  Simulator sim;
  auto r = Resource::Create(sim, "r", 1).value();
  RandomStream rng(1);
  // Down at t = 1 for 5 units, then up for a long time.
  r->EnableFailures(Distribution::Constant(1).value(), Distribution::Constant(5).value(), &rng);
  sim.RunUntil(2);
  EXPECT_FALSE(r->up());
  double granted_at = -1;
  r->Request([&] { granted_at = sim.now(); });
  sim.RunUntil(5.5);
  EXPECT_EQ(granted_at, -1);
  sim.RunUntil(6.5);
  EXPECT_DOUBLE_EQ(granted_at, 6);
}

LineConfig Line(int machines, double mean, double cv, int buffer, double mtbf, double mttr,
                std::uint64_t seed) {
  LineConfig c;
  for (int i = 0; i < machines; ++i) {
    MachineConfig m{Distribution::WithMeanAndCv(mean, cv).value(), std::nullopt,
                    Distribution::Exponential(mttr).value()};
    if (mtbf > 0) m.time_to_failure = Distribution::Exponential(mtbf).value();
    c.machines.push_back(m);
  }
  c.buffer_capacities.assign(machines - 1, buffer);
  c.seed = seed;
  return c;
}

TEST(ProductionLine, DeterministicLineRunsAtTheBottleneckRate) {
  LineConfig c = Line(3, 1.0, 0, 2, 0, 1, 1);
  c.machines[1].processing = Distribution::Constant(2.0).value();  // the bottleneck
  auto line = ProductionLine::Create(c).value();
  line->RunUntil(10000);
  EXPECT_NEAR(line->Throughput(), 0.5, 0.001);
  EXPECT_NEAR(line->Machine(1).busy, 1.0, 0.001);
  EXPECT_NEAR(line->Machine(0).blocked, 0.5, 0.001);  // waits for space half of the time
  EXPECT_NEAR(line->Machine(2).starved, 0.5, 0.001);
  EXPECT_EQ(line->BufferLevel(0), 2);  // full before the bottleneck
}

TEST(ProductionLine, SingleMachineWithFailures) {
  // One machine, exponential processing mean 1, up 90% of the time: throughput 0.9.
  auto line = ProductionLine::Create(Line(1, 1.0, 1, 1, 9, 1, 5)).value();
  auto events = line->RunUntil(200000);
  EXPECT_NEAR(line->Throughput(), 0.9, 0.01);
  EXPECT_NEAR(line->Machine(0).down, 0.1, 0.01);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].name, "m1.failure");
  EXPECT_EQ(events[1].name, "m1.repair");
  EXPECT_LT(events[0].time, events[1].time);
  EXPECT_EQ(line->Machine(0).failures, (events.size() + 1) / 2);
}

TEST(ProductionLine, PartsAreConserved) {
  auto line = ProductionLine::Create(Line(5, 1.0, 0.5, 3, 50, 5, 9)).value();
  line->RunUntil(5000);
  // Machine 1 never starves, so it always holds one part: every part it took is out, in a
  // buffer or held by a machine.
  EXPECT_EQ(static_cast<std::uint64_t>(line->Wip()),
            line->Machine(0).parts + 1 - line->parts_out());
  int in_buffers = 0;
  for (std::size_t j = 0; j < 4; ++j) {
    EXPECT_LE(line->BufferLevel(j), 3);
    in_buffers += line->BufferLevel(j);
  }
  EXPECT_LE(in_buffers, line->Wip());
  EXPECT_LE(line->Wip(), in_buffers + 5);
  EXPECT_EQ(line->Machine(4).parts, line->parts_out());
  for (std::size_t i = 0; i < 5; ++i) {
    const MachineStats s = line->Machine(i);
    EXPECT_NEAR(s.busy + s.starved + s.blocked + s.down, 1.0, 1e-9);
    if (i + 1 < 5) {
      EXPECT_GE(s.parts, line->Machine(i + 1).parts);
    }
  }
}

TEST(ProductionLine, BadConfigs) {
  LineConfig none;
  EXPECT_EQ(ProductionLine::Create(none).status().code(), "SIM_BAD_PARAMETER");
  LineConfig c = Line(3, 1, 1, 2, 0, 1, 1);
  c.buffer_capacities[1] = 0;
  EXPECT_EQ(ProductionLine::Create(c).status().code(), "SIM_BAD_PARAMETER");
  c.buffer_capacities.pop_back();
  EXPECT_EQ(ProductionLine::Create(c).status().code(), "SIM_BAD_PARAMETER");
}

std::size_t Index(const Unit& u, std::string_view name) {
  auto i = u.Find(name);
  EXPECT_TRUE(i.ok()) << name;
  return i.ok() ? *i : 0;
}

TEST(ProductionLineUnit, StepsAndOutputs) {
  auto unit = ProductionLineUnit::Create(2).value();
  EXPECT_EQ(unit->kind(), "des");
  ASSERT_TRUE(unit->Set(Index(*unit, "m1.process_mean"), 1.0).ok());
  ASSERT_TRUE(unit->Set(Index(*unit, "m2.process_mean"), 0.5).ok());
  ASSERT_TRUE(unit->Set(Index(*unit, "m2.mtbf"), 100.0).ok());
  ASSERT_TRUE(unit->Set(Index(*unit, "m2.mttr"), 10.0).ok());
  ASSERT_TRUE(unit->Set(Index(*unit, "b1.capacity"), std::int64_t{10}).ok());
  ASSERT_TRUE(unit->Set(Index(*unit, "seed"), std::int64_t{77}).ok());
  ASSERT_TRUE(unit->Initialize(0).ok());
  double t = 0;
  std::size_t failures = 0;
  for (int i = 0; i < 100; ++i) {
    auto out = unit->Step(t, 100);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    for (const auto& e : out->events) {
      EXPECT_GE(e.time, t);
      EXPECT_LE(e.time, t + 100);
      failures += e.name == "m2.failure";
    }
    t = out->time_reached;
  }
  EXPECT_NEAR(static_cast<double>(failures), 10000 / 110.0, 30);
  const double throughput = std::get<double>(*unit->Get(Index(*unit, "throughput")));
  EXPECT_GT(throughput, 0.8);
  EXPECT_LT(throughput, 1.0);
  const auto parts = std::get<std::int64_t>(*unit->Get(Index(*unit, "parts_out")));
  EXPECT_NEAR(static_cast<double>(parts), throughput * 10000, 1e-6);
  const double avail = std::get<double>(*unit->Get(Index(*unit, "m2.availability")));
  EXPECT_NEAR(avail, 100.0 / 110, 0.03);
  const auto level = std::get<std::int64_t>(*unit->Get(Index(*unit, "b1.level")));
  EXPECT_GE(level, 0);
  EXPECT_LE(level, 10);
}

TEST(ProductionLineUnit, SameSeedSameOutputs) {
  auto run = [](std::int64_t seed) {
    auto unit = ProductionLineUnit::Create(4).value();
    EXPECT_TRUE(unit->Set(Index(*unit, "seed"), seed).ok());
    EXPECT_TRUE(unit->Set(Index(*unit, "m3.mtbf"), 50.0).ok());
    EXPECT_TRUE(unit->Initialize(0).ok());
    EXPECT_TRUE(unit->Step(0, 5000).ok());
    std::vector<Value> out;
    for (std::size_t i = 0; i < unit->variables().size(); ++i) out.push_back(*unit->Get(i));
    return out;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

TEST(ProductionLineUnit, BadParameters) {
  EXPECT_EQ(ProductionLineUnit::Create(0).status().code(), "SIM_BAD_PARAMETER");
  auto unit = ProductionLineUnit::Create(2).value();
  const std::size_t mean = Index(*unit, "m1.process_mean");
  EXPECT_EQ(unit->Set(mean, -1.0).code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(unit->Set(mean, 0.0).code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(unit->Set(mean, std::nan("")).code(), "SIM_NON_FINITE");
  EXPECT_EQ(unit->Set(mean, std::int64_t{1}).code(), "SIM_WRONG_TYPE");
  EXPECT_EQ(std::get<double>(*unit->Get(mean)), 1.0);  // nothing was written
  EXPECT_EQ(unit->Set(Index(*unit, "m1.mtbf"), -5.0).code(), "SIM_BAD_PARAMETER");
  EXPECT_TRUE(unit->Set(Index(*unit, "m1.mtbf"), 0.0).ok());  // never fails
  EXPECT_EQ(unit->Set(Index(*unit, "m1.mttr"), 0.0).code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(unit->Set(Index(*unit, "m1.process_cv"), -0.5).code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(unit->Set(Index(*unit, "b1.capacity"), std::int64_t{0}).code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(unit->Set(Index(*unit, "b1.capacity"), 3.0).code(), "SIM_WRONG_TYPE");
  EXPECT_EQ(unit->Set(Index(*unit, "throughput"), 1.0).code(), "SIM_BAD_STATE");
  EXPECT_EQ(unit->Set(999, 1.0).code(), "SIM_UNKNOWN_VARIABLE");
  EXPECT_EQ(unit->Step(0, 1).status().code(), "SIM_BAD_STATE");
  ASSERT_TRUE(unit->Initialize(0).ok());
  EXPECT_EQ(unit->Set(mean, 2.0).code(), "SIM_BAD_STATE");
  EXPECT_EQ(unit->Step(0, -1).status().code(), "SIM_BAD_STEP");
  EXPECT_EQ(unit->Step(3, 1).status().code(), "SIM_BAD_STEP");
  EXPECT_EQ(unit->Initialize(0).code(), "SIM_BAD_STATE");
}

// ---- injected failures and speed ----

// Three machines with constant times 1, 2, 1 s and buffers of 2: machine 2 is the bottleneck, busy
// all the time once the line is full. Part k (k >= 1) leaves machine 2 at 1 + 2k and the line at
// 2 + 2k, so by T the line has made floor((T - 2) / 2) parts: 14399 in 8 h.
LineConfig BottleneckLine() {
  LineConfig c = Line(3, 1.0, 0, 2, 0, 1, 1);
  c.machines[1].processing = Distribution::Constant(2.0).value();
  return c;
}

TEST(ProductionLine, ForcedFailureOfTheBottleneckCostsItsDurationTimesItsRate) {
  auto base = ProductionLine::Create(BottleneckLine()).value();
  base->RunUntil(28800);
  EXPECT_EQ(base->parts_out(), 14399u);

  // Machine 2 forced down at 01:00 for 45 min. It is 1 s into a part then; the part resumes
  // after and every later departure moves by 2700 s: parts(28800) = parts_without(26100).
  auto line = ProductionLine::Create(BottleneckLine()).value();
  EXPECT_TRUE(line->RunUntil(3600).empty());
  line->ForceDown(1, true);
  line->ForceDown(1, true);  // a no-op: already forced
  EXPECT_EQ(line->Machine(1).state, MachineStats::kDown);
  auto during = line->RunUntil(6300);
  line->ForceDown(1, false);
  EXPECT_EQ(line->Machine(1).state, MachineStats::kBusy);
  auto after = line->RunUntil(28800);
  EXPECT_EQ(line->parts_out(), 13049u);
  EXPECT_EQ(base->parts_out() - line->parts_out(), 1350u);  // 2700 s at 0.5 parts/s
  EXPECT_EQ(line->Machine(1).down_time, 2700.0);
  EXPECT_EQ(line->Machine(1).forced_downs, 1u);
  EXPECT_EQ(line->Machine(1).failures, 0u);
  EXPECT_NEAR(line->Machine(1).down, 2700.0 / 28800, 1e-12);
  // Downstream starves while it is down: machine 3 idles all of the 2700 s instead of half.
  EXPECT_NEAR(line->Machine(2).starved - base->Machine(2).starved, 1350.0 / 28800, 1e-9);
  ASSERT_EQ(during.size(), 1u);
  EXPECT_EQ(during[0].name, "m2.forced_down");
  EXPECT_EQ(during[0].time, 3600);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].name, "m2.forced_up");
  EXPECT_EQ(after[0].time, 6300);
}

TEST(ProductionLine, ForcedDownAndRandomFailuresOverlap) {
  // One machine failing at 10 after each repair, repairs of 5: down [10, 15), [20, 25), ...
  LineConfig c = Line(1, 1.0, 0, 1, 0, 1, 1);
  c.machines[0].time_to_failure = Distribution::Constant(5).value();
  c.machines[0].time_to_repair = Distribution::Constant(5).value();
  auto line = ProductionLine::Create(c).value();
  line->RunUntil(12);  // failed at 5, repaired at 10, up
  line->ForceDown(0, true);
  line->RunUntil(17);  // the failure at 15 comes while forced: still down
  line->ForceDown(0, false);
  EXPECT_EQ(line->Machine(0).state, MachineStats::kDown);  // the repair (at 20) still holds it
  line->RunUntil(20);
  EXPECT_EQ(line->Machine(0).state, MachineStats::kBusy);
  // Down [5, 10) and [12, 20).
  EXPECT_EQ(line->Machine(0).down_time, 13.0);
  EXPECT_EQ(line->Machine(0).failures, 2u);
  // Up [0, 5), [10, 12) with constant 1 s parts: 5 + 2 parts.
  EXPECT_EQ(line->parts_out(), 7u);
}

TEST(ProductionLine, SpeedScalesTheRateFromNowOn) {
  // Machine 2 doubles its speed at 01:00, 1 s into a 2 s part: it finishes at 3600.5, then every
  // machine takes 1 s. 1799 parts by 3600, then one at 3601.5 + j for j = 0..25198.
  auto line = ProductionLine::Create(BottleneckLine()).value();
  line->RunUntil(3600);
  EXPECT_EQ(line->parts_out(), 1799u);
  ASSERT_TRUE(line->SetSpeed(1, 2.0).ok());
  line->RunUntil(28800);
  EXPECT_EQ(line->parts_out(), 1799u + 25199u);
  EXPECT_EQ(line->SetSpeed(1, 0.0).code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(line->SetSpeed(1, std::nan("")).code(), "SIM_NON_FINITE");
}

std::unique_ptr<ProductionLineUnit> BottleneckUnit() {
  auto unit = ProductionLineUnit::Create(3).value();
  for (int i = 1; i <= 3; ++i) {
    const std::string m = "m" + std::to_string(i);
    EXPECT_TRUE(unit->Set(Index(*unit, m + ".process_mean"), i == 2 ? 2.0 : 1.0).ok());
    EXPECT_TRUE(unit->Set(Index(*unit, m + ".process_cv"), 0.0).ok());
  }
  EXPECT_TRUE(unit->Set(Index(*unit, "b1.capacity"), std::int64_t{2}).ok());
  EXPECT_TRUE(unit->Set(Index(*unit, "b2.capacity"), std::int64_t{2}).ok());
  return unit;
}

TEST(ProductionLineUnit, DownInputActsAtTheNextStep) {
  auto unit = BottleneckUnit();
  const std::size_t down = Index(*unit, "m2.down");
  EXPECT_EQ(unit->variables()[down].causality, Causality::kInput);
  EXPECT_FALSE(unit->HasDirectFeedthrough(Index(*unit, "parts_out")));
  ASSERT_TRUE(unit->Initialize(0).ok());
  double t = 0;
  std::vector<Event> events;
  for (int k = 0; k < 480; ++k) {  // 8 h in steps of 60 s
    if (t == 3600) {
      ASSERT_TRUE(unit->Set(down, 1.0).ok());
    }
    if (t == 6300) {
      ASSERT_TRUE(unit->Set(down, 0.0).ok());
    }
    auto out = unit->Step(t, 60);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    events.insert(events.end(), out->events.begin(), out->events.end());
    t = out->time_reached;
    if (t == 3660) {
      EXPECT_EQ(std::get<std::int64_t>(*unit->Get(Index(*unit, "m2.state"))), 2);
      EXPECT_EQ(std::get<double>(*unit->Get(Index(*unit, "m2.down_time"))), 60.0);
      EXPECT_EQ(std::get<std::int64_t>(*unit->Get(Index(*unit, "m3.state"))), 0);  // starved
      EXPECT_EQ(std::get<std::int64_t>(*unit->Get(Index(*unit, "m1.state"))), 3);  // blocked
    }
  }
  EXPECT_EQ(std::get<std::int64_t>(*unit->Get(Index(*unit, "parts_out"))), 13049);
  EXPECT_EQ(std::get<double>(*unit->Get(Index(*unit, "m2.down_time"))), 2700.0);
  EXPECT_EQ(std::get<double>(*unit->Get(Index(*unit, "m1.down_time"))), 0.0);
  EXPECT_EQ(std::get<std::int64_t>(*unit->Get(Index(*unit, "m2.state"))), 1);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].name, "m2.forced_down");
  EXPECT_EQ(events[0].time, 3600);
  EXPECT_EQ(events[1].time, 6300);
}

TEST(ProductionLineUnit, InputsSetBeforeInitializeActFromTheStart) {
  auto unit = BottleneckUnit();
  ASSERT_TRUE(unit->Set(Index(*unit, "m2.speed"), 2.0).ok());  // every machine takes 1 s
  ASSERT_TRUE(unit->Initialize(0).ok());
  ASSERT_TRUE(unit->Step(0, 100).ok());
  // Part k leaves machine 3 at k + 2: parts at 3..100.
  EXPECT_EQ(std::get<std::int64_t>(*unit->Get(Index(*unit, "parts_out"))), 98);
  EXPECT_EQ(unit->Set(Index(*unit, "m2.speed"), 0.0).code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(unit->Set(Index(*unit, "m2.speed"), -1.0).code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(unit->Set(Index(*unit, "m2.down"), INFINITY).code(), "SIM_NON_FINITE");
  EXPECT_EQ(unit->Set(Index(*unit, "m2.down"), true).code(), "SIM_WRONG_TYPE");
  EXPECT_EQ(std::get<double>(*unit->Get(Index(*unit, "m2.speed"))), 2.0);  // nothing written
  EXPECT_EQ(unit->Set(Index(*unit, "m2.down_time"), 1.0).code(), "SIM_BAD_STATE");
}

// ---- the hospital flow ----

// One stage: no triage, one acuity level, nobody admitted, exponential treatment: M/M/c.
HospitalConfig MMcHospital(double lambda, double mu, int c, std::uint64_t seed) {
  HospitalConfig h;
  h.arrival_rate = lambda;
  h.triage_mean = 0;
  h.doctors = c;
  h.acuity_share = {0, 0, 1};
  h.treat_mean = {1 / mu, 1 / mu, 1 / mu};
  h.treat_cv = 1;
  h.p_admit = {0, 0, 0};
  h.seed = seed;
  return h;
}

// About 10^6 patients (lambda T = 2.1 * 476190); the first ~10^4 (t < 5000) not counted. The
// tolerance is the acceptance criterion's 2%, which is about 1.6 standard deviations of this
// estimate at this load (see Queue.MM1MatchesErlangC); seed 1 is the first, not a pick.
TEST(HospitalFlow, SingleStageIsAnMMcQueueAndMatchesErlangC) {
  const double mu = 1.0, lambda = 0.7 * 3 * mu;
  HospitalConfig h = MMcHospital(lambda, mu, 3, 1);
  h.warmup = 5000;
  auto flow = HospitalFlow::Create(h).value();
  flow->RunUntil(476190);
  const double expected = ErlangCMeanWait(lambda, mu, 3);
  const Tally& w = flow->WaitToDoctor();
  EXPECT_GT(w.count(), 980000u);
  EXPECT_LT(w.count(), 1010000u);
  EXPECT_NEAR(w.mean(), expected, 0.02 * expected)
      << "simulated " << w.mean() << " Erlang C " << expected << " patients " << w.count();
  EXPECT_EQ(flow->DoorToDoctor().mean(), w.mean());  // no triage
  EXPECT_EQ(flow->WaitToDoctor(3).count(), w.count());
  EXPECT_EQ(flow->WaitToDoctor(1).count(), 0u);
  EXPECT_NEAR(flow->DoctorUtilization(), 0.7, 0.01);
  // Little's law: Lq = lambda Wq.
  EXPECT_NEAR(flow->MeanWaiting(), lambda * w.mean(), 0.03 * lambda * w.mean());
  EXPECT_EQ(flow->arrived(), flow->departed() + static_cast<std::uint64_t>(flow->in_system()));
  EXPECT_EQ(flow->left_without_being_seen(), 0u);
}

TEST(HospitalFlow, UrgentPatientsWaitLessUnderLoad) {
  // Three levels in equal shares, the same treatment time, 90% load on 2 doctors.
  HospitalConfig h = MMcHospital(1.8, 1.0, 2, 4);
  h.acuity_share = {1, 1, 1};
  auto flow = HospitalFlow::Create(h).value();
  flow->RunUntil(200000);
  const double w1 = flow->WaitToDoctor(1).mean(), w2 = flow->WaitToDoctor(2).mean(),
               w3 = flow->WaitToDoctor(3).mean();
  EXPECT_LT(w1, w2);
  EXPECT_LT(w2, w3);
  EXPECT_LT(3 * w1, w3);
  // Non-preemptive priorities conserve work: the mean over all patients is still M/M/2's.
  const double all = ErlangCMeanWait(1.8, 1.0, 2);
  EXPECT_NEAR(flow->WaitToDoctor().mean(), all, 0.1 * all);
  for (int k = 1; k <= 3; ++k) {
    EXPECT_NEAR(static_cast<double>(flow->WaitToDoctor(k).count()),
                flow->WaitToDoctor().count() / 3.0, 0.02 * flow->WaitToDoctor().count());
  }
}

TEST(HospitalFlow, ASurgeRaisesWaitingAndMoreDoctorsBringItDown) {
  HospitalConfig h;  // the defaults: triage, three levels, beds
  h.seed = 3;
  auto flow = HospitalFlow::Create(h).value();
  flow->RunUntil(7 * 86400.0);
  const double before = flow->MeanWaiting();
  const int waiting_before = flow->waiting();
  flow->SetArrivalRate(2 * h.arrival_rate);  // load 1.6 on the doctors: the queue grows
  flow->RunUntil(7 * 86400.0 + 6 * 3600);
  const int during = flow->waiting();
  EXPECT_GT(during, waiting_before + 10);
  EXPECT_GT(flow->MeanWaiting(), before);
  flow->SetDoctors(12);  // the queue clears
  flow->RunUntil(7 * 86400.0 + 12 * 3600);
  EXPECT_LT(flow->waiting(), during / 4);
  EXPECT_GT(flow->beds_occupied(), 0);
  EXPECT_GE(flow->treated(), flow->departed());
}

TEST(HospitalFlow, ImpatientPatientsLeaveWithoutBeingSeen) {
  HospitalConfig h = MMcHospital(1.2, 1.0, 1, 5);  // overloaded without reneging
  h.patience_mean = 2;
  auto flow = HospitalFlow::Create(h).value();
  flow->RunUntil(100000);
  const double lwbs = static_cast<double>(flow->left_without_being_seen());
  EXPECT_GT(lwbs, 0.05 * static_cast<double>(flow->arrived()));
  // Everybody is accounted for.
  EXPECT_EQ(flow->arrived(), flow->departed() + flow->left_without_being_seen() +
                                 static_cast<std::uint64_t>(flow->in_system()));
  EXPECT_LT(flow->waiting(), 40);  // stable thanks to reneging
}

TEST(HospitalFlow, SameSeedSameRunAndBadConfigs) {
  auto run = [](std::uint64_t seed) {
    HospitalConfig h;
    h.seed = seed;
    h.patience_mean = 3600;
    auto f = HospitalFlow::Create(h).value();
    f->RunUntil(30 * 86400.0);
    return std::vector<double>{f->DoorToDoctor().mean(), f->MeanBedOccupancy(),
                               static_cast<double>(f->departed()),
                               static_cast<double>(f->left_without_being_seen())};
  };
  EXPECT_EQ(run(9), run(9));
  EXPECT_NE(run(9), run(10));
  HospitalConfig h;
  h.nurses = 0;
  EXPECT_EQ(HospitalFlow::Create(h).status().code(), "SIM_BAD_PARAMETER");
  h = {};
  h.acuity_share = {0, 0, 0};
  EXPECT_EQ(HospitalFlow::Create(h).status().code(), "SIM_BAD_PARAMETER");
  h = {};
  h.p_admit[1] = 1.5;
  EXPECT_EQ(HospitalFlow::Create(h).status().code(), "SIM_BAD_PARAMETER");
  h = {};
  h.arrival_rate = std::nan("");
  EXPECT_EQ(HospitalFlow::Create(h).status().code(), "SIM_NON_FINITE");
}

TEST(HospitalFlowUnit, InputsDriveTheFlowAndBadValuesAreRefused) {
  auto run = [](bool surge) {
    auto unit = HospitalFlowUnit::Create().value();
    EXPECT_EQ(unit->kind(), "des");
    EXPECT_TRUE(unit->Set(Index(*unit, "seed"), std::int64_t{12}).ok());
    EXPECT_TRUE(unit->Set(Index(*unit, "arrival_rate"), 6.0 / 3600).ok());
    EXPECT_TRUE(unit->Initialize(0).ok());
    double t = 0;
    for (int k = 0; k < 48; ++k) {  // two days in steps of an hour; a surge in hours 30..35
      if (surge && (k == 30 || k == 36)) {
        const double rate = (k == 30 ? 15.0 : 6.0) / 3600;
        EXPECT_TRUE(unit->Set(Index(*unit, "arrival_rate"), rate).ok());
      }
      auto out = unit->Step(t, 3600);
      EXPECT_TRUE(out.ok());
      t = out->time_reached;
    }
    std::vector<double> v;
    for (const char* name : {"mean_waiting", "door_to_doctor", "a3.door_to_doctor"}) {
      v.push_back(std::get<double>(*unit->Get(Index(*unit, name))));
    }
    v.push_back(
        static_cast<double>(std::get<std::int64_t>(*unit->Get(Index(*unit, "patients_in")))));
    return v;
  };
  const auto base = run(false), surge = run(true);
  EXPECT_GT(surge[0], base[0]);
  EXPECT_GT(surge[1], base[1]);
  EXPECT_GT(surge[2], base[2]);
  EXPECT_GT(surge[3], base[3] + 30);  // about 54 more patients
  auto unit = HospitalFlowUnit::Create().value();
  EXPECT_EQ(unit->Set(Index(*unit, "arrival_rate"), -1.0).code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(unit->Set(Index(*unit, "doctors"), std::int64_t{-1}).code(), "SIM_BAD_PARAMETER");
  EXPECT_TRUE(unit->Set(Index(*unit, "doctors"), std::int64_t{0}).ok());
  EXPECT_EQ(unit->Set(Index(*unit, "nurses"), std::int64_t{0}).code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(unit->Set(Index(*unit, "a1.p_admit"), 1.1).code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(unit->Set(Index(*unit, "a1.treat_mean"), 0.0).code(), "SIM_BAD_PARAMETER");
  EXPECT_EQ(unit->Set(Index(*unit, "los_mean"), INFINITY).code(), "SIM_NON_FINITE");
  EXPECT_EQ(unit->Set(Index(*unit, "beds"), 3.0).code(), "SIM_WRONG_TYPE");
  EXPECT_EQ(unit->Set(Index(*unit, "waiting"), std::int64_t{1}).code(), "SIM_BAD_STATE");
  EXPECT_TRUE(unit->Set(Index(*unit, "seed"), std::int64_t{1} << 40).ok());  // Monte Carlo seeds
  ASSERT_TRUE(unit->Initialize(0).ok());
  EXPECT_EQ(unit->Set(Index(*unit, "beds"), std::int64_t{3}).code(), "SIM_BAD_STATE");
  EXPECT_TRUE(unit->Set(Index(*unit, "doctors"), std::int64_t{5}).ok());  // inputs: any time
}

}  // namespace
}  // namespace doppel::sim::des
