// doppel::tsdb — the history store: every twin property's and telemetry's points, compressed,
// durable, queryable by range and aggregate.
//
// What it does
//   One series per (twin, path) — path is the element as ingest names it: "temperature", or
//   "motorTemperature/temperature" inside a component. A series has one value type (float64,
//   int64, bool or string), fixed by its first point. Points go to the series' head chunk
//   (chunk.h: decimal or Gorilla coding) in memory; a head is sealed when it holds `chunk_points`
//   points or the next point falls into another hour (a chunk never crosses an hour boundary, so
//   hourly and coarser aggregates read chunk summaries instead of points). Queries read sealed
//   chunks, the head, and late points, and merge them by time.
//
// How to use it
//   auto store = HistoryStore::Open(backend, {});                 // backend: store::Store, or
//                                                                 // MemoryBackend in tests
//   std::vector<Sample> batch{{"m1", "power", t_ns, 11.7}};
//   std::vector<core::Status> per_point = (*store)->Append(batch);  // durable once it returns
//   auto pts = (*store)->Read({"m1", "power"}, {.from_ns = a, .to_ns = b});
//   auto agg = (*store)->Aggregate({"m1", "power"}, {.from_ns = a, .to_ns = b,
//                                   .step_ns = 60'000'000'000, .agg = Agg::kMean});
//
// Durability (why acknowledged points survive kill -9)
//   Append writes the batch as one write-ahead record through the backend's log (AppendLog)
//   before it touches a head chunk, and returns only after the backend accepted it
//   (store::Store: appended to its history log files, fdatasync per the store's sync policy;
//   AppendAsync's committer writes the records of every waiting call with one fsync). A new
//   series' record is written to the database before the first record that names it.
//   A checkpoint (every `checkpoint_interval`, or once `checkpoint_bytes` of records piled up)
//   writes every sealed-but-unwritten chunk and a snapshot of every changed head under its final
//   key, plus the checkpoint sequence number, in one atomic write; then the log is trimmed up to
//   that number. Open loads the chunks and replays the records after the checkpoint. A head
//   snapshot loaded at Open becomes a (short) sealed chunk; appends continue in a new head.
//   Choice: chunks in RocksDB (the store's database, keys under "h/") — one backup story for
//   twins and history; the write-ahead records in files of their own (tsdb/file_log.h), because
//   as database values each was copied into the memtable, flushed and compacted away again only
//   to be deleted at the next checkpoint: a fifth of the append path's CPU.
//
// Keys (all under "h/"; numbers big-endian so that keys sort by them)
//   h/s/<series u64>                  series: value type (1 byte), twin, '\0', path
//   h/c/<series u64><chunk u32>       chunk bytes (chunk.h format)
//   h/w/<seq u64>                     write-ahead record (format in history.cc) — only in
//                                     backends that keep the log as keys (MemoryBackend, and
//                                     stores written by earlier versions until their first
//                                     checkpoint)
//   h/k                               checkpoint: the last record folded into chunks (u64)
//
// Out of order and duplicates
//   A point older than its series' head's last point but not older than the head's first is
//   merged into the head (the head is re-encoded: O(head), rare). A point older than the head goes
//   to the series' late buffer, which becomes a chunk of its own at the next checkpoint. Chunks
//   may therefore overlap in time; reads merge them (stable: equal timestamps keep arrival
//   order). A point with the timestamp and value of one already stored is still stored, unless
//   drop_duplicates is set (doppel serve sets it: appends are then idempotent, and a reading
//   redelivered after a crash is stored once).
//
// Aggregates (Agg)
//   Buckets are [k*step, (k+1)*step) in nanoseconds since the epoch (as InfluxDB's GROUP BY
//   time()); step 0 means one bucket for the whole range. Empty buckets are omitted. mean, sum,
//   min, max over numeric (and bool as 0/1) points, NaN left out; count counts every point;
//   last is the value of the newest point (strings included); p50/p95/p99 are percentiles with
//   linear interpolation between closest ranks (numpy's default).
//
// Rollups (so that long ranges stay fast)
//   * Hour and coarser: every chunk carries a summary (count, NaNs, sum, min, max, last, first
//     and last time); a chunk inside the range and inside one bucket is taken from it without
//     decoding. Chunks never cross an hour, so any step that is whole hours reads summaries only.
//   * Minute: a sealed chunk with at least `rollup_density` points per minute it spans also
//     carries one cell per minute (count, NaNs, sum, min, max, last); whole-minute steps read
//     the cells of the chunks inside the range. Sparse chunks are decoded, which costs about as
//     much as reading cells would. Built when a chunk is sealed or loaded; memory in Stats().
//   * Only the chunks at the range's ends, the head, late points, percentiles and steps that are
//     not whole minutes decode points.
//
// Memory: chunk bytes are kept in memory (about 0.8..4 bytes per point, chunk.h) for as long as
//   retention keeps them, plus minute rollups (48 bytes a minute of a dense chunk: 0.8 byte a
//   point at 1 Hz); the series index and the heads are small.
//
// Error codes (stable)
//   TSDB_TYPE_MISMATCH   a point of another value type than its series (that point only)
//   TSDB_DUPLICATE       with drop_duplicates: that point is already stored (not an error: the
//                        point was not stored again; nothing else is affected)
//   TSDB_BAD_QUERY       a query with from > to, a negative step, or too many buckets
//   TSDB_NOT_FOUND       no such series
//   TSDB_CHUNK_CORRUPT   a stored chunk failed its checksum (or a record is malformed): Open still
//                        opens, counts it (Stats) and every query of that series answers this
//                        error naming the chunk — damaged data is reported, never returned
//   TSDB_IO              the backend failed (message from it); nothing was applied
//
// Threads: every method may be called from any thread. Appends to different series run in
// parallel (a lock per series); reads copy what they need under the series' lock and decode
// outside it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "tsdb/chunk.h"
#include "tsdb/file_log.h"

namespace doppel::tsdb {

// One key write (value set) or delete (value nullopt).
struct KeyOp {
  std::string key;
  std::optional<std::string> value;
};

// Where the history lives. store::Store implements it on RocksDB.
class HistoryBackend {
 public:
  virtual ~HistoryBackend() = default;
  // All ops atomically, durable per the backend's policy when it returns OK.
  virtual core::Status Write(std::span<const KeyOp> ops) = 0;
  // Deletes every key in [begin, end).
  virtual core::Status DeleteRange(std::string_view begin, std::string_view end) = 0;
  virtual core::Status Scan(
      std::string_view prefix,
      const std::function<void(std::string_view key, std::string_view value)>& fn) const = 0;

  // The write-ahead log. AppendLog: the records (sequence numbers above every earlier one),
  // durable per the backend's policy when it returns OK. TrimLog: drops the records up to
  // `upto` (it may keep some). ScanLog: every record kept, in order. The defaults keep a record
  // as the key h/w/<seq> through Write, DeleteRange and Scan (MemoryBackend); store::Store keeps
  // them in files (file_log.h).
  virtual core::Status AppendLog(std::span<const LogRecord> records);
  virtual core::Status TrimLog(std::uint64_t upto);
  virtual core::Status ScanLog(
      const std::function<void(std::uint64_t seq, std::string_view bytes)>& fn) const;
};

// A backend in memory, for tests and benchmarks: a sorted map. Copying it is a "crash": the copy
// has exactly what was written.
class MemoryBackend : public HistoryBackend {
 public:
  MemoryBackend() = default;
  MemoryBackend(const MemoryBackend& other);
  MemoryBackend& operator=(const MemoryBackend&) = delete;
  core::Status Write(std::span<const KeyOp> ops) override;
  core::Status DeleteRange(std::string_view begin, std::string_view end) override;
  core::Status Scan(
      std::string_view prefix,
      const std::function<void(std::string_view, std::string_view)>& fn) const override;
  std::size_t size() const;
  void FailWrites(bool fail) { fail_ = fail; }  // Write/DeleteRange return TSDB_IO

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string, std::less<>> data_;
  std::atomic<bool> fail_{false};
};

struct SeriesRef {
  std::string twin;
  std::string path;
};

struct Sample {
  std::string_view twin;
  std::string_view path;
  std::int64_t t_ns = 0;
  Value value;
};

enum class Agg { kMean, kMin, kMax, kLast, kCount, kSum, kP50, kP95, kP99 };
std::optional<Agg> ParseAgg(std::string_view s);  // "mean", "min", ... "p99"
std::string_view AggName(Agg agg);

struct RangeQuery {
  std::int64_t from_ns = std::numeric_limits<std::int64_t>::min();
  std::int64_t to_ns = std::numeric_limits<std::int64_t>::max();  // inclusive
  std::size_t limit = 0;     // Read: at most this many points (0: no limit)
  bool latest = false;       // Read with limit: the newest `limit` points (still in time order)
  std::int64_t step_ns = 0;  // Aggregate: bucket width (0: one bucket)
  Agg agg = Agg::kMean;
};

struct Bucket {
  std::int64_t t_ns = 0;  // bucket start (step 0: the first point's time)
  std::uint64_t count = 0;
  Value value;  // double for numeric aggregates; count as int64; last keeps the series' type
};

struct SeriesInfo {
  std::string twin, path;
  ValueType type = ValueType::kFloat64;
  std::uint64_t points = 0;
  std::int64_t first_t_ns = 0, last_t_ns = 0;  // when points > 0
  std::size_t chunks = 0, bytes = 0;           // sealed chunks and their bytes (head excluded)
};

struct HistoryStats {
  std::uint64_t series = 0, points = 0, chunks = 0, chunk_bytes = 0;
  std::uint64_t head_bytes = 0;      // the heads' points, encoded (in memory until sealed)
  std::uint64_t rollup_bytes = 0;    // the minute rollups (in memory)
  std::uint64_t corrupt_chunks = 0;  // found at Open; their series answer TSDB_CHUNK_CORRUPT
  std::uint64_t appended = 0, late = 0, type_mismatches = 0;
  std::uint64_t duplicates = 0;  // points dropped by drop_duplicates
  std::uint64_t checkpoints = 0, wal_records = 0, wal_bytes = 0;  // records since the checkpoint
};

struct HistoryOptions {
  std::uint32_t chunk_points = 2048;
  std::int64_t chunk_span_ns = std::int64_t{3600} * 1'000'000'000;  // chunks never cross it
  std::size_t checkpoint_bytes = std::size_t{32} << 20;
  std::chrono::milliseconds checkpoint_interval{10000};
  bool background = true;  // a thread that checkpoints; false: only explicit Checkpoint()
  std::size_t max_buckets = 1'000'000;
  // A sealed chunk with at least this many points per minute it spans (on average) gets a
  // per-minute rollup (about 48 bytes a minute: 0.8 byte a point at 1 Hz), so that aggregates
  // whose step is whole minutes read one cell a minute instead of its points. 0: every chunk.
  double rollup_density = 30;
  // A point with the time and value of one its series already holds is not stored again (its
  // status says TSDB_DUPLICATE): appends become idempotent, so a message redelivered after a
  // crash does not leave a second point. The check costs nothing for a point newer than its
  // series' newest; an older one costs a decode of the chunks that hold its time. Appends of the
  // same point in flight at the same moment (not yet applied when the other is prepared) may both
  // be stored: it makes redelivery idempotent, not concurrent writers.
  bool drop_duplicates = false;
  // Threads that work on a large write (8,192 points or more: one Append, or an AppendAsync
  // group): 1, or 2 (the writing thread and a helper, used when the machine has two cores or
  // more). Two prepare it (series lookups, the write-ahead record: a large call in two halves,
  // a group's calls shared out) and put its points into the heads (its series split between
  // them). What is stored, and the record's meaning, are the same either way.
  int write_threads = 2;
};

// How long history is kept: a twin's own retention, else its model's, else the default; none of
// them: forever. Durations in nanoseconds.
struct RetentionPolicy {
  std::optional<std::int64_t> default_ns;
  std::map<std::string, std::int64_t, std::less<>> by_model, by_twin;

  bool empty() const { return !default_ns && by_model.empty() && by_twin.empty(); }
  std::optional<std::int64_t> For(std::string_view twin, std::string_view model) const;
  // Adds "<key>=<duration>" (e.g. "dtmi:acme:Pump;1=7d", "pump-3=12h"; the last '=' splits) to
  // `into`. False, and nothing added, when it is not of that form.
  static bool AddSpec(std::string_view spec,
                      std::map<std::string, std::int64_t, std::less<>>* into);
};

namespace internal {

// A series' name as two views, and the index's hash and equality over "twin\0path" keys that
// also take one (a lookup builds no key string). FNV-1a over the key's bytes.
struct SeriesView {
  std::string_view twin, path;
  bool operator==(const SeriesView&) const = default;
};

struct IndexHash {
  using is_transparent = void;
  static std::uint64_t Mix(std::uint64_t h, std::string_view s) {
    for (char c : s) h = (h ^ static_cast<std::uint8_t>(c)) * 0x100000001b3ULL;
    return h;
  }
  std::size_t operator()(std::string_view key) const { return Mix(0xcbf29ce484222325ULL, key); }
  std::size_t operator()(const SeriesView& v) const {  // as of twin + '\0' + path
    return Mix(Mix(0xcbf29ce484222325ULL, v.twin) * 0x100000001b3ULL, v.path);
  }
};

struct IndexEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  bool operator()(const SeriesView& v, std::string_view key) const {
    return key.size() == v.twin.size() + 1 + v.path.size() && key.starts_with(v.twin) &&
           key[v.twin.size()] == '\0' && key.substr(v.twin.size() + 1) == v.path;
  }
  bool operator()(std::string_view key, const SeriesView& v) const { return (*this)(v, key); }
};

}  // namespace internal

class HistoryStore {
 public:
  // Loads the chunks, replays the write-ahead records. TSDB_IO; TSDB_CHUNK_CORRUPT for a
  // malformed series or write-ahead record (a damaged chunk only marks its series).
  static core::Result<std::unique_ptr<HistoryStore>> Open(HistoryBackend& backend,
                                                          HistoryOptions options = {});
  ~HistoryStore();
  HistoryStore(const HistoryStore&) = delete;
  HistoryStore& operator=(const HistoryStore&) = delete;

  // Appends points, durably. Returns one status per sample when some failed
  // (TSDB_TYPE_MISMATCH), or a single TSDB_IO status when the backend failed (then nothing was
  // stored), or an empty vector when everything is stored.
  std::vector<core::Status> Append(std::span<const Sample> samples);

  // The same without blocking the caller. An appender thread prepares the calls that came in
  // (series lookups, the record, the grouping by series) and hands them to a committer thread,
  // which writes the records of every group handed over at that moment in one backend write
  // (one fsync for all of them); meanwhile the appender prepares what comes next and applies
  // what was written: the points into the heads, then `done` with what Append would have
  // returned. The per-sample work stays on the appender (on few cores, handing samples and
  // series between threads cost more than the work), except that a large write (Append's or a
  // group's) is prepared and put into the heads by the appender and a helper thread together
  // (write_threads). `samples` (and the strings they view) must stay valid until `done` runs.
  // Calls complete in the order they were made. `done` may call AppendAsync but not Append (a
  // checkpoint waiting for the appender would wait forever).
  void AppendAsync(std::span<const Sample> samples,
                   std::function<void(std::vector<core::Status>)> done);

  // Blocks until every AppendAsync made so far has run its `done` (for shutdown: call it before
  // destroying what the callbacks use).
  void WaitIdle();

  // Points with from <= t <= to in time order. TSDB_NOT_FOUND, TSDB_BAD_QUERY,
  // TSDB_CHUNK_CORRUPT.
  core::Result<std::vector<Point>> Read(const SeriesRef& series, const RangeQuery& q) const;
  core::Result<std::vector<Bucket>> Aggregate(const SeriesRef& series, const RangeQuery& q) const;

  std::optional<SeriesInfo> Info(const SeriesRef& series) const;
  std::vector<SeriesInfo> ListSeries(std::string_view twin) const;  // "" = every twin

  // Deletes every series of `twin` (its points and chunks). Returns how many series.
  core::Result<std::size_t> DeleteTwin(std::string_view twin);
  // Drops sealed chunks whose newest point is older than cutoff(twin) (nullopt: keep).
  // Returns the points dropped.
  core::Result<std::uint64_t> ApplyRetention(
      const std::function<std::optional<std::int64_t>(std::string_view twin)>& cutoff_ns);

  // Folds the write-ahead records into chunks now.
  core::Status Checkpoint();

  HistoryStats Stats() const;

 private:
  struct Series;
  struct ChunkRef;
  struct Snapshot;
  struct Prepared;
  struct WrittenGroup {
    std::vector<std::unique_ptr<Prepared>> group;
    std::vector<Prepared*> calls;  // group's, for Write and Apply
    bool written = false;          // false: the backend failed (results say so) or nothing to write
  };
  // Prepares the calls (in order: `after` is the call before p, whose new series are created
  // before p's, or null). PrepareCalls shares a large write's between two threads.
  void Prepare(Prepared& p, Prepared* after);
  void PrepareCalls(std::span<Prepared* const> calls);
  // Writes the group's records in one backend write; false when nothing was written.
  bool Write(std::span<Prepared* const> group);
  void Apply(std::span<Prepared* const> group);  // their points into the heads
  // The points of the group's series in `half` (0 or 1 by a hash of the series id; -1: all).
  void ApplyHalf(std::span<Prepared* const> group, int half);
  // Runs task(0), ..., task(n - 1) once each, on this thread and the helper together (each
  // takes the next task nobody took yet, so they start in order), or all on this thread when
  // there is one write thread or the helper is serving another call. Returns when all are done.
  void Share(std::size_t n, const std::function<void(std::size_t)>& task);
  void HelperLoop();
  void AppendLoop();
  void CommitLoop();
  // Between taking a record's sequence number and its points being in heads, a write is "in"
  // the gate; a checkpoint closes it, waits until nothing is in, and snapshots.
  void GateEnter();
  void GateLeave();
  explicit HistoryStore(HistoryBackend& backend, HistoryOptions options);
  core::Status Load();
  // A chunk's index entry: info, summary, and its minute rollup when it is dense.
  core::Result<ChunkRef> MakeChunkRef(std::uint32_t no,
                                      std::shared_ptr<const std::vector<std::uint8_t>> bytes,
                                      bool persisted) const;
  Series* Find(const SeriesRef& ref) const;
  Series* FindOrCreate(std::string_view twin, std::string_view path, ValueType type, bool* created);
  void ApplyPoint(Series& s, std::int64_t t, const Value& v);
  bool Holds(Series& s, std::int64_t t, const Value& v) const;  // a point (t, v) is stored
  void SealHead(Series& s);
  core::Result<Snapshot> Collect(const SeriesRef& ref, const RangeQuery& q) const;
  void BackgroundLoop();

  HistoryBackend& backend_;
  HistoryOptions options_;
  mutable std::shared_mutex index_mu_;  // by_key_, by_id_, next_series_
  std::unordered_map<std::string, std::shared_ptr<Series>, internal::IndexHash, internal::IndexEq>
      by_key_;  // twin '\0' path
  std::unordered_map<std::uint64_t, Series*> by_id_;
  std::uint64_t next_series_ = 1;
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  std::size_t gate_inflight_ = 0;
  bool gate_closed_ = false;
  std::atomic<std::uint64_t> next_seq_{1};
  std::atomic<std::uint64_t> wal_bytes_{0}, wal_records_{0};
  std::mutex checkpoint_mu_;
  std::mutex log_mu_;  // Write: sequence numbers in the order their records reach the log
  std::atomic<std::uint64_t> appended_{0}, late_{0}, mismatches_{0}, checkpoints_{0};
  std::atomic<std::uint64_t> duplicates_{0};

  std::mutex commit_mu_;  // the AppendAsync queues
  std::condition_variable commit_cv_;
  std::vector<std::unique_ptr<Prepared>> incoming_;                   // to prepare
  std::vector<std::vector<std::unique_ptr<Prepared>>> commit_queue_;  // prepared, to write
  std::vector<WrittenGroup> apply_queue_;                             // written, to apply
  std::size_t in_commit_ = 0;  // groups handed to the committer, not yet back
  bool commit_stop_ = false;
  bool writer_stop_ = false;
  std::size_t commit_pending_ = 0;  // AppendAsync calls whose `done` has not run yet
  std::condition_variable idle_cv_;
  std::thread appender_;  // started by the first AppendAsync, with the committer
  std::thread committer_;

  // Share's helper thread (started by the first Share that uses it).
  struct SharedJob;
  bool parallel_ = false;     // write_threads >= 2 on a machine with two cores or more
  std::mutex helper_use_mu_;  // held by the Share that uses the helper
  std::mutex helper_mu_;
  std::condition_variable helper_cv_;
  SharedJob* helper_job_ = nullptr;  // offered to the helper, until it is done with it
  bool helper_on_job_ = false;       // the helper took helper_job_
  bool helper_stop_ = false;
  std::thread helper_;

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stop_ = false;
  std::thread bg_;
};

}  // namespace doppel::tsdb
