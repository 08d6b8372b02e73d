// doppel::cli — a one-line progress display on stderr for long-running commands.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace doppel::cli {

// Redraws "label: done/total (pct%)" in place when stderr is a terminal (or when forced), at
// most every 100 ms; prints nothing otherwise.
class Progress {
 public:
  explicit Progress(std::string label, bool force = false);
  ~Progress();
  void Update(std::size_t done, std::size_t total);
  void Finish();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace doppel::cli
