// A real doppel API server for tests: RocksDB store in a folder, models, twin graph, history,
// API keys off (--insecure), any free port, and an HTTP client connected to it.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "api/server.h"
#include "http_test_client.h"
#include "model/model_repository.h"
#include "store/store.h"
#include "tsdb/history.h"
#include "twin/twin_graph.h"

namespace doppel::apitest {

struct Serve {
  explicit Serve(const std::filesystem::path& dir) {
    store::StoreOptions so;
    so.dir = dir;
    so.sync = store::SyncPolicy::kNever;
    auto st = store::Store::Open(so);
    if (!st.ok()) {
      ADD_FAILURE() << st.status().ToString();
      std::abort();
    }
    store = std::move(*st);
    models = std::make_unique<model::ModelRepository>(store.get());
    if (core::Status s = store->RestoreModels(*models); !s.ok()) ADD_FAILURE() << s.ToString();
    graph = std::make_unique<twin::TwinGraph>(*models, store.get());
    if (core::Status s = graph->Load(); !s.ok()) ADD_FAILURE() << s.ToString();
    keys = std::make_unique<api::KeyStore>(store.get());
    auto h = tsdb::HistoryStore::Open(*store);
    if (!h.ok()) ADD_FAILURE() << h.status().ToString();
    history = std::move(*h);
    api::ServerOptions opts;
    opts.insecure = true;
    opts.port = 0;
    opts.io_threads = 1;
    api::Services services{models.get(), graph.get(), store.get(), keys.get()};
    services.history = history.get();
    server = std::make_unique<api::Server>(services, opts);
    if (core::Status s = server->Start(); !s.ok()) ADD_FAILURE() << s.ToString();
    http = std::make_unique<HttpClient>(server->port());
  }
  ~Serve() {
    http.reset();
    server->Stop();
  }
  std::unique_ptr<store::Store> store;
  std::unique_ptr<model::ModelRepository> models;
  std::unique_ptr<twin::TwinGraph> graph;
  std::unique_ptr<api::KeyStore> keys;
  std::unique_ptr<tsdb::HistoryStore> history;
  std::unique_ptr<api::Server> server;
  std::unique_ptr<HttpClient> http;
};

}  // namespace doppel::apitest
