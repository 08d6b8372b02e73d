#include "sync/units.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>
#include <string_view>

#include "model/semantic_units.h"

namespace doppel::sync {
namespace {

using core::Status;

double Convert(std::string_view from, std::string_view to, double v) {
  auto c = ConversionBetween(from, to);
  EXPECT_TRUE(c.ok()) << from << " -> " << to << ": " << (c.ok() ? "" : c.status().ToString());
  return c.ok() ? c->Apply(v) : std::nan("");
}

TEST(Units, TemperatureExact) {
  EXPECT_EQ(Convert("degreeFahrenheit", "degreeCelsius", 32), 0.0);
  EXPECT_EQ(Convert("degreeFahrenheit", "degreeCelsius", 212), 100.0);
  EXPECT_EQ(Convert("degreeFahrenheit", "degreeCelsius", -40), -40.0);
  EXPECT_EQ(Convert("degreeCelsius", "degreeFahrenheit", 100), 212.0);
  EXPECT_EQ(Convert("degreeCelsius", "degreeFahrenheit", -40), -40.0);
  EXPECT_EQ(Convert("degreeCelsius", "kelvin", 0), 273.15);
  EXPECT_EQ(Convert("kelvin", "degreeCelsius", 273.15), 0.0);
  EXPECT_DOUBLE_EQ(Convert("kelvin", "degreeFahrenheit", 0), -459.67);
  EXPECT_DOUBLE_EQ(Convert("degreeFahrenheit", "kelvin", 98.6), 310.15);
}

TEST(Units, KnownValues) {
  EXPECT_EQ(Convert("bar", "kilopascal", 1), 100.0);
  EXPECT_EQ(Convert("millibar", "hectopascal", 1013.25), 1013.25);
  EXPECT_EQ(Convert("kilopascal", "bar", 250), 2.5);
  EXPECT_DOUBLE_EQ(Convert("poundPerSquareInch", "pascal", 1), 6894.757293168361);
  EXPECT_EQ(Convert("horsepower", "watt", 1), 745.69987158227022);
  EXPECT_DOUBLE_EQ(Convert("horsepower", "kilowatt", 1), 0.74569987158227022);
  EXPECT_DOUBLE_EQ(Convert("revolutionPerMinute", "radianPerSecond", 60), 2 * std::numbers::pi);
  EXPECT_DOUBLE_EQ(Convert("revolutionPerSecond", "revolutionPerMinute", 1), 60);
  EXPECT_DOUBLE_EQ(Convert("degreePerSecond", "revolutionPerMinute", 360), 60);
  EXPECT_EQ(Convert("hour", "second", 1), 3600.0);
  EXPECT_EQ(Convert("millisecond", "second", 1500), 1.5);
  EXPECT_EQ(Convert("minute", "hour", 90), 1.5);
  EXPECT_EQ(Convert("day", "hour", 2), 48.0);
  EXPECT_EQ(Convert("year", "day", 1), 365.25);
  EXPECT_EQ(Convert("litrePerSecond", "cubicMetrePerHour", 1), 3.6);
  EXPECT_EQ(Convert("cubicMetrePerHour", "litrePerMinute", 6), 100.0);
  EXPECT_EQ(Convert("gallon", "litre", 1), 3.785411784);
  EXPECT_EQ(Convert("inch", "millimetre", 1), 25.4);
  EXPECT_EQ(Convert("foot", "metre", 1), 0.3048);
  EXPECT_EQ(Convert("mile", "kilometre", 1), 1.609344);
  EXPECT_EQ(Convert("kilometrePerHour", "metrePerSecond", 36), 10.0);
  EXPECT_EQ(Convert("knot", "kilometrePerHour", 1), 1.852);
  EXPECT_EQ(Convert("massPound", "kilogram", 1), 0.45359237);
  EXPECT_EQ(Convert("kilowattHour", "megajoule", 1), 3.6);
  EXPECT_EQ(Convert("britishThermalUnit", "joule", 1), 1055.05585262);
  EXPECT_DOUBLE_EQ(Convert("tonOfRefrigeration", "kilowatt", 1), 3.516852842066667);
  EXPECT_EQ(Convert("percent", "unity", 50), 0.5);
  EXPECT_EQ(Convert("unity", "percent", 0.25), 25.0);
  EXPECT_EQ(Convert("partsPerMillion", "percent", 10000), 1.0);
  EXPECT_EQ(Convert("milliampere", "ampere", 20), 0.02);
  EXPECT_EQ(Convert("kilovolt", "volt", 0.4), 400.0);
  EXPECT_EQ(Convert("kilohertz", "hertz", 50), 50000.0);
  EXPECT_EQ(Convert("kibibyte", "bit", 1), 8192.0);
  EXPECT_EQ(Convert("ampereHour", "coulomb", 1), 3600.0);
  EXPECT_EQ(Convert("bel", "decibel", 3), 30.0);
  EXPECT_DOUBLE_EQ(Convert("turn", "degreeOfArc", 1), 360);
  EXPECT_DOUBLE_EQ(Convert("inchesOfWater", "pascal", 1), 249.08891);
  EXPECT_DOUBLE_EQ(Convert("millimetresOfMercury", "pascal", 760), 101325.0144354);
  EXPECT_DOUBLE_EQ(Convert("slug", "kilogram", 1), 14.593902937206364);
  EXPECT_DOUBLE_EQ(Convert("pound", "newton", 1), 4.4482216152605);
  EXPECT_DOUBLE_EQ(Convert("footcandle", "lux", 1), 10.763910416709722);
}

TEST(Units, IdentityKeepsTheValue) {
  auto c = ConversionBetween("kilowatt", "kilowatt");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->identity());
  // Different names, same scale: still the identity.
  auto w = ConversionBetween("joulePerSecond", "watt");
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->identity());
  EXPECT_FALSE(ConversionBetween("degreeCelsius", "kelvin")->identity());
}

TEST(Units, RoundTrips) {
  for (auto [a, b] : {std::pair{"degreeFahrenheit", "kelvin"},
                      {"psi", "bar"},
                      {"poundPerSquareInch", "bar"},
                      {"horsepower", "kilowatt"},
                      {"revolutionPerMinute", "degreePerSecond"},
                      {"gallonPerMinute", "litrePerSecond"}}) {
    auto there = ConversionBetween(a, b);
    auto back = ConversionBetween(b, a);
    if (std::string_view(a) == "psi") {
      EXPECT_FALSE(there.ok());
      continue;
    }
    ASSERT_TRUE(there.ok() && back.ok()) << a << " " << b;
    for (double v : {-12.5, 0.0, 1.0, 77.7, 1e6}) {
      EXPECT_NEAR(back->Apply(there->Apply(v)), v, 1e-9 * std::max(1.0, std::fabs(v))) << a;
    }
  }
}

TEST(Units, DifferentQuantitiesAreAnError) {
  auto c = ConversionBetween("kilopascal", "degreeCelsius");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), "MAPPING_UNIT");
  EXPECT_NE(c.status().message().find("kilopascal (pressure)"), std::string::npos);
  EXPECT_NE(c.status().message().find("degreeCelsius (temperature)"), std::string::npos);
  EXPECT_NE(c.status().message().find("poundPerSquareInch"), std::string::npos)
      << "lists the pressure units: " << c.status().message();
  // Same DTDL unit type, different physical quantity.
  auto dose = ConversionBetween("gray", "sievert");
  ASSERT_FALSE(dose.ok());
  EXPECT_EQ(dose.status().code(), "MAPPING_UNIT");
}

TEST(Units, UnknownUnitsSuggest) {
  auto c = ConversionBetween("psi", "bar");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), "MAPPING_UNIT");
  EXPECT_NE(c.status().message().find("did you mean 'poundPerSquareInch'"), std::string::npos)
      << c.status().message();
  Status s = UnknownUnit("degreeCelcius", "/fields/0/unit");
  EXPECT_EQ(s.pointer(), "/fields/0/unit");
  EXPECT_NE(s.message().find("'degreeCelsius'"), std::string::npos) << s.message();
  Status far = UnknownUnit("furlongPerFortnight");
  EXPECT_NE(far.message().find("DTDL unit names"), std::string::npos) << far.message();
  auto ton = ConversionBetween("ton", "newton");
  ASSERT_FALSE(ton.ok());
  EXPECT_NE(ton.status().message().find("ambiguous"), std::string::npos);
}

// Every unit of both DTDL tables is convertible (except `ton`), and units of one DTDL unit type
// share a quantity (except the ionizing radiation doses).
TEST(Units, CoversTheDtdlTables) {
  constexpr std::string_view kUnitTypes[] = {"AccelerationUnit",
                                             "AngleUnit",
                                             "AngularAccelerationUnit",
                                             "AngularVelocityUnit",
                                             "ApparentEnergyUnit",
                                             "ApparentPowerUnit",
                                             "AreaUnit",
                                             "CapacitanceUnit",
                                             "Unitless",
                                             "CurrentUnit",
                                             "DataRateUnit",
                                             "DataSizeUnit",
                                             "DensityUnit",
                                             "LengthUnit",
                                             "ChargeUnit",
                                             "EnergyUnit",
                                             "PowerUnit",
                                             "ForceUnit",
                                             "FrequencyUnit",
                                             "IlluminanceUnit",
                                             "InductanceUnit",
                                             "IonizingRadiationDoseUnit",
                                             "IrradianceUnit",
                                             "LuminanceUnit",
                                             "LuminousFluxUnit",
                                             "LuminousIntensityUnit",
                                             "MagneticFluxUnit",
                                             "MagneticInductionUnit",
                                             "MassUnit",
                                             "MassFlowRateUnit",
                                             "PressureUnit",
                                             "RadioactivityUnit",
                                             "ReactiveEnergyUnit",
                                             "ReactivePowerUnit",
                                             "ResistanceUnit",
                                             "SoundPressureUnit",
                                             "TemperatureUnit",
                                             "TimeUnit",
                                             "TorqueUnit",
                                             "VelocityUnit",
                                             "VoltageUnit",
                                             "VolumeUnit",
                                             "VolumeFlowRateUnit"};
  std::size_t checked = 0;
  for (auto table : {model::SemanticTable::kDtdlV2, model::SemanticTable::kQuantitativeTypesV1}) {
    for (std::string_view type : kUnitTypes) {
      std::string_view quantity;
      for (std::string_view unit : model::UnitsOf(table, type)) {
        ++checked;
        if (unit == "ton") continue;
        auto info = FindUnit(unit);
        ASSERT_TRUE(info.has_value()) << unit;
        if (type == "IonizingRadiationDoseUnit") continue;
        if (quantity.empty()) quantity = info->quantity;
        EXPECT_EQ(info->quantity, quantity) << type << " " << unit;
      }
    }
  }
  EXPECT_GT(checked, 300u);
}

TEST(Units, HugeValuesDoNotOverflowEarly) {
  // mile/h -> km/h multiplies by 1609344 * 3.6e6 and divides by 3.6e6 * 1000: the product alone
  // would overflow for 1e300.
  auto c = ConversionBetween("milePerHour", "kilometrePerHour");
  ASSERT_TRUE(c.ok());
  EXPECT_DOUBLE_EQ(c->Apply(1e300), 1.609344e300);
  auto k = ConversionBetween("kilometre", "metre");
  ASSERT_TRUE(k.ok());
  EXPECT_TRUE(std::isinf(k->Apply(1e307)));
}

}  // namespace
}  // namespace doppel::sync
