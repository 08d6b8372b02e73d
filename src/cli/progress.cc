#include "cli/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace doppel::cli {

Progress::Progress(std::string label, bool force)
    : label_(std::move(label)), enabled_(force || isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() { Finish(); }

void Progress::Update(std::size_t done, std::size_t total) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (done != total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  int pct = total == 0 ? 100 : static_cast<int>(100.0 * static_cast<double>(done) / total);
  fmt::print(stderr, "\r{}: {}/{} ({}%)\x1b[K", label_, done, total, pct);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::Finish() {
  if (drawn_) {
    fmt::print(stderr, "\r\x1b[K");
    std::fflush(stderr);
    drawn_ = false;
  }
}

}  // namespace doppel::cli
