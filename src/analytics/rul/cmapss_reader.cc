// C-MAPSS file readers (declared in rul_model.h). The files are whitespace-separated (every data
// row ends with two spaces, every RUL row with one), so lines are split on any run of blanks.
#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include "analytics/rul/rul_model.h"

namespace doppel::analytics::rul {
namespace {

constexpr std::size_t kColumns = 26;  // unit, cycle, 3 settings, s1..s21
constexpr std::size_t kFirstSensorColumn = 5;
constexpr std::size_t kSensors = 21;

core::Result<std::string> ReadWholeFile(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    return core::Status("RUL_DATA_NOT_FOUND", fmt::format("{}: no such file", file.string()));
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return core::Status("RUL_DATA_NOT_FOUND", fmt::format("{}: cannot open", file.string()));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return core::Status("RUL_DATA_NOT_FOUND", fmt::format("{}: read error", file.string()));
  }
  return std::move(text).str();
}

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsBlank(line[i])) ++i;
    std::size_t start = i;
    while (i < line.size() && !IsBlank(line[i])) ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

// A finite number, the whole token (from_chars would also accept "nan" and "inf").
bool ParseNumber(std::string_view token, double* out) {
  const char* end = token.data() + token.size();
  auto [ptr, ec] = std::from_chars(token.data(), end, *out);
  return ec == std::errc() && ptr == end && std::isfinite(*out);
}

bool ParsePositiveInt(std::string_view token, int* out) {
  const char* end = token.data() + token.size();
  auto [ptr, ec] = std::from_chars(token.data(), end, *out);
  return ec == std::errc() && ptr == end && *out >= 1;
}

// Calls on_line(line_number, fields) for every non-blank line; stops at the first error.
template <typename OnLine>
core::Status ForEachLine(std::string_view text, OnLine on_line) {
  std::size_t line_number = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    ++line_number;
    auto fields = SplitFields(text.substr(pos, end - pos));
    pos = end + 1;
    if (fields.empty()) continue;
    if (core::Status s = on_line(line_number, fields); !s.ok()) return s;
  }
  return core::Status::Ok();
}

}  // namespace

core::Result<std::vector<CmapssUnit>> ReadCmapssFile(const std::filesystem::path& file) {
  auto text = ReadWholeFile(file);
  if (!text.ok()) return text.status();
  const std::string name = file.string();

  std::vector<CmapssUnit> units;
  std::set<int> seen;
  std::array<std::vector<double>, kSensors> sensors;  // the current unit's readings
  auto finish_unit = [&] {
    if (units.empty()) return;
    for (std::size_t k = 0; k < kSensors; ++k) {
      units.back().history.sensors[fmt::format("s{}", k + 1)] = std::move(sensors[k]);
      sensors[k].clear();
    }
  };

  int last_cycle = 0;
  core::Status status = ForEachLine(*text, [&](std::size_t line,
                                               const std::vector<std::string_view>& f) {
    auto bad = [&](const std::string& what) {
      return core::Status("RUL_BAD_DATA", fmt::format("{}:{}: {}", name, line, what));
    };
    if (f.size() != kColumns) {
      return bad(fmt::format("expected {} columns, found {}", kColumns, f.size()));
    }
    int unit = 0, cycle = 0;
    if (!ParsePositiveInt(f[0], &unit)) {
      return bad(fmt::format("column 1 (unit) '{}' is not a positive integer", f[0]));
    }
    if (!ParsePositiveInt(f[1], &cycle)) {
      return bad(fmt::format("column 2 (cycle) '{}' is not a positive integer", f[1]));
    }
    std::array<double, kColumns> values{};
    for (std::size_t c = 2; c < kColumns; ++c) {
      if (!ParseNumber(f[c], &values[c])) {
        return bad(fmt::format("column {} '{}' is not a finite number", c + 1, f[c]));
      }
    }
    if (units.empty() || units.back().unit != unit) {
      if (seen.contains(unit)) {
        return bad(fmt::format("unit {} appears again; each unit's lines must be together", unit));
      }
      if (cycle != 1) {
        return bad(fmt::format("unit {} starts at cycle {}, not 1", unit, cycle));
      }
      finish_unit();
      seen.insert(unit);
      units.push_back(CmapssUnit{unit, EngineHistory{fmt::format("unit {}", unit), {}, 0}});
    } else if (cycle != last_cycle + 1) {
      return bad(fmt::format("unit {}: cycle {} follows cycle {} (cycles must be contiguous)", unit,
                             cycle, last_cycle));
    }
    last_cycle = cycle;
    units.back().history.cycle = cycle;
    for (std::size_t k = 0; k < kSensors; ++k) {
      sensors[k].push_back(values[kFirstSensorColumn + k]);
    }
    return core::Status::Ok();
  });
  if (!status.ok()) return status;
  if (units.empty()) return core::Status("RUL_BAD_DATA", fmt::format("{}: no data lines", name));
  finish_unit();
  return units;
}

core::Result<std::vector<double>> ReadRulFile(const std::filesystem::path& file) {
  auto text = ReadWholeFile(file);
  if (!text.ok()) return text.status();
  const std::string name = file.string();
  std::vector<double> rul;
  core::Status status = ForEachLine(*text, [&](std::size_t line,
                                               const std::vector<std::string_view>& f) {
    double value = 0;
    if (f.size() != 1) {
      return core::Status("RUL_BAD_DATA",
                          fmt::format("{}:{}: expected 1 column, found {}", name, line, f.size()));
    }
    if (!ParseNumber(f[0], &value) || value < 0) {
      return core::Status("RUL_BAD_DATA", fmt::format("{}:{}: '{}' is not a non-negative number",
                                                      name, line, f[0]));
    }
    rul.push_back(value);
    return core::Status::Ok();
  });
  if (!status.ok()) return status;
  if (rul.empty()) return core::Status("RUL_BAD_DATA", fmt::format("{}: no data lines", name));
  return rul;
}

}  // namespace doppel::analytics::rul
