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
//   PUT  /digitaltwins/{id}/forecast-schedules/{name}  retrain on a schedule: a JSON object with
//        "every" (a duration, >= 1s) and the forecast's parameters as members ("step", "history",
//        "family" strings, "horizon" an integer, "levels" an array); answers the schedule
//   DELETE /digitaltwins/{id}/forecast-schedules/{name}  stops it (FORECAST_SCHEDULE_NOT_FOUND)
//   GET  /digitaltwins/{id}/forecast-schedules, GET /forecast-schedules   schedules with their
//        last run (time, result trained|skipped|failed, error, version) and run counts
// (every {name} route also has a /{component}/{name} form.)
// Forecasts and training run on the forecast service's worker thread, not on an I/O thread
// (milliseconds for the cheap families, about half a second with XGBoost on 500 points);
// FORECAST_BUSY (503) when its queue is full.
#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>
#include <functional>
#include <map>
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

// Where forecast options come from: the query of a forecast request, or the JSON body of a
// retraining schedule (its members as text), with the name errors use for them.
struct Options {
  std::function<const std::string*(const char*)> get;
  const char* where;  // "query parameter" or "member"
};

Status BadParameter(const Options& o, std::string_view name, std::string_view value,
                    std::string_view why) {
  return Status("INVALID_PARAMETER", fmt::format("{} {}={}: {}", o.where, name, value, why));
}

core::Result<analytics::forecast::ForecastRequest> ForecastRequestOf(const Options& o,
                                                                     std::string twin,
                                                                     std::string path) {
  analytics::forecast::ForecastRequest r;
  r.twin = std::move(twin);
  r.path = std::move(path);
  if (const std::string* v = o.get("step")) {
    auto d = core::ParseDurationNs(*v);
    if (!d || *d <= 0) return BadParameter(o, "step", *v, "expected a duration such as 1m or 1h");
    r.step_ns = *d;
  }
  if (const std::string* v = o.get("history")) {
    auto d = core::ParseDurationNs(*v);
    if (!d || *d <= 0) return BadParameter(o, "history", *v, "expected a duration such as 12h");
    r.history_ns = *d;
  }
  if (const std::string* v = o.get("horizon")) {
    int h = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), h);
    if (ec != std::errc() || p != v->data() + v->size() || h < 1 || h > 10000) {
      return BadParameter(o, "horizon", *v, "expected a number of steps, 1 to 10000");
    }
    r.horizon = h;
  }
  if (const std::string* v = o.get("levels")) {
    r.levels.clear();
    std::string_view rest = *v;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      const std::string item(rest.substr(0, comma));
      double level = 0;
      auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), level);
      if (ec != std::errc() || p != item.data() + item.size() || !(level > 0 && level < 1)) {
        return BadParameter(o, "levels", *v, "expected levels in (0, 1) such as 0.8,0.95");
      }
      r.levels.push_back(level);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    if (r.levels.empty()) return BadParameter(o, "levels", *v, "names no level");
  }
  if (const std::string* v = o.get("family"); v != nullptr && *v != "auto") {
    auto f = analytics::forecast::ParseFamily(*v);
    if (!f.ok()) {
      return BadParameter(o, "family", *v,
                          "expected auto, seasonal_naive, exponential_smoothing, autoregressive "
                          "or xgboost");
    }
    r.family = *f;
  }
  if (const std::string* v = o.get("refit")) {
    if (*v != "true" && *v != "false")
      return BadParameter(o, "refit", *v, "expected true or false");
    r.refit = *v == "true";
  }
  return r;
}

Options QueryOptions(const Request& req) {
  return {[&req](const char* name) { return req.Query(name); }, "query parameter"};
}

// The twin exists, its model has the element, and forecasts are on: the request; else a problem.
core::Result<analytics::forecast::ForecastRequest> CheckedRequest(const RouteContext& c,
                                                                  const Request& req,
                                                                  std::string path,
                                                                  const Options& options) {
  if (!c.forecasts) {
    return Status("HISTORY_DISABLED", "forecasts need the history store, which is off");
  }
  twin::TwinPtr t = c.services.graph->FindTwin(req.params[0]);
  if (!t) return twin::TwinNotFound(req.params[0]);
  auto iface = c.services.models->Resolve(t->model);
  if (!iface.ok() || sync::FindElement(**iface, path) == nullptr) {
    return Status("HISTORY_UNKNOWN_ELEMENT",
                  fmt::format("model '{}' of twin '{}' has no Property or Telemetry '{}'", t->model,
                              t->id, path));
  }
  return ForecastRequestOf(options, req.params[0], std::move(path));
}

// The members of a retraining schedule's body as text, as the query of a forecast would carry
// them: "every" (required), "step", "history", "family" (strings), "horizon" (an integer),
// "levels" (an array of numbers). Anything else is refused.
core::Result<std::map<std::string, std::string>> ScheduleMembers(const json::value& body) {
  if (!body.is_object()) return Status("INVALID_BODY", "expected a JSON object", "");
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : body.get_object()) {
    const std::string key(k);
    const std::string pointer = "/" + key;
    if (key == "every" || key == "step" || key == "history" || key == "family") {
      if (!v.is_string()) {
        return Status("INVALID_BODY", fmt::format("member '{}' must be a string", key), pointer);
      }
      out[key] = std::string(v.get_string());
    } else if (key == "horizon") {
      if (!v.is_int64() && !v.is_uint64()) {
        return Status("INVALID_BODY", "member 'horizon' must be an integer", pointer);
      }
      out[key] = json::serialize(v);
    } else if (key == "levels") {
      std::string text;
      if (!v.is_array()) return Status("INVALID_BODY", "member 'levels' must be an array", pointer);
      for (const json::value& l : v.get_array()) {
        if (!l.is_number()) {
          return Status("INVALID_BODY", "member 'levels' must hold numbers", pointer);
        }
        text += fmt::format("{}{}", text.empty() ? "" : ",", l.to_number<double>());
      }
      out[key] = text;
    } else {
      return Status("INVALID_BODY",
                    fmt::format("unknown member '{}': a schedule has every, step, history, "
                                "horizon, levels and family",
                                key),
                    pointer);
    }
  }
  if (!out.contains("every")) {
    return Status("INVALID_BODY", "member 'every' (how often to retrain, e.g. \"1h\") is missing",
                  "/every");
  }
  return out;
}

}  // namespace

std::string AnalyticsMetrics(const RouteContext& ctx) {
  std::string out;
  if (ctx.forecasts) {
    const analytics::forecast::RetrainTotals rt = ctx.forecasts->Totals();
    out += fmt::format(
        "# HELP doppel_forecast_schedules Forecast retraining schedules.\n"
        "# TYPE doppel_forecast_schedules gauge\n"
        "doppel_forecast_schedules {}\n"
        "# HELP doppel_forecast_queued Forecast and training requests waiting for the worker.\n"
        "# TYPE doppel_forecast_queued gauge\n"
        "doppel_forecast_queued {}\n"
        "# HELP doppel_forecast_scheduled_runs_total Scheduled retraining runs since start, by "
        "result.\n"
        "# TYPE doppel_forecast_scheduled_runs_total counter\n"
        "doppel_forecast_scheduled_runs_total{{result=\"trained\"}} {}\n"
        "doppel_forecast_scheduled_runs_total{{result=\"skipped\"}} {}\n"
        "doppel_forecast_scheduled_runs_total{{result=\"failed\"}} {}\n",
        rt.schedules, rt.queued, rt.trained, rt.skipped, rt.failed);
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
  // Forecasts and training run on the forecast service's worker, never on an I/O thread.
  auto on_worker = [c](Request& req, const Respond& respond, std::function<Reply()> work) {
    if (!c->forecasts->Submit([work = std::move(work), respond] { respond(work()); })) {
      respond(Problem(Status("FORECAST_BUSY",
                             "the forecast worker has too many requests queued; "
                             "try again shortly"),
                      req));
    }
  };
  auto forecast = [c, on_worker](Request& req, const Respond& respond, std::string path) {
    auto r = CheckedRequest(*c, req, std::move(path), QueryOptions(req));
    if (!r.ok()) return respond(Problem(r.status(), req));
    on_worker(req, respond, [c, r = std::move(*r), req]() {
      auto served = c->forecasts->Serve(r);
      if (!served.ok()) return Problem(served.status(), req);
      return Reply::Json(200, served->ToJson());
    });
  };
  auto train = [c, on_worker](Request& req, const Respond& respond, std::string path) {
    auto r = CheckedRequest(*c, req, std::move(path), QueryOptions(req));
    if (!r.ok()) return respond(Problem(r.status(), req));
    on_worker(req, respond, [c, r = std::move(*r), req]() {
      auto m = c->forecasts->Train(r);
      if (!m.ok()) return Problem(m.status(), req);
      return Reply::Json(201, m->Summary());
    });
  };
  // The element path of a route with {name} or {component}/{name} after the twin id.
  auto element = [](const Request& req) {
    return req.params.size() > 2 ? req.params[1] + "/" + req.params[2] : req.params[1];
  };
  for (const char* suffix : {"{name}", "{component}/{name}"}) {
    const bool in_component = std::string_view(suffix).starts_with("{component}");
    add(
        "GET", fmt::format("/digitaltwins/{{id}}/forecast/{}", suffix), Role::kReader,
        in_component ? "Forecast a numeric Property or Telemetry of a component"
                     : "Forecast a numeric Property or Telemetry with prediction intervals "
                       "(?step&horizon&history&levels&family&refit)",
        "",
        [forecast, element](Request& req, const Respond& respond) {
          forecast(req, respond, element(req));
        },
        false);
    add(
        "POST", fmt::format("/digitaltwins/{{id}}/forecast-models/{}", suffix), Role::kWriter,
        "Train a new forecast model version now (same parameters as the forecast)", "",
        [train, element](Request& req, const Respond& respond) {
          train(req, respond, element(req));
        },
        false);
    add(
        "PUT", fmt::format("/digitaltwins/{{id}}/forecast-schedules/{}", suffix), Role::kWriter,
        "Retrain the element's forecast model on a schedule ({\"every\": \"1h\"} plus the "
        "forecast's parameters as members)",
        "json",
        [c, element](Request& req, const Respond& respond) {
          auto body = JsonBody(req, *c, "a JSON object such as {\"every\": \"1h\"}");
          if (!body.ok()) return respond(Problem(body.status(), req));
          auto members = ScheduleMembers(*body);
          if (!members.ok()) return respond(Problem(members.status(), req));
          const Options options{[&m = *members](const char* name) -> const std::string* {
                                  auto it = m.find(name);
                                  return it == m.end() ? nullptr : &it->second;
                                },
                                "member"};
          auto r = CheckedRequest(*c, req, element(req), options);
          if (!r.ok()) return respond(Problem(r.status(), req));
          auto every = core::ParseDurationNs(members->at("every"));
          if (!every || *every <= 0) {
            return respond(Problem(BadParameter(options, "every", members->at("every"),
                                                "expected a duration such as 1h"),
                                   req));
          }
          auto s = c->forecasts->SetSchedule(*r, std::chrono::nanoseconds(*every));
          if (!s.ok()) return respond(Problem(s.status(), req));
          respond(Reply::Json(200, s->ToJson()));
        },
        false);
    add(
        "DELETE", fmt::format("/digitaltwins/{{id}}/forecast-schedules/{}", suffix), Role::kWriter,
        "Stop retraining the element's forecast model on a schedule", "",
        [c, element](Request& req, const Respond& respond) {
          if (!c->forecasts) {
            return respond(Problem(
                Status("HISTORY_DISABLED", "forecasts need the history store, which is off"), req));
          }
          if (Status s = c->forecasts->DeleteSchedule(req.params[0], element(req)); !s.ok()) {
            return respond(Problem(s, req));
          }
          respond(Reply::Empty(204));
        },
        false);
  }
  auto schedules = [c](Request& req, const Respond& respond, std::optional<std::string> twin) {
    if (twin && !c->services.graph->FindTwin(*twin)) {
      return respond(Problem(twin::TwinNotFound(*twin), req));
    }
    json::array items;
    if (c->forecasts) {
      for (const auto& s : c->forecasts->Schedules(twin)) items.push_back(s.ToJson());
    }
    respond(Reply::Json(200, json::object{{"value", std::move(items)}}));
  };
  add(
      "GET", "/digitaltwins/{id}/forecast-schedules", Role::kReader,
      "The twin's forecast retraining schedules with their last run", "",
      [schedules](Request& req, const Respond& respond) { schedules(req, respond, req.params[0]); },
      false);
  add(
      "GET", "/forecast-schedules", Role::kReader,
      "Every forecast retraining schedule with its last run", "",
      [schedules](Request& req, const Respond& respond) { schedules(req, respond, std::nullopt); },
      false);
  add(
      "GET", "/digitaltwins/{id}/forecast-models", Role::kReader,
      "The twin's forecast model versions, newest first, with their backtest reports", "",
      [c](Request& req, const Respond& respond) {
        if (!c->services.graph->FindTwin(req.params[0])) {
          return respond(Problem(twin::TwinNotFound(req.params[0]), req));
        }
        json::array items;
        if (c->forecasts) {
          for (const auto& m : c->forecasts->Models(req.params[0])) items.push_back(m.Summary());
        }
        respond(Reply::Json(200, json::object{{"value", std::move(items)}}));
      },
      false);
  add(
      "GET", "/forecast-accuracy", Role::kReader,
      "Accuracy of served forecasts against what happened, per family and twin (?twin=)", "",
      [c](Request& req, const Respond& respond) {
        if (!c->forecasts) {
          return respond(Problem(
              Status("HISTORY_DISABLED", "forecasts need the history store, which is off"), req));
        }
        std::optional<std::string> twin;
        if (const std::string* t = req.Query("twin")) twin = *t;
        respond(Reply::Json(200, c->forecasts->Accuracy().ToJson(twin)));
      },
      false);
  add(
      "GET", "/anomalies", Role::kReader, "Open anomaly episodes of every twin, with evidence", "",
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
      },
      false);
  add("GET", "/digitaltwins/{id}/anomalies", Role::kReader,
      "A twin's anomaly flags: open episodes, recent ones, per-series counts", "",
      TwinJsonHandler(ctx, TwinAnomaliesJson), false);
}

}  // namespace doppel::api
