// RulModel on NASA C-MAPSS FD001: the quick configuration's accuracy and interval coverage on
// the official test set, SHAP factors, save → load, determinism, and every bad input's code.
#include "analytics/rul/rul_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "analytics/rul/test_data.h"

namespace doppel::analytics::rul {
namespace {

using testing::CmapssDir;
using testing::ScratchDir;

std::vector<CmapssUnit> Read(const std::string& name) {
  auto units = ReadCmapssFile(CmapssDir() / name);
  EXPECT_TRUE(units.ok()) << units.status().ToString();
  return units.ok() ? std::move(*units) : std::vector<CmapssUnit>{};
}

std::vector<EngineHistory> Histories(const std::vector<CmapssUnit>& units) {
  std::vector<EngineHistory> out;
  out.reserve(units.size());
  for (const CmapssUnit& u : units) out.push_back(u.history);
  return out;
}

// A small, fast model: 20 training engines, 2 boosters of 20 rounds.
TrainOptions Tiny() {
  TrainOptions o = TrainOptions::Quick();
  o.folds = 2;
  o.rounds = 20;
  return o;
}

std::vector<CmapssUnit> FirstTrainUnits(std::size_t n) {
  std::vector<CmapssUnit> units = Read("train_FD001.txt");
  units.resize(std::min(n, units.size()));
  return units;
}

// The acceptance test of the quick configuration (the full one runs in bench/rul_bench): the
// standard FD001 protocol, true RUL unclipped for RMSE, capped for interval coverage.
TEST(RulModelTest, QuickConfigurationOnFd001) {
  const std::vector<CmapssUnit> train = Read("train_FD001.txt");
  const std::vector<CmapssUnit> test = Read("test_FD001.txt");
  auto truth = ReadRulFile(CmapssDir() / "RUL_FD001.txt");
  ASSERT_TRUE(truth.ok()) << truth.status().ToString();
  ASSERT_EQ(test.size(), truth->size());

  TrainOptions options = TrainOptions::Quick();
  int calls = 0, last_done = 0, last_total = 0;
  options.on_round = [&](int done, int total) {
    ++calls;
    EXPECT_EQ(done, last_done + 1);
    last_done = done;
    last_total = total;
  };
  auto model = RulModel::Train(train, options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(calls, options.folds * options.rounds);
  EXPECT_EQ(last_total, options.folds * options.rounds);
  const ModelInfo& info = model->info();
  EXPECT_EQ(info.units, 100u);
  EXPECT_EQ(info.samples, 20'631u - 100u * 29u);  // from the 30th cycle of each engine
  EXPECT_EQ(info.features.size(), 14u * 17u + 1u);
  EXPECT_GT(info.cv_rmse, 5);
  EXPECT_LT(info.cv_rmse, 20);

  const int all_factors = 15;  // 14 sensors + cycle
  auto predictions = model->PredictMany(Histories(test), {.top_factors = all_factors});
  ASSERT_TRUE(predictions.ok()) << predictions.status().ToString();
  ASSERT_EQ(predictions->size(), test.size());
  std::vector<double> predicted;
  int in80 = 0, in95 = 0;
  for (std::size_t i = 0; i < test.size(); ++i) {
    const RulPrediction& p = (*predictions)[i];
    predicted.push_back(p.rul);
    const double capped = std::min((*truth)[i], 125.0);
    in80 += capped >= p.interval80.low && capped <= p.interval80.high;
    in95 += capped >= p.interval95.low && capped <= p.interval95.high;
    // Intervals are nested around the prediction.
    EXPECT_LE(p.interval95.low, p.interval80.low);
    EXPECT_GE(p.interval95.high, p.interval80.high);
    EXPECT_LE(p.interval80.low, p.rul);
    EXPECT_GE(p.interval80.high, p.rul);
    EXPECT_GE(p.interval95.low, 0);
    // SHAP is exact and additive: the base plus every factor is the prediction.
    ASSERT_EQ(p.factors.size(), static_cast<std::size_t>(all_factors));
    double sum = p.base;
    for (std::size_t f = 0; f < p.factors.size(); ++f) {
      sum += p.factors[f].contribution;
      if (f > 0) {
        EXPECT_GE(std::abs(p.factors[f - 1].contribution), std::abs(p.factors[f].contribution));
      }
    }
    EXPECT_NEAR(sum, p.rul, 0.05) << "unit " << test[i].unit;
  }
  const double rmse = Rmse(predicted, *truth);
  const double score = Phm08Score(predicted, *truth);
  std::cout << "quick FD001: RMSE " << rmse << ", PHM08 " << score << ", coverage 80% " << in80
            << "/100, 95% " << in95 << "/100, CV RMSE " << info.cv_rmse << ", "
            << info.train_seconds << " s\n";
  EXPECT_LE(rmse, 16.0);
  EXPECT_GE(in95, 85);
  EXPECT_GE(in80, 65);
  EXPECT_LT(score, 1'000);  // least squares on the raw sensors: 1,287 (README)

  // The test set's engine nearest to failure (unit 34: 7 cycles left) is predicted near failure,
  // with the degradation sensors pulling its life down.
  const std::size_t nearest =
      static_cast<std::size_t>(std::min_element(truth->begin(), truth->end()) - truth->begin());
  const RulPrediction& p = (*predictions)[nearest];
  EXPECT_LT(p.rul, 30);
  EXPECT_LT(p.factors.front().contribution, 0);

  // One engine at a time gives the same as the batch.
  auto one = model->Predict(test[nearest].history, {.top_factors = 3});
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_NEAR(one->rul, p.rul, 1e-9);
  ASSERT_EQ(one->factors.size(), 3u);
  EXPECT_EQ(one->factors[0].sensor, p.factors[0].sensor);
}

TEST(RulModelTest, SaveLoadPredictIsIdentical) {
  const std::vector<CmapssUnit> train = FirstTrainUnits(20);
  auto model = RulModel::Train(train, Tiny());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ScratchDir dir;
  ASSERT_TRUE(model->Save(dir / "model").ok());
  EXPECT_TRUE(std::filesystem::exists(dir / "model" / "manifest.json"));
  EXPECT_FALSE(std::filesystem::exists(dir / "model" / "manifest.json.tmp"));
  auto loaded = RulModel::Load(dir / "model");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->info().features, model->info().features);
  EXPECT_DOUBLE_EQ(loaded->info().cv_rmse, model->info().cv_rmse);
  EXPECT_EQ(loaded->info().options.rounds, 20);
  EXPECT_EQ(loaded->info().options.learning_rate, Tiny().learning_rate);

  const std::vector<EngineHistory> engines = Histories(Read("test_FD001.txt"));
  auto a = model->PredictMany(engines);
  auto b = loaded->PredictMany(engines);
  ASSERT_TRUE(a.ok() && b.ok());
  for (std::size_t i = 0; i < engines.size(); ++i) {
    const RulPrediction &x = (*a)[i], &y = (*b)[i];
    EXPECT_EQ(x.rul, y.rul);
    EXPECT_EQ(x.interval80.low, y.interval80.low);
    EXPECT_EQ(x.interval80.high, y.interval80.high);
    EXPECT_EQ(x.interval95.low, y.interval95.low);
    EXPECT_EQ(x.interval95.high, y.interval95.high);
    EXPECT_EQ(x.base, y.base);
    ASSERT_EQ(x.factors.size(), y.factors.size());
    for (std::size_t f = 0; f < x.factors.size(); ++f) {
      EXPECT_EQ(x.factors[f].sensor, y.factors[f].sensor);
      EXPECT_EQ(x.factors[f].contribution, y.factors[f].contribution);
    }
  }
}

TEST(RulModelTest, SameSeedSameModel) {
  const std::vector<CmapssUnit> train = FirstTrainUnits(20);
  auto a = RulModel::Train(train, Tiny());
  auto b = RulModel::Train(train, Tiny());
  TrainOptions other = Tiny();
  other.seed = 2;
  auto c = RulModel::Train(train, other);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  const std::vector<EngineHistory> engines = Histories(Read("test_FD001.txt"));
  auto pa = a->PredictMany(engines, {.top_factors = 0});
  auto pb = b->PredictMany(engines, {.top_factors = 0});
  auto pc = c->PredictMany(engines, {.top_factors = 0});
  ASSERT_TRUE(pa.ok() && pb.ok() && pc.ok());
  bool any_differs = false;
  for (std::size_t i = 0; i < engines.size(); ++i) {
    EXPECT_EQ((*pa)[i].rul, (*pb)[i].rul);
    EXPECT_TRUE((*pa)[i].factors.empty());  // top_factors 0: no SHAP
    any_differs |= (*pa)[i].rul != (*pc)[i].rul;
  }
  EXPECT_TRUE(any_differs) << "another seed (other folds) should give another model";
}

// --- bad inputs ---

EngineHistory Engine(std::size_t cycles) {
  EngineHistory e;
  e.id = "engine 9";
  for (int s = 1; s <= 21; ++s) {
    e.sensors["s" + std::to_string(s)] = std::vector<double>(cycles, 100.0 + s);
  }
  return e;
}

class RulModelErrorsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = RulModel::Train(FirstTrainUnits(10), Tiny());
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    model_ = std::make_unique<RulModel>(std::move(*m));
  }
  static void TearDownTestSuite() { model_.reset(); }

  static void ExpectPredictFails(const EngineHistory& e, const std::string& code,
                                 const std::string& where) {
    auto p = model_->Predict(e);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), code);
    EXPECT_NE(p.status().message().find(where), std::string::npos) << p.status().message();
    const EngineHistory both[] = {Engine(40), e};
    auto many = model_->PredictMany(both);
    ASSERT_FALSE(many.ok());
    EXPECT_EQ(many.status().code(), code);
  }

  static std::unique_ptr<RulModel> model_;
};

std::unique_ptr<RulModel> RulModelErrorsTest::model_;

TEST_F(RulModelErrorsTest, PredictTooFewCycles) {
  ASSERT_TRUE(model_->Predict(Engine(30)).ok());
  ExpectPredictFails(Engine(29), "RUL_TOO_FEW_CYCLES", "engine 9: 29 cycles");
  ExpectPredictFails(Engine(0), "RUL_TOO_FEW_CYCLES", "0 cycles");
}

TEST_F(RulModelErrorsTest, PredictMissingSensor) {
  EngineHistory e = Engine(40);
  e.sensors.erase("s11");
  ExpectPredictFails(e, "RUL_BAD_DATA", "no readings of sensor s11");
  // Sensors the model does not use may be absent.
  EngineHistory only_used = Engine(40);
  only_used.sensors.erase("s1");
  only_used.sensors.erase("s16");
  EXPECT_TRUE(model_->Predict(only_used).ok());
}

TEST_F(RulModelErrorsTest, PredictUnequalLengths) {
  EngineHistory e = Engine(40);
  e.sensors["s7"].pop_back();
  ExpectPredictFails(e, "RUL_BAD_DATA", "sensor s7 has 39 readings");
}

TEST_F(RulModelErrorsTest, PredictNotFinite) {
  EngineHistory e = Engine(40);
  e.sensors["s4"][12] = std::nan("");
  ExpectPredictFails(e, "RUL_BAD_DATA", "sensor s4 reading 12 is not finite");
  e.sensors["s4"][12] = INFINITY;
  ExpectPredictFails(e, "RUL_BAD_DATA", "sensor s4 reading 12 is not finite");
}

TEST_F(RulModelErrorsTest, PredictCycleBelowReadings) {
  EngineHistory e = Engine(40);
  e.cycle = 39;
  ExpectPredictFails(e, "RUL_BAD_DATA", "cycle 39 is below the 40 readings");
  e.cycle = 400;  // a long-running engine with only its recent readings at hand
  EXPECT_TRUE(model_->Predict(e).ok());
}

TEST_F(RulModelErrorsTest, PredictManyEmpty) {
  auto none = model_->PredictMany({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(RulModelTrainErrorsTest, BadOptions) {
  const std::vector<CmapssUnit> train = FirstTrainUnits(4);
  const std::vector<std::pair<const char*, std::function<void(TrainOptions&)>>> cases = {
      {"no sensors", [](TrainOptions& o) { o.sensors.clear(); }},
      {"sensor 0", [](TrainOptions& o) { o.sensors = {0}; }},
      {"sensor 22", [](TrainOptions& o) { o.sensors = {22}; }},
      {"duplicate sensor",
       [](TrainOptions& o) {
         o.sensors = {2, 2};
       }},
      {"no windows", [](TrainOptions& o) { o.windows.clear(); }},
      {"window 1",
       [](TrainOptions& o) {
         o.windows = {1, 5};
       }},
      {"descending windows",
       [](TrainOptions& o) {
         o.windows = {10, 5};
       }},
      {"cap 0", [](TrainOptions& o) { o.rul_cap = 0; }},
      {"cap NaN", [](TrainOptions& o) { o.rul_cap = std::nan(""); }},
      {"1 fold", [](TrainOptions& o) { o.folds = 1; }},
      {"more folds than engines", [](TrainOptions& o) { o.folds = 5; }},
      {"0 rounds", [](TrainOptions& o) { o.rounds = 0; }},
      {"learning rate 0", [](TrainOptions& o) { o.learning_rate = 0; }},
      {"learning rate 2", [](TrainOptions& o) { o.learning_rate = 2; }},
      {"depth 0", [](TrainOptions& o) { o.max_depth = 0; }},
      {"depth 17", [](TrainOptions& o) { o.max_depth = 17; }},
      {"min child weight -1", [](TrainOptions& o) { o.min_child_weight = -1; }},
      {"subsample 0", [](TrainOptions& o) { o.subsample = 0; }},
      {"colsample 1.5", [](TrainOptions& o) { o.colsample_bytree = 1.5; }},
      {"lambda -1", [](TrainOptions& o) { o.lambda = -1; }},
      {"0 threads", [](TrainOptions& o) { o.threads = 0; }},
  };
  for (const auto& [name, change] : cases) {
    TrainOptions o = Tiny();
    change(o);
    auto model = RulModel::Train(train, o);
    ASSERT_FALSE(model.ok()) << name;
    EXPECT_EQ(model.status().code(), "RUL_BAD_OPTIONS") << name;
  }
}

TEST(RulModelTrainErrorsTest, UnitWithTooFewCycles) {
  std::vector<CmapssUnit> train = FirstTrainUnits(4);
  CmapssUnit& third = train[2];
  for (auto& [name, values] : third.history.sensors) values.resize(29);
  third.history.cycle = 29;
  auto model = RulModel::Train(train, Tiny());
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), "RUL_TOO_FEW_CYCLES");
  EXPECT_NE(model.status().message().find("unit 3: 29 cycles"), std::string::npos)
      << model.status().message();
}

TEST(RulModelTrainErrorsTest, UnitWithMissingSensor) {
  std::vector<CmapssUnit> train = FirstTrainUnits(4);
  train[1].history.sensors.erase("s21");
  auto model = RulModel::Train(train, Tiny());
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), "RUL_BAD_DATA");
  EXPECT_NE(model.status().message().find("unit 2: no readings of sensor s21"), std::string::npos);
}

// --- model folders ---

class RulModelFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = RulModel::Train(FirstTrainUnits(6), Tiny());
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_TRUE(m->Save(dir_ / "model").ok());
  }
  void ExpectLoadFails(const std::string& where) {
    auto m = RulModel::Load(dir_ / "model");
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), "RUL_MODEL_IO");
    EXPECT_NE(m.status().message().find(where), std::string::npos) << m.status().message();
  }
  std::string Manifest() { return testing::ReadAll(dir_ / "model" / "manifest.json"); }
  void EditManifest(const std::string& from, const std::string& to) {
    std::string text = Manifest();
    const std::size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    testing::WriteFile(dir_ / "model" / "manifest.json", text.replace(at, from.size(), to));
  }

  ScratchDir dir_;
};

TEST_F(RulModelFolderTest, LoadsWhatWasSaved) { EXPECT_TRUE(RulModel::Load(dir_ / "model").ok()); }

TEST_F(RulModelFolderTest, MissingFolder) {
  auto m = RulModel::Load(dir_ / "elsewhere");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), "RUL_MODEL_IO");
  EXPECT_NE(m.status().message().find("no manifest.json"), std::string::npos);
}

TEST_F(RulModelFolderTest, ManifestNotJson) {
  testing::WriteFile(dir_ / "model" / "manifest.json", "{\"format\": ");
  ExpectLoadFails("manifest.json: ");
}

TEST_F(RulModelFolderTest, ForeignManifest) {
  EditManifest("\"doppel-rul\"", "\"something-else\"");
  ExpectLoadFails("not a doppel RUL manifest");
}

TEST_F(RulModelFolderTest, OtherVersion) {
  EditManifest("\"version\":1", "\"version\":2");
  ExpectLoadFails("model format version 2");
}

TEST_F(RulModelFolderTest, FeaturesOfAnotherVersion) {
  EditManifest("\"s2.last\"", "\"s2.first\"");
  ExpectLoadFails("features differ");
}

TEST_F(RulModelFolderTest, WindowsChangedWithoutFeatures) {
  EditManifest("\"windows\":[5,10,20,30]", "\"windows\":[5,10,20,40]");
  ExpectLoadFails("features differ");
}

TEST_F(RulModelFolderTest, EwmaSpansChangedWithoutFeatures) {
  EditManifest("\"ewma_spans\":[20,60]", "\"ewma_spans\":[20]");
  ExpectLoadFails("features differ");
}

TEST_F(RulModelFolderTest, BadIntervals) {
  EditManifest("\"q95\":[", "\"q95\":[1,");
  ExpectLoadFails("'intervals' is missing or invalid");
}

TEST_F(RulModelFolderTest, BoosterOutsideTheFolder) {
  EditManifest("\"fold0.ubj\"", "\"../fold0.ubj\"");
  ExpectLoadFails("'boosters' is missing or invalid");
}

TEST_F(RulModelFolderTest, MissingBooster) {
  std::filesystem::remove(dir_ / "model" / "fold1.ubj");
  ExpectLoadFails("cannot read booster fold1.ubj");
}

TEST_F(RulModelFolderTest, TruncatedBooster) {
  const std::string bytes = testing::ReadAll(dir_ / "model" / "fold0.ubj");
  testing::WriteFile(dir_ / "model" / "fold0.ubj", bytes.substr(0, bytes.size() / 2));
  ExpectLoadFails("cannot read booster fold0.ubj");
}

TEST_F(RulModelFolderTest, SaveIntoAFileFails) {
  auto m = RulModel::Load(dir_ / "model");
  ASSERT_TRUE(m.ok());
  testing::WriteFile(dir_ / "plain-file", "x");
  core::Status s = m->Save(dir_ / "plain-file" / "model");
  EXPECT_EQ(s.code(), "RUL_MODEL_IO");
  EXPECT_EQ(testing::ReadAll(dir_ / "plain-file"), "x");  // nothing written
}

TEST_F(RulModelFolderTest, LoadWithZeroThreads) {
  auto m = RulModel::Load(dir_ / "model", 0);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), "RUL_BAD_OPTIONS");
}

}  // namespace
}  // namespace doppel::analytics::rul
