// rul_bench: remaining useful life on NASA C-MAPSS FD001 (src/analytics/rul/rul_model.h).
//
// The standard protocol (../shared/data/cmapss/README.md): train on train_FD001 with labels
// capped at 125, predict once per test unit at its last cycle, RMSE and PHM08 score against the
// true RUL of RUL_FD001 left unclipped. Rows, all measured in this run:
//   * mean        — every unit gets the mean capped training label (the floor)
//   * least sq.   — ordinary least squares on the same window features (a linear model)
//   * quick       — TrainOptions::Quick() (what the test suite runs)
//   * full        — TrainOptions{} (the defaults, chosen by cross-validation: --tune)
// Coverage is the share of the 100 test units whose capped true RUL lies in the interval.
// Predict latency is one engine per call; "SHAP" is the extra time of the risk factors.
//
// Usage: rul_bench [--quick] [--tune] [--threads N] [--ewma SPAN,...]
//   --quick  baselines and the quick configuration only
//   --tune   also the cross-validated hyper-parameter search that chose the defaults (CV RMSE on
//            the training units only; the test set plays no part in the choice)
//   --threads  XGBoost threads (default 1, as TrainOptions)
//   --ewma     EWMA spans of the features (default: TrainOptions'), e.g. --ewma 10,30
#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "analytics/rul/features.h"
#include "analytics/rul/rul_model.h"
#include "core/shared_data.h"

namespace rul = doppel::analytics::rul;

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

struct Data {
  std::vector<rul::CmapssUnit> train;
  std::vector<rul::CmapssUnit> test;
  std::vector<rul::EngineHistory> test_histories;
  std::vector<double> truth;  // unclipped
};

struct Row {
  std::string name;
  double rmse = 0;
  double score = 0;
  double cover80 = -1, cover95 = -1;  // -1: no intervals
  double width95 = 0;
  double train_s = 0;
  double predict_us = 0;
  double shap_us = 0;
  double cv_rmse = -1;
};

void PrintRow(const Row& r) {
  auto opt = [](double v, const char* f) {
    return v < 0 ? std::string("-") : fmt::format(fmt::runtime(f), v);
  };
  fmt::print("{:<12} {:>6.2f} {:>9.1f} {:>7} {:>7} {:>7} {:>8.2f} {:>10} {:>9} {:>7}\n", r.name,
             r.rmse, r.score, opt(r.cover80 * 100, "{:.0f}%"), opt(r.cover95 * 100, "{:.0f}%"),
             r.cover80 < 0 ? std::string("-") : fmt::format("{:.1f}", r.width95), r.train_s,
             r.predict_us > 0 ? fmt::format("{:.0f} us", r.predict_us) : "-",
             r.shap_us > 0 ? fmt::format("{:.0f} us", r.shap_us) : "-", opt(r.cv_rmse, "{:.2f}"));
}

Row MeanBaseline(const Data& d, double cap) {
  double sum = 0;
  std::size_t n = 0;
  for (const auto& u : d.train) {
    for (int c = 1; c <= u.history.cycle; ++c) {
      sum += std::min<double>(u.history.cycle - c, cap);
      ++n;
    }
  }
  std::vector<double> predicted(d.truth.size(), sum / static_cast<double>(n));
  return {"mean", rul::Rmse(predicted, d.truth), rul::Phm08Score(predicted, d.truth)};
}

// Least squares on the model's own feature rows (standardized, a tiny ridge term for the nearly
// collinear window means), clipped to [0, cap].
Row LinearBaseline(const Data& d, const rul::TrainOptions& o) {
  const auto start = Clock::now();
  const rul::FeatureSpec spec{o.sensors, o.windows, o.ewma_spans};
  const std::size_t cols = rul::FeatureNames(spec).size();
  auto rows_of = [&](const rul::EngineHistory& h, bool all, std::vector<float>* x,
                     std::vector<double>* y) {
    std::vector<std::span<const double>> series;
    for (int s : spec.sensors) series.emplace_back(h.sensors.at(fmt::format("s{}", s)));
    const std::size_t n = series[0].size();
    const std::size_t first = all ? static_cast<std::size_t>(spec.Longest()) - 1 : n - 1;
    for (std::size_t t = first; t < n; ++t) {
      rul::AppendFeatureRow(spec, series, t, static_cast<int>(t) + 1, x);
      if (y != nullptr) y->push_back(std::min<double>(static_cast<double>(n - 1 - t), o.rul_cap));
    }
  };
  std::vector<float> x;
  std::vector<double> y;
  for (const auto& u : d.train) rows_of(u.history, true, &x, &y);
  const auto n = static_cast<Eigen::Index>(y.size());
  const auto p = static_cast<Eigen::Index>(cols);
  Eigen::MatrixXd a =
      Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
          x.data(), n, p)
          .cast<double>();
  const Eigen::RowVectorXd mean = a.colwise().mean();
  Eigen::RowVectorXd sd = ((a.rowwise() - mean).array().square().colwise().mean()).sqrt();
  sd = sd.unaryExpr([](double v) { return v > 0 ? v : 1.0; });
  Eigen::MatrixXd z(n, p + 1);
  z.leftCols(p) = (a.rowwise() - mean).array().rowwise() / sd.array();
  z.col(p).setOnes();
  Eigen::MatrixXd gram = z.transpose() * z;
  gram.diagonal().array() += 1e-3 * static_cast<double>(n);
  const Eigen::VectorXd beta =
      gram.ldlt().solve(z.transpose() * Eigen::Map<const Eigen::VectorXd>(y.data(), n));
  const double train_s = Seconds(start);

  std::vector<double> predicted;
  for (const auto& u : d.test) {
    std::vector<float> row;
    rows_of(u.history, false, &row, nullptr);
    Eigen::RowVectorXd r(p + 1);
    for (Eigen::Index j = 0; j < p; ++j)
      r(j) = (row[static_cast<std::size_t>(j)] - mean(j)) / sd(j);
    r(p) = 1;
    predicted.push_back(std::clamp(r.dot(beta), 0.0, o.rul_cap));
  }
  Row out{"least sq.", rul::Rmse(predicted, d.truth), rul::Phm08Score(predicted, d.truth)};
  out.train_s = train_s;
  return out;
}

bool Evaluate(const std::string& name, const Data& d, rul::TrainOptions o, Row* row) {
  int last_percent = -1;
  o.on_round = [&](int done, int total) {
    const int percent = done * 100 / total;
    if (percent / 10 != last_percent / 10) fmt::print(stderr, "  {}: {}%\r", name, percent);
    last_percent = percent;
  };
  auto model = rul::RulModel::Train(d.train, o);
  fmt::print(stderr, "                    \r");
  if (!model.ok()) {
    fmt::print(stderr, "{}: {}\n", name, model.status().ToString());
    return false;
  }
  auto predictions = model->PredictMany(d.test_histories, {.top_factors = 5});
  if (!predictions.ok()) {
    fmt::print(stderr, "{}: {}\n", name, predictions.status().ToString());
    return false;
  }
  std::vector<double> predicted;
  std::size_t in80 = 0, in95 = 0;
  double width = 0;
  for (std::size_t i = 0; i < predictions->size(); ++i) {
    const rul::RulPrediction& p = (*predictions)[i];
    const double capped = std::min(d.truth[i], o.rul_cap);
    predicted.push_back(p.rul);
    in80 += capped >= p.interval80.low && capped <= p.interval80.high;
    in95 += capped >= p.interval95.low && capped <= p.interval95.high;
    width += p.interval95.high - p.interval95.low;
  }
  const auto n = static_cast<double>(predicted.size());

  // Latency: one engine per call, as a twin's prediction would run; best of 3 passes.
  auto per_unit_us = [&](int top_factors) {
    double best = 1e300;
    for (int pass = 0; pass < 3; ++pass) {
      const auto start = Clock::now();
      for (const auto& h : d.test_histories) {
        if (!model->Predict(h, {.top_factors = top_factors}).ok()) return -1.0;
      }
      best = std::min(best, Seconds(start) * 1e6 / n);
    }
    return best;
  };
  const double plain = per_unit_us(0), with_shap = per_unit_us(5);

  *row = Row{name,
             rul::Rmse(predicted, d.truth),
             rul::Phm08Score(predicted, d.truth),
             static_cast<double>(in80) / n,
             static_cast<double>(in95) / n,
             width / n,
             model->info().train_seconds,
             plain,
             with_shap - plain,
             model->info().cv_rmse};
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, tune = false;
  int threads = 1;
  std::vector<int> ewma = rul::TrainOptions().ewma_spans;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--ewma") == 0 && i + 1 < argc) {
      ewma.clear();
      for (const char* p = argv[++i]; *p != '\0';) {
        char* end = nullptr;
        ewma.push_back(static_cast<int>(std::strtol(p, &end, 10)));
        p = *end == ',' ? end + 1 : end;
        if (end == p && *p != '\0') break;
      }
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--tune") == 0) {
      tune = true;
    } else {
      fmt::print(stderr, "usage: rul_bench [--quick] [--tune] [--threads N] [--ewma SPAN,...]\n");
      return 2;
    }
  }
  const auto dir = doppel::core::SharedDataDir() / "cmapss";
  Data d;
  auto train = rul::ReadCmapssFile(dir / "train_FD001.txt");
  auto test = rul::ReadCmapssFile(dir / "test_FD001.txt");
  auto truth = rul::ReadRulFile(dir / "RUL_FD001.txt");
  for (const doppel::core::Status& s : {train.ok() ? doppel::core::Status() : train.status(),
                                        test.ok() ? doppel::core::Status() : test.status(),
                                        truth.ok() ? doppel::core::Status() : truth.status()}) {
    if (!s.ok()) {
      fmt::print(stderr, "rul_bench: {}\n", s.ToString());
      return 1;
    }
  }
  d.train = std::move(*train);
  d.test = std::move(*test);
  d.truth = std::move(*truth);
  for (const auto& u : d.test) d.test_histories.push_back(u.history);

  fmt::print(
      "RUL on C-MAPSS FD001: {} training engines, {} test engines (cap 125, true RUL "
      "unclipped, {} XGBoost threads)\n\n",
      d.train.size(), d.test.size(), threads);
  fmt::print("{:<12} {:>6} {:>9} {:>7} {:>7} {:>7} {:>8} {:>10} {:>9} {:>7}\n", "model", "RMSE",
             "PHM08", "cov80", "cov95", "width95", "train s", "predict", "SHAP", "CV RMSE");
  rul::TrainOptions defaults;
  defaults.threads = threads;
  defaults.ewma_spans = ewma;
  rul::TrainOptions quick_options = rul::TrainOptions::Quick();
  quick_options.threads = threads;
  quick_options.ewma_spans = ewma;
  const Row mean = MeanBaseline(d, defaults.rul_cap);
  PrintRow(mean);
  PrintRow(LinearBaseline(d, defaults));
  std::vector<std::pair<std::string, rul::TrainOptions>> configs = {{"quick", quick_options}};
  if (!quick) configs.emplace_back("full", defaults);
  Row last;
  for (const auto& [name, options] : configs) {
    if (!Evaluate(name, d, options, &last)) return 1;
    PrintRow(last);
  }
  fmt::print("\n{} RMSE / mean-predictor RMSE: {:.2f}\n", configs.back().first,
             last.rmse / mean.rmse);

  if (tune) {
    fmt::print("\nhyper-parameters by {}-fold CV over training units (out-of-fold RMSE):\n",
               defaults.folds);
    // Candidates around the defaults; the one with the lowest out-of-fold RMSE on the training
    // units becomes the default. The test set is not looked at.
    struct Candidate {
      const char* name;
      rul::TrainOptions o;
    };
    std::vector<Candidate> candidates;
    auto add = [&](const char* name, auto change) {
      rul::TrainOptions o = defaults;
      change(o);
      candidates.push_back({name, o});
    };
    add("defaults", [](rul::TrainOptions&) {});
    add("depth 3", [](rul::TrainOptions& o) { o.max_depth = 3; });
    add("depth 7", [](rul::TrainOptions& o) { o.max_depth = 7; });
    add("rounds 1000", [](rul::TrainOptions& o) { o.rounds = 1000; });
    add("eta 0.1 x150", [](rul::TrainOptions& o) {
      o.learning_rate = 0.1;
      o.rounds = 150;
    });
    add("colsample 1", [](rul::TrainOptions& o) { o.colsample_bytree = 1; });
    add("mcw 20", [](rul::TrainOptions& o) { o.min_child_weight = 20; });
    add("ewma 10,30", [](rul::TrainOptions& o) { o.ewma_spans = {10, 30}; });
    add("no ewma", [](rul::TrainOptions& o) { o.ewma_spans.clear(); });
    add("subsample 0.5", [](rul::TrainOptions& o) { o.subsample = 0.5; });
    add("lambda 10", [](rul::TrainOptions& o) { o.lambda = 10; });
    for (const auto& c : candidates) {
      auto model = rul::RulModel::Train(d.train, c.o);
      if (!model.ok()) return 1;
      fmt::print("  {:<14} CV RMSE {:.2f}  ({:.1f} s)\n", c.name, model->info().cv_rmse,
                 model->info().train_seconds);
      std::fflush(stdout);
    }
  }
  return 0;
}
