// doppel::core — timestamps on the wire: RFC 3339 UTC with microseconds
// ("2024-05-31T13:45:00.123456Z").
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace doppel::core {

std::string FormatRfc3339(std::chrono::system_clock::time_point t);

// Reads exactly `n` decimal digits of `s` at `pos` into *out. False if they are not all there.
bool ParseFixedDigits(std::string_view s, std::size_t pos, std::size_t n, int* out);

// Parses an RFC 3339 date-time (any offset, optional fraction). nullopt if malformed.
std::optional<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view s);

}  // namespace doppel::core
