#include "sync/units.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <numbers>

namespace doppel::sync {
namespace {

// base = (value - zero) * num / den, in the quantity's base unit.
struct UnitDef {
  std::string_view name;
  std::string_view quantity;
  double num;
  double den;
  double zero = 0;
};

constexpr double kPi = std::numbers::pi;
constexpr double kKi = 1024.0;
constexpr double kMi = kKi * kKi;
constexpr double kGi = kMi * kKi;
constexpr double kTi = kGi * kKi;
constexpr double kEi = kTi * kKi * kKi;
constexpr double kZi = kEi * kKi;
constexpr double kYi = kZi * kKi;
// International Table BTU in joules: 1055.05585262 = 105505585262 / 1e8.
constexpr double kBtuNum = 105505585262.0;
constexpr double kJulianYear = 31557600.0;       // seconds in 365.25 days
constexpr double kPoundForce = 4.4482216152605;  // N: 0.45359237 kg * 9.80665 m/s²

// Base units: metre per second squared, radian, radian per second (squared), volt-ampere(-hour),
// square metre, farad, unity, ampere, bit (per second), kilogram per cubic metre, metre, coulomb,
// joule, watt, newton, hertz, lux, henry, gray, sievert, watt per square metre, candela per square
// metre, lumen, candela, weber, tesla, kilogram, kilogram per second, pascal, becquerel,
// var(-hour), ohm, decibel, degree Celsius, second, newton metre, metre per second, volt, cubic
// metre, cubic metre per second.
constexpr UnitDef kUnits[] = {
    {"centimetrePerSecondSquared", "acceleration", 1, 100},
    {"gForce", "acceleration", 980665, 100000},
    {"metrePerSecondSquared", "acceleration", 1, 1},

    {"degreeOfArc", "angle", kPi, 180},
    {"minuteOfArc", "angle", kPi, 10800},
    {"radian", "angle", 1, 1},
    {"secondOfArc", "angle", kPi, 648000},
    {"turn", "angle", 2 * kPi, 1},

    {"radianPerSecondSquared", "angular acceleration", 1, 1},

    {"degreePerSecond", "angular velocity", kPi, 180},
    {"radianPerSecond", "angular velocity", 1, 1},
    {"revolutionPerMinute", "angular velocity", 2 * kPi, 60},
    {"revolutionPerSecond", "angular velocity", 2 * kPi, 1},

    {"voltAmpereHour", "apparent energy", 1, 1},
    {"kilovoltAmpereHour", "apparent energy", 1e3, 1},
    {"megavoltAmpereHour", "apparent energy", 1e6, 1},
    {"gigavoltAmpereHour", "apparent energy", 1e9, 1},

    {"millivoltAmpere", "apparent power", 1, 1e3},
    {"voltAmpere", "apparent power", 1, 1},
    {"kilovoltAmpere", "apparent power", 1e3, 1},
    {"megavoltAmpere", "apparent power", 1e6, 1},
    {"gigavoltAmpere", "apparent power", 1e9, 1},

    {"acre", "area", 40468564224.0, 1e7},
    {"hectare", "area", 1e4, 1},
    {"squareCentimetre", "area", 1, 1e4},
    {"squareFoot", "area", 9290304, 1e8},
    {"squareInch", "area", 64516, 1e8},
    {"squareKilometre", "area", 1e6, 1},
    {"squareMetre", "area", 1, 1},
    {"squareMillimetre", "area", 1, 1e6},

    {"farad", "capacitance", 1, 1},
    {"microfarad", "capacitance", 1, 1e6},
    {"millifarad", "capacitance", 1, 1e3},
    {"nanofarad", "capacitance", 1, 1e9},
    {"picofarad", "capacitance", 1, 1e12},

    {"partsPerBillion", "ratio", 1, 1e9},
    {"partsPerMillion", "ratio", 1, 1e6},
    {"partsPerQuadrillion", "ratio", 1, 1e15},
    {"partsPerTrillion", "ratio", 1, 1e12},
    {"percent", "ratio", 1, 100},
    {"unity", "ratio", 1, 1},

    {"ampere", "electric current", 1, 1},
    {"kiloampere", "electric current", 1e3, 1},
    {"microampere", "electric current", 1, 1e6},
    {"milliampere", "electric current", 1, 1e3},

    {"bitPerSecond", "data rate", 1, 1},
    {"bytePerSecond", "data rate", 8, 1},
    {"kibibitPerSecond", "data rate", kKi, 1},
    {"kibibytePerSecond", "data rate", 8 * kKi, 1},
    {"mebibitPerSecond", "data rate", kMi, 1},
    {"mebibytePerSecond", "data rate", 8 * kMi, 1},
    {"gibibitPerSecond", "data rate", kGi, 1},
    {"gibibytePerSecond", "data rate", 8 * kGi, 1},
    {"tebibitPerSecond", "data rate", kTi, 1},
    {"tebibytePerSecond", "data rate", 8 * kTi, 1},
    {"exbibitPerSecond", "data rate", kEi, 1},
    {"exbibytePerSecond", "data rate", 8 * kEi, 1},
    {"zebibitPerSecond", "data rate", kZi, 1},
    {"zebibytePerSecond", "data rate", 8 * kZi, 1},
    {"yobibitPerSecond", "data rate", kYi, 1},
    {"yobibytePerSecond", "data rate", 8 * kYi, 1},

    {"bit", "data size", 1, 1},
    {"byte", "data size", 8, 1},
    {"kibibit", "data size", kKi, 1},
    {"kibibyte", "data size", 8 * kKi, 1},
    {"mebibit", "data size", kMi, 1},
    {"mebibyte", "data size", 8 * kMi, 1},
    {"gibibit", "data size", kGi, 1},
    {"gibibyte", "data size", 8 * kGi, 1},
    {"tebibit", "data size", kTi, 1},
    {"tebibyte", "data size", 8 * kTi, 1},
    {"exbibit", "data size", kEi, 1},
    {"exbibyte", "data size", 8 * kEi, 1},
    {"zebibit", "data size", kZi, 1},
    {"zebibyte", "data size", 8 * kZi, 1},
    {"yobibit", "data size", kYi, 1},
    {"yobibyte", "data size", 8 * kYi, 1},

    {"gramPerCubicMetre", "density", 1, 1e3},
    {"kilogramPerCubicMetre", "density", 1, 1},
    {"microgramPerCubicMetre", "density", 1, 1e9},
    {"milligramPerCubicMetre", "density", 1, 1e6},

    {"astronomicalUnit", "length", 149597870700.0, 1},
    {"centimetre", "length", 1, 100},
    {"foot", "length", 3048, 1e4},
    {"inch", "length", 254, 1e4},
    {"kilometre", "length", 1e3, 1},
    {"metre", "length", 1, 1},
    {"micrometre", "length", 1, 1e6},
    {"mile", "length", 1609344, 1e3},
    {"millimetre", "length", 1, 1e3},
    {"nanometre", "length", 1, 1e9},
    {"nauticalMile", "length", 1852, 1},

    {"ampereHour", "electric charge", 3600, 1},
    {"coulomb", "electric charge", 1, 1},
    {"milliampereHour", "electric charge", 36, 10},

    {"britishThermalUnit", "energy", kBtuNum, 1e8},
    {"electronvolt", "energy", 1.602176634e-19, 1},
    {"gigajoule", "energy", 1e9, 1},
    {"gigawattHour", "energy", 3.6e12, 1},
    {"joule", "energy", 1, 1},
    {"kiloBritishThermalUnit", "energy", kBtuNum, 1e5},
    {"kilojoule", "energy", 1e3, 1},
    {"kilowattHour", "energy", 3.6e6, 1},
    {"megaelectronvolt", "energy", 1.602176634e-13, 1},
    {"megajoule", "energy", 1e6, 1},
    {"megawattHour", "energy", 3.6e9, 1},
    {"milliwattHour", "energy", 36, 10},
    {"terawattHour", "energy", 3.6e15, 1},
    {"wattHour", "energy", 3600, 1},

    {"britishThermalUnitPerHour", "power", kBtuNum, 3.6e11},
    {"gigajoulePerHour", "power", 1e9, 3600},
    {"gigawatt", "power", 1e9, 1},
    {"horsepower", "power", 745.69987158227022, 1},
    {"joulePerHour", "power", 1, 3600},
    {"joulePerSecond", "power", 1, 1},
    {"kiloBritishThermalUnitPerHour", "power", kBtuNum, 3.6e8},
    {"kilojoulePerHour", "power", 1e3, 3600},
    {"kilojoulePerSecond", "power", 1e3, 1},
    {"kilowatt", "power", 1e3, 1},
    {"kilowattHourPerYear", "power", 3.6e6, kJulianYear},
    {"megajoulePerHour", "power", 1e6, 3600},
    {"megawatt", "power", 1e6, 1},
    {"microwatt", "power", 1, 1e6},
    {"milliwatt", "power", 1, 1e3},
    {"tonOfRefrigeration", "power", kBtuNum * 12, 3.6e8},
    {"watt", "power", 1, 1},

    {"newton", "force", 1, 1},
    {"ounce", "force", kPoundForce, 16},
    {"pound", "force", kPoundForce, 1},

    {"gigahertz", "frequency", 1e9, 1},
    {"hertz", "frequency", 1, 1},
    {"kilohertz", "frequency", 1e3, 1},
    {"megahertz", "frequency", 1e6, 1},
    {"millihertz", "frequency", 1, 1e3},

    {"footcandle", "illuminance", 1e8, 9290304},
    {"lux", "illuminance", 1, 1},

    {"henry", "inductance", 1, 1},
    {"microhenry", "inductance", 1, 1e6},
    {"millihenry", "inductance", 1, 1e3},

    {"gray", "absorbed dose", 1, 1},
    {"microgray", "absorbed dose", 1, 1e6},
    {"milligray", "absorbed dose", 1, 1e3},
    {"sievert", "equivalent dose", 1, 1},
    {"microsievert", "equivalent dose", 1, 1e6},
    {"millisievert", "equivalent dose", 1, 1e3},

    {"wattPerSquareMetre", "irradiance", 1, 1},
    {"candelaPerSquareMetre", "luminance", 1, 1},
    {"lumen", "luminous flux", 1, 1},
    {"candela", "luminous intensity", 1, 1},

    {"maxwell", "magnetic flux", 1, 1e8},
    {"weber", "magnetic flux", 1, 1},
    {"gauss", "magnetic induction", 1, 1e4},
    {"tesla", "magnetic induction", 1, 1},

    {"gram", "mass", 1, 1e3},
    {"kilogram", "mass", 1, 1},
    {"massPound", "mass", 45359237, 1e8},
    {"microgram", "mass", 1, 1e9},
    {"milligram", "mass", 1, 1e6},
    {"slug", "mass", kPoundForce * 1e4, 3048},  // lbf·s²/ft
    {"tonne", "mass", 1e3, 1},

    {"gramPerHour", "mass flow rate", 1, 3.6e6},
    {"gramPerSecond", "mass flow rate", 1, 1e3},
    {"kilogramPerHour", "mass flow rate", 1, 3600},
    {"kilogramPerSecond", "mass flow rate", 1, 1},
    {"massPoundPerHour", "mass flow rate", 45359237, 3.6e11},

    {"bar", "pressure", 1e5, 1},
    {"decapascal", "pressure", 10, 1},
    {"hectopascal", "pressure", 100, 1},
    {"inchesOfMercury", "pressure", 3386.388640341, 1},
    {"inchesOfWater", "pressure", 24908891, 1e5},
    {"kilopascal", "pressure", 1e3, 1},
    {"millibar", "pressure", 100, 1},
    {"millimetresOfMercury", "pressure", 133322387415.0, 1e9},
    {"pascal", "pressure", 1, 1},
    {"poundPerSquareInch", "pressure", kPoundForce * 1e8, 64516},  // lbf / in²

    {"becquerel", "radioactivity", 1, 1},
    {"kilobecquerel", "radioactivity", 1e3, 1},
    {"megabecquerel", "radioactivity", 1e6, 1},
    {"gigabecquerel", "radioactivity", 1e9, 1},

    {"voltAmpereReactiveHour", "reactive energy", 1, 1},
    {"kilovoltAmpereReactiveHour", "reactive energy", 1e3, 1},
    {"megavoltAmpereReactiveHour", "reactive energy", 1e6, 1},
    {"gigavoltAmpereReactiveHour", "reactive energy", 1e9, 1},

    {"millivoltAmpereReactive", "reactive power", 1, 1e3},
    {"voltAmpereReactive", "reactive power", 1, 1},
    {"kilovoltAmpereReactive", "reactive power", 1e3, 1},
    {"megavoltAmpereReactive", "reactive power", 1e6, 1},
    {"gigavoltAmpereReactive", "reactive power", 1e9, 1},

    {"kiloohm", "resistance", 1e3, 1},
    {"megaohm", "resistance", 1e6, 1},
    {"milliohm", "resistance", 1, 1e3},
    {"ohm", "resistance", 1, 1},

    {"bel", "sound pressure level", 10, 1},
    {"decibel", "sound pressure level", 1, 1},

    {"degreeCelsius", "temperature", 1, 1, 0},
    {"degreeFahrenheit", "temperature", 5, 9, 32},
    {"kelvin", "temperature", 1, 1, 273.15},

    {"day", "time", 86400, 1},
    {"hour", "time", 3600, 1},
    {"microsecond", "time", 1, 1e6},
    {"millisecond", "time", 1, 1e3},
    {"minute", "time", 60, 1},
    {"nanosecond", "time", 1, 1e9},
    {"second", "time", 1, 1},
    {"year", "time", kJulianYear, 1},

    {"newtonMetre", "torque", 1, 1},

    {"centimetrePerSecond", "velocity", 1, 100},
    {"kilometrePerHour", "velocity", 1e3, 3600},
    {"kilometrePerSecond", "velocity", 1e3, 1},
    {"knot", "velocity", 1852, 3600},
    {"metrePerHour", "velocity", 1, 3600},
    {"metrePerSecond", "velocity", 1, 1},
    {"milePerHour", "velocity", 1609344, 3.6e6},
    {"milePerSecond", "velocity", 1609344, 1e3},

    {"kilovolt", "voltage", 1e3, 1},
    {"megavolt", "voltage", 1e6, 1},
    {"microvolt", "voltage", 1, 1e6},
    {"millivolt", "voltage", 1, 1e3},
    {"volt", "voltage", 1, 1},

    {"cubicCentimetre", "volume", 1, 1e6},
    {"cubicFoot", "volume", 28316846592.0, 1e12},
    {"cubicInch", "volume", 16387064, 1e12},
    {"cubicMetre", "volume", 1, 1},
    {"fluidOunce", "volume", 295735295625.0, 1e16},
    {"gallon", "volume", 3785411784.0, 1e12},
    {"litre", "volume", 1, 1e3},
    {"millilitre", "volume", 1, 1e6},

    {"cubicFootPerMinute", "volume flow rate", 28316846592.0, 6e13},
    {"cubicMetrePerHour", "volume flow rate", 1, 3600},
    {"cubicMetrePerMinute", "volume flow rate", 1, 60},
    {"cubicMetrePerSecond", "volume flow rate", 1, 1},
    {"gallonPerHour", "volume flow rate", 3785411784.0, 3.6e15},
    {"gallonPerMinute", "volume flow rate", 3785411784.0, 6e13},
    {"litrePerHour", "volume flow rate", 1, 3.6e6},
    {"litrePerMinute", "volume flow rate", 1, 6e4},
    {"litrePerSecond", "volume flow rate", 1, 1e3},
    {"millilitrePerHour", "volume flow rate", 1, 3.6e9},
    {"millilitrePerMinute", "volume flow rate", 1, 6e7},
    {"millilitrePerSecond", "volume flow rate", 1, 1e6},
};

constexpr bool NamesUnique() {
  for (std::size_t i = 0; i < std::size(kUnits); ++i) {
    for (std::size_t j = i + 1; j < std::size(kUnits); ++j) {
      if (kUnits[i].name == kUnits[j].name) return false;
    }
  }
  return true;
}
static_assert(NamesUnique());

// DTDL names doppel knows but does not convert, with the reason.
struct Refused {
  std::string_view name;
  std::string_view why;
};
constexpr Refused kRefused[] = {
    {"ton", "is ambiguous (short, long and metric ton-force are all in use)"},
};

// Common spellings that are not DTDL names, for suggestions.
struct Alias {
  std::string_view alias;
  std::string_view name;
};
constexpr Alias kAliases[] = {
    {"psi", "poundPerSquareInch"},
    {"rpm", "revolutionPerMinute"},
    {"degC", "degreeCelsius"},
    {"celsius", "degreeCelsius"},
    {"degF", "degreeFahrenheit"},
    {"fahrenheit", "degreeFahrenheit"},
    {"K", "kelvin"},
    {"C", "degreeCelsius"},
    {"F", "degreeFahrenheit"},
    {"Pa", "pascal"},
    {"kPa", "kilopascal"},
    {"hPa", "hectopascal"},
    {"mbar", "millibar"},
    {"W", "watt"},
    {"kW", "kilowatt"},
    {"MW", "megawatt"},
    {"hp", "horsepower"},
    {"kWh", "kilowattHour"},
    {"Wh", "wattHour"},
    {"J", "joule"},
    {"V", "volt"},
    {"mV", "millivolt"},
    {"A", "ampere"},
    {"mA", "milliampere"},
    {"Hz", "hertz"},
    {"s", "second"},
    {"ms", "millisecond"},
    {"min", "minute"},
    {"h", "hour"},
    {"m", "metre"},
    {"mm", "millimetre"},
    {"km", "kilometre"},
    {"kg", "kilogram"},
    {"g", "gram"},
    {"l", "litre"},
    {"L", "litre"},
    {"m3", "cubicMetre"},
    {"m3/h", "cubicMetrePerHour"},
    {"l/s", "litrePerSecond"},
    {"%", "percent"},
    {"meter", "metre"},
    {"liter", "litre"},
    {"rad/s", "radianPerSecond"},
    {"m/s", "metrePerSecond"},
    {"km/h", "kilometrePerHour"},
};

const UnitDef* Find(std::string_view name) {
  for (const UnitDef& u : kUnits) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

// Case-insensitive Levenshtein distance.
std::size_t Distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (Lower(a[i - 1]) != Lower(b[j - 1]))});
      diag = up;
    }
  }
  return row[b.size()];
}

// The DTDL name `name` probably means, or "".
std::string_view Suggest(std::string_view name) {
  for (const Alias& a : kAliases) {
    if (a.alias == name) return a.name;
  }
  std::string_view best;
  std::size_t best_d = std::max<std::size_t>(2, name.size() / 4) + 1;
  for (const UnitDef& u : kUnits) {
    std::size_t d = Distance(name, u.name);
    if (d < best_d) {
      best_d = d;
      best = u.name;
    }
  }
  return best;
}

}  // namespace

double UnitConversion::Apply(double v) const {
  double x = v - from_zero;
  double scaled = x * mul / div;
  // mul / div as one factor when the product alone overflows (huge values only).
  if (!std::isfinite(scaled) && std::isfinite(x)) scaled = x * (mul / div);
  return scaled + to_zero;
}

std::optional<UnitInfo> FindUnit(std::string_view name) {
  const UnitDef* u = Find(name);
  if (u == nullptr) return std::nullopt;
  return UnitInfo{u->name, u->quantity};
}

std::vector<std::string_view> UnitsOfQuantity(std::string_view quantity) {
  std::vector<std::string_view> out;
  for (const UnitDef& u : kUnits) {
    if (u.quantity == quantity) out.push_back(u.name);
  }
  return out;
}

core::Status UnknownUnit(std::string_view name, std::string pointer) {
  for (const Refused& r : kRefused) {
    if (r.name == name) {
      return core::Status("MAPPING_UNIT",
                          fmt::format("unit '{}' {}; doppel does not convert it", name, r.why),
                          std::move(pointer));
    }
  }
  std::string_view suggestion = Suggest(name);
  std::string message = fmt::format("unknown unit '{}'", name);
  if (!suggestion.empty()) {
    message += fmt::format(" (did you mean '{}'?)", suggestion);
  } else {
    message += "; units are DTDL unit names such as degreeCelsius, kilopascal, revolutionPerMinute";
  }
  return core::Status("MAPPING_UNIT", std::move(message), std::move(pointer));
}

core::Result<UnitConversion> ConversionBetween(std::string_view from, std::string_view to) {
  const UnitDef* a = Find(from);
  if (a == nullptr) return UnknownUnit(from);
  const UnitDef* b = Find(to);
  if (b == nullptr) return UnknownUnit(to);
  if (a == b) return UnitConversion{};
  if (a->quantity != b->quantity) {
    std::string units;
    for (std::string_view u : UnitsOfQuantity(a->quantity)) {
      if (!units.empty()) units += ", ";
      units += u;
    }
    return core::Status("MAPPING_UNIT",
                        fmt::format("cannot convert {} ({}) to {} ({}); units of {}: {}", a->name,
                                    a->quantity, b->name, b->quantity, a->quantity, units));
  }
  // (v - za) * na / da = (w - zb) * nb / db  =>  w = (v - za) * (na * db) / (da * nb) + zb
  return UnitConversion{a->zero, a->num * b->den, a->den * b->num, b->zero};
}

}  // namespace doppel::sync
