// `doppel replay cmapss`: feeds one engine of a C-MAPSS file to a running server, cycle by cycle,
// as a device would (POST /write, InfluxDB line protocol): one line per cycle with the three
// operational settings, the 21 sensors and the integer `cycle`, tagged with the twin, stamped
// with the time it is sent. With `doppel serve --rul-model` the twin's remaining useful life
// follows (docs/rul.md, "Live RUL on twins"). Errors print as "error: CODE: message" (exit 1).
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/http_client.h"
#include "cli/progress.h"
#include "core/status.h"

namespace doppel::cli {
namespace {

struct ReplayArgs {
  std::string data;
  int unit = 0;
  std::string twin;  // "" = engine-<unit>
  std::string server;
  std::string key;
  double rate = 0;  // cycles per second; 0 = as fast as the server answers
  std::string measurement = "engine";
};

constexpr int kColumns = 26;  // unit, cycle, 3 settings, 21 sensors

int Fail(const core::Status& status) {
  fmt::print(stderr, "error: {}: {}\n", status.code(), status.message());
  return 1;
}

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// The rows of `unit` in a C-MAPSS file, each its 26 numbers.
core::Result<std::vector<std::vector<double>>> ReadUnit(const std::string& file, int unit) {
  std::ifstream in(file);
  if (!in) return core::Status("RUL_DATA_NOT_FOUND", fmt::format("{}: cannot read", file));
  std::vector<std::vector<double>> rows;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::istringstream fields(line);
    std::vector<double> row;
    for (std::string f; fields >> f;) {
      char* end = nullptr;
      const double v = std::strtod(f.c_str(), &end);
      if (end != f.c_str() + f.size() || !std::isfinite(v)) {
        return core::Status("RUL_BAD_DATA", fmt::format("{}:{}: '{}' is not a number", file, n, f));
      }
      row.push_back(v);
    }
    if (row.empty()) continue;
    if (row.size() != kColumns) {
      return core::Status("RUL_BAD_DATA", fmt::format("{}:{}: {} numbers, expected {}", file, n,
                                                      row.size(), kColumns));
    }
    if (row[0] == unit) rows.push_back(std::move(row));
  }
  if (rows.empty()) {
    return core::Status("RUL_BAD_DATA", fmt::format("{}: no rows of unit {}", file, unit));
  }
  return rows;
}

// Tag values escape ',', '=' and ' ' (line protocol).
std::string EscapeTag(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ',' || c == '=' || c == ' ') out += '\\';
    out += c;
  }
  return out;
}

int RunReplay(const ReplayArgs& a) {
  auto rows = ReadUnit(a.data, a.unit);
  if (!rows.ok()) return Fail(rows.status());
  const std::string twin = a.twin.empty() ? fmt::format("engine-{}", a.unit) : a.twin;
  HttpClient http(a.server, a.key);
  const std::string prefix = fmt::format("{},twin={} ", a.measurement, EscapeTag(twin));
  Progress progress("cycles");
  const auto start = std::chrono::steady_clock::now();
  std::int64_t last_us = 0;
  for (std::size_t i = 0; i < rows->size(); ++i) {
    if (a.rate > 0) {
      std::this_thread::sleep_until(
          start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(static_cast<double>(i) / a.rate)));
    }
    const std::vector<double>& r = (*rows)[i];
    std::string line = prefix;
    for (int k = 1; k <= 3; ++k) line += fmt::format("setting{}={},", k, r[1 + k]);
    for (int k = 1; k <= 21; ++k) line += fmt::format("s{}={},", k, r[4 + k]);
    // Microseconds (the twin's time resolution), strictly increasing: one source time per cycle.
    const std::int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    last_us = std::max(now_us, last_us + 1);
    line += fmt::format("cycle={}i {}\n", static_cast<std::int64_t>(r[1]), last_us);
    auto resp = http.Request("POST", "/write?precision=u", line, "text/plain");
    if (!resp.ok()) {
      progress.Finish();
      return Fail(resp.status());
    }
    if (resp->status >= 300) {
      progress.Finish();
      fmt::print(stderr, "cycle {} of unit {}:\n", static_cast<int>(r[1]), a.unit);
      return PrintProblem(*resp);
    }
    progress.Update(i + 1, rows->size());
  }
  progress.Finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("replayed {} cycles ({}..{}) of unit {} from {} to twin {} in {:.1f} s\n",
             rows->size(), static_cast<int>(rows->front()[1]), static_cast<int>(rows->back()[1]),
             a.unit, a.data, twin, seconds);
  return 0;
}

}  // namespace

void AddReplayCommands(CLI::App& app, int* exit_code) {
  auto* replay = app.add_subcommand("replay", "Feed recorded data to a running server");
  replay->require_subcommand(1);
  auto a = std::make_shared<ReplayArgs>();
  a->server = EnvOr("DOPPEL_SERVER", "http://127.0.0.1:8080");
  a->key = EnvOr("DOPPEL_KEY", "");
  auto* cmapss = replay->add_subcommand(
      "cmapss",
      "Post one engine of a C-MAPSS file to POST /write, one line per cycle (settings, s1..s21, "
      "cycle)");
  cmapss->add_option("--data", a->data, "C-MAPSS file, e.g. test_FD001.txt")
      ->required()
      ->check(CLI::ExistingFile);
  cmapss->add_option("--unit", a->unit, "the engine (unit number, first column)")
      ->required()
      ->check(CLI::PositiveNumber);
  cmapss->add_option("--twin", a->twin, "twin id (default engine-<unit>)");
  cmapss->add_option("--url,--server", a->server, "Server URL (or $DOPPEL_SERVER)")
      ->capture_default_str();
  cmapss->add_option("--key", a->key, "API key, writer role (or $DOPPEL_KEY)");
  cmapss
      ->add_option("--rate", a->rate,
                   "cycles per second (default 0: each cycle as soon as the last one is "
                   "acknowledged)")
      ->check(CLI::NonNegativeNumber);
  cmapss->add_option("--measurement", a->measurement, "line protocol measurement name")
      ->capture_default_str();
  cmapss->callback([a, exit_code] { *exit_code = RunReplay(*a); });
}

}  // namespace doppel::cli
