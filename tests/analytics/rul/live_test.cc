// Live RUL on twins (analytics/rul/live.h): FD001 test engines fed cycle by cycle as readings to
// an in-memory twin graph; the twin's RUL Properties must be what RulModel predicts directly.
#include "analytics/rul/live.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <optional>

#include "analytics/rul/test_data.h"
#include "model/model_repository.h"
#include "sync/ingest.h"
#include "twin/twin_document.h"
#include "twin/twin_graph.h"

namespace doppel::analytics {
namespace {

namespace json = boost::json;
using Clock = std::chrono::system_clock;
using rul::testing::CmapssDir;

constexpr const char* kEngineModel = "dtmi:doppel:example:turbofan:Engine;1";

// Same element names as the engine, another model: must be ignored.
constexpr const char* kOtherModel = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:doppel:test:NotAnEngine;1",
  "@type": "Interface",
  "contents": [
    {"@type": "Property", "name": "cycle", "schema": "integer"},
    {"@type": "Telemetry", "name": "s2", "schema": "double"},
    {"@type": "Telemetry", "name": "s3", "schema": "double"},
    {"@type": "Telemetry", "name": "s4", "schema": "double"},
    {"@type": "Telemetry", "name": "s7", "schema": "double"},
    {"@type": "Telemetry", "name": "s8", "schema": "double"},
    {"@type": "Telemetry", "name": "s9", "schema": "double"},
    {"@type": "Telemetry", "name": "s11", "schema": "double"},
    {"@type": "Telemetry", "name": "s12", "schema": "double"},
    {"@type": "Telemetry", "name": "s13", "schema": "double"},
    {"@type": "Telemetry", "name": "s14", "schema": "double"},
    {"@type": "Telemetry", "name": "s15", "schema": "double"},
    {"@type": "Telemetry", "name": "s17", "schema": "double"},
    {"@type": "Telemetry", "name": "s20", "schema": "double"},
    {"@type": "Telemetry", "name": "s21", "schema": "double"},
    {"@type": "Property", "name": "remainingUsefulLife", "schema": "double"}
  ]
})";

// A quick model on 20 training engines, trained once for the suite (seconds; ASan: tens); the
// suite runs as one ctest (WHOLE in tests/analytics/CMakeLists.txt) so that happens once.
class LiveRulTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new rul::testing::ScratchDir();
    auto fleet = rul::ReadCmapssFile(CmapssDir() / "train_FD001.txt");
    ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
    fleet->resize(20);
    rul::TrainOptions o = rul::TrainOptions::Quick();
    o.rounds = 60;
    auto m = rul::RulModel::Train(*fleet, o);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_TRUE(m->Save(dir_->path()).ok());
    auto test = rul::ReadCmapssFile(CmapssDir() / "test_FD001.txt");
    ASSERT_TRUE(test.ok()) << test.status().ToString();
    test_units_ = new std::vector<rul::CmapssUnit>(std::move(*test));
  }
  static void TearDownTestSuite() {
    delete test_units_;
    test_units_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(test_units_, nullptr);
    const std::string engine = rul::testing::ReadAll(std::filesystem::path(DOPPEL_SOURCE_DIR) /
                                                     "examples/models/turbofan/Engine.json");
    ASSERT_FALSE(engine.empty());
    std::vector<model::SourceDocument> docs{{"Engine.json", engine}, {"other", kOtherModel}};
    auto added = models_.Add(docs);
    ASSERT_TRUE(added.ok());
    for (const char* id : {"engine-1", "engine-2"}) {
      ASSERT_TRUE(
          graph_.PutTwinSync(id, json::object{{"$metadata", {{"$model", kEngineModel}}}}).ok());
    }
    ASSERT_TRUE(graph_
                    .PutTwinSync(
                        "other-1",
                        json::object{{"$metadata", {{"$model", "dtmi:doppel:test:NotAnEngine;1"}}}})
                    .ok());
    auto model = rul::RulModel::Load(dir_->path());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    live_.emplace(std::move(*model), LiveRulOptions{.graph = &graph_, .model_path = dir_->path()});
  }

  static Clock::time_point TimeOf(int cycle) {
    return Clock::time_point(std::chrono::seconds(1'700'000'000) + std::chrono::seconds(cycle));
  }

  // The readings of cycle `i` (0-based) of `unit` for `twin`: the model's sensors, then the
  // cycle number (or the cycle first when `cycle_first`), all with the cycle's source time.
  std::vector<sync::Reading> CycleReadings(const rul::CmapssUnit& unit, const std::string& twin,
                                           std::size_t i, int cycle, Clock::time_point t,
                                           bool cycle_first = false) {
    std::vector<sync::Reading> out;
    sync::Reading c{twin, "cycle", json::value(static_cast<std::int64_t>(cycle)), t, "test"};
    if (cycle_first) out.push_back(c);
    for (const auto& [name, series] : unit.history.sensors) {
      out.push_back({twin, name, json::value(series[i]), t, "test"});
    }
    if (!cycle_first) out.push_back(c);
    return out;
  }

  void Feed(const rul::CmapssUnit& unit, const std::string& twin, std::size_t from, std::size_t to,
            int time_offset = 0) {
    for (std::size_t i = from; i < to; ++i) {
      const int cycle = static_cast<int>(i) + 1;
      for (const auto& r :
           CycleReadings(unit, twin, i, cycle, TimeOf(cycle + time_offset), i % 2 == 1)) {
        live_->Observe(r);
      }
    }
  }

  // The unit's first `n` cycles, as RulModel::Predict takes them.
  static rul::EngineHistory Prefix(const rul::CmapssUnit& unit, std::size_t n) {
    rul::EngineHistory h = unit.history;
    for (auto& [name, series] : h.sensors) series.resize(n);
    h.cycle = static_cast<int>(n);
    return h;
  }

  std::optional<double> TwinNumber(const std::string& twin, const char* name) {
    twin::TwinPtr t = graph_.FindTwin(twin);
    if (!t) return std::nullopt;
    const json::value* v = t->doc.if_contains(name);
    if (v == nullptr || !v->is_number()) return std::nullopt;
    return v->to_number<double>();
  }

  static inline rul::testing::ScratchDir* dir_ = nullptr;
  static inline std::vector<rul::CmapssUnit>* test_units_ = nullptr;
  model::ModelRepository models_;
  twin::TwinGraph graph_{models_, nullptr};
  std::optional<LiveRul> live_;
};

TEST_F(LiveRulTest, TwinGetsTheModelsPredictionAfterEveryCycle) {
  const rul::CmapssUnit& u1 = (*test_units_)[0];  // 31 cycles
  const rul::CmapssUnit& u2 = (*test_units_)[1];  // 49 cycles
  ASSERT_EQ(u1.history.sensors.begin()->second.size(), 31u);
  const std::size_t n2 = u2.history.sensors.begin()->second.size();
  Feed(u1, "engine-1", 0, 31);
  Feed(u2, "engine-2", 0, n2);
  live_->WaitIdle();

  for (const auto& [twin, unit, n] :
       {std::tuple{"engine-1", &u1, std::size_t{31}}, std::tuple{"engine-2", &u2, n2}}) {
    SCOPED_TRACE(twin);
    auto direct = live_->model().Predict(unit->history, {.top_factors = 5});
    ASSERT_TRUE(direct.ok()) << direct.status().ToString();
    auto rul = TwinNumber(twin, "remainingUsefulLife");
    ASSERT_TRUE(rul.has_value());
    EXPECT_NEAR(*rul, direct->rul, 1e-9);
    EXPECT_NEAR(*TwinNumber(twin, "rulLow80"), direct->interval80.low, 1e-9);
    EXPECT_NEAR(*TwinNumber(twin, "rulHigh80"), direct->interval80.high, 1e-9);
    EXPECT_NEAR(*TwinNumber(twin, "rulLow95"), direct->interval95.low, 1e-9);
    EXPECT_NEAR(*TwinNumber(twin, "rulHigh95"), direct->interval95.high, 1e-9);
    EXPECT_LE(*TwinNumber(twin, "rulLow95"), *TwinNumber(twin, "rulLow80"));
    EXPECT_LE(*TwinNumber(twin, "rulLow80"), *rul);
    EXPECT_LE(*rul, *TwinNumber(twin, "rulHigh80"));
    EXPECT_LE(*TwinNumber(twin, "rulHigh80"), *TwinNumber(twin, "rulHigh95"));
    EXPECT_LT(*TwinNumber(twin, "rulLow95"), *TwinNumber(twin, "rulHigh95"));
    // Written at the last cycle's source time.
    auto at = twin::PropertySourceTime(*graph_.FindTwin(twin), "/remainingUsefulLife");
    ASSERT_TRUE(at.has_value());
    EXPECT_EQ(*at, TimeOf(static_cast<int>(n)));

    auto latest = live_->Latest(twin);
    ASSERT_TRUE(latest.has_value());
    EXPECT_EQ(latest->cycle, static_cast<int>(n));
    EXPECT_EQ(latest->cycles_seen, n);
    EXPECT_EQ(latest->prediction.rul, direct->rul);
    ASSERT_FALSE(latest->prediction.factors.empty());
    ASSERT_EQ(latest->prediction.factors.size(), direct->factors.size());
    for (std::size_t i = 0; i < direct->factors.size(); ++i) {
      EXPECT_EQ(latest->prediction.factors[i].sensor, direct->factors[i].sensor);
      EXPECT_NEAR(latest->prediction.factors[i].contribution, direct->factors[i].contribution,
                  1e-9);
      if (i > 0) {
        EXPECT_GE(std::abs(latest->prediction.factors[i - 1].contribution),
                  std::abs(latest->prediction.factors[i].contribution));
      }
    }
    json::value j = live_->ToJson(*latest);
    EXPECT_EQ(j.at("cycle").to_number<int>(), static_cast<int>(n));
    EXPECT_EQ(j.at("intervals").as_array().size(), 2u);
    EXPECT_EQ(j.at("factors").as_array().size(), direct->factors.size());
    EXPECT_EQ(j.at("model").at("trainedOn").at("engines").to_number<int>(), 20);
  }
  const LiveRulStats s = live_->Stats();
  EXPECT_EQ(s.cycles, 31u + n2);
  EXPECT_EQ(s.twins, 2u);
  EXPECT_EQ(s.failed, 0u) << s.last_error;
  EXPECT_GE(s.predictions, 2u);
  EXPECT_LE(s.predictions, (31u - 29u) + (n2 - 29u));  // cycles ≥ 30, some coalesced
  EXPECT_EQ(s.predictions + s.coalesced, (31u - 29u) + (n2 - 29u));
}

TEST_F(LiveRulTest, EveryCycleFromTheThirtiethIsPredictedWhenFedSlowly) {
  const rul::CmapssUnit& u2 = (*test_units_)[1];
  Feed(u2, "engine-2", 0, 29);
  live_->WaitIdle();
  EXPECT_FALSE(live_->Latest("engine-2").has_value());  // 29 cycles: too few
  EXPECT_FALSE(TwinNumber("engine-2", "remainingUsefulLife").has_value());
  for (std::size_t n = 30; n <= 35; ++n) {
    Feed(u2, "engine-2", n - 1, n);
    live_->WaitIdle();
    auto direct = live_->model().Predict(Prefix(u2, n), {.top_factors = 0});
    ASSERT_TRUE(direct.ok());
    auto rul = TwinNumber("engine-2", "remainingUsefulLife");
    ASSERT_TRUE(rul.has_value()) << n;
    EXPECT_NEAR(*rul, direct->rul, 1e-9) << n;
    EXPECT_EQ(live_->Latest("engine-2")->cycle, static_cast<int>(n));
  }
  EXPECT_EQ(live_->Stats().predictions, 6u);
}

TEST_F(LiveRulTest, PartialCyclesDoNotPredict) {
  const rul::CmapssUnit& u1 = (*test_units_)[0];
  Feed(u1, "engine-1", 0, 29);
  // Cycle 30 without s11: incomplete.
  std::vector<sync::Reading> c30 = CycleReadings(u1, "engine-1", 29, 30, TimeOf(30));
  sync::Reading s11;
  for (const auto& r : c30) {
    if (r.element == "s11") {
      s11 = r;
    } else {
      live_->Observe(r);
    }
  }
  // A cycle with the sensors but no cycle number: incomplete too.
  for (const auto& r : CycleReadings(u1, "engine-1", 30, 31, TimeOf(31))) {
    if (r.element != "cycle") live_->Observe(r);
  }
  live_->WaitIdle();
  EXPECT_FALSE(live_->Latest("engine-1").has_value());
  EXPECT_FALSE(TwinNumber("engine-1", "remainingUsefulLife").has_value());
  EXPECT_EQ(live_->Stats().cycles, 29u);

  // The missing reading arrives: cycle 30 completes and is predicted.
  live_->Observe(s11);
  live_->WaitIdle();
  auto direct = live_->model().Predict(Prefix(u1, 30), {.top_factors = 0});
  ASSERT_TRUE(direct.ok());
  ASSERT_TRUE(TwinNumber("engine-1", "remainingUsefulLife").has_value());
  EXPECT_NEAR(*TwinNumber("engine-1", "remainingUsefulLife"), direct->rul, 1e-9);
  EXPECT_EQ(live_->Latest("engine-1")->cycle, 30);
}

TEST_F(LiveRulTest, NonEngineTwinsAndOtherElementsAreIgnored) {
  const rul::CmapssUnit& u1 = (*test_units_)[0];
  Feed(u1, "other-1", 0, 31);
  // Elements the model does not use, and a non-number, on an engine.
  live_->Observe({"engine-1", "s1", json::value(518.67), TimeOf(1), "test"});
  live_->Observe({"engine-1", "setting1", json::value(0.001), TimeOf(1), "test"});
  live_->Observe({"engine-1", "cycle", json::value("one"), TimeOf(1), "test"});
  live_->WaitIdle();
  EXPECT_FALSE(live_->Latest("other-1").has_value());
  EXPECT_FALSE(TwinNumber("other-1", "remainingUsefulLife").has_value());
  const LiveRulStats s = live_->Stats();
  EXPECT_EQ(s.readings, 0u);
  EXPECT_EQ(s.cycles, 0u);
  EXPECT_EQ(s.twins, 0u);
}

TEST_F(LiveRulTest, RedeliveriesAreIgnoredAndAnEarlierCycleStartsANewLife) {
  const rul::CmapssUnit& u1 = (*test_units_)[0];
  const rul::CmapssUnit& u2 = (*test_units_)[1];
  Feed(u1, "engine-1", 0, 31);
  live_->WaitIdle();
  const std::uint64_t predictions = live_->Stats().predictions;
  // Cycle 31 again (an at-least-once redelivery).
  Feed(u1, "engine-1", 30, 31);
  live_->WaitIdle();
  EXPECT_EQ(live_->Stats().duplicates, 1u);
  EXPECT_EQ(live_->Stats().predictions, predictions);
  // Another engine's life on the same twin, later in time: the history restarts at cycle 1.
  Feed(u2, "engine-1", 0, 30, 1000);
  live_->WaitIdle();
  EXPECT_EQ(live_->Stats().resets, 1u);
  auto direct = live_->model().Predict(Prefix(u2, 30), {.top_factors = 0});
  ASSERT_TRUE(direct.ok());
  EXPECT_NEAR(*TwinNumber("engine-1", "remainingUsefulLife"), direct->rul, 1e-9);
  EXPECT_EQ(live_->Latest("engine-1")->cycle, 30);
  EXPECT_EQ(live_->Stats().failed, 0u) << live_->Stats().last_error;
}

}  // namespace
}  // namespace doppel::analytics
