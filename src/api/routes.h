// doppel::api — the route handlers (internal to the api component).
#pragma once

#include <boost/json/value.hpp>
#include <functional>
#include <memory>
#include <string>

#include "api/import_job.h"
#include "api/metrics.h"
#include "api/router.h"
#include "api/server.h"
#include "sync/ingest.h"

namespace doppel::api {

struct MappingRoutesState;

struct RouteContext {
  Services services;
  const ServerOptions* options = nullptr;
  Metrics* metrics = nullptr;
  const Router* router = nullptr;
  std::unique_ptr<ImportJobs> imports;
  sync::Ingestor* ingest = nullptr;  // services.ingest, or owned_ingest
  std::unique_ptr<sync::Ingestor> owned_ingest;
  std::shared_ptr<MappingRoutesState> mappings;  // mapping_routes.cc
};

void RegisterRoutes(Router& router, RouteContext& ctx);

// An RFC 7807 problem answer for `s` (HTTP status from its code).
Reply Problem(const core::Status& s, const Request& req);

// How route files add routes: method, path template, role, summary, request body kind, handler.
using AddRoute = std::function<void(std::string, std::string, Role, std::string, std::string,
                                    std::function<void(Request&, const Respond&)>, bool)>;

// Property history (history_routes.cc).
void RegisterHistoryRoutes(const AddRoute& add, RouteContext& ctx);

// MQTT mappings (mapping_routes.cc), and their lines of /metrics.
void RegisterMappingRoutes(const AddRoute& add, RouteContext& ctx);
std::string MappingMetrics(const RouteContext& ctx);

// OpenAPI 3.1 description of every route in `router`.
boost::json::value OpenApiDocument(const Router& router);

}  // namespace doppel::api
