// The discrete-event engine: queues against Erlang C, determinism, distributions, failures,
// the production line and its Unit, and the error codes.
#include "sim/des/des.h"

#include <gtest/gtest.h>

#include <cmath>
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

}  // namespace
}  // namespace doppel::sim::des
