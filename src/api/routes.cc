#include "api/routes.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>

#include "analytics/rul/live.h"
#include "api/problem.h"
#include "core/json.h"
#include "core/time.h"
#include "model/model_json.h"
#include "store/store.h"
#include "sync/line_protocol.h"
#include "sync/write_history.h"
#include "tsdb/history.h"
#include "twin/query/query.h"
#include "twin/twin_document.h"

namespace doppel::api {

namespace json = boost::json;
using core::Status;

Reply Problem(const Status& s, const Request& req) {
  unsigned status = HttpStatusFor(s.code());
  Reply r = Reply::Json(status, ProblemJson(s, status, req.path));
  r.content_type = "application/problem+json";
  return r;
}

core::Result<json::value> JsonBody(const Request& req, const RouteContext& ctx,
                                   std::string_view what, std::optional<json::value> if_empty) {
  if (req.body.empty()) {
    if (if_empty) return std::move(*if_empty);
    return Status("INVALID_BODY", fmt::format("the request needs {}", what));
  }
  core::JsonLimits limits;
  limits.max_bytes = ctx.options->max_body_bytes;
  limits.max_depth = ctx.options->max_json_depth;
  auto v = core::ParseJson(req.body, limits);
  if (!v.ok()) {
    return Status(v.status().code() == "JSON_TOO_LARGE" ? "PAYLOAD_TOO_LARGE" : v.status().code(),
                  "the request body is not valid JSON: " + v.status().message());
  }
  return std::move(*v);
}

std::function<void(Request&, const Respond&)> TwinJsonHandler(
    const RouteContext& ctx,
    json::value (*json)(const RouteContext& ctx, const std::string& twin)) {
  return [c = &ctx, json](Request& req, const Respond& respond) {
    if (!c->services.graph->FindTwin(req.params[0])) {
      return respond(Problem(twin::TwinNotFound(req.params[0]), req));
    }
    respond(Reply::Json(200, json(*c, req.params[0])));
  };
}

namespace {

// JsonBody, answering the problem itself; nullopt after it did.
std::optional<json::value> Body(const Request& req, const RouteContext& ctx,
                                const Respond& respond) {
  auto v = JsonBody(req, ctx);
  if (!v.ok()) {
    respond(Problem(v.status(), req));
    return std::nullopt;
  }
  return std::move(*v);
}

twin::Preconditions PreconditionsOf(const Request& req) {
  twin::Preconditions p;
  if (const auto* m = req.Header("if-match")) p.if_match = *m;
  if (const auto* n = req.Header("if-none-match")) p.if_none_match_any = *n == "*";
  return p;
}

Reply TwinReply(unsigned status, const twin::TwinPtr& t) {
  Reply r = Reply::Json(status, t->doc);
  r.headers.emplace_back("ETag", t->etag);
  return r;
}

Reply RelationshipReply(unsigned status, const twin::RelationshipPtr& rel) {
  Reply r = Reply::Json(status, rel->doc);
  r.headers.emplace_back("ETag", rel->etag);
  return r;
}

json::value ModelJson(const model::ModelInfo& m, bool include_definition) {
  json::object o;
  o["id"] = m.id;
  const auto& info = m.iface->info;
  json::object names, descriptions;
  for (const auto& [lang, text] : info.display_name.values) names[lang] = text;
  for (const auto& [lang, text] : info.description.values) descriptions[lang] = text;
  o["displayName"] = std::move(names);
  o["description"] = std::move(descriptions);
  o["decommissioned"] = m.decommissioned;
  o["uploadTime"] = core::FormatRfc3339(m.upload_time);
  if (include_definition && m.iface->source) o["model"] = *m.iface->source;
  return o;
}

json::value Listing(json::array items) {
  return json::object{{"value", std::move(items)}, {"nextLink", nullptr}};
}

// True if an NDJSON import has a {"Section": "Models"} header, however it is spelled. Section
// headers are short, so only short lines are parsed.
bool ImportDeclaresModels(std::string_view body) {
  std::size_t start = 0;
  while (start < body.size()) {
    std::size_t end = body.find('\n', start);
    if (end == std::string_view::npos) end = body.size();
    std::string_view line = body.substr(start, end - start);
    start = end + 1;
    if (line.size() > 256 || line.find('{') == std::string_view::npos) continue;
    auto v = core::ParseJson(line);
    if (!v.ok() || !v->is_object()) continue;
    const auto* sec = v->get_object().if_contains("Section");
    if (sec != nullptr && sec->is_string() && sec->get_string() == "Models") return true;
  }
  return false;
}

std::string Extra(const RouteContext& ctx) {
  auto st = ctx.services.graph->stats();
  std::string out;
  auto gauge = [&](const char* name, const char* help, double v, const char* type = "gauge") {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, v);
  };
  gauge("doppel_twins", "Twins in the graph.", static_cast<double>(st.twins));
  gauge("doppel_relationships", "Relationships in the graph.",
        static_cast<double>(st.relationships));
  gauge("doppel_models", "Models in the repository.",
        static_cast<double>(ctx.services.models->size()));
  gauge("doppel_writes_total", "Acknowledged twin/relationship writes.",
        static_cast<double>(st.writes), "counter");
  gauge("doppel_failed_writes_total", "Rejected or failed writes.",
        static_cast<double>(st.failed_writes), "counter");
  gauge("doppel_group_commits_total", "Durable group commits (one fsync each).",
        static_cast<double>(st.commits), "counter");
  gauge("doppel_event_subscribers", "Open change-feed subscriptions.",
        static_cast<double>(ctx.services.graph->feed().subscribers()));
  if (ctx.services.store != nullptr) {
    gauge("doppel_store_bytes", "Bytes of the on-disk store (SST files and WAL).",
          static_cast<double>(ctx.services.store->ApproximateBytes()));
  }
  if (ctx.ingest) {
    auto in = ctx.ingest->Stats();
    out +=
        "# HELP doppel_ingest_readings_total Readings received by ingest, by outcome.\n"
        "# TYPE doppel_ingest_readings_total counter\n";
    for (const auto& [outcome, n] : {std::pair<const char*, std::uint64_t>{"applied", in.applied},
                                     {"duplicate", in.duplicates},
                                     {"out_of_order", in.out_of_order},
                                     {"superseded", in.superseded},
                                     {"telemetry", in.telemetry}}) {
      out += fmt::format("doppel_ingest_readings_total{{outcome=\"{}\"}} {}\n", outcome, n);
    }
    out +=
        "# HELP doppel_ingest_rejected_total Readings rejected by ingest, by error code.\n"
        "# TYPE doppel_ingest_rejected_total counter\n";
    for (const auto& [code, n] : in.rejected) {
      out += fmt::format("doppel_ingest_rejected_total{{code=\"{}\"}} {}\n", code, n);
    }
  }
  out += HistoryMetrics(ctx);
  out += MappingMetrics(ctx);
  out += DeviceMetrics(ctx);
  out += SyncMetrics(ctx);
  out += ScenarioMetrics(ctx);
  out += AnalyticsMetrics(ctx);
  return out;
}

// Answers a committed twin write (`reply`) once history holds the Property values it set
// (sync/write_history.h). History refusing them does not undo the write, which committed: the
// answer still says what the write did, with a Doppel-History-Error header saying why its values
// are missing from history.
void AnswerAfterHistory(const RouteContext& c, const twin::TwinPtr& t, Reply reply,
                        const Respond& respond) {
  if (c.services.history == nullptr || c.services.models == nullptr) {
    return respond(std::move(reply));
  }
  sync::RecordTwinWrite(*c.services.history, *c.services.models, t,
                        [reply = std::move(reply), respond](const Status& s) mutable {
                          if (!s.ok()) {
                            reply.headers.emplace_back("Doppel-History-Error", s.ToString());
                          }
                          respond(std::move(reply));
                        });
}

}  // namespace

void RegisterRoutes(Router& router, RouteContext& ctx) {
  RouteContext* c = &ctx;
  ctx.imports = std::make_unique<ImportJobs>(*ctx.services.models, *ctx.services.graph);
  sync::IngestOptions ingest_options;
  ingest_options.history = ctx.services.history;
  ctx.sync = ctx.services.sync;
  if (ctx.sync == nullptr) {
    sync::SyncOptions sync_options;
    sync_options.graph = ctx.services.graph;
    ctx.owned_sync = std::make_unique<sync::SyncTracker>(sync_options);
    ctx.owned_sync->Start();
    ctx.sync = ctx.owned_sync.get();
  }
  ingest_options.sync = ctx.sync;
  ctx.anomalies = ctx.services.anomalies;
  ctx.estimators = ctx.services.estimators;
  ctx.ingest = ctx.services.ingest;
  if (ctx.ingest == nullptr) {
    if (ctx.estimators == nullptr) {
      ctx.owned_estimators = std::make_unique<sim::estimation::LiveEstimators>();
      ctx.estimators = ctx.owned_estimators.get();
    }
    if (ctx.anomalies == nullptr) {
      ctx.owned_anomalies =
          std::make_unique<analytics::AnomalyMonitor>(analytics::AnomalyMonitorOptions{
              .graph = ctx.services.graph, .detector = {}, .recent = 20});
      ctx.anomalies = ctx.owned_anomalies.get();
    }
    ingest_options.observe = [anomalies = analytics::IngestObserver(*ctx.anomalies),
                              estimators = ctx.estimators](const sync::Reading& r) {
      anomalies(r);
      estimators->Observe(r);
    };
    ctx.owned_ingest =
        std::make_unique<sync::Ingestor>(*ctx.services.models, *ctx.services.graph, ingest_options);
    ctx.ingest = ctx.owned_ingest.get();
  }
  const Router* rt = &router;

  auto add = [&](std::string method, std::string path, Role role, std::string summary,
                 std::string body, std::function<void(Request&, const Respond&)> h,
                 bool public_route = false) {
    Route r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.min_role = role;
    r.summary = std::move(summary);
    r.request_body = std::move(body);
    r.handler = std::move(h);
    r.public_route = public_route;
    if (r.method == "GET" || r.path == "/query" || r.path == "/history/query") {
      r.pipelining = Pipelining::kSafe;
    } else if (r.path == "/digitaltwins/{id}" ||
               r.path == "/digitaltwins/{id}/components/{component}") {
      r.pipelining = Pipelining::kTwinWrite;
    }
    router.Add(std::move(r));
  };
  RegisterHistoryRoutes(add, ctx);
  RegisterMappingRoutes(add, ctx);
  RegisterDeviceRoutes(add, ctx);
  RegisterSyncRoutes(add, ctx);
  RegisterScenarioRoutes(add, ctx);
  RegisterAnalyticsRoutes(add, ctx);
  RegisterEstimatorRoutes(add, ctx);
  RegisterRulRoutes(add, ctx);
  RegisterAssetRoutes(add, ctx);

  // --- service -------------------------------------------------------------------------------
  add(
      "GET", "/healthz", Role::kReader, "Liveness and basic counts", "",
      [c](Request&, const Respond& respond) {
        auto st = c->services.graph->stats();
        respond(Reply::Json(200, json::object{{"status", "ok"},
                                              {"twins", st.twins},
                                              {"relationships", st.relationships},
                                              {"models", c->services.models->size()}}));
      },
      /*public_route=*/true);
  add("GET", "/metrics", Role::kReader, "Prometheus metrics", "",
      [c](Request&, const Respond& respond) {
        Reply r;
        r.content_type = "text/plain; version=0.0.4";
        r.body = c->metrics->Render(Extra(*c));
        respond(std::move(r));
      });
  add(
      "GET", "/openapi.json", Role::kReader, "This API's OpenAPI 3.1 description", "",
      [rt](Request&, const Respond& respond) { respond(Reply::Json(200, OpenApiDocument(*rt))); },
      /*public_route=*/true);

  // --- models --------------------------------------------------------------------------------
  add("GET", "/models", Role::kReader,
      "List models (?dependenciesFor=<dtmi>&includeModelDefinition=true)", "",
      [c](Request& req, const Respond& respond) {
        std::vector<std::string> roots;
        if (const auto* d = req.Query("dependenciesFor")) {
          std::size_t start = 0;
          while (start <= d->size()) {
            std::size_t end = d->find(',', start);
            if (end == std::string::npos) end = d->size();
            if (end > start) roots.push_back(d->substr(start, end - start));
            start = end + 1;
          }
        }
        bool include = false;
        if (const auto* i = req.Query("includeModelDefinition")) include = *i == "true";
        auto list = c->services.models->List(roots);
        if (!list.ok()) return respond(Problem(list.status(), req));
        json::array items;
        for (const auto& m : *list) items.push_back(ModelJson(m, include));
        respond(Reply::Json(200, Listing(std::move(items))));
      });
  add("POST", "/models", Role::kAdmin, "Upload models (a JSON array of DTDL Interfaces)", "json",
      [c](Request& req, const Respond& respond) {
        auto body = Body(req, *c, respond);
        if (!body) return;
        if (!body->is_array()) {
          return respond(Problem(
              Status("INVALID_BODY", "POST /models takes a JSON array of DTDL Interfaces"), req));
        }
        std::vector<model::SourceDocument> docs;
        const auto& arr = body->get_array();
        for (std::size_t i = 0; i < arr.size(); ++i) {
          docs.push_back({fmt::format("/{}", i), json::serialize(arr[i])});
        }
        auto r = c->services.models->Add(docs);
        if (!r.ok()) {
          std::vector<Status> details;
          bool only_duplicates = true;
          for (const auto& d : r.diagnostics) {
            if (d.severity != model::Severity::kError) continue;
            only_duplicates &= d.code == "DUPLICATE_ID";
            std::string ptr = d.document.starts_with("/") ? d.document + d.pointer : d.pointer;
            details.emplace_back(d.code, d.message, ptr);
          }
          Status first = details.front();
          Status s(only_duplicates ? "MODEL_ALREADY_EXISTS" : "INVALID_MODEL",
                   fmt::format("{} problem(s) in the models; first: {}", details.size(),
                               first.message()),
                   first.pointer());
          return respond(Problem(std::move(s).WithDetails(std::move(details)), req));
        }
        json::array items;
        for (const auto& id : r.added) {
          if (auto m = c->services.models->Get(id)) items.push_back(ModelJson(*m, false));
        }
        respond(Reply::Json(201, items));
      });
  add("GET", "/models/{id}", Role::kReader, "Get a model (?includeModelDefinition=true)", "",
      [c](Request& req, const Respond& respond) {
        auto m = c->services.models->Get(req.params[0]);
        if (!m) {
          return respond(
              Problem(Status("MODEL_NOT_FOUND", fmt::format("no model '{}'", req.params[0])), req));
        }
        bool include = true;
        if (const auto* i = req.Query("includeModelDefinition")) include = *i != "false";
        json::value v = ModelJson(*m, include);
        if (const auto* r = req.Query("resolved"); r && *r == "true") {
          v.get_object()["resolved"] = model::ResolvedToJson(*m->resolved);
        }
        respond(Reply::Json(200, v));
      });
  add("PATCH", "/models/{id}", Role::kAdmin,
      "Decommission a model: [{\"op\":\"replace\",\"path\":\"/decommissioned\",\"value\":true}]",
      "json-patch", [c](Request& req, const Respond& respond) {
        auto body = Body(req, *c, respond);
        if (!body) return;
        bool ok = body->is_array() && body->get_array().size() == 1;
        if (ok) {
          const auto& op = body->get_array()[0];
          ok = op.is_object() && op.get_object().if_contains("op") && op.at("op") == "replace" &&
               op.get_object().if_contains("path") && op.at("path") == "/decommissioned" &&
               op.get_object().if_contains("value") && op.at("value") == true;
        }
        if (!ok) {
          return respond(Problem(Status("INVALID_BODY",
                                        "the only model update is [{\"op\": \"replace\", "
                                        "\"path\": \"/decommissioned\", \"value\": true}]"),
                                 req));
        }
        Status s = c->services.models->Decommission(req.params[0]);
        if (!s.ok()) return respond(Problem(s, req));
        respond(Reply::Empty(204));
      });
  add("DELETE", "/models/{id}", Role::kAdmin, "Delete a model nothing depends on", "",
      [c](Request& req, const Respond& respond) {
        Status s = c->services.models->Delete(req.params[0]);
        if (!s.ok()) return respond(Problem(s, req));
        DeleteScene(*c, "model", req.params[0]);
        respond(Reply::Empty(204));
      });

  // --- twins ---------------------------------------------------------------------------------
  add("GET", "/digitaltwins/{id}", Role::kReader,
      "Get a twin (?includeSync=true adds its sync quality as $sync, ?includeAnomalies=true its "
      "anomaly flags as $anomalies, ?includeEstimates=true its live estimates as $estimates)",
      "", [c](Request& req, const Respond& respond) {
        auto t = c->services.graph->FindTwin(req.params[0]);
        if (!t) {
          return respond(Problem(twin::TwinNotFound(req.params[0]), req));
        }
        const std::string* include_sync = req.Query("includeSync");
        const bool with_sync = include_sync != nullptr && *include_sync == "true";
        const std::string* include_anomalies = req.Query("includeAnomalies");
        const bool with_anomalies = include_anomalies != nullptr && *include_anomalies == "true";
        const std::string* include_estimates = req.Query("includeEstimates");
        const bool with_estimates = include_estimates != nullptr && *include_estimates == "true";
        auto decorated = DecoratedTwin(*c, *t);  // desired values' sync state
        if (!with_sync && !with_anomalies && !with_estimates && !decorated) {
          return respond(TwinReply(200, t));
        }
        json::object doc;
        if (decorated) {
          doc = std::move(*decorated);
        } else {
          doc = t->doc;
        }
        if (with_sync) doc["$sync"] = TwinSyncJson(*c, t->id);
        if (with_anomalies) doc["$anomalies"] = TwinAnomaliesJson(*c, t->id);
        if (with_estimates) doc["$estimates"] = TwinEstimatesJson(*c, t->id);
        Reply r = Reply::Json(200, doc);
        r.headers.emplace_back("ETag", t->etag);
        respond(std::move(r));
      });
  add("PUT", "/digitaltwins/{id}", Role::kWriter,
      "Create or replace a twin (If-None-Match: * to only create; If-Match)", "json",
      [c](Request& req, const Respond& respond) {
        auto body = Body(req, *c, respond);
        if (!body) return;
        c->services.graph->PutTwin(req.params[0], std::move(*body), PreconditionsOf(req),
                                   [c, respond, req](core::Result<twin::TwinPtr> r) {
                                     if (!r.ok()) return respond(Problem(r.status(), req));
                                     AnswerAfterHistory(*c, *r, TwinReply(200, *r), respond);
                                   });
      });
  add("PATCH", "/digitaltwins/{id}", Role::kWriter, "Update a twin with a JSON Patch (RFC 6902)",
      "json-patch", [c](Request& req, const Respond& respond) {
        auto body = Body(req, *c, respond);
        if (!body) return;
        c->services.graph->PatchTwin(req.params[0], std::move(*body), PreconditionsOf(req),
                                     [c, respond, req](core::Result<twin::TwinPtr> r) {
                                       if (!r.ok()) return respond(Problem(r.status(), req));
                                       Reply rep = Reply::Empty(204);
                                       rep.headers.emplace_back("ETag", (*r)->etag);
                                       AnswerAfterHistory(*c, *r, std::move(rep), respond);
                                     });
      });
  add("DELETE", "/digitaltwins/{id}", Role::kWriter,
      "Delete a twin that has no relationships (If-Match)", "",
      [c](Request& req, const Respond& respond) {
        c->services.graph->DeleteTwin(
            req.params[0], PreconditionsOf(req), [c, respond, req](const Status& s) {
              if (s.ok() && c->services.history != nullptr && !c->options->keep_history) {
                (void)c->services.history->DeleteTwin(req.params[0]);
              }
              if (s.ok() && c->sync != nullptr) c->sync->Forget(req.params[0]);
              if (s.ok() && c->anomalies != nullptr) c->anomalies->Forget(req.params[0]);
              if (s.ok() && c->forecasts) c->forecasts->Forget(req.params[0]);
              if (s.ok() && c->services.rul != nullptr) c->services.rul->Forget(req.params[0]);
              if (s.ok()) DeleteScene(*c, "twin", req.params[0]);
              respond(s.ok() ? Reply::Empty(204) : Problem(s, req));
            });
      });
  add("GET", "/digitaltwins/{id}/components/{component}", Role::kReader, "Get a component", "",
      [c](Request& req, const Respond& respond) {
        auto t = c->services.graph->FindTwin(req.params[0]);
        if (!t) {
          return respond(Problem(twin::TwinNotFound(req.params[0]), req));
        }
        auto model = c->services.models->Resolve(t->model);
        const model::ResolvedContent* rc = model.ok() ? (*model)->Find(req.params[1]) : nullptr;
        if (rc == nullptr || rc->content->kind != model::ContentKind::kComponent) {
          return respond(Problem(
              Status("COMPONENT_NOT_FOUND", fmt::format("twin '{}' ({}) has no component '{}'",
                                                        t->id, t->model, req.params[1])),
              req));
        }
        const json::value* comp = t->doc.if_contains(req.params[1]);
        Reply r = Reply::Json(
            200, comp ? *comp : json::value(json::object{{"$metadata", json::object{}}}));
        r.headers.emplace_back("ETag", t->etag);
        respond(std::move(r));
      });
  add("PATCH", "/digitaltwins/{id}/components/{component}", Role::kWriter,
      "Update a component with a JSON Patch (paths relative to the component)", "json-patch",
      [c](Request& req, const Respond& respond) {
        auto body = Body(req, *c, respond);
        if (!body) return;
        c->services.graph->PatchComponent(req.params[0], req.params[1], std::move(*body),
                                          PreconditionsOf(req),
                                          [c, respond, req](core::Result<twin::TwinPtr> r) {
                                            if (!r.ok()) return respond(Problem(r.status(), req));
                                            Reply rep = Reply::Empty(204);
                                            rep.headers.emplace_back("ETag", (*r)->etag);
                                            AnswerAfterHistory(*c, *r, std::move(rep), respond);
                                          });
      });

  // --- relationships -------------------------------------------------------------------------
  add("GET", "/digitaltwins/{id}/relationships", Role::kReader,
      "List outgoing relationships (?relationshipName=)", "",
      [c](Request& req, const Respond& respond) {
        if (!c->services.graph->FindTwin(req.params[0])) {
          return respond(Problem(twin::TwinNotFound(req.params[0]), req));
        }
        std::string name;
        if (const auto* n = req.Query("relationshipName")) name = *n;
        json::array items;
        for (const auto& r : c->services.graph->Outgoing(req.params[0], name)) {
          items.push_back(r->doc);
        }
        respond(Reply::Json(200, Listing(std::move(items))));
      });
  add("GET", "/digitaltwins/{id}/incomingrelationships", Role::kReader,
      "List incoming relationships", "", [c](Request& req, const Respond& respond) {
        if (!c->services.graph->FindTwin(req.params[0])) {
          return respond(Problem(twin::TwinNotFound(req.params[0]), req));
        }
        json::array items;
        for (const auto& r : c->services.graph->Incoming(req.params[0])) {
          items.push_back(json::object{
              {"$relationshipId", r->id},
              {"$sourceId", r->source},
              {"$relationshipName", r->name},
              {"$relationshipLink", fmt::format("/digitaltwins/{}/relationships/{}",
                                                PercentEncode(r->source), PercentEncode(r->id))}});
        }
        respond(Reply::Json(200, Listing(std::move(items))));
      });
  add("GET", "/digitaltwins/{id}/relationships/{relationshipId}", Role::kReader,
      "Get a relationship", "", [c](Request& req, const Respond& respond) {
        auto r = c->services.graph->FindRelationship(req.params[0], req.params[1]);
        if (!r) {
          return respond(Problem(
              Status("RELATIONSHIP_NOT_FOUND", fmt::format("twin '{}' has no relationship '{}'",
                                                           req.params[0], req.params[1])),
              req));
        }
        respond(RelationshipReply(200, r));
      });
  add("PUT", "/digitaltwins/{id}/relationships/{relationshipId}", Role::kWriter,
      "Create or replace a relationship", "json", [c](Request& req, const Respond& respond) {
        auto body = Body(req, *c, respond);
        if (!body) return;
        c->services.graph->PutRelationship(
            req.params[0], req.params[1], std::move(*body), PreconditionsOf(req),
            [respond, req](core::Result<twin::RelationshipPtr> r) {
              respond(r.ok() ? RelationshipReply(200, *r) : Problem(r.status(), req));
            });
      });
  add("PATCH", "/digitaltwins/{id}/relationships/{relationshipId}", Role::kWriter,
      "Update a relationship's properties with a JSON Patch", "json-patch",
      [c](Request& req, const Respond& respond) {
        auto body = Body(req, *c, respond);
        if (!body) return;
        c->services.graph->PatchRelationship(req.params[0], req.params[1], std::move(*body),
                                             PreconditionsOf(req),
                                             [respond, req](core::Result<twin::RelationshipPtr> r) {
                                               if (!r.ok())
                                                 return respond(Problem(r.status(), req));
                                               Reply rep = Reply::Empty(204);
                                               rep.headers.emplace_back("ETag", (*r)->etag);
                                               respond(std::move(rep));
                                             });
      });
  add("DELETE", "/digitaltwins/{id}/relationships/{relationshipId}", Role::kWriter,
      "Delete a relationship", "", [c](Request& req, const Respond& respond) {
        c->services.graph->DeleteRelationship(
            req.params[0], req.params[1], PreconditionsOf(req), [respond, req](const Status& s) {
              respond(s.ok() ? Reply::Empty(204) : Problem(s, req));
            });
      });

  // --- query ---------------------------------------------------------------------------------
  add("POST", "/query", Role::kReader,
      "Query twins: {\"query\": \"SELECT ...\", \"continuationToken\": ...}; header "
      "max-items-per-page",
      "json", [c](Request& req, const Respond& respond) {
        auto body = Body(req, *c, respond);
        if (!body) return;
        const json::value* q =
            body->is_object() ? body->get_object().if_contains("query") : nullptr;
        if (q == nullptr || !q->is_string()) {
          return respond(Problem(
              Status("INVALID_BODY", "the body must be {\"query\": \"...\"}", "/query"), req));
        }
        twin::query::QueryOptions opts;
        opts.max_query_length = c->options->max_query_chars;
        opts.timeout = c->options->query_timeout;
        if (tsdb::HistoryStore* history = c->services.history) {
          // History aggregates (MEAN(T.p, '5m') ...): one bucket over the window. No series, or
          // an aggregate that does not apply to its type (mean of strings), is undefined.
          opts.history_aggregate = [history](const twin::query::HistoryAggregateRequest& h)
              -> core::Result<std::optional<double>> {
            using Number = std::optional<double>;
            tsdb::RangeQuery rq;
            rq.from_ns = h.from_ns;
            rq.to_ns = h.to_ns;
            rq.agg = tsdb::ParseAgg(h.agg).value_or(tsdb::Agg::kMean);
            auto b = history->Aggregate({std::string(h.twin), std::string(h.path)}, rq);
            if (!b.ok()) {
              const std::string& code = b.status().code();
              if (code == "TSDB_NOT_FOUND" || code == "TSDB_BAD_QUERY") return Number();
              return b.status();
            }
            if (b->empty()) return Number();
            const tsdb::Value& v = b->front().value;
            if (const auto* d = std::get_if<double>(&v)) return Number(*d);
            if (const auto* i = std::get_if<std::int64_t>(&v)) {
              return Number(static_cast<double>(*i));
            }
            if (const auto* x = std::get_if<bool>(&v)) return Number(*x ? 1.0 : 0.0);
            return Number();  // the last value of a string series
          };
        }
        if (const auto* t = body->get_object().if_contains("continuationToken");
            t && t->is_string()) {
          opts.continuation_token = std::string(t->get_string());
        }
        if (const auto* m = req.Header("max-items-per-page")) {
          std::size_t n = 0;
          auto [end, ec] = std::from_chars(m->data(), m->data() + m->size(), n);
          if (ec != std::errc() || end != m->data() + m->size() || n == 0) {
            return respond(Problem(
                Status("INVALID_HEADER", "max-items-per-page must be a positive integer"), req));
          }
          opts.page_size = n;
        }
        auto page = twin::query::RunQuery(*c->services.graph, q->get_string(), opts);
        if (!page.ok()) return respond(Problem(page.status(), req));
        json::object out{{"value", std::move(page->items)}};
        out["continuationToken"] = page->continuation_token.empty()
                                       ? json::value(nullptr)
                                       : json::value(page->continuation_token);
        respond(Reply::Json(200, out));
      });

  // --- events --------------------------------------------------------------------------------
  add("GET", "/events", Role::kReader,
      "WebSocket change feed (?twin=&model=&path=); a plain GET answers 426", "",
      [](Request& req, const Respond& respond) {
        Reply r = Problem(Status("UPGRADE_REQUIRED",
                                 "/events is a WebSocket endpoint: connect with Upgrade: "
                                 "websocket"),
                          req);
        r.headers.emplace_back("Upgrade", "websocket");
        respond(std::move(r));
      });

  // --- import --------------------------------------------------------------------------------
  add("POST", "/import", Role::kWriter,
      "Bulk import (NDJSON with Header/Models/Twins/Relationships sections); returns a job",
      "ndjson", [c](Request& req, const Respond& respond) {
        if (req.body.empty()) {
          return respond(Problem(Status("INVALID_BODY", "the import body is empty"), req));
        }
        // Without a key (--insecure) everything is allowed; otherwise models need admin. The
        // job checks the parsed section headers, so no spelling of "Models" slips through.
        bool allow_models = !req.key || req.key->role >= Role::kAdmin;
        if (!allow_models && ImportDeclaresModels(req.body)) {
          return respond(
              Problem(Status("FORBIDDEN", "importing models needs the admin role"), req));
        }
        std::string id = c->imports->Start(std::move(req.body), allow_models);
        Reply r = Reply::Json(202, c->imports->Get(id)->ToJson());
        r.headers.emplace_back("Location", "/import/" + id);
        respond(std::move(r));
      });
  add("GET", "/import", Role::kReader, "List import jobs", "",
      [c](Request&, const Respond& respond) {
        json::array items;
        for (const auto& j : c->imports->List()) items.push_back(j.ToJson());
        respond(Reply::Json(200, Listing(std::move(items))));
      });
  add("GET", "/import/{id}", Role::kReader, "Import job status with per-line errors", "",
      [c](Request& req, const Respond& respond) {
        auto j = c->imports->Get(req.params[0]);
        if (!j) {
          return respond(Problem(
              Status("JOB_NOT_FOUND", fmt::format("no import job '{}'", req.params[0])), req));
        }
        respond(Reply::Json(200, j->ToJson()));
      });

  // --- ingest --------------------------------------------------------------------------------
  // Answers a batch: 204 when every reading was accepted, else 400 INGEST_PARTIAL listing what
  // was not (parse errors and rejections, each with where and why; the rest was applied).
  auto answer_ingest = [](const Request& req, const Respond& respond,
                          std::vector<json::object> problems, const sync::IngestOutcome& o) {
    if (problems.empty() && o.rejected.empty()) return respond(Reply::Empty(204));
    Status s("INGEST_PARTIAL",
             fmt::format("{} of {} readings were accepted; the others are listed in 'errors'",
                         o.accepted, o.accepted + o.rejected.size()));
    Reply r = Problem(s, req);
    json::value body = json::parse(r.body);
    json::array errors;
    for (auto& p : problems) {
      if (errors.size() < 1000) errors.push_back(std::move(p));
    }
    body.as_object()["accepted"] = o.accepted;
    body.as_object()["applied"] = o.applied;
    body.as_object()["errors"] = std::move(errors);
    r.body = json::serialize(body);
    respond(std::move(r));
  };
  auto rejection_json = [](const sync::Rejection& rj, json::object where) {
    where["code"] = rj.error.code();
    where["message"] = rj.error.message();
    return where;
  };

  add("POST", "/write", Role::kWriter,
      "Ingest InfluxDB line protocol (?precision=n|u|ms|s|m|h, ?twinTag=twin): each field is a "
      "Property or Telemetry of the twin the tag names",
      "line-protocol", [c, answer_ingest, rejection_json](Request& req, const Respond& respond) {
        const std::string* prec = req.Query("precision");
        auto precision = sync::ParsePrecision(prec ? *prec : "");
        if (!precision.ok()) return respond(Problem(precision.status(), req));
        const std::string* tag_param = req.Query("twinTag");
        const std::string twin_tag = tag_param && !tag_param->empty() ? *tag_param : "twin";
        std::vector<sync::Reading> readings;
        std::vector<std::size_t> line_of;  // line of each reading
        std::vector<json::object> problems;
        sync::ParseLinesInto(
            req.body, *precision,
            [&](const sync::LinePointView& p) {
              std::string_view twin;
              for (const auto& [k, v] : p.tags) {
                if (k == twin_tag) twin = v;
              }
              if (twin.empty()) {
                problems.push_back(json::object{
                    {"line", p.line},
                    {"code", "INGEST_NO_TWIN"},
                    {"message", fmt::format("the line has no '{}' tag naming the twin (set "
                                            "?twinTag= to use another tag)",
                                            twin_tag)}});
                return;
              }
              std::optional<sync::Clock::time_point> t;
              if (p.timestamp_ns) {
                t = sync::Clock::time_point(std::chrono::duration_cast<sync::Clock::duration>(
                    std::chrono::nanoseconds(*p.timestamp_ns)));
              }
              for (const auto& f : p.fields) {
                sync::Reading r;
                r.twin = std::string(twin);
                r.element = std::string(f.key);
                r.value = std::visit(
                    [](const auto& v) -> json::value {
                      using V = std::decay_t<decltype(v)>;
                      if constexpr (std::is_same_v<V, std::string_view>) {
                        return json::string(v);
                      } else {
                        return json::value(v);
                      }
                    },
                    f.value);
                r.source_time = t;
                r.origin = fmt::format("POST /write line {}", p.line);
                readings.push_back(std::move(r));
                line_of.push_back(p.line);
              }
            },
            [&](const sync::LineError& e) {
              problems.push_back(json::object{{"line", e.line},
                                              {"column", e.column},
                                              {"code", e.code},
                                              {"message", e.message}});
            });
        c->ingest->Submit(
            std::move(readings),
            [req, respond, answer_ingest, rejection_json, line_of = std::move(line_of),
             problems = std::move(problems)](const sync::IngestOutcome& o) mutable {
              for (const auto& rj : o.rejected) {
                problems.push_back(rejection_json(rj, json::object{{"line", line_of[rj.index]}}));
              }
              answer_ingest(req, respond, std::move(problems), o);
            });
      });

  add("POST", "/ingest", Role::kWriter,
      "Ingest readings: {\"readings\": [{\"twin\", \"element\" (name or component/name), "
      "\"value\", \"sourceTime\"?}]}",
      "json", [c, answer_ingest, rejection_json](Request& req, const Respond& respond) {
        auto body = Body(req, *c, respond);
        if (!body) return;
        const json::value* list =
            body->is_object() ? body->get_object().if_contains("readings") : nullptr;
        if (list == nullptr || !list->is_array()) {
          return respond(Problem(
              Status("INVALID_BODY", "the body must be {\"readings\": [...]}", "/readings"), req));
        }
        std::vector<sync::Reading> readings;
        std::vector<std::size_t> index_of;  // position in the request of each reading
        std::vector<json::object> problems;
        const json::array& arr = list->get_array();
        for (std::size_t i = 0; i < arr.size(); ++i) {
          const std::string where = fmt::format("/readings/{}", i);
          auto bad = [&](std::string message) {
            problems.push_back(json::object{
                {"pointer", where}, {"code", "INVALID_READING"}, {"message", std::move(message)}});
          };
          const json::object* o = arr[i].is_object() ? &arr[i].get_object() : nullptr;
          const json::value* twin = o ? o->if_contains("twin") : nullptr;
          const json::value* element = o ? o->if_contains("element") : nullptr;
          const json::value* value = o ? o->if_contains("value") : nullptr;
          if (twin == nullptr || !twin->is_string() || element == nullptr ||
              !element->is_string() || value == nullptr) {
            bad("a reading needs \"twin\" and \"element\" (strings) and \"value\"");
            continue;
          }
          sync::Reading r;
          r.twin = std::string(twin->get_string());
          r.element = std::string(element->get_string());
          r.value = *value;
          if (const json::value* st = o->if_contains("sourceTime")) {
            auto t = st->is_string() ? core::ParseRfc3339(st->get_string()) : std::nullopt;
            if (!t) {
              bad("\"sourceTime\" must be an RFC 3339 date-time with an offset");
              continue;
            }
            r.source_time = *t;
          }
          r.origin = "POST /ingest " + where;
          readings.push_back(std::move(r));
          index_of.push_back(i);
        }
        c->ingest->Submit(std::move(readings), [req, respond, answer_ingest, rejection_json,
                                                index_of = std::move(index_of),
                                                problems = std::move(problems)](
                                                   const sync::IngestOutcome& o) mutable {
          for (const auto& rj : o.rejected) {
            problems.push_back(rejection_json(
                rj, json::object{{"pointer", fmt::format("/readings/{}", index_of[rj.index])}}));
          }
          answer_ingest(req, respond, std::move(problems), o);
        });
      });

  add("GET", "/ingest/stats", Role::kReader,
      "Ingest counters (received, applied, duplicates, out of order, rejected by code) and the "
      "newest dead letters (?limit=, default 100)",
      "", [c](Request& req, const Respond& respond) {
        std::size_t limit = 100;
        if (const std::string* l = req.Query("limit")) {
          auto [end, ec] = std::from_chars(l->data(), l->data() + l->size(), limit);
          if (ec != std::errc() || end != l->data() + l->size()) {
            return respond(
                Problem(Status("INVALID_PARAMETER", "limit must be a non-negative integer"), req));
          }
        }
        auto st = c->ingest->Stats();
        json::object rejected;
        for (const auto& [code, n] : st.rejected) rejected[code] = n;
        auto dead = c->ingest->DeadLetters();
        json::array letters;
        for (std::size_t i = dead.size() > limit ? dead.size() - limit : 0; i < dead.size(); ++i) {
          const auto& d = dead[i];
          letters.push_back(json::object{{"time", core::FormatRfc3339(d.at)},
                                         {"twin", d.twin},
                                         {"element", d.element},
                                         {"origin", d.origin},
                                         {"value", d.value},
                                         {"code", d.error.code()},
                                         {"message", d.error.message()}});
        }
        respond(Reply::Json(200, json::object{{"received", st.received},
                                              {"applied", st.applied},
                                              {"duplicates", st.duplicates},
                                              {"outOfOrder", st.out_of_order},
                                              {"superseded", st.superseded},
                                              {"telemetry", st.telemetry},
                                              {"rejected", std::move(rejected)},
                                              {"deadLetters", std::move(letters)}}));
      });

  // --- keys ----------------------------------------------------------------------------------
  add("GET", "/keys", Role::kAdmin, "List API keys (never their secrets)", "",
      [c](Request&, const Respond& respond) {
        json::array items;
        for (const auto& k : c->services.keys->List()) {
          items.push_back(json::object{{"id", k.id},
                                       {"role", RoleName(k.role)},
                                       {"description", k.description},
                                       {"created", k.created}});
        }
        respond(Reply::Json(200, Listing(std::move(items))));
      });
  add("POST", "/keys", Role::kAdmin,
      "Create an API key: {\"role\": \"reader|writer|admin\", \"description\": ...}", "json",
      [c](Request& req, const Respond& respond) {
        auto body = Body(req, *c, respond);
        if (!body) return;
        const json::value* role =
            body->is_object() ? body->get_object().if_contains("role") : nullptr;
        auto r = role && role->is_string() ? ParseRole(role->get_string()) : std::nullopt;
        if (!r) {
          return respond(Problem(
              Status("INVALID_BODY", "role must be \"reader\", \"writer\" or \"admin\"", "/role"),
              req));
        }
        std::string description;
        if (const auto* d = body->get_object().if_contains("description"); d && d->is_string()) {
          description = std::string(d->get_string());
        }
        auto created = c->services.keys->Create(*r, description);
        if (!created.ok()) return respond(Problem(created.status(), req));
        respond(Reply::Json(201, json::object{{"id", created->first.id},
                                              {"role", RoleName(created->first.role)},
                                              {"key", created->second}}));
      });
  add("DELETE", "/keys/{id}", Role::kAdmin, "Revoke an API key", "",
      [c](Request& req, const Respond& respond) {
        Status s = c->services.keys->Revoke(req.params[0]);
        respond(s.ok() ? Reply::Empty(204) : Problem(s, req));
      });
}

json::value OpenApiDocument(const Router& router) {
  json::object paths;
  for (const auto& r : router.routes()) {
    json::object op;
    op["summary"] = r.summary;
    op["operationId"] = r.method + r.path;
    json::array params;
    std::size_t pos = 0;
    while ((pos = r.path.find('{', pos)) != std::string::npos) {
      std::size_t end = r.path.find('}', pos);
      params.push_back(json::object{{"name", r.path.substr(pos + 1, end - pos - 1)},
                                    {"in", "path"},
                                    {"required", true},
                                    {"schema", json::object{{"type", "string"}}}});
      pos = end;
    }
    if (!params.empty()) op["parameters"] = std::move(params);
    if (!r.request_body.empty()) {
      std::string media = r.request_body == "ndjson"          ? "application/x-ndjson"
                          : r.request_body == "json-patch"    ? "application/json-patch+json"
                          : r.request_body == "line-protocol" ? "text/plain"
                                                              : "application/json";
      op["requestBody"] = json::object{
          {"required", true},
          {"content", json::object{{media, json::object{{"schema", json::object{}}}}}}};
    }
    json::object responses{
        {"default",
         json::object{
             {"description", "An error (RFC 7807 problem)"},
             {"content",
              json::object{{"application/problem+json",
                            json::object{{"schema", json::object{{"$ref",
                                                                  "#/components/"
                                                                  "schemas/Problem"}}}}}}}}}};
    responses["2XX"] = json::object{{"description", "Success"}};
    op["responses"] = std::move(responses);
    if (!r.public_route) {
      op["security"] = json::array{json::object{{"bearer", json::array{}}}};
      op["x-doppel-role"] = RoleName(r.min_role);
    }
    std::string method = r.method;
    for (auto& ch : method) ch = static_cast<char>(std::tolower(ch));
    json::value& entry = paths[r.path];
    if (!entry.is_object()) entry.emplace_object();
    entry.get_object()[method] = std::move(op);
  }
  json::object problem_schema{
      {"type", "object"},
      {"required", json::array{"type", "title", "status", "code", "detail"}},
      {"properties", json::object{{"type", json::object{{"type", "string"}}},
                                  {"title", json::object{{"type", "string"}}},
                                  {"status", json::object{{"type", "integer"}}},
                                  {"code", json::object{{"type", "string"}}},
                                  {"detail", json::object{{"type", "string"}}},
                                  {"pointer", json::object{{"type", "string"}}},
                                  {"instance", json::object{{"type", "string"}}},
                                  {"errors", json::object{{"type", "array"}}}}}};
  return json::object{
      {"openapi", "3.1.0"},
      {"info", json::object{{"title", "doppel"},
                            {"version", "0.1.0"},
                            {"description",
                             "Digital twin engine: models, twins, relationships, "
                             "query, change feed. Shapes follow the Azure "
                             "Digital Twins data-plane API; see docs/api.md."}}},
      {"paths", std::move(paths)},
      {"components",
       json::object{
           {"schemas", json::object{{"Problem", std::move(problem_schema)}}},
           {"securitySchemes",
            json::object{{"bearer", json::object{{"type", "http"}, {"scheme", "bearer"}}}}}}}};
}

}  // namespace doppel::api
