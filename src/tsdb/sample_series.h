// doppel::tsdb — series to measure the chunk codec on, and the bytes they take in chunks.
//
// Two sources, both deterministic:
//   * LoadCmapssSeries: NASA C-MAPSS (../shared/data/cmapss, see its README). Each engine unit's
//     sensor column (s1..s21) becomes one float64 series with one reading per cycle, timestamped
//     cycle * 1 s. Values are the nearest doubles to the file's decimals (as strtod reads them).
//   * MakePlantTelemetry: a synthetic machine sampled every second: a temperature (float64, slow
//     drift, cooling while stopped, noise, quantized to a sensor resolution), a part counter
//     (int64, +1 per part cycle of ~30 s while running), a running flag (bool, stops every ~2 h
//     for 5..15 min) and an operating mode (string). Its random numbers come from mt19937_64
//     and a hand-written Box-Muller, so a seed gives the same series on every platform.
// EncodeSeries cuts a series into chunks of a given length with ChunkWriter.
//
// Used by the chunk tests (compression bounds) and meant for the tsdb benchmark.
//
// Error codes: TSDB_SAMPLE_DATA (a C-MAPSS file is missing or a line does not parse), and those
// of ChunkWriter::Append for EncodeSeries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"
#include "tsdb/chunk.h"

namespace doppel::tsdb {

// One series with its values in the vector of its type (the others empty).
struct SampleSeries {
  std::string name;
  ValueType type = ValueType::kFloat64;
  std::vector<std::int64_t> t_ns;
  std::vector<double> floats;
  std::vector<std::int64_t> ints;
  std::vector<std::uint8_t> bools;  // 0 or 1
  std::vector<std::string> strings;

  std::size_t size() const { return t_ns.size(); }
};

// The sensor series of one C-MAPSS file (train_FD001.txt, test_FD001.txt, ...): for every unit in
// file order, s1..s21, named "<file stem>/unit <u>/s<k>". Error: TSDB_SAMPLE_DATA.
core::Result<std::vector<SampleSeries>> LoadCmapssSeries(const std::filesystem::path& file);

struct PlantTelemetryOptions {
  std::uint64_t seed = 1;
  std::size_t points = 86'400;                        // per series (one day at 1 s)
  std::int64_t start_ns = 1'704'067'200'000'000'000;  // 2024-01-01T00:00:00Z
  std::int64_t period_ns = 1'000'000'000;             // sampling period
  std::int64_t jitter_ns = 0;            // each timestamp off the grid by up to ± this (uniform)
  std::int64_t clock_resolution_ns = 1;  // then floored to a multiple of this (1e6: a ms clock)
  double temperature_step = 0.01;        // sensor resolution in °C; 0 = unquantized doubles
};

// Four series of equal length: "temperature" (float64), "parts" (int64), "running" (bool),
// "mode" (string: "running", "idle", "setup").
std::vector<SampleSeries> MakePlantTelemetry(const PlantTelemetryOptions& options = {});

// The series cut into chunks of at most points_per_chunk points (REQUIRES: > 0), in order.
// Errors: those of ChunkWriter::Append (e.g. TSDB_OUT_OF_ORDER for unsorted timestamps).
core::Result<std::vector<std::vector<std::uint8_t>>> EncodeSeries(const SampleSeries& series,
                                                                  std::size_t points_per_chunk);

}  // namespace doppel::tsdb
