// doppel::api — the HTTP/1.1 + WebSocket server. The component's manual.
//
// Boost.Beast on Asio, `io_threads` threads, one strand per connection, keep-alive. Handlers
// translate requests into calls on the engine (model repository, twin graph, query engine) and
// hold no business logic. Writes complete asynchronously: a handler hands the twin graph a
// callback that posts the response back to the connection's strand, so no I/O thread ever
// waits for a group commit.
//
// Routes follow the Azure Digital Twins data-plane API (see docs/api.md for where doppel
// differs); errors are RFC 7807 problem+json (problem.h); /openapi.json is generated from the
// same route table that dispatches (routes.cc).
//
// Limits: request body (max_body_bytes → 413 PAYLOAD_TOO_LARGE), JSON nesting (max_json_depth),
// query length and query time (QUERY_TOO_LONG / QUERY_TIMEOUT), WebSocket subscriber queue
// (overflow → a final {"type":"overflow"} message, then close).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "api/auth.h"
#include "api/metrics.h"
#include "core/status.h"
#include "model/model_repository.h"
#include "twin/twin_graph.h"

namespace doppel::analytics {
class AnomalyMonitor;
class LiveRul;
}  // namespace doppel::analytics
namespace doppel::sim::estimation {
class LiveEstimators;
}
namespace doppel::store {
class Store;
}
namespace doppel::tsdb {
class HistoryStore;
}
namespace doppel::sync {
class Ingestor;
class MappingPersistence;
class MqttIngest;
class SyncTracker;
}  // namespace doppel::sync

namespace doppel::api {

struct Services {
  model::ModelRepository* models = nullptr;
  twin::TwinGraph* graph = nullptr;
  store::Store* store = nullptr;  // may be null (in-memory)
  KeyStore* keys = nullptr;
  tsdb::HistoryStore* history = nullptr;  // may be null (no history)
  // May be null: the server makes its own Ingestor. `doppel serve` passes the one MQTT uses.
  sync::Ingestor* ingest = nullptr;
  // MQTT ingest through mappings (/mappings). May be null: the server keeps mappings (stored
  // under mp/ when `store` is set) without a broker.
  sync::MqttIngest* mqtt = nullptr;
  // Sync quality (/sync, $sync, /metrics). May be null: the server makes its own (fed by its own
  // Ingestor only; its stale checker runs while the server exists). `doppel serve` passes the
  // one its Ingestor and MQTT ingest feed.
  sync::SyncTracker* sync = nullptr;
  // Streaming anomaly detection (/anomalies, twin.anomaly events). May be null: the server makes
  // its own, fed by its own Ingestor only. `doppel serve` passes the one its Ingestor feeds.
  analytics::AnomalyMonitor* anomalies = nullptr;
  // Live Kalman filters on twins' telemetry (/estimators). May be null: the server makes its own,
  // fed by its own Ingestor only. `doppel serve` passes the one its Ingestor feeds.
  sim::estimation::LiveEstimators* estimators = nullptr;
  // Live RUL of twins (GET /digitaltwins/{id}/rul). May be null: the route answers 404.
  analytics::LiveRul* rul = nullptr;
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 = any free port (see Server::port())
  int io_threads = 2;
  bool insecure = false;  // no API keys required
  std::size_t max_body_bytes = 32u << 20;
  std::size_t max_json_depth = 64;
  std::size_t max_query_chars = 8000;
  std::chrono::milliseconds query_timeout{10000};
  std::size_t events_queue = 10000;  // per WebSocket subscriber
  std::filesystem::path web_root;    // static files served at / (empty: none)
  bool keep_history = false;         // deleting a twin keeps its history (default: deletes it)
  // FMUs scenarios may load ({"kind": "fmu", "file": name}); empty: FMU units are refused.
  std::filesystem::path fmu_dir;
};

// Mappings kept in the store as `mp/<id>` records (api/mapping_routes.cc).
std::unique_ptr<sync::MappingPersistence> StoreMappingPersistence(store::Store& store);

class Server {
 public:
  Server(Services services, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts serving. STARTUP_FAILED if the address cannot be bound.
  core::Status Start();
  // Stops accepting, closes connections, joins the I/O threads.
  void Stop();
  std::uint16_t port() const;
  Metrics& metrics();

  struct Impl;  // internal (server.cc)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::api
