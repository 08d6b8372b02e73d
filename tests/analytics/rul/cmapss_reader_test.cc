// The C-MAPSS readers: the real FD001 files, and every malformed input with its exact code and
// the line it names.
#include <gtest/gtest.h>

#include <cmath>

#include "analytics/rul/rul_model.h"
#include "analytics/rul/test_data.h"

namespace doppel::analytics::rul {
namespace {

using testing::CmapssDir;
using testing::ScratchDir;
using testing::WriteFile;

// One well-formed row of unit `u`, cycle `c` (FD001's first row, trailing spaces included).
std::string Row(int u, int c) {
  return std::to_string(u) + " " + std::to_string(c) +
         " -0.0007 -0.0004 100.0 518.67 641.82 1589.70 1400.60 14.62 21.61 554.36 2388.06 "
         "9046.19 1.30 47.47 521.66 2388.02 8138.62 8.4195 0.03 392 2388 100.00 39.06 23.4190  \n";
}

TEST(CmapssReaderTest, ReadsFd001Train) {
  auto units = ReadCmapssFile(CmapssDir() / "train_FD001.txt");
  ASSERT_TRUE(units.ok()) << units.status().ToString();
  ASSERT_EQ(units->size(), 100u);
  std::size_t rows = 0;
  for (const CmapssUnit& u : *units) {
    ASSERT_EQ(u.history.sensors.size(), 21u);
    for (const auto& [name, values] : u.history.sensors) {
      EXPECT_EQ(values.size(), static_cast<std::size_t>(u.history.cycle)) << name;
    }
    rows += static_cast<std::size_t>(u.history.cycle);
  }
  EXPECT_EQ(rows, 20'631u);  // README: 20,631 rows
  const CmapssUnit& first = units->front();
  EXPECT_EQ(first.unit, 1);
  EXPECT_EQ(first.history.id, "unit 1");
  EXPECT_EQ(first.history.cycle, 192);
  EXPECT_EQ(first.history.sensors.at("s2").front(), 641.82);
  EXPECT_EQ(first.history.sensors.at("s21").front(), 23.4190);
  EXPECT_EQ(units->back().unit, 100);
}

TEST(CmapssReaderTest, ReadsFd001TestAndRul) {
  auto units = ReadCmapssFile(CmapssDir() / "test_FD001.txt");
  ASSERT_TRUE(units.ok()) << units.status().ToString();
  EXPECT_EQ(units->size(), 100u);
  int shortest = 1'000;
  for (const CmapssUnit& u : *units) shortest = std::min(shortest, u.history.cycle);
  EXPECT_EQ(shortest, 31);  // README: test trajectories run 31–303 cycles
  auto rul = ReadRulFile(CmapssDir() / "RUL_FD001.txt");
  ASSERT_TRUE(rul.ok()) << rul.status().ToString();
  ASSERT_EQ(rul->size(), 100u);
  EXPECT_EQ(*std::min_element(rul->begin(), rul->end()), 7);
  EXPECT_EQ(*std::max_element(rul->begin(), rul->end()), 145);
}

TEST(CmapssReaderTest, AcceptsCrLfTabsAndBlankLines) {
  ScratchDir dir;
  std::string text = Row(3, 1) + "\n" + Row(3, 2);
  text.insert(text.find('\n'), "\r");
  text[text.find(' ')] = '\t';
  WriteFile(dir / "f.txt", text);
  auto units = ReadCmapssFile(dir / "f.txt");
  ASSERT_TRUE(units.ok()) << units.status().ToString();
  ASSERT_EQ(units->size(), 1u);
  EXPECT_EQ((*units)[0].unit, 3);
  EXPECT_EQ((*units)[0].history.cycle, 2);
}

struct BadFile {
  const char* name;
  std::string text;
  const char* code;
  const char* where;  // expected in the message
};

class CmapssReaderBadFileTest : public ::testing::TestWithParam<BadFile> {};

TEST_P(CmapssReaderBadFileTest, FailsWithCodeAndLine) {
  ScratchDir dir;
  WriteFile(dir / "bad.txt", GetParam().text);
  auto units = ReadCmapssFile(dir / "bad.txt");
  ASSERT_FALSE(units.ok());
  EXPECT_EQ(units.status().code(), GetParam().code);
  EXPECT_NE(units.status().message().find(GetParam().where), std::string::npos)
      << units.status().message();
}

std::string Without(std::string row, const std::string& token) {
  row.erase(row.find(token), token.size());
  return row;
}

std::string Replace(std::string row, const std::string& from, const std::string& to) {
  return row.replace(row.find(from), from.size(), to);
}

INSTANTIATE_TEST_SUITE_P(
    All, CmapssReaderBadFileTest,
    ::testing::Values(BadFile{"Empty", "", "RUL_BAD_DATA", "no data lines"},
                      BadFile{"OnlyBlank", "  \n\n", "RUL_BAD_DATA", "no data lines"},
                      BadFile{"TooFewColumns", Row(1, 1) + Without(Row(1, 2), " 23.4190"),
                              "RUL_BAD_DATA", "bad.txt:2: expected 26 columns, found 25"},
                      BadFile{"TooManyColumns",
                              Row(1, 1) + Row(1, 2) + Replace(Row(1, 3), "  \n", " 7\n"),
                              "RUL_BAD_DATA", "bad.txt:3: expected 26 columns, found 27"},
                      BadFile{"NonNumeric", Row(1, 1) + Replace(Row(1, 2), "641.82", "641,82"),
                              "RUL_BAD_DATA",
                              "bad.txt:2: column 7 '641,82' is not a finite number"},
                      BadFile{"NotANumber", Replace(Row(1, 1), "554.36", "nan"), "RUL_BAD_DATA",
                              "bad.txt:1: column 12 'nan'"},
                      BadFile{"Infinite", Replace(Row(1, 1), "554.36", "inf"), "RUL_BAD_DATA",
                              "bad.txt:1: column 12 'inf'"},
                      BadFile{"BadUnit", Replace(Row(1, 1), "1 1 ", "x 1 "), "RUL_BAD_DATA",
                              "bad.txt:1: column 1 (unit) 'x'"},
                      BadFile{"FractionalCycle", Replace(Row(1, 1), "1 1 ", "1 1.5 "),
                              "RUL_BAD_DATA", "bad.txt:1: column 2 (cycle) '1.5'"},
                      BadFile{"CycleGap", Row(1, 1) + Row(1, 2) + Row(1, 4), "RUL_BAD_DATA",
                              "bad.txt:3: unit 1: cycle 4 follows cycle 2"},
                      BadFile{"NotStartingAtOne", Row(1, 1) + Row(2, 2), "RUL_BAD_DATA",
                              "bad.txt:2: unit 2 starts at cycle 2"},
                      BadFile{"UnitSplit", Row(1, 1) + Row(2, 1) + Row(1, 2), "RUL_BAD_DATA",
                              "bad.txt:3: unit 1 appears again"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(CmapssReaderTest, MissingFile) {
  ScratchDir dir;
  auto units = ReadCmapssFile(dir / "nope.txt");
  ASSERT_FALSE(units.ok());
  EXPECT_EQ(units.status().code(), "RUL_DATA_NOT_FOUND");
  auto folder = ReadCmapssFile(dir.path());  // a folder is not a data file
  ASSERT_FALSE(folder.ok());
  EXPECT_EQ(folder.status().code(), "RUL_DATA_NOT_FOUND");
  auto rul = ReadRulFile(dir / "nope.txt");
  ASSERT_FALSE(rul.ok());
  EXPECT_EQ(rul.status().code(), "RUL_DATA_NOT_FOUND");
}

TEST(CmapssReaderTest, BadRulFiles) {
  ScratchDir dir;
  const std::pair<std::string, std::string> cases[] = {
      {"", "no data lines"},
      {"112 \n98 \n-3 \n", "r.txt:3: '-3' is not a non-negative number"},
      {"112 \nabc\n", "r.txt:2: 'abc' is not a non-negative number"},
      {"112 7\n", "r.txt:1: expected 1 column, found 2"},
  };
  for (const auto& [text, where] : cases) {
    WriteFile(dir / "r.txt", text);
    auto rul = ReadRulFile(dir / "r.txt");
    ASSERT_FALSE(rul.ok()) << text;
    EXPECT_EQ(rul.status().code(), "RUL_BAD_DATA");
    EXPECT_NE(rul.status().message().find(where), std::string::npos) << rul.status().message();
  }
}

TEST(EvaluationTest, RmseAndPhm08Score) {
  const std::vector<double> truth = {50, 50, 50};
  const std::vector<double> predicted = {37, 60, 50};  // 13 early, 10 late, exact
  EXPECT_DOUBLE_EQ(Rmse(predicted, truth), std::sqrt((169.0 + 100.0) / 3));
  // Early by 13 and late by 10 both cost e − 1; exact costs 0.
  EXPECT_DOUBLE_EQ(Phm08Score(predicted, truth), 2 * (std::exp(1.0) - 1));
  // Late predictions cost more than early ones of the same size.
  EXPECT_GT(Phm08Score(std::vector<double>{60}, std::vector<double>{50}),
            Phm08Score(std::vector<double>{40}, std::vector<double>{50}));
}

}  // namespace
}  // namespace doppel::analytics::rul
