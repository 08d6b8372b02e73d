// Analytics over HTTP: anomaly flags (analytics/anomaly/anomaly.h).
//
//   GET /anomalies                     every open anomaly episode (twin, path, evidence) and the
//                                      detectors' totals
//   GET /digitaltwins/{id}/anomalies   one twin's open episodes, its last ended ones and per-series
//                                      counts; TWIN_NOT_FOUND (404)
//   GET /digitaltwins/{id}?includeAnomalies=true   the twin with the same object as `$anomalies`
//   /metrics                           doppel_anomaly_*, doppel_forecast_* (AnalyticsMetrics)
//
// Forecasts (analytics/forecast/service.h; needs history):
//   GET  /digitaltwins/{id}/forecast/{name}   (and /{component}/{name})   ?step=1m (bucket width)
//        &horizon=30 (steps) &history=<duration> (default 500 steps) &levels=0.8,0.95
//        &family=auto|seasonal_naive|exponential_smoothing|autoregressive|xgboost
//        &refit=true|false   the forecast with its intervals, model version and backtest report;
//        the served forecast is tracked for accuracy
//   POST /digitaltwins/{id}/forecast-models/{name}   (same parameters) trains a new version now
//   GET  /digitaltwins/{id}/forecast-models           the twin's model versions, newest first
//   GET  /forecast-accuracy?twin=                     accuracy of served forecasts per family and
//                                                     per twin (n, MAE, RMSE, bias, coverage)
// Fitting runs on the request's I/O thread (milliseconds for the cheap families, about half a
// second with XGBoost on 500 points).
#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>
#include <string>

#include "api/problem.h"
#include "api/routes.h"
#include "core/time.h"
#include "sync/element_path.h"

namespace doppel::api {

namespace json = boost::json;
using core::Status;

json::value TwinAnomaliesJson(const RouteContext& ctx, const std::string& twin) {
  std::optional<analytics::TwinAnomalies> a;
  if (ctx.anomalies != nullptr) a = ctx.anomalies->Twin(twin);
  if (!a) {
    a.emplace();
    a->twin = twin;
  }
  return a->ToJson();
}

namespace {

Status BadParameter(std::string_view name, std::string_view value, std::string_view why) {
  return Status("INVALID_PARAMETER", fmt::format("query parameter {}={}: {}", name, value, why));
}

core::Result<analytics::forecast::ForecastRequest> ForecastRequestOf(const Request& req,
                                                                     std::string path) {
  analytics::forecast::ForecastRequest r;
  r.twin = req.params[0];
  r.path = std::move(path);
  if (const std::string* v = req.Query("step")) {
    auto d = core::ParseDurationNs(*v);
    if (!d || *d <= 0) return BadParameter("step", *v, "expected a duration such as 1m or 1h");
    r.step_ns = *d;
  }
  if (const std::string* v = req.Query("history")) {
    auto d = core::ParseDurationNs(*v);
    if (!d || *d <= 0) return BadParameter("history", *v, "expected a duration such as 12h");
    r.history_ns = *d;
  }
  if (const std::string* v = req.Query("horizon")) {
    int h = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), h);
    if (ec != std::errc() || p != v->data() + v->size() || h < 1 || h > 10000) {
      return BadParameter("horizon", *v, "expected a number of steps, 1 to 10000");
    }
    r.horizon = h;
  }
  if (const std::string* v = req.Query("levels")) {
    r.levels.clear();
    std::string_view rest = *v;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      const std::string item(rest.substr(0, comma));
      double level = 0;
      auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), level);
      if (ec != std::errc() || p != item.data() + item.size() || !(level > 0 && level < 1)) {
        return BadParameter("levels", *v, "expected levels in (0, 1) such as 0.8,0.95");
      }
      r.levels.push_back(level);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    if (r.levels.empty()) return BadParameter("levels", *v, "names no level");
  }
  if (const std::string* v = req.Query("family"); v != nullptr && *v != "auto") {
    auto f = analytics::forecast::ParseFamily(*v);
    if (!f.ok()) {
      return BadParameter("family", *v,
                          "expected auto, seasonal_naive, exponential_smoothing, autoregressive "
                          "or xgboost");
    }
    r.family = *f;
  }
  if (const std::string* v = req.Query("refit")) {
    if (*v != "true" && *v != "false") return BadParameter("refit", *v, "expected true or false");
    r.refit = *v == "true";
  }
  return r;
}

// The twin exists, its model has the element, and forecasts are on: the request; else a problem.
core::Result<analytics::forecast::ForecastRequest> CheckedRequest(const RouteContext& c,
                                                                  const Request& req,
                                                                  std::string path) {
  if (!c.forecasts) {
    return Status("HISTORY_DISABLED", "forecasts need the history store, which is off");
  }
  twin::TwinPtr t = c.services.graph->FindTwin(req.params[0]);
  if (!t) return Status("TWIN_NOT_FOUND", fmt::format("no twin '{}'", req.params[0]));
  auto iface = c.services.models->Resolve(t->model);
  if (!iface.ok() || sync::FindElement(**iface, path) == nullptr) {
    return Status("HISTORY_UNKNOWN_ELEMENT",
                  fmt::format("model '{}' of twin '{}' has no Property or Telemetry '{}'", t->model,
                              t->id, path));
  }
  return ForecastRequestOf(req, std::move(path));
}

}  // namespace

std::string AnalyticsMetrics(const RouteContext& ctx) {
  std::string out;
  if (ctx.forecasts) {
    const analytics::forecast::AccuracyReport a = ctx.forecasts->Accuracy();
    out +=
        "# HELP doppel_forecast_pending Served forecasts with steps still to compare with "
        "actuals.\n"
        "# TYPE doppel_forecast_pending gauge\n";
    out += fmt::format("doppel_forecast_pending {}\n", a.pending);
    out +=
        "# HELP doppel_forecast_evaluated_total Forecast steps compared with actuals, by family.\n"
        "# TYPE doppel_forecast_evaluated_total counter\n";
    for (const auto& [f, s] : a.by_family) {
      out += fmt::format("doppel_forecast_evaluated_total{{family=\"{}\"}} {}\n", f, s.n);
    }
    out +=
        "# HELP doppel_forecast_mae Mean absolute error of served forecasts, by family.\n"
        "# TYPE doppel_forecast_mae gauge\n";
    for (const auto& [f, s] : a.by_family) {
      if (s.n > 0) {
        out += fmt::format("doppel_forecast_mae{{family=\"{}\"}} {}\n", f,
                           s.abs_sum / static_cast<double>(s.n));
      }
    }
    out +=
        "# HELP doppel_forecast_interval_coverage Share of actuals inside the served interval, "
        "by family and level.\n"
        "# TYPE doppel_forecast_interval_coverage gauge\n";
    for (const auto& [f, s] : a.by_family) {
      for (const auto& [level, n] : s.counted) {
        if (n == 0) continue;
        auto it = s.covered.find(level);
        const double in = it == s.covered.end() ? 0.0 : static_cast<double>(it->second);
        out += fmt::format("doppel_forecast_interval_coverage{{family=\"{}\",level=\"{}\"}} {}\n",
                           f, level, in / static_cast<double>(n));
      }
    }
  }
  if (ctx.anomalies == nullptr) return out;
  const analytics::AnomalyTotals t = ctx.anomalies->Totals();
  out += fmt::format(
      "# HELP doppel_anomaly_readings_total Numeric readings seen by anomaly detection.\n"
      "# TYPE doppel_anomaly_readings_total counter\n"
      "doppel_anomaly_readings_total {}\n"
      "# HELP doppel_anomaly_scored_total Readings scored (past their series' warmup).\n"
      "# TYPE doppel_anomaly_scored_total counter\n"
      "doppel_anomaly_scored_total {}\n"
      "# HELP doppel_anomaly_anomalous_readings_total Readings found anomalous.\n"
      "# TYPE doppel_anomaly_anomalous_readings_total counter\n"
      "doppel_anomaly_anomalous_readings_total {}\n"
      "# HELP doppel_anomaly_active Series flagged anomalous now.\n"
      "# TYPE doppel_anomaly_active gauge\n"
      "doppel_anomaly_active {}\n"
      "# HELP doppel_anomaly_series Series the detectors follow.\n"
      "# TYPE doppel_anomaly_series gauge\n"
      "doppel_anomaly_series {}\n"
      "# HELP doppel_anomaly_episodes_total Anomaly episodes raised, by the detector that fired.\n"
      "# TYPE doppel_anomaly_episodes_total counter\n",
      t.readings, t.scored, t.anomalous_readings, t.active, t.series);
  for (const char* d : {"robust_z", "ewma"}) {
    auto it = t.episodes_by_detector.find(d);
    out += fmt::format("doppel_anomaly_episodes_total{{detector=\"{}\"}} {}\n", d,
                       it == t.episodes_by_detector.end() ? 0 : it->second);
  }
  return out;
}

void RegisterAnalyticsRoutes(const AddRoute& add, RouteContext& ctx) {
  RouteContext* c = &ctx;
  if (ctx.services.history != nullptr) {
    analytics::forecast::ForecastServiceOptions fo;
    fo.history = ctx.services.history;
    fo.store = ctx.services.store;
    auto service = analytics::forecast::ForecastService::Open(std::move(fo));
    if (service.ok()) ctx.forecasts = std::move(*service);
  }
  auto forecast = [c](Request& req, const Respond& respond, std::string path) {
    auto r = CheckedRequest(*c, req, std::move(path));
    if (!r.ok()) return respond(Problem(r.status(), req));
    auto served = c->forecasts->Serve(*r);
    if (!served.ok()) return respond(Problem(served.status(), req));
    respond(Reply::Json(200, served->ToJson()));
  };
  add("GET", "/digitaltwins/{id}/forecast/{name}", Role::kReader,
      "Forecast a numeric Property or Telemetry with prediction intervals (?step&horizon&history"
      "&levels&family&refit)",
      "",
      [forecast](Request& req, const Respond& respond) {
        forecast(req, respond, req.params[1]);
      }, false);
  add("GET", "/digitaltwins/{id}/forecast/{component}/{name}", Role::kReader,
      "Forecast a numeric Property or Telemetry of a component", "",
      [forecast](Request& req, const Respond& respond) {
        forecast(req, respond, req.params[1] + "/" + req.params[2]);
      }, false);
  add("POST", "/digitaltwins/{id}/forecast-models/{name}", Role::kWriter,
      "Train a new forecast model version now (same parameters as the forecast)", "",
      [c](Request& req, const Respond& respond) {
        auto r = CheckedRequest(*c, req, req.params[1]);
        if (!r.ok()) return respond(Problem(r.status(), req));
        auto m = c->forecasts->Train(*r);
        if (!m.ok()) return respond(Problem(m.status(), req));
        respond(Reply::Json(201, m->Summary()));
      }, false);
  add("GET", "/digitaltwins/{id}/forecast-models", Role::kReader,
      "The twin's forecast model versions, newest first, with their backtest reports", "",
      [c](Request& req, const Respond& respond) {
        if (!c->services.graph->FindTwin(req.params[0])) {
          return respond(
              Problem(Status("TWIN_NOT_FOUND", fmt::format("no twin '{}'", req.params[0])), req));
        }
        json::array items;
        if (c->forecasts) {
          for (const auto& m : c->forecasts->Models(req.params[0])) items.push_back(m.Summary());
        }
        respond(Reply::Json(200, json::object{{"value", std::move(items)}}));
      }, false);
  add("GET", "/forecast-accuracy", Role::kReader,
      "Accuracy of served forecasts against what happened, per family and twin (?twin=)", "",
      [c](Request& req, const Respond& respond) {
        if (!c->forecasts) {
          return respond(Problem(
              Status("HISTORY_DISABLED", "forecasts need the history store, which is off"), req));
        }
        std::optional<std::string> twin;
        if (const std::string* t = req.Query("twin")) twin = *t;
        respond(Reply::Json(200, c->forecasts->Accuracy().ToJson(twin)));
      }, false);
  add("GET", "/anomalies", Role::kReader, "Open anomaly episodes of every twin, with evidence", "",
      [c](Request&, const Respond& respond) {
        json::array active;
        analytics::AnomalyTotals totals;
        if (c->anomalies != nullptr) {
          for (auto& [twin, e] : c->anomalies->Active()) {
            json::object o = e.ToJson().as_object();
            o.emplace("twin", twin);
            active.push_back(std::move(o));
          }
          totals = c->anomalies->Totals();
        }
        respond(Reply::Json(200, json::object{{"active", std::move(active)},
                                              {"readings", totals.readings},
                                              {"series", totals.series},
                                              {"episodes", totals.episodes}}));
      }, false);
  add("GET", "/digitaltwins/{id}/anomalies", Role::kReader,
      "A twin's anomaly flags: open episodes, recent ones, per-series counts", "",
      [c](Request& req, const Respond& respond) {
        if (!c->services.graph->FindTwin(req.params[0])) {
          return respond(
              Problem(Status("TWIN_NOT_FOUND", fmt::format("no twin '{}'", req.params[0])), req));
        }
        respond(Reply::Json(200, TwinAnomaliesJson(*c, req.params[0])));
      }, false);
}

}  // namespace doppel::api
