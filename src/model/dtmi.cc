#include "model/dtmi.h"

#include <fmt/format.h>

namespace doppel::model {
namespace {

bool IsAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSegmentChar(char c) { return IsAlpha(c) || IsDigit(c) || c == '_'; }

// Checks a version string without the ';'. Returns a problem description or empty.
std::string VersionProblem(std::string_view v, bool* has_minor) {
  auto check_number = [](std::string_view n, std::size_t max_digits) -> bool {
    if (n.empty() || n.size() > max_digits || n[0] == '0') return false;
    for (char c : n) {
      if (!IsDigit(c)) return false;
    }
    return true;
  };
  std::size_t dot = v.find('.');
  *has_minor = dot != std::string_view::npos;
  std::string_view major = v.substr(0, dot);
  if (!check_number(major, 9)) {
    return "the major version must be 1 to 9 digits without a leading zero";
  }
  if (*has_minor && !check_number(v.substr(dot + 1), 6)) {
    return "the minor version must be 1 to 6 digits without a leading zero";
  }
  return {};
}

}  // namespace

std::pair<std::string_view, std::string_view> SplitDtmiVersion(std::string_view id) {
  std::size_t semi = id.rfind(';');
  if (semi == std::string_view::npos) return {id, {}};
  return {id.substr(0, semi), id.substr(semi)};
}

std::optional<DtmiProblem> CheckDtmi(std::string_view id, DtdlVersion version, bool is_definition,
                                     std::size_t max_length) {
  auto invalid = [&](std::string why) {
    return DtmiProblem{"INVALID_DTMI", fmt::format("'{}' is not a valid DTMI: {}",
                                                   id.substr(0, 200), why)};
  };
  if (id.size() > max_length) {
    return DtmiProblem{"STRING_TOO_LONG",
                       fmt::format("DTMI is {} characters; the limit here is {}", id.size(),
                                   max_length)};
  }
  if (id.substr(0, 5) != "dtmi:") return invalid("it must start with 'dtmi:'");
  if (id.find('#') != std::string_view::npos) {
    return invalid("an element identifier may not have a '#' fragment");
  }
  auto [path, ver] = SplitDtmiVersion(id.substr(5));
  if (path.empty()) return invalid("it has no path segment");
  std::size_t start = 0;
  bool system_segment = false;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(start, end - start);
    if (seg.empty()) return invalid("it has an empty segment");
    if (IsDigit(seg[0])) return invalid(fmt::format("segment '{}' starts with a digit", seg));
    if (seg.back() == '_') return invalid(fmt::format("segment '{}' ends with '_'", seg));
    for (char c : seg) {
      if (!IsSegmentChar(c)) {
        return invalid(fmt::format("segment '{}' has a character other than letters, digits "
                                   "and '_'",
                                   seg));
      }
    }
    if (seg[0] == '_') system_segment = true;
    start = end + 1;
  }
  if (system_segment) {
    return invalid("segments starting with '_' are reserved for system-generated identifiers");
  }
  if (!ver.empty()) {
    bool has_minor = false;
    std::string problem = VersionProblem(ver.substr(1), &has_minor);
    if (!problem.empty()) return invalid(problem);
    if (has_minor && version == DtdlVersion::kV2) {
      return DtmiProblem{"DTMI_VERSION_REQUIRED",
                         fmt::format("'{}': DTDL v2 identifiers take a single-number version "
                                     "(';1'), not major.minor",
                                     id)};
    }
  } else if (version == DtdlVersion::kV2) {
    return DtmiProblem{"DTMI_VERSION_REQUIRED",
                       fmt::format("'{}' has no version; DTDL v2 requires one, e.g. '{};1'", id,
                                   id)};
  }
  if (is_definition && (path.starts_with("dtdl:") || path == "dtdl" ||
                        path.starts_with("standard:") || path == "standard")) {
    return DtmiProblem{"RESERVED_DTMI",
                       fmt::format("'{}' is under a prefix reserved for the DTDL language "
                                   "(dtmi:dtdl: and dtmi:standard:)",
                                   id)};
  }
  return std::nullopt;
}

bool LooksLikeDtmi(std::string_view id) {
  if (id.substr(0, 5) != "dtmi:") return false;
  auto [path, ver] = SplitDtmiVersion(id.substr(5));
  if (path.empty()) return false;
  for (char c : path) {
    if (!IsSegmentChar(c) && c != ':') return false;
  }
  bool has_minor = false;
  return ver.empty() || VersionProblem(ver.substr(1), &has_minor).empty();
}

}  // namespace doppel::model
