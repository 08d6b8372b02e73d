#include "sync/mqtt_client.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <climits>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

namespace doppel::sync {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxStringBytes = 65535;       // MQTT UTF-8 string and binary data
constexpr std::size_t kMaxPayloadBytes = 268435455;  // MQTT's largest remaining length
constexpr std::size_t kMaxQueuedLimit = 60000;       // below the 65535 message ids
constexpr std::size_t kQuoteLimit = 60;              // bytes of a topic quoted in messages
// A connection that lasted at least this long resets the reconnect backoff.
constexpr auto kStableConnection = std::chrono::seconds(5);
// How long Stop waits for DISCONNECT to be written before it drops the socket.
constexpr auto kDisconnectGrace = std::chrono::seconds(3);
// The network thread calls mosquitto_loop_misc (keepalive, retries) at least this often.
constexpr auto kPollSlice = std::chrono::milliseconds(1000);

core::Status Error(const char* code, std::string message) {
  return core::Status(code, std::move(message));
}

std::string Quote(std::string_view s) {
  if (s.size() <= kQuoteLimit) return fmt::format("'{}'", s);
  // Cut at a character boundary so the message stays valid UTF-8.
  std::size_t end = kQuoteLimit;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return fmt::format("'{}...'", s.substr(0, end));
}

// The character rules of mosquitto_validate_utf8 (which libmosquitto applies to topics and
// property strings, and the broker to topics). Returns nullptr when `s` passes, else the problem.
const char* CheckMqttString(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    std::uint32_t cp = 0;
    std::size_t len = 0;
    std::uint32_t min = 0;
    if (lead < 0x80) {
      cp = lead, len = 1, min = 0;
    } else if ((lead & 0xE0) == 0xC0) {
      cp = lead & 0x1Fu, len = 2, min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      cp = lead & 0x0Fu, len = 3, min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      cp = lead & 0x07u, len = 4, min = 0x10000;
    } else {
      return "is not valid UTF-8";
    }
    if (len > s.size() - i) return "is not valid UTF-8 (truncated sequence)";
    for (std::size_t k = 1; k < len; ++k) {
      const auto cont = static_cast<unsigned char>(s[i + k]);
      if ((cont & 0xC0) != 0x80) return "is not valid UTF-8";
      cp = (cp << 6) | (cont & 0x3Fu);
    }
    if (cp < min) return "is not valid UTF-8 (overlong encoding)";
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return "is not valid UTF-8";
    if (cp == 0) return "contains U+0000";
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return "contains a control character";
    if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFEu) == 0xFFFEu) {
      return "contains a Unicode non-character";
    }
    i += len;
  }
  return nullptr;
}

core::Status CheckTopicText(std::string_view what, std::string_view text) {
  if (text.empty()) return Error("MQTT_BAD_TOPIC", fmt::format("{} is empty", what));
  if (text.size() > kMaxStringBytes) {
    return Error("MQTT_BAD_TOPIC",
                 fmt::format("{} is longer than {} bytes", what, kMaxStringBytes));
  }
  if (const char* problem = CheckMqttString(text)) {
    return Error("MQTT_BAD_TOPIC", fmt::format("{} {}", what, problem));
  }
  return {};
}

// Checks the levels of a filter (after any $share/<group>/ prefix).
core::Status CheckFilterLevels(std::string_view whole, std::string_view filter) {
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = filter.find('/', start);
    const bool last = slash == std::string_view::npos;
    const std::string_view level =
        filter.substr(start, last ? std::string_view::npos : slash - start);
    if (level.find('#') != std::string_view::npos && (level != "#" || !last)) {
      return Error("MQTT_BAD_TOPIC",
                   fmt::format("topic filter {}: '#' must be the whole last level", Quote(whole)));
    }
    if (level.find('+') != std::string_view::npos && level != "+") {
      return Error("MQTT_BAD_TOPIC",
                   fmt::format("topic filter {}: '+' must be a whole level", Quote(whole)));
    }
    if (last) return {};
    start = slash + 1;
  }
}

std::string DescribeMosquittoError(int rc, int saved_errno) {
  if (rc == MOSQ_ERR_ERRNO) return std::generic_category().message(saved_errno);
  return mosquitto_strerror(rc);
}

// Owns a libmosquitto property list.
class PropertyList {
 public:
  PropertyList() = default;
  PropertyList(const PropertyList&) = delete;
  PropertyList& operator=(const PropertyList&) = delete;
  ~PropertyList() { mosquitto_property_free_all(&list_); }
  mosquitto_property** out() { return &list_; }
  const mosquitto_property* get() const { return list_; }

 private:
  mosquitto_property* list_ = nullptr;
};

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }  // NOLINT(cppcoreguidelines-no-malloc)
};
template <typename T>
using Malloced = std::unique_ptr<T, FreeDeleter>;

void ReadProperties(const mosquitto_property* props, MqttProperties* out) {
  char* raw = nullptr;
  if (mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &raw, false)) {
    Malloced<char> s(raw);
    out->response_topic.emplace(s ? s.get() : "");
  }
  void* bytes = nullptr;
  std::uint16_t len = 0;
  if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &bytes, &len, false)) {
    Malloced<void> b(bytes);
    out->correlation_data.emplace(b ? static_cast<const char*>(b.get()) : "", b ? len : 0);
  }
  raw = nullptr;
  if (mosquitto_property_read_string(props, MQTT_PROP_CONTENT_TYPE, &raw, false)) {
    Malloced<char> s(raw);
    out->content_type.emplace(s ? s.get() : "");
  }
  std::uint32_t expiry = 0;
  if (mosquitto_property_read_int32(props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, &expiry, false)) {
    out->message_expiry_seconds = expiry;
  }
  char* name = nullptr;
  char* value = nullptr;
  const mosquitto_property* at =
      mosquitto_property_read_string_pair(props, MQTT_PROP_USER_PROPERTY, &name, &value, false);
  while (at != nullptr) {
    Malloced<char> n(name);
    Malloced<char> v(value);
    out->user_properties.emplace_back(n ? n.get() : "", v ? v.get() : "");
    name = value = nullptr;
    at = mosquitto_property_read_string_pair(at, MQTT_PROP_USER_PROPERTY, &name, &value, true);
  }
}

core::Status CheckPropertyString(std::string_view what, std::string_view s) {
  if (s.size() > kMaxStringBytes) {
    return Error("MQTT_BAD_PROPERTY",
                 fmt::format("{} is longer than {} bytes", what, kMaxStringBytes));
  }
  if (const char* problem = CheckMqttString(s)) {
    return Error("MQTT_BAD_PROPERTY", fmt::format("{} {}", what, problem));
  }
  return {};
}

core::Status CheckProperties(const MqttProperties& p) {
  if (p.response_topic) {
    if (auto st = ValidateTopicName(*p.response_topic); !st.ok()) {
      return Error("MQTT_BAD_PROPERTY", "response topic: " + st.message());
    }
  }
  if (p.correlation_data && p.correlation_data->size() > kMaxStringBytes) {
    return Error("MQTT_BAD_PROPERTY",
                 fmt::format("correlation data is longer than {} bytes", kMaxStringBytes));
  }
  if (p.content_type) {
    if (auto st = CheckPropertyString("content type", *p.content_type); !st.ok()) return st;
  }
  for (const auto& [name, value] : p.user_properties) {
    if (auto st = CheckPropertyString("user property name", name); !st.ok()) return st;
    if (auto st = CheckPropertyString("user property value", value); !st.ok()) return st;
  }
  return {};
}

core::Status BuildProperties(const MqttProperties& p, PropertyList* list) {
  int rc = MOSQ_ERR_SUCCESS;
  if (p.response_topic && rc == MOSQ_ERR_SUCCESS) {
    rc = mosquitto_property_add_string(list->out(), MQTT_PROP_RESPONSE_TOPIC,
                                       p.response_topic->c_str());
  }
  if (p.correlation_data && rc == MOSQ_ERR_SUCCESS) {
    rc = mosquitto_property_add_binary(list->out(), MQTT_PROP_CORRELATION_DATA,
                                       p.correlation_data->data(),
                                       static_cast<std::uint16_t>(p.correlation_data->size()));
  }
  if (p.content_type && rc == MOSQ_ERR_SUCCESS) {
    rc =
        mosquitto_property_add_string(list->out(), MQTT_PROP_CONTENT_TYPE, p.content_type->c_str());
  }
  if (p.message_expiry_seconds && rc == MOSQ_ERR_SUCCESS) {
    rc = mosquitto_property_add_int32(list->out(), MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
                                      *p.message_expiry_seconds);
  }
  for (const auto& [name, value] : p.user_properties) {
    if (rc != MOSQ_ERR_SUCCESS) break;
    rc = mosquitto_property_add_string_pair(list->out(), MQTT_PROP_USER_PROPERTY, name.c_str(),
                                            value.c_str());
  }
  if (rc != MOSQ_ERR_SUCCESS) {
    return Error("MQTT_BAD_PROPERTY",
                 fmt::format("libmosquitto refused the properties: {}", mosquitto_strerror(rc)));
  }
  return {};
}

core::Status CheckOptions(const MqttOptions& o) {
  auto bad = [](std::string message) { return Error("MQTT_BAD_OPTIONS", std::move(message)); };
  if (o.host.empty()) return bad("host is empty");
  if (o.port < 1 || o.port > 65535) return bad(fmt::format("port {} is not in 1..65535", o.port));
  if (o.persistent_session && o.client_id.empty()) {
    return bad("a persistent session needs a client_id (the broker finds the session by it)");
  }
  if (o.client_id.size() > kMaxStringBytes || CheckMqttString(o.client_id) != nullptr) {
    return bad("client_id must be at most 65535 bytes of UTF-8 without control characters");
  }
  if (o.protocol == MqttProtocol::kV5 && o.persistent_session && o.session_expiry_seconds == 0) {
    return bad("session_expiry_seconds must be > 0 with a persistent MQTT 5 session");
  }
  if (o.keepalive_seconds < 5 || o.keepalive_seconds > 65535) {
    return bad(fmt::format("keepalive_seconds {} is not in 5..65535", o.keepalive_seconds));
  }
  if (o.reconnect_min.count() < 1 || o.reconnect_max < o.reconnect_min) {
    return bad("reconnect delays need 1 ms <= reconnect_min <= reconnect_max");
  }
  if (o.connect_timeout < std::chrono::milliseconds(100)) {
    return bad("connect_timeout must be at least 100 ms");
  }
  if (o.password && !o.username) return bad("a password needs a username");
  if (o.max_inflight < 1 || o.max_inflight > 65535) {
    return bad(fmt::format("max_inflight {} is not in 1..65535", o.max_inflight));
  }
  if (o.max_queued < 1 || o.max_queued > kMaxQueuedLimit) {
    return bad(fmt::format("max_queued {} is not in 1..{}", o.max_queued, kMaxQueuedLimit));
  }
  return {};
}

void InitLibraryOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

}  // namespace

core::Status ValidateTopicName(std::string_view topic) {
  if (auto st = CheckTopicText("topic name", topic); !st.ok()) return st;
  if (topic.find_first_of("+#") != std::string_view::npos) {
    return Error("MQTT_BAD_TOPIC",
                 fmt::format("topic name {} contains a wildcard ('+' or '#'); only subscription "
                             "filters may",
                             Quote(topic)));
  }
  return {};
}

core::Status ValidateTopicFilter(std::string_view filter) {
  if (auto st = CheckTopicText("topic filter", filter); !st.ok()) return st;
  constexpr std::string_view kShare = "$share/";
  if (filter.substr(0, kShare.size()) == kShare) {
    const std::string_view rest = filter.substr(kShare.size());
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) {
      return Error(
          "MQTT_BAD_TOPIC",
          fmt::format("shared subscription {} is not $share/<group>/<filter>", Quote(filter)));
    }
    if (rest.substr(0, slash).find_first_of("+#") != std::string_view::npos) {
      return Error(
          "MQTT_BAD_TOPIC",
          fmt::format("shared subscription {}: the group name has a wildcard", Quote(filter)));
    }
    return CheckFilterLevels(filter, rest.substr(slash + 1));
  }
  return CheckFilterLevels(filter, filter);
}

// ---- The client -------------------------------------------------------------------------------
//
// State shared with callers lives under mu_. The network thread owns the connection attempt state
// (attempt_*, failures_, ...) and is the only thread that calls the loop functions; callers use
// the libmosquitto calls that are safe in threaded mode (publish, subscribe, unsubscribe), under
// mu_ so that the acknowledgement callback for a message id always finds the bookkeeping made for
// it. Callbacks run on the network thread without mu_ held.
class MqttClient::Impl {
 public:
  Impl(MqttOptions options, MqttCallbacks callbacks)
      : options_(std::move(options)),
        callbacks_(std::move(callbacks)),
        rng_(std::random_device{}()) {}

  ~Impl() {
    Stop();
    if (mosq_ != nullptr) mosquitto_destroy(mosq_);
    mosquitto_property_free_all(&connect_properties_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  core::Status Start();
  void Stop();
  core::Status Subscribe(std::string_view filter, int qos);
  core::Status Unsubscribe(std::string_view filter);
  core::Result<int> Publish(std::string_view topic, std::string_view payload, int qos, bool retain,
                            const MqttProperties& properties);
  core::Status WaitUntilConnected(std::chrono::milliseconds timeout);
  core::Status WaitUntilSubscribed(std::chrono::milliseconds timeout);
  core::Status Flush(std::chrono::milliseconds timeout);
  bool connected() const {
    std::lock_guard lock(mu_);
    return connected_;
  }
  MqttCounters counters() const;

 private:
  enum class Phase { kIdle, kRunning, kStopping, kStopped };

  struct Subscription {
    int qos = 0;
    int mid = 0;             // of the last SUBSCRIBE sent for it (0: none in this connection)
    bool confirmed = false;  // SUBACK granted it in the current session
    bool refused = false;    // SUBACK refused it
  };

  struct Deferred {
    int id = 0;
    std::string topic, payload;
    bool retain = false;
    MqttProperties properties;
  };

  struct Counters {
    std::atomic<std::uint64_t> connects{0}, disconnects{0}, connect_failures{0}, messages_in{0},
        messages_out{0}, publish_acks{0}, publish_errors{0}, subscribe_errors{0},
        callback_errors{0};
  };

  // Network thread.
  void Run();
  void Pump();
  void EndAttempt(core::Status sync_failure);
  std::chrono::milliseconds NextDelay();
  void SleepUnlessStopped(std::chrono::milliseconds delay);
  void Emit(const MqttConnectionEvent& event);
  void ReportAck(int id, int reason_code);  // on_publish_ack, if set
  void DrainWake() const;

  // Undoes a Start that failed half-way, so that the client can be started again.
  void DiscardClientLocked() {
    mosquitto_destroy(mosq_);
    mosq_ = nullptr;
    mosquitto_property_free_all(&connect_properties_);
  }

  // Any thread.
  void Wake() const;
  void SendSubscribeLocked(const std::string& filter, Subscription* sub);
  // mosquitto_publish_v5, its refusals mapped to our error codes. A QoS 1 message libmosquitto
  // accepted without a connection (MOSQ_ERR_NO_CONN) is queued there and counts as accepted.
  core::Status HandOverLocked(const std::string& topic, std::string_view payload, int qos,
                              bool retain, const mosquitto_property* properties, int* mid);
  std::size_t QueuedLocked() const { return unacked_.size() + deferred_.size(); }
  void SendUnsubscribeLocked(const std::string& filter);

  // libmosquitto callbacks (network thread).
  static void OnConnect(mosquitto*, void* self, int rc, int flags, const mosquitto_property*);
  static void OnDisconnect(mosquitto*, void* self, int rc, const mosquitto_property*);
  static void OnPublish(mosquitto*, void* self, int mid, int reason, const mosquitto_property*);
  static void OnMessage(mosquitto*, void* self, const mosquitto_message* msg,
                        const mosquitto_property* props);
  static void OnSubscribe(mosquitto*, void* self, int mid, int count, const int* granted,
                          const mosquitto_property*);
  static void OnUnsubscribe(mosquitto*, void* self, int mid, const mosquitto_property*);

  const MqttOptions options_;
  const MqttCallbacks callbacks_;
  mosquitto* mosq_ = nullptr;                         // set by Start, destroyed with the Impl
  mosquitto_property* connect_properties_ = nullptr;  // CONNECT properties (MQTT 5)
  int wake_fd_ = -1;                                  // eventfd: wakes the network thread's poll
  std::thread thread_;                                // joined under join_mu_
  std::thread::id network_thread_id_;                 // set by Start under mu_, then constant
  std::mutex join_mu_;
  std::atomic<bool> stop_{false};
  Counters counters_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Phase phase_ = Phase::kIdle;                             // GUARDED_BY(mu_)
  bool connected_ = false;                                 // GUARDED_BY(mu_)
  std::map<std::string, Subscription, std::less<>> subs_;  // GUARDED_BY(mu_)
  std::unordered_map<int, std::string> subscribe_mids_;    // GUARDED_BY(mu_)
  std::set<std::string, std::less<>> forgotten_;           // GUARDED_BY(mu_): to UNSUBSCRIBE
  std::unordered_map<int, std::string> unsubscribe_mids_;  // GUARDED_BY(mu_)
  // QoS 1 messages not yet acknowledged: handed to libmosquitto (its packet id -> our id), or
  // accepted while not connected and kept here until the next CONNACK.
  std::unordered_map<int, int> unacked_;  // GUARDED_BY(mu_)
  std::deque<Deferred> deferred_;         // GUARDED_BY(mu_)
  int last_id_ = 0;                       // GUARDED_BY(mu_): the id Publish returned last

  // Network thread only.
  Clock::time_point attempt_start_;
  Clock::time_point connected_since_;
  bool attempt_connack_ = false;  // this attempt got an accepted CONNACK
  bool attempt_timed_out_ = false;
  core::Status attempt_refused_;  // the CONNACK's refusal, if any
  int disconnect_rc_ = MOSQ_ERR_SUCCESS;
  int disconnect_errno_ = 0;
  int failures_ = 0;  // consecutive failed attempts or short connections
  std::minstd_rand rng_;
};

core::Status MqttClient::Impl::Start() {
  if (auto st = CheckOptions(options_); !st.ok()) return st;
  std::lock_guard lock(mu_);
  if (phase_ != Phase::kIdle) {
    return Error("MQTT_ALREADY_STARTED", "this client was started before; make a new MqttClient");
  }
  InitLibraryOnce();
  const bool v5 = options_.protocol == MqttProtocol::kV5;
  mosq_ = mosquitto_new(options_.client_id.empty() ? nullptr : options_.client_id.c_str(),
                        !options_.persistent_session, this);
  if (mosq_ == nullptr) {
    return Error("MQTT_BAD_OPTIONS", fmt::format("libmosquitto could not create the client: {}",
                                                 std::generic_category().message(errno)));
  }
  int rc = mosquitto_threaded_set(mosq_, true);
  if (rc == MOSQ_ERR_SUCCESS) {
    rc = mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION,
                              v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
  }
  if (rc == MOSQ_ERR_SUCCESS) {
    rc = mosquitto_int_option(mosq_, MOSQ_OPT_SEND_MAXIMUM, options_.max_inflight);
  }
  if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_int_option(mosq_, MOSQ_OPT_TCP_NODELAY, 1);
  if (rc == MOSQ_ERR_SUCCESS && options_.username) {
    rc = mosquitto_username_pw_set(mosq_, options_.username->c_str(),
                                   options_.password ? options_.password->c_str() : nullptr);
  }
  if (rc == MOSQ_ERR_SUCCESS && v5 && options_.persistent_session) {
    rc = mosquitto_property_add_int32(&connect_properties_, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                      options_.session_expiry_seconds);
  }
  if (rc != MOSQ_ERR_SUCCESS) {
    DiscardClientLocked();
    return Error("MQTT_BAD_OPTIONS",
                 fmt::format("libmosquitto refused an option: {}", mosquitto_strerror(rc)));
  }
  mosquitto_connect_v5_callback_set(mosq_, &Impl::OnConnect);
  mosquitto_disconnect_v5_callback_set(mosq_, &Impl::OnDisconnect);
  mosquitto_publish_v5_callback_set(mosq_, &Impl::OnPublish);
  mosquitto_message_v5_callback_set(mosq_, &Impl::OnMessage);
  mosquitto_subscribe_v5_callback_set(mosq_, &Impl::OnSubscribe);
  mosquitto_unsubscribe_v5_callback_set(mosq_, &Impl::OnUnsubscribe);

  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const int saved_errno = errno;
    DiscardClientLocked();
    return Error("MQTT_BAD_OPTIONS",
                 fmt::format("eventfd: {}", std::generic_category().message(saved_errno)));
  }
  phase_ = Phase::kRunning;
  thread_ = std::thread([this] { Run(); });
  network_thread_id_ = thread_.get_id();
  return {};
}

void MqttClient::Impl::Stop() {
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kIdle) phase_ = Phase::kStopped;
    if (phase_ == Phase::kStopped) return;
    // kStopping: a Stop from a callback only asked; this one joins.
    phase_ = Phase::kStopping;
  }
  cv_.notify_all();
  stop_.store(true);
  Wake();
  if (std::this_thread::get_id() == network_thread_id_) return;  // from a callback: cannot join
  {
    std::lock_guard lock(join_mu_);
    if (thread_.joinable()) thread_.join();
  }
  {
    std::lock_guard lock(mu_);
    phase_ = Phase::kStopped;
    connected_ = false;
  }
  cv_.notify_all();
}

// ---- Network thread ---------------------------------------------------------------------------

void MqttClient::Impl::Run() {
  pthread_setname_np(pthread_self(), "doppel-mqtt");
  bool first = true;
  while (!stop_.load()) {
    attempt_start_ = Clock::now();
    attempt_connack_ = false;
    attempt_timed_out_ = false;
    attempt_refused_ = {};
    disconnect_rc_ = MOSQ_ERR_SUCCESS;
    disconnect_errno_ = 0;
    int rc = MOSQ_ERR_SUCCESS;
    if (first) {
      // Blocking TCP connect; stores host, port, keepalive and the CONNECT properties that every
      // mosquitto_reconnect_async below reuses.
      first = false;
      rc = mosquitto_connect_bind_v5(mosq_, options_.host.c_str(), options_.port,
                                     options_.keepalive_seconds, nullptr, connect_properties_);
    } else {
      rc = mosquitto_reconnect_async(mosq_);
    }
    const int saved_errno = errno;
    if (rc == MOSQ_ERR_SUCCESS) {
      // libmosquitto's sockets are not close-on-exec: keep them out of child processes, where
      // a copy would hold the connection open after we close it.
      const int fd = mosquitto_socket(mosq_);
      if (fd >= 0) ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
      Pump();
      EndAttempt({});
    } else {
      EndAttempt(
          Error("MQTT_CONNECT_FAILED", fmt::format("{}:{}: {}", options_.host, options_.port,
                                                   DescribeMosquittoError(rc, saved_errno))));
    }
    if (stop_.load()) break;
    SleepUnlessStopped(NextDelay());
  }
}

// Runs one connection until its socket is closed (by the peer, an error, a timeout or Stop).
void MqttClient::Impl::Pump() {
  bool disconnecting = false;
  bool dropped = false;
  Clock::time_point stop_deadline = Clock::time_point::max();
  while (true) {
    const int fd = mosquitto_socket(mosq_);
    if (fd < 0) return;
    const auto now = Clock::now();
    if (stop_.load() && !disconnecting) {
      disconnecting = true;
      stop_deadline = now + kDisconnectGrace;
      if (attempt_connack_) {
        // Queues DISCONNECT (normal disconnection: the broker keeps the session); the socket is
        // closed by libmosquitto once it is written.
        mosquitto_disconnect_v5(mosq_, MQTT_RC_NORMAL_DISCONNECTION, nullptr);
      } else {
        ::shutdown(fd, SHUT_RDWR);  // abandon the attempt
      }
    }
    const auto connect_deadline = attempt_start_ + options_.connect_timeout;
    if (!attempt_connack_ && !attempt_timed_out_ && now >= connect_deadline) {
      // shutdown() also aborts a connect() still waiting for SYN-ACK; the next read fails and
      // libmosquitto closes the socket and reports the disconnect.
      attempt_timed_out_ = true;
      ::shutdown(fd, SHUT_RDWR);
    }
    if (!dropped && now >= stop_deadline) {
      dropped = true;
      ::shutdown(fd, SHUT_RDWR);
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(kPollSlice);
    if (!attempt_connack_ && !attempt_timed_out_) {
      wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(connect_deadline - now));
    }
    if (disconnecting && !dropped) {
      wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(stop_deadline - now));
    }
    wait = std::max(wait, std::chrono::milliseconds(0));

    pollfd fds[2] = {};
    fds[0].fd = fd;
    fds[0].events = static_cast<short>(POLLIN | (mosquitto_want_write(mosq_) ? POLLOUT : 0));
    fds[1].fd = wake_fd_;
    fds[1].events = POLLIN;
    const int n = ::poll(fds, 2, static_cast<int>(wait.count()));
    if (n < 0) continue;  // EINTR
    if ((fds[1].revents & POLLIN) != 0) DrainWake();
    // Each loop call closes the socket and calls OnDisconnect itself when it fails.
    if ((fds[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) mosquitto_loop_read(mosq_, 1);
    if (mosquitto_socket(mosq_) >= 0 &&
        ((fds[0].revents & POLLOUT) != 0 || mosquitto_want_write(mosq_))) {
      mosquitto_loop_write(mosq_, 1);
    }
    if (mosquitto_socket(mosq_) >= 0) mosquitto_loop_misc(mosq_);
  }
}

// Reports how the attempt ended and updates the backoff. `sync_failure`: the connect call itself
// failed (no socket, no libmosquitto callback).
void MqttClient::Impl::EndAttempt(core::Status sync_failure) {
  MqttConnectionEvent event;
  const bool stopping = stop_.load();
  if (attempt_connack_) {
    counters_.disconnects.fetch_add(1);
    if (Clock::now() - connected_since_ >= kStableConnection) {
      failures_ = 0;
    } else {
      ++failures_;
    }
    if (!stopping) {
      event.error = Error("MQTT_CONNECTION_LOST",
                          fmt::format("connection to {}:{} lost: {}", options_.host, options_.port,
                                      DescribeMosquittoError(disconnect_rc_, disconnect_errno_)));
    }
  } else {
    if (stopping) return;  // Stop abandoned the attempt: not a failure
    counters_.connect_failures.fetch_add(1);
    ++failures_;
    if (!sync_failure.ok()) {
      event.error = std::move(sync_failure);
    } else if (!attempt_refused_.ok()) {
      event.error = attempt_refused_;
    } else if (attempt_timed_out_) {
      event.error = Error("MQTT_CONNECT_TIMEOUT",
                          fmt::format("no CONNACK from {}:{} within {} ms", options_.host,
                                      options_.port, options_.connect_timeout.count()));
    } else {
      event.error = Error("MQTT_CONNECT_FAILED",
                          fmt::format("{}:{}: {}", options_.host, options_.port,
                                      DescribeMosquittoError(disconnect_rc_, disconnect_errno_)));
    }
  }
  {
    std::lock_guard lock(mu_);
    connected_ = false;  // OnDisconnect did this already, unless the connect call itself failed
  }
  cv_.notify_all();
  Emit(event);
}

std::chrono::milliseconds MqttClient::Impl::NextDelay() {
  const int doublings = std::clamp(failures_ - 1, 0, 30);
  const auto max = options_.reconnect_max.count();
  auto delay = options_.reconnect_min.count();
  for (int i = 0; i < doublings && delay < max; ++i) delay *= 2;
  delay = std::min<decltype(delay)>(delay, max);
  // "Equal jitter": half fixed, half random.
  std::uniform_int_distribution<decltype(delay)> jitter(0, delay / 2);
  return std::chrono::milliseconds(delay - delay / 2 + jitter(rng_));
}

void MqttClient::Impl::SleepUnlessStopped(std::chrono::milliseconds delay) {
  const auto deadline = Clock::now() + delay;
  while (!stop_.load()) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return;
    pollfd wake{wake_fd_, POLLIN, 0};
    if (::poll(&wake, 1, static_cast<int>(left.count())) > 0) DrainWake();
  }
}

void MqttClient::Impl::Emit(const MqttConnectionEvent& event) {
  if (!callbacks_.on_connection) return;
  try {
    callbacks_.on_connection(event);
  } catch (...) {
    counters_.callback_errors.fetch_add(1);
  }
}

void MqttClient::Impl::ReportAck(int id, int reason_code) {
  if (!callbacks_.on_publish_ack) return;
  try {
    callbacks_.on_publish_ack(id, reason_code);
  } catch (...) {
    counters_.callback_errors.fetch_add(1);
  }
}

void MqttClient::Impl::Wake() const {
  const std::uint64_t one = 1;
  // Fails only when the counter is saturated, and then a wake-up is pending anyway.
  [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
}

void MqttClient::Impl::DrainWake() const {
  std::uint64_t value = 0;
  [[maybe_unused]] const auto n = ::read(wake_fd_, &value, sizeof value);
}

// ---- libmosquitto callbacks -------------------------------------------------------------------

void MqttClient::Impl::OnConnect(mosquitto*, void* self_ptr, int rc, int flags,
                                 const mosquitto_property*) {
  auto* self = static_cast<Impl*>(self_ptr);
  if (rc != 0) {
    // libmosquitto closes the connection after this callback; EndAttempt reports it.
    const bool v5 = self->options_.protocol == MqttProtocol::kV5;
    self->attempt_refused_ =
        Error("MQTT_CONNECT_REFUSED",
              fmt::format("{}:{} refused the connection: {} ({})", self->options_.host,
                          self->options_.port,
                          v5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc), rc));
    return;
  }
  self->attempt_connack_ = true;
  self->connected_since_ = Clock::now();
  const bool session_present = (flags & 1) != 0;
  std::vector<int> refused;  // ids of deferred messages libmosquitto would not take
  {
    std::lock_guard lock(self->mu_);
    self->connected_ = true;
    self->counters_.connects.fetch_add(1);
    // Acknowledgements for packets of the previous connection will never come.
    self->subscribe_mids_.clear();
    self->unsubscribe_mids_.clear();
    if (!session_present) {
      // A new session: the broker knows none of our subscriptions.
      for (auto& [filter, sub] : self->subs_) sub.confirmed = sub.refused = false;
      self->forgotten_.clear();
    }
    for (auto& [filter, sub] : self->subs_) {
      sub.mid = 0;
      if (!sub.confirmed) self->SendSubscribeLocked(filter, &sub);
    }
    for (const auto& filter : self->forgotten_) self->SendUnsubscribeLocked(filter);
    // Messages published while not connected, in the order they were accepted and ahead of any
    // Publish that sees connected_.
    for (; !self->deferred_.empty(); self->deferred_.pop_front()) {
      const Deferred& d = self->deferred_.front();
      PropertyList list;
      int mid = 0;
      core::Status st = d.properties.empty() ? core::Status{} : BuildProperties(d.properties, &list);
      if (st.ok()) st = self->HandOverLocked(d.topic, d.payload, 1, d.retain, list.get(), &mid);
      if (st.ok()) {
        self->unacked_.emplace(mid, d.id);
      } else {
        refused.push_back(d.id);
      }
    }
  }
  // A refused message (e.g. over the broker's maximum packet size) is reported like a PUBACK
  // with an error reason code.
  for (const int id : refused) {
    self->counters_.publish_errors.fetch_add(1);
    self->ReportAck(id, MQTT_RC_UNSPECIFIED);
  }
  self->cv_.notify_all();
  self->Emit(MqttConnectionEvent{true, session_present, {}});
}

void MqttClient::Impl::OnDisconnect(mosquitto*, void* self_ptr, int rc, const mosquitto_property*) {
  auto* self = static_cast<Impl*>(self_ptr);
  self->disconnect_rc_ = rc;
  self->disconnect_errno_ = errno;
  {
    std::lock_guard lock(self->mu_);
    self->connected_ = false;
  }
  self->cv_.notify_all();
}

void MqttClient::Impl::OnPublish(mosquitto*, void* self_ptr, int mid, int reason,
                                 const mosquitto_property*) {
  auto* self = static_cast<Impl*>(self_ptr);
  int id = 0;
  {
    // QoS 0 publishes are reported here too (when written); only QoS 1 ones are tracked. Only
    // this thread removes mids, so the answer holds until the erase below.
    std::lock_guard lock(self->mu_);
    const auto it = self->unacked_.find(mid);
    if (it == self->unacked_.end()) return;
    id = it->second;
  }
  // The callback runs before the mid leaves unacked_, so when Flush returns every
  // on_publish_ack for the flushed messages has returned too.
  self->ReportAck(id, reason);
  {
    std::lock_guard lock(self->mu_);
    self->unacked_.erase(mid);
    if (reason >= 0x80) {
      self->counters_.publish_errors.fetch_add(1);
    } else {
      self->counters_.publish_acks.fetch_add(1);
    }
  }
  self->cv_.notify_all();
}

void MqttClient::Impl::OnMessage(mosquitto*, void* self_ptr, const mosquitto_message* msg,
                                 const mosquitto_property* props) {
  auto* self = static_cast<Impl*>(self_ptr);
  MqttMessage message;
  message.topic = msg->topic != nullptr ? msg->topic : "";
  if (msg->payload != nullptr && msg->payloadlen > 0) {
    message.payload.assign(static_cast<const char*>(msg->payload),
                           static_cast<std::size_t>(msg->payloadlen));
  }
  message.qos = msg->qos;
  message.retain = msg->retain;
  if (props != nullptr) ReadProperties(props, &message.properties);
  self->counters_.messages_in.fetch_add(1);
  if (!self->callbacks_.on_message) return;
  try {
    self->callbacks_.on_message(message);
  } catch (...) {
    self->counters_.callback_errors.fetch_add(1);
  }
}

void MqttClient::Impl::OnSubscribe(mosquitto*, void* self_ptr, int mid, int count,
                                   const int* granted, const mosquitto_property*) {
  auto* self = static_cast<Impl*>(self_ptr);
  {
    std::lock_guard lock(self->mu_);
    const auto it = self->subscribe_mids_.find(mid);
    if (it == self->subscribe_mids_.end()) return;
    const auto sub = self->subs_.find(it->second);
    self->subscribe_mids_.erase(it);
    // One filter per SUBSCRIBE; a later Subscribe of the same filter has its own mid.
    if (sub == self->subs_.end() || sub->second.mid != mid || count < 1) return;
    const bool refused = granted[0] >= 0x80;  // 0x80 (3.1.1) or an MQTT 5 reason >= 0x80
    sub->second.confirmed = !refused;
    sub->second.refused = refused;
    if (refused) self->counters_.subscribe_errors.fetch_add(1);
  }
  self->cv_.notify_all();
}

void MqttClient::Impl::OnUnsubscribe(mosquitto*, void* self_ptr, int mid,
                                     const mosquitto_property*) {
  auto* self = static_cast<Impl*>(self_ptr);
  std::lock_guard lock(self->mu_);
  const auto it = self->unsubscribe_mids_.find(mid);
  if (it == self->unsubscribe_mids_.end()) return;
  self->forgotten_.erase(it->second);
  self->unsubscribe_mids_.erase(it);
}

// ---- Caller side ------------------------------------------------------------------------------

void MqttClient::Impl::SendSubscribeLocked(const std::string& filter, Subscription* sub) {
  const int options =
      options_.protocol == MqttProtocol::kV5 ? static_cast<int>(MQTT_SUB_OPT_SEND_RETAIN_NEW) : 0;
  int mid = 0;
  // MOSQ_ERR_NO_CONN: the connection just dropped; the subscription stays unconfirmed and goes
  // out after the next CONNACK.
  if (mosquitto_subscribe_v5(mosq_, &mid, filter.c_str(), sub->qos, options, nullptr) ==
      MOSQ_ERR_SUCCESS) {
    sub->mid = mid;
    subscribe_mids_[mid] = filter;
    Wake();
  }
}

void MqttClient::Impl::SendUnsubscribeLocked(const std::string& filter) {
  int mid = 0;
  if (mosquitto_unsubscribe_v5(mosq_, &mid, filter.c_str(), nullptr) == MOSQ_ERR_SUCCESS) {
    unsubscribe_mids_[mid] = filter;
    Wake();
  }
}

core::Status MqttClient::Impl::Subscribe(std::string_view filter, int qos) {
  if (auto st = ValidateTopicFilter(filter); !st.ok()) return st;
  if (qos != 0 && qos != 1) {
    return Error("MQTT_BAD_QOS", fmt::format("QoS {} is not supported (0 or 1)", qos));
  }
  std::lock_guard lock(mu_);
  std::string key(filter);
  forgotten_.erase(key);
  Subscription& sub = subs_[key];
  sub = Subscription{qos, 0, false, false};
  if (connected_) SendSubscribeLocked(key, &sub);
  return {};
}

core::Status MqttClient::Impl::Unsubscribe(std::string_view filter) {
  if (auto st = ValidateTopicFilter(filter); !st.ok()) return st;
  std::lock_guard lock(mu_);
  const auto it = subs_.find(filter);
  if (it != subs_.end()) subs_.erase(it);
  // Even a filter this client never subscribed may be in a resumed session.
  const std::string key(filter);
  forgotten_.insert(key);
  if (connected_) SendUnsubscribeLocked(key);
  cv_.notify_all();
  return {};
}

core::Result<int> MqttClient::Impl::Publish(std::string_view topic, std::string_view payload,
                                            int qos, bool retain,
                                            const MqttProperties& properties) {
  if (auto st = ValidateTopicName(topic); !st.ok()) return st;
  if (qos != 0 && qos != 1) {
    return Error("MQTT_BAD_QOS", fmt::format("QoS {} is not supported (0 or 1)", qos));
  }
  if (payload.size() > kMaxPayloadBytes) {
    return Error("MQTT_PAYLOAD_TOO_LARGE",
                 fmt::format("payload of {} bytes is over MQTT's limit of {} bytes", payload.size(),
                             kMaxPayloadBytes));
  }
  PropertyList list;
  if (!properties.empty()) {
    if (options_.protocol != MqttProtocol::kV5) {
      return Error("MQTT_V5_REQUIRED", "publish properties need an MQTT 5 client");
    }
    if (auto st = CheckProperties(properties); !st.ok()) return st;
    if (auto st = BuildProperties(properties, &list); !st.ok()) return st;
  }
  std::lock_guard lock(mu_);
  if (phase_ != Phase::kRunning) {
    return Error("MQTT_NOT_STARTED", "the client is not running (Start not called, or stopped)");
  }
  if (qos == 0 && !connected_) {
    return Error("MQTT_NOT_CONNECTED", "not connected; QoS 0 messages are not queued");
  }
  if (qos == 1 && QueuedLocked() >= options_.max_queued) {
    return Error("MQTT_QUEUE_FULL",
                 fmt::format("{} QoS 1 messages are waiting for their PUBACK (max_queued)",
                             QueuedLocked()));
  }
  const int id = last_id_ = last_id_ == INT_MAX ? 1 : last_id_ + 1;
  if (!connected_) {
    // Kept until the next CONNACK, when the network thread hands it to libmosquitto. Handing it
    // over now can lose it: with libmosquitto 2.0.11, QoS 1 messages published while its connect
    // call ran on the network thread were never sent and never acknowledged (seen in the plant
    // test under load; the call resets the session's messages before the socket exists).
    deferred_.push_back({id, std::string(topic), std::string(payload), retain, properties});
    counters_.messages_out.fetch_add(1);
    return id;
  }
  int mid = 0;
  if (auto st = HandOverLocked(std::string(topic), payload, qos, retain, list.get(), &mid);
      !st.ok()) {
    return st;
  }
  if (qos == 1) unacked_.emplace(mid, id);
  counters_.messages_out.fetch_add(1);
  Wake();
  return id;
}

core::Status MqttClient::Impl::HandOverLocked(const std::string& topic, std::string_view payload,
                                              int qos, bool retain,
                                              const mosquitto_property* properties, int* mid) {
  const int rc = mosquitto_publish_v5(mosq_, mid, topic.c_str(), static_cast<int>(payload.size()),
                                      payload.data(), qos, retain, properties);
  // For QoS 1, libmosquitto 2.0 appends the message to its outgoing queue before it tries to send
  // it, and answers MOSQ_ERR_NO_CONN when there is no connection: the message is queued and goes
  // out (DUP) after the next CONNACK.
  const bool accepted = rc == MOSQ_ERR_SUCCESS || (qos == 1 && rc == MOSQ_ERR_NO_CONN);
  if (!accepted) {
    switch (rc) {
      case MOSQ_ERR_NO_CONN:
        return Error("MQTT_NOT_CONNECTED", "not connected; QoS 0 messages are not queued");
      case MOSQ_ERR_PAYLOAD_SIZE:
      case MOSQ_ERR_OVERSIZE_PACKET:
        return Error("MQTT_PAYLOAD_TOO_LARGE",
                     fmt::format("a message of {} bytes is over the broker's maximum packet size",
                                 payload.size()));
      case MOSQ_ERR_QOS_NOT_SUPPORTED:
        return Error("MQTT_BAD_QOS", fmt::format("the broker does not allow QoS {}", qos));
      case MOSQ_ERR_MALFORMED_UTF8:
        return Error("MQTT_BAD_TOPIC", fmt::format("libmosquitto refused topic name {}: {}",
                                                   Quote(topic), mosquitto_strerror(rc)));
      default:
        return Error("MQTT_PUBLISH_FAILED",
                     fmt::format("publish to {}: {}", Quote(topic), mosquitto_strerror(rc)));
    }
  }
  return {};
}

core::Status MqttClient::Impl::WaitUntilConnected(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const bool done =
      cv_.wait_for(lock, timeout, [&] { return connected_ || phase_ != Phase::kRunning; });
  if (phase_ != Phase::kRunning) return Error("MQTT_NOT_STARTED", "the client is not running");
  if (!done) {
    return Error("MQTT_TIMEOUT", fmt::format("not connected to {}:{} within {} ms", options_.host,
                                             options_.port, timeout.count()));
  }
  return {};
}

core::Status MqttClient::Impl::WaitUntilSubscribed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  std::string refused;
  const auto settled = [&] {
    if (phase_ != Phase::kRunning) return true;
    bool all = connected_;
    for (const auto& [filter, sub] : subs_) {
      if (sub.refused) {
        refused = filter;
        return true;
      }
      all = all && sub.confirmed;
    }
    return all;
  };
  const bool done = cv_.wait_for(lock, timeout, settled);
  if (phase_ != Phase::kRunning) return Error("MQTT_NOT_STARTED", "the client is not running");
  if (!refused.empty()) {
    return Error("MQTT_SUBSCRIBE_REFUSED",
                 fmt::format("the broker refused the subscription {}", Quote(refused)));
  }
  if (!done) {
    return Error("MQTT_TIMEOUT",
                 fmt::format("subscriptions not confirmed within {} ms", timeout.count()));
  }
  return {};
}

core::Status MqttClient::Impl::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return QueuedLocked() == 0; })) {
    return Error("MQTT_TIMEOUT", fmt::format("{} QoS 1 messages still unacknowledged after {} ms",
                                             QueuedLocked(), timeout.count()));
  }
  return {};
}

MqttCounters MqttClient::Impl::counters() const {
  MqttCounters c;
  c.connects = counters_.connects.load();
  c.disconnects = counters_.disconnects.load();
  c.connect_failures = counters_.connect_failures.load();
  c.messages_in = counters_.messages_in.load();
  c.messages_out = counters_.messages_out.load();
  c.publish_acks = counters_.publish_acks.load();
  c.publish_errors = counters_.publish_errors.load();
  c.subscribe_errors = counters_.subscribe_errors.load();
  c.callback_errors = counters_.callback_errors.load();
  std::lock_guard lock(mu_);
  c.queued = QueuedLocked();
  return c;
}

// ---- MqttClient -------------------------------------------------------------------------------

MqttClient::MqttClient(MqttOptions options, MqttCallbacks callbacks)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(callbacks))) {}
MqttClient::~MqttClient() = default;

core::Status MqttClient::Start() { return impl_->Start(); }
void MqttClient::Stop() { impl_->Stop(); }
core::Status MqttClient::Subscribe(std::string_view filter, int qos) {
  return impl_->Subscribe(filter, qos);
}
core::Status MqttClient::Unsubscribe(std::string_view filter) { return impl_->Unsubscribe(filter); }
core::Result<int> MqttClient::Publish(std::string_view topic, std::string_view payload, int qos,
                                      bool retain, const MqttProperties& properties) {
  return impl_->Publish(topic, payload, qos, retain, properties);
}
core::Status MqttClient::WaitUntilConnected(std::chrono::milliseconds timeout) {
  return impl_->WaitUntilConnected(timeout);
}
core::Status MqttClient::WaitUntilSubscribed(std::chrono::milliseconds timeout) {
  return impl_->WaitUntilSubscribed(timeout);
}
core::Status MqttClient::Flush(std::chrono::milliseconds timeout) { return impl_->Flush(timeout); }
bool MqttClient::connected() const { return impl_->connected(); }
MqttCounters MqttClient::counters() const { return impl_->counters(); }

}  // namespace doppel::sync
