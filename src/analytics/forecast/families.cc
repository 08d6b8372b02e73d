#include "analytics/forecast/families.h"

#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <numeric>

namespace doppel::analytics::forecast::internal {

std::unique_ptr<Model> MakeXgboostModel(const Context& ctx);  // boosted.cc

// ---------------------------------------------------------------------------------------------
// Exact doubles, base64, Nelder-Mead.

json::string EncodeDouble(double v) {
  std::array<char, 64> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  (void)ec;  // 64 characters hold any double's shortest form
  return json::string(std::string_view(buf.data(), static_cast<std::size_t>(end - buf.data())));
}

json::array EncodeDoubles(std::span<const double> v) {
  json::array a;
  a.reserve(v.size());
  for (double x : v) a.emplace_back(EncodeDouble(x));
  return a;
}

core::Status ModelIo(std::string_view field, std::string_view what) {
  return core::Status("FORECAST_MODEL_IO", fmt::format("{}: {}", field, what));
}

namespace {

bool ParseExact(const json::value& v, double* out) {
  if (!v.is_string()) return false;
  const json::string& s = v.get_string();
  if (s == "nan") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (s == "inf" || s == "-inf") {
    *out = s == "inf" ? std::numeric_limits<double>::infinity()
                      : -std::numeric_limits<double>::infinity();
    return true;
  }
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

core::Status DecodeDouble(const json::object& o, std::string_view field, double* out) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr) return ModelIo(field, "missing");
  if (!ParseExact(*v, out)) return ModelIo(field, "not a number written as a decimal string");
  return core::Status::Ok();
}

core::Status DecodeDoubles(const json::object& o, std::string_view field,
                           std::vector<double>* out) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr) return ModelIo(field, "missing");
  if (!v->is_array()) return ModelIo(field, "not an array");
  out->clear();
  for (const json::value& e : v->get_array()) {
    double d = 0;
    if (!ParseExact(e, &d)) return ModelIo(field, "an element is not a decimal string");
    out->push_back(d);
  }
  return core::Status::Ok();
}

namespace {
constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}  // namespace

std::string Base64Encode(std::span<const unsigned char> bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t left = bytes.size() - i;
    const std::uint32_t chunk = (std::uint32_t{bytes[i]} << 16) |
                                (left > 1 ? std::uint32_t{bytes[i + 1]} << 8 : 0) |
                                (left > 2 ? std::uint32_t{bytes[i + 2]} : 0);
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += left > 1 ? kAlphabet[(chunk >> 6) & 63] : '=';
    out += left > 2 ? kAlphabet[chunk & 63] : '=';
  }
  return out;
}

bool Base64Decode(std::string_view text, std::vector<unsigned char>* out) {
  out->clear();
  if (text.size() % 4 != 0) return false;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::uint32_t chunk = 0;
    int pad = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      std::uint32_t v = 0;
      if (c == '=') {
        if (i + 4 != text.size() || j < 2) return false;
        ++pad;
      } else {
        if (pad > 0) return false;
        const std::size_t pos = kAlphabet.find(c);
        if (pos == std::string_view::npos) return false;
        v = static_cast<std::uint32_t>(pos);
      }
      chunk = (chunk << 6) | v;
    }
    out->push_back(static_cast<unsigned char>(chunk >> 16));
    if (pad < 2) out->push_back(static_cast<unsigned char>((chunk >> 8) & 255));
    if (pad < 1) out->push_back(static_cast<unsigned char>(chunk & 255));
  }
  return true;
}

std::vector<double> NelderMead(const std::function<double(const std::vector<double>&)>& f,
                               const std::vector<double>& x0, double step, int max_evals) {
  const std::size_t d = x0.size();
  std::vector<std::vector<double>> x(d + 1, x0);
  std::vector<double> fx(d + 1);
  for (std::size_t i = 0; i < d; ++i) x[i + 1][i] += step;
  int evals = 0;
  auto eval = [&](const std::vector<double>& p) {
    ++evals;
    const double v = f(p);
    return std::isfinite(v) ? v : std::numeric_limits<double>::max();
  };
  for (std::size_t i = 0; i <= d; ++i) fx[i] = eval(x[i]);
  std::vector<std::size_t> order(d + 1);
  while (evals < max_evals) {
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return fx[a] < fx[b]; });
    const std::size_t best = order.front(), worst = order.back(), second = order[d - 1];
    if (std::abs(fx[worst] - fx[best]) <= 1e-8 * (std::abs(fx[best]) + 1e-300)) break;
    std::vector<double> centroid(d, 0.0);
    for (std::size_t i = 0; i <= d; ++i) {
      if (i == worst) continue;
      for (std::size_t j = 0; j < d; ++j) centroid[j] += x[i][j] / static_cast<double>(d);
    }
    auto along = [&](double t) {
      std::vector<double> p(d);
      for (std::size_t j = 0; j < d; ++j) p[j] = centroid[j] + t * (x[worst][j] - centroid[j]);
      return p;
    };
    std::vector<double> r = along(-1.0);
    const double fr = eval(r);
    if (fr < fx[best]) {
      std::vector<double> e = along(-2.0);
      const double fe = eval(e);
      if (fe < fr) {
        x[worst] = std::move(e), fx[worst] = fe;
      } else {
        x[worst] = std::move(r), fx[worst] = fr;
      }
    } else if (fr < fx[second]) {
      x[worst] = std::move(r), fx[worst] = fr;
    } else {
      std::vector<double> c = fr < fx[worst] ? along(-0.5) : along(0.5);
      const double fc = eval(c);
      if (fc < std::min(fr, fx[worst])) {
        x[worst] = std::move(c), fx[worst] = fc;
      } else {
        for (std::size_t i = 0; i <= d; ++i) {
          if (i == best) continue;
          for (std::size_t j = 0; j < d; ++j) x[i][j] = x[best][j] + 0.5 * (x[i][j] - x[best][j]);
          fx[i] = eval(x[i]);
        }
      }
    }
  }
  const auto best = static_cast<std::size_t>(std::min_element(fx.begin(), fx.end()) - fx.begin());
  return x[best];
}

namespace {

// ---------------------------------------------------------------------------------------------
// Seasonal naive.

class SeasonalNaive final : public Model {
 public:
  explicit SeasonalNaive(const Context& ctx) : m_(static_cast<std::size_t>(ctx.season)) {}
  Family family() const override { return Family::kSeasonalNaive; }
  std::size_t MinFit() const override { return m_; }
  core::Status Fit(std::span<const double>) override { return core::Status::Ok(); }

  core::Result<std::vector<double>> Forecast(std::span<const double> y,
                                             std::span<const std::size_t> origins,
                                             int h) const override {
    std::vector<double> out;
    out.reserve(origins.size() * static_cast<std::size_t>(h));
    for (std::size_t o : origins) {
      for (int k = 0; k < h; ++k) out.push_back(y[o - m_ + static_cast<std::size_t>(k) % m_]);
    }
    return out;
  }
  std::size_t Memory() const override { return m_; }
  core::Result<std::vector<double>> ForecastEnd(std::span<const double> tail, std::size_t,
                                                int h) const override {
    const std::size_t origin[] = {tail.size()};
    return Forecast(tail, origin, h);
  }
  std::string Describe() const override {
    return m_ == 1 ? std::string("naive (last value)") : fmt::format("seasonal naive, m={}", m_);
  }
  std::vector<std::pair<std::string, double>> Parameters() const override {
    return {{"m", static_cast<double>(m_)}};
  }
  json::object Save() const override { return {{"m", m_}}; }
  core::Status Load(const json::object& o) override {
    const json::value* m = o.if_contains("m");
    if (m == nullptr || !m->is_number() || m->to_number<double>() != static_cast<double>(m_)) {
      return ModelIo("model/m", "missing or not the season length");
    }
    return core::Status::Ok();
  }

 private:
  std::size_t m_;
};

// ---------------------------------------------------------------------------------------------
// Exponential smoothing (additive, error-correction form).

double Logistic(double u) { return 1.0 / (1.0 + std::exp(-u)); }
double Logit(double p) { return std::log(p / (1.0 - p)); }

struct EsParams {
  double alpha = 0.5, beta = 0, gamma = 0, phi = 1;
};

struct EsState {
  double level = 0, trend = 0;
  std::vector<double> season;  // season[t mod m]: the seasonal term of time t; empty: none
};

class ExponentialSmoothing final : public Model {
 public:
  explicit ExponentialSmoothing(const Context& ctx) : m_(static_cast<std::size_t>(ctx.season)) {}
  Family family() const override { return Family::kExponentialSmoothing; }
  std::size_t MinFit() const override { return std::max<std::size_t>(2 * m_, 10); }

  core::Status Fit(std::span<const double> y) override {
    struct Variant {
      bool trend, seasonal;
    };
    std::vector<Variant> variants = {{false, false}, {true, false}};
    if (m_ > 1) variants.insert(variants.end(), {{false, true}, {true, true}});
    const double n = static_cast<double>(y.size());
    double best_aic = std::numeric_limits<double>::infinity();
    for (const Variant& v : variants) {
      trend_ = v.trend;
      seasonal_ = v.seasonal;
      const EsState init = Initial(y);
      auto objective = [&](const std::vector<double>& u) {
        return Filter(y, Unpack(u), init, nullptr);
      };
      std::vector<double> u0 = {Logit(0.3)};
      if (trend_) u0.insert(u0.end(), {Logit(0.1), Logit(0.9)});
      if (seasonal_) u0.push_back(Logit(0.1));
      const std::vector<double> u =
          NelderMead(objective, u0, 1.0, 150 + 100 * static_cast<int>(u0.size()));
      const EsParams p = Unpack(u);
      const double sse = Filter(y, p, init, nullptr);
      const double k = static_cast<double>(u0.size()) + 1 + (trend_ ? 1 : 0) +
                       (seasonal_ ? static_cast<double>(m_ - 1) : 0);
      const double aic = n * std::log(std::max(sse / n, 1e-300)) + 2 * k;
      if (aic < best_aic) {
        best_aic = aic;
        best_trend_ = trend_;
        best_seasonal_ = seasonal_;
        params_ = p;
        init_ = init;
      }
    }
    trend_ = best_trend_;
    seasonal_ = best_seasonal_;
    end_ = init_;
    Filter(y, params_, init_, &end_);
    return core::Status::Ok();
  }

  core::Result<std::vector<double>> Forecast(std::span<const double> y,
                                             std::span<const std::size_t> origins,
                                             int h) const override {
    std::vector<double> out;
    out.reserve(origins.size() * static_cast<std::size_t>(h));
    EsState state = init_;
    std::size_t next = 0;
    const std::size_t last = origins.empty() ? 0 : origins.back();
    for (std::size_t t = 0; t <= last; ++t) {
      for (; next < origins.size() && origins[next] == t; ++next) Project(state, t, h, &out);
      if (t < last) Step(&state, t, y[t] - OneStep(state, t));
    }
    return out;
  }
  std::size_t Memory() const override { return 0; }
  core::Result<std::vector<double>> ForecastEnd(std::span<const double>, std::size_t n,
                                                int h) const override {
    std::vector<double> out;
    Project(end_, n, h, &out);
    return out;
  }

  std::string Describe() const override {
    if (trend_ && seasonal_) return fmt::format("Holt-Winters additive, damped trend, m={}", m_);
    if (seasonal_) return fmt::format("exponential smoothing, level + season, m={}", m_);
    if (trend_) return "exponential smoothing, damped trend";
    return "simple exponential smoothing";
  }

  std::vector<std::pair<std::string, double>> Parameters() const override {
    std::vector<std::pair<std::string, double>> p = {
        {"alpha", params_.alpha}, {"beta", params_.beta}, {"gamma", params_.gamma},
        {"phi", params_.phi},     {"level", end_.level},  {"trend", end_.trend}};
    for (std::size_t j = 0; j < end_.season.size(); ++j) {
      p.emplace_back(fmt::format("season[{}]", j), end_.season[j]);
    }
    return p;
  }

  json::object Save() const override {
    return {{"m", m_},
            {"trend", trend_},
            {"seasonal", seasonal_},
            {"alpha", EncodeDouble(params_.alpha)},
            {"beta", EncodeDouble(params_.beta)},
            {"gamma", EncodeDouble(params_.gamma)},
            {"phi", EncodeDouble(params_.phi)},
            {"initial", StateJson(init_)},
            {"state", StateJson(end_)}};
  }

  core::Status Load(const json::object& o) override {
    const json::value* trend = o.if_contains("trend");
    const json::value* seasonal = o.if_contains("seasonal");
    if (trend == nullptr || !trend->is_bool()) return ModelIo("model/trend", "missing or not bool");
    if (seasonal == nullptr || !seasonal->is_bool()) {
      return ModelIo("model/seasonal", "missing or not bool");
    }
    trend_ = trend->get_bool();
    seasonal_ = seasonal->get_bool();
    for (auto [name, field] : {std::pair{"alpha", &params_.alpha},
                               {"beta", &params_.beta},
                               {"gamma", &params_.gamma},
                               {"phi", &params_.phi}}) {
      if (auto s = DecodeDouble(o, name, field); !s.ok()) return s;
    }
    if (auto s = LoadState(o, "initial", &init_); !s.ok()) return s;
    return LoadState(o, "state", &end_);
  }

 private:
  EsParams Unpack(const std::vector<double>& u) const {
    EsParams p;
    std::size_t i = 0;
    p.alpha = Logistic(u[i++]);
    if (trend_) {
      p.beta = p.alpha * Logistic(u[i++]);
      p.phi = 0.8 + 0.2 * Logistic(u[i++]);
    }
    if (seasonal_) p.gamma = (1 - p.alpha) * Logistic(u[i++]);
    return p;
  }

  // The state before time 0, from the first two seasons (or the first 10 values).
  EsState Initial(std::span<const double> y) const {
    EsState s;
    if (seasonal_) {
      const double mean1 = std::accumulate(y.begin(), y.begin() + m_, 0.0) / m_;
      const double mean2 = std::accumulate(y.begin() + m_, y.begin() + 2 * m_, 0.0) / m_;
      const double b = trend_ ? (mean2 - mean1) / m_ : 0;
      const double mid = (static_cast<double>(m_) - 1) / 2;
      s.level = mean1 - b * (mid + 1);
      s.trend = b;
      s.season.resize(m_);
      for (std::size_t t = 0; t < m_; ++t) {
        s.season[t] = y[t] - (mean1 + b * (static_cast<double>(t) - mid));
      }
      const double c = std::accumulate(s.season.begin(), s.season.end(), 0.0) / m_;
      for (double& x : s.season) x -= c;
    } else {
      const std::size_t k = std::min<std::size_t>(10, y.size() - 1);
      const double b = trend_ && k > 0 ? (y[k] - y[0]) / static_cast<double>(k) : 0;
      s.level = y[0] - b;
      s.trend = b;
    }
    return s;
  }

  double OneStep(const EsState& s, std::size_t t) const {
    double f = s.level;
    if (trend_) f += params_.phi * s.trend;
    if (seasonal_) f += s.season[t % m_];
    return f;
  }

  void Step(EsState* s, std::size_t t, double e) const { Step(s, t, e, params_); }
  void Step(EsState* s, std::size_t t, double e, const EsParams& p) const {
    const double damped = trend_ ? p.phi * s->trend : 0;
    s->level += damped + p.alpha * e;
    if (trend_) s->trend = damped + p.beta * e;
    if (seasonal_) s->season[t % m_] += p.gamma * e;
  }

  // One-step SSE of y under p from `init`; the end state into *end when given.
  double Filter(std::span<const double> y, const EsParams& p, const EsState& init,
                EsState* end) const {
    // The hot loop of fitting: Step and OneStep inlined, no modulo.
    double level = init.level, trend = trend_ ? init.trend : 0, sse = 0;
    std::vector<double> season = init.season;
    std::size_t j = 0;  // t mod m
    for (double v : y) {
      const double damped = p.phi * trend, s = seasonal_ ? season[j] : 0;
      const double e = v - (level + damped + s);
      sse += e * e;
      level += damped + p.alpha * e;
      trend = damped + p.beta * e;  // beta = 0 without a trend, so it stays 0
      if (seasonal_) {
        season[j] = s + p.gamma * e;
        if (++j == m_) j = 0;
      }
    }
    if (end != nullptr) *end = EsState{.level = level, .trend = trend, .season = std::move(season)};
    return sse;
  }

  void Project(const EsState& s, std::size_t t, int h, std::vector<double>* out) const {
    double damp = 0, power = 1;
    for (int k = 0; k < h; ++k) {
      power *= params_.phi;
      damp += power;
      double f = s.level + (trend_ ? damp * s.trend : 0);
      if (seasonal_) f += s.season[(t + static_cast<std::size_t>(k)) % m_];
      out->push_back(f);
    }
  }

  json::object StateJson(const EsState& s) const {
    return {{"level", EncodeDouble(s.level)},
            {"trend", EncodeDouble(s.trend)},
            {"season", EncodeDoubles(s.season)}};
  }

  core::Status LoadState(const json::object& o, std::string_view name, EsState* s) const {
    const json::value* v = o.if_contains(name);
    if (v == nullptr || !v->is_object()) return ModelIo(name, "missing or not an object");
    const json::object& so = v->get_object();
    if (auto st = DecodeDouble(so, "level", &s->level); !st.ok()) return st;
    if (auto st = DecodeDouble(so, "trend", &s->trend); !st.ok()) return st;
    if (auto st = DecodeDoubles(so, "season", &s->season); !st.ok()) return st;
    if (s->season.size() != (seasonal_ ? m_ : 0)) {
      return ModelIo(name, "season does not have the season length");
    }
    return core::Status::Ok();
  }

  std::size_t m_;
  bool trend_ = false, seasonal_ = false;
  bool best_trend_ = false, best_seasonal_ = false;
  EsParams params_;
  EsState init_, end_;
};

// ---------------------------------------------------------------------------------------------
// Autoregressive AR(p) by least squares.

class Autoregressive final : public Model {
 public:
  explicit Autoregressive(const Context& ctx)
      : m_(ctx.season), max_order_(ctx.options->max_ar_order) {}
  Family family() const override { return Family::kAutoregressive; }
  std::size_t MinFit() const override { return 10; }

  core::Status Fit(std::span<const double> y) override {
    const std::size_t n = y.size();
    std::size_t pmax = max_order_ > 0 ? static_cast<std::size_t>(max_order_)
                                      : (m_ > 1 ? static_cast<std::size_t>(m_) + 2 : 10);
    pmax = std::clamp<std::size_t>(pmax, 1, std::max<std::size_t>(1, n / 4));
    const double mean = std::accumulate(y.begin(), y.end(), 0.0) / static_cast<double>(n);
    // The regression of y[t] − mean on an intercept and its p lags, over t = p..n−1.
    auto lagged = [&](std::size_t p, Eigen::MatrixXd& x, Eigen::VectorXd& z) {
      const std::size_t rows = n - p;
      x.resize(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(p + 1));
      z.resize(static_cast<Eigen::Index>(rows));
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t t = p + r;
        x(r, 0) = 1;
        for (std::size_t i = 1; i <= p; ++i) x(r, i) = y[t - i] - mean;
        z(r) = y[t] - mean;
      }
    };
    // Normal equations on the centered series over the common sample t = pmax..n−1: the AIC of
    // every order from one Gram matrix.
    const std::size_t rows = n - pmax;
    Eigen::MatrixXd x;
    Eigen::VectorXd z;
    lagged(pmax, x, z);
    const Eigen::MatrixXd gram = x.transpose() * x;
    const Eigen::VectorXd g = x.transpose() * z;
    const double zz = z.squaredNorm();
    double best_aic = std::numeric_limits<double>::infinity();
    std::size_t best = 1;
    for (std::size_t p = 1; p <= pmax; ++p) {
      const Eigen::VectorXd b = gram.topLeftCorner(p + 1, p + 1).ldlt().solve(g.head(p + 1));
      const double sse = std::max(zz - b.dot(g.head(p + 1)), 0.0);
      const double nr = static_cast<double>(rows);
      const double aic = nr * std::log(std::max(sse / nr, 1e-300)) + 2 * static_cast<double>(p + 1);
      if (aic < best_aic - 1e-9) best_aic = aic, best = p;
    }
    // The chosen order on all its rows, by QR.
    const std::size_t p = best;
    Eigen::MatrixXd xp;
    Eigen::VectorXd zp;
    lagged(p, xp, zp);
    const Eigen::VectorXd b = xp.colPivHouseholderQr().solve(zp);
    phi_.assign(b.data() + 1, b.data() + 1 + p);
    intercept_ = b(0) + mean * (1 - std::accumulate(phi_.begin(), phi_.end(), 0.0));
    return core::Status::Ok();
  }

  core::Result<std::vector<double>> Forecast(std::span<const double> y,
                                             std::span<const std::size_t> origins,
                                             int h) const override {
    const std::size_t p = phi_.size();
    std::vector<double> out, window;
    out.reserve(origins.size() * static_cast<std::size_t>(h));
    for (std::size_t o : origins) {
      window.assign(y.begin() + static_cast<std::ptrdiff_t>(o - p),
                    y.begin() + static_cast<std::ptrdiff_t>(o));
      for (int k = 0; k < h; ++k) {
        double f = intercept_;
        for (std::size_t i = 0; i < p; ++i) f += phi_[i] * window[window.size() - 1 - i];
        out.push_back(f);
        window.push_back(f);
      }
    }
    return out;
  }
  std::size_t Memory() const override { return phi_.size(); }
  core::Result<std::vector<double>> ForecastEnd(std::span<const double> tail, std::size_t,
                                                int h) const override {
    const std::size_t origin[] = {tail.size()};
    return Forecast(tail, origin, h);
  }
  std::string Describe() const override { return fmt::format("AR({})", phi_.size()); }
  std::vector<std::pair<std::string, double>> Parameters() const override {
    std::vector<std::pair<std::string, double>> p = {{"order", static_cast<double>(phi_.size())},
                                                     {"intercept", intercept_}};
    for (std::size_t i = 0; i < phi_.size(); ++i)
      p.emplace_back(fmt::format("phi{}", i + 1), phi_[i]);
    return p;
  }
  json::object Save() const override {
    return {{"intercept", EncodeDouble(intercept_)}, {"phi", EncodeDoubles(phi_)}};
  }
  core::Status Load(const json::object& o) override {
    if (auto s = DecodeDouble(o, "intercept", &intercept_); !s.ok()) return s;
    if (auto s = DecodeDoubles(o, "phi", &phi_); !s.ok()) return s;
    if (phi_.empty()) return ModelIo("model/phi", "no coefficients");
    return core::Status::Ok();
  }

 private:
  int m_;
  int max_order_;
  double intercept_ = 0;
  std::vector<double> phi_;
};

}  // namespace

std::unique_ptr<Model> MakeModel(Family family, const Context& ctx) {
  switch (family) {
    case Family::kSeasonalNaive:
      return std::make_unique<SeasonalNaive>(ctx);
    case Family::kExponentialSmoothing:
      return std::make_unique<ExponentialSmoothing>(ctx);
    case Family::kAutoregressive:
      return std::make_unique<Autoregressive>(ctx);
    case Family::kXgboost:
      return MakeXgboostModel(ctx);
  }
  return nullptr;
}

}  // namespace doppel::analytics::forecast::internal
