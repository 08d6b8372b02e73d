// The xgboost family: gradient-boosted trees on lag and calendar features of the residual of a
// least-squares line (forecast.h describes it), through analytics/rul/xgboost_booster.h.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <numeric>
#include <set>

#include "analytics/forecast/families.h"
#include "analytics/rul/xgboost_booster.h"

namespace doppel::analytics::forecast::internal {
namespace {

namespace rul = analytics::rul;

constexpr std::int64_t kHourMs = 3'600'000;
constexpr std::int64_t kDayMs = 24 * kHourMs;
constexpr std::size_t kMinRows = 30;  // training rows beyond the longest lag

// xgboost_booster.h reports RUL_XGBOOST; this component's code is FORECAST_XGBOOST.
core::Status Xgb(const core::Status& s) {
  return s.ok() ? s : core::Status("FORECAST_XGBOOST", s.message());
}

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// A file name no other call (in this or another process) uses at the same time.
std::filesystem::path ScratchFile() {
  static std::atomic<std::uint64_t> counter{0};
  return std::filesystem::temp_directory_path() /
         fmt::format("doppel-forecast-{}-{}.ubj", static_cast<long>(getpid()), counter++);
}

class Boosted final : public Model {
 public:
  explicit Boosted(const Context& ctx) : ctx_(ctx) {
    const int m = ctx.season;
    std::set<int> lags;
    if (m > 1) {
      lags = {1, 2, 3, m - 1, m, m + 1, 2 * m};
    } else {
      for (int i = 1; i <= 8; ++i) lags.insert(i);
    }
    lags.erase(0);
    lags_.assign(lags.begin(), lags.end());
    hour_ = ctx.step_ms < kDayMs;
    dow_ = ctx.step_ms < 7 * kDayMs;
  }

  Family family() const override { return Family::kXgboost; }
  std::size_t MinFit() const override { return MaxLag() + kMinRows; }

  core::Status Fit(std::span<const double> y) override {
    const std::size_t n = y.size();
    // The least-squares line through (i, y[i]).
    const double nn = static_cast<double>(n), tm = (nn - 1) / 2;
    const double ym = std::accumulate(y.begin(), y.end(), 0.0) / nn;
    double sxy = 0, sxx = 0;
    for (std::size_t i = 0; i < n; ++i) {
      sxy += (static_cast<double>(i) - tm) * (y[i] - ym);
      sxx += (static_cast<double>(i) - tm) * (static_cast<double>(i) - tm);
    }
    slope_ = sxx > 0 ? sxy / sxx : 0;
    intercept_ = ym - slope_ * tm;

    const std::vector<double> r = Residuals(y, 0);
    const std::size_t lag = MaxLag(), rows = n - lag, cols = Columns();
    std::vector<float> data, labels;
    data.reserve(rows * cols);
    for (std::size_t t = lag; t < n; ++t) {
      AppendFeatures(r, t, t, &data);  // the residuals before time t
      labels.push_back(static_cast<float>(r[t]));
    }
    auto matrix = rul::XgbMatrix::FromDense(data, rows, cols, ctx_.options->threads, labels);
    if (!matrix.ok()) return Xgb(matrix.status());
    auto booster = rul::XgbBooster::Create(*matrix);
    if (!booster.ok()) return Xgb(booster.status());
    const ForecastOptions& o = *ctx_.options;
    const double base =
        std::accumulate(labels.begin(), labels.end(), 0.0) / static_cast<double>(rows);
    const std::pair<const char*, std::string> params[] = {
        {"objective", "reg:squarederror"},
        {"tree_method", "hist"},
        {"eta", fmt::format("{}", o.xgb_learning_rate)},
        {"max_depth", fmt::format("{}", o.xgb_max_depth)},
        {"min_child_weight", "1"},
        {"lambda", "1"},
        {"seed", fmt::format("{}", o.seed % 2147483647u)},
        {"nthread", fmt::format("{}", o.threads)},
        {"base_score", fmt::format("{}", base)},
    };
    for (const auto& [name, value] : params) {
      if (auto s = booster->SetParam(name, value); !s.ok()) return Xgb(s);
    }
    for (int i = 0; i < o.xgb_rounds; ++i) {
      if (auto s = booster->UpdateOneIter(i, *matrix); !s.ok()) return Xgb(s);
    }
    rounds_ = o.xgb_rounds;
    booster_ = std::make_unique<rul::XgbBooster>(std::move(*booster));
    return core::Status::Ok();
  }

  core::Result<std::vector<double>> Forecast(std::span<const double> y,
                                             std::span<const std::size_t> origins,
                                             int h) const override {
    return Run(y, 0, origins, h);
  }
  std::size_t Memory() const override { return MaxLag(); }
  core::Result<std::vector<double>> ForecastEnd(std::span<const double> tail, std::size_t n,
                                                int h) const override {
    const std::size_t origin[] = {tail.size()};
    return Run(tail, n - tail.size(), origin, h);
  }

  std::string Describe() const override {
    return fmt::format("XGBoost, {} rounds, lags {}{}{}", rounds_, fmt::join(lags_, ","),
                       hour_ ? ", hour of day" : "", dow_ ? ", day of week" : "");
  }
  std::vector<std::pair<std::string, double>> Parameters() const override {
    return {{"trend_intercept", intercept_},
            {"trend_slope", slope_},
            {"rounds", static_cast<double>(rounds_)}};
  }

  json::object Save() const override {
    json::object o{{"lags", json::array(lags_.begin(), lags_.end())},
                   {"hour_of_day", hour_},
                   {"day_of_week", dow_},
                   {"rounds", rounds_},
                   {"trend_intercept", EncodeDouble(intercept_)},
                   {"trend_slope", EncodeDouble(slope_)}};
    // xgboost_booster.h saves to a file only: write one, read it back, remove it.
    const std::filesystem::path file = ScratchFile();
    std::string encoded;
    if (booster_ != nullptr && booster_->Save(file).ok()) {
      std::ifstream in(file, std::ios::binary);
      std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                       std::istreambuf_iterator<char>());
      encoded = Base64Encode(bytes);
    }
    std::error_code ec;
    std::filesystem::remove(file, ec);
    o["booster_ubj_base64"] = encoded;
    return o;
  }

  core::Status Load(const json::object& o) override {
    const json::value* lags = o.if_contains("lags");
    if (lags == nullptr || !lags->is_array()) return ModelIo("model/lags", "missing");
    std::vector<int> parsed;
    for (const json::value& v : lags->get_array()) {
      if (!v.is_int64() || v.get_int64() < 1 || v.get_int64() > 100000) {
        return ModelIo("model/lags", "not positive integers");
      }
      parsed.push_back(static_cast<int>(v.get_int64()));
    }
    if (parsed != lags_) return ModelIo("model/lags", "not those of this season length");
    const json::value* rounds = o.if_contains("rounds");
    if (rounds == nullptr || !rounds->is_int64()) return ModelIo("model/rounds", "missing");
    rounds_ = static_cast<int>(rounds->get_int64());
    if (auto s = DecodeDouble(o, "trend_intercept", &intercept_); !s.ok()) return s;
    if (auto s = DecodeDouble(o, "trend_slope", &slope_); !s.ok()) return s;
    const json::value* b = o.if_contains("booster_ubj_base64");
    std::vector<unsigned char> bytes;
    if (b == nullptr || !b->is_string() || !Base64Decode(b->get_string(), &bytes) ||
        bytes.empty()) {
      return ModelIo("model/booster_ubj_base64", "missing or not base64");
    }
    const std::filesystem::path file = ScratchFile();
    {
      std::ofstream out(file, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(bytes.data()),
                static_cast<std::streamsize>(bytes.size()));
      if (!out) return ModelIo("model/booster_ubj_base64", "cannot write a scratch file");
    }
    auto booster = rul::XgbBooster::Load(file);
    std::error_code ec;
    std::filesystem::remove(file, ec);
    if (!booster.ok()) return Xgb(booster.status());
    if (auto s = booster->SetParam("nthread", fmt::format("{}", ctx_.options->threads)); !s.ok()) {
      return Xgb(s);
    }
    booster_ = std::make_unique<rul::XgbBooster>(std::move(*booster));
    return core::Status::Ok();
  }

 private:
  std::size_t MaxLag() const { return static_cast<std::size_t>(lags_.back()); }
  std::size_t Columns() const {
    return lags_.size() + (hour_ ? 1 : 0) + (dow_ ? 1 : 0) + (ctx_.season > 1 ? 1 : 0);
  }

  // y[j] − line(offset + j).
  std::vector<double> Residuals(std::span<const double> y, std::size_t offset) const {
    std::vector<double> r(y.size());
    for (std::size_t j = 0; j < y.size(); ++j) {
      r[j] = y[j] - (intercept_ + slope_ * static_cast<double>(offset + j));
    }
    return r;
  }

  // The features of absolute time index t, whose residual history ends at hist[end − 1].
  void AppendFeatures(std::span<const double> hist, std::size_t end, std::size_t t,
                      std::vector<float>* out) const {
    for (int lag : lags_)
      out->push_back(static_cast<float>(hist[end - static_cast<std::size_t>(lag)]));
    const std::int64_t ms = ctx_.t0_ms + static_cast<std::int64_t>(t) * ctx_.step_ms;
    if (hour_) {
      out->push_back(static_cast<float>(static_cast<double>(ms - FloorDiv(ms, kDayMs) * kDayMs) /
                                        static_cast<double>(kHourMs)));
    }
    if (dow_) out->push_back(static_cast<float>((FloorDiv(ms, kDayMs) % 7 + 10) % 7));  // Mon = 0
    if (ctx_.season > 1)
      out->push_back(static_cast<float>(t % static_cast<std::size_t>(ctx_.season)));
  }

  // Recursive forecasts from every origin at once: one prediction call per step.
  core::Result<std::vector<double>> Run(std::span<const double> y, std::size_t offset,
                                        std::span<const std::size_t> origins, int h) const {
    const std::size_t lag = MaxLag(), cols = Columns(), hs = static_cast<std::size_t>(h);
    const std::size_t last = origins.empty() ? 0 : origins.back();
    const std::vector<double> r = Residuals(y.first(last), offset);
    std::vector<std::vector<double>> hist(origins.size());
    for (std::size_t i = 0; i < origins.size(); ++i) {
      hist[i].assign(r.begin() + static_cast<std::ptrdiff_t>(origins[i] - lag),
                     r.begin() + static_cast<std::ptrdiff_t>(origins[i]));
    }
    std::vector<double> out(origins.size() * hs);
    std::vector<float> data;
    std::lock_guard lock(mu_);
    for (std::size_t k = 0; k < hs; ++k) {
      data.clear();
      for (std::size_t i = 0; i < origins.size(); ++i) {
        AppendFeatures(hist[i], hist[i].size(), offset + origins[i] + k, &data);
      }
      auto matrix = rul::XgbMatrix::FromDense(data, origins.size(), cols, ctx_.options->threads);
      if (!matrix.ok()) return Xgb(matrix.status());
      auto pred = booster_->Predict(*matrix, false);
      if (!pred.ok()) return Xgb(pred.status());
      for (std::size_t i = 0; i < origins.size(); ++i) {
        const double p = (*pred)[i];
        hist[i].push_back(p);
        out[i * hs + k] = p + intercept_ + slope_ * static_cast<double>(offset + origins[i] + k);
      }
    }
    return out;
  }

  Context ctx_;
  std::vector<int> lags_;
  bool hour_ = false, dow_ = false;
  double intercept_ = 0, slope_ = 0;
  int rounds_ = 0;
  std::unique_ptr<rul::XgbBooster> booster_;
  mutable std::mutex mu_;  // XGBoost boosters are not safe for concurrent prediction
};

}  // namespace

std::unique_ptr<Model> MakeXgboostModel(const Context& ctx) {
  return std::make_unique<Boosted>(ctx);
}

}  // namespace doppel::analytics::forecast::internal
