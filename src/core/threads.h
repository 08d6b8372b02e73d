// doppel::core::ThreadsPerStage — how many threads each stage of the write path gets by default.
//
// A write crosses two thread pools: the HTTP I/O threads (parse, route, answer) and the twin
// graph's shard threads (stage, group-commit, publish). Each hand-off between them wakes a
// thread; with more busy threads than cores those wake-ups become context switches, which
// measured (bench/graph_bench, 2 cores) cost more than the parallelism gains: one I/O thread and
// one shard gave 25 us CPU per HTTP patch, two of each 41 us. So each stage gets half the cores.
#pragma once

#include <algorithm>
#include <thread>

namespace doppel::core {

inline int ThreadsPerStage() {
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2);
}

}  // namespace doppel::core
