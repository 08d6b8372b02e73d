// `doppel serve` and `doppel key`.
#include <fmt/format.h>
#include <signal.h>

#include <boost/json.hpp>
#include <charconv>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "analytics/anomaly/anomaly.h"
#include "analytics/rul/live.h"
#include "api/auth.h"
#include "api/server.h"
#include "cli/commands.h"
#include "core/threads.h"
#include "core/time.h"
#include "model/model.h"
#include "sim/estimation/live.h"
#include "store/store.h"
#include "sync/ingest.h"
#include "sync/mqtt_ingest.h"
#include "sync/sync_quality.h"
#include "tsdb/history.h"
#include "twin/twin_graph.h"

namespace doppel::cli {
namespace {

struct ServeArgs {
  std::string data_dir = "doppel-data";
  std::string listen = "127.0.0.1:8080";
  std::string fsync = "always";
  std::string port_file;
  bool insecure = false;
  int shards = 0;      // 0: core::ThreadsPerStage()
  int io_threads = 0;  // 0: core::ThreadsPerStage()
  std::size_t max_body_mb = 32;
  std::string history_retention;             // "" = keep forever
  std::vector<std::string> model_retention;  // <dtmi>=<duration>
  std::vector<std::string> twin_retention;   // <twin id>=<duration>
  bool keep_history = false;
  std::string fmu_dir;  // FMUs scenarios may load; "" = none
  std::string web_dir;  // the web UI's files; "" = <the binary's folder>/web when it exists
  int history_checkpoint_ms = 10000;
  std::string mqtt;            // host:port of the broker; "" = no MQTT
  std::string mqtt_client_id;  // "" = the one stored in the data dir (made up once)
  // Sync quality and flood protection (sync/sync_quality.h, sync/mqtt_ingest.h).
  double stale_factor = 3.0;
  int expected_interval_ms = 0;  // 0: inferred per twin
  double mqtt_max_rate = 1000;   // messages/s per mapping and topic; 0: no limit
  double mqtt_burst = 10000;
  std::size_t mqtt_max_payload_bytes = 1u << 20;
  std::string rul_model;  // live RUL of engine twins (analytics/rul/live.h); "" = off
  bool recover_history_log = false;
};

// The web UI's folder: --web-dir, else the one the build puts next to the binary
// (<build dir>/web, from web/CMakeLists.txt); empty (no UI) when it has no index.html.
std::filesystem::path WebRoot(const std::string& web_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = web_dir;
  if (dir.empty()) {
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    dir = exe.parent_path() / "web";
  }
  if (!fs::is_regular_file(dir / "index.html", ec)) {
    if (!web_dir.empty()) {
      fmt::print(stderr, "warning: --web-dir {}: no index.html there; not serving the UI\n",
                 web_dir);
    }
    return {};
  }
  return dir;
}

// The MQTT client id of this data directory: made up on first use and kept in the store, so
// that every run resumes the same persistent session.
core::Result<std::string> StoredClientId(store::Store& s) {
  constexpr std::string_view kKey = "meta/mqtt/client-id";
  if (auto id = s.Get(kKey)) return *id;
  std::random_device rd;
  std::string id = fmt::format("doppel-{:08x}{:08x}", rd(), rd());
  if (core::Status r = s.Put(kKey, id); !r.ok()) return r;
  return id;
}

int RunServe(const ServeArgs& a) {
  auto sync = store::ParseSyncPolicy(a.fsync);
  if (!sync) {
    fmt::print(stderr, "--fsync must be always, interval or never\n");
    return 2;
  }
  std::size_t colon = a.listen.rfind(':');
  if (colon == std::string::npos) {
    fmt::print(stderr, "--listen must be address:port\n");
    return 2;
  }
  // Block the termination signals in every thread; the main thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  store::StoreOptions so;
  so.dir = a.data_dir;
  so.sync = *sync;
  so.recover_history_log = a.recover_history_log;
  auto st = store::Store::Open(so);
  if (!st.ok()) {
    fmt::print(stderr, "{}\n", st.status().ToString());
    return 1;
  }
  store::Store& s = **st;
  if (const auto& cut = s.history_log_cut()) {
    fmt::print(stderr,
               "warning: the history log was damaged ({}); history starts from its last intact "
               "record before it: {} segment(s) ({} bytes after it) moved to {}, {} intact "
               "record(s) of the damaged one kept\n",
               cut->damage, cut->segments, cut->bytes_aside, cut->aside.string(),
               cut->records_kept);
  }
  model::ModelRepository models(&s);
  if (core::Status r = s.RestoreModels(models); !r.ok()) {
    fmt::print(stderr, "{}\n", r.ToString());
    return 1;
  }
  twin::GraphOptions go;
  go.shards = a.shards > 0 ? a.shards : core::ThreadsPerStage();
  twin::TwinGraph graph(models, &s, go);
  if (core::Status r = graph.Load(); !r.ok()) {
    fmt::print(stderr, "{}\n", r.ToString());
    return 1;
  }
  // History: in the same RocksDB database (keys under h/), see tsdb/history.h.
  tsdb::HistoryOptions ho;
  ho.checkpoint_interval = std::chrono::milliseconds(std::max(1, a.history_checkpoint_ms));
  ho.drop_duplicates = true;  // ingest is at-least-once (MQTT redelivery): store a reading once
  auto history = tsdb::HistoryStore::Open(s, ho);
  if (!history.ok()) {
    fmt::print(stderr, "{}\n", history.status().ToString());
    if (history.status().code() == "TSDB_CHUNK_CORRUPT" &&
        history.status().message().starts_with("history log ")) {
      fmt::print(stderr,
                 "the history log is damaged: to start from its last intact record before the "
                 "damage (points after it, acknowledged ones among them, are set aside in "
                 "{}/history-wal/damaged-<time>/), run again with --recover-history-log\n",
                 a.data_dir);
    }
    return 1;
  }
  tsdb::RetentionPolicy retention_policy;
  if (!a.history_retention.empty()) {
    retention_policy.default_ns = core::ParseDurationNs(a.history_retention);
    if (!retention_policy.default_ns || *retention_policy.default_ns <= 0) {
      fmt::print(stderr, "--history-retention: '{}' is not a duration (e.g. 30d, 12h)\n",
                 a.history_retention);
      return 2;
    }
  }
  for (const std::string& spec : a.model_retention) {
    if (!tsdb::RetentionPolicy::AddSpec(spec, &retention_policy.by_model)) {
      fmt::print(stderr, "--history-retention-model: '{}' is not <dtmi>=<duration>\n", spec);
      return 2;
    }
  }
  for (const std::string& spec : a.twin_retention) {
    if (!tsdb::RetentionPolicy::AddSpec(spec, &retention_policy.by_twin)) {
      fmt::print(stderr, "--history-retention-twin: '{}' is not <twin id>=<duration>\n", spec);
      return 2;
    }
  }
  api::KeyStore keys(&s);
  if (core::Status r = keys.Load(); !r.ok()) {
    fmt::print(stderr, "{}\n", r.ToString());
    return 1;
  }
  api::ServerOptions opts;
  opts.address = a.listen.substr(0, colon);
  opts.port = static_cast<std::uint16_t>(std::stoi(a.listen.substr(colon + 1)));
  opts.insecure = a.insecure;
  opts.io_threads = a.io_threads > 0 ? a.io_threads : core::ThreadsPerStage();
  opts.max_body_bytes = a.max_body_mb << 20;
  opts.keep_history = a.keep_history;
  opts.fmu_dir = a.fmu_dir;
  opts.web_root = WebRoot(a.web_dir);
  // Ingest (HTTP and MQTT share it) and MQTT through mappings (sync/mqtt_ingest.h).
  // Sync quality: fed by both ingest paths; its checker publishes twin.stale / twin.fresh on the
  // change feed (sync/sync_quality.h).
  sync::SyncOptions sync_options;
  sync_options.graph = &graph;
  sync_options.stale_factor = a.stale_factor;
  if (a.expected_interval_ms > 0) {
    sync_options.default_expected_interval = std::chrono::milliseconds(a.expected_interval_ms);
  }
  sync::SyncTracker sync_quality(sync_options);
  sync::IngestOptions io;
  io.sync = &sync_quality;
  io.history = history->get();
  // Anomaly detection on every accepted reading (analytics/anomaly/anomaly.h).
  analytics::AnomalyMonitor anomalies({.graph = &graph, .detector = {}, .recent = 20});
  // Live Kalman filters on twins' telemetry (sim/estimation/live.h; defined through /estimators).
  sim::estimation::LiveEstimators estimators;
  io.observe = [anomaly = analytics::IngestObserver(anomalies),
                &estimators](const sync::Reading& r) {
    anomaly(r);
    estimators.Observe(r);
  };
  // Live RUL on engine twins (analytics/rul/live.h), fed by the same readings. Outlives ingest.
  std::unique_ptr<analytics::LiveRul> live_rul;
  if (!a.rul_model.empty()) {
    auto rul_model = analytics::rul::RulModel::Load(a.rul_model);
    if (!rul_model.ok()) {
      fmt::print(stderr, "--rul-model: {}\n", rul_model.status().ToString());
      return 1;
    }
    live_rul = std::make_unique<analytics::LiveRul>(
        std::move(*rul_model), analytics::LiveRulOptions{.graph = &graph,
                                                         .models = &models,
                                                         .history = history->get(),
                                                         .model_path = a.rul_model});
    io.observe = [others = std::move(io.observe),
                  rul = live_rul->Observer()](const sync::Reading& r) {
      others(r);
      rul(r);
    };
    const auto& info = live_rul->model().info();
    fmt::print("doppel: live RUL on twins of {} (model {}: {} engines, CV RMSE {:.2f})\n",
               live_rul->options().model_id, a.rul_model, info.units, info.cv_rmse);
  }
  sync::Ingestor ingestor(models, graph, io);
  auto mapping_store = api::StoreMappingPersistence(s);
  sync::MqttIngestOptions mo;
  mo.sync = &sync_quality;
  mo.max_rate_per_topic = a.mqtt_max_rate;
  mo.burst_per_topic = a.mqtt_burst;
  mo.max_payload_bytes = a.mqtt_max_payload_bytes;
  if (!a.mqtt.empty()) {
    const std::size_t mc = a.mqtt.rfind(':');
    sync::MqttOptions b;
    b.host = a.mqtt.substr(0, mc);
    int port = 0;
    if (mc == std::string::npos || b.host.empty() ||
        std::from_chars(a.mqtt.data() + mc + 1, a.mqtt.data() + a.mqtt.size(), port).ec !=
            std::errc() ||
        port <= 0 || port > 65535) {
      fmt::print(stderr, "--mqtt must be host:port\n");
      return 2;
    }
    b.port = port;
    if (!a.mqtt_client_id.empty()) {
      b.client_id = a.mqtt_client_id;
    } else {
      auto id = StoredClientId(s);
      if (!id.ok()) {
        fmt::print(stderr, "{}\n", id.status().ToString());
        return 1;
      }
      b.client_id = *id;
    }
    mo.broker = std::move(b);
  }
  sync::MqttIngest mqtt(models, ingestor, mapping_store.get(), mo);
  if (core::Status r = mqtt.Load(); !r.ok()) {
    fmt::print(stderr, "warning: {}\n", r.ToString());
    for (const auto& d : r.details()) fmt::print(stderr, "  {}\n", d.ToString());
  }
  api::Services services{&models, &graph, &s, &keys, history->get(), &ingestor, &mqtt};
  services.sync = &sync_quality;
  services.anomalies = &anomalies;
  services.estimators = &estimators;
  services.rul = live_rul.get();
  api::Server server(services, opts);
  if (core::Status r = server.Start(); !r.ok()) {
    fmt::print(stderr, "{}\n", r.ToString());
    return 1;
  }
  if (core::Status r = mqtt.Start(); !r.ok()) {
    fmt::print(stderr, "{}\n", r.ToString());
    return 1;
  }
  sync_quality.Start();
  if (mo.broker) {
    fmt::print("doppel: MQTT broker {}:{}, client id {} (persistent session), {} mappings\n",
               mo.broker->host, mo.broker->port, mo.broker->client_id, mqtt.List().size());
  }
  auto stats = graph.stats();
  fmt::print(
      "doppel listening on http://{}:{} (data: {}, {} models, {} twins, {} relationships, "
      "fsync: {}{})\n",
      opts.address, server.port(), a.data_dir, models.size(), stats.twins, stats.relationships,
      a.fsync, a.insecure ? ", INSECURE: no API keys required" : "");
  if (!opts.web_root.empty()) {
    fmt::print("web UI: http://{}:{}/ (files in {})\n", opts.address, server.port(),
               opts.web_root.string());
  }
  std::fflush(stdout);
  if (!a.port_file.empty()) {
    std::string tmp = a.port_file + ".tmp";
    std::ofstream(tmp) << server.port() << "\n";
    std::filesystem::rename(tmp, a.port_file);
  }
  if (!a.insecure && keys.List().empty()) {
    fmt::print(
        "no API keys exist yet: create one with `doppel key create --role admin "
        "--data-dir {}` (with the server stopped), or run with --insecure\n",
        a.data_dir);
  }
  // Retention: once a minute, drop history chunks older than the twin's (or its model's, or the
  // default) retention.
  std::mutex retention_mu;
  std::condition_variable retention_cv;
  bool stopping = false;
  std::thread retention;
  if (!retention_policy.empty()) {
    retention = std::thread([&] {
      std::unique_lock lock(retention_mu);
      do {
        lock.unlock();
        const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
        (void)(*history)->ApplyRetention([&](std::string_view twin) -> std::optional<std::int64_t> {
          twin::TwinPtr t = graph.FindTwin(twin);
          auto keep = retention_policy.For(twin, t ? std::string_view(t->model) : "");
          if (!keep) return std::nullopt;
          return now - *keep;
        });
        lock.lock();
      } while (!retention_cv.wait_for(lock, std::chrono::minutes(1), [&] { return stopping; }));
    });
  }
  int sig = 0;
  sigwait(&signals, &sig);
  if (retention.joinable()) {
    {
      std::lock_guard lock(retention_mu);
      stopping = true;
    }
    retention_cv.notify_all();
    retention.join();
  }
  fmt::print("doppel: stopping (signal {})\n", sig);
  mqtt.Stop();  // first: a message being ingested finishes (and is acknowledged)
  sync_quality.Stop();
  server.Stop();
  if (live_rul) live_rul->Stop();  // its last twin writes reach history before the wait below
  (*history)->WaitIdle();  // history callbacks use the ingestor, destroyed before the history
  (void)(*history)->Checkpoint();  // shortens the next start's replay; not needed for safety
  return 0;
}

int RunKeyCreate(const std::string& data_dir, const std::string& role_name,
                 const std::string& description) {
  auto role = api::ParseRole(role_name);
  if (!role) {
    fmt::print(stderr, "--role must be admin, writer or reader\n");
    return 2;
  }
  store::StoreOptions so;
  so.dir = data_dir;
  auto st = store::Store::Open(so);
  if (!st.ok()) {
    fmt::print(stderr, "{}\n(to add a key while the server runs, POST /keys with an admin key)\n",
               st.status().ToString());
    return 1;
  }
  api::KeyStore keys(st->get());
  auto created = keys.Create(*role, description);
  if (!created.ok()) {
    fmt::print(stderr, "{}\n", created.status().ToString());
    return 1;
  }
  fmt::print("{}\n", created->second);
  fmt::print(stderr, "created {} key {} — shown once; use it as 'Authorization: Bearer <key>'\n",
             api::RoleName(created->first.role), created->first.id);
  return 0;
}

}  // namespace

void AddServerCommands(CLI::App& app, int* exit_code) {
  auto* serve = app.add_subcommand("serve", "Run the doppel server (REST + WebSocket API)");
  auto a = std::make_shared<ServeArgs>();
  serve->add_option("--data-dir", a->data_dir, "Where the store lives")->capture_default_str();
  serve->add_option("--listen", a->listen, "address:port (port 0: any free port)")
      ->capture_default_str();
  serve
      ->add_option("--fsync", a->fsync,
                   "When acknowledged writes reach the disk: always (fsync per group commit), "
                   "interval (every 100 ms; survives process crashes), never")
      ->capture_default_str();
  serve
      ->add_option("--shards", a->shards,
                   "Shard threads owning twins (0: half the cores, at least 1)")
      ->capture_default_str();
  serve
      ->add_option("--io-threads", a->io_threads,
                   "HTTP I/O threads (0: half the cores, at least 1)")
      ->capture_default_str();
  serve->add_option("--max-body-mb", a->max_body_mb, "Largest request body")->capture_default_str();
  serve->add_option("--port-file", a->port_file, "Write the bound port to this file");
  serve->add_flag("--insecure", a->insecure, "Do not require API keys (demos and tests)");
  serve->add_option("--web-dir", a->web_dir,
                    "The web UI's files, served at / (default: <the binary's folder>/web, "
                    "where the build puts them)");
  serve->add_option("--history-retention", a->history_retention,
                    "Keep property history this long (e.g. 30d; default: forever)");
  serve->add_option("--history-retention-model", a->model_retention,
                    "Retention for the twins of one model: <dtmi>=<duration> (repeatable)");
  serve->add_option("--history-retention-twin", a->twin_retention,
                    "Retention for one twin: <twin id>=<duration> (repeatable; over its model's)");
  serve->add_flag("--recover-history-log", a->recover_history_log,
                  "If the history write-ahead log is damaged, start from its last intact record "
                  "before the damage; the rest moves to <data-dir>/history-wal/damaged-<time>/ "
                  "(off by default: points there may have been acknowledged)");
  serve
      ->add_option("--history-checkpoint-ms", a->history_checkpoint_ms,
                   "How often history folds its write-ahead records into chunks")
      ->capture_default_str();
  serve->add_flag("--keep-history-on-delete", a->keep_history,
                  "Deleting a twin keeps its history (default: deletes it)");
  serve
      ->add_option("--fmu-dir", a->fmu_dir,
                   "Folder of FMUs that scenarios may use ({\"kind\": \"fmu\", \"file\": name}); "
                   "none by default: an FMU runs its code inside the server")
      ->check(CLI::ExistingDirectory);
  serve
      ->add_option("--rul-model", a->rul_model,
                   "A RUL model folder (doppel train rul): predict the remaining useful life of "
                   "engine twins as their cycles arrive (docs/rul.md)")
      ->check(CLI::ExistingDirectory);
  serve->add_option("--mqtt", a->mqtt,
                    "MQTT broker host:port: ingest device messages through mappings (/mappings)");
  serve->add_option("--mqtt-client-id", a->mqtt_client_id,
                    "MQTT client id (default: one made up once and kept in the data dir); the "
                    "broker keeps the persistent session under it");
  serve
      ->add_option("--stale-factor", a->stale_factor,
                   "A twin is stale when its newest reading is older than this many expected "
                   "intervals (GET /sync, twin.stale events)")
      ->capture_default_str();
  serve->add_option("--expected-interval-ms", a->expected_interval_ms,
                    "Expected reporting interval of every twin (default: a mapping's "
                    "expectedIntervalMs, else inferred per twin)");
  serve
      ->add_option("--mqtt-max-rate", a->mqtt_max_rate,
                   "Flood protection: messages/s per mapping and topic (0: no limit; a mapping's "
                   "maxRatePerTopic wins)")
      ->capture_default_str();
  serve
      ->add_option("--mqtt-burst", a->mqtt_burst,
                   "Flood protection: messages per topic accepted at once (a mapping's "
                   "burstPerTopic wins)")
      ->capture_default_str();
  serve
      ->add_option("--mqtt-max-payload-bytes", a->mqtt_max_payload_bytes,
                   "Larger MQTT messages are rejected (a mapping's maxPayloadBytes wins)")
      ->capture_default_str();
  serve->callback([=] { *exit_code = RunServe(*a); });

  auto* key = app.add_subcommand("key", "Manage API keys");
  key->require_subcommand(1);
  auto* create = key->add_subcommand("create", "Create an API key in a data directory");
  auto dir = std::make_shared<std::string>("doppel-data");
  auto role = std::make_shared<std::string>();
  auto desc = std::make_shared<std::string>();
  create->add_option("--data-dir", *dir, "The server's data directory (server stopped)")
      ->capture_default_str();
  create->add_option("--role", *role, "admin | writer | reader")->required();
  create->add_option("--description", *desc, "What the key is for");
  create->callback([=] { *exit_code = RunKeyCreate(*dir, *role, *desc); });
}

}  // namespace doppel::cli
