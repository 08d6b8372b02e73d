// doppel::sync — an MQTT 3.1.1 / 5 client (libmosquitto 2.0) that stays connected.
//
// What it does
//   Keeps one connection to one broker: connects in the background, reconnects with exponential
//   backoff for as long as it runs, resumes a persistent session, re-sends subscriptions the broker
//   forgot, and hands every message to one callback. It publishes with QoS 0 or 1 and MQTT 5
//   request/response properties (response topic, correlation data, content type, user
//   properties, message expiry). The ingest mappings, desired values and commands build on it.
//
// How to use it
//   MqttOptions options;  options.port = 1883;  options.client_id = "doppel-ingest";
//   MqttCallbacks callbacks;
//   callbacks.on_message = [&](const MqttMessage& m) { ... };   // on the network thread
//   MqttClient client(options, std::move(callbacks));
//   client.Subscribe("plant/+/+/telemetry", 1);   // remembered, (re)sent when needed
//   client.Start();                               // returns at once; connects in the background
//   auto mid = client.Publish("plant/cmd/m1", R"({"speed":10})", 1);
//   ...
//   client.Stop();                                // DISCONNECT, joins the network thread
//
// Threads
//   * One network thread per client (started by Start, joined by Stop). It runs every callback:
//     on_message, on_connection, on_publish_ack. A callback must return quickly: while it runs, no
//     other packet of this client is read or written (keepalive pings included — a callback that
//     blocks longer than about 1.5 × keepalive gets the connection dropped by the broker).
//   * Publish, Subscribe, Unsubscribe, counters() and connected() may be called from any thread,
//     including from inside a callback (e.g. publish a response from on_message). WaitUntil* and
//     Flush may be called from any thread but not from a callback (they wait for the network
//     thread, which is busy running the callback: they would run into their timeout). Stop from
//     a callback only asks the thread to stop; a later Stop or the destructor joins it. The
//     destructor must not run on the network thread. Callbacks are never called with a lock of
//     this class held.
//   * An exception thrown by a callback is caught and counted (callback_errors); for on_message
//     the message still counts as delivered and is acknowledged.
//   * The client drives libmosquitto itself (mosquitto_threaded_set, poll() on the socket, then
//     mosquitto_loop_read/write/misc), not with mosquitto_loop_start: that loop retries only in
//     whole seconds, stops for good on some errors (DNS failure, protocol error) and uses select(),
//     which fails on file descriptors above 1023 — a server with many connections has those.
//
// Connecting and reconnecting
//   * Start validates the options and starts the thread; the connection is made in the background
//     (WaitUntilConnected waits for it). Every failed attempt, and every connection that lasted
//     less than 5 s, doubles the delay before the next attempt, from reconnect_min up to
//     reconnect_max, each delay randomized to between half and all of it so that many clients
//     restarted together do not reconnect in lock step. A connection that lasted 5 s or more
//     resets the delay to reconnect_min. There is no limit on attempts: only Stop ends them.
//   * An attempt that has no CONNACK after connect_timeout is abandoned and counted as failed.
//     The first attempt of a Start uses a blocking TCP connect (libmosquitto 2.0 has no
//     asynchronous connect that carries MQTT 5 CONNECT properties); later ones are non-blocking.
//     So if the broker host drops packets, Stop can wait for that first connect() until the kernel
//     gives up (about 2 minutes on Linux); with a refused or reachable broker it returns at once.
//   * A broker that refuses the CONNECT (bad credentials, not authorized) is retried with the same
//     backoff; on_connection reports MQTT_CONNECT_REFUSED with the broker's reason each time.
//
// Sessions and subscriptions
//   * persistent_session (the default): every CONNECT has clean start = false and, with MQTT 5,
//     Session Expiry Interval = session_expiry_seconds; the broker keeps the subscriptions and
//     queues QoS 1 messages for us while we are away, and this holds for a new process that uses
//     the same client_id. With MQTT 3.1.1 the broker keeps the session until its own
//     persistent_client_expiration (mosquitto: forever by default); session_expiry_seconds does
//     not apply. persistent_session = false: clean start, the session ends with the connection.
//   * Subscriptions are remembered by filter. After each CONNACK the client (re)sends every
//     remembered subscription the broker has not confirmed in the current session: all of them
//     when CONNACK says session-present = 0 (new session, or the broker lost it), only the
//     unconfirmed ones when it says 1. A new MqttClient sends all of its subscriptions once, even
//     into a resumed session. With MQTT 5 they are sent with retain handling 1 (retained messages
//     only for a subscription that is new to the broker); with 3.1.1 the broker sends retained
//     messages again on every re-subscription.
//   * A persistent session also keeps subscriptions that an earlier run made and this run never
//     repeats: their messages still arrive at on_message. Unsubscribe them, or expect unknown
//     topics.
//
// Delivery guarantees (libmosquitto 2.0.11 with the mosquitto 2.0 broker; checked by the tests)
//   Incoming, QoS 1:
//   * libmosquitto acknowledges automatically; it has no manual-ack API. In 2.0 its
//     handle__publish queues the PUBACK and then calls on_message; in threaded mode (ours) queued
//     packets are written only by the network thread, which is busy running on_message, so the
//     PUBACK leaves after on_message has returned and never before. (Later libmosquitto, its
//     develop branch, calls on_message first and queues the PUBACK after: the same effect. Without
//     threaded mode 2.0 would write the PUBACK before calling on_message.) Consequences:
//     - A crash of our process while on_message runs: no PUBACK was sent; the broker redelivers
//       the message (DUP) to the same persistent session when we reconnect. Test:
//       CrashInsideMessageCallbackRedelivers.
//     - Once on_message has returned, the PUBACK goes out with the network thread's next write
//       (normally at once); a message that the callback only queued in memory is lost if the
//       process dies after that.
//     So at-least-once across a crash of our process holds only for work that on_message finishes
//     (made durable) before it returns. The ingest layer must apply or persist synchronously in
//     the callback, or accept that a crash loses up to its in-memory queue.
//   * Duplicates are possible (a redelivery after a lost PUBACK, a crash after processing but
//     before the PUBACK left). The message carries no dup flag (libmosquitto does not expose it):
//     consumers must be idempotent.
//   * While we are disconnected, the broker queues QoS 1 messages for a persistent session, up to
//     its max_queued_messages (mosquitto default 1000; beyond that it DROPS them silently) and
//     max_queued_bytes. Size them for the longest outage to survive.
//   * Across a broker restart the queue survives only if the broker has persistence on and saved
//     it: mosquitto writes its database on clean shutdown (SIGTERM) and every autosave_interval
//     seconds — it is a snapshot, not a log, so after SIGKILL or a power cut everything since the
//     last save (sessions, queued and in-flight messages) is gone.
//   * QoS 0 messages are never queued for us while we are away.
//   Outgoing (our Publish):
//   * QoS 1: libmosquitto keeps the message in memory until its PUBACK, resends it (DUP) after
//     every reconnect, and on_publish_ack reports the PUBACK. Publish while disconnected is
//     accepted and queued (it is sent after the next CONNACK), up to max_queued unacknowledged
//     messages (then MQTT_QUEUE_FULL). Flush waits until every accepted QoS 1 message is
//     acknowledged. NOT guaranteed: messages not yet acknowledged when Stop() returns or the
//     process ends are lost (memory only); Flush before Stop to avoid that.
//   * QoS 0: sent if connected at the time of the call (else MQTT_NOT_CONNECTED); lost if the
//     connection drops before the bytes leave.
//   * A PUBACK with an MQTT 5 reason code >= 0x80 (e.g. 0x87 not authorized) counts as a failed
//     publish (publish_errors); 0x10 "no matching subscribers" is success.
//   * QoS 2 is not offered.
//
// Topics (checked before anything is sent; the rules of MQTT 3.1.1 §4.7 / 5.0 §4.7 plus the
// character rules libmosquitto and the mosquitto broker enforce)
//   * Names and filters: 1 to 65535 bytes of well-formed UTF-8 (no overlong forms, no surrogates,
//     nothing above U+10FFFF) without U+0000, control characters (U+0001–U+001F, U+007F–U+009F,
//     tab included) or non-characters (U+FDD0–U+FDEF, U+xFFFE, U+xFFFF).
//   * Topic names (Publish, response topic) have no '+' or '#'.
//   * Filters (Subscribe): '#' only as the whole last level ("#", "a/#"), '+' only as a whole level
//     ("+/b", "a/+/c"); "$share/<group>/<filter>" needs a group name without '+', '#' or '/'.
//   * Property strings (content type, user property names and values) follow the same UTF-8 and
//     character rules; correlation data is binary, at most 65535 bytes.
//
// Error codes (stable)
//   MQTT_BAD_OPTIONS        Start: an option is out of range (see MqttOptions), or libmosquitto
//                           refused one
//   MQTT_ALREADY_STARTED    Start called a second time (a client runs once; make a new one)
//   MQTT_NOT_STARTED        Publish before Start or after Stop; Wait* before Start
//   MQTT_NOT_CONNECTED      QoS 0 Publish while the connection is down
//   MQTT_BAD_TOPIC          invalid topic name or filter (rules above)
//   MQTT_BAD_QOS            QoS other than 0 or 1, or above what the broker allows (MQTT 5)
//   MQTT_PAYLOAD_TOO_LARGE  payload over 268435455 bytes (MQTT's limit) or over the broker's
//                           maximum packet size (MQTT 5 CONNACK)
//   MQTT_BAD_PROPERTY       an MQTT 5 property that breaks the rules above
//   MQTT_V5_REQUIRED        MQTT 5 properties given to a 3.1.1 client
//   MQTT_QUEUE_FULL         max_queued QoS 1 messages are already waiting for their PUBACK
//   MQTT_TIMEOUT            WaitUntilConnected / WaitUntilSubscribed / Flush ran out of time
//   MQTT_SUBSCRIBE_REFUSED  WaitUntilSubscribed: the broker refused a subscription (SUBACK 0x80+)
//   MQTT_PUBLISH_FAILED     libmosquitto refused a publish for another reason (message says why)
//   Reported through on_connection (MqttConnectionEvent::error), never returned:
//   MQTT_CONNECT_FAILED     TCP connect or name lookup failed
//   MQTT_CONNECT_REFUSED    the broker answered CONNACK with an error (reason in the message)
//   MQTT_CONNECT_TIMEOUT    no CONNACK within connect_timeout
//   MQTT_CONNECTION_LOST    an established connection ended without our Stop
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace doppel::sync {

enum class MqttProtocol { kV311, kV5 };

struct MqttOptions {
  std::string host = "127.0.0.1";  // name or address of the broker
  int port = 1883;                 // 1..65535
  // Required (non-empty) with persistent_session: the broker finds the session by it. At most
  // 65535 bytes of valid UTF-8. Empty without persistent_session: libmosquitto makes one up.
  std::string client_id;
  MqttProtocol protocol = MqttProtocol::kV5;
  bool persistent_session = true;
  std::uint32_t session_expiry_seconds = 86400;  // MQTT 5 only; 1..4294967295
  int keepalive_seconds = 30;                    // 5..65535
  std::chrono::milliseconds reconnect_min{100};  // first retry delay; 1 ms..reconnect_max
  std::chrono::milliseconds reconnect_max{10000};
  std::chrono::milliseconds connect_timeout{10000};  // TCP connect to CONNACK; >= 100 ms
  std::optional<std::string> username;               // password requires username
  std::optional<std::string> password;
  int max_inflight = 20;           // QoS 1 publishes on the wire at once (1..65535)
  std::size_t max_queued = 10000;  // QoS 1 publishes accepted but not yet acknowledged (1..60000)
};

// MQTT 5 PUBLISH properties. An empty optional is an absent property.
struct MqttProperties {
  std::optional<std::string> response_topic;    // a topic name (no wildcards)
  std::optional<std::string> correlation_data;  // binary
  std::optional<std::string> content_type;
  std::optional<std::uint32_t> message_expiry_seconds;
  std::vector<std::pair<std::string, std::string>> user_properties;  // in order; repeats allowed

  bool empty() const {
    return !response_topic && !correlation_data && !content_type && !message_expiry_seconds &&
           user_properties.empty();
  }
  bool operator==(const MqttProperties&) const = default;
};

struct MqttMessage {
  std::string topic;
  std::string payload;  // bytes as received
  int qos = 0;
  bool retain = false;
  MqttProperties properties;  // always empty with MQTT 3.1.1
};

// A change of the connection, or a failed attempt.
struct MqttConnectionEvent {
  bool connected = false;        // true: CONNACK accepted; false: down (or an attempt failed)
  bool session_present = false;  // with connected: the broker resumed our session
  core::Status error;            // with !connected: why (OK after our own Stop)
};

struct MqttCallbacks {
  std::function<void(const MqttMessage&)> on_message;
  std::function<void(const MqttConnectionEvent&)> on_connection;
  // A QoS 1 publish was acknowledged: `id` as returned by Publish, `reason_code` the MQTT 5
  // PUBACK reason (0 for MQTT 3.1.1; >= 0x80 means the broker refused the message, or
  // libmosquitto refused a message queued while disconnected when it was handed over).
  std::function<void(int id, int reason_code)> on_publish_ack;
};

// Monotonic since Start, except `queued` (a current value).
struct MqttCounters {
  std::uint64_t connects = 0;          // CONNACKs accepted
  std::uint64_t disconnects = 0;       // established connections that ended (Stop included)
  std::uint64_t connect_failures = 0;  // attempts that did not reach an accepted CONNACK
  std::uint64_t messages_in = 0;       // messages handed to on_message
  std::uint64_t messages_out = 0;      // publishes accepted by Publish (QoS 0 and 1)
  std::uint64_t publish_acks = 0;      // QoS 1 PUBACKs with a success reason
  std::uint64_t publish_errors = 0;    // QoS 1 PUBACKs with a reason >= 0x80
  std::uint64_t subscribe_errors = 0;  // SUBACK entries refusing a filter
  std::uint64_t callback_errors = 0;   // exceptions thrown by a callback (caught, dropped)
  std::uint64_t queued = 0;            // QoS 1 publishes waiting for their PUBACK now
};

// The topic rules above. Error: MQTT_BAD_TOPIC, the message says which rule.
core::Status ValidateTopicName(std::string_view topic);
core::Status ValidateTopicFilter(std::string_view filter);

class MqttClient {
 public:
  MqttClient(MqttOptions options, MqttCallbacks callbacks);
  ~MqttClient();  // Stop()
  MqttClient(const MqttClient&) = delete;
  MqttClient& operator=(const MqttClient&) = delete;

  // Validates the options and starts the network thread, which connects in the background and
  // keeps reconnecting until Stop. Errors: MQTT_BAD_OPTIONS, MQTT_ALREADY_STARTED.
  core::Status Start();

  // Sends DISCONNECT if connected (the broker keeps a persistent session; waits at most 3 s for
  // it to leave), joins the network thread. Unacknowledged QoS 1 publishes are dropped (Flush
  // first). Idempotent and thread-safe; a client cannot be started again. From a callback it
  // only requests the stop (see Threads).
  void Stop();

  // Remembers the subscription (replacing the QoS of the same filter) and sends it now if
  // connected, else after the next CONNACK. Allowed before Start. QoS 0 or 1.
  // Errors: MQTT_BAD_TOPIC, MQTT_BAD_QOS (nothing is remembered then).
  core::Status Subscribe(std::string_view filter, int qos = 1);

  // Forgets the subscription and sends UNSUBSCRIBE now if connected, else after the next CONNACK
  // that resumes the session. Unknown filters are fine. Error: MQTT_BAD_TOPIC.
  core::Status Unsubscribe(std::string_view filter);

  // Publishes `payload` to `topic`; returns the id that on_publish_ack reports for QoS 1 (this
  // client's own numbering, not the MQTT packet identifier, which a message accepted while
  // disconnected only gets after the next CONNACK). QoS 1 is accepted while disconnected
  // (queued, see above). MQTT 5 properties need kV5.
  // Errors: MQTT_NOT_STARTED, MQTT_NOT_CONNECTED (QoS 0), MQTT_BAD_TOPIC, MQTT_BAD_QOS,
  // MQTT_PAYLOAD_TOO_LARGE, MQTT_BAD_PROPERTY, MQTT_V5_REQUIRED, MQTT_QUEUE_FULL,
  // MQTT_PUBLISH_FAILED. Nothing is sent or queued on error.
  core::Result<int> Publish(std::string_view topic, std::string_view payload, int qos = 1,
                            bool retain = false, const MqttProperties& properties = {});

  // Waits until connected. Errors: MQTT_TIMEOUT, MQTT_NOT_STARTED (never started, or stopped).
  core::Status WaitUntilConnected(std::chrono::milliseconds timeout);

  // Waits until connected and every remembered subscription is confirmed by a SUBACK in the
  // current session. Errors: MQTT_TIMEOUT, MQTT_NOT_STARTED, MQTT_SUBSCRIBE_REFUSED.
  core::Status WaitUntilSubscribed(std::chrono::milliseconds timeout);

  // Waits until every QoS 1 publish accepted so far is acknowledged and its on_publish_ack has
  // returned. Error: MQTT_TIMEOUT.
  core::Status Flush(std::chrono::milliseconds timeout);

  bool connected() const;
  MqttCounters counters() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::sync
