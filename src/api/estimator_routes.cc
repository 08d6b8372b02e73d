// Live state estimation over HTTP (sim/estimation/live.h): Kalman filters that follow a twin's
// telemetry, their estimates published as the twin's virtual properties.
//
//   PUT    /estimators/{id}               define (or replace: it starts again) an estimator;
//                                         checked against its twin's model before it runs
//   GET    /estimators                    every estimator's current estimates
//   GET    /estimators/{id}               its definition and current estimates
//   DELETE /estimators/{id}
//   GET    /digitaltwins/{id}/estimates   the twin's estimators' estimates; also as `$estimates`
//                                         in GET /digitaltwins/{id}?includeEstimates=true
// Definitions are stored (`es/<id>`) and started again when the server starts; the filters'
// state is not (an estimator restarts from its definition).
// Errors: ESTIMATOR_INVALID (400, with the pointer of the member), the model's SIM_* codes
// (pointers under /model), TWIN_NOT_FOUND, ESTIMATOR_NOT_FOUND (404).
#include <fmt/format.h>

#include <boost/json.hpp>
#include <string>

#include "api/problem.h"
#include "api/routes.h"
#include "store/store.h"
#include "sync/element_path.h"

namespace doppel::api {

namespace json = boost::json;
using core::Status;

namespace {

// The estimator's twin exists and its measured and input elements are numeric elements of the
// twin's model.
Status CheckAgainstTwin(const RouteContext& c, const json::value& def) {
  const json::object& o = def.as_object();
  const std::string twin(o.at("twin").as_string());
  twin::TwinPtr t = c.services.graph->FindTwin(twin);
  if (!t) return Status("TWIN_NOT_FOUND", fmt::format("no twin '{}'", twin), "/twin");
  auto iface = c.services.models->Resolve(t->model);
  if (!iface.ok()) return iface.status();
  auto numeric = [&](std::string_view path, const std::string& pointer) -> Status {
    const model::Content* e = sync::FindElement(**iface, path);
    if (e == nullptr) {
      return Status("ESTIMATOR_INVALID",
                    fmt::format("model '{}' of twin '{}' has no Property or Telemetry '{}'",
                                t->model, twin, path),
                    pointer);
    }
    if (e->schema.schema == nullptr || !model::IsNumeric(e->schema.schema->kind)) {
      return Status("ESTIMATOR_INVALID",
                    fmt::format("'{}' of model '{}' is not numeric", path, t->model), pointer);
    }
    return {};
  };
  if (Status s = numeric(o.at("measurement").at("path").as_string(), "/measurement/path");
      !s.ok()) {
    return s;
  }
  if (const json::value* in = o.if_contains("inputs")) {
    for (const auto& [k, v] : in->as_object()) {
      if (Status s = numeric(v.as_string(), "/inputs/" + std::string(k)); !s.ok()) return s;
    }
  }
  return {};
}

Status NotFound(const std::string& id) {
  return Status("ESTIMATOR_NOT_FOUND", fmt::format("no estimator '{}'", id));
}

}  // namespace

json::value TwinEstimatesJson(const RouteContext& ctx, const std::string& twin) {
  if (ctx.estimators == nullptr) return json::object{};
  return ctx.estimators->ForTwin(twin);
}

void RegisterEstimatorRoutes(const AddRoute& add, RouteContext& ctx) {
  RouteContext* c = &ctx;
  if (ctx.estimators != nullptr && ctx.services.store != nullptr) {
    std::vector<std::pair<std::string, std::string>> stored;
    (void)ctx.services.store->Scan("es/", [&](std::string_view k, std::string_view v) {
      stored.emplace_back(std::string(k.substr(3)), std::string(v));
    });
    for (const auto& [id, text] : stored) {
      boost::system::error_code ec;
      json::value def = json::parse(text, ec);
      if (!ec) (void)ctx.estimators->Put(id, def);
    }
  }
  auto disabled = [c](const Request& req, const Respond& respond) {
    if (c->estimators != nullptr) return false;
    respond(Problem(Status("ESTIMATOR_DISABLED", "this server runs no live estimators"), req));
    return true;
  };
  add(
      "PUT", "/estimators/{id}", Role::kWriter,
      "Define a live Kalman filter on a twin's telemetry (docs/api.md, sim/estimation/live.h)",
      "json",
      [c, disabled](Request& req, const Respond& respond) {
        if (disabled(req, respond)) return;
        const std::string& id = req.params[0];
        auto body = JsonBody(req, *c, "an estimator definition");
        if (!body.ok()) return respond(Problem(body.status(), req));
        auto def = sim::estimation::ParseEstimator(*body);
        if (!def.ok()) return respond(Problem(def.status(), req));
        if (Status s = CheckAgainstTwin(*c, *body); !s.ok()) return respond(Problem(s, req));
        if (c->services.store != nullptr) {
          if (Status s = c->services.store->Put("es/" + id, json::serialize(*body)); !s.ok()) {
            return respond(Problem(s, req));
          }
        }
        if (Status s = c->estimators->Put(id, *body); !s.ok()) {
          if (c->services.store != nullptr) (void)c->services.store->Delete("es/" + id);
          return respond(Problem(s, req));
        }
        respond(Reply::Json(200, *c->estimators->Snapshot(id)));
      },
      false);
  add(
      "GET", "/estimators", Role::kReader, "Every live estimator's current estimates", "",
      [c](Request&, const Respond& respond) {
        json::array out;
        if (c->estimators != nullptr) {
          for (const std::string& id : c->estimators->Ids()) {
            if (auto s = c->estimators->Snapshot(id)) out.push_back(std::move(*s));
          }
        }
        respond(Reply::Json(200, json::object{{"value", std::move(out)}}));
      },
      false);
  add(
      "GET", "/estimators/{id}", Role::kReader, "A live estimator: definition and estimates", "",
      [c, disabled](Request& req, const Respond& respond) {
        if (disabled(req, respond)) return;
        auto def = c->estimators->Definition(req.params[0]);
        auto snap = c->estimators->Snapshot(req.params[0]);
        if (!def || !snap) return respond(Problem(NotFound(req.params[0]), req));
        json::object o = snap->as_object();
        o["definition"] = std::move(*def);
        respond(Reply::Json(200, o));
      },
      false);
  add(
      "DELETE", "/estimators/{id}", Role::kWriter, "Stop and delete a live estimator", "",
      [c, disabled](Request& req, const Respond& respond) {
        if (disabled(req, respond)) return;
        if (!c->estimators->Delete(req.params[0])) {
          return respond(Problem(NotFound(req.params[0]), req));
        }
        if (c->services.store != nullptr) (void)c->services.store->Delete("es/" + req.params[0]);
        respond(Reply::Empty(204));
      },
      false);
  add("GET", "/digitaltwins/{id}/estimates", Role::kReader,
      "The twin's estimated states and parameters with their standard deviations", "",
      TwinJsonHandler(ctx, TwinEstimatesJson), false);
}

}  // namespace doppel::api
