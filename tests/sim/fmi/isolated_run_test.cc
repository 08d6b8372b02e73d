// Crash isolation: an FMU that segfaults inside doStep becomes FMI_CRASHED naming the function
// and the time; ordinary results and errors come back unchanged from the child.
#include "sim/fmi/isolated_run.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "sim/fmi/experiment.h"
#include "sim/fmi/test_fmus.h"

namespace doppel::sim::fmi {
namespace {

// Opens the faulty FMU of `version` with `parameter` set, and runs its default experiment.
core::Status RunFaulty(int version, const std::string& parameter, const std::string& value,
                       CallSite* site) {
  OpenOptions options;
  options.call_site = site;
  options.log_to_spdlog = false;
  auto fmu = OpenFmu(testing::FmuPath("faulty_fmi" + std::to_string(version)), options);
  if (!fmu.ok()) return fmu.status();
  ExperimentOptions experiment;
  experiment.start_values = {{parameter, value}};
  return RunExperiment(**fmu, experiment,
                       [](double, const std::vector<Value>&) { return core::Status(); });
}

class IsolatedRunTest : public ::testing::TestWithParam<int> {};

TEST_P(IsolatedRunTest, SegfaultInDoStepBecomesAnError) {
  const int v = GetParam();
  testing::ScratchDir tmp;
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old != nullptr ? old : "";
  setenv("TMPDIR", tmp.path().c_str(), 1);
  core::Status s =
      RunIsolated([&](CallSite* site) { return RunFaulty(v, "crash_at", "0.45", site); });
  if (saved.empty()) {
    unsetenv("TMPDIR");
  } else {
    setenv("TMPDIR", saved.c_str(), 1);
  }
  EXPECT_EQ(s.code(), "FMI_CRASHED");
  EXPECT_EQ(s.message(),
            "the FMU crashed (SIGSEGV) in fmi" + std::to_string(v) + "DoStep at t=0.4");
  // The crashed child never removed its extracted FMU; the parent did.
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));
}

TEST_P(IsolatedRunTest, ChildErrorsComeBackUnchanged) {
  const int v = GetParam();
  core::Status s =
      RunIsolated([&](CallSite* site) { return RunFaulty(v, "fail_at", "0.45", site); });
  EXPECT_EQ(s.code(), "SIM_STEP_FAILED");
  EXPECT_NE(s.message().find("fail_at=0.45 reached"), std::string::npos) << s.message();
}

TEST_P(IsolatedRunTest, SuccessfulRunIsOk) {
  const int v = GetParam();
  core::Status s =
      RunIsolated([&](CallSite* site) { return RunFaulty(v, "terminate_at", "-1", site); });
  EXPECT_TRUE(s.ok()) << s.ToString();
}

INSTANTIATE_TEST_SUITE_P(Fmi, IsolatedRunTest, ::testing::Values(2, 3),
                         [](const auto& info) { return "fmi" + std::to_string(info.param); });

TEST(IsolatedRun, ExitWithoutAResultIsACrash) {
  core::Status s = RunIsolated([](CallSite* site) {
    std::snprintf(site->function, sizeof(site->function), "fmi2Terminate");
    site->time = 2.5;
    _exit(3);
    return core::Status();
  });
  EXPECT_EQ(s.code(), "FMI_CRASHED");
  EXPECT_EQ(s.message(),
            "the FMU process exited with code 3 without a result in fmi2Terminate at t=2.5");
}

TEST(IsolatedRun, AbortIsReportedWithItsSignal) {
  core::Status s = RunIsolated([](CallSite*) -> core::Status { std::abort(); });
  EXPECT_EQ(s.code(), "FMI_CRASHED");
  EXPECT_EQ(s.message(), "the FMU crashed (SIGABRT) while loading the FMU");
}

TEST(IsolatedRun, LongMessagesArriveWhole) {
  std::string message(100000, 'm');
  core::Status s = RunIsolated([&](CallSite*) { return core::Status("SOME_CODE", message); });
  EXPECT_EQ(s.code(), "SOME_CODE");
  EXPECT_EQ(s.message(), message);
}

}  // namespace
}  // namespace doppel::sim::fmi
