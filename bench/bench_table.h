// What every bench reports with: the summary table printed last (one row per measurement, with
// the baseline measured in the same run, the ratio, the target and whether it was met), and the
// number formats and quantile its cells use.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

namespace doppel::bench {

// The q-quantile (nearest rank) of v; sorts v. 0 for an empty v.
inline double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// 33200 -> "33,200".
inline std::string Grouped(double x) {
  std::string digits = fmt::format("{:.0f}", x);
  const std::size_t start = digits[0] == '-' ? 1 : 0;
  std::string out = digits.substr(0, start);
  for (std::size_t i = start; i < digits.size(); ++i) {
    if (i > start && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// A duration in milliseconds, in us or ms with a sensible precision.
inline std::string Ms(double ms) {
  if (ms < 0.01) return fmt::format("{:.1f} us", ms * 1000);
  if (ms < 10) return fmt::format("{:.3f} ms", ms);
  return fmt::format("{:.1f} ms", ms);
}

struct Row {
  std::string name, result, baseline, ratio, target, status;
};

inline void PrintTable(const std::vector<Row>& rows) {
  std::vector<std::string> head = {"benchmark", "result", "baseline (same run)",
                                   "ratio",     "target", ""};
  std::vector<std::size_t> w(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) w[i] = head[i].size();
  for (const auto& r : rows) {
    const std::string* f[] = {&r.name, &r.result, &r.baseline, &r.ratio, &r.target, &r.status};
    for (std::size_t i = 0; i < head.size(); ++i) w[i] = std::max(w[i], f[i]->size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      s += fmt::format("{:<{}}", cells[i], w[i]);
      if (i + 1 < cells.size()) s += " | ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    std::printf("%s\n", s.c_str());
  };
  std::size_t total = 0;
  for (auto x : w) total += x + 3;
  std::printf("\n%s\n", std::string(total - 3, '=').c_str());
  line(head);
  std::printf("%s\n", std::string(total - 3, '-').c_str());
  for (const auto& r : rows) line({r.name, r.result, r.baseline, r.ratio, r.target, r.status});
  std::printf("%s\n", std::string(total - 3, '=').c_str());
}

}  // namespace doppel::bench
