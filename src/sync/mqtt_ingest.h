// doppel::sync — MQTT ingest: device messages become twin readings through mappings.
//
// What it does
//   MqttIngest owns one MqttClient (persistent session, a stable client id) and the server's
//   MappingSet (mapping.h). Every message is matched against the mappings; each matching
//   mapping turns it into readings (Mapping::Apply) that go to the Ingestor (ingest.h), which
//   validates them, appends them to history and applies them to the twins. Adding or removing
//   a mapping subscribes or unsubscribes its topic filter (a filter that two mappings share stays
//   subscribed until neither needs it; its QoS is the highest any of them asks for).
//
// How to use it
//   StoreMappingPersistence persistence(store);                 // or any MappingPersistence
//   MqttIngestOptions options;  options.broker = MqttOptions{...};   // nullopt: no broker
//   MqttIngest mqtt(models, ingestor, &persistence, options);
//   mqtt.Load();                        // the stored mappings
//   mqtt.Start();                       // connects in the background (no-op without a broker)
//   mqtt.Put(document);                 // validate, store, subscribe
//   ...
//   mqtt.Stop();                        // before the Ingestor and the twin graph go away
//
// Delivery: at-least-once, nothing acknowledged is lost
//   on_message does not return until the Ingestor's `done` has run for every reading the message
//   became, i.e. until the readings are in history (durable per the store's fsync policy) and
//   applied to the twins. libmosquitto sends the PUBACK of a QoS 1 message only after on_message
//   returns (mqtt_client.h, "Delivery guarantees"), so a PUBACK means "in history and applied".
//   If doppel dies before that, the broker redelivers the message to the persistent session
//   (same client id) when doppel reconnects. A redelivery leaves the twin as it was (same source
//   time: a duplicate), but history stores the point again (it keeps duplicates, tsdb/history.h):
//   after a crash a point may appear twice in history, never zero times. Messages are processed one
//   at a time, in arrival order; throughput is bounded by one ingest round trip (one history
//   write-ahead record + the twin writes) per message. While doppel is away the broker queues QoS 1
//   messages up to its max_queued_messages (the mosquitto default, 1000, drops the rest silently:
//   raise it for long outages). A message whose mapping or ingest rejects it is still acknowledged
//   (a bad payload will not get better by redelivery): it is counted and dead-lettered per mapping.
//
// Flood protection (per mapping, before the payload is parsed)
//   A message larger than the mapping's `maxPayloadBytes` (default options.max_payload_bytes,
//   1 MiB) is rejected as MAPPING_PAYLOAD_TOO_LARGE. Each mapping keeps a token bucket per topic
//   (`maxRatePerTopic` messages/s, `burstPerTopic` at once, default one second's worth; without
//   either member the server's options.max_rate_per_topic and burst_per_topic, 1000/s and
//   10,000): a
//   message beyond it is rejected as MAPPING_RATE_LIMITED. Both are counted and dead-lettered per
//   mapping like any rejection (and for the twin when the topic alone names it, i.e. the twin
//   template uses no line-protocol tag), acknowledged, and leave every twin unchanged; other
//   topics (other devices) are not affected. The bucket measures when doppel processes a message, not when it
//   was published: a backlog the broker delivers after a reconnect is drained at doppel's speed,
//   so keep the burst above the broker's queue (mosquitto's max_queued_messages, default 1000).
//   At most 100,000 buckets are kept (rate_limit.h).
//
// Without a broker (options.broker empty) mappings are still validated, stored and listed; they
// apply once the server runs with a broker. A subscription left in the persistent session by an
// earlier run whose mapping is gone keeps delivering: such messages are counted as `unmatched`.
//
// Stats per mapping (since start, by mapping id; replacing a mapping keeps its stats, removing
// it drops them): messages that matched, readings accepted, rejections by code (MAPPING_* from
// the mapping, INGEST_* from the Ingestor), the time of the last message, and the newest
// `dead_letters_per_mapping` rejections with topic, code and message.
//
// Error codes (stable)
//   MAPPING_*            Put: the document is invalid (mapping.h; every problem in details())
//   MAPPING_NOT_FOUND    Get/Remove: no mapping with that id
//   MAPPING_ID_MISMATCH  Put with an expected id that differs from the document's `id`
//   STORE_*              the persistence seam failed (nothing changed)
//   MQTT_*               Start: the client refused the options (mqtt_client.h)
//   Per message (counted and dead-lettered, see above): MAPPING_PAYLOAD_TOO_LARGE,
//   MAPPING_RATE_LIMITED, the MAPPING_* codes of Mapping::Apply, the INGEST_* codes.
//
// Thread-safety: every method may be called from any thread, except that Stop and the
// destructor must not run on the client's network thread.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/model_repository.h"
#include "sync/ingest.h"
#include "sync/mapping.h"
#include "sync/mqtt_client.h"
#include "sync/rate_limit.h"
#include "sync/sync_quality.h"

namespace doppel::sync {

// Where mappings are kept (the store implements it under `mp/<id>`, api/mapping_routes.cc).
class MappingPersistence {
 public:
  virtual ~MappingPersistence() = default;
  // Calls fn(id, document JSON text) for every stored mapping.
  virtual core::Status LoadAll(
      const std::function<void(std::string_view id, std::string_view document)>& fn) = 0;
  virtual core::Status Save(std::string_view id, std::string_view document) = 0;
  virtual core::Status Delete(std::string_view id) = 0;
};

struct MqttIngestOptions {
  // The broker connection (client_id required: the persistent session is found by it).
  // nullopt: no broker; mappings are stored but nothing is received.
  std::optional<MqttOptions> broker;
  std::size_t dead_letters_per_mapping = 100;
  std::string source = "mqtt";  // first word of every reading's origin
  // Sync quality (sync_quality.h): mapping-level rejections and each mapping's
  // expectedIntervalMs go there (the Ingestor reports the rest). Null: none.
  SyncTracker* sync = nullptr;
  // Flood protection defaults, when a mapping does not say (see "Flood protection" above).
  double max_rate_per_topic = 1000;  // messages/s per mapping and topic; <= 0: no limit
  double burst_per_topic = 10000;    // bucket size
  std::size_t max_payload_bytes = 1u << 20;
};

// How the device link (device_link.h) joins the ingest client: it sees every message first and
// learns which twin each outbound-capable mapping's messages are for. Both run on the network
// thread and must return at once.
struct MqttIngestHooks {
  // True if the message was for the hook (an ack, a command response): it is then not counted as
  // unmatched (mappings still see it).
  std::function<bool(const MqttMessage&)> intercept;
  // A mapping with outbound members (Mapping::outbound) matched `topic` and mapped readings of
  // `twin` (once per twin and message).
  std::function<void(const MappingPtr&, std::string_view topic, const std::string& twin)> matched;
};

struct MappingDeadLetter {
  Clock::time_point at;
  std::string topic;
  std::string twin, element;  // when known
  std::string value;          // abbreviated
  core::Status error;         // MAPPING_* or INGEST_*
};

struct MappingStats {
  std::uint64_t messages = 0;                     // messages that matched the mapping
  std::uint64_t readings = 0;                     // readings accepted by the Ingestor
  std::map<std::string, std::uint64_t> rejected;  // by code
  std::optional<Clock::time_point> last_message;
};

struct MappingInfo {
  MappingPtr mapping;
  MappingStats stats;
  std::vector<MappingDeadLetter> dead_letters;  // oldest first; only from Get
};

class MqttIngest {
 public:
  MqttIngest(const model::ModelRepository& models, Ingestor& ingestor,
             MappingPersistence* persistence, MqttIngestOptions options = {});
  ~MqttIngest();  // Stop()
  MqttIngest(const MqttIngest&) = delete;
  MqttIngest& operator=(const MqttIngest&) = delete;

  // Loads every stored mapping. A stored mapping that no longer validates (its model was
  // deleted) is skipped and reported in the returned status's details (the record stays).
  core::Status Load();

  // Starts the client (no-op without a broker). MQTT_* errors from MqttClient::Start.
  core::Status Start();
  // Disconnects (the broker keeps the session) and joins the network thread. Idempotent.
  void Stop();

  // Validates `document` (Mapping::Parse against the model repository), stores it, makes it
  // live and (un)subscribes as needed. With `expected_id`, a document without `id` takes it and
  // one with another id is MAPPING_ID_MISMATCH. Returns true if the mapping is new.
  core::Result<bool> Put(const boost::json::value& document,
                         std::optional<std::string_view> expected_id = std::nullopt);
  // MAPPING_NOT_FOUND, or the persistence's error.
  core::Status Remove(std::string_view id);

  std::vector<MappingInfo> List() const;  // by id, without dead letters
  core::Result<MappingInfo> Get(std::string_view id) const;

  // Handles one message as if it arrived from the broker (the network thread calls it; tests
  // may too). Returns when every reading is applied.
  void HandleMessage(const MqttMessage& message);

  // Waits until connected and every mapping's filter is subscribed (MqttClient::
  // WaitUntilSubscribed). MQTT_NOT_STARTED without a broker.
  core::Status WaitUntilSubscribed(std::chrono::milliseconds timeout);
  // The filters subscribed now, with their QoS.
  std::map<std::string, int> subscriptions() const;

  // Outbound (device_link.h). SetHooks replaces the hooks (empty functions: none); it waits for
  // a hook call in progress, so after SetHooks({}) no old hook runs.
  void SetHooks(MqttIngestHooks hooks);
  // Publishes through the ingest client. MQTT_NOT_STARTED without a broker; MqttClient::Publish.
  core::Result<int> Publish(std::string_view topic, std::string_view payload, int qos,
                            const MqttProperties& properties = {});
  // A subscription kept besides the mappings' own (e.g. the command response topic). The ack
  // topics of mappings with `desired` (Mapping::outbound) are subscribed with QoS 1 as well.
  core::Status AddSubscription(std::string filter, int qos);
  std::vector<MappingPtr> mappings() const { return set_.List(); }

  bool broker_configured() const { return options_.broker.has_value(); }
  bool connected() const;
  MqttCounters counters() const;
  std::uint64_t unmatched() const;
  const std::string& client_id() const;  // "" without a broker

 private:
  struct State;  // per mapping: stats and dead letters
  std::shared_ptr<State> StateOf(const std::string& id);
  void SyncSubscriptions();  // under write_mu_

  const model::ModelRepository& models_;
  Ingestor& ingestor_;
  MappingPersistence* persistence_;
  MqttIngestOptions options_;
  MappingSet set_;
  std::unique_ptr<MqttClient> client_;

  mutable std::mutex write_mu_;            // Put / Remove / Load, one at a time
  std::map<std::string, int> subscribed_;  // filter -> QoS, as sent to the client
  std::map<std::string, int> extra_subscriptions_;  // AddSubscription

  std::mutex hooks_mu_;  // held while a hook runs
  MqttIngestHooks hooks_;

  RateLimiter limiter_;  // flood protection, by mapping id + '\n' + topic

  mutable std::mutex state_mu_;
  std::map<std::string, std::shared_ptr<State>, std::less<>> states_;
  std::uint64_t unmatched_ = 0;
};

}  // namespace doppel::sync
