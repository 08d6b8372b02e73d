#include "tsdb/sample_series.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <numbers>
#include <random>
#include <sstream>
#include <string_view>

namespace doppel::tsdb {
namespace {

constexpr int kCmapssColumns = 26;  // unit, cycle, 3 settings, 21 sensors
constexpr int kCmapssFirstSensor = 5;
constexpr int kCmapssSensors = 21;
constexpr std::int64_t kNsPerSecond = 1'000'000'000;

core::Status SampleError(std::string message) { return {"TSDB_SAMPLE_DATA", std::move(message)}; }

std::vector<std::string_view> SplitWhitespace(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// Uniform in [0, 1) and standard normal numbers from mt19937_64 (fully specified by the standard,
// unlike std::normal_distribution).
class Noise {
 public:
  explicit Noise(std::uint64_t seed) : rng_(seed) {}
  double Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }
  double Normal() {
    const double u1 = 1.0 - Uniform();  // (0, 1]
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  std::mt19937_64 rng_;
};

}  // namespace

core::Result<std::vector<SampleSeries>> LoadCmapssSeries(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return SampleError(fmt::format("cannot open {}", file.string()));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  const std::string stem = file.stem().string();

  std::vector<SampleSeries> series;
  std::map<int, std::size_t> first_of_unit;  // unit -> index of its s1 series
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    const std::vector<std::string_view> cols = SplitWhitespace(line);
    if (cols.empty()) continue;
    int unit = 0;
    int cycle = 0;
    if (cols.size() != kCmapssColumns || !ParseNumber(cols[0], &unit) ||
        !ParseNumber(cols[1], &cycle)) {
      return SampleError(fmt::format("{}:{}: not a C-MAPSS row of {} numbers", file.string(),
                                     line_no, kCmapssColumns));
    }
    auto [it, added] = first_of_unit.try_emplace(unit, series.size());
    if (added) {
      for (int s = 1; s <= kCmapssSensors; ++s) {
        SampleSeries one;
        one.name = fmt::format("{}/unit {}/s{}", stem, unit, s);
        one.type = ValueType::kFloat64;
        series.push_back(std::move(one));
      }
    }
    for (int s = 0; s < kCmapssSensors; ++s) {
      double v = 0;
      if (!ParseNumber(cols[kCmapssFirstSensor + s], &v)) {
        return SampleError(
            fmt::format("{}:{}: sensor s{} is not a number", file.string(), line_no, s + 1));
      }
      SampleSeries& one = series[it->second + s];
      one.t_ns.push_back(std::int64_t{cycle} * kNsPerSecond);
      one.floats.push_back(v);
    }
  }
  if (series.empty()) return SampleError(fmt::format("{} has no rows", file.string()));
  return series;
}

std::vector<SampleSeries> MakePlantTelemetry(const PlantTelemetryOptions& options) {
  Noise noise(options.seed);
  std::vector<SampleSeries> out(4);
  out[0].name = "temperature";
  out[0].type = ValueType::kFloat64;
  out[1].name = "parts";
  out[1].type = ValueType::kInt64;
  out[2].name = "running";
  out[2].type = ValueType::kBool;
  out[3].name = "mode";
  out[3].type = ValueType::kString;
  const std::int64_t jitter = std::min(options.jitter_ns, (options.period_ns - 1) / 2);
  const auto steps = options.temperature_step > 0
                         ? static_cast<double>(std::llround(1.0 / options.temperature_step))
                         : 0.0;

  double temperature = 65.0;  // the true value, °C
  double drift = 0.0;         // slow sensor/process drift
  bool running = true;
  bool planned_stop = false;
  double next_stop = 7200.0 * -std::log(1.0 - noise.Uniform());  // s, exponential, mean 2 h
  double restart_at = 0;
  double next_part = 30.0;
  std::int64_t parts = 0;
  for (std::size_t i = 0; i < options.points; ++i) {
    const auto now = static_cast<double>(i) * static_cast<double>(options.period_ns) / 1e9;
    if (running && now >= next_stop) {
      running = false;
      planned_stop = noise.Uniform() < 0.5;
      restart_at = now + 300 + 600 * noise.Uniform();
    } else if (!running && now >= restart_at) {
      running = true;
      next_stop = now + 7200.0 * -std::log(1.0 - noise.Uniform());
      next_part = now + 30.0;
    }
    if (running && now >= next_part) {
      ++parts;
      next_part += 27.0 + 6.0 * noise.Uniform();
    }
    const double target =
        running ? 65.0 + 4.0 * std::sin(2.0 * std::numbers::pi * now / 21'600.0) : 25.0;
    temperature += (target - temperature) / 1200.0;
    drift = 0.999 * drift + 0.002 * noise.Normal();
    double measured = temperature + drift + 0.05 * noise.Normal();
    if (steps > 0) measured = static_cast<double>(std::llround(measured * steps)) / steps;

    std::int64_t t = options.start_ns + static_cast<std::int64_t>(i) * options.period_ns;
    if (jitter > 0) {
      t += static_cast<std::int64_t>(
          std::llround((2 * noise.Uniform() - 1) * static_cast<double>(jitter)));
    }
    if (options.clock_resolution_ns > 1) {
      const std::int64_t r = options.clock_resolution_ns;
      t -= ((t % r) + r) % r;  // floor: keeps the order
    }
    for (SampleSeries& s : out) s.t_ns.push_back(t);
    out[0].floats.push_back(measured);
    out[1].ints.push_back(parts);
    out[2].bools.push_back(running ? 1 : 0);
    out[3].strings.emplace_back(running ? "running" : planned_stop ? "setup" : "idle");
  }
  return out;
}

core::Result<std::vector<std::vector<std::uint8_t>>> EncodeSeries(const SampleSeries& series,
                                                                  std::size_t points_per_chunk) {
  std::vector<std::vector<std::uint8_t>> chunks;
  ChunkWriter writer(series.type);
  for (std::size_t i = 0; i < series.size(); ++i) {
    if (writer.count() == points_per_chunk) {
      chunks.push_back(writer.Finish());
      writer = ChunkWriter(series.type);
    }
    core::Status s;
    switch (series.type) {
      case ValueType::kFloat64:
        s = writer.Append(series.t_ns[i], series.floats[i]);
        break;
      case ValueType::kInt64:
        s = writer.Append(series.t_ns[i], series.ints[i]);
        break;
      case ValueType::kBool:
        s = writer.Append(series.t_ns[i], series.bools[i] != 0);
        break;
      case ValueType::kString:
        s = writer.Append(series.t_ns[i], std::string_view(series.strings[i]));
        break;
    }
    if (!s.ok()) {
      return core::Status(s.code(), fmt::format("{} point {}: {}", series.name, i, s.message()));
    }
  }
  if (writer.count() > 0) chunks.push_back(writer.Finish());
  return chunks;
}

}  // namespace doppel::tsdb
