// doppel::model — Digital Twin Model Identifiers (DTMI).
//
// Grammar (DTMI spec, github.com/Azure/opendigitaltwins-dtdl/DTMI):
//   dtmi:<segment>(:<segment>)*[;<version>]
//   segment: [A-Za-z_][A-Za-z0-9_]* not ending in '_'; a leading '_' marks a *system* segment
//            (auto-generated ids only, never in model documents)
//   version: [1-9][0-9]{0,8} ( '.' [1-9][0-9]{0,5} )?   (v2: major only, and required)
// Comparison is exact, case-sensitive string equality.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace doppel::model {

enum class DtdlVersion : int { kV2 = 2, kV3 = 3 };

inline constexpr std::size_t kMaxDtmiLength = 4096;
inline constexpr std::size_t kMaxUserDtmiLength = 2048;
inline constexpr std::size_t kMaxInterfaceIdLength = 128;

struct DtmiProblem {
  std::string code;     // INVALID_DTMI, DTMI_VERSION_REQUIRED, RESERVED_DTMI, STRING_TOO_LONG
  std::string message;  // says what is wrong with the identifier
};

// Checks `id` as a DTMI written in a DTDL `version` document. `is_definition` is true for an
// element's own `@id` (reserved prefixes are then refused); false for a reference.
// Returns nullopt when valid.
std::optional<DtmiProblem> CheckDtmi(std::string_view id, DtdlVersion version, bool is_definition,
                                     std::size_t max_length = kMaxUserDtmiLength);

// True if `id` is syntactically a DTMI (system segments allowed, version optional).
bool LooksLikeDtmi(std::string_view id);

// `id` with its ";version" suffix split off: {"dtmi:a:b", ";1"}.
std::pair<std::string_view, std::string_view> SplitDtmiVersion(std::string_view id);

}  // namespace doppel::model
