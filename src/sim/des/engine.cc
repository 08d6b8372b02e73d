// The calendar, statistics, resources and the G/G/c queue.
#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <utility>

#include "sim/des/des.h"

namespace doppel::sim::des {

void Tally::Add(double x) {
  ++n_;
  if (n_ == 1) {
    min_ = max_ = x;
  } else {
    min_ = std::min(min_, x);
    max_ = std::max(max_, x);
  }
  const double d = x - mean_;
  mean_ += d / static_cast<double>(n_);
  m2_ += d * (x - mean_);
}

void TimeWeighted::Set(double now, double value) {
  area_ += value_ * (now - last_);
  last_ = now;
  value_ = value;
  max_ = std::max(max_, value);
}

double TimeWeighted::Mean(double now) const {
  const double span = now - start_;
  if (span <= 0) return value_;
  return (area_ + value_ * (now - last_)) / span;
}

namespace {

// Min-heap order: earlier time first; equal times in scheduling order.
struct Later {
  template <typename E>
  bool operator()(const E& a, const E& b) const {
    return a.time != b.time ? a.time > b.time : a.seq > b.seq;
  }
};

}  // namespace

void Simulator::Schedule(double delay, Action action) {
  assert(delay >= 0 && std::isfinite(delay));
  if (!(delay >= 0) || !std::isfinite(delay)) delay = 0;
  heap_.push_back(Entry{now_ + delay, next_seq_++, std::move(action)});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
}

std::uint64_t Simulator::RunUntil(double until) {
  stopped_ = false;
  std::uint64_t ran = 0;
  while (!heap_.empty() && heap_.front().time <= until && !stopped_) {
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    Entry e = std::move(heap_.back());
    heap_.pop_back();
    now_ = e.time;
    ++ran;
    e.action();
  }
  events_run_ += ran;
  if (!stopped_ && std::isfinite(until)) now_ = std::max(now_, until);
  return ran;
}

Resource::Resource(Simulator& sim, std::string name, int capacity)
    : sim_(sim),
      name_(std::move(name)),
      capacity_(capacity),
      queue_len_(sim.now()),
      busy_(sim.now()),
      down_(sim.now()) {}

core::Result<std::unique_ptr<Resource>> Resource::Create(Simulator& sim, std::string name,
                                                         int capacity) {
  if (capacity < 1) {
    return core::Status(
        "SIM_BAD_PARAMETER",
        fmt::format("resource '{}' needs a capacity of at least 1 (got {})", name, capacity));
  }
  return std::make_unique<Resource>(sim, std::move(name), capacity);
}

void Resource::Grant(const Waiting& w) {
  ++in_use_;
  busy_.Set(sim_.now(), in_use_);
  waits_.Add(sim_.now() - w.since);
  w.granted();
}

void Resource::Request(Simulator::Action granted) {
  if (up_ && in_use_ < capacity_ && queue_.empty()) {
    Grant(Waiting{sim_.now(), std::move(granted)});
    return;
  }
  queue_.push_back(Waiting{sim_.now(), std::move(granted)});
  queue_len_.Set(sim_.now(), static_cast<double>(queue_.size()));
}

void Resource::GrantWaiting() {
  while (up_ && in_use_ < capacity_ && !queue_.empty()) {
    Waiting w = std::move(queue_.front());
    queue_.pop_front();
    queue_len_.Set(sim_.now(), static_cast<double>(queue_.size()));
    Grant(w);
  }
}

void Resource::Release() {
  assert(in_use_ > 0);
  --in_use_;
  ++served_;
  busy_.Set(sim_.now(), in_use_);
  GrantWaiting();
}

void Resource::EnableFailures(Distribution time_to_failure, Distribution time_to_repair,
                              RandomStream* rng) {
  ttf_ = time_to_failure;
  ttr_ = time_to_repair;
  rng_ = rng;
  sim_.Schedule(ttf_->Sample(*rng_), [this] { Fail(); });
}

void Resource::Fail() {
  up_ = false;
  ++failures_;
  down_.Set(sim_.now(), 1);
  sim_.Schedule(ttr_->Sample(*rng_), [this] { Repair(); });
}

void Resource::Repair() {
  up_ = true;
  down_.Set(sim_.now(), 0);
  sim_.Schedule(ttf_->Sample(*rng_), [this] { Fail(); });
  GrantWaiting();
}

core::Result<QueueResult> SimulateQueue(const QueueConfig& config) {
  if (config.customers == 0) {
    return core::Status("SIM_BAD_PARAMETER", "a queue simulation needs at least one customer");
  }
  Simulator sim;
  auto server = Resource::Create(sim, "server", config.servers);
  if (!server.ok()) return server.status();
  Resource& res = **server;
  // Separate streams for arrivals and services, so changing one leaves the other's draws alone.
  RandomStream arrivals(StreamSeed(config.seed, 0));
  RandomStream services(StreamSeed(config.seed, 1));
  struct Run {
    Simulator& sim;
    Resource& res;
    const QueueConfig& config;
    RandomStream& arrivals;
    RandomStream& services;
    std::uint64_t arrived = 0;
    std::uint64_t granted = 0;  // FIFO: the k-th grant serves the k-th arrival
    Tally waits;
    void Arrive() {
      const double at = sim.now();
      ++arrived;
      // Two words of capture fit std::function's inline buffer: no allocation per customer.
      res.Request([this, at] {
        if (++granted > config.warmup_customers) waits.Add(sim.now() - at);
        sim.Schedule(config.service.Sample(services), [this] { res.Release(); });
      });
      if (arrived < config.customers) {
        sim.Schedule(config.interarrival.Sample(arrivals), [this] { Arrive(); });
      }
    }
  } run{sim, res, config, arrivals, services, 0, 0, {}};
  sim.Schedule(config.interarrival.Sample(arrivals), [&run] { run.Arrive(); });
  sim.RunUntil(std::numeric_limits<double>::infinity());
  QueueResult r;
  r.mean_wait = run.waits.mean();
  r.customers = run.waits.count();
  r.end_time = sim.now();
  r.mean_queue_length = res.MeanQueueLength();
  r.utilization = res.Utilization();
  r.throughput = r.end_time > 0 ? static_cast<double>(res.served()) / r.end_time : 0;
  r.events = sim.events_run();
  return r;
}

double ErlangCMeanWait(double lambda, double mu, int c) {
  const double a = lambda / mu;  // offered load in Erlangs
  const double rho = a / c;
  double term = 1;  // a^k / k!
  double sum = 0;
  for (int k = 0; k < c; ++k) {
    sum += term;
    term *= a / (k + 1);
  }
  const double tail = term / (1 - rho);  // a^c / c! / (1 - rho)
  const double p_wait = tail / (sum + tail);
  return p_wait / (c * mu - lambda);
}

}  // namespace doppel::sim::des
