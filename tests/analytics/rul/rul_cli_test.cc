// `doppel train rul` and `doppel predict rul` as a user runs them, on a slice of FD001 (30
// training engines, 10 test engines) so that the quick training takes seconds.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <sstream>

#include "analytics/rul/test_data.h"

namespace doppel::analytics::rul {
namespace {

using testing::CmapssDir;

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class RulCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_ / "data");
    testing::WriteFile(dir_ / "data" / "train_FD001.txt",
                       testing::FirstUnits(CmapssDir() / "train_FD001.txt", 30));
    testing::WriteFile(dir_ / "test.txt", testing::FirstUnits(CmapssDir() / "test_FD001.txt", 10));
    testing::WriteFile(dir_ / "rul.txt", testing::FirstLines(CmapssDir() / "RUL_FD001.txt", 10));
  }

  CommandResult Run(const std::string& args) {
    const char* bin = std::getenv("DOPPEL_BINARY");
    EXPECT_NE(bin, nullptr) << "DOPPEL_BINARY is not set (run through ctest)";
    if (bin == nullptr) return {};
    const std::string out = (dir_ / "stdout").string(), err = (dir_ / "stderr").string();
    const std::string command = std::string(bin) + " " + args + " >" + out + " 2>" + err;
    const int status = std::system(command.c_str());
    CommandResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = testing::ReadAll(out);
    r.err = testing::ReadAll(err);
    return r;
  }

  std::string Path(const std::string& name) { return (dir_ / name).string(); }

  testing::ScratchDir dir_;
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_F(RulCliTest, TrainThenPredict) {
  CommandResult train = Run("train rul --quick --data " + Path("data") + " --out " + Path("model"));
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_NE(train.err.find("training on 30 engines"), std::string::npos) << train.err;
  EXPECT_NE(train.err.find("booster 3/3 done (120 rounds)"), std::string::npos) << train.err;
  EXPECT_NE(train.out.find("model written to"), std::string::npos) << train.out;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "model" / "manifest.json"));

  CommandResult predict = Run("predict rul --model " + Path("model") + " --data " +
                              Path("test.txt") + " --rul " + Path("rul.txt"));
  ASSERT_EQ(predict.exit_code, 0) << predict.err;
  const std::vector<std::string> lines = Lines(predict.out);
  ASSERT_EQ(lines.size(), 1u + 10u + 2u) << predict.out;  // header, 10 units, 2 summary lines
  EXPECT_NE(lines[0].find("80% interval"), std::string::npos);
  // Unit 1 of test_FD001 has 31 cycles and 112 cycles left.
  std::istringstream unit1(lines[1]);
  int unit = 0, cycles = 0;
  double rul = 0, truth = 0;
  unit1 >> unit >> cycles >> rul >> truth;
  EXPECT_EQ(unit, 1);
  EXPECT_EQ(cycles, 31);
  EXPECT_EQ(truth, 112);
  EXPECT_GT(rul, 60);
  EXPECT_NE(lines[1].find(" s"), std::string::npos);  // risk factors: " s11 -3.2, ..."
  EXPECT_EQ(lines[11].rfind("RMSE ", 0), 0u) << lines[11];
  EXPECT_NE(lines[11].find("PHM08 score"), std::string::npos);
  EXPECT_EQ(lines[12].rfind("interval coverage", 0), 0u) << lines[12];

  // Without true RULs: no truth column and no summary.
  CommandResult plain =
      Run("predict rul --factors 0 --model " + Path("model") + " --data " + Path("test.txt"));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(Lines(plain.out).size(), 11u) << plain.out;
}

TEST_F(RulCliTest, Errors) {
  CommandResult missing =
      Run("train rul --quick --data " + Path("nowhere") + " --out " + Path("model"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("error: RUL_DATA_NOT_FOUND: "), std::string::npos) << missing.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "model"));

  testing::WriteFile(dir_ / "bad.txt", "1 1 2 3\n");
  CommandResult bad =
      Run("train rul --quick --data " + Path("bad.txt") + " --out " + Path("model"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("error: RUL_BAD_DATA: " + Path("bad.txt") + ":1: expected 26 columns"),
            std::string::npos)
      << bad.err;

  CommandResult no_model =
      Run("predict rul --model " + Path("model") + " --data " + Path("test.txt"));
  EXPECT_EQ(no_model.exit_code, 1);
  EXPECT_NE(no_model.err.find("error: RUL_MODEL_IO: "), std::string::npos) << no_model.err;

  CommandResult usage = Run("train rul --data " + Path("data"));  // no --out
  EXPECT_EQ(usage.exit_code, 2);
}

TEST_F(RulCliTest, RulFileNotMatchingTheUnits) {
  ASSERT_EQ(Run("train rul --quick --data " + Path("data") + " --out " + Path("model")).exit_code,
            0);
  testing::WriteFile(dir_ / "rul9.txt", testing::FirstLines(CmapssDir() / "RUL_FD001.txt", 9));
  CommandResult r = Run("predict rul --model " + Path("model") + " --data " + Path("test.txt") +
                        " --rul " + Path("rul9.txt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: RUL_BAD_DATA: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("has 9 lines"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace doppel::analytics::rul
