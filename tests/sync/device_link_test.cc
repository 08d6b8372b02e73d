// DeviceLink end to end: desired values and commands over a real mosquitto (mosquitto_broker.h),
// against the virtual plant (the reference device) and a fake device the test drives by hand.
// The example factory models, an in-memory twin graph, MqttIngest with a broker. No wall-clock
// assertions: every wait is "until the state says so", with a generous deadline.
#include "sync/device_link.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "model/model_repository.h"
#include "mosquitto_broker.h"
#include "sync_test_util.h"
#include "plant/plant.h"
#include "sync/ingest.h"
#include "sync/mqtt_ingest.h"
#include "twin/twin_graph.h"

namespace doppel::sync {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using testing::MosquittoBroker;
using testing::WaitUntil;

constexpr auto kWait = 60s;
constexpr char kMachine[] = "dtmi:doppel:example:factory:Machine;1";

class MemoryPersistence : public DesiredPersistence, public MappingPersistence {
 public:
  core::Status LoadAll(const std::function<void(std::string_view, std::string_view)>& fn) override {
    std::lock_guard lock(mu_);
    for (const auto& [id, doc] : docs_) fn(id, doc);
    return {};
  }
  core::Status Save(std::string_view id, std::string_view doc) override {
    std::lock_guard lock(mu_);
    docs_[std::string(id)] = std::string(doc);
    return {};
  }
  core::Status Delete(std::string_view id) override {
    std::lock_guard lock(mu_);
    docs_.erase(std::string(id));
    return {};
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> docs_;
};

// A device the test answers for: records desired values and commands; acks and responses are
// published by the test.
class FakeDevice {
 public:
  explicit FakeDevice(int port) {
    MqttOptions o;
    o.port = port;
    o.client_id = "fake-device";
    o.persistent_session = false;
    MqttCallbacks cb;
    cb.on_message = [this](const MqttMessage& m) {
      std::lock_guard lock(mu_);
      messages_.push_back(m);
    };
    client_ = std::make_unique<MqttClient>(o, std::move(cb));
    (void)client_->Subscribe("dev/+/desired", 1);
    (void)client_->Subscribe("dev/+/commands/+", 1);
  }
  ::testing::AssertionResult Start() {
    if (core::Status s = client_->Start(); !s.ok()) {
      return ::testing::AssertionFailure() << s.ToString();
    }
    if (core::Status s = client_->WaitUntilSubscribed(30s); !s.ok()) {
      return ::testing::AssertionFailure() << s.ToString();
    }
    return ::testing::AssertionSuccess();
  }
  std::vector<MqttMessage> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }
  std::size_t count() {
    std::lock_guard lock(mu_);
    return messages_.size();
  }
  // Waits for message number `n` (0-based).
  MqttMessage WaitFor(std::size_t n) {
    EXPECT_TRUE(WaitUntil([&] { return count() > n; }));
    auto all = messages();
    return n < all.size() ? all[n] : MqttMessage{};
  }
  void Ack(const std::string& machine, const std::string& correlation, bool applied,
           const std::string& error = {}) {
    json::object a{{"correlationId", correlation},
                   {"status", applied ? "applied" : "rejected"},
                   {"path", "/cycleTime"}};
    if (!applied) a["error"] = error;
    ASSERT_TRUE(client_->Publish(fmt::format("dev/{}/ack", machine), json::serialize(a), 1).ok());
  }
  void Respond(const MqttMessage& request, const std::string& status, const std::string& payload) {
    ASSERT_TRUE(request.properties.response_topic.has_value());
    MqttProperties p;
    p.correlation_data = request.properties.correlation_data;
    p.user_properties.emplace_back("status", status);
    ASSERT_TRUE(client_->Publish(*request.properties.response_topic, payload, 1, false, p).ok());
  }

 private:
  std::mutex mu_;
  std::vector<MqttMessage> messages_;
  std::unique_ptr<MqttClient> client_;
};

json::value PlantMapping() {
  return json::parse(R"({
    "id": "plant-reported",
    "topic": "plant/{line}/{machine}/reported",
    "twin": "{machine}",
    "model": "dtmi:doppel:example:factory:Machine;1",
    "fields": [
      {"pointer": "/cycleTime", "element": "cycleTime", "optional": true},
      {"pointer": "/motorTemperature/alarmThreshold", "element": "motorTemperature/alarmThreshold",
       "optional": true}
    ],
    "timestamp": {"pointer": "/ts", "format": "rfc3339"},
    "desired": {"topic": "plant/{line}/{machine}/desired", "ackTopic": "plant/{line}/{machine}/ack"},
    "commands": {"topic": "plant/{line}/{machine}/commands/{command}"}
  })");
}

// The fake device: twins fake-*, routed by reading the twin template backwards.
json::value FakeMapping(int desired_timeout_ms = 30000, int command_timeout_ms = 30000) {
  return json::parse(fmt::format(R"({{
    "id": "fake",
    "topic": "dev/{{machine}}/reported",
    "twin": "{{machine}}",
    "fields": [{{"pointer": "/cycleTime", "element": "cycleTime"}}],
    "desired": {{"topic": "dev/{{machine}}/desired", "ackTopic": "dev/{{machine}}/ack",
                "timeoutMs": {}}},
    "commands": {{"topic": "dev/{{machine}}/commands/{{command}}", "timeoutMs": {}}}
  }})",
                                 desired_timeout_ms, command_timeout_ms));
}

class DeviceLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<model::SourceDocument> docs = testing::FactoryModelDocs();
    auto added = models_.Add(docs);
    ASSERT_TRUE(added.ok());
    graph_ = std::make_unique<twin::TwinGraph>(models_, nullptr);
    for (const char* id : {"machine-1", "machine-2", "machine-9", "fake-1", "fake-2"}) {
      auto t = graph_->PutTwinSync(
          id, json::parse(fmt::format(R"({{"$metadata": {{"$model": "{}"}}}})", kMachine)));
      ASSERT_TRUE(t.ok()) << t.status().ToString();
    }
    ingest_ = std::make_unique<Ingestor>(models_, *graph_);
    ASSERT_TRUE(broker_.Start());
  }

  void TearDown() override {
    if (plant_) (void)plant_->Stop(5s);
    plant_.reset();
    if (link_) link_->Stop();
    if (mqtt_) mqtt_->Stop();
    link_.reset();
    mqtt_.reset();
  }

  // MqttIngest with a broker and the link (started before the client, as serve does).
  void StartLink(DesiredPersistence* persistence = nullptr, DeviceLinkOptions options = {}) {
    MqttIngestOptions o;
    MqttOptions b;
    b.port = broker_.port();
    b.client_id = "doppel-test";
    o.broker = b;
    mqtt_ = std::make_unique<MqttIngest>(models_, *ingest_, &mappings_, o);
    ASSERT_TRUE(mqtt_->Load().ok());
    link_ = std::make_unique<DeviceLink>(models_, *graph_, mqtt_.get(), persistence, options);
    ASSERT_TRUE(link_->Load().ok());
    ASSERT_TRUE(link_->Start().ok());
    ASSERT_TRUE(mqtt_->Start().ok());
  }

  void PutMapping(const json::value& doc) {
    auto r = mqtt_->Put(doc);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(mqtt_->WaitUntilSubscribed(30s).ok());
  }

  // The plant, once its reported values reached the twins (so the link knows the {line}).
  void StartPlant() {
    PutMapping(PlantMapping());
    plant::PlantOptions po;
    po.port = broker_.port();
    po.line = "line-1";
    po.rate = 5;
    po.simulator.machines = 2;
    po.simulator.fault_rate = 0;
    po.simulator.missing_rate = 0;
    plant_ = std::make_unique<plant::Plant>(po);
    ASSERT_TRUE(plant_->Start().ok());
    ASSERT_TRUE(WaitUntil([&] {
      return Value("machine-1", "/cycleTime") != nullptr &&
             Value("machine-2", "/cycleTime") != nullptr;
    }));
  }

  // The twin's value at a one-level pointer (copy), or null when absent.
  std::unique_ptr<json::value> Value(const std::string& twin, std::string_view pointer) {
    auto t = graph_->FindTwin(twin);
    if (!t) return nullptr;
    const json::value* v = t->doc.if_contains(pointer.substr(1));
    return v ? std::make_unique<json::value>(*v) : nullptr;
  }

  core::Result<DesiredEntry> SetDesired(const std::string& twin, const std::string& path,
                                        json::value value) {
    std::promise<core::Result<DesiredEntry>> p;
    auto f = p.get_future();
    link_->SetDesired(twin, path, std::move(value),
                      [&p](core::Result<DesiredEntry> r) { p.set_value(std::move(r)); });
    if (f.wait_for(kWait) != std::future_status::ready) {
      return core::Status("TEST_TIMEOUT", "SetDesired did not answer");
    }
    return f.get();
  }

  core::Result<CommandResponse> Invoke(const std::string& twin, const std::string& name,
                                       json::value request,
                                       std::optional<std::chrono::milliseconds> timeout = {},
                                       const std::string& component = {}) {
    std::promise<core::Result<CommandResponse>> p;
    auto f = p.get_future();
    link_->Invoke(twin, component, name, std::move(request), timeout,
                  [&p](core::Result<CommandResponse> r) { p.set_value(std::move(r)); });
    if (f.wait_for(kWait) != std::future_status::ready) {
      return core::Status("TEST_TIMEOUT", "Invoke did not answer");
    }
    return f.get();
  }

  std::optional<DesiredEntry> Entry(const std::string& twin, const std::string& path) {
    for (auto& e : link_->Desired(twin)) {
      if (e.path == path) return e;
    }
    return std::nullopt;
  }

  bool WaitForState(const std::string& twin, const std::string& path, SyncState state) {
    return WaitUntil([&] {
      auto e = Entry(twin, path);
      return e && e->state == state;
    });
  }

  // The twin's $metadata entry for a top-level property, as GET shows it.
  json::object Metadata(const std::string& twin, const std::string& prop) {
    auto t = graph_->FindTwin(twin);
    if (!t) return {};
    json::object doc = link_->Decorate(t->doc);
    return doc.at("$metadata").as_object().at(prop).as_object();
  }

  // Sets `value` as the twin's reported value (what ingest of a reading does).
  void Report(const std::string& twin, const std::string& pointer, json::value value) {
    auto r = graph_->PatchTwinSync(
        twin, json::array{json::object{{"op", "add"}, {"path", pointer}, {"value", value}}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  model::ModelRepository models_;
  std::unique_ptr<twin::TwinGraph> graph_;
  std::unique_ptr<Ingestor> ingest_;
  MosquittoBroker broker_;
  MemoryPersistence mappings_;
  std::unique_ptr<MqttIngest> mqtt_;
  std::unique_ptr<DeviceLink> link_;
  std::unique_ptr<plant::Plant> plant_;
};

// ---- desired values against the plant ----------------------------------------------------------

TEST_F(DeviceLinkTest, DesiredAppliedByThePlantIsInSyncAndReported) {
  StartLink();
  StartPlant();
  auto e = SetDesired("machine-1", "cycleTime", 42.5);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->state, SyncState::kPending);
  EXPECT_EQ(e->version, 1);
  EXPECT_EQ(e->topic, "plant/line-1/machine-1/desired");
  EXPECT_FALSE(e->correlation_id.empty());
  ASSERT_TRUE(WaitForState("machine-1", "cycleTime", SyncState::kInSync));
  // The plant reports the new value; ingest writes it to the twin.
  ASSERT_TRUE(WaitUntil([&] {
    auto v = Value("machine-1", "/cycleTime");
    return v && v->is_double() && v->get_double() == 42.5;
  }));
  json::object meta = Metadata("machine-1", "cycleTime");
  EXPECT_EQ(meta.at("desiredValue"), json::value(42.5));
  EXPECT_EQ(meta.at("desiredVersion"), json::value(1));
  EXPECT_EQ(meta.at("ackVersion"), json::value(1));
  EXPECT_EQ(meta.at("ackCode"), json::value(200));
  EXPECT_EQ(meta.at("syncState"), json::value("inSync"));
  EXPECT_FALSE(meta.contains("pendingSince"));
  EXPECT_EQ(link_->stats().acks, 1u);

  // A property of a component.
  auto c = SetDesired("machine-1", "motorTemperature/alarmThreshold", 90.0);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(WaitForState("machine-1", "motorTemperature/alarmThreshold", SyncState::kInSync));
  auto t = graph_->FindTwin("machine-1");
  json::object doc = link_->Decorate(t->doc);
  const json::object& cm =
      doc.at("motorTemperature").at("$metadata").at("alarmThreshold").as_object();
  EXPECT_EQ(cm.at("desiredValue"), json::value(90.0));
  EXPECT_EQ(cm.at("syncState"), json::value("inSync"));
  EXPECT_EQ(cm.at("ackCode"), json::value(200));
}

TEST_F(DeviceLinkTest, DesiredRejectedByThePlantFails) {
  StartLink();
  StartPlant();
  // A double (the model accepts it) that the plant refuses: cycleTime must be > 0.
  auto e = SetDesired("machine-2", "cycleTime", -5.0);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  ASSERT_TRUE(WaitForState("machine-2", "cycleTime", SyncState::kFailed));
  auto entry = Entry("machine-2", "cycleTime");
  EXPECT_EQ(entry->ack_code, 400);
  EXPECT_NE(entry->ack_description.find("PLANT_BAD_VALUE"), std::string::npos)
      << entry->ack_description;
  json::object meta = Metadata("machine-2", "cycleTime");
  EXPECT_EQ(meta.at("syncState"), json::value("failed"));
  EXPECT_EQ(meta.at("ackCode"), json::value(400));
}

// ---- desired values against the fake device ----------------------------------------------------

TEST_F(DeviceLinkTest, DesiredWithoutAckTimesOut) {
  StartLink();
  PutMapping(FakeMapping(/*desired_timeout_ms=*/200));
  FakeDevice device(broker_.port());
  ASSERT_TRUE(device.Start());
  auto e = SetDesired("fake-1", "cycleTime", 40.0);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->topic, "dev/fake-1/desired");
  MqttMessage sent = device.WaitFor(0);
  EXPECT_EQ(sent.topic, "dev/fake-1/desired");
  auto payload = json::parse(sent.payload);
  EXPECT_EQ(payload.at("correlationId"), json::value(e->correlation_id));
  EXPECT_EQ(payload.at("path"), json::value("/cycleTime"));
  EXPECT_EQ(payload.at("value"), json::value(40.0));
  ASSERT_TRUE(WaitForState("fake-1", "cycleTime", SyncState::kFailed));
  auto entry = Entry("fake-1", "cycleTime");
  EXPECT_EQ(entry->ack_code, 408);
  EXPECT_EQ(entry->ack_description.rfind("timeout", 0), 0u) << entry->ack_description;
  EXPECT_EQ(link_->stats().desired_timeouts, 1u);
  // A late ack still settles it.
  device.Ack("fake-1", e->correlation_id, true);
  ASSERT_TRUE(WaitForState("fake-1", "cycleTime", SyncState::kInSync));
  EXPECT_EQ(Entry("fake-1", "cycleTime")->ack_code, 200);
}

TEST_F(DeviceLinkTest, NewerDesiredSupersedesThePendingOne) {
  StartLink();
  PutMapping(FakeMapping());
  FakeDevice device(broker_.port());
  ASSERT_TRUE(device.Start());
  auto first = SetDesired("fake-1", "cycleTime", 41.0);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = SetDesired("fake-1", "cycleTime", 43.0);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_NE(first->correlation_id, second->correlation_id);
  EXPECT_EQ(second->version, first->version + 1);
  device.WaitFor(1);
  // The old value's ack is ignored and counted.
  device.Ack("fake-1", first->correlation_id, true);
  ASSERT_TRUE(WaitUntil([&] { return link_->stats().acks_superseded == 1; }));
  auto entry = Entry("fake-1", "cycleTime");
  EXPECT_EQ(entry->state, SyncState::kPending);
  EXPECT_EQ(entry->value, json::value(43.0));
  json::object meta = Metadata("fake-1", "cycleTime");
  EXPECT_EQ(meta.at("syncState"), json::value("pending"));
  EXPECT_TRUE(meta.contains("pendingSince"));
  EXPECT_EQ(meta.at("desiredValue"), json::value(43.0));
  // An ack nobody waits for.
  device.Ack("fake-1", "no-such-id", true);
  ASSERT_TRUE(WaitUntil([&] { return link_->stats().acks_unknown == 1; }));
  device.Ack("fake-1", second->correlation_id, true);
  ASSERT_TRUE(WaitForState("fake-1", "cycleTime", SyncState::kInSync));
  EXPECT_EQ(Entry("fake-1", "cycleTime")->ack_version, second->version);
}

TEST_F(DeviceLinkTest, ReportedValuesSettleAndDiverge) {
  std::mutex mu;
  std::map<std::string, std::int64_t> divergence;  // what sync quality is told
  DeviceLinkOptions options;
  options.on_divergence = [&](const std::string& twin, std::int64_t n) {
    std::lock_guard lock(mu);
    divergence[twin] = n;
  };
  auto diverged = [&](const std::string& twin) {
    std::lock_guard lock(mu);
    return divergence.contains(twin) ? divergence[twin] : -1;
  };
  StartLink(nullptr, options);
  PutMapping(FakeMapping());
  FakeDevice device(broker_.port());
  ASSERT_TRUE(device.Start());
  // Pending, the device keeps reporting its old value: still pending.
  auto e = SetDesired("fake-1", "cycleTime", 50);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  Report("fake-1", "/cycleTime", 45.0);
  // A reported value equal to the desired one settles it (50 == 50.0).
  Report("fake-1", "/cycleTime", 50.0);
  ASSERT_TRUE(WaitForState("fake-1", "cycleTime", SyncState::kInSync));
  EXPECT_EQ(Entry("fake-1", "cycleTime")->ack_description, "reported");
  EXPECT_EQ(link_->stats().reported_settled, 1u);
  // Then the device drifts away from it: diverged.
  Report("fake-1", "/cycleTime", 61.5);
  ASSERT_TRUE(WaitForState("fake-1", "cycleTime", SyncState::kDiverged));
  EXPECT_EQ(Entry("fake-1", "cycleTime")->reported, json::value(61.5));
  EXPECT_EQ(Metadata("fake-1", "cycleTime").at("syncState"), json::value("diverged"));
  // on_divergence runs after the change is visible: wait for it.
  EXPECT_TRUE(WaitUntil([&] { return diverged("fake-1") == 1; })) << diverged("fake-1");
  EXPECT_EQ(link_->stats().diverged, 1u);
  // And back.
  Report("fake-1", "/cycleTime", 50.0);
  ASSERT_TRUE(WaitForState("fake-1", "cycleTime", SyncState::kInSync));
  EXPECT_TRUE(WaitUntil([&] { return diverged("fake-1") == 0; })) << diverged("fake-1");

  // Rejected stays failed whatever the device reports.
  auto r = SetDesired("fake-2", "cycleTime", 10.0);
  ASSERT_TRUE(r.ok());
  device.Ack("fake-2", r->correlation_id, false, "PLANT_BAD_VALUE: no");
  ASSERT_TRUE(WaitForState("fake-2", "cycleTime", SyncState::kFailed));
  EXPECT_EQ(Entry("fake-2", "cycleTime")->ack_description, "PLANT_BAD_VALUE: no");
  Report("fake-2", "/cycleTime", 12.0);
  // The worker reads the change feed in order: once fake-1 diverged, fake-2's write was seen.
  Report("fake-1", "/cycleTime", 70.0);
  ASSERT_TRUE(WaitForState("fake-1", "cycleTime", SyncState::kDiverged));
  EXPECT_EQ(Entry("fake-2", "cycleTime")->state, SyncState::kFailed);
}

TEST_F(DeviceLinkTest, BadDesiredValuesAreRefusedBeforeAnythingIsWrittenOrSent) {
  StartLink();
  PutMapping(FakeMapping());
  FakeDevice device(broker_.port());
  ASSERT_TRUE(device.Start());
  const std::string etag = graph_->FindTwin("fake-1")->etag;
  struct Case {
    std::string twin, path;
    json::value value;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"fake-1", "nope", 1, "DESIRED_UNKNOWN_ELEMENT"},
      {"fake-1", "motorTemperature/nope", 1, "DESIRED_UNKNOWN_ELEMENT"},
      {"fake-1", "nope/alarmThreshold", 1, "DESIRED_UNKNOWN_ELEMENT"},
      {"fake-1", "a/b/c", 1, "DESIRED_UNKNOWN_ELEMENT"},
      {"fake-1", "serialNumber", "x", "DESIRED_NOT_WRITABLE"},
      {"fake-1", "spindleSpeed", 1.0, "DESIRED_NOT_WRITABLE"},
      {"fake-1", "setSpeed", 1.0, "DESIRED_NOT_WRITABLE"},
      {"fake-1", "cycleTime", "fast", "DESIRED_WRONG_TYPE"},
      {"fake-1", "motorTemperature/alarmThreshold", true, "DESIRED_WRONG_TYPE"},
      {"nobody", "cycleTime", 1.0, "TWIN_NOT_FOUND"},
  };
  for (const Case& c : cases) {
    auto r = SetDesired(c.twin, c.path, c.value);
    ASSERT_FALSE(r.ok()) << c.path;
    EXPECT_EQ(r.status().code(), c.code) << c.path << ": " << r.status().ToString();
  }
  EXPECT_EQ(graph_->FindTwin("fake-1")->etag, etag);
  EXPECT_TRUE(link_->Desired("fake-1").empty());
  EXPECT_EQ(link_->stats().desired_sent, 0u);
  EXPECT_EQ(device.count(), 0u);
}

TEST_F(DeviceLinkTest, NoRouteAndNoBroker) {
  StartLink();
  // No mapping with `desired` at all.
  auto none = SetDesired("machine-1", "cycleTime", 1.0);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), "DEVICE_NO_ROUTE");
  // The plant mapping needs {line}, which only a message can tell.
  PutMapping(PlantMapping());
  auto r = SetDesired("machine-1", "cycleTime", 1.0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "DEVICE_NO_ROUTE");
  EXPECT_NE(r.status().message().find("'line'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("machine-1"), std::string::npos) << r.status().message();
  auto cmd = Invoke("machine-1", "stop", nullptr);
  ASSERT_FALSE(cmd.ok());
  EXPECT_EQ(cmd.status().code(), "DEVICE_NO_ROUTE");
  EXPECT_EQ(graph_->FindTwin("machine-1")->doc.at("$metadata").as_object().count("cycleTime"), 0u);

  // No broker: validated, then DEVICE_OFFLINE.
  DeviceLink offline(models_, *graph_, nullptr, nullptr);
  std::promise<core::Result<DesiredEntry>> p;
  offline.SetDesired("machine-1", "cycleTime", 1.0,
                     [&p](core::Result<DesiredEntry> x) { p.set_value(std::move(x)); });
  auto o = p.get_future().get();
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), "DEVICE_OFFLINE");
  std::promise<core::Result<DesiredEntry>> p2;
  offline.SetDesired("machine-1", "cycleTime", "x",
                     [&p2](core::Result<DesiredEntry> x) { p2.set_value(std::move(x)); });
  EXPECT_EQ(p2.get_future().get().status().code(), "DESIRED_WRONG_TYPE");
}

TEST_F(DeviceLinkTest, DesiredStateSurvivesARestartOfTheLink) {
  MemoryPersistence persistence;
  StartLink(&persistence);
  PutMapping(FakeMapping());
  FakeDevice device(broker_.port());
  ASSERT_TRUE(device.Start());
  auto a = SetDesired("fake-1", "cycleTime", 44.0);
  ASSERT_TRUE(a.ok());
  device.Ack("fake-1", a->correlation_id, false, "NOPE: refused");
  ASSERT_TRUE(WaitForState("fake-1", "cycleTime", SyncState::kFailed));
  auto b = SetDesired("fake-2", "cycleTime", 46.0);
  ASSERT_TRUE(b.ok());
  link_->Stop();
  mqtt_->Stop();
  link_.reset();
  mqtt_.reset();

  StartLink(&persistence);
  auto ea = Entry("fake-1", "cycleTime");
  ASSERT_TRUE(ea.has_value());
  EXPECT_EQ(ea->state, SyncState::kFailed);
  EXPECT_EQ(ea->ack_code, 400);
  EXPECT_EQ(ea->ack_description, "NOPE: refused");
  EXPECT_EQ(ea->value, json::value(44.0));
  EXPECT_EQ(Metadata("fake-1", "cycleTime").at("syncState"), json::value("failed"));
  auto eb = Entry("fake-2", "cycleTime");
  ASSERT_TRUE(eb.has_value());
  EXPECT_EQ(eb->state, SyncState::kPending);
  // The pending one's ack, after the restart, still settles it (same correlation id).
  device.Ack("fake-2", b->correlation_id, true);
  ASSERT_TRUE(WaitForState("fake-2", "cycleTime", SyncState::kInSync));
}

// ---- commands ---------------------------------------------------------------------------------

TEST_F(DeviceLinkTest, CommandsRoundTripWithThePlant) {
  StartLink();
  StartPlant();
  auto r = Invoke("machine-1", "setSpeed", 1800.0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->payload, json::value(true));
  auto stop = Invoke("machine-2", "stop", nullptr);
  ASSERT_TRUE(stop.ok()) << stop.status().ToString();
  EXPECT_EQ(stop->status, 200);
  // The plant refuses: out of range (400), and a machine it does not simulate (404).
  auto bad = Invoke("machine-1", "setSpeed", 99999.0);
  ASSERT_TRUE(bad.ok()) << bad.status().ToString();
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->error.find("PLANT_BAD_PAYLOAD"), std::string::npos) << bad->error;
  // machine-9 has no telemetry of its own: route from the twin template, {line} is unknown.
  auto unknown_route = Invoke("machine-9", "stop", nullptr);
  ASSERT_FALSE(unknown_route.ok());
  EXPECT_EQ(unknown_route.status().code(), "DEVICE_NO_ROUTE");
  EXPECT_EQ(link_->stats().command_responses, 3u);
}

TEST_F(DeviceLinkTest, CommandRequestsAreValidatedBeforePublishing) {
  StartLink();
  PutMapping(FakeMapping());
  FakeDevice device(broker_.port());
  ASSERT_TRUE(device.Start());
  struct Case {
    std::string name, component;
    json::value request;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"explode", "", nullptr, "COMMAND_UNKNOWN"},
      {"cycleTime", "", nullptr, "COMMAND_UNKNOWN"},
      {"setSpeed", "nope", 1.0, "COMMAND_UNKNOWN"},
      {"setSpeed", "", "fast", "COMMAND_BAD_REQUEST"},
      {"setSpeed", "", nullptr, "COMMAND_BAD_REQUEST"},
      {"setMode", "", "warp", "COMMAND_BAD_REQUEST"},
      {"stop", "", 1, "COMMAND_BAD_REQUEST"},
  };
  for (const Case& c : cases) {
    auto r = Invoke("fake-1", c.name, c.request, std::nullopt, c.component);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), c.code) << c.name << ": " << r.status().ToString();
  }
  auto missing = Invoke("nobody", "stop", nullptr);
  EXPECT_EQ(missing.status().code(), "TWIN_NOT_FOUND");
  EXPECT_EQ(link_->stats().commands_sent, 0u);
  EXPECT_EQ(device.count(), 0u);
}

TEST_F(DeviceLinkTest, CommandResponsesFromTheFakeDevice) {
  StartLink();
  PutMapping(FakeMapping(30000, /*command_timeout_ms=*/200));
  FakeDevice device(broker_.port());
  ASSERT_TRUE(device.Start());
  // Each request is answered by a thread that waits for it.
  auto answer = [&](std::size_t n, std::string status, std::string payload) {
    return std::thread([&device, n, status, payload] {
      MqttMessage m = device.WaitFor(n);
      device.Respond(m, status, payload);
    });
  };
  {
    std::thread t = answer(0, "200", "true");
    auto r = Invoke("fake-1", "setMode", "setup");
    t.join();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->payload, json::value(true));
    MqttMessage sent = device.messages()[0];
    EXPECT_EQ(sent.topic, "dev/fake-1/commands/setMode");
    EXPECT_EQ(sent.payload, "\"setup\"");
    EXPECT_EQ(sent.properties.response_topic, link_->response_topic());
    EXPECT_EQ(sent.properties.content_type, "application/json");
  }
  {
    // The response schema is boolean.
    std::thread t = answer(1, "200", "\"yes\"");
    auto r = Invoke("fake-1", "start", nullptr);
    t.join();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), "COMMAND_BAD_RESPONSE");
  }
  {
    std::thread t = answer(2, "200", "not json");
    auto r = Invoke("fake-1", "start", nullptr);
    t.join();
    EXPECT_EQ(r.status().code(), "COMMAND_BAD_RESPONSE");
  }
  {
    std::thread t = answer(3, "409", R"({"error":"PLANT_MACHINE_DOWN: machine is down"})");
    auto r = Invoke("fake-1", "start", nullptr);
    t.join();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 409);
    EXPECT_EQ(r->error, "PLANT_MACHINE_DOWN: machine is down");
  }
  {
    // No answer: the mapping's 200 ms.
    auto r = Invoke("fake-1", "stop", nullptr);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), "COMMAND_TIMEOUT");
    // ?timeoutMs wins over the mapping's.
    auto r2 = Invoke("fake-1", "stop", nullptr, 50ms);
    EXPECT_EQ(r2.status().code(), "COMMAND_TIMEOUT");
    EXPECT_EQ(link_->stats().command_timeouts, 2u);
    // A late answer is counted and dropped.
    device.Respond(device.WaitFor(4), "200", "true");
    ASSERT_TRUE(WaitUntil([&] { return link_->stats().responses_unknown == 1; }));
  }
}

// ---- the mapping members ------------------------------------------------------------------------

TEST(DeviceRouteTest, MappingOutboundMembersAreValidated) {
  auto parse = [](const std::string& extra) {
    return Mapping::Parse(R"({"id": "m", "topic": "plant/{line}/{machine}/reported",
                              "twin": "{machine}",
                              "fields": [{"pointer": "/x", "element": "x"}], )" +
                              extra + "}",
                          nullptr);
  };
  auto ok = parse(R"("desired": {"topic": "plant/{line}/{machine}/desired",
                                 "ackTopic": "plant/{line}/{machine}/ack", "timeoutMs": 500},
                     "commands": {"topic": "plant/{line}/{machine}/commands/{command}"})");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  const OutboundRoutes* out = ok->outbound();
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->desired->timeout, 500ms);
  EXPECT_EQ(out->desired->ack_topic->Filter(), "plant/+/+/ack");
  EXPECT_EQ(out->commands->timeout, 10000ms);
  auto filled = out->commands->topic.Fill({{"line", "l1"}, {"machine", "m1"}, {"command", "go"}});
  EXPECT_EQ(*filled, "plant/l1/m1/commands/go");
  auto missing = out->desired->topic.Fill({{"machine", "m1"}});
  EXPECT_EQ(missing.status().message(), "line");
  EXPECT_EQ(parse(R"("qos": 1)")->outbound(), nullptr);

  struct Case {
    std::string extra, code, pointer;
  };
  const std::vector<Case> cases = {
      {R"("desired": {"topic": "a/{machine}", "colour": 1})", "MAPPING_INVALID", "/desired/colour"},
      {R"("desired": {"ackTopic": "a/{machine}"})", "MAPPING_INVALID", "/desired/topic"},
      {R"("desired": "a/b")", "MAPPING_INVALID", "/desired"},
      {R"("desired": {"topic": "a/{nope}"})", "MAPPING_TEMPLATE", "/desired/topic"},
      {R"("desired": {"topic": "a/b", "ackTopic": "a/x{machine}"})", "MAPPING_TEMPLATE",
       "/desired/ackTopic"},
      {R"("desired": {"topic": "a/+"})", "MAPPING_TOPIC", "/desired/topic"},
      {R"("desired": {"topic": "a/b", "timeoutMs": 0})", "MAPPING_INVALID", "/desired/timeoutMs"},
      {R"("commands": {"topic": "a/{command}/#"})", "MAPPING_TOPIC", "/commands/topic"},
      {R"("commands": {"topic": "a/{cmd}"})", "MAPPING_TEMPLATE", "/commands/topic"},
      {R"("commands": {"topic": "a/b", "timeoutMs": "1s"})", "MAPPING_INVALID",
       "/commands/timeoutMs"},
  };
  for (const Case& c : cases) {
    auto r = parse(c.extra);
    ASSERT_FALSE(r.ok()) << c.extra;
    EXPECT_EQ(r.status().code(), c.code) << c.extra << ": " << r.status().ToString();
    EXPECT_EQ(r.status().pointer(), c.pointer) << c.extra;
  }
}

TEST(DeviceRouteTest, TwinTemplatesReadBackwards) {
  std::vector<core::Status> problems;
  auto t =
      TopicTemplate::Parse("m-{line}-{machine}", {"line", "machine"}, false, "/twin", &problems);
  ASSERT_TRUE(problems.empty());
  auto v = t.Match("m-l1-x-7");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->at("line"), "l1");
  EXPECT_EQ(v->at("machine"), "x-7");
  EXPECT_FALSE(t.Match("q-l1-7").has_value());
  EXPECT_FALSE(t.Match("m--7").has_value());  // a placeholder takes at least one character
}

}  // namespace
}  // namespace doppel::sync
