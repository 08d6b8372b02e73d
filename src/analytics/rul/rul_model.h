// doppel::analytics::rul — remaining useful life (RUL) of an engine from its recent sensor history.
//
// The model. Gradient-boosted regression trees (XGBoost) over features of sliding windows of the
// engine's sensor readings (per sensor: last value, and over the last 5/10/20/30 cycles the mean,
// standard deviation and least-squares slope, min/max over the longest window, exponentially
// weighted means of spans 20 and 60 over the whole history; and the engine's cycle count). The
// target is the piecewise-linear RUL of the C-MAPSS literature: min(cycles to failure, rul_cap) —
// early in life an engine shows no degradation, so the model is not asked to tell 300 from 200
// cycles left. Predictions are on that capped scale.
//
// Training (Train) splits the run-to-failure engines by unit into `folds` groups and fits one
// booster per group on the other units. The prediction is the mean of the boosters. Every
// training sample thus has an out-of-fold prediction from a booster that never saw its engine:
// those residuals |capped label − prediction| calibrate the intervals (split conformal, once per
// fold: the calibration units are never the fitting units) and give the cross-validated RMSE
// used to choose hyper-parameters. The residual quantiles are taken per band of predicted RUL
// (Mondrian conformal), so an engine predicted close to failure gets a narrower interval than
// one predicted in mid-life, where the scatter is larger.
//
// Risk factors are SHAP values (XGBoost's TreeSHAP): each feature's signed contribution to this
// prediction, in cycles, summed over the features of each sensor. base + the sum of every
// sensor's contribution (and the cycle count's) equals the predicted RUL. A negative
// contribution means the sensor's readings shorten the predicted life.
//
// Usage:
//   auto fleet = ReadCmapssFile(core::SharedDataDir() / "cmapss/train_FD001.txt");
//   auto model = RulModel::Train(*fleet, TrainOptions{});
//   auto p = model->Predict(history);  // p->rul, p->interval95, p->factors
//   model->Save(dir);  auto same = RulModel::Load(dir);
//
// Determinism: a seed and thread count give the same model on every run (XGBoost "hist" with
// a fixed nthread); Save then Load gives bit-identical predictions.
// Threads: a RulModel may be shared; Predict calls are serialized inside (XGBoost boosters are
// not safe for concurrent prediction).
//
// Error codes (Status::code):
//   RUL_DATA_NOT_FOUND  a data file is missing or unreadable
//   RUL_BAD_DATA        malformed file (message: file:line), sensor series missing, of unequal
//                       lengths or not finite, RUL file not matching the test units
//   RUL_TOO_FEW_CYCLES  an engine has fewer readings than the longest window
//   RUL_BAD_OPTIONS     TrainOptions out of range
//   RUL_MODEL_IO        a model folder cannot be written or read (missing, corrupt, other version)
//   RUL_XGBOOST         XGBoost refused a call (message: XGBGetLastError())
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace doppel::analytics::rul {

// One engine's readings, one per cycle, oldest first.
struct EngineHistory {
  std::string id;  // for messages, e.g. "unit 7"
  // "s1".."s21" → readings. Only the model's sensors are read; each must be present, finite and
  // as long as the others.
  std::map<std::string, std::vector<double>> sensors;
  // The engine's cycle count at the newest reading (cycles since new). 0: the readings start at
  // cycle 1, so it is their number.
  int cycle = 0;
};

// One unit of a C-MAPSS file (train_FD00x: run to failure, the last reading is the last cycle
// before failure; test_FD00x: stopped earlier).
struct CmapssUnit {
  int unit = 0;
  EngineHistory history;  // s1..s21; the operational settings are not kept (FD001: one condition)
};

// Reads a C-MAPSS data file: 26 whitespace-separated numbers per line (unit, cycle, 3 settings,
// s1..s21), each unit's lines together, cycles 1, 2, 3, ... Units in file order.
// Errors: RUL_DATA_NOT_FOUND; RUL_BAD_DATA ("<file>:<line>: ..." for the first bad line, or an
// empty file).
core::Result<std::vector<CmapssUnit>> ReadCmapssFile(const std::filesystem::path& file);

// Reads RUL_FD00x.txt: one non-negative number per line, the true RUL after the last reading of
// test unit i. REQUIRES nothing of the count; compare with the test units yourself.
// Errors: RUL_DATA_NOT_FOUND; RUL_BAD_DATA ("<file>:<line>: ...").
core::Result<std::vector<double>> ReadRulFile(const std::filesystem::path& file);

struct TrainOptions {
  // Sensor numbers (1..21). Default: the 14 that vary in FD001 (the others are constant).
  std::vector<int> sensors = {2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21};
  // Window lengths in cycles (≥ 2, ascending). The longest is the least history Predict accepts.
  std::vector<int> windows = {5, 10, 20, 30};
  // Exponentially weighted means over every reading so far (α = 2/(span+1)), per sensor: longer
  // memory than the windows allow (the shortest FD001 test engine has 31 cycles). Chosen by CV
  // (out-of-fold RMSE 12.89 against 12.98 without). They assume the readings start at the
  // engine's first cycle; a shorter recent history shifts them towards its first reading.
  std::vector<int> ewma_spans = {20, 60};
  double rul_cap = 125;  // labels are min(RUL, rul_cap)
  int folds = 5;         // ≥ 2: boosters in the ensemble, and conformal calibration groups

  // XGBoost (reg:squarederror, tree_method hist).
  int rounds = 500;
  double learning_rate = 0.03;
  int max_depth = 5;
  double min_child_weight = 5;
  double subsample = 0.8;
  double colsample_bytree = 0.5;
  double lambda = 1;
  std::uint64_t seed = 1;  // fold assignment and XGBoost sampling
  // XGBoost nthread, fixed so that results do not depend on the machine. 1 by default: on a
  // busy 2-core machine OpenMP threads spin-wait for each other and training with 2 took 7x
  // longer than with 1 (the histograms of ~15k rows gain little from a second thread).
  int threads = 1;

  // Called after every boosting round: done and total rounds over all folds. Optional.
  std::function<void(int done, int total)> on_round;

  // A cheaper configuration for tests and smoke runs (fewer folds and rounds).
  static TrainOptions Quick();
};

struct Interval {
  double low = 0;
  double high = 0;
};

struct RiskFactor {
  std::string sensor;       // "s11", or "cycle" for the engine's age
  double contribution = 0;  // cycles of RUL; negative: shortens the predicted life
};

struct RulPrediction {
  double rul = 0;                   // predicted cycles left, capped scale
  Interval interval80;              // ~80% prediction interval (clipped at 0)
  Interval interval95;              // ~95%
  double base = 0;                  // the model's average prediction, where the contributions start
  std::vector<RiskFactor> factors;  // largest |contribution| first
};

struct PredictOptions {
  int top_factors = 5;  // factors to return; 0 skips SHAP (cheaper)
};

// What a trained model is, for the manifest and for users.
struct ModelInfo {
  std::vector<int> sensors;
  std::vector<int> windows;
  std::vector<int> ewma_spans;
  double rul_cap = 0;
  std::vector<std::string> features;
  TrainOptions options;     // as trained (without on_round)
  std::size_t units = 0;    // training engines
  std::size_t samples = 0;  // training rows (one per engine and cycle ≥ longest window)
  double cv_rmse = 0;       // out-of-fold RMSE over all samples, capped labels
  double train_seconds = 0;
  std::string xgboost_version;
};

class RulModel {
 public:
  // Fits the model on run-to-failure engines (each history ends at the last cycle before
  // failure). Errors: RUL_BAD_OPTIONS, RUL_BAD_DATA, RUL_TOO_FEW_CYCLES (an engine shorter than
  // the longest window), RUL_XGBOOST.
  static core::Result<RulModel> Train(std::span<const CmapssUnit> fleet,
                                      const TrainOptions& options);

  // The RUL after the newest reading of `engine`. Errors: RUL_BAD_DATA (a model sensor missing,
  // unequal lengths, non-finite values, cycle below the number of readings), RUL_TOO_FEW_CYCLES
  // (fewer readings than the longest window), RUL_XGBOOST.
  core::Result<RulPrediction> Predict(const EngineHistory& engine,
                                      const PredictOptions& options = {}) const;
  // The same for many engines at once (one XGBoost call per booster: much cheaper per engine).
  // Fails as a whole on the first bad engine (its id is in the message).
  core::Result<std::vector<RulPrediction>> PredictMany(std::span<const EngineHistory> engines,
                                                       const PredictOptions& options = {}) const;

  // Writes `dir` (created if needed): one booster per fold (UBJSON) and manifest.json (features,
  // cap, windows, intervals, hyper-parameters, metrics), the manifest last so that a half-written
  // folder never loads. Errors: RUL_MODEL_IO, RUL_XGBOOST.
  core::Status Save(const std::filesystem::path& dir) const;
  // Errors: RUL_MODEL_IO (missing folder, corrupt or foreign manifest or booster).
  static core::Result<RulModel> Load(const std::filesystem::path& dir, int threads = 1);

  const ModelInfo& info() const;

  RulModel(RulModel&&) noexcept;
  RulModel& operator=(RulModel&&) noexcept;
  ~RulModel();

 private:
  struct Impl;
  explicit RulModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Root mean squared error. REQUIRES: equal, non-zero sizes.
double Rmse(std::span<const double> predicted, std::span<const double> truth);

// The PHM08 challenge score: Σ exp(−d/13) − 1 for d < 0, Σ exp(d/10) − 1 for d ≥ 0, with
// d = predicted − truth (late predictions cost more). A sum: it grows with the number of units.
double Phm08Score(std::span<const double> predicted, std::span<const double> truth);

}  // namespace doppel::analytics::rul
