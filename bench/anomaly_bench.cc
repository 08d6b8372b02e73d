// Anomaly detection's cost per reading (src/analytics/anomaly/anomaly.h), next to what ingest
// already pays for the same reading: appending it to history (in-memory backend, batches of
// 1,000, as a /write request of plant telemetry does). Both on the same readings, in one run:
// 1,000 series (twins × paths) of Gaussian noise with a spike now and then. The detectors run
// twice: with the trend lines (the default) and with the flat baseline (detrend = false).
#include <fmt/format.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "analytics/anomaly/anomaly.h"
#include "bench_table.h"
#include "tsdb/history.h"

namespace {
using namespace doppel;
using Clock = std::chrono::steady_clock;

struct ReadingRow {
  std::size_t series;
  std::int64_t t_ns;
  double value;
};

double NsPer(Clock::duration d, std::size_t n) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()) /
         static_cast<double>(n);
}
}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  const std::size_t series = 1000, per_series = quick ? 200 : 1000;
  std::vector<std::string> twins, paths = {"temperature", "vibration", "spindleSpeed", "power"};
  for (std::size_t i = 0; i < series / paths.size(); ++i) twins.push_back(fmt::format("m-{}", i));
  std::mt19937_64 rng(1);
  std::normal_distribution<double> noise(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<ReadingRow> readings;
  readings.reserve(series * per_series);
  const std::int64_t t0 = std::int64_t{1'800'000'000} * 1'000'000'000;
  for (std::size_t k = 0; k < per_series; ++k) {
    for (std::size_t s = 0; s < series; ++s) {
      const double spike = u(rng) < 0.001 ? 20 : 0;
      readings.push_back(
          {s, t0 + static_cast<std::int64_t>(k) * 1'000'000'000, 50 + noise(rng) + spike});
    }
  }
  auto twin_of = [&](std::size_t s) -> const std::string& { return twins[s / paths.size()]; };
  auto path_of = [&](std::size_t s) -> const std::string& { return paths[s % paths.size()]; };
  fmt::print("anomaly_bench: {} readings of {} series\n", readings.size(), series);

  // The detectors alone, with source times in seconds as the monitor passes them: the trend
  // lines (the default), then the flat baseline (detrend = false, the window's median).
  auto detectors_ns = [&](const analytics::AnomalyOptions& options, std::size_t* flagged) {
    std::vector<analytics::SeriesDetector> detectors;
    for (std::size_t s = 0; s < series; ++s) detectors.emplace_back(options);
    const auto start = Clock::now();
    for (const ReadingRow& r : readings) {
      const double seconds = static_cast<double>(r.t_ns - t0) * 1e-9;
      *flagged += detectors[r.series].Observe(r.value, seconds).anomalous;
    }
    return NsPer(Clock::now() - start, readings.size());
  };
  std::size_t flagged = 0, flat_flagged = 0;
  const double detector_ns = detectors_ns({}, &flagged);
  analytics::AnomalyOptions flat;
  flat.detrend = false;
  const double flat_ns = detectors_ns(flat, &flat_flagged);

  // The monitor, as ingest calls it (series lookup, shard lock, episodes; no graph events).
  analytics::AnomalyMonitor monitor;
  auto a = Clock::now();
  for (const ReadingRow& r : readings) {
    monitor.Observe(twin_of(r.series), path_of(r.series), r.value,
                    std::chrono::system_clock::time_point(std::chrono::nanoseconds(r.t_ns)));
  }
  const double monitor_ns = NsPer(Clock::now() - a, readings.size());

  // Baseline: the history append ingest does for the same readings.
  tsdb::MemoryBackend backend;
  auto history = tsdb::HistoryStore::Open(backend);
  if (!history.ok()) {
    fmt::print(stderr, "{}\n", history.status().ToString());
    return 1;
  }
  std::vector<tsdb::Sample> batch;
  a = Clock::now();
  for (std::size_t i = 0; i < readings.size(); i += 1000) {
    batch.clear();
    for (std::size_t j = i; j < std::min(readings.size(), i + 1000); ++j) {
      const ReadingRow& r = readings[j];
      batch.push_back({twin_of(r.series), path_of(r.series), r.t_ns, r.value});
    }
    auto st = (*history)->Append(batch);
    if (!st.empty()) {
      fmt::print(stderr, "{}\n", st.front().ToString());
      return 1;
    }
  }
  const double append_ns = NsPer(Clock::now() - a, readings.size());
  const analytics::AnomalyTotals totals = monitor.Totals();
  fmt::print("anomalous readings: {} (detectors alone {}, flat baseline {}), episodes {}\n",
             totals.anomalous_readings, flagged, flat_flagged, totals.episodes);

  std::vector<bench::Row> rows;
  rows.push_back({"detectors per reading (trend lines, robust z + EWMA, window 128)",
                  fmt::format("{:.0f} ns", detector_ns), fmt::format("{:.0f} ns", append_ns),
                  fmt::format("{:.2f}x of append", detector_ns / append_ns), "", ""});
  rows.push_back({"detectors per reading, flat baseline (detrend = false)",
                  fmt::format("{:.0f} ns", flat_ns), fmt::format("{:.0f} ns", append_ns),
                  fmt::format("{:.2f}x of append", flat_ns / append_ns), "", ""});
  rows.push_back({"AnomalyMonitor::Observe per reading (as on ingest)",
                  fmt::format("{:.0f} ns", monitor_ns), fmt::format("{:.0f} ns", append_ns),
                  fmt::format("{:.2f}x of append", monitor_ns / append_ns), "", ""});
  rows.push_back({"readings/s through the monitor, one core", bench::Grouped(1e9 / monitor_ns),
                  bench::Grouped(1e9 / append_ns) + " appended/s", "", "", ""});
  bench::PrintTable(rows);
  return 0;
}
