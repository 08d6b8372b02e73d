// Each test FMU (tests/fmus), as FMI 2.0 and as FMI 3.0, over its default experiment against
// its known behaviour; the Unit contract (types, states, variables) on real FMUs.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>

#include "sim/fmi/experiment.h"
#include "sim/fmi/fmu.h"
#include "sim/fmi/test_fmus.h"

namespace doppel::sim::fmi {
namespace {

using testing::FmuPath;

struct Row {
  double t;
  std::vector<Value> values;
};

// Every row of an experiment, by output name.
struct Trajectory {
  std::vector<std::string> names;
  std::vector<Row> rows;
  double Real(std::size_t row, const std::string& name) const {
    return std::get<double>(rows[row].values[Column(name)]);
  }
  std::int64_t Int(std::size_t row, const std::string& name) const {
    return std::get<std::int64_t>(rows[row].values[Column(name)]);
  }
  std::size_t Column(const std::string& name) const {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return i;
    }
    ADD_FAILURE() << "no output " << name;
    return 0;
  }
};

class FmuModelsTest : public ::testing::TestWithParam<int> {
 protected:
  // Every test runs with TMPDIR pointing at its own folder, so that it can check that the
  // extracted FMUs are gone afterwards.
  void SetUp() override {
    old_tmpdir_ = std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "";
    setenv("TMPDIR", scratch_.path().c_str(), 1);
  }
  void TearDown() override {
    if (old_tmpdir_.empty()) {
      unsetenv("TMPDIR");
    } else {
      setenv("TMPDIR", old_tmpdir_.c_str(), 1);
    }
    EXPECT_TRUE(std::filesystem::is_empty(scratch_.path())) << "an extracted FMU was left behind";
  }

  std::string Path(const std::string& model) const {
    return FmuPath(model + "_fmi" + std::to_string(GetParam()));
  }
  std::unique_ptr<FmuUnit> Open(const std::string& model) {
    auto fmu = OpenFmu(Path(model));
    EXPECT_TRUE(fmu.ok()) << fmu.status().ToString();
    if (!fmu.ok()) return nullptr;
    EXPECT_EQ(fmu.value()->kind(), GetParam() == 2 ? "fmi2" : "fmi3");
    return std::move(fmu).value();
  }
  Trajectory Run(const std::string& model, const ExperimentOptions& options = {}) {
    Trajectory out;
    auto fmu = Open(model);
    if (!fmu) return out;
    for (std::size_t i : OutputIndices(*fmu)) out.names.push_back(fmu->variables()[i].name);
    core::Status s = RunExperiment(*fmu, options, [&](double t, const std::vector<Value>& v) {
      out.rows.push_back(Row{t, v});
      return core::Status();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

 private:
  testing::ScratchDir scratch_;
  std::string old_tmpdir_;
};

TEST_P(FmuModelsTest, ExpDecayMatchesTheExponential) {
  Trajectory tr = Run("exp_decay");
  ASSERT_EQ(tr.names, std::vector<std::string>{"x"});
  ASSERT_EQ(tr.rows.size(), 51u);  // 0..5 step 0.1, both ends
  EXPECT_DOUBLE_EQ(tr.rows.back().t, 5.0);
  for (std::size_t i = 0; i < tr.rows.size(); ++i) {
    double t = tr.rows[i].t;
    EXPECT_NEAR(tr.Real(i, "x"), std::exp(-t), 1e-12) << "t=" << t;
  }
}

TEST_P(FmuModelsTest, ExpDecayParameterAndStartValueAreUsed) {
  ExperimentOptions options;
  options.start_values = {{"k", "2"}, {"x", "3"}};
  options.stop_time = 1;
  options.step_size = 0.25;
  Trajectory tr = Run("exp_decay", options);
  ASSERT_EQ(tr.rows.size(), 5u);
  for (std::size_t i = 0; i < tr.rows.size(); ++i) {
    EXPECT_NEAR(tr.Real(i, "x"), 3 * std::exp(-2 * tr.rows[i].t), 1e-11);
  }
}

TEST_P(FmuModelsTest, BouncingBallBouncesAtTheAnalyticTimesAndLosesEnergyByE) {
  Trajectory tr = Run("bouncing_ball");
  const double g = 9.81, e = 0.7, h0 = 1.0;
  const double v0 = std::sqrt(2 * g * h0);
  // Bounce k happens at t1 + 2 v0 / g (e + ... + e^(k-1)), t1 = sqrt(2 h0 / g).
  auto bounce_time = [&](int k) {
    double t = std::sqrt(2 * h0 / g);
    for (int j = 1; j < k; ++j) t += 2 * v0 * std::pow(e, j) / g;
    return t;
  };
  // The FMU lets the ball rest after the first bounce leaving it slower than 1 mm/s (v_min).
  std::int64_t resting_bounce = 1;
  while (std::pow(e, static_cast<double>(resting_bounce)) * v0 >= 1e-3) ++resting_bounce;
  ASSERT_EQ(tr.rows.size(), 301u);
  std::int64_t seen = 0;
  for (std::size_t i = 0; i < tr.rows.size(); ++i) {
    const double t = tr.rows[i].t;
    const std::int64_t k = tr.Int(i, "bounces");
    const double h = tr.Real(i, "h"), v = tr.Real(i, "v");
    EXPECT_GE(h, -1e-12) << "t=" << t;
    if (k > 0) {
      EXPECT_NEAR(tr.Real(i, "last_bounce"), bounce_time(static_cast<int>(k)), 1e-9)
          << "bounce " << k;
      EXPECT_LE(tr.Real(i, "last_bounce"), t + 1e-12);
    }
    EXPECT_EQ(k,
              [&] {  // the count at t from the analytic bounce times
                std::int64_t n = 0;
                while (n < resting_bounce && bounce_time(static_cast<int>(n + 1)) <= t) ++n;
                return n;
              }())
        << "t=" << t;
    // Between bounces k and k+1 the energy is e^(2k) of the initial one (until the ball rests).
    if (v != 0 || h != 0) {
      const double energy = g * h + v * v / 2;
      EXPECT_NEAR(energy, std::pow(e, 2 * k) * g * h0, 1e-9) << "t=" << t << " bounce " << k;
    }
    seen = std::max(seen, k);
  }
  EXPECT_EQ(seen, resting_bounce);  // it comes to rest at 2.56 s, inside the 3 s
  EXPECT_NEAR(bounce_time(1), 0.4515236409, 1e-9);
}

TEST_P(FmuModelsTest, VanDerPolSettlesOnTheLimitCycle) {
  Trajectory tr = Run("van_der_pol");
  ASSERT_EQ(tr.rows.size(), 2001u);
  std::vector<double> crossings;  // upward zero crossings of x0, linearly interpolated
  for (std::size_t i = 1; i < tr.rows.size(); ++i) {
    double a = tr.Real(i - 1, "x0"), b = tr.Real(i, "x0");
    if (a < 0 && b >= 0) {
      double t0 = tr.rows[i - 1].t, t1 = tr.rows[i].t;
      crossings.push_back(t0 + (t1 - t0) * (-a) / (b - a));
    }
  }
  ASSERT_GE(crossings.size(), 3u);
  double period = crossings.back() - crossings[crossings.size() - 2];
  EXPECT_NEAR(period, 6.6633, 2e-3);
  // The amplitude of the limit cycle is about 2.0086.
  double peak = 0;
  for (std::size_t i = tr.rows.size() / 2; i < tr.rows.size(); ++i) {
    peak = std::max(peak, tr.Real(i, "x0"));
  }
  EXPECT_NEAR(peak, 2.0086, 2e-3);
}

TEST_P(FmuModelsTest, StairStepsAtTheExactTimes) {
  for (double step : {0.2, 0.3, 0.25}) {
    ExperimentOptions options;
    options.step_size = step;
    Trajectory tr = Run("stair", options);
    ASSERT_FALSE(tr.rows.empty());
    EXPECT_DOUBLE_EQ(tr.rows.back().t, 10.0);
    for (std::size_t i = 0; i < tr.rows.size(); ++i) {
      EXPECT_EQ(tr.Int(i, "counter"), static_cast<std::int64_t>(std::floor(tr.rows[i].t + 1e-9)))
          << "t=" << tr.rows[i].t << " step " << step;
    }
  }
  ExperimentOptions half;
  half.start_values = {{"period", "0.5"}};
  Trajectory tr = Run("stair", half);
  for (std::size_t i = 0; i < tr.rows.size(); ++i) {
    EXPECT_EQ(tr.Int(i, "counter"),
              static_cast<std::int64_t>(std::floor(tr.rows[i].t / 0.5 + 1e-9)));
  }
}

TEST_P(FmuModelsTest, FeedthroughRoundTripsEveryType) {
  auto fmu = Open("feedthrough");
  ASSERT_TRUE(fmu);
  // (input name, value): the extremes of every type.
  std::vector<std::pair<std::string, Value>> values;
  if (GetParam() == 2) {
    values = {{"real", -1.25e-300},
              {"integer", std::int64_t{std::numeric_limits<std::int32_t>::min()}},
              {"boolean", true},
              {"string", std::string("a, \"quoted\" ✓ string")},
              {"enumeration", std::int64_t{3}}};
  } else {
    values = {{"float32", 1.5},
              {"float64", -1.25e-300},
              {"int8", std::int64_t{-128}},
              {"uint8", std::int64_t{255}},
              {"int16", std::int64_t{-32768}},
              {"uint16", std::int64_t{65535}},
              {"int32", std::int64_t{std::numeric_limits<std::int32_t>::min()}},
              {"uint32", std::int64_t{std::numeric_limits<std::uint32_t>::max()}},
              {"int64", std::int64_t{std::numeric_limits<std::int64_t>::min()}},
              {"uint64", std::int64_t{std::numeric_limits<std::int64_t>::max()}},
              {"boolean", true},
              {"string", std::string("a, \"quoted\" ✓ string")},
              {"enumeration", std::int64_t{3}}};
  }
  auto set_all = [&] {
    for (const auto& [name, value] : values) {
      auto in = fmu->Find(name + "_in");
      ASSERT_TRUE(in.ok()) << name;
      ASSERT_TRUE(fmu->Set(*in, value).ok()) << name << ": " << fmu->Set(*in, value).ToString();
    }
  };
  auto check_all = [&](const char* when) {
    for (const auto& [name, value] : values) {
      auto out = fmu->Find(name + "_out");
      ASSERT_TRUE(out.ok()) << name;
      EXPECT_EQ(fmu->variables()[*out].causality, Causality::kOutput);
      auto got = fmu->Get(*out);
      ASSERT_TRUE(got.ok()) << name << ": " << got.status().ToString();
      EXPECT_EQ(*got, value) << name << " " << when;
    }
  };
  set_all();
  ASSERT_TRUE(fmu->Initialize(0).ok());
  check_all("after Initialize");
  // Inputs are settable between steps: change every one, step, read back.
  for (auto& [name, value] : values) {
    if (auto* d = std::get_if<double>(&value)) *d = name == "float32" ? -0.5 : 0.1;
    if (auto* i = std::get_if<std::int64_t>(&value)) *i = name == "enumeration" ? 2 : 7;
    if (auto* b = std::get_if<bool>(&value)) *b = false;
    if (auto* s = std::get_if<std::string>(&value)) *s = "";
  }
  set_all();
  auto outcome = fmu->Step(0, 0.5);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(outcome->time_reached, 0.5);
  EXPECT_FALSE(outcome->terminate);
  check_all("after a step");
}

TEST_P(FmuModelsTest, Float32ValuesAreRoundedToFloat) {
  if (GetParam() == 2) GTEST_SKIP() << "FMI 2 has no Float32";
  auto fmu = Open("feedthrough");
  ASSERT_TRUE(fmu);
  ASSERT_TRUE(fmu->Set(*fmu->Find("float32_in"), 0.1).ok());
  ASSERT_TRUE(fmu->Initialize(0).ok());
  auto got = fmu->Get(*fmu->Find("float32_out"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::get<double>(*got), static_cast<double>(0.1f));
}

TEST_P(FmuModelsTest, VariablesMapCausalityTypeAndStates) {
  auto fmu = Open("bouncing_ball");
  ASSERT_TRUE(fmu);
  const auto& vars = fmu->variables();
  ASSERT_EQ(vars.size(), 8u);  // FMI 3's independent `time` is not a variable
  std::map<std::string, const Variable*> by_name;
  for (const auto& v : vars) by_name[v.name] = &v;
  EXPECT_EQ(by_name["h"]->causality, Causality::kOutput);
  EXPECT_EQ(by_name["h"]->unit, "m");
  EXPECT_EQ(by_name["g"]->causality, Causality::kParameter);
  EXPECT_EQ(by_name["g"]->start, Value(9.81));
  EXPECT_EQ(by_name["der(h)"]->causality, Causality::kLocal);
  EXPECT_EQ(by_name["bounces"]->type, ValueType::kInteger);
  EXPECT_EQ(by_name["e"]->description, "coefficient of restitution");
  // Before Initialize, Get answers the start value (fmiGet* is not allowed yet).
  EXPECT_EQ(*fmu->Get(*fmu->Find("g")), Value(9.81));
  EXPECT_EQ(fmu->Get(*fmu->Find("bounces")).status().code(), "SIM_BAD_STATE");
  ASSERT_TRUE(fmu->Set(*fmu->Find("e"), 0.5).ok());
  EXPECT_EQ(*fmu->Get(*fmu->Find("e")), Value(0.5));
  EXPECT_EQ(fmu->description().experiment.stop_time, 3.0);
  EXPECT_TRUE(fmu->description().co_simulation->can_handle_variable_communication_step_size);
}

TEST_P(FmuModelsTest, SetRulesFollowTheStandard) {
  auto fmu = Open("exp_decay");
  ASSERT_TRUE(fmu);
  std::size_t k = *fmu->Find("k"), x = *fmu->Find("x"), der = *fmu->Find("der(x)");
  EXPECT_EQ(fmu->Set(k, std::int64_t{2}).code(), "SIM_WRONG_TYPE");
  EXPECT_EQ(fmu->Set(k, std::string("2")).code(), "SIM_WRONG_TYPE");
  EXPECT_EQ(fmu->Set(der, 1.0).code(), "SIM_BAD_STATE");  // calculated local
  EXPECT_EQ(fmu->Set(99, 1.0).code(), "SIM_UNKNOWN_VARIABLE");
  EXPECT_EQ(fmu->Get(99).status().code(), "SIM_UNKNOWN_VARIABLE");
  EXPECT_EQ(fmu->Find("nope").status().code(), "SIM_UNKNOWN_VARIABLE");
  EXPECT_EQ(fmu->Step(0, 0.1).status().code(), "SIM_BAD_STATE");  // not initialized
  ASSERT_TRUE(fmu->Set(x, 2.0).ok());
  ASSERT_TRUE(fmu->Initialize(0).ok());
  EXPECT_EQ(fmu->Initialize(0).code(), "SIM_BAD_STATE");
  EXPECT_EQ(fmu->Set(k, 3.0).code(), "SIM_BAD_STATE");  // fixed parameter after Initialize
  EXPECT_EQ(fmu->Set(x, 3.0).code(), "SIM_BAD_STATE");
  EXPECT_EQ(fmu->Step(0, 0).status().code(), "SIM_BAD_STATE");
  ASSERT_TRUE(fmu->Step(0, 0.5).ok());
  EXPECT_NEAR(std::get<double>(*fmu->Get(x)), 2 * std::exp(-0.5), 1e-12);
  EXPECT_TRUE(fmu->Terminate().ok());
  EXPECT_EQ(fmu->Step(0.5, 0.5).status().code(), "SIM_BAD_STATE");
}

TEST_P(FmuModelsTest, IntegerRangesAreChecked) {
  auto fmu = Open("feedthrough");
  ASSERT_TRUE(fmu);
  if (GetParam() == 2) {
    EXPECT_EQ(fmu->Set(*fmu->Find("integer_in"), std::int64_t{1} << 31).code(),
              "FMI_VALUE_OUT_OF_RANGE");
    return;
  }
  EXPECT_EQ(fmu->Set(*fmu->Find("int8_in"), std::int64_t{-129}).code(), "FMI_VALUE_OUT_OF_RANGE");
  EXPECT_EQ(fmu->Set(*fmu->Find("uint8_in"), std::int64_t{256}).code(), "FMI_VALUE_OUT_OF_RANGE");
  EXPECT_EQ(fmu->Set(*fmu->Find("uint32_in"), std::int64_t{-1}).code(), "FMI_VALUE_OUT_OF_RANGE");
  EXPECT_EQ(fmu->Set(*fmu->Find("uint64_in"), std::int64_t{-1}).code(), "FMI_VALUE_OUT_OF_RANGE");
  EXPECT_EQ(fmu->Set(*fmu->Find("int16_in"), std::int64_t{40000}).code(), "FMI_VALUE_OUT_OF_RANGE");
}

TEST_P(FmuModelsTest, TerminateRequestEndsTheRunAtTheFmusTime) {
  auto fmu = Open("faulty");
  ASSERT_TRUE(fmu);
  ASSERT_TRUE(fmu->Set(*fmu->Find("terminate_at"), 0.25).ok());
  ASSERT_TRUE(fmu->Initialize(0).ok());
  auto first = fmu->Step(0, 0.2);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->terminate);
  auto second = fmu->Step(0.2, 0.2);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->terminate);
  EXPECT_DOUBLE_EQ(second->time_reached, 0.25);
  EXPECT_NEAR(std::get<double>(*fmu->Get(*fmu->Find("x"))), std::exp(-0.25), 1e-12);
  EXPECT_EQ(fmu->Step(0.25, 0.2).status().code(), "SIM_BAD_STATE");

  // Through RunExperiment: the last row is at the FMU's time and the run succeeds.
  ExperimentOptions options;
  options.start_values = {{"terminate_at", "0.55"}};
  Trajectory tr = Run("faulty", options);
  ASSERT_EQ(tr.rows.size(), 7u);
  EXPECT_DOUBLE_EQ(tr.rows.back().t, 0.55);
}

TEST_P(FmuModelsTest, FailingDoStepGivesStepFailedWithTheFmuLog) {
  auto fmu = Open("faulty");
  ASSERT_TRUE(fmu);
  ASSERT_TRUE(fmu->Set(*fmu->Find("fail_at"), 0.3).ok());
  ASSERT_TRUE(fmu->Initialize(0).ok());
  ASSERT_TRUE(fmu->Step(0, 0.25).ok());
  auto failed = fmu->Step(0.25, 0.25);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), "SIM_STEP_FAILED");
  const std::string& message = failed.status().message();
  EXPECT_NE(message.find(GetParam() == 2 ? "fmi2DoStep returned fmi2Error at t=0.25"
                                         : "fmi3DoStep returned fmi3Error at t=0.25"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("fail_at=0.3 reached"), std::string::npos) << message;
  // After an error the instance is only freed.
  EXPECT_EQ(fmu->Step(0.5, 0.25).status().code(), "SIM_BAD_STATE");
  EXPECT_EQ(fmu->Get(0).status().code(), "SIM_BAD_STATE");
  ASSERT_FALSE(fmu->log().empty());
  EXPECT_EQ(fmu->log().back().status, "Error");
}

TEST_P(FmuModelsTest, WrongCommunicationPointIsRefusedByTheFmu) {
  auto fmu = Open("exp_decay");
  ASSERT_TRUE(fmu);
  ASSERT_TRUE(fmu->Initialize(0).ok());
  auto r = fmu->Step(1.0, 0.1);  // the FMU is at 0
  EXPECT_EQ(r.status().code(), "SIM_STEP_FAILED");
}

TEST_P(FmuModelsTest, TwoInstancesOfOneFmuAreIndependent) {
  auto a = Open("exp_decay");
  auto b = Open("exp_decay");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Set(*a->Find("k"), 2.0).ok());
  ASSERT_TRUE(a->Initialize(0).ok());
  ASSERT_TRUE(b->Initialize(0).ok());
  ASSERT_TRUE(a->Step(0, 1).ok());
  ASSERT_TRUE(b->Step(0, 1).ok());
  EXPECT_NEAR(std::get<double>(*a->Get(0)), std::exp(-2.0), 1e-12);
  EXPECT_NEAR(std::get<double>(*b->Get(0)), std::exp(-1.0), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Fmi, FmuModelsTest, ::testing::Values(2, 3),
                         [](const auto& info) { return "fmi" + std::to_string(info.param); });

}  // namespace
}  // namespace doppel::sim::fmi
