// MqttClient against a real mosquitto broker (tests/sync/mosquitto_broker.h). Every wait has a
// generous deadline that fails the test instead of hanging it; nothing asserts on elapsed time.
#include "sync/mqtt_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sync/mosquitto_broker.h"

namespace doppel::sync {
namespace {

using namespace std::chrono_literals;
using testing::MosquittoBroker;

constexpr auto kWait = 20s;

// Thread-safe collector with deadline waits.
template <typename T>
class Collector {
 public:
  void Add(const T& item) {
    {
      std::lock_guard lock(mu_);
      items_.push_back(item);
    }
    cv_.notify_all();
  }
  // Waits until pred(items) holds; false after `timeout`.
  bool WaitFor(const std::function<bool(const std::vector<T>&)>& pred,
               std::chrono::milliseconds timeout = kWait) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(items_); });
  }
  std::vector<T> Snapshot() {
    std::lock_guard lock(mu_);
    return items_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<T> items_;
};

// A client with everything it reports collected. The client is the last member, so it stops
// (and its callbacks end) before the collectors go away.
struct Peer {
  explicit Peer(MqttOptions options) : client(std::move(options), Callbacks()) {}

  MqttCallbacks Callbacks() {
    MqttCallbacks callbacks;
    callbacks.on_message = [this](const MqttMessage& m) { inbox.Add(m); };
    callbacks.on_connection = [this](const MqttConnectionEvent& e) { events.Add(e); };
    callbacks.on_publish_ack = [this](int mid, int reason) { acks.Add({mid, reason}); };
    return callbacks;
  }

  // Distinct payloads received on topics starting with `prefix`.
  std::set<std::string> Payloads(const std::string& prefix = {}) {
    std::set<std::string> out;
    for (const auto& m : inbox.Snapshot()) {
      if (m.topic.rfind(prefix, 0) == 0) out.insert(m.payload);
    }
    return out;
  }
  bool WaitForPayloads(const std::set<std::string>& want, const std::string& prefix = {}) {
    return inbox.WaitFor([&](const std::vector<MqttMessage>& got) {
      std::set<std::string> seen;
      for (const auto& m : got) {
        if (m.topic.rfind(prefix, 0) == 0 && want.count(m.payload) != 0) seen.insert(m.payload);
      }
      return seen.size() == want.size();
    });
  }
  // Waits for the n-th accepted connection; returns its event.
  std::optional<MqttConnectionEvent> WaitForConnection(std::size_t n) {
    std::optional<MqttConnectionEvent> found;
    events.WaitFor([&](const std::vector<MqttConnectionEvent>& all) {
      std::size_t seen = 0;
      for (const auto& e : all) {
        if (e.connected && ++seen == n) {
          found = e;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  bool WaitForErrorEvent(const std::string& code, std::size_t count = 1) {
    return events.WaitFor([&](const std::vector<MqttConnectionEvent>& all) {
      std::size_t n = 0;
      for (const auto& e : all) n += e.error.code() == code ? 1 : 0;
      return n >= count;
    });
  }

  Collector<MqttMessage> inbox;
  Collector<MqttConnectionEvent> events;
  Collector<std::pair<int, int>> acks;
  MqttClient client;
};

MqttOptions Options(int port, std::string client_id, MqttProtocol protocol = MqttProtocol::kV5) {
  MqttOptions o;
  o.port = port;
  o.client_id = std::move(client_id);
  o.protocol = protocol;
  // Fast retries keep the restart tests short; nothing depends on the exact delays.
  o.reconnect_min = 20ms;
  o.reconnect_max = 500ms;
  o.connect_timeout = 5s;
  o.keepalive_seconds = 10;
  return o;
}

std::string Name(MqttProtocol p) { return p == MqttProtocol::kV5 ? "v5" : "v311"; }

std::set<std::string> Numbered(const std::string& prefix, int n) {
  std::set<std::string> out;
  for (int i = 0; i < n; ++i) out.insert(prefix + std::to_string(i));
  return out;
}

// Starts `peer` and waits until it is connected and its subscriptions are confirmed.
::testing::AssertionResult Up(Peer& peer) {
  if (auto st = peer.client.Start(); !st.ok()) {
    return ::testing::AssertionFailure() << st.ToString();
  }
  if (auto st = peer.client.WaitUntilSubscribed(kWait); !st.ok()) {
    return ::testing::AssertionFailure() << st.ToString();
  }
  return ::testing::AssertionSuccess();
}

class MqttClientTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(broker_.Start()); }
  MosquittoBroker broker_;
};

class MqttProtocolTest : public MqttClientTest, public ::testing::WithParamInterface<MqttProtocol> {
 protected:
  MqttOptions Opts(const std::string& id) {
    return Options(broker_.port(), id + "-" + Name(GetParam()), GetParam());
  }
};

INSTANTIATE_TEST_SUITE_P(Protocols, MqttProtocolTest,
                         ::testing::Values(MqttProtocol::kV311, MqttProtocol::kV5),
                         [](const auto& info) { return Name(info.param); });

// ---- Topic rules (no broker) -------------------------------------------------------------------

TEST(MqttTopicTest, TopicNames) {
  for (std::string ok : {"a", "a/b", "/", "a//b", "/a/", "$SYS/x", "plant/ü/€/😀", "a b"}) {
    EXPECT_TRUE(ValidateTopicName(ok).ok()) << ok << ": " << ValidateTopicName(ok).ToString();
  }
  EXPECT_TRUE(ValidateTopicName(std::string(65535, 'x')).ok());
  const std::vector<std::string> bad = {
      "",                       // empty
      std::string(65536, 'x'),  // too long
      "a/+",
      "+",
      "#",
      "a/#",
      "a+b",                   // wildcards
      std::string("a\0b", 3),  // U+0000
      "a\x01",
      "a\tb",
      "a\x7f",
      "\xc2\x85",          // C0, tab, DEL, C1 controls
      "\xc0\xaf",          // overlong '/'
      "\xed\xa0\x80",      // surrogate
      "\xf4\x90\x80\x80",  // above U+10FFFF
      "\xef\xbf\xbf",
      "\xef\xb7\x90",  // non-characters U+FFFF, U+FDD0
      "\xe2\x82",      // truncated
      "\xff",
  };
  for (const auto& t : bad) {
    EXPECT_EQ(ValidateTopicName(t).code(), "MQTT_BAD_TOPIC") << ::testing::PrintToString(t);
  }
}

TEST(MqttTopicTest, TopicFilters) {
  for (std::string ok : {"#", "a/#", "+", "+/+", "a/+/c", "/#", "+/#", "a//b", "$SYS/#",
                         "$share/group/a/+", "$share/g/#"}) {
    EXPECT_TRUE(ValidateTopicFilter(ok).ok()) << ok << ": " << ValidateTopicFilter(ok).ToString();
  }
  for (std::string bad : {"", "a#", "a/#/b", "#/a", "a+", "a/b+/c", "+a", "$share/g", "$share//a",
                          "$share/g+/a", "$share/g/", "$share/g/a#", "a\tb"}) {
    EXPECT_EQ(ValidateTopicFilter(bad).code(), "MQTT_BAD_TOPIC") << bad;
  }
}

// ---- Options and calls refused before anything is sent -----------------------------------------

TEST(MqttOptionsTest, BadOptionsAreRefusedByStart) {
  const std::vector<std::function<void(MqttOptions&)>> breakers = {
      [](MqttOptions& o) { o.host = ""; },
      [](MqttOptions& o) { o.port = 0; },
      [](MqttOptions& o) { o.port = 65536; },
      [](MqttOptions& o) { o.client_id = ""; },  // persistent session without an id
      [](MqttOptions& o) { o.client_id = "a\nb"; },
      [](MqttOptions& o) { o.session_expiry_seconds = 0; },
      [](MqttOptions& o) { o.keepalive_seconds = 1; },
      [](MqttOptions& o) { o.reconnect_min = 0ms; },
      [](MqttOptions& o) { o.reconnect_max = 10ms, o.reconnect_min = 20ms; },
      [](MqttOptions& o) { o.connect_timeout = 10ms; },
      [](MqttOptions& o) { o.password = "secret"; },  // without a username
      [](MqttOptions& o) { o.max_inflight = 0; },
      [](MqttOptions& o) { o.max_queued = 0; },
      [](MqttOptions& o) { o.max_queued = 70000; },
  };
  for (std::size_t i = 0; i < breakers.size(); ++i) {
    MqttOptions o = Options(1883, "opts");
    breakers[i](o);
    MqttClient client(o, {});
    EXPECT_EQ(client.Start().code(), "MQTT_BAD_OPTIONS") << "case " << i;
    EXPECT_EQ(client.Publish("a", "x", 1).status().code(), "MQTT_NOT_STARTED") << "case " << i;
  }
  // Without a persistent session an empty client id is fine (libmosquitto makes one up).
  MqttOptions o = Options(1, "");
  o.persistent_session = false;
  MqttClient client(o, {});
  EXPECT_TRUE(client.Start().ok());
}

TEST_F(MqttClientTest, BadCallsAreRefusedAndSendNothing) {
  Peer sub(Options(broker_.port(), "bad-sub"));
  ASSERT_TRUE(sub.client.Subscribe("#", 1).ok());
  ASSERT_TRUE(Up(sub));
  Peer pub(Options(broker_.port(), "bad-pub"));
  EXPECT_EQ(pub.client.Publish("x", "before start", 1).status().code(), "MQTT_NOT_STARTED");
  ASSERT_TRUE(pub.client.Start().ok());
  ASSERT_TRUE(pub.client.WaitUntilConnected(kWait).ok());

  EXPECT_EQ(pub.client.Publish("a/+", "x").status().code(), "MQTT_BAD_TOPIC");
  EXPECT_EQ(pub.client.Publish("a/#", "x").status().code(), "MQTT_BAD_TOPIC");
  EXPECT_EQ(pub.client.Publish("", "x").status().code(), "MQTT_BAD_TOPIC");
  EXPECT_EQ(pub.client.Publish(std::string("a\0b", 3), "x").status().code(), "MQTT_BAD_TOPIC");
  EXPECT_EQ(pub.client.Publish("a", "x", 2).status().code(), "MQTT_BAD_QOS");
  EXPECT_EQ(pub.client.Publish("a", "x", -1).status().code(), "MQTT_BAD_QOS");
  MqttProperties wildcard_response;
  wildcard_response.response_topic = "reply/+";
  EXPECT_EQ(pub.client.Publish("a", "x", 1, false, wildcard_response).status().code(),
            "MQTT_BAD_PROPERTY");
  MqttProperties control_char;
  control_char.content_type = "text/plain\n";
  EXPECT_EQ(pub.client.Publish("a", "x", 1, false, control_char).status().code(),
            "MQTT_BAD_PROPERTY");
  MqttProperties bad_user;
  bad_user.user_properties = {{"ok", std::string("\xff", 1)}};
  EXPECT_EQ(pub.client.Publish("a", "x", 1, false, bad_user).status().code(), "MQTT_BAD_PROPERTY");
  MqttProperties big_correlation;
  big_correlation.correlation_data = std::string(65536, 'c');
  EXPECT_EQ(pub.client.Publish("a", "x", 1, false, big_correlation).status().code(),
            "MQTT_BAD_PROPERTY");
  EXPECT_EQ(pub.client.Subscribe("a/#/b").code(), "MQTT_BAD_TOPIC");
  EXPECT_EQ(pub.client.Subscribe("a", 2).code(), "MQTT_BAD_QOS");
  EXPECT_EQ(pub.client.Unsubscribe("a+").code(), "MQTT_BAD_TOPIC");
  EXPECT_EQ(pub.client.counters().messages_out, 0u);

  // Nothing of the above reached the broker: the subscriber to '#' sees only the marker.
  ASSERT_TRUE(pub.client.Publish("marker", "m", 1).ok());
  ASSERT_TRUE(sub.WaitForPayloads({"m"}));
  const auto got = sub.inbox.Snapshot();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, "marker");

  pub.client.Stop();
  EXPECT_EQ(pub.client.Publish("a", "after stop", 1).status().code(), "MQTT_NOT_STARTED");
  EXPECT_EQ(pub.client.Start().code(), "MQTT_ALREADY_STARTED");
  pub.client.Stop();  // idempotent
}

TEST_F(MqttClientTest, PropertiesNeedMqtt5) {
  Peer pub(Options(broker_.port(), "v311-props", MqttProtocol::kV311));
  ASSERT_TRUE(Up(pub));
  MqttProperties props;
  props.correlation_data = "id-1";
  EXPECT_EQ(pub.client.Publish("a", "x", 1, false, props).status().code(), "MQTT_V5_REQUIRED");
  EXPECT_EQ(pub.client.counters().messages_out, 0u);
}

TEST(MqttBrokerLimitTest, PayloadOverBrokerMaximumPacketSizeIsRefused) {
  MosquittoBroker broker("max_packet_size 1000\n");
  ASSERT_TRUE(broker.Start());
  Peer pub(Options(broker.port(), "limit-pub"));
  ASSERT_TRUE(Up(pub));
  EXPECT_TRUE(pub.client.Publish("a", std::string(500, 'x'), 1).ok());
  EXPECT_EQ(pub.client.Publish("a", std::string(2000, 'x'), 1).status().code(),
            "MQTT_PAYLOAD_TOO_LARGE");
  EXPECT_EQ(pub.client.counters().messages_out, 1u);
  EXPECT_TRUE(pub.client.Flush(kWait).ok());
}

// ---- Round trips ------------------------------------------------------------------------------

TEST_P(MqttProtocolTest, RoundTripQos0AndQos1) {
  Peer sub(Opts("rt-sub"));
  ASSERT_TRUE(sub.client.Subscribe("rt/q1/#", 1).ok());
  ASSERT_TRUE(sub.client.Subscribe("rt/q0/+", 0).ok());
  ASSERT_TRUE(Up(sub));
  Peer pub(Opts("rt-pub"));
  ASSERT_TRUE(Up(pub));

  const std::string binary("\0\x01\xff\xfe bytes", 10);
  ASSERT_TRUE(pub.client.Publish("rt/q1/a", "qos0 to qos1 sub", 0).ok());
  ASSERT_TRUE(pub.client.Publish("rt/q1/b/c", "qos1 to qos1 sub", 1).ok());
  ASSERT_TRUE(pub.client.Publish("rt/q0/x", "qos1 to qos0 sub", 1).ok());
  ASSERT_TRUE(pub.client.Publish("rt/q1/bin", binary, 1).ok());
  ASSERT_TRUE(pub.client.Publish("rt/q1/empty", "", 1).ok());
  ASSERT_TRUE(pub.client.Publish("rt/other", "not subscribed", 1).ok());
  ASSERT_TRUE(pub.client.Flush(kWait).ok());
  ASSERT_TRUE(sub.WaitForPayloads(
      {"qos0 to qos1 sub", "qos1 to qos1 sub", "qos1 to qos0 sub", binary, ""}));

  std::map<std::string, MqttMessage> by_topic;
  for (const auto& m : sub.inbox.Snapshot()) by_topic[m.topic] = m;
  EXPECT_EQ(by_topic.count("rt/other"), 0u);
  EXPECT_EQ(by_topic["rt/q1/a"].qos, 0);  // min(publish QoS, subscription QoS)
  EXPECT_EQ(by_topic["rt/q1/b/c"].qos, 1);
  EXPECT_EQ(by_topic["rt/q0/x"].qos, 0);
  EXPECT_EQ(by_topic["rt/q1/bin"].payload, binary);
  EXPECT_EQ(by_topic["rt/q1/empty"].payload, "");
  for (const auto& [topic, m] : by_topic) {
    EXPECT_FALSE(m.retain) << topic;
    EXPECT_TRUE(m.properties.empty()) << topic;
  }
}

TEST_P(MqttProtocolTest, RetainedMessageReachesLaterSubscriber) {
  Peer pub(Opts("ret-pub"));
  ASSERT_TRUE(Up(pub));
  ASSERT_TRUE(pub.client.Publish("ret/state", "on", 1, /*retain=*/true).ok());
  ASSERT_TRUE(pub.client.Flush(kWait).ok());
  Peer sub(Opts("ret-sub"));
  ASSERT_TRUE(sub.client.Subscribe("ret/#", 1).ok());
  ASSERT_TRUE(Up(sub));
  ASSERT_TRUE(sub.WaitForPayloads({"on"}));
  EXPECT_TRUE(sub.inbox.Snapshot()[0].retain);
}

TEST_F(MqttClientTest, V5PropertiesRoundTrip) {
  Peer sub(Options(broker_.port(), "props-sub"));
  ASSERT_TRUE(sub.client.Subscribe("cmd/#", 1).ok());
  ASSERT_TRUE(Up(sub));
  Peer pub(Options(broker_.port(), "props-pub"));
  ASSERT_TRUE(Up(pub));

  MqttProperties props;
  props.response_topic = "reply/doppel/42";
  props.correlation_data = std::string(
      "\x00\x01"
      "corr\xff",
      7);
  props.content_type = "application/json";
  props.message_expiry_seconds = 3600;
  props.user_properties = {{"twin", "machine-1"}, {"dup", "1"}, {"dup", "2"}, {"ü", "€"}};
  ASSERT_TRUE(pub.client.Publish("cmd/m1/setSpeed", R"({"rpm":1200})", 1, false, props).ok());
  ASSERT_TRUE(sub.WaitForPayloads({R"({"rpm":1200})"}));

  const MqttProperties got = sub.inbox.Snapshot()[0].properties;
  EXPECT_EQ(got.response_topic, props.response_topic);
  EXPECT_EQ(got.correlation_data, props.correlation_data);
  EXPECT_EQ(got.content_type, props.content_type);
  EXPECT_EQ(got.user_properties, props.user_properties);
  // The broker forwards the remaining lifetime.
  ASSERT_TRUE(got.message_expiry_seconds.has_value());
  EXPECT_GT(*got.message_expiry_seconds, 0u);
  EXPECT_LE(*got.message_expiry_seconds, 3600u);

  // A request/response exchange: the subscriber answers on the response topic with the
  // correlation data, from inside its message callback's thread (here: after it).
  Peer requester(Options(broker_.port(), "props-requester"));
  ASSERT_TRUE(requester.client.Subscribe("reply/doppel/42", 1).ok());
  ASSERT_TRUE(Up(requester));
  MqttProperties answer;
  answer.correlation_data = got.correlation_data;
  ASSERT_TRUE(sub.client.Publish(*got.response_topic, "done", 1, false, answer).ok());
  ASSERT_TRUE(requester.WaitForPayloads({"done"}));
  EXPECT_EQ(requester.inbox.Snapshot()[0].properties.correlation_data, props.correlation_data);
}

TEST_F(MqttClientTest, PublishFromInsideMessageCallback) {
  // A responder that answers every request from its on_message (the network thread).
  std::unique_ptr<MqttClient> responder;
  MqttCallbacks callbacks;
  callbacks.on_message = [&responder](const MqttMessage& m) {
    MqttProperties answer;
    answer.correlation_data = m.properties.correlation_data;
    (void)responder->Publish(m.properties.response_topic.value_or("lost"), "pong:" + m.payload, 1,
                             false, answer);
  };
  responder = std::make_unique<MqttClient>(Options(broker_.port(), "responder"), callbacks);
  ASSERT_TRUE(responder->Subscribe("ping", 1).ok());
  ASSERT_TRUE(responder->Start().ok());
  ASSERT_TRUE(responder->WaitUntilSubscribed(kWait).ok());

  Peer requester(Options(broker_.port(), "requester"));
  ASSERT_TRUE(requester.client.Subscribe("pong/me", 1).ok());
  ASSERT_TRUE(Up(requester));
  for (int i = 0; i < 20; ++i) {
    MqttProperties props;
    props.response_topic = "pong/me";
    props.correlation_data = "c" + std::to_string(i);
    ASSERT_TRUE(requester.client.Publish("ping", std::to_string(i), 1, false, props).ok());
  }
  std::set<std::string> want;
  for (int i = 0; i < 20; ++i) want.insert("pong:" + std::to_string(i));
  ASSERT_TRUE(requester.WaitForPayloads(want));
  for (const auto& m : requester.inbox.Snapshot()) {
    EXPECT_EQ(m.properties.correlation_data, "c" + m.payload.substr(5));
  }
  responder->Stop();
}

TEST_F(MqttClientTest, StopFromInsideACallback) {
  std::unique_ptr<MqttClient> client;
  Collector<MqttConnectionEvent> events;
  MqttCallbacks callbacks;
  callbacks.on_message = [&client](const MqttMessage&) { client->Stop(); };
  callbacks.on_connection = [&events](const MqttConnectionEvent& e) { events.Add(e); };
  client = std::make_unique<MqttClient>(Options(broker_.port(), "stop-inside"), callbacks);
  ASSERT_TRUE(client->Subscribe("stop", 1).ok());
  ASSERT_TRUE(client->Start().ok());
  ASSERT_TRUE(client->WaitUntilSubscribed(kWait).ok());
  ASSERT_TRUE(client->Publish("stop", "now", 1).ok());
  // The callback's Stop disconnects; this thread joins.
  ASSERT_TRUE(events.WaitFor([](const auto& all) { return all.size() == 2; }));
  EXPECT_FALSE(events.Snapshot()[1].connected);
  EXPECT_TRUE(events.Snapshot()[1].error.ok());
  EXPECT_EQ(client->Publish("stop", "after", 1).status().code(), "MQTT_NOT_STARTED");
  client->Stop();
  EXPECT_EQ(client->counters().disconnects, 1u);
}

// QoS 1 messages published before the CONNACK stay with the client (libmosquitto 2.0.11 can
// lose one published while its connect call runs) and are handed over after it: a publisher
// racing Start sees every message delivered and acknowledged under the id Publish returned.
TEST_F(MqttClientTest, PublishesRacingTheConnectAreHandedOverAfterTheConnack) {
  Peer sub(Options(broker_.port(), "race-sub"));
  ASSERT_TRUE(sub.client.Subscribe("race/#", 1).ok());
  ASSERT_TRUE(Up(sub));
  for (int round = 0; round < 5; ++round) {
    MqttOptions o = Options(broker_.port(), "race-pub-" + std::to_string(round));
    o.host = "localhost";  // a name lookup makes the connect call's window wider
    o.max_queued = 2000;   // then MQTT_QUEUE_FULL until the CONNACK
    Peer pub(o);
    const std::string prefix = "r" + std::to_string(round) + "-";
    std::set<int> ids;
    std::set<std::string> payloads;
    // Publishes from before Start (MQTT_NOT_STARTED) until 100 after the CONNACK: some calls
    // overlap the connect call.
    std::atomic<bool> give_up{false};  // Start failed
    std::thread publisher([&] {
      for (int i = 0, after = 0; after < 100 && !give_up.load(); ++i) {
        const bool connected = pub.client.connected();
        auto id = pub.client.Publish("race/x", prefix + std::to_string(i), 1);
        if (!id.ok()) {
          std::this_thread::yield();
          continue;
        }
        ids.insert(*id);
        payloads.insert(prefix + std::to_string(i));
        if (connected) ++after;
      }
    });
    std::this_thread::sleep_for(std::chrono::microseconds(50 * round));
    const core::Status started = pub.client.Start();
    give_up = !started.ok();
    publisher.join();
    ASSERT_TRUE(started.ok()) << started.message();
    ASSERT_TRUE(pub.client.Flush(kWait).ok()) << "round " << round;
    ASSERT_TRUE(sub.WaitForPayloads(payloads, "race/")) << "round " << round;
    std::set<int> acked;
    for (const auto& [id, reason] : pub.acks.Snapshot()) acked.insert(id);
    EXPECT_EQ(acked, ids);
  }
}

TEST_F(MqttClientTest, CountersAndPublishAcks) {
  Peer sub(Options(broker_.port(), "count-sub"));
  ASSERT_TRUE(sub.client.Subscribe("count/#", 1).ok());
  ASSERT_TRUE(Up(sub));
  Peer pub(Options(broker_.port(), "count-pub"));
  ASSERT_TRUE(Up(pub));

  std::set<int> mids;
  for (int i = 0; i < 5; ++i) {
    auto mid = pub.client.Publish("count/q1", "q1-" + std::to_string(i), 1);
    ASSERT_TRUE(mid.ok());
    mids.insert(*mid);
  }
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(pub.client.Publish("count/q0", "q0", 0).ok());
  ASSERT_TRUE(pub.client.Flush(kWait).ok());
  ASSERT_TRUE(sub.WaitForPayloads(Numbered("q1-", 5)));
  ASSERT_TRUE(sub.inbox.WaitFor([](const auto& all) { return all.size() == 7; }));

  ASSERT_TRUE(pub.acks.WaitFor([](const auto& all) { return all.size() == 5; }));
  std::set<int> acked;
  for (const auto& [mid, reason] : pub.acks.Snapshot()) {
    acked.insert(mid);
    EXPECT_LT(reason, 0x80);  // 0, or 0x10 "no matching subscribers" never happens here
  }
  EXPECT_EQ(acked, mids);

  const MqttCounters p = pub.client.counters();
  EXPECT_EQ(p.connects, 1u);
  EXPECT_EQ(p.disconnects, 0u);
  EXPECT_EQ(p.connect_failures, 0u);
  EXPECT_EQ(p.messages_out, 7u);
  EXPECT_EQ(p.publish_acks, 5u);
  EXPECT_EQ(p.publish_errors, 0u);
  EXPECT_EQ(p.queued, 0u);
  EXPECT_EQ(p.messages_in, 0u);
  EXPECT_EQ(sub.client.counters().messages_in, 7u);
  EXPECT_TRUE(pub.client.connected());

  pub.client.Stop();
  EXPECT_FALSE(pub.client.connected());
  EXPECT_EQ(pub.client.counters().disconnects, 1u);
  // Our own Stop: reported as a disconnect without an error.
  const auto events = pub.events.Snapshot();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].connected);
  EXPECT_FALSE(events[0].session_present);  // a fresh broker has no session for us
  EXPECT_FALSE(events[1].connected);
  EXPECT_TRUE(events[1].error.ok()) << events[1].error.ToString();
}

// ---- Subscriptions ----------------------------------------------------------------------------

TEST_F(MqttClientTest, UnsubscribeStopsDelivery) {
  Peer sub(Options(broker_.port(), "unsub"));
  ASSERT_TRUE(sub.client.Subscribe("u/a", 1).ok());
  ASSERT_TRUE(sub.client.Subscribe("u/b", 1).ok());
  ASSERT_TRUE(Up(sub));
  ASSERT_TRUE(sub.client.Unsubscribe("u/a").ok());
  // Published by the same client: the broker handles its packets in order, so the UNSUBSCRIBE
  // is done before these arrive.
  ASSERT_TRUE(sub.client.Publish("u/a", "dropped", 1).ok());
  ASSERT_TRUE(sub.client.Publish("u/b", "marker", 1).ok());
  ASSERT_TRUE(sub.WaitForPayloads({"marker"}));
  EXPECT_EQ(sub.Payloads("u/a").size(), 0u);
}

TEST_F(MqttClientTest, UnsubscribeWhileOfflineReachesTheResumedSession) {
  {
    Peer first(Options(broker_.port(), "unsub-offline"));
    ASSERT_TRUE(first.client.Subscribe("off/a", 1).ok());
    ASSERT_TRUE(Up(first));
  }
  // The next run no longer wants off/a: the broker still has it in the session.
  Peer second(Options(broker_.port(), "unsub-offline"));
  ASSERT_TRUE(second.client.Unsubscribe("off/a").ok());
  ASSERT_TRUE(second.client.Subscribe("off/b", 1).ok());
  ASSERT_TRUE(Up(second));  // UNSUBSCRIBE goes before the SUBSCRIBE whose SUBACK we waited for
  EXPECT_TRUE(second.events.Snapshot()[0].session_present);
  Peer pub(Options(broker_.port(), "unsub-offline-pub"));
  ASSERT_TRUE(Up(pub));
  ASSERT_TRUE(pub.client.Publish("off/a", "dropped", 1).ok());
  ASSERT_TRUE(pub.client.Publish("off/b", "marker", 1).ok());
  ASSERT_TRUE(second.WaitForPayloads({"marker"}));
  EXPECT_EQ(second.Payloads("off/a").size(), 0u);
}

// mosquitto refuses subscriptions only through a plugin (acl_file restricts delivery, never
// SUBSCRIBE): its dynamic-security plugin, which the Debian package ships, with a config that lets
// anonymous clients subscribe to allowed/# only.
std::string DynamicSecurityPlugin() {
  for (const char* dir :
       {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"}) {
    const auto path = std::filesystem::path(dir) / "mosquitto_dynamic_security.so";
    if (std::filesystem::exists(path)) return path.string();
  }
  return {};
}

TEST(MqttAclTest, RefusedSubscriptionIsReported) {
  const std::string plugin = DynamicSecurityPlugin();
  ASSERT_FALSE(plugin.empty())
      << "mosquitto_dynamic_security.so (Debian package mosquitto) not found";
  const auto config = std::filesystem::temp_directory_path() /
                      ("doppel-mqtt-dynsec-" + std::to_string(::getpid()) + ".json");
  std::ofstream(config) << R"({
    "defaultACLAccess": {"publishClientSend": true, "publishClientReceive": true,
                         "subscribe": false, "unsubscribe": true},
    "clients": [],
    "groups": [{"groupname": "anonymous", "roles": [{"rolename": "reader"}]}],
    "roles": [{"rolename": "reader",
               "acls": [{"acltype": "subscribePattern", "topic": "allowed/#", "allow": true}]}],
    "anonymousGroup": "anonymous"
  })";
  MosquittoBroker broker("plugin " + plugin + "\nplugin_opt_config_file " + config.string() + "\n");
  ASSERT_TRUE(broker.Start());
  for (MqttProtocol protocol : {MqttProtocol::kV311, MqttProtocol::kV5}) {
    Peer sub(Options(broker.port(), "acl-" + Name(protocol), protocol));
    ASSERT_TRUE(sub.client.Subscribe("allowed/x", 1).ok());
    ASSERT_TRUE(sub.client.Subscribe("denied/x", 1).ok());
    ASSERT_TRUE(sub.client.Start().ok());
    const core::Status st = sub.client.WaitUntilSubscribed(kWait);
    EXPECT_EQ(st.code(), "MQTT_SUBSCRIBE_REFUSED") << st.ToString();
    EXPECT_NE(st.message().find("denied/x"), std::string::npos) << st.message();
    EXPECT_EQ(sub.client.counters().subscribe_errors, 1u);
    // The allowed one works.
    ASSERT_TRUE(sub.client.Publish("allowed/x", "hello", 1).ok());
    ASSERT_TRUE(sub.WaitForPayloads({"hello"}));
  }
  std::filesystem::remove(config);
}

// ---- Connection failures ----------------------------------------------------------------------

TEST_F(MqttClientTest, StartsBeforeTheBrokerIsUpAndKeepsItsSession) {
  ASSERT_TRUE(broker_.Stop());
  Peer sub(Options(broker_.port(), "early-sub"));
  ASSERT_TRUE(sub.client.Subscribe("early/#", 1).ok());
  ASSERT_TRUE(sub.client.Start().ok());
  ASSERT_TRUE(sub.WaitForErrorEvent("MQTT_CONNECT_FAILED", 2));  // retried
  EXPECT_FALSE(sub.client.connected());
  ASSERT_TRUE(broker_.Start());
  ASSERT_TRUE(sub.client.WaitUntilSubscribed(kWait).ok());
  EXPECT_GE(sub.client.counters().connect_failures, 2u);
  EXPECT_EQ(sub.client.counters().connects, 1u);
  sub.client.Stop();

  // The CONNECT properties (session expiry) were kept for the later, asynchronous attempts: the
  // session outlived the disconnect.
  Peer pub(Options(broker_.port(), "early-pub"));
  ASSERT_TRUE(Up(pub));
  ASSERT_TRUE(pub.client.Publish("early/x", "kept", 1).ok());
  ASSERT_TRUE(pub.client.Flush(kWait).ok());
  Peer again(Options(broker_.port(), "early-sub"));
  ASSERT_TRUE(again.client.Start().ok());
  ASSERT_TRUE(again.WaitForPayloads({"kept"}));
  EXPECT_TRUE(again.events.Snapshot()[0].session_present);
}

TEST(MqttRefusalTest, RefusedConnectionIsReportedAndRetried) {
  MosquittoBroker broker("allow_anonymous false\n");
  ASSERT_TRUE(broker.Start());
  for (MqttProtocol protocol : {MqttProtocol::kV311, MqttProtocol::kV5}) {
    Peer peer(Options(broker.port(), "refused-" + Name(protocol), protocol));
    ASSERT_TRUE(peer.client.Start().ok());
    ASSERT_TRUE(peer.WaitForErrorEvent("MQTT_CONNECT_REFUSED", 2));
    EXPECT_EQ(peer.client.WaitUntilConnected(100ms).code(), "MQTT_TIMEOUT");
    peer.client.Stop();
    EXPECT_EQ(peer.client.counters().connects, 0u);
    EXPECT_GE(peer.client.counters().connect_failures, 2u);
    EXPECT_EQ(peer.client.WaitUntilConnected(100ms).code(), "MQTT_NOT_STARTED");
  }
}

// A TCP listener that never answers: the handshake completes in the kernel (backlog), CONNACK
// never comes.
TEST(MqttTimeoutTest, SilentServerTimesOutAndIsRetried) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);

  MqttOptions o = Options(ntohs(addr.sin_port), "silent");
  o.connect_timeout = 200ms;
  Peer peer(o);
  ASSERT_TRUE(peer.client.Start().ok());
  ASSERT_TRUE(peer.WaitForErrorEvent("MQTT_CONNECT_TIMEOUT", 2));
  peer.client.Stop();
  EXPECT_EQ(peer.client.counters().connects, 0u);
  ::close(fd);
}

// A connect() that never completes: the listener's accept queue is full, so the kernel drops our
// SYNs. The attempt is abandoned after connect_timeout (shutdown() aborts the pending connect),
// retried, and Stop does not wait for the kernel's own SYN timeout. The first attempt of a Start
// is a blocking connect (see the header), so the port refuses until that one has failed.
TEST(MqttTimeoutTest, UnansweredSynIsAbandonedAndRetried) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);  // not listening
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);

  MqttOptions o = Options(ntohs(addr.sin_port), "unanswered");
  o.connect_timeout = 200ms;
  Peer peer(o);
  ASSERT_TRUE(peer.client.Start().ok());
  ASSERT_TRUE(peer.WaitForErrorEvent("MQTT_CONNECT_FAILED"));  // refused: nothing listens yet

  // Backlog 0 holds one connection; fill it, and every later SYN is dropped.
  ASSERT_EQ(::listen(fd, 0), 0);
  const int filler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(filler, 0);
  ASSERT_EQ(::connect(filler, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_TRUE(peer.WaitForErrorEvent("MQTT_CONNECT_TIMEOUT", 3));
  peer.client.Stop();
  EXPECT_EQ(peer.client.counters().connects, 0u);
  ::close(filler);
  ::close(fd);
}

// ---- Reconnect and sessions -------------------------------------------------------------------

TEST_P(MqttProtocolTest, ReconnectsAfterBrokerKilledAndResubscribes) {
  MqttOptions sub_options = Opts("kill-sub");
  sub_options.persistent_session = false;  // the restarted broker surely has no session for it
  Peer sub(sub_options);
  ASSERT_TRUE(sub.client.Subscribe("kill/#", 1).ok());
  ASSERT_TRUE(Up(sub));
  Peer pub(Opts("kill-pub"));
  ASSERT_TRUE(Up(pub));
  ASSERT_TRUE(pub.client.Publish("kill/x", "before", 1).ok());
  ASSERT_TRUE(sub.WaitForPayloads({"before"}));

  ASSERT_TRUE(broker_.Kill());
  ASSERT_TRUE(sub.WaitForErrorEvent("MQTT_CONNECTION_LOST"));
  ASSERT_TRUE(pub.WaitForErrorEvent("MQTT_CONNECTION_LOST"));
  EXPECT_FALSE(sub.client.connected());
  ASSERT_TRUE(broker_.Start());  // same port

  // Both come back by themselves; the subscriber's new session gets its subscription again.
  const auto reconnected = sub.WaitForConnection(2);
  ASSERT_TRUE(reconnected.has_value());
  EXPECT_FALSE(reconnected->session_present);
  ASSERT_TRUE(sub.client.WaitUntilSubscribed(kWait).ok());
  ASSERT_TRUE(pub.client.WaitUntilConnected(kWait).ok());
  ASSERT_TRUE(pub.client.Publish("kill/x", "after", 1).ok());
  ASSERT_TRUE(sub.WaitForPayloads({"after"}));

  const MqttCounters c = sub.client.counters();
  EXPECT_EQ(c.connects, 2u);
  EXPECT_EQ(c.disconnects, 1u);
}

TEST_F(MqttClientTest, ResubscribesWhenTheBrokerLostThePersistentSession) {
  Peer sub(Options(broker_.port(), "lost-session"));
  ASSERT_TRUE(sub.client.Subscribe("lost/#", 1).ok());
  ASSERT_TRUE(Up(sub));
  ASSERT_TRUE(broker_.Kill());
  std::filesystem::remove(broker_.DatabasePath());  // the broker forgets every session
  ASSERT_TRUE(sub.WaitForErrorEvent("MQTT_CONNECTION_LOST"));
  ASSERT_TRUE(broker_.Start());
  const auto reconnected = sub.WaitForConnection(2);
  ASSERT_TRUE(reconnected.has_value());
  EXPECT_FALSE(reconnected->session_present);  // so the client must subscribe again
  ASSERT_TRUE(sub.client.WaitUntilSubscribed(kWait).ok());
  Peer pub(Options(broker_.port(), "lost-session-pub"));
  ASSERT_TRUE(Up(pub));
  ASSERT_TRUE(pub.client.Publish("lost/x", "found", 1).ok());
  ASSERT_TRUE(sub.WaitForPayloads({"found"}));
}

TEST_P(MqttProtocolTest, PersistentSessionReceivesWhatWasPublishedWhileOffline) {
  constexpr int kN = 200;
  {
    Peer sub(Opts("offline-sub"));
    ASSERT_TRUE(sub.client.Subscribe("offline/#", 1).ok());
    ASSERT_TRUE(Up(sub));
  }  // Stop: DISCONNECT, the session stays
  Peer pub(Opts("offline-pub"));
  ASSERT_TRUE(Up(pub));
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(
        pub.client.Publish("offline/" + std::to_string(i % 7), "m" + std::to_string(i), 1).ok());
  }
  ASSERT_TRUE(pub.client.Flush(kWait).ok());  // the broker has them all

  // "Restarted process": a new client with the same id.
  Peer sub(Opts("offline-sub"));
  ASSERT_TRUE(sub.client.Subscribe("offline/#", 1).ok());
  ASSERT_TRUE(sub.client.Start().ok());
  ASSERT_TRUE(sub.WaitForPayloads(Numbered("m", kN))) << sub.Payloads().size() << " of " << kN;
  EXPECT_TRUE(sub.events.Snapshot()[0].session_present);
}

TEST_P(MqttProtocolTest, PersistentSessionSurvivesBrokerRestart) {
  constexpr int kN = 200;
  {
    Peer sub(Opts("restart-sub"));
    ASSERT_TRUE(sub.client.Subscribe("restart/#", 1).ok());
    ASSERT_TRUE(Up(sub));
  }
  {
    Peer pub(Opts("restart-pub"));
    ASSERT_TRUE(Up(pub));
    for (int i = 0; i < kN; ++i) {
      ASSERT_TRUE(pub.client.Publish("restart/x", "m" + std::to_string(i), 1).ok());
    }
    ASSERT_TRUE(pub.client.Flush(kWait).ok());
  }
  ASSERT_TRUE(broker_.Restart());  // SIGTERM: the broker saves sessions and queued messages

  Peer sub(Opts("restart-sub"));
  ASSERT_TRUE(sub.client.Subscribe("restart/#", 1).ok());
  ASSERT_TRUE(sub.client.Start().ok());
  ASSERT_TRUE(sub.WaitForPayloads(Numbered("m", kN))) << sub.Payloads().size() << " of " << kN;
  EXPECT_TRUE(sub.events.Snapshot()[0].session_present);
}

// Our own QoS 1 publishes: in flight when the broker goes down, and published while it is down,
// all arrive once it is back.
TEST_P(MqttProtocolTest, Qos1PublishesSurviveBrokerRestartMidStream) {
  constexpr int kN = 300;
  Peer sub(Opts("mid-sub"));
  ASSERT_TRUE(sub.client.Subscribe("mid/#", 1).ok());
  ASSERT_TRUE(Up(sub));
  Peer pub(Opts("mid-pub"));
  ASSERT_TRUE(Up(pub));
  for (int i = 0; i < kN / 2; ++i) {
    ASSERT_TRUE(pub.client.Publish("mid/x", "m" + std::to_string(i), 1).ok());
  }
  ASSERT_TRUE(broker_.Stop());
  ASSERT_TRUE(pub.WaitForErrorEvent("MQTT_CONNECTION_LOST"));
  EXPECT_EQ(pub.client.Publish("mid/x", "qos0 while down", 0).status().code(),
            "MQTT_NOT_CONNECTED");
  for (int i = kN / 2; i < kN; ++i) {
    ASSERT_TRUE(pub.client.Publish("mid/x", "m" + std::to_string(i), 1).ok()) << i;
  }
  EXPECT_GE(pub.client.counters().queued, static_cast<std::uint64_t>(kN / 2));
  ASSERT_TRUE(broker_.Start());
  ASSERT_TRUE(pub.client.Flush(kWait).ok());
  ASSERT_TRUE(sub.WaitForPayloads(Numbered("m", kN))) << sub.Payloads().size() << " of " << kN;
  EXPECT_EQ(sub.Payloads().count("qos0 while down"), 0u);
  EXPECT_EQ(pub.client.counters().publish_acks, static_cast<std::uint64_t>(kN));
}

TEST_F(MqttClientTest, QueueLimitWhileDisconnected) {
  MqttOptions o = Options(broker_.port(), "queue-limit");
  o.max_queued = 3;
  Peer pub(o);
  ASSERT_TRUE(Up(pub));
  ASSERT_TRUE(broker_.Kill());
  ASSERT_TRUE(pub.WaitForErrorEvent("MQTT_CONNECTION_LOST"));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pub.client.Publish("q", "m", 1).ok());
  EXPECT_EQ(pub.client.Publish("q", "m", 1).status().code(), "MQTT_QUEUE_FULL");
  EXPECT_EQ(pub.client.counters().queued, 3u);
  EXPECT_EQ(pub.client.counters().messages_out, 3u);
  ASSERT_TRUE(broker_.Start());
  ASSERT_TRUE(pub.client.Flush(kWait).ok());
  EXPECT_EQ(pub.client.counters().queued, 0u);
  EXPECT_TRUE(pub.client.Publish("q", "m", 1).ok());
}

// What libmosquitto does with the PUBACK of an incoming QoS 1 message: it leaves only after
// on_message returns. A process that dies inside the callback gets the message again.
TEST_F(MqttClientTest, CrashInsideMessageCallbackRedelivers) {
  const std::string id = "crash-sub";
  {
    Peer sub(Options(broker_.port(), id));
    ASSERT_TRUE(sub.client.Subscribe("crash/#", 1).ok());
    ASSERT_TRUE(Up(sub));
  }
  {
    Peer pub(Options(broker_.port(), "crash-pub"));
    ASSERT_TRUE(Up(pub));
    ASSERT_TRUE(pub.client.Publish("crash/1", "survives", 1).ok());
    ASSERT_TRUE(pub.client.Flush(kWait).ok());
  }
  // No client threads exist now, so the child may use everything after fork.
  const int port = broker_.port();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    MqttCallbacks callbacks;
    callbacks.on_message = [](const MqttMessage& m) {
      ::_exit(m.payload == "survives" ? 42 : 3);  // "crash" before the callback returns
    };
    MqttClient client(Options(port, id), callbacks);
    if (!client.Start().ok()) ::_exit(4);
    std::this_thread::sleep_for(kWait);
    ::_exit(5);  // the message never came
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 42) << "3: wrong message, 4: start failed, 5: no message";

  Peer again(Options(broker_.port(), id));
  ASSERT_TRUE(again.client.Start().ok());
  ASSERT_TRUE(again.WaitForPayloads({"survives"}));
}

}  // namespace
}  // namespace doppel::sync
