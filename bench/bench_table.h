// The summary table every bench prints last: one row per measurement, with the baseline measured
// in the same run, the ratio, the target and whether it was met.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace doppel::bench {

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
