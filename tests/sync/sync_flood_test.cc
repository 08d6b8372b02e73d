// Flood protection and sync quality through MQTT, against a real mosquitto (mosquitto_broker.h):
// one topic floods, messages are malformed or oversized; every rejection is counted and
// dead-lettered, and the other twins get every reading. No wall-clock assertions: the bound on
// what a rate-limited topic may pass is computed from the time the test itself measured.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "model/model_repository.h"
#include "mosquitto_broker.h"
#include "sync_test_util.h"
#include "sync/ingest.h"
#include "sync/mqtt_ingest.h"
#include "sync/sync_quality.h"
#include "tsdb/history.h"
#include "twin/twin_graph.h"

namespace doppel::sync {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using testing::MosquittoBroker;
using testing::WaitUntil;

constexpr auto kWait = 60s;

constexpr char kModel[] = R"({
  "@context": "dtmi:dtdl:context;3", "@id": "dtmi:doppel:test:Tank;1", "@type": "Interface",
  "contents": [
    {"@type": "Property", "name": "mode", "schema": "string"},
    {"@type": "Telemetry", "name": "level", "schema": "double"}]})";

class SyncFloodTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<model::SourceDocument> docs{{"tank", kModel}};
    ASSERT_TRUE(models_.Add(docs).ok());
    graph_ = std::make_unique<twin::TwinGraph>(models_, nullptr);
    for (const char* id : {"flood", "calm-1", "calm-2"}) {
      auto r = graph_->PutTwinSync(
          id, json::parse(R"({"$metadata": {"$model": "dtmi:doppel:test:Tank;1"}})"));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
    auto h = tsdb::HistoryStore::Open(backend_);
    ASSERT_TRUE(h.ok());
    history_ = std::move(*h);
    SyncOptions so;
    so.graph = graph_.get();
    tracker_ = std::make_unique<SyncTracker>(so);
    IngestOptions io;
    io.history = history_.get();
    io.sync = tracker_.get();
    ingestor_ = std::make_unique<Ingestor>(models_, *graph_, io);
    ASSERT_TRUE(broker_.Start());
  }

  void TearDown() override {
    ingest_.reset();
    publisher_.reset();
  }

  void StartIngest(std::size_t max_payload_bytes = 1u << 20) {
    MqttIngestOptions o;
    MqttOptions b;
    b.port = broker_.port();
    b.client_id = "doppel-flood-test";
    b.reconnect_min = 20ms;
    b.reconnect_max = 500ms;
    o.broker = b;
    o.sync = tracker_.get();
    o.max_payload_bytes = max_payload_bytes;
    ingest_ = std::make_unique<MqttIngest>(models_, *ingestor_, nullptr, o);
    ASSERT_TRUE(ingest_->Start().ok());
  }

  void Put(const std::string& mapping) {
    auto r = ingest_->Put(json::parse(mapping));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  void Publish(const std::string& topic, const std::string& payload) {
    if (!publisher_) {
      MqttOptions o;
      o.port = broker_.port();
      o.client_id = "flood-publisher";
      o.persistent_session = false;
      publisher_ = std::make_unique<MqttClient>(o, MqttCallbacks{});
      ASSERT_TRUE(publisher_->Start().ok());
      ASSERT_TRUE(publisher_->WaitUntilConnected(kWait).ok());
    }
    // The client's in-flight window may be full during a flood: retry until queued.
    for (int attempt = 0;; ++attempt) {
      auto mid = publisher_->Publish(topic, payload, 1);
      if (mid.ok()) return;
      ASSERT_LT(attempt, 6000) << mid.status().ToString();
      std::this_thread::sleep_for(10ms);
    }
  }

  MappingStats Stats(const std::string& id) {
    auto info = ingest_->Get(id);
    return info.ok() ? info->stats : MappingStats{};
  }

  std::size_t Points(const std::string& twin) {
    auto pts = history_->Read({twin, "level"}, {});
    return pts.ok() ? pts->size() : 0;
  }

  MosquittoBroker broker_;
  model::ModelRepository models_;
  std::unique_ptr<twin::TwinGraph> graph_;
  tsdb::MemoryBackend backend_;
  std::unique_ptr<tsdb::HistoryStore> history_;
  std::unique_ptr<SyncTracker> tracker_;
  std::unique_ptr<Ingestor> ingestor_;
  std::unique_ptr<MqttIngest> ingest_;
  std::unique_ptr<MqttClient> publisher_;
};

TEST_F(SyncFloodTest, AFloodingTopicIsRateLimitedAndOtherTwinsGetEveryReading) {
  StartIngest();
  Put(R"({"id": "tanks", "topic": "tanks/{twin}/level", "twin": "{twin}", "format": "number",
          "fields": [{"element": "level"}], "maxRatePerTopic": 2, "burstPerTopic": 10,
          "expectedIntervalMs": 1000})");
  ASSERT_TRUE(ingest_->WaitUntilSubscribed(kWait).ok());
  constexpr int kFlood = 400, kCalm = 8;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kFlood; ++i) {
    Publish("tanks/flood/level", fmt::format("{}", i));
    if (i % (kFlood / kCalm) == 0) {
      Publish("tanks/calm-1/level", fmt::format("{}", i));
      Publish("tanks/calm-2/level", fmt::format("{}", i));
    }
  }
  Publish("tanks/calm-2/level", "not a number");  // malformed: MAPPING_PAYLOAD
  Publish("tanks/nobody/level", "1");             // unknown twin: INGEST_UNKNOWN_TWIN
  // Messages are handled one at a time, in order; `messages` counts a message when its handling
  // starts, so wait for the last one's outcome (the unknown twin's rejection) too.
  ASSERT_TRUE(WaitUntil([&] {
    const MappingStats s = Stats("tanks");
    return s.messages == kFlood + 2 * kCalm + 2 && s.rejected.count("INGEST_UNKNOWN_TWIN") == 1;
  })) << Stats("tanks").messages;
  const double elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const MappingStats st = Stats("tanks");
  const std::uint64_t limited =
      st.rejected.count("MAPPING_RATE_LIMITED") != 0 ? st.rejected.at("MAPPING_RATE_LIMITED") : 0;
  const std::size_t flood_points = Points("flood");
  EXPECT_EQ(flood_points + limited, static_cast<std::size_t>(kFlood));
  // At most the burst plus what the bucket refilled while the test ran.
  EXPECT_LE(static_cast<double>(flood_points), 10 + 2 * elapsed_s + 1);
  EXPECT_GE(flood_points, 10u);
  EXPECT_GT(limited, 0u);
  // The calm twins got every reading; their only rejection is the malformed message.
  EXPECT_EQ(Points("calm-1"), static_cast<std::size_t>(kCalm));
  EXPECT_EQ(Points("calm-2"), static_cast<std::size_t>(kCalm));
  EXPECT_EQ(st.rejected.at("MAPPING_PAYLOAD"), 1u);
  EXPECT_EQ(st.rejected.at("INGEST_UNKNOWN_TWIN"), 1u);
  EXPECT_EQ(st.readings, flood_points + 2 * kCalm);

  // Sync quality: per twin and overall.
  auto calm1 = tracker_->Twin("calm-1");
  ASSERT_TRUE(calm1.has_value());
  EXPECT_EQ(calm1->counters.telemetry, static_cast<std::uint64_t>(kCalm));
  EXPECT_EQ(calm1->counters.rejected, 0u);
  EXPECT_EQ(calm1->expected_interval, std::chrono::milliseconds(1000));
  EXPECT_EQ(calm1->interval_source, "configured");
  EXPECT_EQ(calm1->lag_samples, static_cast<std::uint64_t>(kCalm));
  auto calm2 = tracker_->Twin("calm-2");
  EXPECT_EQ(calm2->counters.rejected_by_code.at("MAPPING_PAYLOAD"), 1u);
  EXPECT_EQ(calm2->counters.telemetry, static_cast<std::uint64_t>(kCalm));
  EXPECT_EQ(tracker_->Twin("flood")->counters.telemetry, flood_points);
  // The topic names the twin: the flood's rejections are the flooding twin's, no one else's.
  EXPECT_EQ(tracker_->Twin("flood")->counters.rejected_by_code.at("MAPPING_RATE_LIMITED"), limited);
  EXPECT_EQ(calm1->counters.rejected_by_code.count("MAPPING_RATE_LIMITED"), 0u);
  EXPECT_FALSE(tracker_->Twin("nobody").has_value());
  SyncSummary all = tracker_->Overall();
  EXPECT_EQ(all.counters.rejected_by_code.at("MAPPING_RATE_LIMITED"), limited);
  EXPECT_EQ(all.counters.rejected_by_code.at("INGEST_UNKNOWN_TWIN"), 1u);

  // Dead letters say what happened and where.
  auto info = ingest_->Get("tanks");
  ASSERT_TRUE(info.ok());
  bool saw_limited = false;
  for (const auto& d : info->dead_letters) {
    if (d.error.code() != "MAPPING_RATE_LIMITED") continue;
    saw_limited = true;
    EXPECT_EQ(d.topic, "tanks/flood/level");
    EXPECT_EQ(d.twin, "flood");
  }
  EXPECT_TRUE(saw_limited);
}

TEST_F(SyncFloodTest, OversizedMessagesAreRejectedBeforeParsing) {
  StartIngest(/*max_payload_bytes=*/64);
  Put(R"({"id": "small", "topic": "small/{twin}", "twin": "{twin}",
          "fields": [{"pointer": "/level", "element": "level"}]})");
  Put(R"({"id": "big", "topic": "big/{twin}", "twin": "{twin}", "maxPayloadBytes": 4096,
          "fields": [{"pointer": "/level", "element": "level"}]})");
  ASSERT_TRUE(ingest_->WaitUntilSubscribed(kWait).ok());
  const std::string padding(200, 'x');
  const std::string large = fmt::format(R"({{"level": 1.5, "pad": "{}"}})", padding);
  Publish("small/calm-1", large);                // over the server default of 64 bytes
  Publish("small/calm-1", R"({"level": 2.5})");  // fine
  Publish("big/calm-2", large);                  // the mapping allows 4096
  Publish("big/calm-2", fmt::format(R"({{"level": 1, "pad": "{}"}})", std::string(5000, 'y')));
  ASSERT_TRUE(
      WaitUntil([&] { return Stats("small").messages == 2 && Stats("big").messages == 2; }));
  ASSERT_TRUE(WaitUntil([&] { return Points("calm-1") == 1 && Points("calm-2") == 1; }));
  EXPECT_EQ(Stats("small").rejected.at("MAPPING_PAYLOAD_TOO_LARGE"), 1u);
  EXPECT_EQ(Stats("big").rejected.at("MAPPING_PAYLOAD_TOO_LARGE"), 1u);
  auto info = ingest_->Get("small");
  ASSERT_EQ(info->dead_letters.size(), 1u);
  EXPECT_EQ(info->dead_letters[0].error.code(), "MAPPING_PAYLOAD_TOO_LARGE");
  EXPECT_NE(info->dead_letters[0].error.message().find("64"), std::string::npos);
  EXPECT_EQ(tracker_->Overall().counters.rejected_by_code.at("MAPPING_PAYLOAD_TOO_LARGE"), 2u);
  EXPECT_EQ(tracker_->Twin("calm-1")->counters.rejected_by_code.at("MAPPING_PAYLOAD_TOO_LARGE"),
            1u);
  EXPECT_EQ(info->dead_letters[0].twin, "calm-1");
}

TEST_F(SyncFloodTest, MappingMembersAreValidated) {
  StartIngest();
  for (const char* bad : {R"("maxRatePerTopic": 0)", R"("burstPerTopic": -1)",
                          R"("expectedIntervalMs": 1.5)", R"("maxPayloadBytes": "big")"}) {
    auto r = ingest_->Put(json::parse(fmt::format(
        R"({{"id": "m", "topic": "t/{{twin}}", "twin": "{{twin}}", "format": "number",
            "fields": [{{"element": "level"}}], {}}})",
        bad)));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), "MAPPING_INVALID") << bad;
  }
}

}  // namespace
}  // namespace doppel::sync
