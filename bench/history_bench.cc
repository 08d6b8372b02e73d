// The history store (src/tsdb/history.h): bytes per point, append throughput and aggregate
// latency, next to InfluxDB 1.6 measured in the same run.
//
//   build/release/bench/history_bench [--quick] [--parts=12345]
//
// 1. Bytes per point: points go through HistoryStore::Append (batches of 5,000) into a store on a
//    MemoryBackend, then Checkpoint, then the store is reopened on the same backend (so every
//    head snapshot is a sealed chunk) and Stats().chunk_bytes / Stats().points is the number: the
//    bytes of every chunk the backend holds (cross-checked against a scan of h/c/), per point.
//    Keys, the series records and RocksDB's own compression are not counted (shown separately).
//    (a) `doppel plant` telemetry: PlantSimulator (plant/plant.h), 20 machines x 1 Hz x 2 h of
//        simulated time, default options (1% missing messages / fields, faults). Each field is a
//        series of its machine the way ingest stores it (sync/ingest.cc, factory model):
//        motorTemperature/temperature, vibration, spindleSpeed, power as float64, partsProduced
//        int64, status string. Three value variants, all reported:
//          published  the payload's numbers as ingest parses them. The plant formats its readings
//                     with fixed decimals (0.01 °C, 0.001 mm/s, 0.1 rpm, 0.01 kW; plant.cc
//                     Telemetry), so these are the nearest doubles to those decimals.
//          sensor     the simulator's state + Gaussian noise (the plant's sigmas, our own RNG)
//                     rounded to 0.01 °C, 0.01 mm/s, 0.1 rpm, 0.01 kW.
//          unrounded  the same state + noise at full double precision (synthetic: the plant never
//                     publishes this; the worst case for XOR float coding).
//        Also printed, as a what-if and not doppel's format: the float fields as integers in units
//        of the published resolution, through the int64 code (measured) and with first
//        differences in the same buckets (estimated).
//    (b) C-MAPSS FD001 (train_FD001.txt under $DOPPEL_SHARED_DATA/cmapss): one float64 series
//        per unit x sensor, one reading per cycle (sample_series.h). Informational.
// 2. Append throughput: plant telemetry (167 machines x 6 fields = 1,002 series, published
//    values, 1 Hz, time order) appended in batches of 5,000 samples by one thread, store with
//    default options (background checkpoints on), into (i) a MemoryBackend (write-ahead records
//    as map entries) and (ii) a real store::Store (chunks in RocksDB, write-ahead records in its
//    log files, temp dir) with fsync=never and fsync=always. points/s over the wall
//    time of the Append calls; points/s per core = points / process CPU time (every thread:
//    the appending one, the checkpoint thread, RocksDB's). Building the sample vectors is
//    measured (thread CPU, wall) and taken out of both. A fourth row: fsync=always with batches
//    of 30,000 samples, the points one InfluxDB request of 5,000 lines carries (same points per
//    fsync as part 4; the >= 10x InfluxDB write target is judged on this row, the rows of 5,000
//    are set against InfluxDB as information). A fifth: fsync=always through AppendAsync — the path
//    HTTP and MQTT ingest take — with 4 batches of 5,000 in flight, as 4 concurrent ingest requests
//    would be (group commit: the committer writes every queued batch in one fsync while the caller
//    prepares the next); its wall time includes building the samples (they overlap).
//    Each row runs 3 times, each on a fresh store, and reports the run with the median points/s
//    (all three printed): a run lasts a fraction of a second, and a shared VM's bursts of
//    noise land on single runs. (InfluxDB's write in part 4 lasts seconds and runs once.)
// 3. Aggregates over one series of 1,000,000 points (plant temperature, 1 Hz, ~11.6 days): mean
//    whole range (step 0), mean step 1h, mean step 1m, p99 whole range; p50 latency of 20 runs
//    after 2 warm-ups, results checked against values computed here. Printed next to them, the
//    floors: decoding every point of the same chunks without the store, sorting the values.
// 4. InfluxDB 1.6 (bench/influx_server.h: its own influxd in a temp dir, WAL fsync per write):
//    the data of part 2 as line protocol, one line per machine message with all its fields
//    (`machine,twin=<m> temperature=..,vibration=..,..,partsProduced=..i,status=".." <ns>`, the
//    natural InfluxDB schema; fields are points), POSTed in batches of 5,000 lines on one
//    keep-alive connection; the bytes of its TSM files + WAL afterwards (approximate: influxd
//    cannot be told to flush or compact; the output says where the points are); then the series of
//    part 3 as `s v=<value> <ns>` lines and the same aggregates in InfluxQL over HTTP. Counts are
//    checked. If influxd cannot start, its rows say why.
// 5. HTTP ingest (bench/doppel_server.h: a real `doppel serve --insecure --fsync always` of this
//    build, its own temp dir and port): the factory models and one Machine twin per plant
//    machine imported, then the plant lines of part 4 POSTed to /write on one keep-alive
//    connection (temperature named by its component path; timestamps moved to end a minute
//    ago, as ingest refuses readings older than 7 days). /ingest/stats must count every
//    reading and no rejection. Ratio against part 4's InfluxDB write of the same lines.
//
// --quick shrinks parts 2-4 (seconds in all); part 1 keeps its size. Targets are printed next to
// the numbers (PASS/MISS) and never fail the run; the exit status is 1 only when something failed
// (an append, a checkpoint, a wrong count or aggregate, an InfluxDB error other than not
// starting). Progress of long phases goes to stderr.
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/doppel_server.h"
#include "bench/influx_server.h"
#include "bench_table.h"
#include "core/shared_data.h"
#include "plant/plant.h"
#include "store/store.h"
#include "tsdb/history.h"
#include "tsdb/sample_series.h"

namespace doppel::bench {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using tsdb::HistoryStore;
using tsdb::Sample;

// Targets (reported, not asserted).
constexpr double kTargetBytesPerPoint = 1.4;           // plant telemetry
constexpr double kTargetPointsPerCoreSec = 2'000'000;  // append, per core
constexpr double kTargetAggregateMs = 20;              // 1M-point aggregate
constexpr double kTargetVsInflux = 10;                 // write throughput

constexpr std::size_t kBatch = 5000;
constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kStartNs = 1'704'067'200'000'000'000;  // 2024-01-01T00:00:00Z
constexpr const char* kDb = "bench";

struct Config {
  bool quick = false;
  int plant_machines = 20;  // part 1
  int plant_seconds = 7200;
  int tp_machines = 167;  // part 2 and 4: x 6 fields = 1,002 series
  int tp_ticks = 6000;
  std::size_t agg_points = 1'000'000;  // part 3 and 4
  int agg_runs = 20;
  int append_runs = 3;  // part 2: runs of each row, the median reported
};

// ---------------------------------------------------------------------------------------------
// Helpers

struct Errors {
  std::mutex mu;
  std::uint64_t n = 0;
  std::string first;
  void Add(std::string what) {
    std::lock_guard lock(mu);
    std::fprintf(stderr, "history_bench: ERROR: %s\n", what.c_str());
    if (n++ == 0) first = std::move(what);
  }
};
Errors g_errors;

double ClockSeconds(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
double ProcessCpu() { return ClockSeconds(CLOCK_PROCESS_CPUTIME_ID); }
double ThreadCpu() { return ClockSeconds(CLOCK_THREAD_CPUTIME_ID); }
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string LoadAverage() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return "?";
  char buf[64] = {};
  std::string out = std::fgets(buf, sizeof buf, f) ? buf : "?";
  std::fclose(f);
  return out.substr(0, out.find(' '));
}

std::string Mb(std::uint64_t bytes) {
  return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6);
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string FirstError(const std::vector<core::Status>& statuses) {
  for (const auto& s : statuses) {
    if (!s.ok()) return s.ToString();
  }
  return "?";
}

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static std::atomic<int> next{0};
    path_ = fs::temp_directory_path() /
            fmt::format("doppel-history-bench-{}-{}-{}", getpid(), next.fetch_add(1), tag);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::uint64_t DirBytes(const fs::path& dir) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2)) total += it->file_size(ec2);
  }
  return total;
}

// Progress of a long phase on stderr, at most once a second.
class Progress {
 public:
  Progress(std::string label, std::uint64_t total)
      : label_(std::move(label)), total_(total), start_(Clock::now()), last_(start_) {}
  void Update(std::uint64_t done) {
    const auto now = Clock::now();
    if (now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    printed_ = true;
    std::fprintf(
        stderr, "    ... %s: %s / %s (%.0f%%, %.1f s)\n", label_.c_str(),
        Grouped(static_cast<double>(done)).c_str(), Grouped(static_cast<double>(total_)).c_str(),
        100.0 * static_cast<double>(done) / static_cast<double>(std::max<std::uint64_t>(total_, 1)),
        Seconds(start_, now));
  }
  ~Progress() {
    if (printed_) {
      std::fprintf(stderr, "    ... %s: done in %.1f s\n", label_.c_str(),
                   Seconds(start_, Clock::now()));
    }
  }

 private:
  std::string label_;
  std::uint64_t total_;
  Clock::time_point start_, last_;
  bool printed_ = false;
};

// ---------------------------------------------------------------------------------------------
// Summary table

using bench::Row;
std::vector<Row> g_rows;

void PrintTable() { bench::PrintTable(g_rows); }

// ---------------------------------------------------------------------------------------------
// Plant telemetry

enum Field { kTemperature, kVibration, kSpeed, kPower, kParts, kStatus, kFields };
constexpr std::array<const char*, kFields> kPaths = {"motorTemperature/temperature",
                                                     "vibration",
                                                     "spindleSpeed",
                                                     "power",
                                                     "partsProduced",
                                                     "status"};
constexpr std::array<const char*, kFields> kPayloadNames = {
    "temperature", "vibration", "spindleSpeed", "power", "partsProduced", "status"};
constexpr std::array<const char*, 4> kStatusNames = {"running", "idle", "down", "maintenance"};
// Sensor resolutions of the "sensor" variant: 0.01 °C, 0.01 mm/s, 0.1 rpm, 0.01 kW.
constexpr std::array<double, 4> kSensorScale = {100, 100, 10, 100};

// kZero and kScaledInt are what-ifs of part 1: float fields all 0.0 (what the timestamps and
// headers cost), float fields as int64 in units of the published resolution.
enum class Variant { kPublished, kSensor, kUnrounded, kZero, kScaledInt };
// The published resolutions: 0.01 °C, 0.001 mm/s, 0.1 rpm, 0.01 kW.
constexpr std::array<double, 4> kPublishedScale = {100, 1000, 10, 100};

// One telemetry message of one machine.
struct PlantRow {
  std::int64_t t_ns = 0;
  std::uint32_t machine = 0;
  std::uint8_t present = 0;  // bit per Field
  std::uint8_t status = 0;   // index into kStatusNames
  std::int64_t parts = 0;
  std::array<double, 4> published{};  // parsed from the payload (what ingest stores)
  std::array<double, 4> raw{};        // state + noise, unrounded (synthetic)
};

struct PlantData {
  std::vector<std::string> machines;
  std::vector<PlantRow> rows;
  std::uint64_t points = 0;  // present fields
};

double Normal(std::mt19937_64& rng) {
  const double u1 = static_cast<double>((rng() >> 11) + 1) * 0x1.0p-53;  // (0, 1]
  const double u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// Runs the simulator for `ticks` seconds (dt 1 s) and keeps every message's fields.
PlantData MakePlant(int machines, int ticks, std::uint64_t seed, double missing_rate,
                    const std::string& label) {
  PlantData d;
  plant::SimulatorOptions so;
  so.machines = machines;
  so.seed = seed;
  so.missing_rate = missing_rate;
  if (auto s = plant::PlantSimulator::Validate(so); !s.ok()) {
    g_errors.Add("plant options: " + s.ToString());
    return d;
  }
  plant::PlantSimulator sim(so);
  for (const auto& m : sim.machines()) d.machines.push_back(m.id);
  const plant::PhysicsParams& p = so.physics;
  std::mt19937_64 noise(seed * 7919 + 17);
  d.rows.reserve(static_cast<std::size_t>(machines) * static_cast<std::size_t>(ticks));
  Progress progress(label, static_cast<std::uint64_t>(ticks));
  for (int k = 0; k < ticks; ++k) {
    const std::int64_t t = kStartNs + k * kSecond;
    const plant::Clock::time_point now{
        std::chrono::duration_cast<plant::Clock::duration>(std::chrono::nanoseconds(t))};
    for (const plant::MachineMessage& msg : sim.Tick(1.0, now)) {
      const plant::MachineState* m = sim.Find(msg.machine);
      if (m == nullptr) {
        g_errors.Add("plant: unknown machine " + msg.machine);
        continue;
      }
      PlantRow row;
      row.t_ns = t;
      row.machine = static_cast<std::uint32_t>(m - sim.machines().data());
      boost::system::error_code ec;
      json::value v = json::parse(msg.payload, ec);
      if (ec || !v.is_object()) {
        g_errors.Add("plant payload does not parse: " + msg.payload);
        continue;
      }
      const json::object& o = v.get_object();
      for (int f = 0; f < kFields; ++f) {
        const json::value* x = o.if_contains(kPayloadNames[static_cast<std::size_t>(f)]);
        if (x == nullptr) continue;
        if (f == kParts) {
          if (!x->is_int64()) continue;
          row.parts = x->get_int64();
        } else if (f == kStatus) {
          if (!x->is_string()) continue;
          auto it = std::find(kStatusNames.begin(), kStatusNames.end(),
                              std::string_view(x->get_string()));
          if (it == kStatusNames.end()) continue;
          row.status = static_cast<std::uint8_t>(it - kStatusNames.begin());
        } else {
          if (!x->is_number()) continue;
          row.published[static_cast<std::size_t>(f)] = x->to_number<double>();
        }
        row.present = static_cast<std::uint8_t>(row.present | (1u << f));
        ++d.points;
      }
      // The same signals at full precision: state + the plant's noise model (our own draws).
      row.raw[kTemperature] = m->temperature_c + p.temperature_noise * Normal(noise);
      row.raw[kVibration] = std::max(0.0, m->vibration_mm_s + p.vibration_noise * Normal(noise));
      const double speed_noise = p.speed_noise * Normal(noise);
      row.raw[kSpeed] = m->speed_rpm == 0 ? 0.0 : std::max(0.0, m->speed_rpm + speed_noise);
      row.raw[kPower] = std::max(0.0, m->power_kw + p.power_noise * Normal(noise));
      d.rows.push_back(row);
    }
    progress.Update(static_cast<std::uint64_t>(k + 1));
  }
  return d;
}

double FloatValue(const PlantRow& r, int f, Variant v) {
  const auto i = static_cast<std::size_t>(f);
  switch (v) {
    case Variant::kPublished:
      return r.published[i];
    case Variant::kSensor:
      return std::nearbyint(r.raw[i] * kSensorScale[i]) / kSensorScale[i];
    case Variant::kUnrounded:
      return r.raw[i];
    case Variant::kZero:
    case Variant::kScaledInt:
      return 0;
  }
  return 0;
}

// Yields the rows' points as samples, in row order, kBatch at a time.
class PlantBatcher {
 public:
  PlantBatcher(const PlantData& d, Variant v, std::size_t batch = kBatch)
      : d_(d), v_(v), batch_(batch) {}
  // Fills `out` with up to `batch` samples; false when there are none left.
  bool Next(std::vector<Sample>* out) {
    out->clear();
    while (out->size() < batch_ && row_ < d_.rows.size()) {
      const PlantRow& r = d_.rows[row_];
      for (; field_ < kFields && out->size() < batch_; ++field_) {
        if ((r.present & (1u << field_)) == 0) continue;
        Sample s{d_.machines[r.machine], kPaths[static_cast<std::size_t>(field_)], r.t_ns, {}};
        if (field_ == kParts) {
          s.value = r.parts;
        } else if (field_ == kStatus) {
          s.value = std::string(kStatusNames[r.status]);
        } else if (v_ == Variant::kScaledInt) {
          const auto i = static_cast<std::size_t>(field_);
          s.value = static_cast<std::int64_t>(std::llround(r.published[i] * kPublishedScale[i]));
        } else {
          s.value = FloatValue(r, field_, v_);
        }
        out->push_back(std::move(s));
      }
      if (field_ == kFields) {
        field_ = 0;
        ++row_;
      }
    }
    done_ += out->size();
    return !out->empty();
  }
  std::uint64_t done() const { return done_; }

 private:
  const PlantData& d_;
  Variant v_;
  std::size_t batch_;
  std::size_t row_ = 0;
  int field_ = 0;
  std::uint64_t done_ = 0;
};

// ---------------------------------------------------------------------------------------------
// 1. Bytes per point

struct Footprint {
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> by_path;  // points, bytes
  std::uint64_t series = 0, points = 0, chunks = 0, bytes = 0;
  std::uint64_t live_points = 0, live_sealed_bytes = 0;  // Stats() before the reopen
  std::uint64_t all_bytes = 0;                           // every h/ key and value
  double bpp() const {
    return points ? static_cast<double>(bytes) / static_cast<double>(points) : 0;
  }
};

using BatchSink = std::function<void(std::span<const Sample>)>;

Footprint MeasureFootprint(const std::string& what,
                           const std::function<void(const BatchSink&)>& produce) {
  Footprint f;
  tsdb::MemoryBackend backend;
  tsdb::HistoryOptions opts;
  opts.background = false;
  std::uint64_t sent = 0;
  {
    auto store = HistoryStore::Open(backend, opts);
    if (!store.ok()) {
      g_errors.Add(what + ": open: " + store.status().ToString());
      return f;
    }
    produce([&](std::span<const Sample> batch) {
      sent += batch.size();
      auto r = (*store)->Append(batch);
      if (!r.empty()) g_errors.Add(what + ": append: " + FirstError(r));
    });
    const tsdb::HistoryStats live = (*store)->Stats();
    f.live_points = live.points;
    f.live_sealed_bytes = live.chunk_bytes;
    if (auto s = (*store)->Checkpoint(); !s.ok()) {
      g_errors.Add(what + ": checkpoint: " + s.ToString());
    }
  }
  auto store = HistoryStore::Open(backend, opts);
  if (!store.ok()) {
    g_errors.Add(what + ": reopen: " + store.status().ToString());
    return f;
  }
  const tsdb::HistoryStats st = (*store)->Stats();
  f.series = st.series;
  f.points = st.points;
  f.chunks = st.chunks;
  f.bytes = st.chunk_bytes;
  for (const tsdb::SeriesInfo& info : (*store)->ListSeries("")) {
    auto& e = f.by_path[info.path];
    e.first += info.points;
    e.second += info.bytes;
  }
  std::uint64_t scanned_chunk_bytes = 0;
  (void)backend.Scan("h/", [&](std::string_view k, std::string_view v) {
    f.all_bytes += k.size() + v.size();
    if (k.starts_with("h/c/")) scanned_chunk_bytes += v.size();
  });
  if (f.points != sent) {
    g_errors.Add(fmt::format("{}: {} points appended, {} stored", what, sent, f.points));
  }
  if (scanned_chunk_bytes != f.bytes) {
    g_errors.Add(fmt::format("{}: Stats says {} chunk bytes, the backend holds {}", what, f.bytes,
                             scanned_chunk_bytes));
  }
  return f;
}

std::string Bpp(std::uint64_t bytes, std::uint64_t points) {
  return points ? fmt::format("{:.3f}", static_cast<double>(bytes) / static_cast<double>(points))
                : "-";
}

double g_plant_published_bpp = 0;  // for the InfluxDB disk row

// Bits of a bucketed number (chunk.h) holding x.
int BucketBits(std::int64_t x) {
  if (x == 0) return 1;
  if (x >= -64 && x <= 63) return 9;
  if (x >= -2048 && x <= 2047) return 15;
  if (x >= -(1 << 19) && x < (1 << 19)) return 24;
  if (x >= std::numeric_limits<std::int32_t>::min() &&
      x <= std::numeric_limits<std::int32_t>::max()) {
    return 37;
  }
  return 69;
}

// What the float fields would take as integers in units of their published resolution: measured
// through the int64 code (delta-of-delta), and estimated for first differences in the same
// buckets. Not doppel's format: a pointer for the codec, printed as such.
void WhatIfIntegers(const PlantData& d, const Footprint& published) {
  auto run = [&](Variant v, const char* what) {
    return MeasureFootprint(what, [&](const BatchSink& sink) {
      PlantBatcher b(d, v);
      std::vector<Sample> batch;
      while (b.Next(&batch)) sink(batch);
    });
  };
  const Footprint zero = run(Variant::kZero, "plant what-if zero");
  const Footprint ints = run(Variant::kScaledInt, "plant what-if int64");
  // First differences per (machine, field), value bits only.
  std::array<std::uint64_t, 4> bits{};
  std::vector<std::array<std::optional<std::int64_t>, 4>> prev(d.machines.size());
  for (const PlantRow& r : d.rows) {
    for (std::size_t f = 0; f < 4; ++f) {
      if ((r.present & (1u << f)) == 0) continue;
      const auto k = static_cast<std::int64_t>(std::llround(r.published[f] * kPublishedScale[f]));
      auto& p = prev[r.machine][f];
      bits[f] += p ? static_cast<std::uint64_t>(BucketBits(k - *p)) : 69;
      p = k;
    }
  }
  auto get = [](const Footprint& fp, const char* path) {
    auto it = fp.by_path.find(path);
    return it == fp.by_path.end() ? std::pair<std::uint64_t, std::uint64_t>{0, 0} : it->second;
  };
  std::string dod_line, delta_line;
  double dod_total = 0, delta_total = 0;
  for (std::size_t f = 0; f < 4; ++f) {
    const auto [n, int_bytes] = get(ints, kPaths[f]);
    const auto [n0, zero_bytes] = get(zero, kPaths[f]);
    // Timestamps, headers and checksums: the all-zero series minus its 1 bit per value.
    const double overhead = static_cast<double>(zero_bytes) - static_cast<double>(n0) / 8;
    const double delta = overhead + static_cast<double>(bits[f]) / 8;
    dod_total += static_cast<double>(int_bytes);
    delta_total += delta;
    dod_line += fmt::format(" {} {}", kPayloadNames[f], Bpp(int_bytes, n));
    delta_line +=
        fmt::format(" {} {:.3f}", kPayloadNames[f], n ? delta / static_cast<double>(n) : 0);
  }
  double rest = 0;
  for (std::size_t f = 4; f < kFields; ++f)
    rest += static_cast<double>(get(published, kPaths[f]).second);
  const double points = static_cast<double>(std::max<std::uint64_t>(published.points, 1));
  std::printf(
      "        what-if, not doppel's format (float fields as integers in units of the "
      "published resolution; partsProduced and status as stored):\n"
      "          int64 code (delta-of-delta), measured:%s; overall %.3f B/pt\n"
      "          first differences in the same buckets, estimated (value bits + the "
      "timestamps/headers of a constant series):%s; overall %.3f B/pt\n",
      dod_line.c_str(), (dod_total + rest) / points, delta_line.c_str(),
      (delta_total + rest) / points);
}

void PartBytes(const Config& cfg) {
  std::printf(
      "\n[1] bytes per point (HistoryStore on a MemoryBackend; Append, Checkpoint, reopen, "
      "Stats().chunk_bytes / points)\n");
  PlantData d = MakePlant(cfg.plant_machines, cfg.plant_seconds, 1, 0.01, "[1] plant simulator");
  std::printf(
      "    (a) doppel plant: %d machines x 1 Hz x %d s simulated, %s messages, %s points "
      "(1%% missing messages/fields, as the plant's default)\n",
      cfg.plant_machines, cfg.plant_seconds, Grouped(static_cast<double>(d.rows.size())).c_str(),
      Grouped(static_cast<double>(d.points)).c_str());
  struct V {
    Variant v;
    const char* name;
    const char* what;
  };
  const V variants[] = {
      {Variant::kPublished, "published",
       "payload values as ingest parses them (plant formats 0.01 C, 0.001 mm/s, 0.1 rpm, 0.01 kW)"},
      {Variant::kSensor, "sensor", "state + noise rounded to 0.01 C, 0.01 mm/s, 0.1 rpm, 0.01 kW"},
      {Variant::kUnrounded, "unrounded",
       "state + noise at full double precision (synthetic; the plant never publishes this)"},
  };
  Footprint published;
  std::printf("        %-10s %-9s", "variant", "overall");
  for (const char* p : kPayloadNames) std::printf(" %-13s", p);
  std::printf("  (B/pt)\n");
  for (const V& v : variants) {
    Footprint f = MeasureFootprint(fmt::format("plant {}", v.name), [&](const BatchSink& sink) {
      PlantBatcher b(d, v.v);
      std::vector<Sample> batch;
      while (b.Next(&batch)) sink(batch);
    });
    std::printf("        %-10s %-9s", v.name, Bpp(f.bytes, f.points).c_str());
    for (const char* p : kPaths) {
      auto it = f.by_path.find(p);
      std::printf(" %-13s",
                  it == f.by_path.end() ? "-" : Bpp(it->second.second, it->second.first).c_str());
    }
    std::printf("  %s\n", v.what);
    std::printf(
        "        %-10s %s series, %s chunks, %s of chunks; with keys and series records "
        "%s B/pt; Stats() before the reopen (sealed chunks only, heads not counted): %s "
        "B/pt\n",
        "", Grouped(static_cast<double>(f.series)).c_str(),
        Grouped(static_cast<double>(f.chunks)).c_str(), Mb(f.bytes).c_str(),
        Bpp(f.all_bytes, f.points).c_str(), Bpp(f.live_sealed_bytes, f.live_points).c_str());
    if (v.v == Variant::kPublished) {
      g_plant_published_bpp = f.bpp();
      published = f;
    }
    Row row{fmt::format("B/pt plant telemetry, {}", v.name),
            fmt::format("{} B/pt ({} pts, {} series)", Bpp(f.bytes, f.points),
                        Grouped(static_cast<double>(f.points)), f.series),
            "16 B/pt raw (i64 time + 8 B value)",
            f.points ? fmt::format("{:.1f}x smaller", 16.0 / f.bpp()) : "-",
            fmt::format("<= {:.1f} B/pt", kTargetBytesPerPoint),
            f.bpp() <= kTargetBytesPerPoint ? "PASS" : "MISS"};
    if (v.v == Variant::kUnrounded) {
      row.target = "(info: synthetic)";
      row.status = "";
    }
    g_rows.push_back(std::move(row));
  }

  WhatIfIntegers(d, published);

  // (b) C-MAPSS
  const fs::path file = core::SharedDataDir() / "cmapss" / "train_FD001.txt";
  auto series = tsdb::LoadCmapssSeries(file);
  if (!series.ok()) {
    std::printf("    (b) C-MAPSS: skipped: %s\n", series.status().ToString().c_str());
    g_rows.push_back(
        {"B/pt C-MAPSS FD001", "skipped: " + series.status().message(), "-", "-", "(info)", ""});
    return;
  }
  std::vector<std::pair<std::string, std::string>> names;  // twin, path per series
  std::uint64_t total = 0;
  for (const auto& s : *series) {
    // "train_FD001/unit 1/s2" -> twin "train_FD001/unit 1", path "s2"
    const auto slash = s.name.rfind('/');
    names.emplace_back(s.name.substr(0, slash), s.name.substr(slash + 1));
    total += s.size();
  }
  Footprint f = MeasureFootprint("C-MAPSS", [&](const BatchSink& sink) {
    std::vector<Sample> batch;
    for (std::size_t i = 0; i < series->size(); ++i) {
      const auto& s = (*series)[i];
      for (std::size_t k = 0; k < s.size(); ++k) {
        batch.push_back({names[i].first, names[i].second, s.t_ns[k], s.floats[k]});
        if (batch.size() == kBatch) {
          sink(batch);
          batch.clear();
        }
      }
    }
    if (!batch.empty()) sink(batch);
  });
  std::vector<std::pair<double, std::string>> per_sensor;
  for (const auto& [path, pb] : f.by_path) {
    per_sensor.emplace_back(static_cast<double>(pb.second) / static_cast<double>(pb.first), path);
  }
  std::sort(per_sensor.begin(), per_sensor.end());
  std::string spread;
  for (const auto& [bpp, path] : per_sensor) spread += fmt::format(" {} {:.2f}", path, bpp);
  std::printf(
      "    (b) C-MAPSS %s: %zu series (unit x sensor), %s points, %.3f B/pt overall "
      "(%s chunks; series of ~200 points, so chunk headers weigh)\n"
      "        per sensor, B/pt:%s\n",
      file.filename().c_str(), series->size(), Grouped(static_cast<double>(total)).c_str(), f.bpp(),
      Grouped(static_cast<double>(f.chunks)).c_str(), spread.c_str());
  g_rows.push_back({"B/pt C-MAPSS FD001 sensors",
                    fmt::format("{:.3f} B/pt ({} pts, {} series)", f.bpp(),
                                Grouped(static_cast<double>(f.points)), f.series),
                    "16 B/pt raw", fmt::format("{:.1f}x smaller", 16.0 / f.bpp()), "(info)", ""});
}

// ---------------------------------------------------------------------------------------------
// 2. Append throughput

enum class BackendKind { kMemory, kRocksNever, kRocksAlways };

const char* BackendName(BackendKind k) {
  switch (k) {
    case BackendKind::kMemory:
      return "MemoryBackend";
    case BackendKind::kRocksNever:
      return "RocksDB fsync=never";
    case BackendKind::kRocksAlways:
      return "RocksDB fsync=always";
  }
  return "?";
}

struct AppendRun {
  bool ok = false;
  std::uint64_t points = 0, batches = 0, checkpoints = 0;
  double wall_s = 0, cpu_s = 0;            // Append calls only (fill taken out)
  double fill_wall_s = 0, fill_cpu_s = 0;  // building the sample vectors
  double final_checkpoint_s = 0;
  std::uint64_t disk_bytes = 0;
  double per_sec() const { return wall_s > 0 ? static_cast<double>(points) / wall_s : 0; }
  double per_core() const { return cpu_s > 0 ? static_cast<double>(points) / cpu_s : 0; }
};

// in_flight 0: HistoryStore::Append, one batch at a time. in_flight n > 0: AppendAsync (the path
// HTTP and MQTT ingest take) with up to n batches acknowledged-pending, as n concurrent ingest
// requests would be: the caller prepares the next batch while the committer writes (one backend
// write and fsync for all queued batches) and applies the previous ones.
AppendRun RunAppend(const PlantData& d, BackendKind kind, std::size_t batch_size,
                    std::size_t in_flight = 0) {
  AppendRun run;
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<store::Store> rocks;
  tsdb::MemoryBackend memory;
  tsdb::HistoryBackend* backend = &memory;
  if (kind != BackendKind::kMemory) {
    dir = std::make_unique<TempDir>(kind == BackendKind::kRocksAlways ? "always" : "never");
    store::StoreOptions so;
    so.dir = dir->path();
    so.sync =
        kind == BackendKind::kRocksAlways ? store::SyncPolicy::kAlways : store::SyncPolicy::kNever;
    auto st = store::Store::Open(so);
    if (!st.ok()) {
      g_errors.Add(fmt::format("{}: open: {}", BackendName(kind), st.status().ToString()));
      return run;
    }
    rocks = std::move(*st);
    backend = rocks.get();
  }
  auto opened = HistoryStore::Open(*backend, {});  // default options: background checkpoints
  if (!opened.ok()) {
    g_errors.Add(fmt::format("{}: open: {}", BackendName(kind), opened.status().ToString()));
    return run;
  }
  std::unique_ptr<HistoryStore> history = std::move(*opened);
  PlantBatcher batcher(d, Variant::kPublished, batch_size);
  // One buffer per batch that may be in flight; a buffer is refilled only once its batch was
  // acknowledged (AppendAsync reads the samples until it answers).
  std::vector<std::vector<Sample>> buffers(std::max<std::size_t>(in_flight, 1));
  for (auto& b : buffers) b.reserve(batch_size);
  std::mutex mu;
  std::condition_variable acked;
  std::vector<bool> busy(buffers.size(), false);
  std::atomic<bool> failed{false};
  auto check = [&](const std::vector<core::Status>& r) {
    if (!r.empty() && !failed.exchange(true)) {
      g_errors.Add(fmt::format("{}: append: {}", BackendName(kind), FirstError(r)));
    }
  };
  Progress progress(fmt::format("[2] append, {}, batches of {}{}", BackendName(kind), batch_size,
                                in_flight ? fmt::format(", {} in flight", in_flight) : ""),
                    d.points);
  const double cpu0 = ProcessCpu();
  const auto t0 = Clock::now();
  for (std::size_t slot = 0;; slot = (slot + 1) % buffers.size()) {
    {
      std::unique_lock lock(mu);
      acked.wait(lock, [&] { return !busy[slot]; });
    }
    std::vector<Sample>& batch = buffers[slot];
    const auto f0 = Clock::now();
    const double fc0 = ThreadCpu();
    const bool more = batcher.Next(&batch);
    run.fill_cpu_s += ThreadCpu() - fc0;
    run.fill_wall_s += Seconds(f0, Clock::now());
    if (!more) break;
    if (in_flight == 0) {
      check(history->Append(batch));
    } else {
      {
        std::lock_guard lock(mu);
        busy[slot] = true;
      }
      history->AppendAsync(batch, [&, slot](std::vector<core::Status> r) {
        check(r);
        std::lock_guard lock(mu);
        busy[slot] = false;
        acked.notify_all();
      });
    }
    ++run.batches;
    progress.Update(batcher.done());
  }
  history->WaitIdle();
  const double total_wall = Seconds(t0, Clock::now());
  const double total_cpu = ProcessCpu() - cpu0;
  run.points = batcher.done();
  // Serial: building the samples is taken out of the wall time. In flight, it overlaps the
  // committer's work, so it stays in (the conservative choice); its CPU is taken out of both.
  run.wall_s = in_flight == 0 ? total_wall - run.fill_wall_s : total_wall;
  run.cpu_s = total_cpu - run.fill_cpu_s;
  const auto c0 = Clock::now();
  if (auto s = history->Checkpoint(); !s.ok()) {
    g_errors.Add(fmt::format("{}: checkpoint: {}", BackendName(kind), s.ToString()));
  }
  run.final_checkpoint_s = Seconds(c0, Clock::now());
  const tsdb::HistoryStats st = history->Stats();
  run.checkpoints = st.checkpoints;
  if (st.points != run.points ||
      st.series != static_cast<std::uint64_t>(d.machines.size()) * kFields) {
    g_errors.Add(fmt::format("{}: store holds {} points in {} series, {} appended",
                             BackendName(kind), st.points, st.series, run.points));
  }
  history.reset();
  rocks.reset();
  if (dir) run.disk_bytes = DirBytes(dir->path());
  run.ok = !failed.load();
  return run;
}

AppendRun g_append_always, g_append_always_big, g_append_async;
// Points per InfluxDB request: 5,000 lines of ~6 fields.
constexpr std::size_t kBigBatch = kBatch * kFields;
// Batches in flight for the AppendAsync row (as that many concurrent ingest requests).
constexpr std::size_t kInFlight = 4;

void PartAppend(const Config& cfg, const PlantData& d) {
  std::printf(
      "\n[2] append throughput: %s points of %d machines x %d fields = %s series "
      "(doppel plant, 1 Hz x %d s, published values), one thread; default HistoryOptions "
      "(background checkpoints)\n",
      Grouped(static_cast<double>(d.points)).c_str(), cfg.tp_machines, kFields,
      Grouped(cfg.tp_machines * kFields).c_str(), cfg.tp_ticks);
  std::printf(
      "    per core = points / process CPU (all threads: appender, checkpoints, "
      "RocksDB); building the samples is timed and excluded; each row is the median of %d "
      "runs by pts/s (a fresh store each; every run's pts/s in brackets)\n",
      cfg.append_runs);
  double memory_core = 0;
  struct Spec {
    BackendKind kind;
    std::size_t batch;
    std::size_t in_flight = 0;
  };
  for (Spec spec :
       {Spec{BackendKind::kMemory, kBatch}, Spec{BackendKind::kRocksNever, kBatch},
        Spec{BackendKind::kRocksAlways, kBatch}, Spec{BackendKind::kRocksAlways, kBigBatch},
        Spec{BackendKind::kRocksAlways, kBatch, kInFlight}}) {
    const BackendKind kind = spec.kind;
    std::vector<AppendRun> runs;
    for (int k = 0; k < cfg.append_runs; ++k) {
      runs.push_back(RunAppend(d, kind, spec.batch, spec.in_flight));
    }
    std::string each;
    for (const AppendRun& run : runs) each += (each.empty() ? "" : ", ") + Grouped(run.per_sec());
    std::sort(runs.begin(), runs.end(),
              [](const AppendRun& a, const AppendRun& b) { return a.per_sec() < b.per_sec(); });
    const AppendRun r = runs[runs.size() / 2];
    const std::string label = fmt::format(
        "{}, batches of {}{}", BackendName(kind), Grouped(static_cast<double>(spec.batch)),
        spec.in_flight ? fmt::format(", async x{}", spec.in_flight) : "");
    std::printf(
        "    %-42s %s pts/s [%s] (%.3f s wall), %s pts/s/core (%.3f s CPU, %.3f us CPU/pt), "
        "%llu batches, %llu checkpoints, final checkpoint %.3f s; building samples "
        "took %.3f s CPU%s\n",
        label.c_str(), Grouped(r.per_sec()).c_str(), each.c_str(), r.wall_s,
        Grouped(r.per_core()).c_str(), r.cpu_s,
        r.points ? r.cpu_s / static_cast<double>(r.points) * 1e6 : 0,
        static_cast<unsigned long long>(r.batches), static_cast<unsigned long long>(r.checkpoints),
        r.final_checkpoint_s, r.fill_cpu_s,
        r.disk_bytes ? fmt::format("; data dir after close {} (RocksDB, not compacted, and "
                                   "the write-ahead log files)",
                                   Mb(r.disk_bytes))
                           .c_str()
                     : "");
    Row row{fmt::format("append {} series, {}", Grouped(cfg.tp_machines * kFields), label),
            fmt::format("{} pts/s, {} pts/s/core", Grouped(r.per_sec()), Grouped(r.per_core())),
            "-",
            "-",
            fmt::format(">= {} pts/s/core", Grouped(kTargetPointsPerCoreSec)),
            r.per_core() >= kTargetPointsPerCoreSec ? "PASS" : "MISS"};
    if (kind == BackendKind::kMemory) {
      memory_core = r.per_core();
    } else if (memory_core > 0) {
      row.baseline = fmt::format("MemoryBackend {} pts/s/core", Grouped(memory_core));
      row.ratio = fmt::format("{:.2f}x", r.per_core() / memory_core);
    }
    if (spec.in_flight != 0) {
      g_append_async = r;
    } else if (kind == BackendKind::kRocksAlways) {
      (spec.batch == kBatch ? g_append_always : g_append_always_big) = r;
    }
    g_rows.push_back(std::move(row));
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Aggregates

struct AggQuery {
  const char* label;
  std::int64_t step_ns;
  tsdb::Agg agg;
  const char* influxql;  // format: {0} from, {1} to
};
const AggQuery kAggQueries[] = {
    {"mean, whole range (step 0)", 0, tsdb::Agg::kMean,
     "SELECT mean(v) FROM s WHERE time >= {} AND time <= {}"},
    {"mean, step 1h", 3600 * kSecond, tsdb::Agg::kMean,
     "SELECT mean(v) FROM s WHERE time >= {} AND time <= {} GROUP BY time(1h)"},
    {"mean, step 1m", 60 * kSecond, tsdb::Agg::kMean,
     "SELECT mean(v) FROM s WHERE time >= {} AND time <= {} GROUP BY time(1m)"},
    {"p99, whole range", 0, tsdb::Agg::kP99,
     "SELECT percentile(v, 99) FROM s WHERE time >= {} AND time <= {}"},
};
constexpr std::size_t kAggQueryCount = std::size(kAggQueries);

struct AggData {
  std::vector<double> values;  // one per second from kStartNs
  double mean = 0, p99 = 0;
};

AggData MakeAggSeries(std::size_t n) {
  AggData a;
  PlantData d = MakePlant(1, static_cast<int>(n), 7, 0.0, "[3] plant simulator, 1 machine");
  a.values.reserve(n);
  for (const PlantRow& r : d.rows) a.values.push_back(r.published[kTemperature]);
  if (a.values.size() != n) {
    g_errors.Add(fmt::format("aggregate series: {} values, {} wanted", a.values.size(), n));
  }
  long double sum = 0;
  for (double v : a.values) sum += v;
  a.mean = static_cast<double>(sum / static_cast<long double>(a.values.size()));
  std::vector<double> sorted = a.values;
  std::sort(sorted.begin(), sorted.end());
  const double h = (static_cast<double>(sorted.size()) - 1) * 0.99;  // numpy's default
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  a.p99 = sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
  return a;
}

std::array<double, kAggQueryCount> g_doppel_agg_ms{};

volatile double g_sink = 0;  // keeps the floors' work from being optimized away

// What the per-point aggregates cannot beat: decoding every point of the same chunks (cut as the
// store cuts them: at hour boundaries and 2,048 points), and ordering 1M doubles.
void PrintAggregateFloors(const Config& cfg, const AggData& a) {
  std::vector<std::vector<std::uint8_t>> chunks;
  {
    std::optional<tsdb::ChunkWriter> w;
    std::int64_t hour = 0;
    for (std::size_t i = 0; i < a.values.size(); ++i) {
      const std::int64_t t = kStartNs + static_cast<std::int64_t>(i) * kSecond;
      if (w && (w->count() >= 2048 || t / (3600 * kSecond) != hour)) {
        chunks.push_back(w->Finish());
        w.reset();
      }
      if (!w) {
        w.emplace(tsdb::ValueType::kFloat64);
        hour = t / (3600 * kSecond);
      }
      (void)w->Append(t, a.values[i]);
    }
    if (w) chunks.push_back(w->Finish());
  }
  std::vector<double> decode_ms, sort_ms, nth_ms;
  double sink = 0;
  for (int r = 0; r < cfg.agg_runs + 2; ++r) {
    const auto t0 = Clock::now();
    double sum = 0;
    std::size_t count = 0;
    for (const auto& c : chunks) {
      auto reader = tsdb::ChunkReader::Open(c);
      if (!reader.ok()) continue;
      for (tsdb::ChunkIterator it = reader->Points(); it.Next();) {
        sum += it.float_value();
        ++count;
      }
    }
    const double d = Seconds(t0, Clock::now()) * 1000;
    if (count != a.values.size()) g_errors.Add("decode floor: wrong point count");
    sink += sum;
    std::vector<double> v1 = a.values, v2 = a.values;
    const auto t1 = Clock::now();
    std::sort(v1.begin(), v1.end());
    const auto t2 = Clock::now();
    const std::size_t k = static_cast<std::size_t>(0.99 * static_cast<double>(v2.size() - 1));
    std::nth_element(v2.begin(), v2.begin() + static_cast<std::ptrdiff_t>(k), v2.end());
    const double above = *std::min_element(v2.begin() + static_cast<std::ptrdiff_t>(k), v2.end());
    const auto t3 = Clock::now();
    sink += v1[k] + v2[k] + above;
    if (r >= 2) {
      decode_ms.push_back(d);
      sort_ms.push_back(Seconds(t1, t2) * 1000);
      nth_ms.push_back(Seconds(t2, t3) * 1000);
    }
  }
  std::printf(
      "    floors (same points, no store): decode every point of %zu chunks (ChunkIterator, "
      "sum) p50 %s; std::sort of the values %s; std::nth_element + min_element (the two "
      "ranks an interpolated percentile needs) %s%s\n",
      chunks.size(), Ms(Median(decode_ms)).c_str(), Ms(Median(sort_ms)).c_str(),
      Ms(Median(nth_ms)).c_str(), "");
  g_sink = sink;
}

void PartAggregate(const Config& cfg, const AggData& a) {
  const std::size_t n = a.values.size();
  std::printf(
      "\n[3] aggregates over one series of %s points (plant temperature, 1 Hz, %.1f days; "
      "MemoryBackend, in process), p50 of %d runs after 2 warm-ups\n",
      Grouped(static_cast<double>(n)).c_str(), static_cast<double>(n) / 86400.0, cfg.agg_runs);
  tsdb::MemoryBackend backend;
  tsdb::HistoryOptions opts;
  opts.background = false;
  auto opened = HistoryStore::Open(backend, opts);
  if (!opened.ok()) {
    g_errors.Add("aggregate store: " + opened.status().ToString());
    return;
  }
  auto& store = *opened;
  {
    Progress progress("[3] append", n);
    std::vector<Sample> batch;
    for (std::size_t i = 0; i < n; ++i) {
      batch.push_back({"m1", "motorTemperature/temperature",
                       kStartNs + static_cast<std::int64_t>(i) * kSecond, a.values[i]});
      if (batch.size() == kBatch || i + 1 == n) {
        if (auto r = store->Append(batch); !r.empty()) {
          g_errors.Add("aggregate store: append: " + FirstError(r));
          return;
        }
        batch.clear();
        progress.Update(i + 1);
      }
    }
  }
  const tsdb::HistoryStats st = store->Stats();
  std::printf("    %s sealed chunks + the head\n", Grouped(static_cast<double>(st.chunks)).c_str());
  const std::int64_t from = kStartNs, to = kStartNs + static_cast<std::int64_t>(n - 1) * kSecond;
  const tsdb::SeriesRef ref{"m1", "motorTemperature/temperature"};
  PrintAggregateFloors(cfg, a);
  for (std::size_t qi = 0; qi < kAggQueryCount; ++qi) {
    const AggQuery& q = kAggQueries[qi];
    tsdb::RangeQuery rq;
    rq.from_ns = from;
    rq.to_ns = to;
    rq.step_ns = q.step_ns;
    rq.agg = q.agg;
    std::vector<double> ms;
    core::Result<std::vector<tsdb::Bucket>> last = core::Status("X", "not run");
    for (int i = 0; i < cfg.agg_runs + 2; ++i) {
      const auto t0 = Clock::now();
      last = store->Aggregate(ref, rq);
      const double d = Seconds(t0, Clock::now()) * 1000;
      if (i >= 2) ms.push_back(d);
    }
    if (!last.ok()) {
      g_errors.Add(fmt::format("aggregate {}: {}", q.label, last.status().ToString()));
      continue;
    }
    // Check the answer.
    std::uint64_t count = 0;
    for (const auto& b : *last) count += b.count;
    const std::size_t want_buckets =
        q.step_ns == 0 ? 1 : static_cast<std::size_t>((to / q.step_ns) - (from / q.step_ns) + 1);
    std::string check;
    if (count != n) check += fmt::format(" count {} != {}", count, n);
    if (last->size() != want_buckets) {
      check += fmt::format(" {} buckets != {}", last->size(), want_buckets);
    }
    std::string value;
    if (q.step_ns == 0 && last->size() == 1) {
      const double* v = std::get_if<double>(&last->front().value);
      const double want = q.agg == tsdb::Agg::kMean ? a.mean : a.p99;
      if (v == nullptr || std::abs(*v - want) > 1e-9 * std::max(1.0, std::abs(want))) {
        check += fmt::format(" value {} != {}", v ? *v : NAN, want);
      }
      value = v ? fmt::format(" = {:.6f}", *v) : "";
    }
    if (!check.empty()) g_errors.Add(fmt::format("aggregate {}: wrong answer:{}", q.label, check));
    g_doppel_agg_ms[qi] = Median(ms);
    std::printf("    %-28s p50 %-10s min %-10s max %-10s %zu bucket(s)%s%s\n", q.label,
                Ms(g_doppel_agg_ms[qi]).c_str(),
                Ms(*std::min_element(ms.begin(), ms.end())).c_str(),
                Ms(*std::max_element(ms.begin(), ms.end())).c_str(), last->size(), value.c_str(),
                check.empty() ? " (checked)" : " WRONG");
  }
}

// ---------------------------------------------------------------------------------------------
// 4. InfluxDB 1.6

// results[0].series[0].values of an InfluxDB answer (empty if it has none).
json::array InfluxValues(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return {};
  const json::value* series = nullptr;
  if (auto* results = v.get_object().if_contains("results");
      results && results->is_array() && !results->as_array().empty()) {
    if (auto* r0 = results->as_array()[0].if_object()) series = r0->if_contains("series");
  }
  if (series == nullptr || !series->is_array() || series->as_array().empty()) return {};
  const auto* s0 = series->as_array()[0].if_object();
  if (s0 == nullptr) return {};
  const auto* values = s0->if_contains("values");
  return values && values->is_array() ? values->as_array() : json::array{};
}

std::string FormatDouble(double v) { return fmt::format("{}", v); }

// A write of line-protocol bodies over HTTP, to InfluxDB or to doppel serve.
struct HttpWrite {
  bool ok = false;
  std::uint64_t points = 0, lines = 0, bytes = 0;
  double wall_s = 0, server_cpu_s = 0;
  double per_sec() const { return wall_s > 0 ? static_cast<double>(points) / wall_s : 0; }
  double per_core() const {
    return server_cpu_s > 0 ? static_cast<double>(points) / server_cpu_s : 0;
  }
};

// POSTs the bodies to 127.0.0.1:port `target` one after the other on one keep-alive connection
// (every answer must be 204); server CPU from /proc/<server_pid>/stat.
HttpWrite PostBodies(int port, pid_t server_pid, const std::string& target,
                     const std::vector<std::string>& bodies, std::uint64_t points,
                     std::uint64_t lines, const std::string& label) {
  HttpWrite w;
  w.points = points;
  w.lines = lines;
  HttpConnection conn;
  if (auto e = conn.Connect(port); !e.empty()) {
    g_errors.Add(label + ": " + e);
    return w;
  }
  Progress progress(label, lines);
  std::uint64_t sent_lines = 0;
  const double cpu0 = ProcessCpuSeconds(server_pid);
  const auto t0 = Clock::now();
  for (const std::string& body : bodies) {
    HttpResponse r = conn.Send("POST", target, body);
    if (!r.ok(204)) {
      g_errors.Add(fmt::format("{}: {} {}", label, r.status,
                               r.error.empty() ? r.body.substr(0, 300) : r.error));
      return w;
    }
    w.bytes += body.size();
    sent_lines += kBatch;
    progress.Update(std::min(sent_lines, lines));
  }
  w.wall_s = Seconds(t0, Clock::now());
  w.server_cpu_s = ProcessCpuSeconds(server_pid) - cpu0;
  w.ok = true;
  return w;
}

// The plant data of part 2 as line protocol, one line per machine message with every field it
// has, in bodies of kBatch lines: `machine,twin=<m> <names[0]>=..,..,<names[4]>=..i,
// <names[5]>=".." <t + shift_ns>`. *lines: how many lines in all.
std::vector<std::string> PlantLineBodies(const PlantData& d,
                                         const std::array<const char*, kFields>& names,
                                         std::int64_t shift_ns, std::uint64_t* lines) {
  std::vector<std::string> bodies;
  std::string body;
  *lines = 0;
  for (const PlantRow& r : d.rows) {
    body += "machine,twin=";
    body += d.machines[r.machine];
    char sep = ' ';
    for (int f = 0; f < kFields; ++f) {
      if ((r.present & (1u << f)) == 0) continue;
      body += sep;
      sep = ',';
      body += names[static_cast<std::size_t>(f)];
      body += '=';
      if (f == kParts) {
        body += std::to_string(r.parts) + "i";
      } else if (f == kStatus) {
        body += '"';
        body += kStatusNames[r.status];
        body += '"';
      } else {
        body += FormatDouble(r.published[static_cast<std::size_t>(f)]);
      }
    }
    body += ' ';
    body += std::to_string(r.t_ns + shift_ns);
    body += '\n';
    if (++*lines % kBatch == 0) bodies.push_back(std::move(body)), body.clear();
  }
  if (!body.empty()) bodies.push_back(std::move(body));
  return bodies;
}

std::uint64_t InfluxCount(InfluxServer& influx, const std::string& q) {
  auto r = influx.Query(kDb, q);
  if (!r.error.empty()) {
    g_errors.Add("InfluxDB count: " + r.error);
    return 0;
  }
  std::uint64_t total = 0;
  for (const auto& row : InfluxValues(r.body)) {
    const auto& a = row.as_array();
    for (std::size_t i = 1; i < a.size(); ++i) {
      if (a[i].is_number()) total += a[i].to_number<std::uint64_t>();
    }
  }
  return total;
}

// Bytes influxd's files take on disk (allocated blocks, at most the file size: the series file's
// segments are preallocated sparse files).
struct InfluxDisk {
  std::uint64_t tsm = 0, wal = 0, index = 0, tsm_files = 0;
};
InfluxDisk InfluxDiskUsage(const fs::path& dir) {
  InfluxDisk d;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (!it->is_regular_file(ec2)) continue;
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0) continue;
    const auto bytes = std::min<std::uint64_t>(static_cast<std::uint64_t>(st.st_size),
                                               static_cast<std::uint64_t>(st.st_blocks) * 512);
    const std::string rel = it->path().lexically_relative(dir).string();
    if (it->path().extension() == ".tsm") {
      d.tsm += bytes;
      ++d.tsm_files;
    } else if (rel.starts_with("wal/")) {
      d.wal += bytes;
    } else if (rel.starts_with("data/")) {
      d.index += bytes;
    }
  }
  return d;
}

struct InfluxResults {
  std::string skipped;  // why InfluxDB was not measured
  HttpWrite plant, single;
  InfluxDisk disk;
  std::array<double, kAggQueryCount> agg_ms{};
  std::array<std::string, kAggQueryCount> agg_error;
};

InfluxResults PartInflux(const Config& cfg, const PlantData& d, const AggData& a, bool queries) {
  InfluxResults out;
  std::printf(
      "\n[4] InfluxDB 1.6 baseline (%s, its own temp dir and ports; WAL fsync per "
      "write)\n",
      InfluxServer::BinaryPath().c_str());
  InfluxServer influx;
  if (std::string e = influx.Start(); !e.empty()) {
    out.skipped = e.substr(0, e.find('\n'));
    std::printf("    InfluxDB not measured: %s\n", e.c_str());
    return out;
  }
  if (std::string e = influx.CreateDatabase(kDb); !e.empty()) {
    out.skipped = "CREATE DATABASE failed: " + e;
    g_errors.Add("InfluxDB: " + e);
    return out;
  }
  std::printf("    influxd pid %d on 127.0.0.1:%d, data in %s\n", influx.pid(), influx.http_port(),
              influx.dir().c_str());

  // Plant data of part 2: one line per message, every field it has.
  std::uint64_t lines = 0;
  std::vector<std::string> bodies = PlantLineBodies(d, kPayloadNames, 0, &lines);
  out.plant = PostBodies(influx.http_port(), influx.pid(), InfluxServer::WriteTarget(kDb), bodies,
                         d.points, lines, "[4] InfluxDB write, plant lines");
  bodies.clear();
  if (out.plant.ok) {
    std::printf(
        "    write plant lines: %s lines = %s points in %.2f s: %s pts/s, influxd CPU "
        "%.2f s (%s pts/s/core), %.0f B/line\n",
        Grouped(static_cast<double>(lines)).c_str(),
        Grouped(static_cast<double>(out.plant.points)).c_str(), out.plant.wall_s,
        Grouped(out.plant.per_sec()).c_str(), out.plant.server_cpu_s,
        Grouped(out.plant.per_core()).c_str(),
        static_cast<double>(out.plant.bytes) / static_cast<double>(lines));
    const std::uint64_t held = InfluxCount(influx, "SELECT count(*) FROM machine");
    if (held != out.plant.points) {
      g_errors.Add(
          fmt::format("InfluxDB holds {} plant points, {} were written", held, out.plant.points));
    }
    // On-disk size: poll until it settles (a cache snapshot may be under way).
    std::uint64_t prev = 0;
    for (int i = 0; i < 20; ++i) {
      out.disk = InfluxDiskUsage(influx.dir());
      if (out.disk.tsm + out.disk.wal == prev) break;
      prev = out.disk.tsm + out.disk.wal;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    std::printf(
        "    on disk after the plant write: TSM %s in %llu file(s) + WAL %s = %.3f B/pt "
        "for %s points; series index %.0f kB more (allocated blocks). Approximate: influxd "
        "cannot be told to flush; points in its cache (< 25 MB) are only in the "
        "snappy-compressed WAL, TSM files are not fully compacted%s\n",
        Mb(out.disk.tsm).c_str(), static_cast<unsigned long long>(out.disk.tsm_files),
        Mb(out.disk.wal).c_str(),
        static_cast<double>(out.disk.tsm + out.disk.wal) /
            static_cast<double>(std::max<std::uint64_t>(held, 1)),
        Grouped(static_cast<double>(held)).c_str(), static_cast<double>(out.disk.index) / 1e3,
        out.disk.tsm == 0 ? " (here: no TSM yet, every point is in the WAL)" : "");
  }
  if (!queries) return out;

  // The series of part 3.
  {
    std::string body;
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < a.values.size(); ++i) {
      body += "s v=";
      body += FormatDouble(a.values[i]);
      body += ' ';
      body += std::to_string(kStartNs + static_cast<std::int64_t>(i) * kSecond);
      body += '\n';
      if (++n % kBatch == 0) bodies.push_back(std::move(body)), body.clear();
    }
    if (!body.empty()) bodies.push_back(std::move(body));
  }
  out.single = PostBodies(influx.http_port(), influx.pid(), InfluxServer::WriteTarget(kDb), bodies,
                          a.values.size(), a.values.size(), "[4] InfluxDB write, one series");
  bodies.clear();
  if (!out.single.ok) return out;
  std::printf(
      "    write one series `s v=..`: %s lines in %.2f s: %s pts/s, influxd CPU %.2f s "
      "(%s pts/s/core)\n",
      Grouped(static_cast<double>(out.single.points)).c_str(), out.single.wall_s,
      Grouped(out.single.per_sec()).c_str(), out.single.server_cpu_s,
      Grouped(out.single.per_core()).c_str());
  if (const std::uint64_t held = InfluxCount(influx, "SELECT count(v) FROM s");
      held != a.values.size()) {
    g_errors.Add(
        fmt::format("InfluxDB holds {} points of s, {} were written", held, a.values.size()));
  }
  std::printf(
      "    queries over HTTP (JSON answer included), one keep-alive connection, p50 of "
      "%d runs after 2 warm-ups:\n",
      cfg.agg_runs);
  HttpConnection conn;
  if (auto e = conn.Connect(influx.http_port()); !e.empty()) {
    g_errors.Add("InfluxDB: " + e);
    return out;
  }
  const std::int64_t from = kStartNs;
  const std::int64_t to = kStartNs + static_cast<std::int64_t>(a.values.size() - 1) * kSecond;
  for (std::size_t qi = 0; qi < kAggQueryCount; ++qi) {
    const AggQuery& q = kAggQueries[qi];
    const std::string text = fmt::format(fmt::runtime(q.influxql), from, to);
    const std::string target = InfluxServer::QueryTarget(kDb, text);
    std::vector<double> ms;
    HttpResponse r;
    for (int i = 0; i < cfg.agg_runs + 2; ++i) {
      const auto t0 = Clock::now();
      r = conn.Send("GET", target);
      const double dt = Seconds(t0, Clock::now()) * 1000;
      if (!r.ok(200) || r.body.find("\"error\"") != std::string::npos) break;
      if (i >= 2) ms.push_back(dt);
    }
    if (ms.size() != static_cast<std::size_t>(cfg.agg_runs)) {
      out.agg_error[qi] =
          r.error.empty() ? fmt::format("HTTP {}: {}", r.status, r.body.substr(0, 200)) : r.error;
      g_errors.Add(fmt::format("InfluxDB query {}: {}", q.label, out.agg_error[qi]));
      continue;
    }
    const json::array values = InfluxValues(r.body);
    std::string note;
    if (q.step_ns == 0) {
      const double v = values.size() == 1 && values[0].as_array().size() == 2 &&
                               values[0].as_array()[1].is_number()
                           ? values[0].as_array()[1].to_number<double>()
                           : NAN;
      if (q.agg == tsdb::Agg::kMean) {
        if (!(std::abs(v - a.mean) <= 1e-6 * std::abs(a.mean))) {
          g_errors.Add(fmt::format("InfluxDB mean {} != {}", v, a.mean));
        }
        note = fmt::format(" = {:.6f}", v);
      } else {
        note = fmt::format(" = {:.6f} (nearest rank; doppel interpolates: {:.6f})", v, a.p99);
      }
    } else {
      note = fmt::format(", {} rows", values.size());
    }
    out.agg_ms[qi] = Median(ms);
    std::printf("    %-28s p50 %-10s min %-10s max %-10s%s   %s\n", q.label,
                Ms(out.agg_ms[qi]).c_str(), Ms(*std::min_element(ms.begin(), ms.end())).c_str(),
                Ms(*std::max_element(ms.begin(), ms.end())).c_str(), note.c_str(), text.c_str());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 5. HTTP ingest into doppel serve

// NDJSON for POST /import: the factory models of examples/factory.ndjson and one Machine twin per
// plant machine. Empty when the example cannot be read (*error says why).
std::string PlantImport(const PlantData& d, std::string* error) {
  const std::string example =
      ReadWholeFile(fs::path(DOPPEL_SOURCE_DIR) / "examples/factory.ndjson");
  const std::size_t twins = example.find("{\"Section\": \"Twins\"}");
  if (example.empty() || twins == std::string::npos) {
    *error = "cannot read the models of examples/factory.ndjson";
    return {};
  }
  std::string out = example.substr(0, twins);
  out += "{\"Section\": \"Twins\"}\n";
  for (const std::string& m : d.machines) {
    out += fmt::format(
        "{{\"$dtId\": \"{}\", \"$metadata\": {{\"$model\": "
        "\"dtmi:doppel:example:factory:Machine;1\"}}, \"motorTemperature\": {{\"$metadata\": "
        "{{}}}}}}\n",
        m);
  }
  return out;
}

struct HttpIngest {
  std::string skipped;  // why it was not measured
  HttpWrite write;
};

// The plant data of part 2, as part 4 sends it to InfluxDB (the same lines; the temperature field
// named by its component path, timestamps moved to end a minute ago: ingest refuses readings
// older than 7 days), POSTed to /write of a real `doppel serve --fsync always` on one keep-alive
// connection. Every reading is validated against the Machine model, goes to the history store,
// and the Property `status` also through the twin write path. /ingest/stats must count every
// reading and no rejection.
HttpIngest PartHttpIngest(const PlantData& d) {
  HttpIngest out;
  std::printf(
      "\n[5] HTTP ingest: the plant data of part 2 as line protocol (as part 4 sends it), POST "
      "/write to doppel serve --fsync always (%s), one connection\n",
      DoppelServer::BinaryPath().c_str());
  std::string error;
  const std::string ndjson = PlantImport(d, &error);
  DoppelServer doppel;
  if (error.empty()) error = doppel.Start("always");
  if (error.empty()) error = doppel.Import(ndjson);
  if (!error.empty()) {
    out.skipped = error.substr(0, error.find('\n'));
    g_errors.Add("doppel serve: " + error);
    return out;
  }
  std::printf("    doppel serve pid %d on 127.0.0.1:%d, %zu machine twins imported\n", doppel.pid(),
              doppel.port(), d.machines.size());
  std::array<const char*, kFields> names = kPayloadNames;
  names[kTemperature] = kPaths[kTemperature];
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  const std::int64_t last = d.rows.empty() ? kStartNs : d.rows.back().t_ns;
  std::uint64_t lines = 0;
  const std::vector<std::string> bodies =
      PlantLineBodies(d, names, now - 60 * kSecond - last, &lines);
  auto before = DoppelIngestStats(doppel.port(), &error);
  out.write = PostBodies(doppel.port(), doppel.pid(), "/write", bodies, d.points, lines,
                         "[5] doppel POST /write, plant lines");
  auto after = DoppelIngestStats(doppel.port(), &error);
  if (!error.empty()) g_errors.Add(error);
  if (!out.write.ok || !before || !after) {
    out.write.ok = false;
    return out;
  }
  const std::uint64_t received = after->received - before->received;
  const std::uint64_t rejected = after->rejected - before->rejected;
  if (received != d.points || rejected != 0) {
    g_errors.Add(fmt::format(
        "doppel /write: {} readings received, {} rejected ({}), {} sent; "
        "dead letters {}",
        received, rejected, after->rejected_json, d.points, after->dead_letters.substr(0, 400)));
    out.write.ok = false;
    return out;
  }
  std::printf(
      "    %s lines = %s points in %.2f s: %s pts/s, server CPU %.2f s (%s pts/s/core), %.0f "
      "B/line; /ingest/stats: %llu received, %llu telemetry, %llu applied to twins, %llu "
      "superseded, 0 rejected\n",
      Grouped(static_cast<double>(lines)).c_str(),
      Grouped(static_cast<double>(out.write.points)).c_str(), out.write.wall_s,
      Grouped(out.write.per_sec()).c_str(), out.write.server_cpu_s,
      Grouped(out.write.per_core()).c_str(),
      static_cast<double>(out.write.bytes) / static_cast<double>(std::max<std::uint64_t>(lines, 1)),
      static_cast<unsigned long long>(received),
      static_cast<unsigned long long>(after->telemetry - before->telemetry),
      static_cast<unsigned long long>(after->applied - before->applied),
      static_cast<unsigned long long>(after->superseded - before->superseded));
  return out;
}

// ---------------------------------------------------------------------------------------------

int Main(int argc, char** argv) {
  Config cfg;
  std::string parts = "12345";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      cfg.quick = true;
    } else if (arg.starts_with("--parts=")) {
      parts = arg.substr(8);
    } else if (arg == "-h" || arg == "--help") {
      std::printf(
          "usage: history_bench [--quick] [--parts=12345]\n"
          "  --quick      parts 2-4 about 10x smaller (smoke run, ~20 s)\n"
          "  --parts=...  run only these parts: 1 bytes/point, 2 append, 3 aggregates, "
          "4 InfluxDB (its write rows use part 2's data, its query rows part 3's), 5 HTTP "
          "ingest into doppel serve (part 2's data)\n");
      return 0;
    } else {
      std::fprintf(stderr, "history_bench: unknown argument '%s' (try --help)\n", arg.c_str());
      return 2;
    }
  }
  if (cfg.quick) {
    cfg.tp_ticks = 600;
    cfg.agg_points = 200'000;
    cfg.agg_runs = 5;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // details interleave with progress on stderr
  auto has = [&](char c) { return parts.find(c) != std::string::npos; };
  std::printf(
      "history_bench%s: doppel history store (src/tsdb) vs InfluxDB 1.6 (%u hardware "
      "threads, load average %s)\n",
      cfg.quick ? " --quick (parts 2-4 smaller)" : "", std::thread::hardware_concurrency(),
      LoadAverage().c_str());

  if (has('1')) PartBytes(cfg);
  PlantData tp;
  if (has('2') || has('4') || has('5')) {
    tp = MakePlant(cfg.tp_machines, cfg.tp_ticks, 2, 0.01, "[2] plant simulator");
  }
  if (has('2')) PartAppend(cfg, tp);
  AggData agg;
  if (has('3') || has('4')) agg = MakeAggSeries(cfg.agg_points);
  if (has('3')) PartAggregate(cfg, agg);

  InfluxResults ix;
  if (has('4')) ix = PartInflux(cfg, tp, agg, true);
  HttpIngest http;
  if (has('5')) http = PartHttpIngest(tp);
  if (has('4')) {
    // The reason is printed under [4]; the table only says so.
    const std::string skipped = ix.skipped.empty() ? "" : "InfluxDB not run (see [4])";
    // Write throughput. The target is judged where doppel writes as many points per fsync as
    // one InfluxDB request carries (30,000); the rows with batches of 5,000 show the smaller
    // batches' cost (six times the fsyncs per point) and are information.
    auto vs_influx = [&](const AppendRun& run, const std::string& name, bool judged) {
      Row w{name,
            "-",
            "-",
            "-",
            judged ? fmt::format(">= {:.0f}x InfluxDB", kTargetVsInflux)
                   : std::string("(info: 1/6 of the points per request)"),
            ""};
      if (run.points) {
        w.result =
            fmt::format("{} pts/s ({}/core)", Grouped(run.per_sec()), Grouped(run.per_core()));
      }
      if (!skipped.empty()) {
        w.baseline = skipped;
      } else if (ix.plant.ok) {
        w.baseline = fmt::format("InfluxDB HTTP {} pts/s ({}/core)", Grouped(ix.plant.per_sec()),
                                 Grouped(ix.plant.per_core()));
        if (run.points && ix.plant.per_sec() > 0) {
          const double ratio = run.per_sec() / ix.plant.per_sec();
          w.ratio =
              fmt::format("{:.1f}x (per core {:.1f}x)", ratio,
                          ix.plant.per_core() > 0 ? run.per_core() / ix.plant.per_core() : 0.0);
          if (judged) w.status = ratio >= kTargetVsInflux ? "PASS" : "MISS";
        }
      }
      g_rows.push_back(std::move(w));
    };
    vs_influx(g_append_always_big,
              fmt::format("write plant data vs InfluxDB (doppel fsync=always, {}/batch)",
                          Grouped(static_cast<double>(kBigBatch))),
              true);
    vs_influx(g_append_always, "write plant data vs InfluxDB (doppel fsync=always, 5,000/batch)",
              false);
    vs_influx(g_append_async,
              fmt::format("write plant data vs InfluxDB (doppel fsync=always, 5,000/batch, "
                          "AppendAsync x{})",
                          kInFlight),
              false);
    if (skipped.empty() && ix.single.ok) {
      g_rows.push_back({"InfluxDB write, one series (1 field/line)",
                        fmt::format("{} pts/s ({}/core)", Grouped(ix.single.per_sec()),
                                    Grouped(ix.single.per_core())),
                        "-", "-", "(info)", ""});
    }
    Row disk{"InfluxDB on-disk B/pt, plant data (approx.)",
             skipped.empty() ? "-" : skipped,
             "-",
             "-",
             "(info)",
             ""};
    if (skipped.empty() && ix.plant.ok) {
      const double bpp = static_cast<double>(ix.disk.tsm + ix.disk.wal) /
                         static_cast<double>(std::max<std::uint64_t>(ix.plant.points, 1));
      disk.result =
          fmt::format("{:.2f} B/pt (TSM {} + WAL {})", bpp, Mb(ix.disk.tsm), Mb(ix.disk.wal));
      if (g_plant_published_bpp > 0) {
        disk.baseline = fmt::format("doppel chunks {:.3f} B/pt (published)", g_plant_published_bpp);
        disk.ratio = fmt::format("doppel {:.1f}x smaller", bpp / g_plant_published_bpp);
      }
    }
    g_rows.push_back(std::move(disk));
    for (std::size_t qi = 0; qi < kAggQueryCount; ++qi) {
      Row r{fmt::format("aggregate {} pts: {}", Grouped(static_cast<double>(agg.values.size())),
                        kAggQueries[qi].label),
            has('3') ? fmt::format("p50 {}", Ms(g_doppel_agg_ms[qi])) : "-",
            skipped.empty()
                ? (ix.agg_error[qi].empty() ? fmt::format("InfluxDB p50 {}", Ms(ix.agg_ms[qi]))
                                            : "InfluxDB failed")
                : skipped,
            "-",
            fmt::format("<= {:.0f} ms", kTargetAggregateMs),
            ""};
      if (has('3') && skipped.empty() && ix.agg_ms[qi] > 0 && g_doppel_agg_ms[qi] > 0) {
        r.ratio = fmt::format("{:.1f}x faster", ix.agg_ms[qi] / g_doppel_agg_ms[qi]);
      }
      if (has('3')) {
        r.status = cfg.quick                                   ? "(quick)"
                   : g_doppel_agg_ms[qi] <= kTargetAggregateMs ? "PASS"
                                                               : "MISS";
      }
      g_rows.push_back(std::move(r));
    }
  } else if (has('3')) {
    for (std::size_t qi = 0; qi < kAggQueryCount; ++qi) {
      g_rows.push_back(
          {fmt::format("aggregate {} pts: {}", Grouped(static_cast<double>(agg.values.size())),
                       kAggQueries[qi].label),
           fmt::format("p50 {}", Ms(g_doppel_agg_ms[qi])), "(part 4 not run)", "-",
           fmt::format("<= {:.0f} ms", kTargetAggregateMs),
           cfg.quick                                   ? "(quick)"
           : g_doppel_agg_ms[qi] <= kTargetAggregateMs ? "PASS"
                                                       : "MISS"});
    }
  }

  if (has('5')) {
    Row r{"HTTP ingest plant data: doppel serve POST /write (fsync=always), 1 connection",
          http.write.ok ? fmt::format("{} pts/s ({}/core)", Grouped(http.write.per_sec()),
                                      Grouped(http.write.per_core()))
                        : (http.skipped.empty() ? "failed" : "not run: " + http.skipped),
          "-",
          "-",
          "(info; same lines as InfluxDB)",
          ""};
    if (has('4') && ix.skipped.empty() && ix.plant.ok && http.write.ok) {
      r.baseline = fmt::format("InfluxDB HTTP {} pts/s ({}/core)", Grouped(ix.plant.per_sec()),
                               Grouped(ix.plant.per_core()));
      r.ratio =
          fmt::format("{:.2f}x (per core {:.2f}x)", http.write.per_sec() / ix.plant.per_sec(),
                      ix.plant.per_core() > 0 ? http.write.per_core() / ix.plant.per_core() : 0.0);
    }
    g_rows.push_back(std::move(r));
  }

  PrintTable();
  std::printf(
      "The append rows are in process (no HTTP, no JSON); InfluxDB's and the HTTP ingest row "
      "include HTTP and line protocol parsing (doppel's also model validation, sync quality and "
      "the twin write path for the Property `status`).\n");
  std::printf(
      "load average at the end: %s (on %u hardware threads; wall-clock numbers assume an "
      "otherwise idle machine, per-core numbers are steadier)\n",
      LoadAverage().c_str(), std::thread::hardware_concurrency());
  if (cfg.quick) {
    std::printf(
        "(--quick: parts 2-4 are smaller; the aggregate target is for 1M points and is "
        "not judged)\n");
  }
  if (g_errors.n != 0) {
    std::printf("ERRORS: %llu; first: %s\n", static_cast<unsigned long long>(g_errors.n),
                g_errors.first.c_str());
    return 1;
  }
  std::printf("no errors\n");
  return 0;
}

}  // namespace
}  // namespace doppel::bench

int main(int argc, char** argv) {
  try {
    return doppel::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "history_bench: %s\n", e.what());
    return 1;
  }
}
