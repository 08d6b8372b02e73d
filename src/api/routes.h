// doppel::api — the route handlers (internal to the api component).
#pragma once

#include <boost/json/value.hpp>
#include <memory>

#include "api/import_job.h"
#include "api/metrics.h"
#include "api/router.h"
#include "api/server.h"
#include "sync/ingest.h"

namespace doppel::api {

struct RouteContext {
  Services services;
  const ServerOptions* options = nullptr;
  Metrics* metrics = nullptr;
  const Router* router = nullptr;
  std::unique_ptr<ImportJobs> imports;
  std::unique_ptr<sync::Ingestor> ingest;
};

void RegisterRoutes(Router& router, RouteContext& ctx);

// OpenAPI 3.1 description of every route in `router`.
boost::json::value OpenApiDocument(const Router& router);

}  // namespace doppel::api
