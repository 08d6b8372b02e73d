#include "sim/estimation/live.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>

#include "core/time.h"
#include "sim/estimation/kalman.h"
#include "sim/ode/ode.h"
#include "sync/ingest.h"

namespace doppel::sim::estimation {
namespace json = boost::json;
using core::Result;
using core::Status;

struct EstimatorDefinition {
  json::value source;
  std::string twin;
  bool unscented = true;
  std::shared_ptr<const ode::ModelDefinition> model;
  // Augmented state: the model's states, then the estimated parameters.
  std::vector<std::string> names;
  std::size_t model_states = 0;
  std::vector<std::size_t> estimated_params;  // index into the model's parameters, per extra
  std::vector<double> x0, sd0, noise;         // per augmented state
  std::vector<std::pair<std::size_t, std::string>> inputs;  // model input index <- element path
  std::string measured_path;
  bool measure_state = true;
  std::size_t measure_index = 0;  // state index, or output index
  double measure_sd = 1;
};

const std::string& EstimatorTwin(const EstimatorDefinition& d) { return d.twin; }

namespace {

Status Invalid(const std::string& pointer, const std::string& why) {
  return Status("ESTIMATOR_INVALID", why, pointer);
}

std::optional<std::size_t> IndexOf(const std::vector<ode::ModelVariable>& vars,
                                   std::string_view name) {
  for (std::size_t i = 0; i < vars.size(); ++i) {
    if (vars[i].name == name) return i;
  }
  return std::nullopt;
}

// A positive (or, with zero_ok, non-negative) finite number at o[key], or `fallback` if absent.
Result<double> Number(const json::object& o, const char* key, double fallback,
                      const std::string& pointer, bool zero_ok) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return fallback;
  if (!v->is_number()) return Invalid(pointer + "/" + key, "expected a number");
  const double d = v->to_number<double>();
  if (!std::isfinite(d) || d < 0 || (!zero_ok && d == 0)) {
    return Invalid(pointer + "/" + key,
                   zero_ok ? "expected a finite number >= 0" : "expected a finite number > 0");
  }
  return d;
}

Status OnlyMembers(const json::object& o, std::initializer_list<std::string_view> allowed,
                   const std::string& pointer) {
  for (const auto& [k, v] : o) {
    bool ok = false;
    for (std::string_view a : allowed) ok = ok || k == a;
    if (!ok) return Invalid(pointer + "/" + std::string(k), "unknown member");
  }
  return {};
}

}  // namespace

Result<std::shared_ptr<const EstimatorDefinition>> ParseEstimator(const json::value& json) {
  if (!json.is_object()) return Invalid("", "an estimator is a JSON object");
  const json::object& o = json.get_object();
  if (Status s = OnlyMembers(o, {"twin", "filter", "model", "inputs", "measurement", "estimate",
                                 "states", "name", "description"},
                             "");
      !s.ok()) {
    return s;
  }
  auto d = std::make_shared<EstimatorDefinition>();
  d->source = json;
  const json::value* twin = o.if_contains("twin");
  if (twin == nullptr || !twin->is_string() || twin->get_string().empty()) {
    return Invalid("/twin", "the twin's id (a non-empty string) is required");
  }
  d->twin = std::string(twin->get_string());
  if (const json::value* f = o.if_contains("filter")) {
    if (!f->is_string() || (f->get_string() != "ukf" && f->get_string() != "ekf")) {
      return Invalid("/filter", "expected \"ukf\" or \"ekf\"");
    }
    d->unscented = f->get_string() == "ukf";
  }
  const json::value* model = o.if_contains("model");
  if (model == nullptr) return Invalid("/model", "the model (declarative ODE form) is required");
  auto def = ode::ModelDefinitionFromJson(*model);
  if (!def.ok()) {
    return Status(def.status().code(), def.status().message(), "/model" + def.status().pointer());
  }
  d->model = *def;
  const ode::ModelInfo& info = ode::DefinitionInfo(*d->model);
  d->model_states = info.states.size();

  // Model states: names, start, initial sd, process noise.
  const json::object* states = nullptr;
  if (const json::value* s = o.if_contains("states")) {
    if (!s->is_object()) return Invalid("/states", "expected an object of state names");
    states = &s->get_object();
    for (const auto& [k, v] : *states) {
      if (!IndexOf(info.states, k)) {
        return Invalid("/states/" + std::string(k), "the model has no state of that name");
      }
      if (!v.is_object()) return Invalid("/states/" + std::string(k), "expected an object");
      if (Status st = OnlyMembers(v.get_object(), {"stddev", "noise"}, "/states/" + std::string(k));
          !st.ok()) {
        return st;
      }
    }
  }
  for (const ode::ModelVariable& s : info.states) {
    d->names.push_back(s.name);
    d->x0.push_back(s.start);
    double sd = 1, noise = 1e-3 * std::max(1.0, std::abs(s.start));
    if (states != nullptr) {
      if (const json::value* v = states->if_contains(s.name)) {
        const std::string p = "/states/" + s.name;
        auto a = Number(v->get_object(), "stddev", sd, p, false);
        if (!a.ok()) return a.status();
        auto b = Number(v->get_object(), "noise", noise, p, true);
        if (!b.ok()) return b.status();
        sd = *a;
        noise = *b;
      }
    }
    d->sd0.push_back(sd);
    d->noise.push_back(noise);
  }
  // Estimated parameters.
  if (const json::value* e = o.if_contains("estimate")) {
    if (!e->is_object()) return Invalid("/estimate", "expected an object of parameter names");
    for (const auto& [k, v] : e->get_object()) {
      const std::string p = "/estimate/" + std::string(k);
      auto idx = IndexOf(info.parameters, k);
      if (!idx) return Invalid(p, "the model has no parameter of that name");
      if (!v.is_object()) return Invalid(p, "expected {\"stddev\", \"drift\"}");
      if (Status st = OnlyMembers(v.get_object(), {"stddev", "drift"}, p); !st.ok()) return st;
      auto sd = Number(v.get_object(), "stddev", 1, p, false);
      if (!sd.ok()) return sd.status();
      auto drift = Number(v.get_object(), "drift", 0, p, true);
      if (!drift.ok()) return drift.status();
      d->names.emplace_back(k);
      d->estimated_params.push_back(*idx);
      d->x0.push_back(info.parameters[*idx].start);
      d->sd0.push_back(*sd);
      d->noise.push_back(*drift);
    }
  }
  // Inputs.
  if (const json::value* in = o.if_contains("inputs")) {
    if (!in->is_object()) return Invalid("/inputs", "expected {model input: twin element}");
    for (const auto& [k, v] : in->get_object()) {
      const std::string p = "/inputs/" + std::string(k);
      auto idx = IndexOf(info.inputs, k);
      if (!idx) return Invalid(p, "the model has no input of that name");
      if (!v.is_string() || v.get_string().empty()) {
        return Invalid(p, "expected the twin element that feeds it (a string)");
      }
      d->inputs.emplace_back(*idx, std::string(v.get_string()));
    }
  }
  // Measurement.
  const json::value* m = o.if_contains("measurement");
  if (m == nullptr || !m->is_object()) {
    return Invalid("/measurement", "required: {\"path\", \"of\", \"stddev\"}");
  }
  const json::object& mo = m->get_object();
  if (Status st = OnlyMembers(mo, {"path", "of", "stddev"}, "/measurement"); !st.ok()) return st;
  const json::value* path = mo.if_contains("path");
  if (path == nullptr || !path->is_string() || path->get_string().empty()) {
    return Invalid("/measurement/path", "the measured twin element (a string) is required");
  }
  d->measured_path = std::string(path->get_string());
  const json::value* of = mo.if_contains("of");
  if (of == nullptr || !of->is_string()) {
    return Invalid("/measurement/of", "the state or output it measures is required");
  }
  if (auto s = IndexOf(info.states, of->get_string())) {
    d->measure_index = *s;
  } else if (auto out = IndexOf(info.outputs, of->get_string())) {
    d->measure_state = false;
    d->measure_index = *out;
  } else {
    return Invalid("/measurement/of", fmt::format("the model has no state or output '{}'",
                                                  std::string_view(of->get_string())));
  }
  const json::value* sd = mo.if_contains("stddev");
  if (sd == nullptr) return Invalid("/measurement/stddev", "the measurement noise is required");
  auto msd = Number(mo, "stddev", 1, "/measurement", false);
  if (!msd.ok()) return msd.status();
  d->measure_sd = *msd;
  return std::shared_ptr<const EstimatorDefinition>(std::move(d));
}

struct LiveEstimators::Live {
  std::mutex mu;
  std::string id;
  std::shared_ptr<const EstimatorDefinition> def;
  std::unique_ptr<ode::OdeModel> model;  // evaluated by the filter's functions (under mu)
  std::vector<double> params, inputs, xs, dx, ys;
  std::unique_ptr<KalmanFilter> filter;
  std::optional<std::chrono::system_clock::time_point> last;
  std::uint64_t updates = 0, ignored = 0;
  double nis = 0, innovation = 0;
  std::string error;

  // The model's parameters with the estimated ones taken from x.
  void Bind(const Eigen::VectorXd& x) {
    xs.assign(x.data(), x.data() + def->model_states);
    for (std::size_t k = 0; k < def->estimated_params.size(); ++k) {
      params[def->estimated_params[k]] = x[static_cast<Eigen::Index>(def->model_states + k)];
    }
  }
};

LiveEstimators::LiveEstimators() = default;
LiveEstimators::~LiveEstimators() = default;

Status LiveEstimators::Put(const std::string& id, const json::value& definition) {
  auto def = ParseEstimator(definition);
  if (!def.ok()) return def.status();
  auto live = std::make_shared<Live>();
  live->id = id;
  live->def = *def;
  auto model = ode::Instantiate(live->def->model);
  if (!model.ok()) return model.status();
  live->model = std::move(*model);
  const ode::ModelInfo& info = live->model->info();
  for (const auto& p : info.parameters) live->params.push_back(p.start);
  for (const auto& u : info.inputs) live->inputs.push_back(u.start);
  live->dx.resize(info.states.size());
  live->ys.resize(info.outputs.size());
  Live* l = live.get();
  const std::size_t n = live->def->x0.size(), ns = live->def->model_states;
  FilterModel fm;
  fm.transition = DiscretizeOde(
      [l, n, ns](const VectorXd& x, const VectorXd& u) {
        VectorXd out = VectorXd::Zero(static_cast<Eigen::Index>(n));
        l->Bind(x);
        ode::ModelPoint at{0, l->xs, l->params,
                           std::span<const double>(u.data(), static_cast<std::size_t>(u.size()))};
        if (!l->model->Derivatives(at, l->dx)) {
          out.setConstant(std::nan(""));  // the filter refuses a non-finite result
          return out;
        }
        for (std::size_t i = 0; i < ns; ++i) out[static_cast<Eigen::Index>(i)] = l->dx[i];
        return out;  // estimated parameters: a random walk, no drift in the mean
      },
      1.0);
  fm.measurement = [l](const VectorXd& x) {
    VectorXd z(1);
    if (l->def->measure_state) {
      z[0] = x[static_cast<Eigen::Index>(l->def->measure_index)];
      return z;
    }
    l->Bind(x);
    ode::ModelPoint at{0, l->xs, l->params, l->inputs};
    z[0] = l->model->Outputs(at, l->ys) ? l->ys[l->def->measure_index] : std::nan("");
    return z;
  };
  VectorXd x0(static_cast<Eigen::Index>(n));
  MatrixXd p0 = MatrixXd::Zero(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(n));
  MatrixXd q = p0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto k = static_cast<Eigen::Index>(i);
    x0[k] = live->def->x0[i];
    p0(k, k) = live->def->sd0[i] * live->def->sd0[i];
    q(k, k) = live->def->noise[i] * live->def->noise[i];
  }
  MatrixXd r(1, 1);
  r(0, 0) = live->def->measure_sd * live->def->measure_sd;
  if (live->def->unscented) {
    auto f = UnscentedKalmanFilter::Create(fm, x0, p0, q, r);
    if (!f.ok()) return f.status();
    live->filter = std::move(*f);
  } else {
    auto f = ExtendedKalmanFilter::Create(fm, x0, p0, q, r);
    if (!f.ok()) return f.status();
    live->filter = std::move(*f);
  }
  std::lock_guard lock(mu_);
  live_[id] = std::move(live);
  return {};
}

bool LiveEstimators::Delete(const std::string& id) {
  std::lock_guard lock(mu_);
  return live_.erase(id) > 0;
}

std::optional<json::value> LiveEstimators::Definition(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = live_.find(id);
  if (it == live_.end()) return std::nullopt;
  return it->second->def->source;
}

std::vector<std::string> LiveEstimators::Ids() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, l] : live_) out.push_back(id);
  return out;
}

void LiveEstimators::Observe(const sync::Reading& r) {
  if (!r.value.is_number()) return;
  const double value = r.value.to_number<double>();
  const auto t = r.source_time.value_or(std::chrono::system_clock::now());
  std::vector<std::shared_ptr<Live>> mine;
  {
    std::lock_guard lock(mu_);
    if (live_.empty()) return;
    for (const auto& [id, l] : live_) {
      if (l->def->twin == r.twin) mine.push_back(l);
    }
  }
  for (const auto& l : mine) {
    std::lock_guard lock(l->mu);
    for (const auto& [index, path] : l->def->inputs) {
      if (path == r.element) l->inputs[index] = value;
    }
    if (r.element != l->def->measured_path) continue;
    if (l->last && t <= *l->last) {
      ++l->ignored;
      continue;
    }
    if (l->last) {
      const double dt = std::chrono::duration<double>(t - *l->last).count();
      VectorXd u = Eigen::Map<const VectorXd>(l->inputs.data(),
                                              static_cast<Eigen::Index>(l->inputs.size()));
      if (Status s = l->filter->Predict(u, dt); !s.ok()) {
        ++l->ignored;
        l->error = s.ToString();
        continue;
      }
    }
    VectorXd z(1);
    z[0] = value;
    auto innov = l->filter->Update(z);
    if (!innov.ok()) {
      ++l->ignored;
      l->error = innov.status().ToString();
      continue;
    }
    l->last = t;
    ++l->updates;
    l->nis = innov->nis;
    l->innovation = innov->residual[0];
  }
}

std::optional<json::value> LiveEstimators::Snapshot(const std::string& id) const {
  std::shared_ptr<Live> l;
  {
    std::lock_guard lock(mu_);
    auto it = live_.find(id);
    if (it == live_.end()) return std::nullopt;
    l = it->second;
  }
  std::lock_guard lock(l->mu);
  json::object estimates;
  const VectorXd& x = l->filter->mean();
  for (std::size_t i = 0; i < l->def->names.size(); ++i) {
    const auto k = static_cast<Eigen::Index>(i);
    estimates[l->def->names[i]] =
        json::object{{"value", x[k]},
                     {"stddev", l->filter->StdDev(k)},
                     {"kind", i < l->def->model_states ? "state" : "parameter"}};
  }
  json::object o{{"id", id},
                 {"twin", l->def->twin},
                 {"filter", l->def->unscented ? "ukf" : "ekf"},
                 {"measured", l->def->measured_path},
                 {"updates", l->updates},
                 {"ignored", l->ignored},
                 {"estimates", std::move(estimates)}};
  o["time"] = l->last ? json::value(core::FormatRfc3339(*l->last)) : json::value(nullptr);
  o["nis"] = l->updates > 0 ? json::value(l->nis) : json::value(nullptr);
  o["innovation"] = l->updates > 0 ? json::value(l->innovation) : json::value(nullptr);
  if (!l->error.empty()) o["lastError"] = l->error;
  return o;
}

json::object LiveEstimators::ForTwin(const std::string& twin) const {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, l] : live_) {
      if (l->def->twin == twin) ids.push_back(id);
    }
  }
  json::object out;
  for (const std::string& id : ids) {
    if (auto s = Snapshot(id)) out[id] = std::move(*s);
  }
  return out;
}

}  // namespace doppel::sim::estimation
