// doppel::core — timestamps on the wire: RFC 3339 UTC with microseconds
// ("2024-05-31T13:45:00.123456Z").
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace doppel::core {

std::string FormatRfc3339(std::chrono::system_clock::time_point t);

// Reads exactly `n` decimal digits of `s` at `pos` into *out. False if they are not all there.
bool ParseFixedDigits(std::string_view s, std::size_t pos, std::size_t n, int* out);

// Parses an RFC 3339 date-time (any offset, optional fraction). nullopt if malformed.
std::optional<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view s);

// A duration as InfluxDB writes them: one or more <integer><unit> pairs, units ns, us (or µs),
// ms, s, m, h, d, w ("90s", "1h30m", "500ms"). nullopt if malformed, negative or overflowing.
std::optional<std::int64_t> ParseDurationNs(std::string_view s);

// A point in time for a query: an RFC 3339 date-time, an integer (nanoseconds since the epoch),
// "now", or now minus/plus a duration ("now-1h", "-15m", "now+5m"). Nanoseconds since the
// epoch; nullopt if malformed.
std::optional<std::int64_t> ParseTimeArgNs(std::string_view s, std::int64_t now_ns);

}  // namespace doppel::core
