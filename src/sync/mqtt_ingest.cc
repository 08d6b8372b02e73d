#include "sync/mqtt_ingest.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <condition_variable>
#include <utility>

#include "core/json.h"

namespace doppel::sync {

namespace json = boost::json;
using core::Status;

struct MqttIngest::State {
  std::mutex mu;
  MappingStats stats;
  std::deque<MappingDeadLetter> dead;
};

MqttIngest::MqttIngest(const model::ModelRepository& models, Ingestor& ingestor,
                       MappingPersistence* persistence, MqttIngestOptions options)
    : models_(models),
      ingestor_(ingestor),
      persistence_(persistence),
      options_(std::move(options)) {
  if (options_.broker) {
    MqttCallbacks callbacks;
    callbacks.on_message = [this](const MqttMessage& m) { HandleMessage(m); };
    client_ = std::make_unique<MqttClient>(*options_.broker, std::move(callbacks));
  }
}

MqttIngest::~MqttIngest() { Stop(); }

Status MqttIngest::Start() { return client_ ? client_->Start() : Status(); }

void MqttIngest::Stop() {
  if (client_) client_->Stop();
}

Status MqttIngest::WaitUntilSubscribed(std::chrono::milliseconds timeout) {
  if (!client_) return Status("MQTT_NOT_STARTED", "no MQTT broker is configured");
  return client_->WaitUntilSubscribed(timeout);
}

std::map<std::string, int> MqttIngest::subscriptions() const {
  std::lock_guard lock(write_mu_);
  return subscribed_;
}

bool MqttIngest::connected() const { return client_ && client_->connected(); }

MqttCounters MqttIngest::counters() const { return client_ ? client_->counters() : MqttCounters{}; }

std::uint64_t MqttIngest::unmatched() const {
  std::lock_guard lock(state_mu_);
  return unmatched_;
}

const std::string& MqttIngest::client_id() const {
  static const std::string kNone;
  return options_.broker ? options_.broker->client_id : kNone;
}

std::shared_ptr<MqttIngest::State> MqttIngest::StateOf(const std::string& id) {
  std::lock_guard lock(state_mu_);
  auto& s = states_[id];
  if (!s) s = std::make_shared<State>();
  return s;
}

void MqttIngest::SetHooks(MqttIngestHooks hooks) {
  std::lock_guard lock(hooks_mu_);
  hooks_ = std::move(hooks);
}

core::Result<int> MqttIngest::Publish(std::string_view topic, std::string_view payload, int qos,
                                      const MqttProperties& properties) {
  if (!client_) return Status("MQTT_NOT_STARTED", "no MQTT broker is configured");
  return client_->Publish(topic, payload, qos, false, properties);
}

Status MqttIngest::AddSubscription(std::string filter, int qos) {
  if (Status s = ValidateTopicFilter(filter); !s.ok()) return s;
  std::lock_guard lock(write_mu_);
  extra_subscriptions_[std::move(filter)] = qos;
  SyncSubscriptions();
  return {};
}

void MqttIngest::SyncSubscriptions() {
  std::map<std::string, int> want;
  for (auto& [filter, qos] : set_.Subscriptions()) want[filter] = qos;
  for (const auto& [filter, qos] : extra_subscriptions_) want[filter] = std::max(want[filter], qos);
  for (const MappingPtr& m : set_.List()) {
    const OutboundRoutes* out = m->outbound();
    if (out != nullptr && out->desired && out->desired->ack_topic) {
      want[out->desired->ack_topic->Filter()] = 1;
    }
  }
  for (const auto& [filter, qos] : subscribed_) {
    if (!want.contains(filter) && client_) (void)client_->Unsubscribe(filter);
  }
  for (const auto& [filter, qos] : want) {
    auto it = subscribed_.find(filter);
    if ((it == subscribed_.end() || it->second != qos) && client_) {
      (void)client_->Subscribe(filter, qos);  // checked in Put
    }
  }
  subscribed_ = std::move(want);
}

Status MqttIngest::Load() {
  std::lock_guard lock(write_mu_);
  if (persistence_ == nullptr) return {};
  std::vector<std::pair<std::string, std::string>> stored;
  Status s = persistence_->LoadAll([&](std::string_view id, std::string_view doc) {
    stored.emplace_back(std::string(id), std::string(doc));
  });
  if (!s.ok()) return s;
  std::vector<Status> problems;
  for (const auto& [id, text] : stored) {
    auto m = Mapping::Parse(text, &models_);
    if (!m.ok()) {
      problems.emplace_back(
          m.status().code(),
          fmt::format("stored mapping '{}' no longer validates: {}", id, m.status().message()),
          m.status().pointer());
      continue;
    }
    StateOf(m->id());
    set_.Put(std::move(*m));
  }
  SyncSubscriptions();
  if (problems.empty()) return {};
  Status s_all("MAPPING_INVALID",
               fmt::format("{} stored mapping(s) were not loaded", problems.size()));
  return std::move(s_all).WithDetails(std::move(problems));
}

core::Result<bool> MqttIngest::Put(const json::value& document,
                                   std::optional<std::string_view> expected_id) {
  json::value doc = document;
  if (expected_id && doc.is_object()) {
    json::object& o = doc.get_object();
    if (const json::value* id = o.if_contains("id")) {
      if (id->is_string() && id->get_string() != *expected_id) {
        return Status("MAPPING_ID_MISMATCH",
                      fmt::format("the document's id '{}' differs from '{}' in the path",
                                  std::string_view(id->get_string()), *expected_id),
                      "/id");
      }
    } else {
      o["id"] = *expected_id;
    }
  }
  auto m = Mapping::Parse(doc, &models_);
  if (!m.ok()) return m.status();
  if (Status t = ValidateTopicFilter(m->subscription_filter()); !t.ok()) {
    Status problem("MAPPING_TOPIC", "the topic cannot be subscribed: " + t.message(), "/topic");
    std::vector<Status> details{problem};
    return std::move(problem).WithDetails(std::move(details));
  }
  std::lock_guard lock(write_mu_);
  const std::string id = m->id();
  if (persistence_ != nullptr) {
    if (Status s = persistence_->Save(id, json::serialize(m->document())); !s.ok()) return s;
  }
  StateOf(id);
  MappingPtr old = set_.Put(std::move(*m));
  SyncSubscriptions();
  return old == nullptr;
}

Status MqttIngest::Remove(std::string_view id) {
  std::lock_guard lock(write_mu_);
  if (!set_.Get(id)) {
    return Status("MAPPING_NOT_FOUND", fmt::format("no mapping '{}'", id));
  }
  if (persistence_ != nullptr) {
    if (Status s = persistence_->Delete(id); !s.ok()) return s;
  }
  set_.Remove(id);
  {
    std::lock_guard state_lock(state_mu_);
    auto it = states_.find(id);
    if (it != states_.end()) states_.erase(it);
  }
  SyncSubscriptions();
  return {};
}

std::vector<MappingInfo> MqttIngest::List() const {
  std::vector<MappingInfo> out;
  for (MappingPtr& m : set_.List()) {
    MappingInfo info;
    std::shared_ptr<State> st;
    {
      std::lock_guard lock(state_mu_);
      auto it = states_.find(m->id());
      if (it != states_.end()) st = it->second;
    }
    if (st) {
      std::lock_guard lock(st->mu);
      info.stats = st->stats;
    }
    info.mapping = std::move(m);
    out.push_back(std::move(info));
  }
  return out;
}

core::Result<MappingInfo> MqttIngest::Get(std::string_view id) const {
  MappingInfo info;
  info.mapping = set_.Get(id);
  if (!info.mapping) return Status("MAPPING_NOT_FOUND", fmt::format("no mapping '{}'", id));
  std::shared_ptr<State> st;
  {
    std::lock_guard lock(state_mu_);
    auto it = states_.find(id);
    if (it != states_.end()) st = it->second;
  }
  if (st) {
    std::lock_guard lock(st->mu);
    info.stats = st->stats;
    info.dead_letters.assign(st->dead.begin(), st->dead.end());
  }
  return info;
}

void MqttIngest::HandleMessage(const MqttMessage& message) {
  const Clock::time_point arrival = Clock::now();
  bool intercepted = false;
  bool matched = false;  // a `matched` hook is set
  {
    std::lock_guard lock(hooks_mu_);
    if (hooks_.intercept) intercepted = hooks_.intercept(message);
    matched = static_cast<bool>(hooks_.matched);
  }
  std::vector<MappingPtr> matches = set_.Match(message.topic);
  if (matches.empty()) {
    if (intercepted) return;
    std::lock_guard lock(state_mu_);
    ++unmatched_;
    return;
  }
  const std::size_t capacity = options_.dead_letters_per_mapping;
  auto dead_letter = [&message, capacity](State& st, MappingDeadLetter d) {
    // Called with st.mu held.
    ++st.stats.rejected[d.error.code()];
    if (capacity == 0) return;
    d.topic = message.topic;
    st.dead.push_back(std::move(d));
    while (st.dead.size() > capacity) st.dead.pop_front();
  };

  // Every Submit of this message counts down; on_message returns when all are done.
  std::mutex mu;
  std::condition_variable cv;
  std::size_t pending = 0;

  for (const MappingPtr& mapping : matches) {
    std::shared_ptr<State> st = StateOf(mapping->id());
    // Flood protection, before the payload is parsed: size, then the topic's token bucket.
    Status guard;
    const std::size_t max_bytes = mapping->max_payload_bytes().value_or(options_.max_payload_bytes);
    if (message.payload.size() > max_bytes) {
      guard = Status("MAPPING_PAYLOAD_TOO_LARGE",
                     fmt::format("the message has {} bytes; mapping '{}' takes at most {}",
                                 message.payload.size(), mapping->id(), max_bytes));
    } else {
      const double rate = mapping->max_rate_per_topic().value_or(options_.max_rate_per_topic);
      const double burst = mapping->burst_per_topic().value_or(
          mapping->max_rate_per_topic() ? std::max(1.0, rate) : options_.burst_per_topic);
      std::string key = mapping->id();
      key += '\n';
      key += message.topic;
      if (!limiter_.Allow(key, rate, burst, std::chrono::steady_clock::now())) {
        guard = Status("MAPPING_RATE_LIMITED",
                       fmt::format("topic '{}' sends more than {} messages/s (burst {}) to "
                                   "mapping '{}'; the excess is dropped",
                                   message.topic, rate, burst, mapping->id()));
      }
    }
    if (!guard.ok()) {
      // Named and counted for the twin when the topic alone says which (no payload parsed).
      std::string twin = mapping->TwinOfTopic(message.topic).value_or("");
      if (options_.sync != nullptr) options_.sync->RecordRejected(twin, guard.code());
      std::lock_guard lock(st->mu);
      ++st->stats.messages;
      st->stats.last_message = arrival;
      dead_letter(*st, MappingDeadLetter{arrival,
                                         {},
                                         std::move(twin),
                                         {},
                                         fmt::format("<{} bytes>", message.payload.size()),
                                         std::move(guard)});
      continue;
    }
    auto out = mapping->Apply(message.topic, message.payload, arrival, options_.source);
    if (!out.ok()) continue;  // MAPPING_NO_MATCH: the mapping was replaced meanwhile
    {
      std::lock_guard lock(st->mu);
      ++st->stats.messages;
      st->stats.last_message = arrival;
      for (MappingRejection& r : out->rejected) {
        if (options_.sync != nullptr) options_.sync->RecordRejected(r.twin, r.error.code());
        dead_letter(*st, MappingDeadLetter{arrival,
                                           {},
                                           std::move(r.twin),
                                           std::move(r.element),
                                           std::move(r.value),
                                           std::move(r.error)});
      }
    }
    if (out->readings.empty()) continue;
    if (matched && mapping->outbound() != nullptr) {
      std::lock_guard lock(hooks_mu_);
      const std::string* last = nullptr;
      for (const Reading& r : out->readings) {
        if (last != nullptr && *last == r.twin) continue;
        last = &r.twin;
        if (hooks_.matched) hooks_.matched(mapping, message.topic, r.twin);
      }
    }
    // What a rejection needs to name the reading (Submit takes the readings).
    struct Named {
      std::string twin, element, value;
    };
    std::vector<Named> names;
    names.reserve(out->readings.size());
    for (const Reading& r : out->readings) {
      names.push_back({r.twin, r.element, core::Abbreviate(r.value)});
    }
    {
      std::lock_guard lock(mu);
      ++pending;
    }
    ingestor_.Submit(std::move(out->readings), [&, st, names = std::move(names),
                                                interval = mapping->expected_interval()](
                                                   const IngestOutcome& o) {
      if (interval && options_.sync != nullptr) {
        // The mapping's expected interval for the twins it fed (tracked ones only).
        const std::string* last = nullptr;
        for (const Named& n : names) {
          if (last != nullptr && *last == n.twin) continue;
          last = &n.twin;
          options_.sync->SetExpectedInterval(n.twin, *interval);
        }
      }
      {
        std::lock_guard lock(st->mu);
        st->stats.readings += o.accepted;
        for (const Rejection& rj : o.rejected) {
          const Named& n = names[rj.index];
          dead_letter(*st,
                      MappingDeadLetter{Clock::now(), {}, n.twin, n.element, n.value, rj.error});
        }
      }
      std::lock_guard lock(mu);
      if (--pending == 0) cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return pending == 0; });
}

}  // namespace doppel::sync
