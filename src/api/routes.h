// doppel::api — the route handlers (internal to the api component).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "analytics/anomaly/anomaly.h"
#include "analytics/forecast/service.h"
#include "api/import_job.h"
#include "api/metrics.h"
#include "api/router.h"
#include "api/server.h"
#include "sim/estimation/live.h"
#include "sync/ingest.h"
#include "sync/sync_quality.h"

namespace doppel::api {

struct MappingRoutesState;
struct DeviceRoutesState;
struct ScenarioRoutesState;
struct AssetStore;

struct RouteContext {
  Services services;
  const ServerOptions* options = nullptr;
  Metrics* metrics = nullptr;
  const Router* router = nullptr;
  std::unique_ptr<ImportJobs> imports;
  // Before the Ingestor that reports to it (destroyed after it).
  sync::SyncTracker* sync = nullptr;  // services.sync, or owned_sync (sync_routes.cc)
  std::unique_ptr<sync::SyncTracker> owned_sync;
  analytics::AnomalyMonitor* anomalies = nullptr;  // services.anomalies, or owned_anomalies
  std::unique_ptr<analytics::AnomalyMonitor> owned_anomalies;
  std::unique_ptr<analytics::forecast::ForecastService> forecasts;  // null without history
  sim::estimation::LiveEstimators* estimators = nullptr;  // services.estimators, or owned_...
  std::unique_ptr<sim::estimation::LiveEstimators> owned_estimators;
  sync::Ingestor* ingest = nullptr;  // services.ingest, or owned_ingest
  std::unique_ptr<sync::Ingestor> owned_ingest;
  std::shared_ptr<MappingRoutesState> mappings;    // mapping_routes.cc
  std::shared_ptr<DeviceRoutesState> device;       // device_routes.cc (after mappings)
  std::shared_ptr<ScenarioRoutesState> scenarios;  // scenario_routes.cc
  std::shared_ptr<AssetStore> assets;              // asset_routes.cc
};

void RegisterRoutes(Router& router, RouteContext& ctx);

// An RFC 7807 problem answer for `s` (HTTP status from its code).
Reply Problem(const core::Status& s, const Request& req);

// The request body parsed as JSON with the server's size and depth limits. An empty body is
// `if_empty` when given, else INVALID_BODY ("the request needs <what>"); a malformed one its
// JSON_* code, a too large one PAYLOAD_TOO_LARGE.
core::Result<boost::json::value> JsonBody(const Request& req, const RouteContext& ctx,
                                          std::string_view what = "a JSON body",
                                          std::optional<boost::json::value> if_empty = {});

// The handler of GET /digitaltwins/{id}/<what>: TWIN_NOT_FOUND for an unknown twin, else 200
// with json(ctx, id).
std::function<void(Request&, const Respond&)> TwinJsonHandler(
    const RouteContext& ctx,
    boost::json::value (*json)(const RouteContext& ctx, const std::string& twin));

// How route files add routes: method, path template, role, summary, request body kind, handler.
using AddRoute = std::function<void(std::string, std::string, Role, std::string, std::string,
                                    std::function<void(Request&, const Respond&)>, bool)>;

// Property history (history_routes.cc).
void RegisterHistoryRoutes(const AddRoute& add, RouteContext& ctx);
std::string HistoryMetrics(const RouteContext& ctx);  // doppel_history_* lines of /metrics

// MQTT mappings (mapping_routes.cc), and their lines of /metrics.
void RegisterMappingRoutes(const AddRoute& add, RouteContext& ctx);
std::string MappingMetrics(const RouteContext& ctx);

// Desired values and commands (device_routes.cc; needs the mapping routes first), their lines of
// /metrics, and the twin document with its desired values' sync state merged into $metadata
// (nullopt when the twin has no desired entry: answer the stored document).
void RegisterDeviceRoutes(const AddRoute& add, RouteContext& ctx);
std::string DeviceMetrics(const RouteContext& ctx);
std::optional<boost::json::object> DecoratedTwin(const RouteContext& ctx, const twin::Twin& t);

// Sync quality (sync_routes.cc): /sync, /digitaltwins/{id}/sync, its lines of /metrics, and the
// `$sync` object of a twin (GET /digitaltwins/{id}?includeSync=true).
void RegisterSyncRoutes(const AddRoute& add, RouteContext& ctx);
std::string SyncMetrics(const RouteContext& ctx);
boost::json::value TwinSyncJson(const RouteContext& ctx, const std::string& twin);

// Scenarios: definitions, runs as jobs, comparisons (scenario_routes.cc), and their /metrics.
void RegisterScenarioRoutes(const AddRoute& add, RouteContext& ctx);
// The history namespace of a scenario run's recorded variables, one series per variable: the
// key "\x1frun\x1f<scenario>\x1f<run>" (twin ids cannot hold control characters, so it never
// meets a twin's), shown as "$run/<scenario>/<run>".
std::string RunHistoryTwin(std::string_view scenario, std::string_view run);
std::string ScenarioMetrics(const RouteContext& ctx);

// Analytics: anomalies, forecasts, their registry and accuracy (analytics_routes.cc), their
// /metrics, and a twin's `$anomalies`.
void RegisterAnalyticsRoutes(const AddRoute& add, RouteContext& ctx);
std::string AnalyticsMetrics(const RouteContext& ctx);
boost::json::value TwinAnomaliesJson(const RouteContext& ctx, const std::string& twin);

// Live estimators (estimator_routes.cc), and a twin's `$estimates`.
void RegisterEstimatorRoutes(const AddRoute& add, RouteContext& ctx);
boost::json::value TwinEstimatesJson(const RouteContext& ctx, const std::string& twin);

// glTF scenes attached to models and twins, for the web UI's 3D scene (asset_routes.cc).
void RegisterAssetRoutes(const AddRoute& add, RouteContext& ctx);
// Deletes the scene of a model or twin (kind "model" or "twin") if it has one: called when the
// model or twin itself is deleted.
void DeleteScene(const RouteContext& ctx, std::string_view kind, const std::string& id);

// Live remaining useful life of twins: GET /digitaltwins/{id}/rul (rul_routes.cc).
void RegisterRulRoutes(const AddRoute& add, RouteContext& ctx);

// OpenAPI 3.1 description of every route in `router`.
boost::json::value OpenApiDocument(const Router& router);

}  // namespace doppel::api
