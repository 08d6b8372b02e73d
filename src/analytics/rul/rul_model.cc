#include "analytics/rul/rul_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "analytics/rul/features.h"
#include "analytics/rul/xgboost_booster.h"
#include "core/json.h"

namespace doppel::analytics::rul {
namespace json = core::json;
namespace {

constexpr int kFormatVersion = 1;
constexpr const char* kManifest = "manifest.json";
constexpr int kMaxSensor = 21;
// A band of predicted RUL needs this many calibration residuals for its own quantiles;
// otherwise it uses those of all residuals.
constexpr std::size_t kMinBandResiduals = 50;

core::Status BadOptions(const std::string& message) {
  return core::Status("RUL_BAD_OPTIONS", message);
}

core::Status ModelIo(const std::filesystem::path& dir, const std::string& message) {
  return core::Status("RUL_MODEL_IO", fmt::format("{}: {}", dir.string(), message));
}

core::Status ValidateOptions(const TrainOptions& o) {
  if (o.sensors.empty()) return BadOptions("sensors: at least one sensor is needed");
  std::set<int> seen;
  for (int s : o.sensors) {
    if (s < 1 || s > kMaxSensor || !seen.insert(s).second) {
      return BadOptions(fmt::format("sensors: {} is not a distinct sensor number 1..21", s));
    }
  }
  if (o.windows.empty()) return BadOptions("windows: at least one window is needed");
  for (std::size_t i = 0; i < o.windows.size(); ++i) {
    if (o.windows[i] < 2 || (i > 0 && o.windows[i] <= o.windows[i - 1])) {
      return BadOptions("windows: lengths must be ≥ 2 and strictly ascending");
    }
  }
  for (int span : o.ewma_spans) {
    if (span < 1) return BadOptions("ewma_spans: spans must be ≥ 1");
  }
  if (!(o.rul_cap > 0)) return BadOptions("rul_cap must be positive");
  if (o.folds < 2) return BadOptions("folds must be at least 2");
  if (o.rounds < 1) return BadOptions("rounds must be at least 1");
  if (!(o.learning_rate > 0 && o.learning_rate <= 1)) {
    return BadOptions("learning_rate must be in (0, 1]");
  }
  if (o.max_depth < 1 || o.max_depth > 16) return BadOptions("max_depth must be in 1..16");
  if (!(o.min_child_weight >= 0)) return BadOptions("min_child_weight must be ≥ 0");
  if (!(o.subsample > 0 && o.subsample <= 1)) return BadOptions("subsample must be in (0, 1]");
  if (!(o.colsample_bytree > 0 && o.colsample_bytree <= 1)) {
    return BadOptions("colsample_bytree must be in (0, 1]");
  }
  if (!(o.lambda >= 0)) return BadOptions("lambda must be ≥ 0");
  if (o.threads < 1) return BadOptions("threads must be at least 1");
  return core::Status::Ok();
}

// The model's sensor series of `engine`, checked.
struct EngineSeries {
  std::vector<std::span<const double>> series;  // one per spec sensor
  std::size_t length = 0;
  int cycle = 0;  // at the newest reading
};

core::Result<EngineSeries> SeriesOf(const EngineHistory& engine, const FeatureSpec& spec) {
  const std::string& id = engine.id.empty() ? std::string("engine") : engine.id;
  EngineSeries out;
  for (std::size_t i = 0; i < spec.sensors.size(); ++i) {
    const std::string name = fmt::format("s{}", spec.sensors[i]);
    auto it = engine.sensors.find(name);
    if (it == engine.sensors.end()) {
      return core::Status("RUL_BAD_DATA", fmt::format("{}: no readings of sensor {}", id, name));
    }
    const std::vector<double>& v = it->second;
    if (i > 0 && v.size() != out.length) {
      return core::Status("RUL_BAD_DATA",
                          fmt::format("{}: sensor {} has {} readings, s{} has {}", id, name,
                                      v.size(), spec.sensors[0], out.length));
    }
    if (auto bad = std::find_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); });
        bad != v.end()) {
      return core::Status("RUL_BAD_DATA", fmt::format("{}: sensor {} reading {} is not finite", id,
                                                      name, bad - v.begin()));
    }
    out.length = v.size();
    out.series.emplace_back(v);
  }
  if (out.length < static_cast<std::size_t>(spec.Longest())) {
    return core::Status("RUL_TOO_FEW_CYCLES",
                        fmt::format("{}: {} cycles of readings, the model needs at least {}", id,
                                    out.length, spec.Longest()));
  }
  out.cycle = engine.cycle == 0 ? static_cast<int>(out.length) : engine.cycle;
  if (out.cycle < static_cast<int>(out.length)) {
    return core::Status("RUL_BAD_DATA", fmt::format("{}: cycle {} is below the {} readings", id,
                                                    out.cycle, out.length));
  }
  return out;
}

double AsFloat(double v) { return static_cast<double>(static_cast<float>(v)); }

// The ⌈(n+1)·coverage⌉-th smallest score: for exchangeable scores, a new one is at most this
// with probability ≥ coverage (split conformal). With too few scores for that rank, the
// largest (the interval may then cover a little less than asked).
double ConformalQuantile(std::vector<double> scores, double coverage) {
  const std::size_t n = scores.size();
  auto rank = static_cast<std::size_t>(std::ceil(static_cast<double>(n + 1) * coverage));
  rank = std::clamp<std::size_t>(rank, 1, n);
  std::nth_element(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(rank - 1),
                   scores.end());
  return scores[rank - 1];
}

// Mondrian split conformal: residual quantiles per band of predicted RUL.
//
// Every number here is a float value (held in a double): the manifest stores it in decimal and
// Boost.JSON's parser is not correctly rounded in the last bit of a double, but a float comes
// back exactly (see AsFloat), so a loaded model gives bit-identical intervals.
struct Conformal {
  std::vector<double> band_upper;  // band i: predictions ≤ band_upper[i] (and above band i−1)
  std::vector<double> q80, q95;    // per band; band_upper.size() + 1 entries (the last is open)

  std::size_t Band(double prediction) const {
    return static_cast<std::size_t>(
        std::lower_bound(band_upper.begin(), band_upper.end(), prediction) - band_upper.begin());
  }

  static Conformal Calibrate(std::span<const double> predictions, std::span<const double> labels,
                             double cap) {
    Conformal c;
    for (double f : {0.2, 0.4, 0.6, 0.8}) c.band_upper.push_back(AsFloat(f * cap));
    std::vector<std::vector<double>> residuals(c.band_upper.size() + 1);
    std::vector<double> all;
    for (std::size_t i = 0; i < predictions.size(); ++i) {
      const double r = std::abs(labels[i] - predictions[i]);
      residuals[c.Band(predictions[i])].push_back(r);
      all.push_back(r);
    }
    const double all80 = ConformalQuantile(all, 0.80), all95 = ConformalQuantile(all, 0.95);
    for (const auto& band : residuals) {
      const bool own = band.size() >= kMinBandResiduals;
      c.q80.push_back(AsFloat(own ? ConformalQuantile(band, 0.80) : all80));
      c.q95.push_back(AsFloat(own ? ConformalQuantile(band, 0.95) : all95));
    }
    return c;
  }
};

json::array ToJson(const std::vector<int>& v) { return json::array(v.begin(), v.end()); }
json::array ToJson(const std::vector<double>& v) { return json::array(v.begin(), v.end()); }

bool ReadNumber(const json::object& o, std::string_view key, double* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_number()) return false;
  *out = v->to_number<double>();  // is_number(): no conversion error possible
  return true;
}

template <typename T>
bool ReadNumbers(const json::object& o, std::string_view key, std::vector<T>* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_array()) return false;
  out->clear();
  for (const json::value& e : v->get_array()) {
    if (!e.is_number()) return false;
    const double d = e.to_number<double>();
    if constexpr (std::is_integral_v<T>) {
      if (d != std::floor(d) || std::abs(d) > 1e9) return false;
    }
    out->push_back(static_cast<T>(d));
  }
  return true;
}

bool ReadStrings(const json::object& o, std::string_view key, std::vector<std::string>* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_array()) return false;
  out->clear();
  for (const json::value& e : v->get_array()) {
    if (!e.is_string()) return false;
    out->emplace_back(e.get_string());
  }
  return true;
}

const json::object* ReadObject(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_object() ? &v->get_object() : nullptr;
}

core::Status SetParams(XgbBooster& b, const TrainOptions& o, double base_score) {
  const std::pair<const char*, std::string> params[] = {
      {"objective", "reg:squarederror"},
      {"tree_method", "hist"},
      {"eta", fmt::format("{}", o.learning_rate)},
      {"max_depth", fmt::format("{}", o.max_depth)},
      {"min_child_weight", fmt::format("{}", o.min_child_weight)},
      {"subsample", fmt::format("{}", o.subsample)},
      {"colsample_bytree", fmt::format("{}", o.colsample_bytree)},
      {"lambda", fmt::format("{}", o.lambda)},
      // XGBoost's seed is a 32-bit int.
      {"seed", fmt::format("{}", o.seed % 2147483647u)},
      {"nthread", fmt::format("{}", o.threads)},
      // Boosting starts from the mean label instead of 0.5: fewer rounds spent climbing to it.
      {"base_score", fmt::format("{}", base_score)},
  };
  for (const auto& [name, value] : params) {
    if (auto s = b.SetParam(name, value); !s.ok()) return s;
  }
  return core::Status::Ok();
}

}  // namespace

struct RulModel::Impl {
  ModelInfo info;
  FeatureSpec spec;
  std::vector<std::size_t> groups;  // feature column → sensor index (or "cycle")
  std::vector<XgbBooster> boosters;
  Conformal conformal;
  mutable std::mutex mu;  // XGBoost prediction buffers belong to the booster
};

TrainOptions TrainOptions::Quick() {
  TrainOptions o;
  o.folds = 3;
  o.rounds = 120;
  o.learning_rate = 0.1;
  return o;
}

RulModel::RulModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RulModel::RulModel(RulModel&&) noexcept = default;
RulModel& RulModel::operator=(RulModel&&) noexcept = default;
RulModel::~RulModel() = default;

const ModelInfo& RulModel::info() const { return impl_->info; }

core::Result<RulModel> RulModel::Train(std::span<const CmapssUnit> fleet,
                                       const TrainOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (auto s = ValidateOptions(options); !s.ok()) return s;
  if (fleet.size() < static_cast<std::size_t>(options.folds)) {
    return BadOptions(
        fmt::format("{} engines cannot be split into {} folds", fleet.size(), options.folds));
  }
  auto impl = std::make_unique<Impl>();
  impl->spec = FeatureSpec{options.sensors, options.windows, options.ewma_spans};
  impl->groups = FeatureGroups(impl->spec);
  const std::vector<std::string> names = FeatureNames(impl->spec);
  const std::size_t cols = names.size();

  // One sample per engine and reading from the longest window on; the label is the cycles left
  // after that reading (the last reading of a run-to-failure history has 0 left).
  std::vector<float> features;
  std::vector<float> labels;
  std::vector<std::size_t> sample_unit;
  for (std::size_t u = 0; u < fleet.size(); ++u) {
    auto engine = SeriesOf(fleet[u].history, impl->spec);
    if (!engine.ok()) return engine.status();
    const int first_cycle = engine->cycle - static_cast<int>(engine->length) + 1;
    for (std::size_t t = static_cast<std::size_t>(impl->spec.Longest()) - 1; t < engine->length;
         ++t) {
      AppendFeatureRow(impl->spec, engine->series, t, first_cycle + static_cast<int>(t), &features);
      const auto left = static_cast<double>(engine->length - 1 - t);
      labels.push_back(static_cast<float>(std::min(left, options.rul_cap)));
      sample_unit.push_back(u);
    }
  }

  // Folds by unit (never by row: rows of one engine are strongly correlated). Fisher–Yates with
  // the raw generator, so that the split does not depend on the standard library's
  // distributions.
  std::vector<std::size_t> order(fleet.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(options.seed);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  std::vector<int> fold_of_unit(fleet.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    fold_of_unit[order[i]] = static_cast<int>(i % static_cast<std::size_t>(options.folds));
  }

  std::vector<double> out_of_fold(labels.size());
  const int total_rounds = options.folds * options.rounds;
  for (int k = 0; k < options.folds; ++k) {
    std::vector<float> fit_x, fit_y, cal_x;
    std::vector<std::size_t> cal_rows;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      const auto row = std::span<const float>(features).subspan(i * cols, cols);
      if (fold_of_unit[sample_unit[i]] == k) {
        cal_x.insert(cal_x.end(), row.begin(), row.end());
        cal_rows.push_back(i);
      } else {
        fit_x.insert(fit_x.end(), row.begin(), row.end());
        fit_y.push_back(labels[i]);
      }
    }
    auto fit = XgbMatrix::FromDense(fit_x, fit_y.size(), cols, options.threads, fit_y);
    if (!fit.ok()) return fit.status();
    auto booster = XgbBooster::Create(*fit);
    if (!booster.ok()) return booster.status();
    const double base =
        std::accumulate(fit_y.begin(), fit_y.end(), 0.0) / static_cast<double>(fit_y.size());
    if (auto s = SetParams(*booster, options, base); !s.ok()) return s;
    for (int r = 0; r < options.rounds; ++r) {
      if (auto s = booster->UpdateOneIter(r, *fit); !s.ok()) return s;
      if (options.on_round) options.on_round(k * options.rounds + r + 1, total_rounds);
    }
    auto cal = XgbMatrix::FromDense(cal_x, cal_rows.size(), cols, options.threads);
    if (!cal.ok()) return cal.status();
    auto predicted = booster->Predict(*cal, false);
    if (!predicted.ok()) return predicted.status();
    for (std::size_t j = 0; j < cal_rows.size(); ++j) out_of_fold[cal_rows[j]] = (*predicted)[j];
    impl->boosters.push_back(std::move(*booster));
  }

  const std::vector<double> truth(labels.begin(), labels.end());
  impl->conformal = Conformal::Calibrate(out_of_fold, truth, options.rul_cap);

  ModelInfo& info = impl->info;
  info.sensors = options.sensors;
  info.windows = options.windows;
  info.ewma_spans = options.ewma_spans;
  info.rul_cap = options.rul_cap;
  info.features = names;
  info.options = options;
  info.options.on_round = nullptr;
  info.units = fleet.size();
  info.samples = labels.size();
  info.cv_rmse = Rmse(out_of_fold, truth);
  info.train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  info.xgboost_version = XgbVersion();
  return RulModel(std::move(impl));
}

core::Result<RulPrediction> RulModel::Predict(const EngineHistory& engine,
                                              const PredictOptions& options) const {
  auto many = PredictMany(std::span<const EngineHistory>(&engine, 1), options);
  if (!many.ok()) return many.status();
  return std::move(many->front());
}

core::Result<std::vector<RulPrediction>> RulModel::PredictMany(
    std::span<const EngineHistory> engines, const PredictOptions& options) const {
  const Impl& m = *impl_;
  const std::size_t cols = m.info.features.size();
  std::vector<float> features;
  features.reserve(engines.size() * cols);
  for (const EngineHistory& e : engines) {
    auto engine = SeriesOf(e, m.spec);
    if (!engine.ok()) return engine.status();
    AppendFeatureRow(m.spec, engine->series, engine->length - 1, engine->cycle, &features);
  }
  std::vector<RulPrediction> out(engines.size());
  if (engines.empty()) return out;
  auto matrix = XgbMatrix::FromDense(features, engines.size(), cols, m.info.options.threads);
  if (!matrix.ok()) return matrix.status();

  const std::size_t groups = m.spec.sensors.size() + 1;
  std::vector<double> sum(engines.size(), 0.0);
  std::vector<double> group_sum(engines.size() * groups, 0.0);
  std::vector<double> base(engines.size(), 0.0);
  {
    std::lock_guard lock(m.mu);
    for (const XgbBooster& b : m.boosters) {
      auto predicted = b.Predict(*matrix, false);
      if (!predicted.ok()) return predicted.status();
      for (std::size_t i = 0; i < engines.size(); ++i) sum[i] += (*predicted)[i];
      if (options.top_factors <= 0) continue;
      auto shap = b.Predict(*matrix, true);
      if (!shap.ok()) return shap.status();
      for (std::size_t i = 0; i < engines.size(); ++i) {
        const float* row = shap->data() + i * (cols + 1);
        for (std::size_t c = 0; c < cols; ++c) group_sum[i * groups + m.groups[c]] += row[c];
        base[i] += row[cols];  // the bias column
      }
    }
  }

  // The ensemble is the mean of the boosters, and SHAP values are additive, so the ensemble's
  // contributions are the means of the boosters' contributions.
  const auto k = static_cast<double>(m.boosters.size());
  for (std::size_t i = 0; i < engines.size(); ++i) {
    RulPrediction& p = out[i];
    p.rul = sum[i] / k;
    const std::size_t band = m.conformal.Band(p.rul);
    const double q80 = m.conformal.q80[band], q95 = m.conformal.q95[band];
    p.interval80 = {std::max(0.0, p.rul - q80), p.rul + q80};
    p.interval95 = {std::max(0.0, p.rul - q95), p.rul + q95};
    if (options.top_factors <= 0) continue;
    p.base = base[i] / k;
    for (std::size_t g = 0; g < groups; ++g) {
      p.factors.push_back(
          {g < m.spec.sensors.size() ? fmt::format("s{}", m.spec.sensors[g]) : "cycle",
           group_sum[i * groups + g] / k});
    }
    std::stable_sort(p.factors.begin(), p.factors.end(), [](const auto& a, const auto& b) {
      return std::abs(a.contribution) > std::abs(b.contribution);
    });
    p.factors.resize(std::min(p.factors.size(), static_cast<std::size_t>(options.top_factors)));
  }
  return out;
}

core::Status RulModel::Save(const std::filesystem::path& dir) const {
  const Impl& m = *impl_;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ModelIo(dir, fmt::format("cannot create the folder: {}", ec.message()));

  json::array boosters;
  for (std::size_t k = 0; k < m.boosters.size(); ++k) {
    const std::string file = fmt::format("fold{}.ubj", k);
    if (auto s = m.boosters[k].Save(dir / file); !s.ok()) {
      return ModelIo(dir, fmt::format("cannot write {}: {}", file, s.message()));
    }
    boosters.emplace_back(file);
  }
  const ModelInfo& i = m.info;
  const TrainOptions& o = i.options;
  json::object training{{"folds", o.folds},
                        {"rounds", o.rounds},
                        {"learning_rate", o.learning_rate},
                        {"max_depth", o.max_depth},
                        {"min_child_weight", o.min_child_weight},
                        {"subsample", o.subsample},
                        {"colsample_bytree", o.colsample_bytree},
                        {"lambda", o.lambda},
                        {"seed", o.seed},
                        {"threads", o.threads}};
  json::object intervals{{"method", "Mondrian split conformal on out-of-fold residuals"},
                         {"band_upper", ToJson(m.conformal.band_upper)},
                         {"q80", ToJson(m.conformal.q80)},
                         {"q95", ToJson(m.conformal.q95)}};
  json::object metrics{{"units", i.units},
                       {"samples", i.samples},
                       {"cv_rmse", i.cv_rmse},
                       {"train_seconds", i.train_seconds}};
  json::array features(i.features.begin(), i.features.end());
  json::object manifest{{"format", "doppel-rul"},
                        {"version", kFormatVersion},
                        {"xgboost", i.xgboost_version},
                        {"sensors", ToJson(i.sensors)},
                        {"windows", ToJson(i.windows)},
                        {"ewma_spans", ToJson(i.ewma_spans)},
                        {"rul_cap", i.rul_cap},
                        {"features", std::move(features)},
                        {"boosters", std::move(boosters)},
                        {"intervals", std::move(intervals)},
                        {"training", std::move(training)},
                        {"metrics", std::move(metrics)}};

  // Write then rename: a reader never sees a half-written manifest, and the manifest appears
  // only after every booster file is complete.
  const std::filesystem::path tmp = dir / (std::string(kManifest) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << json::serialize(manifest) << '\n';
    out.close();
    if (!out) return ModelIo(dir, fmt::format("cannot write {}", tmp.filename().string()));
  }
  std::filesystem::rename(tmp, dir / kManifest, ec);
  if (ec) return ModelIo(dir, fmt::format("cannot write {}: {}", kManifest, ec.message()));
  return core::Status::Ok();
}

core::Result<RulModel> RulModel::Load(const std::filesystem::path& dir, int threads) {
  if (threads < 1) return BadOptions("threads must be at least 1");
  const std::filesystem::path file = dir / kManifest;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    return ModelIo(dir, fmt::format("no {} (not a model folder)", kManifest));
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) return ModelIo(dir, fmt::format("cannot read {}", kManifest));
  auto parsed = core::ParseJson(text.str());
  if (!parsed.ok())
    return ModelIo(dir, fmt::format("{}: {}", kManifest, parsed.status().message()));
  if (!parsed->is_object()) return ModelIo(dir, fmt::format("{} is not an object", kManifest));
  const json::object& root = parsed->get_object();
  auto bad = [&](std::string_view field) {
    return ModelIo(dir, fmt::format("{}: '{}' is missing or invalid", kManifest, field));
  };

  const json::value* format = root.if_contains("format");
  if (format == nullptr || !format->is_string() || format->get_string() != "doppel-rul") {
    return ModelIo(dir, fmt::format("{} is not a doppel RUL manifest", kManifest));
  }
  double version = 0;
  if (!ReadNumber(root, "version", &version)) return bad("version");
  if (version != kFormatVersion) {
    return ModelIo(dir, fmt::format("model format version {} (this doppel reads {})", version,
                                    kFormatVersion));
  }

  auto impl = std::make_unique<Impl>();
  ModelInfo& info = impl->info;
  TrainOptions& o = info.options;
  if (!ReadNumbers(root, "sensors", &o.sensors)) return bad("sensors");
  if (!ReadNumbers(root, "windows", &o.windows)) return bad("windows");
  if (!ReadNumbers(root, "ewma_spans", &o.ewma_spans)) return bad("ewma_spans");
  if (!ReadNumber(root, "rul_cap", &o.rul_cap)) return bad("rul_cap");
  const json::object* training = ReadObject(root, "training");
  if (training == nullptr) return bad("training");
  double folds = 0, rounds = 0, depth = 0, seed = 0;
  if (!ReadNumber(*training, "folds", &folds) || !ReadNumber(*training, "rounds", &rounds) ||
      !ReadNumber(*training, "learning_rate", &o.learning_rate) ||
      !ReadNumber(*training, "max_depth", &depth) ||
      !ReadNumber(*training, "min_child_weight", &o.min_child_weight) ||
      !ReadNumber(*training, "subsample", &o.subsample) ||
      !ReadNumber(*training, "colsample_bytree", &o.colsample_bytree) ||
      !ReadNumber(*training, "lambda", &o.lambda) || !ReadNumber(*training, "seed", &seed)) {
    return bad("training");
  }
  o.folds = static_cast<int>(folds);
  o.rounds = static_cast<int>(rounds);
  o.max_depth = static_cast<int>(depth);
  o.seed = static_cast<std::uint64_t>(seed);
  o.threads = threads;
  if (auto s = ValidateOptions(o); !s.ok()) return ModelIo(dir, s.message());

  impl->spec = FeatureSpec{o.sensors, o.windows, o.ewma_spans};
  impl->groups = FeatureGroups(impl->spec);
  info.sensors = o.sensors;
  info.windows = o.windows;
  info.ewma_spans = o.ewma_spans;
  info.rul_cap = o.rul_cap;
  info.features = FeatureNames(impl->spec);
  std::vector<std::string> features;
  if (!ReadStrings(root, "features", &features)) return bad("features");
  if (features != info.features) {
    return ModelIo(dir, "the model's features differ from this doppel's (another version)");
  }

  const json::object* intervals = ReadObject(root, "intervals");
  Conformal& c = impl->conformal;
  if (intervals == nullptr || !ReadNumbers(*intervals, "band_upper", &c.band_upper) ||
      !ReadNumbers(*intervals, "q80", &c.q80) || !ReadNumbers(*intervals, "q95", &c.q95) ||
      c.q80.size() != c.band_upper.size() + 1 || c.q95.size() != c.q80.size() ||
      !std::is_sorted(c.band_upper.begin(), c.band_upper.end())) {
    return bad("intervals");
  }
  for (auto* v : {&c.band_upper, &c.q80, &c.q95}) {
    std::transform(v->begin(), v->end(), v->begin(), AsFloat);
  }
  if (const json::object* metrics = ReadObject(root, "metrics"); metrics != nullptr) {
    double units = 0, samples = 0;
    ReadNumber(*metrics, "units", &units);
    ReadNumber(*metrics, "samples", &samples);
    ReadNumber(*metrics, "cv_rmse", &info.cv_rmse);
    ReadNumber(*metrics, "train_seconds", &info.train_seconds);
    info.units = static_cast<std::size_t>(units);
    info.samples = static_cast<std::size_t>(samples);
  }
  if (const json::value* v = root.if_contains("xgboost"); v != nullptr && v->is_string()) {
    info.xgboost_version = std::string(v->get_string());
  }

  std::vector<std::string> files;
  if (!ReadStrings(root, "boosters", &files) || files.size() != static_cast<std::size_t>(o.folds)) {
    return bad("boosters");
  }
  for (const std::string& name : files) {
    // Booster files live in the folder: a manifest must not point elsewhere.
    if (name.empty() || name.find('/') != std::string::npos || name.starts_with(".")) {
      return bad("boosters");
    }
    auto booster = XgbBooster::Load(dir / name);
    if (!booster.ok()) {
      return ModelIo(dir,
                     fmt::format("cannot read booster {}: {}", name, booster.status().message()));
    }
    auto n = booster->NumFeatures();
    if (!n.ok()) return n.status();
    if (*n != info.features.size()) {
      return ModelIo(dir, fmt::format("booster {} has {} features, the manifest {}", name, *n,
                                      info.features.size()));
    }
    if (auto s = booster->SetParam("nthread", fmt::format("{}", threads)); !s.ok()) return s;
    impl->boosters.push_back(std::move(*booster));
  }
  return RulModel(std::move(impl));
}

}  // namespace doppel::analytics::rul
