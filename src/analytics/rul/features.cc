#include "analytics/rul/features.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>

namespace doppel::analytics::rul {
namespace {

constexpr int kPerWindow = 3;  // mean, std, slope
constexpr int kPerSensor = 3;  // last, min, max (+ one per EWMA span)

struct WindowStats {
  double mean = 0;
  double std = 0;
  double slope = 0;
};

// Over y[0..n): two passes (mean first) so that the large sensor offsets (e.g. s9 ≈ 9000) do not
// cancel the small variations in float arithmetic.
WindowStats Stats(std::span<const double> y) {
  const auto n = static_cast<double>(y.size());
  double sum = 0;
  for (double v : y) sum += v;
  WindowStats s;
  s.mean = sum / n;
  const double x_mean = (n - 1) / 2;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double dx = static_cast<double>(i) - x_mean;
    const double dy = y[i] - s.mean;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  s.std = std::sqrt(syy / n);
  s.slope = sxx > 0 ? sxy / sxx : 0;
  return s;
}

}  // namespace

std::vector<std::string> FeatureNames(const FeatureSpec& spec) {
  std::vector<std::string> names;
  names.reserve(spec.sensors.size() * (kPerSensor + kPerWindow * spec.windows.size()) + 1);
  for (int s : spec.sensors) {
    names.push_back(fmt::format("s{}.last", s));
    for (int w : spec.windows) {
      names.push_back(fmt::format("s{}.mean{}", s, w));
      names.push_back(fmt::format("s{}.std{}", s, w));
      names.push_back(fmt::format("s{}.slope{}", s, w));
    }
    names.push_back(fmt::format("s{}.min{}", s, spec.Longest()));
    names.push_back(fmt::format("s{}.max{}", s, spec.Longest()));
    for (int span : spec.ewma_spans) names.push_back(fmt::format("s{}.ewma{}", s, span));
  }
  names.emplace_back("cycle");
  return names;
}

std::vector<std::size_t> FeatureGroups(const FeatureSpec& spec) {
  std::vector<std::size_t> groups;
  const std::size_t per_sensor =
      kPerSensor + kPerWindow * spec.windows.size() + spec.ewma_spans.size();
  for (std::size_t i = 0; i < spec.sensors.size(); ++i) groups.insert(groups.end(), per_sensor, i);
  groups.push_back(spec.sensors.size());
  return groups;
}

void AppendFeatureRow(const FeatureSpec& spec, std::span<const std::span<const double>> series,
                      std::size_t t, int cycle, std::vector<float>* row) {
  assert(t + 1 >= static_cast<std::size_t>(spec.Longest()));
  for (std::span<const double> y : series) {
    row->push_back(static_cast<float>(y[t]));
    for (int w : spec.windows) {
      const auto n = static_cast<std::size_t>(w);
      const WindowStats s = Stats(y.subspan(t + 1 - n, n));
      row->push_back(static_cast<float>(s.mean));
      row->push_back(static_cast<float>(s.std));
      row->push_back(static_cast<float>(s.slope));
    }
    const auto longest = y.subspan(t + 1 - static_cast<std::size_t>(spec.Longest()),
                                   static_cast<std::size_t>(spec.Longest()));
    const auto [lo, hi] = std::minmax_element(longest.begin(), longest.end());
    row->push_back(static_cast<float>(*lo));
    row->push_back(static_cast<float>(*hi));
    for (int span : spec.ewma_spans) {
      const double alpha = 2.0 / (span + 1);
      double m = y[0];
      for (std::size_t i = 1; i <= t; ++i) m += alpha * (y[i] - m);
      row->push_back(static_cast<float>(m));
    }
  }
  row->push_back(static_cast<float>(cycle));
}

}  // namespace doppel::analytics::rul
