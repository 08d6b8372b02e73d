// `doppel sim fmu` as a user runs it: CSV on stdout or in a file, options, and errors (a crashing
// FMU included) as "error: CODE: message" with exit code 1.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sim/fmi/test_fmus.h"

namespace doppel::sim::fmi {
namespace {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class FmuCliTest : public ::testing::Test {
 protected:
  CommandResult Run(const std::string& args) {
    const char* bin = std::getenv("DOPPEL_BINARY");
    EXPECT_NE(bin, nullptr) << "DOPPEL_BINARY is not set";
    if (bin == nullptr) return {};
    std::string out = (dir_ / "stdout").string(), err = (dir_ / "stderr").string();
    std::string command = std::string(bin) + " sim fmu " + args + " >" + out + " 2>" + err;
    int status = std::system(command.c_str());
    CommandResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = testing::ReadAll(out);
    r.err = testing::ReadAll(err);
    return r;
  }
  static std::vector<std::string> Lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  testing::ScratchDir dir_;
};

TEST_F(FmuCliTest, WritesTimeAndOutputsAsCsvOnStdout) {
  for (int v : {2, 3}) {
    CommandResult r = Run(testing::FmuPath("exp_decay_fmi" + std::to_string(v)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto lines = Lines(r.out);
    ASSERT_EQ(lines.size(), 52u);  // header + 0..5 step 0.1
    EXPECT_EQ(lines[0], "time,x");
    EXPECT_EQ(lines[1], "0,1");
    double t = 0, x = 0;
    ASSERT_EQ(std::sscanf(lines.back().c_str(), "%lf,%lf", &t, &x), 2);
    EXPECT_EQ(t, 5.0);
    EXPECT_NEAR(x, std::exp(-5.0), 1e-12);
  }
}

TEST_F(FmuCliTest, OptionsAndOutFile) {
  std::string csv = (dir_ / "ball.csv").string();
  CommandResult r = Run(testing::FmuPath("bouncing_ball_fmi3") +
                        " --stop 1 --step 0.25 --start e=0.5 --start h=2 --out " + csv);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  auto lines = Lines(testing::ReadAll(csv));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0], "time,h,v,bounces,last_bounce");
  EXPECT_EQ(lines[1].substr(0, 6), "0,2,0,");
  // Dropped from 2 m the ball first bounces at sqrt(4 / 9.81) = 0.6386 s.
  double t, h, v, last;
  long long bounces;
  ASSERT_EQ(std::sscanf(lines[5].c_str(), "%lf,%lf,%lf,%lld,%lf", &t, &h, &v, &bounces, &last), 5);
  EXPECT_EQ(t, 1.0);
  EXPECT_EQ(bounces, 1);
  EXPECT_NEAR(last, std::sqrt(4 / 9.81), 1e-9);
}

TEST_F(FmuCliTest, FeedthroughStringsAreQuoted) {
  CommandResult r = Run(testing::FmuPath("feedthrough_fmi2") +
                        " --stop 0.5 --step 0.5 --start 'string_in=a,b' --start boolean_in=true");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "time,real_out,integer_out,boolean_out,string_out,enumeration_out");
  EXPECT_EQ(lines[2], "0.5,0,0,1,\"a,b\",1");
}

TEST_F(FmuCliTest, CrashingFmuIsAnErrorNotACrash) {
  std::string csv = (dir_ / "crash.csv").string();
  for (int v : {2, 3}) {
    CommandResult r = Run(testing::FmuPath("faulty_fmi" + std::to_string(v)) +
                          " --start crash_at=0.45 --out " + csv);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "error: FMI_CRASHED: the FMU crashed (SIGSEGV) in fmi" + std::to_string(v) +
                         "DoStep at t=0.4\n");
    EXPECT_FALSE(std::filesystem::exists(csv)) << "a partial CSV was left";
  }
}

TEST_F(FmuCliTest, ErrorsHaveTheirCode) {
  struct Case {
    std::string args;
    std::string prefix;
  };
  std::vector<Case> cases = {
      {(dir_ / "missing.fmu").string(), "error: FMI_FILE_NOT_FOUND: "},
      {testing::FmuPath("exp_decay_fmi2") + " --start nope=1",
       "error: SIM_UNKNOWN_VARIABLE: the fmi2 unit has no variable 'nope'"},
      {testing::FmuPath("exp_decay_fmi2") + " --start k=fast",
       "error: SIM_WRONG_TYPE: 'fast' is not a real number (variable 'k')"},
      {testing::FmuPath("exp_decay_fmi2") + " --start k", "error: SIM_BAD_ARGUMENT: "},
      {testing::FmuPath("exp_decay_fmi3") + " --step 0", "error: FMI_BAD_EXPERIMENT: "},
      {testing::FmuPath("faulty_fmi3") + " --start fail_at=1", "error: SIM_STEP_FAILED: "},
      {testing::FmuPath("no_do_step_fmi3"), "error: FMI_MISSING_SYMBOL: "},
  };
  for (const auto& c : cases) {
    CommandResult r = Run(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_NE(r.err.find(c.prefix), std::string::npos) << c.args << "\n" << r.err;
  }
}

TEST_F(FmuCliTest, FmuLogGoesToStderrNotIntoTheCsv) {
  CommandResult r = Run(testing::FmuPath("faulty_fmi2") + " --start fail_at=0.25");
  EXPECT_EQ(r.exit_code, 1);
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;  // header, t = 0, 0.1, 0.2
  EXPECT_EQ(lines[0], "time,x");
  EXPECT_NE(r.err.find("fmu [Error] logStatusError: faulty: fail_at=0.25 reached"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("error: SIM_STEP_FAILED: fmi2DoStep returned fmi2Error at t=0.2"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace doppel::sim::fmi
