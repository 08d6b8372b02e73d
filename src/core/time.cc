#include "core/time.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <ctime>

namespace doppel::core {

std::string FormatRfc3339(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  long frac = static_cast<long>(us % 1000000);
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

bool ParseFixedDigits(std::string_view s, std::size_t pos, std::size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

std::optional<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view s) {
  int y, mo, d, h, mi, se;
  if (!ParseFixedDigits(s, 0, 4, &y) || s.size() < 20 || s[4] != '-' ||
      !ParseFixedDigits(s, 5, 2, &mo) || s[7] != '-' || !ParseFixedDigits(s, 8, 2, &d) ||
      (s[10] != 'T' && s[10] != 't') || !ParseFixedDigits(s, 11, 2, &h) || s[13] != ':' ||
      !ParseFixedDigits(s, 14, 2, &mi) || s[16] != ':' || !ParseFixedDigits(s, 17, 2, &se)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
  std::size_t i = 19;
  long long micros = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    std::size_t start = i;
    long long scale = 100000;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      micros += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return std::nullopt;
  }
  int offset_min = 0;
  std::string_view rest = s.substr(i);
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh, om;
    if (!ParseFixedDigits(rest, 1, 2, &oh) || !ParseFixedDigits(rest, 4, 2, &om))
      return std::nullopt;
    offset_min = (oh * 60 + om) * (rest[0] == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  using namespace std::chrono;
  const year_month_day ymd(year(y), month(static_cast<unsigned>(mo)),
                           day(static_cast<unsigned>(d)));
  if (!ymd.ok()) return std::nullopt;
  const sys_days days(ymd);
  // In microseconds first (years 0000..9999 fit easily), then checked against what a
  // system_clock time point holds (nanoseconds: about 1677..2262), so no conversion overflows.
  const std::int64_t us =
      static_cast<std::int64_t>(days.time_since_epoch().count()) * 86'400'000'000LL +
      ((static_cast<std::int64_t>(h) * 60 + mi - offset_min) * 60 + se) * 1'000'000LL + micros;
  constexpr std::int64_t kPerUs =
      duration_cast<system_clock::duration>(microseconds(1)).count();  // 1000 with nanoseconds
  if (us > system_clock::duration::max().count() / kPerUs ||
      us < system_clock::duration::min().count() / kPerUs) {
    return std::nullopt;
  }
  return system_clock::time_point(duration_cast<system_clock::duration>(microseconds(us)));
}

std::optional<std::int64_t> ParseDurationNs(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    std::int64_t n = 0;
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (n > (INT64_MAX - 9) / 10) return std::nullopt;
      n = n * 10 + (s[i++] - '0');
    }
    if (i == start) return std::nullopt;
    std::int64_t unit = 0;
    auto unit_is = [&](std::string_view u) {
      if (s.substr(i, u.size()) != u) return false;
      i += u.size();
      return true;
    };
    if (unit_is("ns")) {
      unit = 1;
    } else if (unit_is("us") || unit_is("\u00b5s")) {
      unit = 1000;
    } else if (unit_is("ms")) {
      unit = 1'000'000;
    } else if (unit_is("s")) {
      unit = 1'000'000'000;
    } else if (unit_is("m")) {
      unit = 60'000'000'000;
    } else if (unit_is("h")) {
      unit = 3'600'000'000'000;
    } else if (unit_is("d")) {
      unit = 86'400'000'000'000;
    } else if (unit_is("w")) {
      unit = 604'800'000'000'000;
    } else {
      return std::nullopt;
    }
    if (n > (INT64_MAX - total) / unit) return std::nullopt;
    total += n * unit;
  }
  return total;
}

std::optional<std::int64_t> ParseTimeArgNs(std::string_view s, std::int64_t now_ns) {
  if (s == "now") return now_ns;
  std::string_view rel = s.starts_with("now") ? s.substr(3) : s;
  const bool all_digits =
      rel.size() > 1 && rel.find_first_not_of("0123456789", 1) == std::string_view::npos;
  if (!rel.empty() && (rel[0] == '-' || rel[0] == '+') && (rel.size() != s.size() || !all_digits)) {
    auto d = ParseDurationNs(rel.substr(1));
    if (!d) return std::nullopt;
    return rel[0] == '-' ? now_ns - *d : now_ns + *d;
  }
  if (!s.empty() && s.find_first_not_of("-0123456789") == std::string_view::npos) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) return v;
    return std::nullopt;
  }
  auto t = ParseRfc3339(s);
  if (!t) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t->time_since_epoch()).count();
}

}  // namespace doppel::core
