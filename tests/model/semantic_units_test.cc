// Tests for doppel::model semantic type / unit tables (src/model/semantic_units.h).
//
// Expected values come from the DTDL specifications: DTDL/v2/DTDL.v2.md ("Semantic Type") and
// DTDL/v3/DTDL.quantitativeTypes.v1.md ("Semantic types and units") in
// github.com/Azure/opendigitaltwins-dtdl, and from the shared ontologies in /work/shared/data/dtdl.

#include "model/semantic_units.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string_view>
#include <vector>

namespace doppel::model {
namespace {

constexpr SemanticTable kV2 = SemanticTable::kDtdlV2;
constexpr SemanticTable kQt1 = SemanticTable::kQuantitativeTypesV1;

// Semantic types of the DTDL v2 table (42 rows).
// clang-format off
constexpr std::string_view kV2SemanticTypes[] = {
    "Acceleration", "Angle", "AngularAcceleration", "AngularVelocity", "Area", "Capacitance",
    "Current", "DataRate", "DataSize", "Density", "Distance", "ElectricCharge", "Energy", "Force",
    "Frequency", "Humidity", "Illuminance", "Inductance", "Latitude", "Length", "Longitude",
    "Luminance", "Luminosity", "LuminousFlux", "LuminousIntensity", "MagneticFlux",
    "MagneticInduction", "Mass", "MassFlowRate", "Power", "Pressure", "RelativeHumidity",
    "Resistance", "SoundPressure", "Temperature", "Thrust", "TimeSpan", "Torque", "Velocity",
    "Voltage", "Volume", "VolumeFlowRate",
};
// clang-format on

// Semantic types that only quantitativeTypes v1 has (52 - 42 = 10 rows).
// clang-format off
constexpr std::string_view kQt1OnlySemanticTypes[] = {
    "ApparentEnergy", "ApparentPower", "Concentration", "EnergyRate", "IonizingRadiationDose",
    "Irradiance", "Radioactivity", "ReactiveEnergy", "ReactivePower", "RelativeDensity",
};
// clang-format on

bool Accepts(SemanticTable table, std::string_view semantic_type, std::string_view unit) {
  const std::optional<std::string_view> unit_type = UnitTypeOf(table, semantic_type);
  return unit_type.has_value() && IsUnitOf(table, *unit_type, unit);
}

std::vector<std::string_view> ToVector(std::span<const std::string_view> units) {
  return {units.begin(), units.end()};
}

TEST(SemanticUnits, AllSemanticTypesPresent) {
  static_assert(std::size(kV2SemanticTypes) == 42);
  static_assert(std::size(kQt1OnlySemanticTypes) == 10);
  for (std::string_view type : kV2SemanticTypes) {
    EXPECT_TRUE(UnitTypeOf(kV2, type).has_value()) << type;
    // Every v2 semantic type is also in quantitativeTypes v1, with the same unit type.
    EXPECT_EQ(UnitTypeOf(kV2, type), UnitTypeOf(kQt1, type)) << type;
  }
  for (std::string_view type : kQt1OnlySemanticTypes) {
    EXPECT_TRUE(UnitTypeOf(kQt1, type).has_value()) << type;
    EXPECT_EQ(UnitTypeOf(kV2, type), std::nullopt) << type;
  }
}

TEST(SemanticUnits, KnownPairsV2) {
  EXPECT_EQ(UnitTypeOf(kV2, "Temperature"), "TemperatureUnit");
  EXPECT_EQ(UnitTypeOf(kV2, "Velocity"), "VelocityUnit");
  EXPECT_EQ(UnitTypeOf(kV2, "ElectricCharge"), "ChargeUnit");
  EXPECT_EQ(UnitTypeOf(kV2, "RelativeHumidity"), "Unitless");
  EXPECT_EQ(UnitTypeOf(kV2, "TimeSpan"), "TimeUnit");

  EXPECT_TRUE(Accepts(kV2, "Temperature", "degreeCelsius"));
  EXPECT_TRUE(Accepts(kV2, "Temperature", "degreeFahrenheit"));
  EXPECT_TRUE(Accepts(kV2, "Temperature", "kelvin"));
  EXPECT_TRUE(Accepts(kV2, "Velocity", "metrePerSecond"));
  EXPECT_TRUE(Accepts(kV2, "Energy", "kilowattHour"));
  EXPECT_TRUE(Accepts(kV2, "Pressure", "millimetresOfMercury"));
  EXPECT_TRUE(Accepts(kV2, "DataRate", "zebibytePerSecond"));
  EXPECT_TRUE(Accepts(kV2, "RelativeHumidity", "percent"));
  EXPECT_TRUE(Accepts(kV2, "Acceleration", "gForce"));
  EXPECT_TRUE(Accepts(kV2, "Torque", "newtonMetre"));

  EXPECT_EQ(ToVector(UnitsOf(kV2, "TemperatureUnit")),
            (std::vector<std::string_view>{"degreeCelsius", "degreeFahrenheit", "kelvin"}));
  EXPECT_EQ(ToVector(UnitsOf(kV2, "VolumeFlowRateUnit")),
            (std::vector<std::string_view>{"litrePerHour", "litrePerSecond", "millilitrePerHour",
                                           "millilitrePerSecond"}));
  EXPECT_EQ(UnitsOf(kV2, "PowerUnit").size(), 8u);
  EXPECT_EQ(UnitsOf(kV2, "DataSizeUnit").size(), 16u);
}

TEST(SemanticUnits, KnownPairsQuantitativeTypesV1) {
  EXPECT_EQ(UnitTypeOf(kQt1, "Temperature"), "TemperatureUnit");
  EXPECT_EQ(UnitTypeOf(kQt1, "ApparentPower"), "ApparentPowerUnit");
  EXPECT_EQ(UnitTypeOf(kQt1, "IonizingRadiationDose"), "IonizingRadiationDoseUnit");

  EXPECT_TRUE(Accepts(kQt1, "Temperature", "degreeCelsius"));
  EXPECT_TRUE(Accepts(kQt1, "Pressure", "millibar"));  // Spec example "barometer".
  EXPECT_TRUE(Accepts(kQt1, "RelativeHumidity", "percent"));
  EXPECT_TRUE(Accepts(kQt1, "Velocity", "metrePerSecond"));
  EXPECT_TRUE(Accepts(kQt1, "Energy", "wattHour"));
  EXPECT_TRUE(Accepts(kQt1, "Energy", "kiloBritishThermalUnit"));
  EXPECT_TRUE(Accepts(kQt1, "Current", "kiloampere"));
  EXPECT_TRUE(Accepts(kQt1, "ApparentEnergy", "kilovoltAmpereHour"));
  EXPECT_TRUE(Accepts(kQt1, "ReactivePower", "millivoltAmpereReactive"));
  EXPECT_TRUE(Accepts(kQt1, "Irradiance", "wattPerSquareMetre"));
  EXPECT_TRUE(Accepts(kQt1, "Radioactivity", "gigabecquerel"));
  EXPECT_TRUE(Accepts(kQt1, "Mass", "massPound"));
  EXPECT_TRUE(Accepts(kQt1, "VolumeFlowRate", "cubicMetrePerHour"));
  EXPECT_TRUE(Accepts(kQt1, "Power", "tonOfRefrigeration"));

  EXPECT_EQ(UnitsOf(kQt1, "PowerUnit").size(), 17u);
  EXPECT_EQ(UnitsOf(kQt1, "EnergyUnit").size(), 14u);
  EXPECT_EQ(
      ToVector(UnitsOf(kQt1, "Unitless")),
      (std::vector<std::string_view>{"partsPerBillion", "partsPerMillion", "partsPerQuadrillion",
                                     "partsPerTrillion", "percent", "unity"}));
}

TEST(SemanticUnits, UnknownSemanticType) {
  for (SemanticTable table : {kV2, kQt1}) {
    EXPECT_EQ(UnitTypeOf(table, ""), std::nullopt);
    EXPECT_EQ(UnitTypeOf(table, "Temp"), std::nullopt);
    EXPECT_EQ(UnitTypeOf(table, "temperature"), std::nullopt);      // Case-sensitive.
    EXPECT_EQ(UnitTypeOf(table, "TemperatureUnit"), std::nullopt);  // A unit type, not a type.
    EXPECT_EQ(UnitTypeOf(table, "Property"), std::nullopt);
    EXPECT_EQ(UnitTypeOf(table, "dtmi:standard:class:Temperature;2"), std::nullopt);
    EXPECT_EQ(UnitTypeOf(table, "Temperature "), std::nullopt);
  }
  // v3-only semantic types are not v2 semantic types.
  EXPECT_EQ(UnitTypeOf(kV2, "EnergyRate"), std::nullopt);
  EXPECT_EQ(UnitTypeOf(kV2, "Concentration"), std::nullopt);
}

TEST(SemanticUnits, WrongUnit) {
  for (SemanticTable table : {kV2, kQt1}) {
    EXPECT_FALSE(Accepts(table, "Temperature", "metre"));
    EXPECT_FALSE(Accepts(table, "Temperature", "DegreeCelsius"));  // Case-sensitive.
    EXPECT_FALSE(Accepts(table, "Temperature", "celsius"));
    EXPECT_FALSE(Accepts(table, "Temperature", ""));
    EXPECT_FALSE(Accepts(table, "Length", "meter"));  // Spec spells "metre".
    EXPECT_FALSE(Accepts(table, "Mass", "pound"));    // "pound" is a ForceUnit; mass is massPound.
    EXPECT_FALSE(Accepts(table, "Power", "kilowattHour"));
    EXPECT_FALSE(Accepts(table, "Energy", "kilowatt"));
    EXPECT_FALSE(IsUnitOf(table, "NoSuchUnit", "metre"));
    EXPECT_FALSE(IsUnitOf(table, "", ""));
    EXPECT_TRUE(UnitsOf(table, "NoSuchUnit").empty());
    EXPECT_TRUE(UnitsOf(table, "Temperature").empty());  // A semantic type, not a unit type.
  }
  // Units that only quantitativeTypes v1 lists are rejected in v2.
  EXPECT_FALSE(Accepts(kV2, "Current", "kiloampere"));
  EXPECT_FALSE(Accepts(kV2, "Energy", "wattHour"));
  EXPECT_FALSE(Accepts(kV2, "Energy", "megawattHour"));
  EXPECT_FALSE(Accepts(kV2, "Humidity", "milligramPerCubicMetre"));
  EXPECT_FALSE(Accepts(kV2, "RelativeHumidity", "partsPerMillion"));
  EXPECT_FALSE(Accepts(kV2, "MagneticInduction", "gauss"));
  EXPECT_FALSE(Accepts(kV2, "Pressure", "hectopascal"));
  EXPECT_FALSE(IsUnitOf(kV2, "ApparentPowerUnit", "voltAmpere"));
}

TEST(SemanticUnits, SharedUnitTypes) {
  for (SemanticTable table : {kV2, kQt1}) {
    EXPECT_EQ(UnitTypeOf(table, "Humidity"), "DensityUnit");
    EXPECT_EQ(UnitTypeOf(table, "Density"), "DensityUnit");
    EXPECT_EQ(UnitTypeOf(table, "Luminosity"), "PowerUnit");
    EXPECT_EQ(UnitTypeOf(table, "Power"), "PowerUnit");
    EXPECT_EQ(UnitTypeOf(table, "Distance"), "LengthUnit");
    EXPECT_EQ(UnitTypeOf(table, "Length"), "LengthUnit");
    EXPECT_EQ(UnitTypeOf(table, "Angle"), "AngleUnit");
    EXPECT_EQ(UnitTypeOf(table, "Latitude"), "AngleUnit");
    EXPECT_EQ(UnitTypeOf(table, "Longitude"), "AngleUnit");
    EXPECT_EQ(UnitTypeOf(table, "Force"), "ForceUnit");
    EXPECT_EQ(UnitTypeOf(table, "Thrust"), "ForceUnit");
    EXPECT_TRUE(Accepts(table, "Humidity", "gramPerCubicMetre"));
    EXPECT_TRUE(Accepts(table, "Luminosity", "watt"));
    EXPECT_TRUE(Accepts(table, "Latitude", "degreeOfArc"));
    EXPECT_TRUE(Accepts(table, "Thrust", "newton"));
    EXPECT_TRUE(Accepts(table, "Distance", "nauticalMile"));
  }
  EXPECT_EQ(UnitTypeOf(kQt1, "EnergyRate"), "PowerUnit");
  EXPECT_EQ(UnitTypeOf(kQt1, "Concentration"), "Unitless");
  EXPECT_EQ(UnitTypeOf(kQt1, "RelativeDensity"), "Unitless");
  EXPECT_EQ(UnitTypeOf(kQt1, "RelativeHumidity"), "Unitless");
  EXPECT_TRUE(Accepts(kQt1, "EnergyRate", "kilojoulePerHour"));
  EXPECT_TRUE(Accepts(kQt1, "Luminosity", "tonOfRefrigeration"));
  EXPECT_TRUE(Accepts(kQt1, "Concentration", "partsPerMillion"));
  EXPECT_TRUE(Accepts(kQt1, "Humidity", "microgramPerCubicMetre"));
}

TEST(SemanticUnits, V2UnitsAreSubsetOfQuantitativeTypesV1) {
  for (std::string_view type : kV2SemanticTypes) {
    const std::string_view unit_type = *UnitTypeOf(kV2, type);
    for (std::string_view unit : UnitsOf(kV2, unit_type)) {
      EXPECT_TRUE(IsUnitOf(kQt1, unit_type, unit)) << unit_type << " " << unit;
    }
  }
}

// Every (semantic type, unit) pair used in the shared ontologies under /work/shared/data/dtdl,
// found by grepping '"unit"' in all three folders (one example file each; "..." elides folders).
// RealEstateCore loads
// ["dtmi:dtdl:context;3", "dtmi:dtdl:extension:quantitativeTypes;1"]; energygrid and smartcities
// are DTDL v2.
struct OntologyPair {
  SemanticTable table;
  std::string_view semantic_type;
  std::string_view unit;
  std::string_view example_file;
};

constexpr OntologyPair kOntologyPairs[] = {
    // RealEstateCore (quantitativeTypes v1).
    {kQt1, "Angle", "degreeOfArc", "RealEstateCore/.../Escalator.json"},
    {kQt1, "AngularVelocity", "revolutionPerMinute", "RealEstateCore/.../CeilingFan.json"},
    {kQt1, "Current", "ampere", "RealEstateCore/.../ElectricalBus.json"},
    {kQt1, "Energy", "kilowattHour", "RealEstateCore/.../ActiveElectricalEnergySensor.json"},
    {kQt1, "Illuminance", "lux", "RealEstateCore/.../IlluminanceSensor.json"},
    {kQt1, "Mass", "kilogram", "RealEstateCore/.../Elevator.json"},
    {kQt1, "Power", "horsepower", "RealEstateCore/.../Fan.json"},
    {kQt1, "Power", "kilowatt", "RealEstateCore/.../UPS.json"},
    {kQt1, "Power", "watt", "RealEstateCore/.../Luminaire.json"},
    {kQt1, "RelativeHumidity", "percent", "RealEstateCore/.../SpaceHumidity.json"},
    {kQt1, "TimeSpan", "hour", "RealEstateCore/.../FireDamper.json"},
    {kQt1, "TimeSpan", "minute", "RealEstateCore/.../UPS.json"},
    {kQt1, "TimeSpan", "second", "RealEstateCore/.../SpaceOccupancy.json"},
    {kQt1, "Voltage", "volt", "RealEstateCore/.../Busway.json"},
    // energygrid (DTDL v2).
    {kV2, "Voltage", "volt", "energygrid/.../BaseVoltage.json"},
    // smartcities (DTDL v2).
    {kV2, "Angle", "degreeOfArc", "smartcities/.../WeatherObserved.json"},
    {kV2, "Current", "ampere", "smartcities/.../EVChargingStation.json"},
    {kV2, "Density", "gramPerCubicMetre", "smartcities/.../AirQualityObserved.json"},
    {kV2, "Distance", "metre", "smartcities/.../TrafficFlowObserved.json"},
    {kV2, "Distance", "nanometre", "smartcities/.../WaterQualityObserved.json"},
    {kV2, "Illuminance", "lux", "smartcities/.../WeatherObserved.json"},
    {kV2, "Length", "centimetre", "smartcities/.../WeatherObserved.json"},
    {kV2, "Length", "metre", "smartcities/.../Beach.json"},
    {kV2, "Mass", "tonne", "smartcities/.../BoatAuthorized.json"},
    {kV2, "Power", "watt", "smartcities/.../WeatherObserved.json"},
    {kV2, "Pressure", "pascal", "smartcities/.../WeatherObserved.json"},
    {kV2, "SoundPressure", "decibel", "smartcities/.../NoiseLevelObserved.json"},
    {kV2, "Temperature", "degreeCelsius", "smartcities/.../WeatherObserved.json"},
    {kV2, "TimeSpan", "second", "smartcities/.../TrafficFlowObserved.json"},
    {kV2, "Velocity", "kilometrePerHour", "smartcities/.../TrafficFlowObserved.json"},
    {kV2, "Velocity", "knot", "smartcities/.../WeatherObserved.json"},
    {kV2, "Voltage", "millivolt", "smartcities/.../WaterQualityObserved.json"},
    {kV2, "Voltage", "volt", "smartcities/.../EVChargingStation.json"},
    {kV2, "VolumeFlowRate", "litrePerSecond", "smartcities/.../WeatherObserved.json"},
};

TEST(SemanticUnits, SharedOntologyPairsAccepted) {
  for (const OntologyPair& pair : kOntologyPairs) {
    EXPECT_TRUE(Accepts(pair.table, pair.semantic_type, pair.unit))
        << pair.semantic_type << " / " << pair.unit << " in " << pair.example_file;
  }
}

}  // namespace
}  // namespace doppel::model
