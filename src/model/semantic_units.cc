// doppel::model — DTDL semantic types and units.
//
// The tables below are transcribed from the official DTDL specifications in
// github.com/Azure/opendigitaltwins-dtdl:
//
//  * v2: DTDL/v2/DTDL.v2.md, section "Semantic Type" (table "Semantic type | Unit type | Unit").
//    Read at commits 965dc75ffa89a37905b1c12c64b6a13790ea1e32 and
//    1d7c17d03cc0feaa7ceef16da2a8300de1d4488c; the table is identical in both.
//    42 semantic types, 36 unit types.
//  * quantitativeTypes v1 (context dtmi:dtdl:extension:quantitativeTypes;1, DTDL v3 only):
//    DTDL/v3/DTDL.quantitativeTypes.v1.md at commit 965dc75ffa89a37905b1c12c64b6a13790ea1e32,
//    section "Semantic types and units"; identical table in
//    DTDL/Docs/en-US/DTDL.quantitativeTypes.v1.md at commit
//    115115ce205d8a2a571e0941b2354e66eba08136. 52 semantic types, 43 unit types.
//
// Rows and units keep the spec's order (alphabetical). A unit type shared by several semantic types
// (e.g. Humidity and Density -> DensityUnit; Luminosity, Power and v3 EnergyRate -> PowerUnit;
// Distance and Length -> LengthUnit; Angle, Latitude and Longitude -> AngleUnit; Force and
// Thrust -> ForceUnit; v3 Concentration, RelativeDensity and RelativeHumidity -> Unitless) is
// listed once; the spec repeats the same unit list on every such row.
//
// Note that the two tables differ: v2 has fewer semantic types and fewer units in several unit
// types (e.g. v2 CurrentUnit has no kiloampere, v2 EnergyUnit has no wattHour).
//
// Unit spellings were cross-checked against the JSON-LD contexts
// DTDL/v2/context/DTDL.v2.context.json (commit adcd5d476c3521e21d1d35bb7c4eda82dbe27327) and
// DTDL/v3/context/DTDL.FeatureExtension.quantitativeTypes.v1.context.json (commit
// 19f9790e38bc03c27ba17fe272d8c2c38a4a3653). They agree, except that the v2 context also defines a
// term "wattHour" that no unit type in the v2 spec table lists; we follow the spec table, so v2
// rejects Energy/wattHour.

#include "model/semantic_units.h"

#include <algorithm>
#include <cstddef>
#include <iterator>

namespace doppel::model {
namespace {

struct UnitTypeEntry {
  std::string_view name;
  std::span<const std::string_view> units;
};

struct SemanticTypeEntry {
  std::string_view name;
  std::string_view unit_type;
};

// DTDL v2 (DTDL/v2/DTDL.v2.md, "Semantic Type").
namespace v2 {

constexpr std::string_view kAccelerationUnit[] = {"centimetrePerSecondSquared", "gForce",
                                                  "metrePerSecondSquared"};
constexpr std::string_view kAngleUnit[] = {"degreeOfArc", "minuteOfArc", "radian", "secondOfArc",
                                           "turn"};
constexpr std::string_view kAngularAccelerationUnit[] = {"radianPerSecondSquared"};
constexpr std::string_view kAngularVelocityUnit[] = {"degreePerSecond", "radianPerSecond",
                                                     "revolutionPerMinute", "revolutionPerSecond"};
constexpr std::string_view kAreaUnit[] = {"acre",        "hectare",         "squareCentimetre",
                                          "squareFoot",  "squareInch",      "squareKilometre",
                                          "squareMetre", "squareMillimetre"};
constexpr std::string_view kCapacitanceUnit[] = {"farad", "microfarad", "millifarad", "nanofarad",
                                                 "picofarad"};
constexpr std::string_view kCurrentUnit[] = {"ampere", "microampere", "milliampere"};
constexpr std::string_view kDataRateUnit[] = {
    "bitPerSecond",     "bytePerSecond",     "exbibitPerSecond", "exbibytePerSecond",
    "gibibitPerSecond", "gibibytePerSecond", "kibibitPerSecond", "kibibytePerSecond",
    "mebibitPerSecond", "mebibytePerSecond", "tebibitPerSecond", "tebibytePerSecond",
    "yobibitPerSecond", "yobibytePerSecond", "zebibitPerSecond", "zebibytePerSecond"};
constexpr std::string_view kDataSizeUnit[] = {
    "bit",     "byte",     "exbibit", "exbibyte", "gibibit", "gibibyte", "kibibit", "kibibyte",
    "mebibit", "mebibyte", "tebibit", "tebibyte", "yobibit", "yobibyte", "zebibit", "zebibyte"};
constexpr std::string_view kDensityUnit[] = {"gramPerCubicMetre", "kilogramPerCubicMetre"};
constexpr std::string_view kLengthUnit[] = {"astronomicalUnit", "centimetre", "foot",        "inch",
                                            "kilometre",        "metre",      "micrometre",  "mile",
                                            "millimetre",       "nanometre",  "nauticalMile"};
constexpr std::string_view kChargeUnit[] = {"coulomb"};
constexpr std::string_view kEnergyUnit[] = {"electronvolt", "gigajoule",    "joule",
                                            "kilojoule",    "kilowattHour", "megaelectronvolt",
                                            "megajoule"};
constexpr std::string_view kForceUnit[] = {"newton", "ounce", "pound", "ton"};
constexpr std::string_view kFrequencyUnit[] = {"gigahertz", "hertz", "kilohertz", "megahertz"};
constexpr std::string_view kIlluminanceUnit[] = {"footcandle", "lux"};
constexpr std::string_view kInductanceUnit[] = {"henry", "microhenry", "millihenry"};
constexpr std::string_view kLuminanceUnit[] = {"candelaPerSquareMetre"};
constexpr std::string_view kPowerUnit[] = {
    "gigawatt", "horsepower", "kilowatt",  "kilowattHourPerYear",
    "megawatt", "microwatt",  "milliwatt", "watt"};
constexpr std::string_view kLuminousFluxUnit[] = {"lumen"};
constexpr std::string_view kLuminousIntensityUnit[] = {"candela"};
constexpr std::string_view kMagneticFluxUnit[] = {"maxwell", "weber"};
constexpr std::string_view kMagneticInductionUnit[] = {"tesla"};
constexpr std::string_view kMassUnit[] = {"gram",      "kilogram", "microgram",
                                          "milligram", "slug",     "tonne"};
constexpr std::string_view kMassFlowRateUnit[] = {"gramPerHour", "gramPerSecond", "kilogramPerHour",
                                                  "kilogramPerSecond"};
constexpr std::string_view kPressureUnit[] = {
    "bar",      "inchesOfMercury",      "inchesOfWater", "kilopascal",
    "millibar", "millimetresOfMercury", "pascal",        "poundPerSquareInch"};
constexpr std::string_view kUnitless[] = {"percent", "unity"};
constexpr std::string_view kResistanceUnit[] = {"kiloohm", "megaohm", "milliohm", "ohm"};
constexpr std::string_view kSoundPressureUnit[] = {"bel", "decibel"};
constexpr std::string_view kTemperatureUnit[] = {"degreeCelsius", "degreeFahrenheit", "kelvin"};
constexpr std::string_view kTimeUnit[] = {"day",    "hour",       "microsecond", "millisecond",
                                          "minute", "nanosecond", "second",      "year"};
constexpr std::string_view kTorqueUnit[] = {"newtonMetre"};
constexpr std::string_view kVelocityUnit[] = {
    "centimetrePerSecond", "kilometrePerHour", "kilometrePerSecond", "knot",
    "metrePerHour",        "metrePerSecond",   "milePerHour",        "milePerSecond"};
constexpr std::string_view kVoltageUnit[] = {"kilovolt", "megavolt", "microvolt", "millivolt",
                                             "volt"};
constexpr std::string_view kVolumeUnit[] = {"cubicCentimetre", "cubicFoot",  "cubicInch",
                                            "cubicMetre",      "fluidOunce", "gallon",
                                            "litre",           "millilitre"};
constexpr std::string_view kVolumeFlowRateUnit[] = {"litrePerHour", "litrePerSecond",
                                                    "millilitrePerHour", "millilitrePerSecond"};

constexpr UnitTypeEntry kUnitTypes[] = {
    {"AccelerationUnit", kAccelerationUnit},
    {"AngleUnit", kAngleUnit},
    {"AngularAccelerationUnit", kAngularAccelerationUnit},
    {"AngularVelocityUnit", kAngularVelocityUnit},
    {"AreaUnit", kAreaUnit},
    {"CapacitanceUnit", kCapacitanceUnit},
    {"CurrentUnit", kCurrentUnit},
    {"DataRateUnit", kDataRateUnit},
    {"DataSizeUnit", kDataSizeUnit},
    {"DensityUnit", kDensityUnit},
    {"LengthUnit", kLengthUnit},
    {"ChargeUnit", kChargeUnit},
    {"EnergyUnit", kEnergyUnit},
    {"ForceUnit", kForceUnit},
    {"FrequencyUnit", kFrequencyUnit},
    {"IlluminanceUnit", kIlluminanceUnit},
    {"InductanceUnit", kInductanceUnit},
    {"LuminanceUnit", kLuminanceUnit},
    {"PowerUnit", kPowerUnit},
    {"LuminousFluxUnit", kLuminousFluxUnit},
    {"LuminousIntensityUnit", kLuminousIntensityUnit},
    {"MagneticFluxUnit", kMagneticFluxUnit},
    {"MagneticInductionUnit", kMagneticInductionUnit},
    {"MassUnit", kMassUnit},
    {"MassFlowRateUnit", kMassFlowRateUnit},
    {"PressureUnit", kPressureUnit},
    {"Unitless", kUnitless},
    {"ResistanceUnit", kResistanceUnit},
    {"SoundPressureUnit", kSoundPressureUnit},
    {"TemperatureUnit", kTemperatureUnit},
    {"TimeUnit", kTimeUnit},
    {"TorqueUnit", kTorqueUnit},
    {"VelocityUnit", kVelocityUnit},
    {"VoltageUnit", kVoltageUnit},
    {"VolumeUnit", kVolumeUnit},
    {"VolumeFlowRateUnit", kVolumeFlowRateUnit},
};

constexpr SemanticTypeEntry kSemanticTypes[] = {
    {"Acceleration", "AccelerationUnit"},
    {"Angle", "AngleUnit"},
    {"AngularAcceleration", "AngularAccelerationUnit"},
    {"AngularVelocity", "AngularVelocityUnit"},
    {"Area", "AreaUnit"},
    {"Capacitance", "CapacitanceUnit"},
    {"Current", "CurrentUnit"},
    {"DataRate", "DataRateUnit"},
    {"DataSize", "DataSizeUnit"},
    {"Density", "DensityUnit"},
    {"Distance", "LengthUnit"},
    {"ElectricCharge", "ChargeUnit"},
    {"Energy", "EnergyUnit"},
    {"Force", "ForceUnit"},
    {"Frequency", "FrequencyUnit"},
    {"Humidity", "DensityUnit"},
    {"Illuminance", "IlluminanceUnit"},
    {"Inductance", "InductanceUnit"},
    {"Latitude", "AngleUnit"},
    {"Length", "LengthUnit"},
    {"Longitude", "AngleUnit"},
    {"Luminance", "LuminanceUnit"},
    {"Luminosity", "PowerUnit"},
    {"LuminousFlux", "LuminousFluxUnit"},
    {"LuminousIntensity", "LuminousIntensityUnit"},
    {"MagneticFlux", "MagneticFluxUnit"},
    {"MagneticInduction", "MagneticInductionUnit"},
    {"Mass", "MassUnit"},
    {"MassFlowRate", "MassFlowRateUnit"},
    {"Power", "PowerUnit"},
    {"Pressure", "PressureUnit"},
    {"RelativeHumidity", "Unitless"},
    {"Resistance", "ResistanceUnit"},
    {"SoundPressure", "SoundPressureUnit"},
    {"Temperature", "TemperatureUnit"},
    {"Thrust", "ForceUnit"},
    {"TimeSpan", "TimeUnit"},
    {"Torque", "TorqueUnit"},
    {"Velocity", "VelocityUnit"},
    {"Voltage", "VoltageUnit"},
    {"Volume", "VolumeUnit"},
    {"VolumeFlowRate", "VolumeFlowRateUnit"},
};

}  // namespace v2

// quantitativeTypes v1 (DTDL/v3/DTDL.quantitativeTypes.v1.md, "Semantic types and units").
namespace qt1 {

constexpr std::string_view kAccelerationUnit[] = {"centimetrePerSecondSquared", "gForce",
                                                  "metrePerSecondSquared"};
constexpr std::string_view kAngleUnit[] = {"degreeOfArc", "minuteOfArc", "radian", "secondOfArc",
                                           "turn"};
constexpr std::string_view kAngularAccelerationUnit[] = {"radianPerSecondSquared"};
constexpr std::string_view kAngularVelocityUnit[] = {"degreePerSecond", "radianPerSecond",
                                                     "revolutionPerMinute", "revolutionPerSecond"};
constexpr std::string_view kApparentEnergyUnit[] = {"gigavoltAmpereHour", "kilovoltAmpereHour",
                                                    "megavoltAmpereHour", "voltAmpereHour"};
constexpr std::string_view kApparentPowerUnit[] = {
    "gigavoltAmpere", "kilovoltAmpere", "megavoltAmpere", "millivoltAmpere", "voltAmpere"};
constexpr std::string_view kAreaUnit[] = {"acre",        "hectare",         "squareCentimetre",
                                          "squareFoot",  "squareInch",      "squareKilometre",
                                          "squareMetre", "squareMillimetre"};
constexpr std::string_view kCapacitanceUnit[] = {"farad", "microfarad", "millifarad", "nanofarad",
                                                 "picofarad"};
constexpr std::string_view kUnitless[] = {
    "partsPerBillion",  "partsPerMillion", "partsPerQuadrillion",
    "partsPerTrillion", "percent",         "unity"};
constexpr std::string_view kCurrentUnit[] = {"ampere", "kiloampere", "microampere", "milliampere"};
constexpr std::string_view kDataRateUnit[] = {
    "bitPerSecond",     "bytePerSecond",     "exbibitPerSecond", "exbibytePerSecond",
    "gibibitPerSecond", "gibibytePerSecond", "kibibitPerSecond", "kibibytePerSecond",
    "mebibitPerSecond", "mebibytePerSecond", "tebibitPerSecond", "tebibytePerSecond",
    "yobibitPerSecond", "yobibytePerSecond", "zebibitPerSecond", "zebibytePerSecond"};
constexpr std::string_view kDataSizeUnit[] = {
    "bit",     "byte",     "exbibit", "exbibyte", "gibibit", "gibibyte", "kibibit", "kibibyte",
    "mebibit", "mebibyte", "tebibit", "tebibyte", "yobibit", "yobibyte", "zebibit", "zebibyte"};
constexpr std::string_view kDensityUnit[] = {"gramPerCubicMetre", "kilogramPerCubicMetre",
                                             "microgramPerCubicMetre", "milligramPerCubicMetre"};
constexpr std::string_view kLengthUnit[] = {"astronomicalUnit", "centimetre", "foot",        "inch",
                                            "kilometre",        "metre",      "micrometre",  "mile",
                                            "millimetre",       "nanometre",  "nauticalMile"};
constexpr std::string_view kChargeUnit[] = {"ampereHour", "coulomb", "milliampereHour"};
constexpr std::string_view kEnergyUnit[] = {
    "britishThermalUnit",     "electronvolt",  "gigajoule",    "gigawattHour",     "joule",
    "kiloBritishThermalUnit", "kilojoule",     "kilowattHour", "megaelectronvolt", "megajoule",
    "megawattHour",           "milliwattHour", "terawattHour", "wattHour"};
constexpr std::string_view kPowerUnit[] = {"britishThermalUnitPerHour",
                                           "gigajoulePerHour",
                                           "gigawatt",
                                           "horsepower",
                                           "joulePerHour",
                                           "joulePerSecond",
                                           "kiloBritishThermalUnitPerHour",
                                           "kilojoulePerHour",
                                           "kilojoulePerSecond",
                                           "kilowatt",
                                           "kilowattHourPerYear",
                                           "megajoulePerHour",
                                           "megawatt",
                                           "microwatt",
                                           "milliwatt",
                                           "tonOfRefrigeration",
                                           "watt"};
constexpr std::string_view kForceUnit[] = {"newton", "ounce", "pound", "ton"};
constexpr std::string_view kFrequencyUnit[] = {"gigahertz", "hertz", "kilohertz", "megahertz",
                                               "millihertz"};
constexpr std::string_view kIlluminanceUnit[] = {"footcandle", "lux"};
constexpr std::string_view kInductanceUnit[] = {"henry", "microhenry", "millihenry"};
constexpr std::string_view kIonizingRadiationDoseUnit[] = {
    "gray", "microgray", "microsievert", "milligray", "millisievert", "sievert"};
constexpr std::string_view kIrradianceUnit[] = {"wattPerSquareMetre"};
constexpr std::string_view kLuminanceUnit[] = {"candelaPerSquareMetre"};
constexpr std::string_view kLuminousFluxUnit[] = {"lumen"};
constexpr std::string_view kLuminousIntensityUnit[] = {"candela"};
constexpr std::string_view kMagneticFluxUnit[] = {"maxwell", "weber"};
constexpr std::string_view kMagneticInductionUnit[] = {"gauss", "tesla"};
constexpr std::string_view kMassUnit[] = {"gram",      "kilogram", "massPound", "microgram",
                                          "milligram", "slug",     "tonne"};
constexpr std::string_view kMassFlowRateUnit[] = {"gramPerHour", "gramPerSecond", "kilogramPerHour",
                                                  "kilogramPerSecond", "massPoundPerHour"};
constexpr std::string_view kPressureUnit[] = {
    "bar",        "decapascal", "hectopascal",          "inchesOfMercury", "inchesOfWater",
    "kilopascal", "millibar",   "millimetresOfMercury", "pascal",          "poundPerSquareInch"};
constexpr std::string_view kRadioactivityUnit[] = {"becquerel", "gigabecquerel", "kilobecquerel",
                                                   "megabecquerel"};
constexpr std::string_view kReactiveEnergyUnit[] = {
    "gigavoltAmpereReactiveHour", "kilovoltAmpereReactiveHour", "megavoltAmpereReactiveHour",
    "voltAmpereReactiveHour"};
constexpr std::string_view kReactivePowerUnit[] = {
    "gigavoltAmpereReactive", "kilovoltAmpereReactive", "megavoltAmpereReactive",
    "millivoltAmpereReactive", "voltAmpereReactive"};
constexpr std::string_view kResistanceUnit[] = {"kiloohm", "megaohm", "milliohm", "ohm"};
constexpr std::string_view kSoundPressureUnit[] = {"bel", "decibel"};
constexpr std::string_view kTemperatureUnit[] = {"degreeCelsius", "degreeFahrenheit", "kelvin"};
constexpr std::string_view kTimeUnit[] = {"day",    "hour",       "microsecond", "millisecond",
                                          "minute", "nanosecond", "second",      "year"};
constexpr std::string_view kTorqueUnit[] = {"newtonMetre"};
constexpr std::string_view kVelocityUnit[] = {
    "centimetrePerSecond", "kilometrePerHour", "kilometrePerSecond", "knot",
    "metrePerHour",        "metrePerSecond",   "milePerHour",        "milePerSecond"};
constexpr std::string_view kVoltageUnit[] = {"kilovolt", "megavolt", "microvolt", "millivolt",
                                             "volt"};
constexpr std::string_view kVolumeUnit[] = {"cubicCentimetre", "cubicFoot",  "cubicInch",
                                            "cubicMetre",      "fluidOunce", "gallon",
                                            "litre",           "millilitre"};
constexpr std::string_view kVolumeFlowRateUnit[] = {
    "cubicFootPerMinute", "cubicMetrePerHour", "cubicMetrePerMinute", "cubicMetrePerSecond",
    "gallonPerHour",      "gallonPerMinute",   "litrePerHour",        "litrePerMinute",
    "litrePerSecond",     "millilitrePerHour", "millilitrePerMinute", "millilitrePerSecond"};

constexpr UnitTypeEntry kUnitTypes[] = {
    {"AccelerationUnit", kAccelerationUnit},
    {"AngleUnit", kAngleUnit},
    {"AngularAccelerationUnit", kAngularAccelerationUnit},
    {"AngularVelocityUnit", kAngularVelocityUnit},
    {"ApparentEnergyUnit", kApparentEnergyUnit},
    {"ApparentPowerUnit", kApparentPowerUnit},
    {"AreaUnit", kAreaUnit},
    {"CapacitanceUnit", kCapacitanceUnit},
    {"Unitless", kUnitless},
    {"CurrentUnit", kCurrentUnit},
    {"DataRateUnit", kDataRateUnit},
    {"DataSizeUnit", kDataSizeUnit},
    {"DensityUnit", kDensityUnit},
    {"LengthUnit", kLengthUnit},
    {"ChargeUnit", kChargeUnit},
    {"EnergyUnit", kEnergyUnit},
    {"PowerUnit", kPowerUnit},
    {"ForceUnit", kForceUnit},
    {"FrequencyUnit", kFrequencyUnit},
    {"IlluminanceUnit", kIlluminanceUnit},
    {"InductanceUnit", kInductanceUnit},
    {"IonizingRadiationDoseUnit", kIonizingRadiationDoseUnit},
    {"IrradianceUnit", kIrradianceUnit},
    {"LuminanceUnit", kLuminanceUnit},
    {"LuminousFluxUnit", kLuminousFluxUnit},
    {"LuminousIntensityUnit", kLuminousIntensityUnit},
    {"MagneticFluxUnit", kMagneticFluxUnit},
    {"MagneticInductionUnit", kMagneticInductionUnit},
    {"MassUnit", kMassUnit},
    {"MassFlowRateUnit", kMassFlowRateUnit},
    {"PressureUnit", kPressureUnit},
    {"RadioactivityUnit", kRadioactivityUnit},
    {"ReactiveEnergyUnit", kReactiveEnergyUnit},
    {"ReactivePowerUnit", kReactivePowerUnit},
    {"ResistanceUnit", kResistanceUnit},
    {"SoundPressureUnit", kSoundPressureUnit},
    {"TemperatureUnit", kTemperatureUnit},
    {"TimeUnit", kTimeUnit},
    {"TorqueUnit", kTorqueUnit},
    {"VelocityUnit", kVelocityUnit},
    {"VoltageUnit", kVoltageUnit},
    {"VolumeUnit", kVolumeUnit},
    {"VolumeFlowRateUnit", kVolumeFlowRateUnit},
};

constexpr SemanticTypeEntry kSemanticTypes[] = {
    {"Acceleration", "AccelerationUnit"},
    {"Angle", "AngleUnit"},
    {"AngularAcceleration", "AngularAccelerationUnit"},
    {"AngularVelocity", "AngularVelocityUnit"},
    {"ApparentEnergy", "ApparentEnergyUnit"},
    {"ApparentPower", "ApparentPowerUnit"},
    {"Area", "AreaUnit"},
    {"Capacitance", "CapacitanceUnit"},
    {"Concentration", "Unitless"},
    {"Current", "CurrentUnit"},
    {"DataRate", "DataRateUnit"},
    {"DataSize", "DataSizeUnit"},
    {"Density", "DensityUnit"},
    {"Distance", "LengthUnit"},
    {"ElectricCharge", "ChargeUnit"},
    {"Energy", "EnergyUnit"},
    {"EnergyRate", "PowerUnit"},
    {"Force", "ForceUnit"},
    {"Frequency", "FrequencyUnit"},
    {"Humidity", "DensityUnit"},
    {"Illuminance", "IlluminanceUnit"},
    {"Inductance", "InductanceUnit"},
    {"IonizingRadiationDose", "IonizingRadiationDoseUnit"},
    {"Irradiance", "IrradianceUnit"},
    {"Latitude", "AngleUnit"},
    {"Length", "LengthUnit"},
    {"Longitude", "AngleUnit"},
    {"Luminance", "LuminanceUnit"},
    {"Luminosity", "PowerUnit"},
    {"LuminousFlux", "LuminousFluxUnit"},
    {"LuminousIntensity", "LuminousIntensityUnit"},
    {"MagneticFlux", "MagneticFluxUnit"},
    {"MagneticInduction", "MagneticInductionUnit"},
    {"Mass", "MassUnit"},
    {"MassFlowRate", "MassFlowRateUnit"},
    {"Power", "PowerUnit"},
    {"Pressure", "PressureUnit"},
    {"Radioactivity", "RadioactivityUnit"},
    {"ReactiveEnergy", "ReactiveEnergyUnit"},
    {"ReactivePower", "ReactivePowerUnit"},
    {"RelativeDensity", "Unitless"},
    {"RelativeHumidity", "Unitless"},
    {"Resistance", "ResistanceUnit"},
    {"SoundPressure", "SoundPressureUnit"},
    {"Temperature", "TemperatureUnit"},
    {"Thrust", "ForceUnit"},
    {"TimeSpan", "TimeUnit"},
    {"Torque", "TorqueUnit"},
    {"Velocity", "VelocityUnit"},
    {"Voltage", "VoltageUnit"},
    {"Volume", "VolumeUnit"},
    {"VolumeFlowRate", "VolumeFlowRateUnit"},
};

}  // namespace qt1

struct Table {
  std::span<const SemanticTypeEntry> semantic_types;
  std::span<const UnitTypeEntry> unit_types;
};

constexpr Table kV2Table{v2::kSemanticTypes, v2::kUnitTypes};
constexpr Table kQt1Table{qt1::kSemanticTypes, qt1::kUnitTypes};

constexpr const Table& TableFor(SemanticTable table) {
  switch (table) {
    case SemanticTable::kDtdlV2:
      return kV2Table;
    case SemanticTable::kQuantitativeTypesV1:
      return kQt1Table;
  }
  return kV2Table;  // Unreachable for valid enumerators.
}

constexpr const UnitTypeEntry* FindUnitType(const Table& table, std::string_view unit_type) {
  for (const UnitTypeEntry& entry : table.unit_types) {
    if (entry.name == unit_type) return &entry;
  }
  return nullptr;
}

// Compile-time consistency checks: every semantic type names a defined unit type, every unit type
// is used by some semantic type, and no name appears twice.
constexpr bool IsConsistent(const Table& table) {
  for (std::size_t i = 0; i < table.semantic_types.size(); ++i) {
    if (FindUnitType(table, table.semantic_types[i].unit_type) == nullptr) return false;
    for (std::size_t j = i + 1; j < table.semantic_types.size(); ++j) {
      if (table.semantic_types[i].name == table.semantic_types[j].name) return false;
    }
  }
  for (std::size_t i = 0; i < table.unit_types.size(); ++i) {
    const UnitTypeEntry& entry = table.unit_types[i];
    if (entry.units.empty()) return false;
    bool used = false;
    for (const SemanticTypeEntry& semantic : table.semantic_types) {
      used = used || semantic.unit_type == entry.name;
    }
    if (!used) return false;
    for (std::size_t j = i + 1; j < table.unit_types.size(); ++j) {
      if (entry.name == table.unit_types[j].name) return false;
    }
    for (std::size_t a = 0; a < entry.units.size(); ++a) {
      for (std::size_t b = a + 1; b < entry.units.size(); ++b) {
        if (entry.units[a] == entry.units[b]) return false;
      }
    }
  }
  return true;
}

static_assert(IsConsistent(kV2Table));
static_assert(IsConsistent(kQt1Table));
static_assert(std::size(v2::kSemanticTypes) == 42 && std::size(v2::kUnitTypes) == 36);
static_assert(std::size(qt1::kSemanticTypes) == 52 && std::size(qt1::kUnitTypes) == 43);

}  // namespace

std::optional<std::string_view> UnitTypeOf(SemanticTable table, std::string_view semantic_type) {
  for (const SemanticTypeEntry& entry : TableFor(table).semantic_types) {
    if (entry.name == semantic_type) return entry.unit_type;
  }
  return std::nullopt;
}

bool IsUnitOf(SemanticTable table, std::string_view unit_type, std::string_view unit) {
  const std::span<const std::string_view> units = UnitsOf(table, unit_type);
  return std::find(units.begin(), units.end(), unit) != units.end();
}

std::span<const std::string_view> UnitsOf(SemanticTable table, std::string_view unit_type) {
  const UnitTypeEntry* entry = FindUnitType(TableFor(table), unit_type);
  if (entry == nullptr) return {};
  return entry->units;
}

}  // namespace doppel::model
