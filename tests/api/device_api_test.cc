// Desired values and commands over HTTP, as `doppel serve --mqtt` wires them: a RocksDB store, a
// real mosquitto (tests/sync/mosquitto_broker.h), MqttIngest, the server, and the virtual plant
// as the device. Also: the desired state survives reopening the store. No wall-clock assertions.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/server.h"
#include "http_test_client.h"
#include "model/model_repository.h"
#include "plant/plant.h"
#include "store/store.h"
#include "sync/ingest.h"
#include "sync/mapping.h"
#include "sync/mosquitto_broker.h"
#include "sync/sync_test_util.h"
#include "sync/mqtt_ingest.h"
#include "twin/twin_graph.h"

namespace doppel {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using apitest::HttpClient;
using apitest::HttpResponse;
using sync::testing::WaitUntil;

constexpr char kMachine[] = "dtmi:doppel:example:factory:Machine;1";

// v at the member path, or null when any member is missing (so a wait never throws).
json::value Field(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* cur = &v;
  for (std::string_view key : path) {
    if (!cur->is_object()) return nullptr;
    cur = cur->get_object().if_contains(key);
    if (cur == nullptr) return nullptr;
  }
  return *cur;
}

// serve's wiring, on a data directory that outlives it (Reopen).
struct Serve {
  Serve(const fs::path& dir, std::optional<int> broker_port) {
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
    ingestor = std::make_unique<sync::Ingestor>(*models, *graph);
    mapping_store = api::StoreMappingPersistence(*store);
    sync::MqttIngestOptions mo;
    if (broker_port) {
      sync::MqttOptions b;
      b.port = *broker_port;
      b.client_id = "doppel-device-api-test";
      mo.broker = b;
    }
    mqtt = std::make_unique<sync::MqttIngest>(*models, *ingestor, mapping_store.get(), mo);
    if (core::Status s = mqtt->Load(); !s.ok()) ADD_FAILURE() << s.ToString();
    api::ServerOptions opts;
    opts.insecure = true;
    opts.port = 0;
    api::Services services{models.get(), graph.get(), store.get(), keys.get()};
    services.ingest = ingestor.get();
    services.mqtt = mqtt.get();
    server = std::make_unique<api::Server>(services, opts);
    if (core::Status s = server->Start(); !s.ok()) ADD_FAILURE() << s.ToString();
    if (core::Status s = mqtt->Start(); !s.ok()) ADD_FAILURE() << s.ToString();
    http = std::make_unique<HttpClient>(server->port());
  }
  ~Serve() {
    http.reset();
    mqtt->Stop();
    server->Stop();
    server.reset();
    mqtt.reset();
    ingestor.reset();
    keys.reset();
    graph.reset();
    models.reset();
    store.reset();
  }

  std::unique_ptr<store::Store> store;
  std::unique_ptr<model::ModelRepository> models;
  std::unique_ptr<twin::TwinGraph> graph;
  std::unique_ptr<api::KeyStore> keys;
  std::unique_ptr<sync::Ingestor> ingestor;
  std::unique_ptr<sync::MappingPersistence> mapping_store;
  std::unique_ptr<sync::MqttIngest> mqtt;
  std::unique_ptr<api::Server> server;
  std::unique_ptr<HttpClient> http;
};

class DeviceApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/doppel-device-api-XXXXXX";
    char* d = mkdtemp(tmpl);
    ASSERT_NE(d, nullptr);
    dir_ = d;
    ASSERT_TRUE(broker_.Start());
  }
  void TearDown() override {
    if (plant_) (void)plant_->Stop(5s);
    plant_.reset();
    serve_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Open(bool with_broker = true) {
    serve_.reset();
    serve_ = std::make_unique<Serve>(
        dir_, with_broker ? std::optional<int>(broker_.port()) : std::nullopt);
  }
  HttpClient& http() { return *serve_->http; }

  void CreateFactory() {
    std::vector<model::SourceDocument> docs = sync::testing::FactoryModelDocs();
    ASSERT_TRUE(serve_->models->Add(docs).ok());
    for (const char* id : {"machine-1", "machine-2", "fake-1"}) {
      auto r = http().Put(fmt::format("/digitaltwins/{}", id),
                          fmt::format(R"({{"$metadata": {{"$model": "{}"}}}})", kMachine));
      ASSERT_EQ(r.status, 200u) << r.body;
    }
  }

  void StartPlant() {
    auto m = http().Put("/mappings/plant-reported", R"({
      "topic": "plant/{line}/{machine}/reported",
      "twin": "{machine}",
      "model": "dtmi:doppel:example:factory:Machine;1",
      "fields": [{"pointer": "/cycleTime", "element": "cycleTime", "optional": true}],
      "timestamp": {"pointer": "/ts", "format": "rfc3339"},
      "desired": {"topic": "plant/{line}/{machine}/desired",
                  "ackTopic": "plant/{line}/{machine}/ack"},
      "commands": {"topic": "plant/{line}/{machine}/commands/{command}"}
    })");
    ASSERT_EQ(m.status, 201u) << m.body;
    // A device nobody runs: commands to it time out.
    auto f = http().Put("/mappings/fake", R"({
      "topic": "dev/{machine}/reported", "twin": "{machine}",
      "fields": [{"pointer": "/cycleTime", "element": "cycleTime"}],
      "commands": {"topic": "dev/{machine}/commands/{command}", "timeoutMs": 100}
    })");
    ASSERT_EQ(f.status, 201u) << f.body;
    ASSERT_TRUE(serve_->mqtt->WaitUntilSubscribed(30s).ok());
    plant::PlantOptions po;
    po.port = broker_.port();
    po.rate = 5;
    po.simulator.machines = 2;
    po.simulator.fault_rate = 0;
    po.simulator.missing_rate = 0;
    plant_ = std::make_unique<plant::Plant>(po);
    ASSERT_TRUE(plant_->Start().ok());
    // Both machines reported once: doppel knows each one's line, so a command takes the plant
    // route (before, machine-2's command could go out on the fake device's route and time out).
    ASSERT_TRUE(WaitUntil([&] {
      return !Field(http().Get("/digitaltwins/machine-1").json(), {"cycleTime"}).is_null() &&
             !Field(http().Get("/digitaltwins/machine-2").json(), {"cycleTime"}).is_null();
    }));
  }

  json::value CycleTimeMeta() {
    return Field(http().Get("/digitaltwins/machine-1").json(), {"$metadata", "cycleTime"});
  }

  sync::testing::MosquittoBroker broker_;
  fs::path dir_;
  std::unique_ptr<Serve> serve_;
  std::unique_ptr<plant::Plant> plant_;
};

TEST_F(DeviceApiTest, DesiredValueRoundTripAndItsStateSurvivesAReopen) {
  Open();
  CreateFactory();
  StartPlant();
  auto r = http().Put("/digitaltwins/machine-1/desired/cycleTime", "42.5");
  ASSERT_EQ(r.status, 202u) << r.body;
  json::value a = r.json();
  EXPECT_EQ(a.at("path"), json::value("cycleTime"));
  EXPECT_EQ(a.at("value"), json::value(42.5));
  EXPECT_EQ(a.at("version"), json::value(1));
  EXPECT_EQ(a.at("state"), json::value("pending"));
  EXPECT_TRUE(a.at("correlationId").is_string());
  EXPECT_TRUE(a.at("since").is_string());
  ASSERT_TRUE(WaitUntil([&] { return Field(CycleTimeMeta(), {"syncState"}) == "inSync"; }));
  json::value meta = CycleTimeMeta();
  EXPECT_EQ(meta.at("desiredValue"), json::value(42.5));
  EXPECT_EQ(meta.at("desiredVersion"), json::value(1));
  EXPECT_EQ(meta.at("ackVersion"), json::value(1));
  EXPECT_EQ(meta.at("ackCode"), json::value(200));
  EXPECT_EQ(meta.at("ackDescription"), json::value("applied"));
  // The plant reports the value it now runs with.
  ASSERT_TRUE(WaitUntil([&] {
    return Field(http().Get("/digitaltwins/machine-1").json(), {"cycleTime"}) == json::value(42.5);
  }));
  auto list = http().Get("/digitaltwins/machine-1/desired");
  ASSERT_EQ(list.status, 200u);
  ASSERT_EQ(list.json().at("value").as_array().size(), 1u);
  EXPECT_EQ(list.json().at("value").at(0).at("state"), json::value("inSync"));

  auto c = http().Put("/digitaltwins/machine-1/desired/motorTemperature/alarmThreshold", "91");
  ASSERT_EQ(c.status, 202u) << c.body;
  EXPECT_EQ(c.json().at("path"), json::value("motorTemperature/alarmThreshold"));

  // Refused before anything is written or sent.
  struct Case {
    std::string target, body, code;
    unsigned status;
  };
  for (const Case& k : std::vector<Case>{
           {"/digitaltwins/machine-1/desired/spindleSpeed", "1", "DESIRED_NOT_WRITABLE", 400},
           {"/digitaltwins/machine-1/desired/serialNumber", "\"x\"", "DESIRED_NOT_WRITABLE", 400},
           {"/digitaltwins/machine-1/desired/nope", "1", "DESIRED_UNKNOWN_ELEMENT", 404},
           {"/digitaltwins/machine-1/desired/cycleTime", "\"fast\"", "DESIRED_WRONG_TYPE", 400},
           {"/digitaltwins/machine-1/desired/cycleTime", "", "INVALID_BODY", 400},
           {"/digitaltwins/nobody/desired/cycleTime", "1", "TWIN_NOT_FOUND", 404},
       }) {
    auto x = http().Put(k.target, k.body);
    EXPECT_EQ(x.status, k.status) << k.target << " " << x.body;
    EXPECT_EQ(x.json().at("code"), json::value(k.code)) << k.target << " " << x.body;
  }
  EXPECT_EQ(http().Get("/digitaltwins/nobody/desired").status, 404u);

  // The state is in the store: reopen everything (the plant is stopped, nothing changes it).
  ASSERT_TRUE(WaitUntil([&] {
    json::value l = Field(http().Get("/digitaltwins/machine-1/desired").json(), {"value"});
    return l.is_array() && l.as_array().size() == 2 && Field(l.at(0), {"state"}) == "inSync" &&
           Field(l.at(1), {"state"}) == "inSync";
  }));
  ASSERT_TRUE(plant_->Stop(5s).ok());
  plant_.reset();
  Open();
  json::value after = CycleTimeMeta();
  EXPECT_EQ(after.at("syncState"), json::value("inSync"));
  EXPECT_EQ(after.at("ackCode"), json::value(200));
  EXPECT_EQ(after.at("ackVersion"), json::value(1));
  EXPECT_EQ(after.at("desiredValue"), json::value(42.5));
  auto comp = http().Get("/digitaltwins/machine-1").json().at("motorTemperature");
  EXPECT_EQ(comp.at("$metadata").at("alarmThreshold").at("syncState"), json::value("inSync"));
}

TEST_F(DeviceApiTest, CommandsOverHttp) {
  Open();
  CreateFactory();
  StartPlant();
  auto ok = http().Post("/digitaltwins/machine-1/commands/setSpeed", "1800");
  ASSERT_EQ(ok.status, 200u) << ok.body;
  EXPECT_EQ(ok.json(), json::parse(R"({"status": 200, "payload": true})"));
  auto stop = http().Post("/digitaltwins/machine-2/commands/stop", "");
  ASSERT_EQ(stop.status, 200u) << stop.body;

  // The device refuses: its status and error in a problem.
  auto refused = http().Post("/digitaltwins/machine-1/commands/setSpeed", "99999");
  ASSERT_EQ(refused.status, 400u) << refused.body;
  EXPECT_EQ(refused.json().at("code"), json::value("COMMAND_FAILED"));
  EXPECT_EQ(refused.json().at("deviceStatus"), json::value(400));
  EXPECT_EQ(refused.header("content-type"), "application/problem+json");

  struct Case {
    std::string target, body, code;
    unsigned status;
  };
  for (const Case& k : std::vector<Case>{
           {"/digitaltwins/machine-1/commands/explode", "", "COMMAND_UNKNOWN", 404},
           {"/digitaltwins/machine-1/components/nope/commands/stop", "", "COMMAND_UNKNOWN", 404},
           {"/digitaltwins/machine-1/commands/setSpeed", "\"fast\"", "COMMAND_BAD_REQUEST", 400},
           {"/digitaltwins/machine-1/commands/setSpeed?timeoutMs=soon", "1", "BAD_TIMEOUT", 400},
           {"/digitaltwins/nobody/commands/stop", "", "TWIN_NOT_FOUND", 404},
           {"/digitaltwins/fake-1/commands/stop", "", "COMMAND_TIMEOUT", 504},
           {"/digitaltwins/fake-1/commands/stop?timeoutMs=50", "", "COMMAND_TIMEOUT", 504},
       }) {
    auto x = http().Post(k.target, k.body);
    EXPECT_EQ(x.status, k.status) << k.target << " " << x.body;
    EXPECT_EQ(x.json().at("code"), json::value(k.code)) << k.target << " " << x.body;
  }
  std::string metrics = http().Get("/metrics").body;
  EXPECT_NE(metrics.find("doppel_device_messages_total{kind=\"command_response\"} 3"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("doppel_device_messages_total{kind=\"command_timeout\"} 2"),
            std::string::npos);
}

TEST_F(DeviceApiTest, WithoutBrokerValuesAreCheckedThenRefusedAsOffline) {
  Open(/*with_broker=*/false);
  CreateFactory();
  auto off = http().Put("/digitaltwins/machine-1/desired/cycleTime", "40");
  EXPECT_EQ(off.status, 503u) << off.body;
  EXPECT_EQ(off.json().at("code"), json::value("DEVICE_OFFLINE"));
  auto bad = http().Put("/digitaltwins/machine-1/desired/cycleTime", "true");
  EXPECT_EQ(bad.json().at("code"), json::value("DESIRED_WRONG_TYPE"));
  auto cmd = http().Post("/digitaltwins/machine-1/commands/stop", "");
  EXPECT_EQ(cmd.status, 503u) << cmd.body;
  // Nothing was written.
  auto twin = http().Get("/digitaltwins/machine-1").json();
  EXPECT_FALSE(twin.at("$metadata").as_object().contains("cycleTime")) << twin;
  EXPECT_TRUE(http().Get("/digitaltwins/machine-1/desired").json().at("value").as_array().empty());
}

}  // namespace
}  // namespace doppel
