// doppel::model — DTDL semantic types and units.
//
// Tables transcribed from the specifications:
//  * DTDL v2 (DTDL.v2.md, "Semantic types" and "Units"): semantic types are native co-types of
//    Property and Telemetry.
//  * DTDL v3 quantitative-types extension v1 (DTDL.quantitativeTypes.v1.md,
//    context dtmi:dtdl:extension:quantitativeTypes;1).
// Each semantic type names one unit type; each unit type lists its unit names. Unit types can be
// shared (v3: Humidity uses DensityUnit, Luminosity uses PowerUnit, ...).
#pragma once

#include <optional>
#include <span>
#include <string_view>

namespace doppel::model {

enum class SemanticTable { kDtdlV2, kQuantitativeTypesV1 };

// The unit type (e.g. "TemperatureUnit") of `semantic_type` (e.g. "Temperature") in `table`, or
// nullopt if `semantic_type` is not a semantic type there.
std::optional<std::string_view> UnitTypeOf(SemanticTable table, std::string_view semantic_type);

// True if `unit` (e.g. "degreeCelsius") is a unit of `unit_type` in `table`.
bool IsUnitOf(SemanticTable table, std::string_view unit_type, std::string_view unit);

// All unit names of `unit_type` in `table` (empty if unknown) — for error messages.
std::span<const std::string_view> UnitsOf(SemanticTable table, std::string_view unit_type);

}  // namespace doppel::model
