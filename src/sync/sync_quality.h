// doppel::sync — sync quality: how well each twin follows its physical asset, per twin and
// overall.
//
// What it does
//   SyncTracker is told the outcome of every reading ingest sees (Ingestor and MqttIngest call it)
//   and keeps, per twin and overall:
//     * end-to-end lag = applied time - source time, as p50/p99 over a sliding window;
//     * freshness: age of the newest reading (now - newest source time) against the expected
//       interval, and the state fresh / stale / unknown;
//     * completeness: samples received vs expected over a window;
//     * readings received, accepted, rejected by reason (INGEST_* and MAPPING_* codes),
//       out-of-order, duplicates, superseded, telemetry, readings from the future (clock skew);
//     * desired/reported divergence: a count another component sets (SetDivergence).
//   Tick() finds twins that went stale (fresh -> stale) or recovered (stale -> fresh) and
//   publishes `twin.stale` / `twin.fresh` events with the evidence on the twin graph's change
//   feed. Start() runs Tick on a background thread every `check_period`.
//
// How to use it
//   SyncTracker sync({.graph = &graph});          // graph: events, and only real twins tracked
//   IngestOptions io;  io.sync = &sync;           // the Ingestor feeds it
//   MqttIngestOptions mo;  mo.sync = &sync;       // mapping-level rejections, expected intervals
//   sync.Start();                                 // the stale checker (or call Tick() yourself)
//   std::optional<TwinSync> t = sync.Twin("machine-1");   t->ToJson()
//   SyncSummary all = sync.Overall();
//   sync.Stop();                                  // before the graph goes away
//
// Definitions (the numbers shown by GET /sync, GET /digitaltwins/{id}/sync, `$sync`, /metrics)
//   Lag. Recorded for every accepted reading except duplicates (a re-sent reading says nothing
//     about the path's delay): applied (the twin write committed), telemetry and superseded (in
//     history), out-of-order (late, but history keeps it). "Applied time" is when the Ingestor's
//     write completed (twin commit for Properties, history append for the others). A source time
//     after the applied time (device clock ahead) counts as lag 0 and as `clockSkew`.
//     Quantiles come from a log-bucketed histogram (LagHistogram): exact below 16 µs, above that
//     8 buckets per power of two; the value reported is the bucket's midpoint, so it is within
//     6.25% of the true quantile of the recorded lags (the quantile's rank is exact). Lags above
//     2^40 µs (12.7 days) are counted in the top bucket. The window: readings applied in the
//     current and the previous `lag_window` (aligned on multiples of lag_window since the epoch:
//     between 1 and 2 windows of data). Memory: 2.5 KB per twin with lag data.
//   Expected interval, the first that applies: the mapping's `expectedIntervalMs`
//     (SetExpectedInterval; "configured"), `default_expected_interval` ("default"), else
//     inferred ("inferred") as the median of the last 16 gaps between successive newest source
//     times (at least 3 gaps needed). Without any the freshness state is "unknown".
//   Freshness. age = now - newest source time (0 if the source time is ahead of now). Stale when
//     age > stale_factor × expected interval (default 3×), fresh otherwise.
//   Completeness. A sample is an accepted non-duplicate reading whose source time differs from
//     the previous one of that twin (a message of 10 fields with one timestamp is one sample).
//     Samples are counted by source time in 10 slots of `completeness_slot` (default 30 s: a
//     5-minute window); the ratio is samples in the complete slots of the window divided by
//     (covered time / expected interval), where covered time starts at the twin's first sample.
//     Null until a whole slot is covered or without an expected interval. Above 1 means more
//     samples than expected.
//   Rejection rate = rejected / received, since the tracker started (readings, not messages).
//   Per-twin state is in memory and starts empty at each start of the server.
//
// Which twins are tracked: those an accepted reading or a rejection names, if the twin exists
//   (checked through the graph when one is set; INGEST_UNKNOWN_TWIN never creates an entry). So
//   a flood of readings for made-up twin ids costs counters, not memory. Forget(id) drops a
//   deleted twin (the DELETE route calls it); a twin found gone when its state changes is dropped
//   too.
//
// Threads: every method may be called from any thread. Per-twin state lives in 64 shards, each
//   under its own mutex; recording takes one shard lock and does not allocate once the twin's
//   entry exists (a new rejection code allocates its counter once). Tick takes one shard lock at
//   a time and publishes events without holding any. Stop (and the destructor) must not be
//   called from the checker thread.
//
// Error codes: none (the tracker only counts). The rejection codes it reports are those of
//   docs/ingest-errors.md.
#pragma once

#include <array>
#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace doppel::twin {
class TwinGraph;
}

namespace doppel::sync {

using SyncClock = std::chrono::system_clock;

// A histogram of non-negative durations in microseconds with bounded relative error (see
// "Lag" above). Plain value type: no locking.
class LagHistogram {
 public:
  static constexpr int kSubBits = 3;  // 8 buckets per power of two
  static constexpr std::size_t kBuckets = 16 + (40 - 4 + 1) * (1u << kSubBits);

  static std::size_t BucketOf(std::uint64_t micros);
  // The midpoint of bucket b (exact value for b < 16).
  static double BucketValue(std::size_t b);

  void Add(std::uint64_t micros) {
    ++counts_[BucketOf(micros)];
    ++count_;
  }
  void Merge(const LagHistogram& other);
  void Clear();
  std::uint64_t count() const { return count_; }
  // The q-quantile (0 <= q <= 1) in microseconds: the value of the bucket holding the
  // ceil(q × count)-th smallest lag (at least the first). nullopt when empty.
  std::optional<double> Quantile(double q) const;

 private:
  std::array<std::uint32_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
};

enum class FreshState { kUnknown, kFresh, kStale };
const char* FreshStateName(FreshState s);  // "unknown", "fresh", "stale"
std::optional<FreshState> ParseFreshState(std::string_view s);

// What became of one accepted reading (rejections go through RecordRejected).
enum class ReadingOutcome { kApplied, kTelemetry, kSuperseded, kOutOfOrder, kDuplicate };

struct Observation {
  ReadingOutcome outcome;
  SyncClock::time_point source_time;
};

struct SyncOptions {
  // Null: no events, and every twin named is tracked (tests).
  twin::TwinGraph* graph = nullptr;
  double stale_factor = 3.0;
  std::optional<std::chrono::milliseconds> default_expected_interval;
  std::chrono::seconds lag_window{60};
  std::chrono::seconds completeness_slot{30};
  std::chrono::milliseconds check_period{1000};
  // "now"; tests inject a clock. Default: SyncClock::now.
  std::function<SyncClock::time_point()> clock;
};

struct SyncCounters {
  std::uint64_t received = 0;  // accepted + rejected
  std::uint64_t accepted = 0, applied = 0, telemetry = 0, superseded = 0, out_of_order = 0,
                duplicates = 0, clock_skew = 0, rejected = 0;
  std::map<std::string, std::uint64_t, std::less<>> rejected_by_code;
};

// One twin's sync quality at one moment.
struct TwinSync {
  std::string twin;
  SyncCounters counters;
  std::optional<double> lag_p50_ms, lag_p99_ms;
  std::uint64_t lag_samples = 0;  // in the lag window
  std::optional<SyncClock::time_point> newest_source, last_arrival;
  std::optional<std::chrono::milliseconds> expected_interval;
  std::string interval_source;  // "configured", "default", "inferred", "" (none)
  std::optional<std::chrono::milliseconds> age;
  FreshState state = FreshState::kUnknown;
  std::optional<double> completeness;
  std::uint64_t window_samples = 0;
  double window_expected = 0;
  std::optional<std::int64_t> divergence;

  boost::json::value ToJson(const SyncOptions& options) const;
};

struct SyncSummary {
  SyncCounters counters;
  std::optional<double> lag_p50_ms, lag_p99_ms;
  std::uint64_t lag_samples = 0;
  double lag_sum_seconds = 0;  // every lag recorded since start (for Prometheus _sum)
  std::uint64_t lag_count = 0;
  std::size_t twins = 0, fresh = 0, stale = 0, unknown = 0;
  std::optional<double> completeness;  // sum of samples / sum of expected over twins that have one
  std::optional<std::chrono::milliseconds> oldest_age;  // among twins with a known state
  std::int64_t divergence = 0;                          // sum over twins

  boost::json::value ToJson(const SyncOptions& options) const;
};

// A fresh/stale transition found by Tick.
struct SyncTransition {
  std::string twin;
  FreshState state;  // kStale or kFresh
  std::chrono::milliseconds age;
  std::chrono::milliseconds expected_interval;
  SyncClock::time_point newest_source;
  std::string interval_source;
};

class SyncTracker {
 public:
  explicit SyncTracker(SyncOptions options = {});
  ~SyncTracker();  // Stop()
  SyncTracker(const SyncTracker&) = delete;
  SyncTracker& operator=(const SyncTracker&) = delete;

  // Accepted readings of one twin, all applied at `applied`.
  void Record(std::string_view twin, std::span<const Observation> observations,
              SyncClock::time_point applied);
  // A rejected reading. `twin` may be empty (not known) or not exist: then only the overall
  // counters change.
  void RecordRejected(std::string_view twin, std::string_view code);
  // The mapping's expected interval for `twin` (only if the twin is tracked already).
  void SetExpectedInterval(std::string_view twin, std::chrono::milliseconds interval);
  // Desired/reported divergence of `twin` (e.g. properties whose desired value differs from the
  // reported one). Creates the entry when the twin exists.
  void SetDivergence(std::string_view twin, std::int64_t count);
  // Drops a twin (deleted).
  void Forget(std::string_view twin);

  std::optional<TwinSync> Twin(std::string_view twin) const;
  // Every tracked twin, by id; only those in `state` when given.
  std::vector<TwinSync> Twins(std::optional<FreshState> state = std::nullopt) const;
  SyncSummary Overall() const;

  // Evaluates every twin now; publishes (when a graph is set) and returns the transitions.
  std::vector<SyncTransition> Tick();
  // Runs Tick every options().check_period on a thread. Idempotent.
  void Start();
  void Stop();

  const SyncOptions& options() const { return options_; }

 private:
  struct TwinState;
  struct Shard;
  SyncClock::time_point Now() const;
  Shard& ShardOf(std::string_view twin) const;
  // The twin's entry in `shard` (locked), created if `create` and allowed; null otherwise.
  TwinState* Find(Shard& shard, std::string_view twin) const;
  bool TwinExists(std::string_view twin) const;
  TwinSync Snapshot(const std::string& id, const TwinState& s, SyncClock::time_point now) const;

  SyncOptions options_;
  std::unique_ptr<Shard[]> shards_;
  std::mutex thread_mu_;
  std::condition_variable thread_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace doppel::sync
