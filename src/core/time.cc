#include "core/time.h"

#include <fmt/format.h>

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
  auto days = sys_days(
      year_month_day(year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))));
  if (!year_month_day(year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d)))
           .ok()) {
    return std::nullopt;
  }
  auto tp = time_point_cast<system_clock::duration>(days) + hours(h) + minutes(mi) + seconds(se) +
            microseconds(micros) - minutes(offset_min);
  return tp;
}

}  // namespace doppel::core
