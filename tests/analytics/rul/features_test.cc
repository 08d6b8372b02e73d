// The window features on series whose statistics are known in closed form.
#include "analytics/rul/features.h"

#include <gtest/gtest.h>

#include <cmath>

namespace doppel::analytics::rul {
namespace {

TEST(FeaturesTest, NamesAndGroups) {
  const FeatureSpec spec{{2, 11}, {5, 10}, {}};
  const std::vector<std::string> names = FeatureNames(spec);
  const std::vector<std::string> expected = {
      "s2.last",   "s2.mean5",    "s2.std5",   "s2.slope5", "s2.mean10", "s2.std10",   "s2.slope10",
      "s2.min10",  "s2.max10",    "s11.last",  "s11.mean5", "s11.std5",  "s11.slope5", "s11.mean10",
      "s11.std10", "s11.slope10", "s11.min10", "s11.max10", "cycle"};
  EXPECT_EQ(names, expected);
  const std::vector<std::size_t> groups = FeatureGroups(spec);
  ASSERT_EQ(groups.size(), names.size());
  EXPECT_EQ(groups[0], 0u);
  EXPECT_EQ(groups[8], 0u);
  EXPECT_EQ(groups[9], 1u);
  EXPECT_EQ(groups[17], 1u);
  EXPECT_EQ(groups[18], 2u);  // cycle
}

TEST(FeaturesTest, LinearAndAlternatingSeries) {
  // s_a = 3 + 2t: slope 2, mean at the window's middle, std of w evenly spaced points
  // 2·sqrt((w² − 1)/12). s_b alternates 1, −1: slope ~0 over an even window, std 1.
  std::vector<double> a, b;
  for (int t = 0; t < 12; ++t) {
    a.push_back(3 + 2.0 * t);
    b.push_back(t % 2 == 0 ? 1 : -1);
  }
  const FeatureSpec spec{{4, 9}, {4, 10}, {}};
  const std::vector<std::span<const double>> series = {a, b};
  std::vector<float> row;
  AppendFeatureRow(spec, series, 11, 250, &row);
  ASSERT_EQ(row.size(), FeatureNames(spec).size());
  // s4 (a): last 25; window 4 = {19, 21, 23, 25}; window 10 = 7..25.
  EXPECT_FLOAT_EQ(row[0], 25);
  EXPECT_FLOAT_EQ(row[1], 22);
  EXPECT_FLOAT_EQ(row[2], static_cast<float>(2 * std::sqrt(15.0 / 12)));
  EXPECT_FLOAT_EQ(row[3], 2);
  EXPECT_FLOAT_EQ(row[4], 16);
  EXPECT_FLOAT_EQ(row[5], static_cast<float>(2 * std::sqrt(99.0 / 12)));
  EXPECT_FLOAT_EQ(row[6], 2);
  EXPECT_FLOAT_EQ(row[7], 7);
  EXPECT_FLOAT_EQ(row[8], 25);
  // s9 (b): last is t = 11 → −1; the 4-window mean 0, std 1, slope −0.4 (least squares of
  // 1, −1, 1, −1 against 0..3).
  EXPECT_FLOAT_EQ(row[9], -1);
  EXPECT_FLOAT_EQ(row[10], 0);
  EXPECT_FLOAT_EQ(row[11], 1);
  EXPECT_FLOAT_EQ(row[12], -0.4F);
  EXPECT_FLOAT_EQ(row[16], -1);
  EXPECT_FLOAT_EQ(row[17], 1);
  EXPECT_FLOAT_EQ(row.back(), 250);  // cycle

  // An earlier reading uses the windows ending there.
  row.clear();
  AppendFeatureRow(spec, series, 9, 248, &row);
  EXPECT_FLOAT_EQ(row[0], 21);
  EXPECT_FLOAT_EQ(row[7], 3);
  EXPECT_FLOAT_EQ(row.back(), 248);
}

TEST(FeaturesTest, ExponentiallyWeightedMeans) {
  // Span 3: α = 0.5. Over 0, 0, ..., 0, 8, 8 (30 readings) the mean after the first 8 is 4, after
  // the second 6; a constant series keeps its value.
  std::vector<double> steps(30, 0.0), flat(30, 7.0);
  steps[28] = steps[29] = 8;
  const FeatureSpec spec{{2, 3}, {10}, {3, 1}};
  const std::vector<std::span<const double>> series = {steps, flat};
  const std::vector<std::string> names = FeatureNames(spec);
  ASSERT_EQ(names[6], "s2.ewma3");
  ASSERT_EQ(names[7], "s2.ewma1");
  std::vector<float> row;
  AppendFeatureRow(spec, series, 29, 30, &row);
  ASSERT_EQ(row.size(), names.size());
  EXPECT_FLOAT_EQ(row[6], 6);
  EXPECT_FLOAT_EQ(row[7], 8);  // span 1: α = 1, the last reading
  EXPECT_FLOAT_EQ(row[8 + 6], 7);
  row.clear();
  AppendFeatureRow(spec, series, 28, 29, &row);
  EXPECT_FLOAT_EQ(row[6], 4);
}

}  // namespace
}  // namespace doppel::analytics::rul
