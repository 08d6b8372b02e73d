// `doppel train rul` and `doppel predict rul`: remaining useful life of engines from C-MAPSS
// files (analytics/rul/rul_model.h). Errors print as "error: CODE: message" with exit code 1.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>

#include "analytics/rul/rul_model.h"
#include "cli/commands.h"
#include "cli/progress.h"

namespace doppel::cli {
namespace {

namespace rul = analytics::rul;

struct TrainArgs {
  std::string data;
  std::string out;
  bool quick = false;
  int threads = 1;
  std::uint64_t seed = 1;
};

struct PredictArgs {
  std::string model;
  std::string data;
  std::string rul;
  int factors = 3;
};

int Fail(const core::Status& status) {
  fmt::print(stderr, "error: {}: {}\n", status.code(), status.message());
  return 1;
}

int RunTrain(const TrainArgs& args) {
  // --data is the folder of the C-MAPSS files (as NASA ships them) or the training file itself.
  std::filesystem::path file = args.data;
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) file /= "train_FD001.txt";
  auto fleet = rul::ReadCmapssFile(file);
  if (!fleet.ok()) return Fail(fleet.status());

  rul::TrainOptions options = args.quick ? rul::TrainOptions::Quick() : rul::TrainOptions{};
  options.threads = args.threads;
  options.seed = args.seed;
  Progress progress("boosting rounds");
  options.on_round = [&](int done, int total) {
    progress.Update(static_cast<std::size_t>(done), static_cast<std::size_t>(total));
    // Without a terminal (logs, CI) the redrawn line is off: one line per booster instead.
    if (done % options.rounds == 0) {
      progress.Finish();
      fmt::print(stderr, "booster {}/{} done ({} rounds)\n", done / options.rounds, options.folds,
                 options.rounds);
    }
  };
  fmt::print(stderr, "training on {} engines from {} ({} boosters x {} rounds)\n", fleet->size(),
             file.string(), options.folds, options.rounds);
  auto model = rul::RulModel::Train(*fleet, options);
  progress.Finish();
  if (!model.ok()) return Fail(model.status());
  if (auto s = model->Save(args.out); !s.ok()) return Fail(s);
  const rul::ModelInfo& info = model->info();
  fmt::print(
      "model written to {}: {} features, {} samples of {} engines, cross-validated RMSE "
      "{:.2f} (capped at {}), {:.1f} s\n",
      args.out, info.features.size(), info.samples, info.units, info.cv_rmse, info.rul_cap,
      info.train_seconds);
  return 0;
}

std::string Factors(const rul::RulPrediction& p) {
  std::string out;
  for (const rul::RiskFactor& f : p.factors) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} {:+.1f}", f.sensor, f.contribution);
  }
  return out;
}

int RunPredict(const PredictArgs& args) {
  auto model = rul::RulModel::Load(args.model);
  if (!model.ok()) return Fail(model.status());
  auto units = rul::ReadCmapssFile(args.data);
  if (!units.ok()) return Fail(units.status());
  std::vector<double> truth;
  if (!args.rul.empty()) {
    auto read = rul::ReadRulFile(args.rul);
    if (!read.ok()) return Fail(read.status());
    if (read->size() != units->size()) {
      return Fail({"RUL_BAD_DATA", fmt::format("{} has {} lines, {} has {} units", args.rul,
                                               read->size(), args.data, units->size())});
    }
    truth = std::move(*read);
  }
  std::vector<rul::EngineHistory> engines;
  for (const rul::CmapssUnit& u : *units) engines.push_back(u.history);
  auto predictions = model->PredictMany(engines, {.top_factors = std::max(0, args.factors)});
  if (!predictions.ok()) return Fail(predictions.status());

  const bool with_truth = !truth.empty();
  fmt::print("{:>5} {:>6} {:>7}{} {:>16} {:>16}  {}\n", "unit", "cycles", "rul",
             with_truth ? fmt::format(" {:>5}", "true") : "", "80% interval", "95% interval",
             args.factors > 0 ? "top factors (cycles of RUL)" : "");
  std::vector<double> predicted;
  std::size_t in80 = 0, in95 = 0;
  const double cap = model->info().rul_cap;
  for (std::size_t i = 0; i < units->size(); ++i) {
    const rul::RulPrediction& p = (*predictions)[i];
    predicted.push_back(p.rul);
    std::string true_column;
    if (with_truth) {
      true_column = fmt::format(" {:>5.0f}", truth[i]);
      const double capped = std::min(truth[i], cap);
      in80 += capped >= p.interval80.low && capped <= p.interval80.high;
      in95 += capped >= p.interval95.low && capped <= p.interval95.high;
    }
    fmt::print("{:>5} {:>6} {:>7.1f}{} {:>16} {:>16}  {}\n", (*units)[i].unit,
               (*units)[i].history.cycle, p.rul, true_column,
               fmt::format("[{:.1f}, {:.1f}]", p.interval80.low, p.interval80.high),
               fmt::format("[{:.1f}, {:.1f}]", p.interval95.low, p.interval95.high), Factors(p));
  }
  if (with_truth) {
    const std::size_t n = units->size();
    fmt::print("RMSE {:.2f}, PHM08 score {:.1f} over {} units (true RUL unclipped)\n",
               rul::Rmse(predicted, truth), rul::Phm08Score(predicted, truth), n);
    fmt::print("interval coverage (true RUL capped at {}): 80%: {}/{}, 95%: {}/{}\n", cap, in80, n,
               in95, n);
  }
  return 0;
}

// The `train` / `predict` group: created here, or shared with another kind of model that
// registered it first.
CLI::App* Group(CLI::App& app, const std::string& name, const std::string& description) {
  auto found = app.get_subcommands([&](CLI::App* sub) { return sub->get_name() == name; });
  if (!found.empty()) return found.front();
  CLI::App* group = app.add_subcommand(name, description);
  group->require_subcommand(1);
  return group;
}

}  // namespace

void AddRulCommands(CLI::App& app, int* exit_code) {
  auto train_args = std::make_shared<TrainArgs>();
  auto* train = Group(app, "train", "Train a predictive model")
                    ->add_subcommand("rul",
                                     "Train a remaining-useful-life model on C-MAPSS "
                                     "run-to-failure data (XGBoost)");
  train
      ->add_option("--data", train_args->data,
                   "folder with train_FD001.txt, or a C-MAPSS training file")
      ->required();
  train->add_option("--out", train_args->out, "model folder to write")->required();
  train->add_flag("--quick", train_args->quick, "fewer boosters and rounds (a smoke run)");
  train->add_option("--threads", train_args->threads, "XGBoost threads (default 1)")
      ->check(CLI::PositiveNumber);
  train->add_option("--seed", train_args->seed, "fold split and sampling seed (default 1)");
  train->callback([train_args, exit_code] { *exit_code = RunTrain(*train_args); });

  auto predict_args = std::make_shared<PredictArgs>();
  auto* predict = Group(app, "predict", "Predict with a trained model")
                      ->add_subcommand("rul",
                                       "Remaining useful life of each engine of a C-MAPSS "
                                       "file, at its last cycle, with intervals and risk "
                                       "factors");
  predict->add_option("--model", predict_args->model, "model folder (doppel train rul --out)")
      ->required();
  predict->add_option("--data", predict_args->data, "C-MAPSS file, e.g. test_FD001.txt")
      ->required();
  predict->add_option("--rul", predict_args->rul,
                      "true RULs (RUL_FD001.txt): adds RMSE, PHM08 score and coverage");
  predict->add_option("--factors", predict_args->factors,
                      "risk factors per engine (default 3; 0: none, faster)");
  predict->callback([predict_args, exit_code] { *exit_code = RunPredict(*predict_args); });
}

}  // namespace doppel::cli
