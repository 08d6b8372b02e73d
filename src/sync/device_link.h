// doppel::sync — back to the device: desired values of writable properties, with their sync
// state, and DTDL Commands over MQTT 5 request/response.
//
// What it does
//   DeviceLink sends what the twin wants to the physical side and follows what comes back. It
//   rides on the server's MQTT ingest client (mqtt_ingest.h): it publishes through it, sees
//   every message first (acks, command responses) and learns from the mappings where each
//   twin's device listens (the `desired` / `commands` members, device_route.h).
//
//   Desired values (PUT /digitaltwins/{id}/desired/{path}, api/device_routes.cc)
//   * SetDesired checks that `path` ("cycleTime", or "component/property") is a writable Property
//     of the twin's model and that the value conforms to its schema, finds the device's topic,
//     then writes the value through the twin graph's normal write path as
//     $metadata.<property>.desiredValue (so the twin document keeps it, with the graph's
//     desiredVersion, and the change feed shows it), and publishes (QoS 1) on the desired topic
//       {"correlationId": "<unique>", "path": "/cycleTime", "value": 42.5}
//     `path` is the property's JSON pointer in the twin ("/motorTemperature/alarmThreshold").
//     The entry is now `pending` (since the time it was set).
//   * It settles:
//       ack on the mapping's ackTopic {"correlationId": same, "status": "applied", ...}
//           → inSync, ackCode 200, ackVersion = the desired version, ackDescription "applied"
//       {"correlationId": same, "status": "rejected", "error": "..."}
//           → failed, ackCode 400, ackDescription = the device's error
//       a reported value (any committed write of the property's value, e.g. an ingested
//       reading: watched on the change feed) equal to the desired value → inSync (ackCode 200,
//       ackDescription "reported"); numbers compare by value (42 equals 42.0)
//       no ack within the timeout (the mapping's desired.timeoutMs, default 30 s)
//           → failed, ackCode 408, ackDescription "timeout: ..."; a late ack still settles it
//       a reported value that differs from the desired value after the entry was inSync
//           → diverged (the value is kept as `reportedValue`); an equal one later → inSync again
//     A pending entry only changes on an ack, a timeout or an equal reported value: the device
//     keeps reporting its old value until it has applied the new one.
//   * A newer desired value for the same property supersedes the entry: the old correlation id's
//     ack is then ignored (counted: acks_superseded). An ack nobody waits for: acks_unknown.
//   * The twin's $metadata.<property> (GET /digitaltwins/{id}, Decorate) shows the IoT Plug and
//     Play writable-property shape: desiredValue and desiredVersion (the twin document's own),
//     ackVersion, ackCode, ackDescription, plus syncState ("inSync"|"pending"|"failed"|
//     "diverged") and pendingSince (while pending). The sync part is shown only while the
//     document's desiredVersion is the one this link sent (a desired value written by a plain
//     PATCH is stored but not sent).
//   * Where the sync state lives: a side table, persisted through DesiredPersistence (the store:
//     `ds/<twin>\x1f<path>` records, one JSON document each), merged into the twin document on
//     GET. Not in the twin document itself: writing ack fields there needs server-managed
//     metadata that the twin graph does not offer yet (twin_document.h allows only desiredValue
//     from clients), so acks and state changes are not change-feed events. After a restart the
//     entries are loaded back; a pending one gets a fresh timeout (its ack may be queued in the
//     broker for our persistent session).
//
//   Commands (POST /digitaltwins/{id}/commands/{name}, .../components/{c}/commands/{name})
//   * Invoke checks that the twin's model (or the component's) has Command `name` and validates
//     the request payload against its request schema (model::ValidateCommandRequest) before
//     anything is published. It publishes (QoS 1) the payload's JSON text (empty for a command
//     without request) on the mapping's commands topic, `{command}` filled with the name
//     ("component*name" for a component's command), with MQTT 5 response topic
//     doppel/<client id>/responses (subscribed once, QoS 1), correlation data a unique id and
//     content type application/json.
//   * The response (same correlation data) has user property `status` (absent: 200). 200: the
//     payload (JSON; empty = null) is validated against the response schema (none: anything) →
//     {status: 200, payload}. Another status: the device's error (payload.error when it is an
//     object with a string `error`, else the payload text) with that status (CommandResponse
//     with status != 200). No response within the timeout (?timeoutMs, else the mapping's
//     commands.timeoutMs, default 10 s) → COMMAND_TIMEOUT; a late response is counted
//     (responses_unknown) and dropped.
//
//   Routing: the topic's placeholders are filled from the topic captures of the last message
//   that mapping mapped for the twin (remembered per twin and mapping, in memory; these mappings
//   are tried first, by id), else from the mapping's twin template read backwards ("{machine}"
//   against "machine-1" gives machine=machine-1; only mappings without `model` or whose model
//   the twin's model is or extends, by id). The first whose topic can be filled is used. None:
//   DEVICE_NO_ROUTE naming the twin and the missing capture.
//
// How to use it
//   DeviceLink link(models, graph, &mqtt_ingest, &persistence);   // mqtt may be null: offline
//   link.Load();                                   // stored desired entries
//   link.Start();                                  // before mqtt_ingest.Start()
//   link.SetDesired("machine-1", "cycleTime", 42.5, [](core::Result<DesiredEntry> r) {...});
//   link.Invoke("machine-1", "", "setSpeed", 1800, std::nullopt,
//               [](core::Result<CommandResponse> r) {...});
//   ...
//   link.Stop();                                   // before the graph and mqtt_ingest go away
//
// Threads
//   One worker thread (Start/Stop) does all the work: it creates entries after the graph's write
//   returns, publishes, persists, settles acks and responses, fires timeouts and reads the change
//   feed (one subscriber, counted in doppel_event_subscribers; only with a broker or stored
//   entries). The MQTT network thread and the graph's shard threads only queue tasks for it (they
//   are never blocked by persistence or validation). `done` callbacks run on the worker thread or,
//   for early errors, on the caller's: keep them short (the API posts to the connection's strand).
//   Every public method is safe from any thread; Stop and the destructor not from a callback.
//
// Error codes (stable; HTTP status in the API)
//   DESIRED_UNKNOWN_ELEMENT  404  the model has no Property (or Component) at that path
//   DESIRED_NOT_WRITABLE     400  the element is not a writable Property (a Telemetry, a
//                                 Command, a read-only Property)
//   DESIRED_WRONG_TYPE       400  the value does not conform to the property's schema (details:
//                                 every problem with its pointer)
//   COMMAND_UNKNOWN          404  no Command of that name (or no such component)
//   COMMAND_BAD_REQUEST      400  the request payload does not conform (details), or a command
//                                 without request got one
//   COMMAND_TIMEOUT          504  no response within the timeout
//   COMMAND_BAD_RESPONSE     502  the device answered 200 with a payload that is not JSON or
//                                 does not conform to the response schema (details)
//   COMMAND_FAILED           the device's status (4xx/5xx; else 502): the device refused
//                                 (API only: Invoke returns it as a CommandResponse)
//   DEVICE_NO_ROUTE          409  no mapping with `desired` / `commands` can name the twin's
//                                 topic (message names the twin and the missing capture)
//   DEVICE_OFFLINE           503  no broker configured, or the publish was refused
//   BAD_TIMEOUT              400  ?timeoutMs not an integer 1..86400000 (API)
//   TWIN_NOT_FOUND           404  no such twin
//   SHUTTING_DOWN            503  the link stopped while a command waited
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"
#include "model/model_repository.h"
#include "sync/mqtt_ingest.h"
#include "twin/twin_graph.h"

namespace doppel::sync {

// Where desired entries are kept (the store implements it under `ds/`, api/device_routes.cc).
class DesiredPersistence {
 public:
  virtual ~DesiredPersistence() = default;
  virtual core::Status LoadAll(
      const std::function<void(std::string_view key, std::string_view document)>& fn) = 0;
  virtual core::Status Save(std::string_view key, std::string_view document) = 0;
  virtual core::Status Delete(std::string_view key) = 0;
};

enum class SyncState { kInSync, kPending, kFailed, kDiverged };
std::string_view SyncStateName(SyncState s);  // "inSync", "pending", "failed", "diverged"

struct DesiredEntry {
  std::string twin;
  std::string path;  // "cycleTime", "motorTemperature/alarmThreshold"
  boost::json::value value;
  std::int64_t version = 0;  // the twin document's desiredVersion for this value
  std::string correlation_id;
  std::string topic;  // where it was published
  SyncState state = SyncState::kPending;
  Clock::time_point since;    // when the value was set
  Clock::time_point updated;  // the last change of state
  std::optional<std::int64_t> ack_version;
  std::optional<int> ack_code;
  std::string ack_description;
  std::optional<boost::json::value> reported;  // the differing reported value (diverged)
  std::chrono::milliseconds timeout{30000};

  boost::json::object ToJson() const;  // the API's shape (also the persisted one)
  static std::optional<DesiredEntry> FromJson(const boost::json::value& v);
};

struct CommandResponse {
  int status = 200;
  boost::json::value payload;  // 200: the device's result; else {"error": "..."} as sent
  std::string error;           // status != 200: the device's error text
};

struct DeviceLinkOptions {
  std::size_t feed_capacity = 65536;  // change-feed queue of the worker
  // Called on the worker after every change of a twin's entries with how many of them are
  // diverged now (sync quality's SetDivergence). May be empty.
  std::function<void(const std::string& twin, std::int64_t diverged)> on_divergence;
};

struct DeviceLinkStats {
  std::uint64_t desired_sent = 0;
  std::uint64_t acks = 0;             // acks that settled an entry
  std::uint64_t acks_superseded = 0;  // acks for a value a newer one replaced
  std::uint64_t acks_unknown = 0;     // acks nobody waited for (or unreadable)
  std::uint64_t desired_timeouts = 0;
  std::uint64_t reported_settled = 0;  // entries a reported value settled
  std::uint64_t diverged = 0;          // entries that became diverged
  std::uint64_t commands_sent = 0;
  std::uint64_t command_responses = 0;
  std::uint64_t command_timeouts = 0;
  std::uint64_t responses_unknown = 0;  // late or unknown command responses
  std::uint64_t feed_overflows = 0;
  std::uint64_t persist_errors = 0;  // DesiredPersistence failures (the entry stays in memory)
};

class DeviceLink {
 public:
  // `mqtt` may be null or without broker (then SetDesired/Invoke answer DEVICE_OFFLINE after
  // validating); `persistence` may be null (nothing survives a restart). All must outlive this.
  DeviceLink(const model::ModelRepository& models, twin::TwinGraph& graph, MqttIngest* mqtt,
             DesiredPersistence* persistence, DeviceLinkOptions options = {});
  ~DeviceLink();  // Stop()
  DeviceLink(const DeviceLink&) = delete;
  DeviceLink& operator=(const DeviceLink&) = delete;

  // Loads the stored entries (before Start). Unreadable records are skipped and reported.
  core::Status Load();
  // Installs the MQTT hooks, subscribes the response topic, subscribes to the change feed and
  // starts the worker. Call before MqttIngest::Start, so the first connect subscribes.
  core::Status Start();
  // Removes the hooks, answers waiting commands with SHUTTING_DOWN, joins the worker.
  void Stop();

  using DesiredDone = std::function<void(core::Result<DesiredEntry>)>;
  void SetDesired(std::string twin, std::string path, boost::json::value value, DesiredDone done);
  // Every entry of `twin`, by path.
  std::vector<DesiredEntry> Desired(std::string_view twin) const;
  bool HasDesired(std::string_view twin) const;
  // `doc` (a twin document) with the sync fields merged into its $metadata entries.
  boost::json::object Decorate(boost::json::object doc) const;

  using CommandDone = std::function<void(core::Result<CommandResponse>)>;
  // `component` empty: a command of the twin's own model.
  void Invoke(std::string twin, std::string component, std::string name,
              const boost::json::value& request, std::optional<std::chrono::milliseconds> timeout,
              CommandDone done);

  DeviceLinkStats stats() const;
  const std::string& response_topic() const { return response_topic_; }

 private:
  struct Route {
    std::string topic;
    std::chrono::milliseconds timeout{0};
  };
  struct PendingCommand {
    CommandDone done;
    std::string twin, name;
    const model::Schema* response_schema = nullptr;  // kept alive by `model`
    bool has_response = false;
    bool response_nullable = false;
    model::ResolvedPtr model;
  };
  using Key = std::pair<std::string, std::string>;  // twin, path
  enum class TimerKind { kDesired, kCommand };
  struct Timer {
    TimerKind kind;
    std::string correlation_id;
  };

  core::Result<Route> FindRoute(const std::string& twin, const model::ResolvedInterface& model,
                                bool desired, const std::string& command) const;
  void Post(std::function<void()> task);
  void AddTimer(std::chrono::milliseconds after, TimerKind kind, std::string correlation_id);
  void Run();
  // Stores `e` and reports the twin's divergence (worker thread).
  void Persist(const DesiredEntry& e);
  void Created(DesiredEntry entry, const DesiredDone& done);
  void HandleAck(const MqttMessage& m);
  void HandleResponse(const MqttMessage& m);
  void FireTimer(const Timer& t);
  std::shared_ptr<twin::Subscription> SubscribeFeed();
  void DrainFeed();
  void Reported(const std::string& twin, const std::string& path, const boost::json::value& v);
  std::string NewCorrelationId(char kind);

  const model::ModelRepository& models_;
  twin::TwinGraph& graph_;
  MqttIngest* mqtt_;
  DesiredPersistence* persistence_;
  DeviceLinkOptions options_;
  std::string response_topic_;

  // Entries and pending commands (any thread reads, the worker writes).
  mutable std::mutex state_mu_;
  std::map<Key, DesiredEntry> entries_;
  std::unordered_map<std::string, Key> by_correlation_;
  std::set<std::string> superseded_;  // old correlation ids (bounded)
  std::deque<std::string> superseded_order_;
  std::unordered_map<std::string, PendingCommand> commands_;
  DeviceLinkStats stats_;

  // Captures of the last message per (twin, mapping id) (the network thread writes).
  mutable std::mutex routes_mu_;
  std::map<Key, CaptureValues> captures_;

  // The worker.
  std::mutex q_mu_;
  std::condition_variable q_cv_;
  std::deque<std::function<void()>> tasks_;
  std::multimap<std::chrono::steady_clock::time_point, Timer> timers_;
  bool feed_ready_ = false;
  bool stopping_ = false;
  int graph_writes_ = 0;  // SetDesired writes whose callback has not run yet (Stop waits)
  std::thread worker_;
  bool started_ = false;  // Start ran (guarded by q_mu_)
  std::shared_ptr<twin::Subscription> feed_;
  // The change feed may call its notify after Unsubscribe returns: it reaches the link only
  // through this, which Stop disconnects.
  struct FeedWake {
    std::mutex mu;
    DeviceLink* link = nullptr;
  };
  std::shared_ptr<FeedWake> wake_ = std::make_shared<FeedWake>();
  std::uint64_t next_id_ = 0;  // under state_mu_
  std::string id_prefix_;
};

}  // namespace doppel::sync
