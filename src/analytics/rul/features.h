// doppel::analytics::rul — the feature rows the boosters see (internal to doppel_rul).
//
// One row describes an engine at one reading t from the readings up to and including t: per
// sensor the last value; per window w the mean, standard deviation and least-squares slope (per
// cycle) of the last w readings; the min and max of the longest window; finally the engine's
// cycle count; optionally exponentially weighted means over every reading so far. Windows smooth
// the sensor noise (in FD001 it is as large as a third of the whole degradation), slopes show how
// fast the engine is wearing. A row needs the longest window of readings, so training rows start
// there and Predict refuses shorter histories.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace doppel::analytics::rul {

struct FeatureSpec {
  std::vector<int> sensors;     // sensor numbers 1..21
  std::vector<int> windows;     // ascending, ≥ 2
  std::vector<int> ewma_spans;  // exponentially weighted means over all readings, α = 2/(span+1)
  int Longest() const { return windows.back(); }
};

// Column names in row order: "s<k>.last", "s<k>.mean<w>", "s<k>.std<w>", "s<k>.slope<w>" for
// each window, "s<k>.min<W>", "s<k>.max<W>" (W the longest), "s<k>.ewma<span>" for each EWMA
// span, for each sensor; then "cycle".
std::vector<std::string> FeatureNames(const FeatureSpec& spec);

// For each column, the index of its sensor in spec.sensors, or spec.sensors.size() for "cycle"
// (how SHAP contributions are summed per sensor).
std::vector<std::size_t> FeatureGroups(const FeatureSpec& spec);

// Appends the row for reading `t` (0-based) of an engine at cycle `cycle`. `series` holds one
// series per spec sensor, in spec order. REQUIRES: t + 1 ≥ spec.Longest(), every series longer
// than t.
void AppendFeatureRow(const FeatureSpec& spec, std::span<const std::span<const double>> series,
                      std::size_t t, int cycle, std::vector<float>* row);

}  // namespace doppel::analytics::rul
