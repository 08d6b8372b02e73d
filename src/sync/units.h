// doppel::sync — unit conversion for ingest mappings: the DTDL unit names, each a linear
// function of its quantity's base unit.
//
// What it does
//   A device sends degreeFahrenheit, the model says degreeCelsius: ConversionBetween gives the
//   linear function from one to the other, or MAPPING_UNIT when there is none (unknown unit, or
//   units of different quantities). Conversions are looked up once, when a mapping is saved;
//   applying one is a subtraction, a multiplication, a division and an addition.
//
// How to use it
//   auto c = ConversionBetween("degreeFahrenheit", "degreeCelsius");
//   if (!c.ok()) return c.status();        // MAPPING_UNIT, message says why
//   double celsius = c->Apply(98.6);       // 37
//
// The table
//   Every unit name of the DTDL v2 table and of the DTDL v3 quantitativeTypes extension
//   (model/semantic_units.h; same spelling) except `ton` (below). Each unit is
//     base = (value - zero) * num / den
//   in its quantity's base unit (SI where there is one; degreeCelsius for temperature). num and
//   den are exact in binary where the definition is a decimal or rational number, so a conversion
//   between two such units is correctly rounded (1 bar = 100 kPa and 32 degreeFahrenheit = 0
//   degreeCelsius exactly, not nearly); units defined through pi, the electronvolt and a few
//   derived US units (slug, ounce-force, pound-force per square inch, horsepower) carry one
//   rounding.
//   Definitions where the name alone is ambiguous (tested in tests/sync/units_test.cc):
//     gallon, fluidOunce  US liquid (3.785411784 L, 29.5735295625 mL)
//     year                Julian year, 365.25 days (also in kilowattHourPerYear)
//     britishThermalUnit  International Table BTU, 1055.05585262 J
//     horsepower          mechanical (imperial) horsepower, 550 ft·lbf/s = 745.69987158227022 W
//     ounce, pound        ounce-force and pound-force (they are DTDL ForceUnits)
//     inchesOfMercury, millimetresOfMercury, inchesOfWater   conventional (0 °C mercury,
//                         13595.1 kg/m³; water 1000 kg/m³; standard gravity 9.80665 m/s²)
//     tonOfRefrigeration  12000 BTU/h
//   Not convertible: `ton` (a DTDL ForceUnit: short, long or metric ton-force are all in use).
//   Quantities are physical, not DTDL unit types: gray and sievert are both DTDL
//   IonizingRadiationDoseUnit but absorbed and equivalent dose do not convert into each other.
//
// Error code (stable)
//   MAPPING_UNIT  unknown unit (the message suggests the nearest DTDL name when there is one),
//                 a unit doppel does not convert (`ton`), or units of different quantities
//                 (the message lists the units of the source's quantity)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace doppel::sync {

// to = (from - from_zero) * mul / div + to_zero. The identity is {0, 1, 1, 0}.
struct UnitConversion {
  double from_zero = 0;
  double mul = 1;
  double div = 1;
  double to_zero = 0;

  bool identity() const { return from_zero == 0 && mul == div && to_zero == 0; }
  double Apply(double v) const;
};

struct UnitInfo {
  std::string_view name;      // "degreeFahrenheit"
  std::string_view quantity;  // "temperature" (units of one quantity convert into each other)
};

// The unit named `name` (exact DTDL spelling), or nullopt if doppel does not know it.
std::optional<UnitInfo> FindUnit(std::string_view name);

// All units of `quantity`, in table order (empty if unknown) — for messages.
std::vector<std::string_view> UnitsOfQuantity(std::string_view quantity);

// The conversion from values in `from` to values in `to`. Identity when from == to. Error:
// MAPPING_UNIT (unknown unit, `ton`, or different quantities).
core::Result<UnitConversion> ConversionBetween(std::string_view from, std::string_view to);

// MAPPING_UNIT status for a unit FindUnit does not know, with a suggestion when one is close.
core::Status UnknownUnit(std::string_view name, std::string pointer = {});

}  // namespace doppel::sync
