// MqttIngest end to end: a real mosquitto (mosquitto_broker.h), the example factory models, an
// in-memory twin graph and a history store on a MemoryBackend. No wall-clock assertions: every
// wait is "until the counters say so", with a generous deadline.
#include "sync/mqtt_ingest.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/time.h"
#include "model/model_repository.h"
#include "mosquitto_broker.h"
#include "sync_test_util.h"
#include "tsdb/history.h"
#include "twin/twin_graph.h"

namespace doppel::sync {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using testing::MosquittoBroker;
using testing::WaitUntil;

constexpr auto kWait = 60s;
constexpr char kCncMill[] = "dtmi:doppel:example:factory:CncMill;1";

class MemoryPersistence : public MappingPersistence {
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
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return docs_.size();
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> docs_;
};

// The plant's telemetry: temperature in °F on the wire (converted to the model's °C).
json::value PlantMapping(const std::string& id = "plant") {
  return json::parse(R"({
    "id": ")" + id + R"(",
    "topic": "plant/{line}/{machine}/telemetry",
    "twin": "{machine}",
    "model": "dtmi:doppel:example:factory:CncMill;1",
    "fields": [
      {"pointer": "/temperature", "element": "motorTemperature/temperature",
       "unit": "degreeFahrenheit"},
      {"pointer": "/spindleSpeed", "element": "spindleSpeed"},
      {"pointer": "/status", "element": "status", "optional": true}
    ],
    "timestamp": {"pointer": "/ts", "format": "rfc3339"}
  })");
}

std::string Telemetry(Clock::time_point ts, double temperature_f, const json::value& speed,
                      const std::string& status = {}) {
  json::object o{
      {"ts", core::FormatRfc3339(ts)}, {"temperature", temperature_f}, {"spindleSpeed", speed}};
  if (!status.empty()) o["status"] = status;
  return json::serialize(o);
}

class MqttIngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<model::SourceDocument> docs = testing::FactoryModelDocs();
    docs.push_back({"gauge", R"({
      "@context": "dtmi:dtdl:context;3", "@id": "dtmi:doppel:test:Gauge;1",
      "@type": "Interface",
      "contents": [{"@type": "Telemetry", "name": "level", "schema": "double"}]})"});
    auto added = models_.Add(docs);
    ASSERT_TRUE(added.ok());
    graph_ = std::make_unique<twin::TwinGraph>(models_, nullptr);
    for (const char* id : {"machine-1", "machine-2"}) {
      auto t =
          graph_->PutTwinSync(id, json::parse(fmt::format(
                                      R"({{"$metadata": {{"$model": "{}"}}, "status": "running",
                      "motorTemperature": {{"$metadata": {{}}}}}})",
                                      kCncMill)));
      ASSERT_TRUE(t.ok()) << t.status().ToString();
    }
    auto g = graph_->PutTwinSync(
        "gauge-1", json::parse(R"({"$metadata": {"$model": "dtmi:doppel:test:Gauge;1"}})"));
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    auto h = tsdb::HistoryStore::Open(backend_);
    ASSERT_TRUE(h.ok());
    history_ = std::move(*h);
    IngestOptions io;
    io.history = history_.get();
    ingestor_ = std::make_unique<Ingestor>(models_, *graph_, io);
    ASSERT_TRUE(broker_.Start());
  }

  void TearDown() override {
    ingest_.reset();
    publisher_.reset();
  }

  // An MqttIngest on the test broker with a persistent session under `client_id`.
  std::unique_ptr<MqttIngest> MakeIngest(const std::string& client_id = "doppel-test",
                                         std::size_t dead_letters = 100) {
    MqttIngestOptions o;
    MqttOptions b;
    b.port = broker_.port();
    b.client_id = client_id;
    b.reconnect_min = 20ms;
    b.reconnect_max = 500ms;
    o.broker = b;
    o.dead_letters_per_mapping = dead_letters;
    return std::make_unique<MqttIngest>(models_, *ingestor_, &persistence_, o);
  }

  void StartIngest() {
    ingest_ = MakeIngest();
    ASSERT_TRUE(ingest_->Load().ok());
    ASSERT_TRUE(ingest_->Start().ok());
  }

  void Put(const json::value& mapping) {
    auto r = ingest_->Put(mapping);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  MqttClient& Publisher() {
    if (!publisher_) {
      MqttOptions o;
      o.port = broker_.port();
      o.client_id = "test-publisher";
      o.persistent_session = false;
      o.reconnect_min = 20ms;
      o.reconnect_max = 500ms;
      publisher_ = std::make_unique<MqttClient>(o, MqttCallbacks{});
      EXPECT_TRUE(publisher_->Start().ok());
      EXPECT_TRUE(publisher_->WaitUntilConnected(kWait).ok());
    }
    return *publisher_;
  }

  void Publish(const std::string& topic, const std::string& payload) {
    auto mid = Publisher().Publish(topic, payload, 1);
    ASSERT_TRUE(mid.ok()) << mid.status().ToString();
  }

  MappingStats Stats(const std::string& id) {
    auto info = ingest_->Get(id);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? info->stats : MappingStats{};
  }

  std::vector<tsdb::Point> History(const std::string& twin, const std::string& path) {
    auto pts = history_->Read({twin, path}, {});
    if (!pts.ok()) return {};
    return *pts;
  }

  std::size_t DistinctTimes(const std::string& twin, const std::string& path) {
    std::set<std::int64_t> times;
    for (const auto& p : History(twin, path)) times.insert(p.t_ns);
    return times.size();
  }

  std::string TwinStatus(const std::string& id) {
    auto t = graph_->FindTwin(id);
    if (!t) return "<none>";
    const auto* s = t->doc.if_contains("status");
    return s && s->is_string() ? std::string(s->get_string()) : "<missing>";
  }

  MosquittoBroker broker_;
  model::ModelRepository models_;
  std::unique_ptr<twin::TwinGraph> graph_;
  tsdb::MemoryBackend backend_;
  std::unique_ptr<tsdb::HistoryStore> history_;
  std::unique_ptr<Ingestor> ingestor_;
  MemoryPersistence persistence_;
  std::unique_ptr<MqttIngest> ingest_;
  std::unique_ptr<MqttClient> publisher_;
};

TEST_F(MqttIngestTest, JsonMappingWithUnitConversionEndToEnd) {
  StartIngest();
  Put(PlantMapping());
  EXPECT_EQ(persistence_.size(), 1u);
  ASSERT_TRUE(ingest_->WaitUntilSubscribed(kWait).ok());
  const auto ts = Clock::now() - 1s;
  Publish("plant/line-1/machine-1/telemetry", Telemetry(ts, 212.0, 1500.0, "idle"));
  ASSERT_TRUE(WaitUntil([&] { return Stats("plant").readings == 3; }));
  const MappingStats st = Stats("plant");
  EXPECT_EQ(st.messages, 1u);
  EXPECT_TRUE(st.rejected.empty());
  EXPECT_TRUE(st.last_message.has_value());
  // 212 °F = 100 °C, at the payload's source time (microseconds).
  auto temp = History("machine-1", "motorTemperature/temperature");
  ASSERT_EQ(temp.size(), 1u);
  EXPECT_DOUBLE_EQ(std::get<double>(temp[0].value), 100.0);
  EXPECT_EQ(temp[0].t_ns / 1000,
            std::chrono::duration_cast<std::chrono::microseconds>(ts.time_since_epoch()).count());
  ASSERT_EQ(History("machine-1", "spindleSpeed").size(), 1u);
  EXPECT_EQ(TwinStatus("machine-1"), "idle");  // a Property: the twin moved
  EXPECT_EQ(TwinStatus("machine-2"), "running");
  EXPECT_TRUE(ingest_->connected());
  EXPECT_EQ(ingest_->unmatched(), 0u);
}

TEST_F(MqttIngestTest, NumberAndLineProtocolMappings) {
  StartIngest();
  Put(json::parse(R"({"id": "gauge", "topic": "sensors/{twin}/level", "twin": "{twin}",
                      "format": "number", "fields": [{"element": "level"}]})"));
  Put(json::parse(R"({"id": "lp", "topic": "lp/{line}", "twin": "{tag:machine}",
                      "format": "line-protocol", "measurement": "machine", "precision": "ms",
                      "fields": [{"field": "speed", "element": "spindleSpeed"},
                                 {"field": "power", "element": "power"}]})"));
  ASSERT_TRUE(ingest_->WaitUntilSubscribed(kWait).ok());
  Publish("sensors/gauge-1/level", " 42.5 ");
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>((Clock::now() - 2s).time_since_epoch())
          .count();
  Publish("lp/line-1", fmt::format("machine,machine=machine-1 speed=1200,power=11.5 {}\n"
                                   "other,machine=machine-1 speed=1 {}\n"
                                   "machine,machine=machine-2 speed=900,power=8.25 {}",
                                   ms, ms, ms));
  ASSERT_TRUE(WaitUntil([&] { return Stats("gauge").readings == 1 && Stats("lp").readings == 4; }));
  auto level = History("gauge-1", "level");
  ASSERT_EQ(level.size(), 1u);
  EXPECT_DOUBLE_EQ(std::get<double>(level[0].value), 42.5);
  auto speed2 = History("machine-2", "spindleSpeed");
  ASSERT_EQ(speed2.size(), 1u);
  EXPECT_DOUBLE_EQ(std::get<double>(speed2[0].value), 900.0);
  EXPECT_EQ(speed2[0].t_ns, ms * 1'000'000);
  EXPECT_DOUBLE_EQ(std::get<double>(History("machine-1", "power").at(0).value), 11.5);
  EXPECT_TRUE(Stats("lp").rejected.empty());
}

TEST_F(MqttIngestTest, RejectionsAreCountedAndDeadLetteredPerMapping) {
  StartIngest();
  Put(PlantMapping());
  Put(json::parse(R"({"id": "gauge", "topic": "sensors/{twin}/level", "twin": "{twin}",
                      "format": "number", "fields": [{"element": "level"}]})"));
  ASSERT_TRUE(ingest_->WaitUntilSubscribed(kWait).ok());
  const auto now = Clock::now() - 1s;
  Publish("plant/line-1/machine-1/telemetry", "{not json");                  // MAPPING
  Publish("plant/line-1/machine-9/telemetry", Telemetry(now, 100, 1000.0));  // no twin
  Publish("plant/line-1/machine-2/telemetry", Telemetry(now, 100, json::value("fast")));
  Publish("plant/line-1/machine-2/telemetry", Telemetry(now + 1ms, 100, 1234.0, "down"));
  Publish("sensors/gauge-1/level", "7");
  ASSERT_TRUE(
      WaitUntil([&] { return Stats("plant").messages == 4 && Stats("gauge").readings == 1; }));
  ASSERT_TRUE(WaitUntil([&] { return Stats("plant").readings == 4; }));
  const MappingStats st = Stats("plant");
  EXPECT_EQ(st.rejected,
            (std::map<std::string, std::uint64_t>{
                {"MAPPING_PAYLOAD", 1}, {"INGEST_UNKNOWN_TWIN", 2}, {"INGEST_WRONG_TYPE", 1}}));
  // machine-2 got its good message (temperature of the bad one too: only the speed was bad).
  EXPECT_EQ(TwinStatus("machine-2"), "down");
  EXPECT_EQ(DistinctTimes("machine-2", "spindleSpeed"), 1u);
  EXPECT_EQ(DistinctTimes("machine-2", "motorTemperature/temperature"), 2u);
  EXPECT_TRUE(History("machine-1", "spindleSpeed").empty());
  // The other mapping saw none of it.
  EXPECT_TRUE(Stats("gauge").rejected.empty());
  auto info = ingest_->Get("plant");
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->dead_letters.size(), 4u);
  EXPECT_EQ(info->dead_letters[0].topic, "plant/line-1/machine-1/telemetry");
  EXPECT_EQ(info->dead_letters[0].error.code(), "MAPPING_PAYLOAD");
  std::multiset<std::string> codes;
  for (const auto& d : info->dead_letters) codes.insert(d.error.code());
  EXPECT_EQ(codes.count("INGEST_UNKNOWN_TWIN"), 2u);
  EXPECT_TRUE(ingest_->Get("gauge")->dead_letters.empty());
}

TEST_F(MqttIngestTest, DeadLettersAreBoundedPerMapping) {
  // No broker needed: HandleMessage is what the network thread calls.
  MqttIngest ingest(models_, *ingestor_, &persistence_, MqttIngestOptions{std::nullopt, 3, "t"});
  ASSERT_TRUE(ingest.Put(PlantMapping()).ok());
  for (int i = 0; i < 10; ++i) {
    ingest.HandleMessage({"plant/l/machine-1/telemetry", "bad " + std::to_string(i), 1, false, {}});
  }
  auto info = ingest.Get("plant");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->stats.messages, 10u);
  EXPECT_EQ(info->stats.rejected.at("MAPPING_PAYLOAD"), 10u);
  ASSERT_EQ(info->dead_letters.size(), 3u);
  EXPECT_NE(info->dead_letters.back().value.find("bad 9"), std::string::npos)
      << info->dead_letters.back().value;
  ingest.HandleMessage({"elsewhere", "1", 1, false, {}});
  EXPECT_EQ(ingest.unmatched(), 1u);
  EXPECT_FALSE(ingest.broker_configured());
  EXPECT_EQ(ingest.WaitUntilSubscribed(1s).code(), "MQTT_NOT_STARTED");
}

TEST_F(MqttIngestTest, SharedFilterStaysSubscribedUntilNoMappingNeedsIt) {
  StartIngest();
  Put(PlantMapping("a"));
  Put(PlantMapping("b"));
  EXPECT_EQ(ingest_->subscriptions(), (std::map<std::string, int>{{"plant/+/+/telemetry", 1}}));
  ASSERT_TRUE(ingest_->Remove("a").ok());
  EXPECT_EQ(ingest_->Remove("a").code(), "MAPPING_NOT_FOUND");
  EXPECT_EQ(ingest_->subscriptions(), (std::map<std::string, int>{{"plant/+/+/telemetry", 1}}));
  ASSERT_TRUE(ingest_->WaitUntilSubscribed(kWait).ok());
  Publish("plant/line-1/machine-1/telemetry", Telemetry(Clock::now(), 100, 1000.0));
  ASSERT_TRUE(WaitUntil([&] { return Stats("b").readings == 2; }));
  ASSERT_TRUE(ingest_->Remove("b").ok());
  EXPECT_TRUE(ingest_->subscriptions().empty());
  EXPECT_EQ(persistence_.size(), 0u);
}

TEST_F(MqttIngestTest, MessagesPublishedWhileStoppedArriveAfterReconnect) {
  persistence_.Save("plant", json::serialize(PlantMapping()));
  StartIngest();
  ASSERT_TRUE(ingest_->WaitUntilSubscribed(kWait).ok());
  ingest_->Stop();  // the broker keeps the session and queues QoS 1 messages for it
  ingest_.reset();
  constexpr int kN = 200;
  const auto base = Clock::now() - 10s;
  for (int i = 0; i < kN; ++i) {
    Publish("plant/line-1/machine-1/telemetry",
            Telemetry(base + std::chrono::milliseconds(i), 100, 1000.0 + i));
  }
  ASSERT_TRUE(Publisher().Flush(kWait).ok());  // all in the broker's queue for our session
  EXPECT_TRUE(History("machine-1", "spindleSpeed").empty());
  // A new MqttIngest (a restarted doppel) with the same client id gets every one of them.
  StartIngest();
  ASSERT_TRUE(WaitUntil([&] { return DistinctTimes("machine-1", "spindleSpeed") == kN; }))
      << DistinctTimes("machine-1", "spindleSpeed");
  EXPECT_GE(Stats("plant").messages, static_cast<std::uint64_t>(kN));
  EXPECT_TRUE(Stats("plant").rejected.empty());
}

TEST_F(MqttIngestTest, BrokerRestartMidStreamLosesNothing) {
  StartIngest();
  Put(PlantMapping());
  ASSERT_TRUE(ingest_->WaitUntilSubscribed(kWait).ok());
  constexpr int kN = 300;
  const auto base = Clock::now() - 10s;
  for (int i = 0; i < kN; ++i) {
    if (i == kN / 2) {
      // Everything published so far has reached the broker; restart it (SIGTERM: it saves the
      // sessions and queued messages). Publishes while it is down are queued by the publisher.
      ASSERT_TRUE(Publisher().Flush(kWait).ok());
      ASSERT_TRUE(broker_.Restart());
    }
    Publish("plant/line-2/machine-2/telemetry",
            Telemetry(base + std::chrono::milliseconds(i), 100, 2000.0 + i));
  }
  ASSERT_TRUE(Publisher().Flush(kWait).ok());
  ASSERT_TRUE(WaitUntil([&] { return DistinctTimes("machine-2", "spindleSpeed") == kN; }))
      << DistinctTimes("machine-2", "spindleSpeed");
  // At least once: redeliveries are possible, losses are not.
  const MappingStats st = Stats("plant");
  EXPECT_GE(st.messages, static_cast<std::uint64_t>(kN));
  EXPECT_GE(st.readings, 2u * kN);
  EXPECT_TRUE(st.rejected.empty());
  EXPECT_TRUE(WaitUntil([&] { return ingest_->connected(); }));
  EXPECT_GE(ingest_->counters().connects, 2u);
}

}  // namespace
}  // namespace doppel::sync
