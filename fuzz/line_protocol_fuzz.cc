// libFuzzer target for the InfluxDB line protocol parser (sync/line_protocol.h).
//
// Input: a /write body, as is. It is parsed in nanosecond and in hour precision, by ParseLines and
// by ParseLinesInto.
//
// Besides sanitizer findings, the target aborts when the parser breaks a documented contract:
//   * an error without an LP_ code or a message, or with line/column 0, or beyond the body;
//   * results out of body order, or two results for one line;
//   * a point without a measurement or fields, with duplicate tag or field keys, or a timestamp
//     outside InfluxDB's range;
//   * ParseLines and ParseLinesInto disagreeing;
//   * a point that does not survive FormatLine and ParseLine unchanged;
//   * hour precision changing anything but the timestamps (each scaled by 3.6e12, or the line
//     rejected with LP_TIMESTAMP_OUT_OF_RANGE when the scaled value leaves the range) or where
//     bad lines end (so the results pair up one to one).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "sync/line_protocol.h"

namespace doppel::sync {
namespace {

// Aborts with a message: libFuzzer records the input as a crash.
[[noreturn]] void Violation(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "line_protocol_fuzz: contract violated: %s\n%s\n", what, detail.c_str());
  std::abort();
}

constexpr std::int64_t kMinNs = std::numeric_limits<std::int64_t>::min() + 2;
constexpr std::int64_t kMaxNs = std::numeric_limits<std::int64_t>::max() - 1;
constexpr std::int64_t kNsPerHour = 3'600'000'000'000;

// One result of a parse, in body order.
struct Item {
  std::size_t line = 0;
  bool ok = false;
  LinePoint point;
  LineError error;
};

std::vector<Item> ParseAll(std::string_view body, Precision precision) {
  std::vector<Item> items;
  ParseLinesInto(
      body, precision,
      [&](const LinePointView& v) {
        items.push_back({v.line, true, ToLinePoint(v), {}});
      },
      [&](const LineError& e) {
        items.push_back({e.line, false, {}, e});
      });
  return items;
}

void CheckItems(const std::vector<Item>& items, std::size_t lines_in_body) {
  std::size_t previous = 0;
  for (const Item& it : items) {
    if (it.line == 0 || it.line > lines_in_body) Violation("result line outside the body");
    if (it.line <= previous) Violation("results out of order or two for one line");
    previous = it.line;
    if (!it.ok) {
      const LineError& e = it.error;
      if (e.code.rfind("LP_", 0) != 0 || e.message.empty())
        Violation("error without code or message");
      if (e.column == 0) Violation("error with column 0");
      continue;
    }
    const LinePoint& p = it.point;
    if (p.measurement.empty()) Violation("point without measurement", FormatLine(p));
    if (p.fields.empty()) Violation("point without fields", FormatLine(p));
    for (std::size_t i = 0; i < p.tags.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (p.tags[i].first == p.tags[j].first) Violation("duplicate tag key", FormatLine(p));
      }
    }
    for (std::size_t i = 0; i < p.fields.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (p.fields[i].key == p.fields[j].key) Violation("duplicate field key", FormatLine(p));
      }
    }
    if (p.timestamp_ns && (*p.timestamp_ns < kMinNs || *p.timestamp_ns > kMaxNs)) {
      Violation("timestamp outside the range", FormatLine(p));
    }
  }
}

void FuzzOne(std::string_view body) {
  const std::size_t lines_in_body =
      static_cast<std::size_t>(std::count(body.begin(), body.end(), '\n')) + 1;

  const std::vector<Item> ns = ParseAll(body, Precision::kNanoseconds);
  CheckItems(ns, lines_in_body);

  // ParseLines is the same parser, materialized.
  std::vector<LinePoint> points;
  std::vector<LineError> errors;
  ParseLines(body, Precision::kNanoseconds, &points, &errors);
  std::size_t pi = 0;
  std::size_t ei = 0;
  for (const Item& it : ns) {
    if (it.ok ? (pi >= points.size() || !(points[pi++] == it.point))
              : (ei >= errors.size() || errors[ei++].ToString() != it.error.ToString())) {
      Violation("ParseLines and ParseLinesInto disagree");
    }
  }
  if (pi != points.size() || ei != errors.size()) Violation("ParseLines found more");

  // Every point written back reads back the same.
  for (const LinePoint& p : points) {
    const std::string line = FormatLine(p);
    auto back = ParseLine(line, Precision::kNanoseconds, p.line);
    if (!back.ok())
      Violation("FormatLine output does not parse", line + "\n" + back.status().ToString());
    if (!(*back == p)) Violation("FormatLine output parses to another point", line);
  }

  // Hour precision: the same lines, timestamps scaled or out of range.
  const std::vector<Item> h = ParseAll(body, Precision::kHours);
  CheckItems(h, lines_in_body);
  if (h.size() != ns.size()) Violation("precision changed the number of results");
  for (std::size_t i = 0; i < ns.size(); ++i) {
    const Item& a = ns[i];
    const Item& b = h[i];
    if (!a.ok) {
      // Errors are located where the problem is, which may be on a later line of a point whose
      // string value spans lines: only the outcome must agree.
      if (b.ok) Violation("a line rejected in ns precision is accepted in h precision");
      continue;
    }
    std::int64_t scaled = 0;
    const bool fits = !a.point.timestamp_ns ||
                      (!__builtin_mul_overflow(*a.point.timestamp_ns, kNsPerHour, &scaled) &&
                       scaled >= kMinNs && scaled <= kMaxNs);
    if (!fits) {
      if (b.ok || b.error.code != "LP_TIMESTAMP_OUT_OF_RANGE") {
        Violation("scaled timestamp out of range not reported", FormatLine(a.point));
      }
      continue;
    }
    if (!b.ok) Violation("h precision rejected a line ns accepted", b.error.ToString());
    if (a.line != b.line) Violation("precision changed which lines give results");
    LinePoint expect = a.point;
    if (expect.timestamp_ns) expect.timestamp_ns = scaled;
    if (!(b.point == expect)) Violation("h precision changed more than the timestamp");
  }
}

}  // namespace
}  // namespace doppel::sync

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  doppel::sync::FuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
