#include "sync/sync_quality.h"

#include <algorithm>
#include <bit>
#include <boost/json.hpp>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <utility>

#include "core/time.h"
#include "twin/change_feed.h"
#include "twin/twin_graph.h"

namespace doppel::sync {

namespace json = boost::json;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// ---- LagHistogram ----------------------------------------------------------------------------

std::size_t LagHistogram::BucketOf(std::uint64_t micros) {
  if (micros < 16) return static_cast<std::size_t>(micros);
  int e = std::bit_width(micros) - 1;  // >= 4
  if (e > 40) return kBuckets - 1;
  const std::uint64_t sub = (micros >> (e - kSubBits)) & ((1u << kSubBits) - 1);
  return 16 + static_cast<std::size_t>(e - 4) * (1u << kSubBits) + static_cast<std::size_t>(sub);
}

double LagHistogram::BucketValue(std::size_t b) {
  if (b < 16) return static_cast<double>(b);
  const std::size_t k = b - 16;
  const int e = static_cast<int>(k >> kSubBits) + 4;
  const std::uint64_t sub = k & ((1u << kSubBits) - 1);
  const double width = std::ldexp(1.0, e - kSubBits);
  const double lo = static_cast<double>((1u << kSubBits) + sub) * width;
  return lo + width / 2;
}

void LagHistogram::Merge(const LagHistogram& other) {
  for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
}

void LagHistogram::Clear() {
  counts_.fill(0);
  count_ = 0;
}

std::optional<double> LagHistogram::Quantile(double q) const {
  if (count_ == 0) return std::nullopt;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return BucketValue(i);
  }
  return BucketValue(kBuckets - 1);
}

const char* FreshStateName(FreshState s) {
  switch (s) {
    case FreshState::kFresh:
      return "fresh";
    case FreshState::kStale:
      return "stale";
    case FreshState::kUnknown:
      return "unknown";
  }
  return "unknown";
}

std::optional<FreshState> ParseFreshState(std::string_view s) {
  if (s == "fresh") return FreshState::kFresh;
  if (s == "stale") return FreshState::kStale;
  if (s == "unknown") return FreshState::kUnknown;
  return std::nullopt;
}

// ---- state -----------------------------------------------------------------------------------

namespace {

constexpr std::size_t kShards = 64;
constexpr std::size_t kSlots = 10;  // completeness window = kSlots × completeness_slot
constexpr std::size_t kGaps = 16;   // inter-arrival gaps kept for the inferred interval

std::int64_t Micros(SyncClock::time_point t) {
  return duration_cast<microseconds>(t.time_since_epoch()).count();
}

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Lags of the current and the previous window (aligned on multiples of the window length).
struct WindowedLag {
  std::array<std::int64_t, 2> gen{-1, -1};
  std::array<LagHistogram, 2> h;

  void Add(std::int64_t g, std::uint64_t micros) {
    const std::size_t slot = static_cast<std::size_t>(g & 1);
    if (gen[slot] < g) {
      h[slot].Clear();
      gen[slot] = g;
    } else if (gen[slot] > g) {
      return;  // a straggler from two windows ago: out of every window shown
    }
    h[slot].Add(micros);
  }
  void CollectInto(std::int64_t g, LagHistogram* out) const {
    for (std::size_t i = 0; i < 2; ++i) {
      if (gen[i] == g || gen[i] == g - 1) out->Merge(h[i]);
    }
  }
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

void AddCounters(SyncCounters* to, const SyncCounters& from) {
  to->received += from.received;
  to->accepted += from.accepted;
  to->applied += from.applied;
  to->telemetry += from.telemetry;
  to->superseded += from.superseded;
  to->out_of_order += from.out_of_order;
  to->duplicates += from.duplicates;
  to->clock_skew += from.clock_skew;
  to->rejected += from.rejected;
  for (const auto& [code, n] : from.rejected_by_code) to->rejected_by_code[code] += n;
}

}  // namespace

struct SyncTracker::TwinState {
  SyncCounters c;
  std::unique_ptr<WindowedLag> lag;  // allocated with the first lag
  std::optional<SyncClock::time_point> newest_source, last_arrival, first_sample, last_sample;
  std::array<std::int64_t, kGaps> gaps_us{};
  std::size_t ngaps = 0, gpos = 0;
  std::optional<milliseconds> configured;
  std::array<std::int64_t, kSlots> slot_id{};
  std::array<std::uint32_t, kSlots> slot_count{};
  FreshState published = FreshState::kUnknown;
  std::optional<std::int64_t> divergence;

  TwinState() { slot_id.fill(std::numeric_limits<std::int64_t>::min()); }
};

struct SyncTracker::Shard {
  mutable std::mutex mu;
  std::unordered_map<std::string, std::unique_ptr<TwinState>, StringHash, std::equal_to<>> twins;
  SyncCounters overall;
  WindowedLag lag;
  double lag_sum_seconds = 0;
  std::uint64_t lag_count = 0;
};

namespace {

struct Evaluation {
  std::optional<milliseconds> interval;
  const char* source = "";
  std::optional<milliseconds> age;
  FreshState state = FreshState::kUnknown;
};

}  // namespace

SyncTracker::SyncTracker(SyncOptions options)
    : options_(std::move(options)), shards_(std::make_unique<Shard[]>(kShards)) {
  if (!options_.clock) options_.clock = [] { return SyncClock::now(); };
  if (options_.lag_window.count() <= 0) options_.lag_window = std::chrono::seconds(60);
  if (options_.completeness_slot.count() <= 0)
    options_.completeness_slot = std::chrono::seconds(30);
  if (!(options_.stale_factor > 0)) options_.stale_factor = 3.0;
}

SyncTracker::~SyncTracker() { Stop(); }

SyncClock::time_point SyncTracker::Now() const { return options_.clock(); }

SyncTracker::Shard& SyncTracker::ShardOf(std::string_view twin) const {
  return shards_[std::hash<std::string_view>{}(twin) % kShards];
}

bool SyncTracker::TwinExists(std::string_view twin) const {
  if (twin.empty()) return false;
  return options_.graph == nullptr || options_.graph->FindTwin(twin) != nullptr;
}

SyncTracker::TwinState* SyncTracker::Find(Shard& shard, std::string_view twin) const {
  auto it = shard.twins.find(twin);
  return it == shard.twins.end() ? nullptr : it->second.get();
}

void SyncTracker::Record(std::string_view twin, std::span<const Observation> observations,
                         SyncClock::time_point applied) {
  if (observations.empty()) return;
  Shard& shard = ShardOf(twin);
  const std::int64_t applied_us = Micros(applied);
  const std::int64_t gen =
      FloorDiv(applied_us, duration_cast<microseconds>(options_.lag_window).count());
  const std::int64_t slot_len = duration_cast<microseconds>(options_.completeness_slot).count();
  std::lock_guard lock(shard.mu);
  TwinState* s = Find(shard, twin);
  if (s == nullptr) {
    // The Ingestor only accepts readings of existing twins: no graph lookup needed.
    s = shard.twins.emplace(std::string(twin), std::make_unique<TwinState>()).first->second.get();
  }
  if (!s->lag) s->lag = std::make_unique<WindowedLag>();
  s->last_arrival = s->last_arrival ? std::max(*s->last_arrival, applied) : applied;
  SyncCounters& c = s->c;
  SyncCounters& o = shard.overall;
  for (const Observation& ob : observations) {
    ++c.received;
    ++o.received;
    ++c.accepted;
    ++o.accepted;
    switch (ob.outcome) {
      case ReadingOutcome::kApplied:
        ++c.applied;
        ++o.applied;
        break;
      case ReadingOutcome::kTelemetry:
        ++c.telemetry;
        ++o.telemetry;
        break;
      case ReadingOutcome::kSuperseded:
        ++c.superseded;
        ++o.superseded;
        break;
      case ReadingOutcome::kOutOfOrder:
        ++c.out_of_order;
        ++o.out_of_order;
        break;
      case ReadingOutcome::kDuplicate:
        ++c.duplicates;
        ++o.duplicates;
        break;
    }
    if (ob.outcome == ReadingOutcome::kDuplicate) continue;
    // Lag.
    const std::int64_t src_us = Micros(ob.source_time);
    std::int64_t lag = applied_us - src_us;
    if (lag < 0) {
      ++c.clock_skew;
      ++o.clock_skew;
      lag = 0;
    }
    s->lag->Add(gen, static_cast<std::uint64_t>(lag));
    shard.lag.Add(gen, static_cast<std::uint64_t>(lag));
    shard.lag_sum_seconds += static_cast<double>(lag) / 1e6;
    ++shard.lag_count;
    // Freshness and the inferred interval.
    if (!s->newest_source) {
      s->newest_source = ob.source_time;
    } else if (ob.source_time > *s->newest_source) {
      s->gaps_us[s->gpos] = Micros(ob.source_time) - Micros(*s->newest_source);
      s->gpos = (s->gpos + 1) % kGaps;
      s->ngaps = std::min(s->ngaps + 1, kGaps);
      s->newest_source = ob.source_time;
    }
    // Completeness: samples (consecutive distinct source times) by source-time slot.
    if (s->last_sample && *s->last_sample == ob.source_time) continue;
    s->last_sample = ob.source_time;
    if (!s->first_sample || ob.source_time < *s->first_sample) s->first_sample = ob.source_time;
    const std::int64_t slot = FloorDiv(src_us, slot_len);
    const auto idx = static_cast<std::size_t>(
        ((slot % static_cast<std::int64_t>(kSlots)) + static_cast<std::int64_t>(kSlots)) %
        static_cast<std::int64_t>(kSlots));
    if (s->slot_id[idx] < slot) {
      s->slot_id[idx] = slot;
      s->slot_count[idx] = 0;
    }
    if (s->slot_id[idx] == slot) ++s->slot_count[idx];
  }
}

void SyncTracker::RecordRejected(std::string_view twin, std::string_view code) {
  // A twin that is not tracked yet gets an entry only if it exists: checked without the shard
  // lock (the graph's own locks are never taken under ours).
  const bool no_twin = twin.empty() || code == "INGEST_UNKNOWN_TWIN";
  Shard& shard = ShardOf(twin);
  bool create = false;
  if (!no_twin) {
    bool tracked = false;
    {
      std::lock_guard lock(shard.mu);
      tracked = Find(shard, twin) != nullptr;
    }
    create = !tracked && TwinExists(twin);
  }
  std::lock_guard lock(shard.mu);
  auto bump = [&](SyncCounters& c) {
    ++c.received;
    ++c.rejected;
    auto it = c.rejected_by_code.find(code);
    if (it == c.rejected_by_code.end()) {
      c.rejected_by_code.emplace(std::string(code), 1);
    } else {
      ++it->second;
    }
  };
  bump(shard.overall);
  if (no_twin) return;
  TwinState* s = Find(shard, twin);
  if (s == nullptr && create) {
    s = shard.twins.emplace(std::string(twin), std::make_unique<TwinState>()).first->second.get();
  }
  if (s != nullptr) bump(s->c);
}

void SyncTracker::SetExpectedInterval(std::string_view twin, milliseconds interval) {
  if (interval.count() <= 0) return;
  Shard& shard = ShardOf(twin);
  std::lock_guard lock(shard.mu);
  if (TwinState* s = Find(shard, twin)) s->configured = interval;
}

void SyncTracker::SetDivergence(std::string_view twin, std::int64_t count) {
  Shard& shard = ShardOf(twin);
  {
    std::lock_guard lock(shard.mu);
    if (TwinState* s = Find(shard, twin)) {
      s->divergence = count;
      return;
    }
  }
  if (!TwinExists(twin)) return;
  std::lock_guard lock(shard.mu);
  TwinState* s = Find(shard, twin);
  if (s == nullptr) {
    s = shard.twins.emplace(std::string(twin), std::make_unique<TwinState>()).first->second.get();
  }
  s->divergence = count;
}

void SyncTracker::Forget(std::string_view twin) {
  Shard& shard = ShardOf(twin);
  std::lock_guard lock(shard.mu);
  auto it = shard.twins.find(twin);
  if (it != shard.twins.end()) shard.twins.erase(it);
}

namespace {

Evaluation Evaluate(const SyncOptions& options, const std::optional<milliseconds>& configured,
                    const std::array<std::int64_t, kGaps>& gaps, std::size_t ngaps,
                    const std::optional<SyncClock::time_point>& newest, SyncClock::time_point now) {
  Evaluation e;
  if (configured) {
    e.interval = configured;
    e.source = "configured";
  } else if (options.default_expected_interval) {
    e.interval = options.default_expected_interval;
    e.source = "default";
  } else if (ngaps >= 3) {
    std::array<std::int64_t, kGaps> g = gaps;
    auto mid = g.begin() + static_cast<std::ptrdiff_t>(ngaps / 2);
    std::nth_element(g.begin(), mid, g.begin() + static_cast<std::ptrdiff_t>(ngaps));
    // At least 1 ms: a burst of readings microseconds apart is not an interval to hold a
    // device to.
    e.interval = std::max(milliseconds(1), duration_cast<milliseconds>(microseconds(*mid)));
    e.source = "inferred";
  }
  if (newest) {
    e.age = std::max(milliseconds(0), duration_cast<milliseconds>(now - *newest));
  }
  if (e.interval && e.age) {
    const double limit = options.stale_factor * static_cast<double>(e.interval->count());
    e.state = static_cast<double>(e.age->count()) > limit ? FreshState::kStale : FreshState::kFresh;
  }
  return e;
}

// Samples in the complete slots of the window and the number expected (0: not known).
std::pair<std::uint64_t, double> Completeness(const SyncOptions& options,
                                              const std::array<std::int64_t, kSlots>& slot_id,
                                              const std::array<std::uint32_t, kSlots>& slot_count,
                                              const std::optional<SyncClock::time_point>& first,
                                              const std::optional<milliseconds>& interval,
                                              SyncClock::time_point now) {
  if (!first || !interval || interval->count() <= 0) return {0, 0};
  const std::int64_t len = duration_cast<microseconds>(options.completeness_slot).count();
  const std::int64_t cur = FloorDiv(Micros(now), len);
  const std::int64_t lo = cur - static_cast<std::int64_t>(kSlots);
  std::uint64_t samples = 0;
  for (std::size_t i = 0; i < kSlots; ++i) {
    if (slot_id[i] >= lo && slot_id[i] < cur) samples += slot_count[i];
  }
  const std::int64_t start = std::max(lo * len, Micros(*first));
  const std::int64_t covered = cur * len - start;
  if (covered < len) return {samples, 0};
  const double expected = static_cast<double>(covered) /
                          static_cast<double>(duration_cast<microseconds>(*interval).count());
  return {samples, expected};
}

std::optional<double> Ms(std::optional<double> micros) {
  if (!micros) return std::nullopt;
  return *micros / 1000.0;
}

}  // namespace

TwinSync SyncTracker::Snapshot(const std::string& id, const TwinState& s,
                               SyncClock::time_point now) const {
  TwinSync t;
  t.twin = id;
  t.counters = s.c;
  if (s.lag) {
    LagHistogram h;
    s.lag->CollectInto(
        FloorDiv(Micros(now), duration_cast<microseconds>(options_.lag_window).count()), &h);
    t.lag_samples = h.count();
    t.lag_p50_ms = Ms(h.Quantile(0.5));
    t.lag_p99_ms = Ms(h.Quantile(0.99));
  }
  t.newest_source = s.newest_source;
  t.last_arrival = s.last_arrival;
  Evaluation e = Evaluate(options_, s.configured, s.gaps_us, s.ngaps, s.newest_source, now);
  t.expected_interval = e.interval;
  t.interval_source = e.source;
  t.age = e.age;
  t.state = e.state;
  auto [samples, expected] =
      Completeness(options_, s.slot_id, s.slot_count, s.first_sample, e.interval, now);
  t.window_samples = samples;
  t.window_expected = expected;
  if (expected > 0) t.completeness = static_cast<double>(samples) / expected;
  t.divergence = s.divergence;
  return t;
}

std::optional<TwinSync> SyncTracker::Twin(std::string_view twin) const {
  const auto now = Now();
  Shard& shard = ShardOf(twin);
  std::lock_guard lock(shard.mu);
  auto it = shard.twins.find(twin);
  if (it == shard.twins.end()) return std::nullopt;
  return Snapshot(it->first, *it->second, now);
}

std::vector<TwinSync> SyncTracker::Twins(std::optional<FreshState> state) const {
  const auto now = Now();
  std::vector<TwinSync> out;
  for (std::size_t i = 0; i < kShards; ++i) {
    Shard& shard = shards_[i];
    std::lock_guard lock(shard.mu);
    for (const auto& [id, s] : shard.twins) {
      TwinSync t = Snapshot(id, *s, now);
      if (!state || t.state == *state) out.push_back(std::move(t));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const TwinSync& a, const TwinSync& b) { return a.twin < b.twin; });
  return out;
}

SyncSummary SyncTracker::Overall() const {
  const auto now = Now();
  const std::int64_t gen =
      FloorDiv(Micros(now), duration_cast<microseconds>(options_.lag_window).count());
  SyncSummary sum;
  LagHistogram h;
  std::uint64_t samples = 0;
  double expected = 0;
  for (std::size_t i = 0; i < kShards; ++i) {
    Shard& shard = shards_[i];
    std::lock_guard lock(shard.mu);
    AddCounters(&sum.counters, shard.overall);
    shard.lag.CollectInto(gen, &h);
    sum.lag_sum_seconds += shard.lag_sum_seconds;
    sum.lag_count += shard.lag_count;
    for (const auto& [id, s] : shard.twins) {
      ++sum.twins;
      Evaluation e = Evaluate(options_, s->configured, s->gaps_us, s->ngaps, s->newest_source, now);
      switch (e.state) {
        case FreshState::kFresh:
          ++sum.fresh;
          break;
        case FreshState::kStale:
          ++sum.stale;
          break;
        case FreshState::kUnknown:
          ++sum.unknown;
          break;
      }
      if (e.state != FreshState::kUnknown && (!sum.oldest_age || *e.age > *sum.oldest_age)) {
        sum.oldest_age = e.age;
      }
      auto [n, x] =
          Completeness(options_, s->slot_id, s->slot_count, s->first_sample, e.interval, now);
      if (x > 0) {
        samples += n;
        expected += x;
      }
      if (s->divergence) sum.divergence += *s->divergence;
    }
  }
  sum.lag_samples = h.count();
  sum.lag_p50_ms = Ms(h.Quantile(0.5));
  sum.lag_p99_ms = Ms(h.Quantile(0.99));
  if (expected > 0) sum.completeness = static_cast<double>(samples) / expected;
  return sum;
}

std::vector<SyncTransition> SyncTracker::Tick() {
  const auto now = Now();
  std::vector<SyncTransition> out;
  for (std::size_t i = 0; i < kShards; ++i) {
    Shard& shard = shards_[i];
    std::lock_guard lock(shard.mu);
    for (auto& [id, s] : shard.twins) {
      Evaluation e = Evaluate(options_, s->configured, s->gaps_us, s->ngaps, s->newest_source, now);
      const bool to_stale = e.state == FreshState::kStale && s->published != FreshState::kStale;
      const bool to_fresh = e.state == FreshState::kFresh && s->published == FreshState::kStale;
      if (e.state != FreshState::kUnknown) s->published = e.state;
      if (!to_stale && !to_fresh) continue;
      out.push_back({id, e.state, *e.age, *e.interval, *s->newest_source, e.source});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const SyncTransition& a, const SyncTransition& b) { return a.twin < b.twin; });
  if (options_.graph == nullptr) return out;
  std::vector<SyncTransition> published;
  for (SyncTransition& t : out) {
    twin::TwinPtr tw = options_.graph->FindTwin(t.twin);
    if (!tw) {
      Forget(t.twin);  // deleted while tracked
      continue;
    }
    auto e = std::make_shared<twin::ChangeEvent>();
    e->kind =
        t.state == FreshState::kStale ? twin::ChangeKind::kTwinStale : twin::ChangeKind::kTwinFresh;
    e->twin_id = t.twin;
    e->model = tw->model;
    const double limit = options_.stale_factor * static_cast<double>(t.expected_interval.count());
    e->data = json::object{{"ageMs", t.age.count()},
                           {"expectedIntervalMs", t.expected_interval.count()},
                           {"expectedIntervalSource", t.interval_source},
                           {"staleAfterMs", limit},
                           {"lastSourceTime", core::FormatRfc3339(t.newest_source)}};
    e->time = now;
    options_.graph->feed().Publish(e);
    published.push_back(std::move(t));
  }
  return published;
}

void SyncTracker::Start() {
  std::lock_guard lock(thread_mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    std::unique_lock lock(thread_mu_);
    while (!thread_cv_.wait_for(lock, options_.check_period, [this] { return stopping_; })) {
      lock.unlock();
      Tick();
      lock.lock();
    }
  });
}

void SyncTracker::Stop() {
  std::thread t;
  {
    std::lock_guard lock(thread_mu_);
    stopping_ = true;
    t = std::move(thread_);
  }
  thread_cv_.notify_all();
  if (t.joinable()) t.join();
}

// ---- JSON ------------------------------------------------------------------------------------

namespace {

json::value Opt(const std::optional<double>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

json::object CountersJson(const SyncCounters& c) {
  json::object rejected;
  for (const auto& [code, n] : c.rejected_by_code) rejected[code] = n;
  return json::object{{"received", c.received},     {"accepted", c.accepted},
                      {"applied", c.applied},       {"telemetry", c.telemetry},
                      {"superseded", c.superseded}, {"outOfOrder", c.out_of_order},
                      {"duplicates", c.duplicates}, {"clockSkew", c.clock_skew},
                      {"rejected", c.rejected},     {"rejectedByCode", std::move(rejected)}};
}

json::value Rate(const SyncCounters& c) {
  if (c.received == 0) return nullptr;
  return static_cast<double>(c.rejected) / static_cast<double>(c.received);
}

}  // namespace

json::value TwinSync::ToJson(const SyncOptions& options) const {
  json::object o;
  o["twinId"] = twin;
  o["state"] = FreshStateName(state);
  o["lastSourceTime"] =
      newest_source ? json::value(core::FormatRfc3339(*newest_source)) : json::value(nullptr);
  o["lastArrivalTime"] =
      last_arrival ? json::value(core::FormatRfc3339(*last_arrival)) : json::value(nullptr);
  o["ageMs"] = age ? json::value(age->count()) : json::value(nullptr);
  o["expectedIntervalMs"] =
      expected_interval ? json::value(expected_interval->count()) : json::value(nullptr);
  o["expectedIntervalSource"] =
      interval_source.empty() ? json::value(nullptr) : json::value(interval_source);
  o["staleAfterMs"] =
      expected_interval
          ? json::value(options.stale_factor * static_cast<double>(expected_interval->count()))
          : json::value(nullptr);
  o["lagMs"] = json::object{{"p50", Opt(lag_p50_ms)},
                            {"p99", Opt(lag_p99_ms)},
                            {"samples", lag_samples},
                            {"windowSeconds", options.lag_window.count()}};
  o["completeness"] = json::object{
      {"ratio", Opt(completeness)},
      {"samples", window_samples},
      {"expected", window_expected},
      {"windowSeconds", options.completeness_slot.count() * static_cast<std::int64_t>(kSlots)}};
  o["readings"] = CountersJson(counters);
  o["rejectionRate"] = Rate(counters);
  o["divergence"] = divergence ? json::value(*divergence) : json::value(nullptr);
  return o;
}

json::value SyncSummary::ToJson(const SyncOptions& options) const {
  json::object o;
  o["twins"] =
      json::object{{"tracked", twins}, {"fresh", fresh}, {"stale", stale}, {"unknown", unknown}};
  o["lagMs"] = json::object{{"p50", Opt(lag_p50_ms)},
                            {"p99", Opt(lag_p99_ms)},
                            {"samples", lag_samples},
                            {"windowSeconds", options.lag_window.count()}};
  o["completeness"] = Opt(completeness);
  o["oldestAgeMs"] = oldest_age ? json::value(oldest_age->count()) : json::value(nullptr);
  o["readings"] = CountersJson(counters);
  o["rejectionRate"] = Rate(counters);
  o["divergence"] = divergence;
  o["staleFactor"] = options.stale_factor;
  return o;
}

}  // namespace doppel::sync
