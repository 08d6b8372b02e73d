#include "sync/device_link.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>
#include <random>
#include <utility>

#include "core/json.h"
#include "core/time.h"
#include "model/value_validator.h"

namespace doppel::sync {

namespace json = boost::json;
using core::Status;

namespace {

constexpr std::size_t kSupersededKept = 10000;

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    out.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// "/cycleTime", "/motorTemperature/alarmThreshold".
std::string PointerOf(std::string_view path) {
  std::string out;
  for (const auto& t : SplitPath(path)) out = core::PointerAppend(out, t);
  return out;
}

// Numbers compare by value (a device may send 42.0 for 42).
bool SameValue(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) return a.to_number<double>() == b.to_number<double>();
  return a == b;
}

// The value at a one- or two-token pointer inside `v` (objects only); null if absent.
const json::value* At(const json::value& v, std::string_view pointer) {
  const json::value* cur = &v;
  std::size_t pos = 0;
  while (pos < pointer.size()) {
    if (pointer[pos] != '/' || !cur->is_object()) return nullptr;
    std::size_t end = pointer.find('/', pos + 1);
    if (end == std::string_view::npos) end = pointer.size();
    std::string token;
    for (std::size_t i = pos + 1; i < end; ++i) {
      if (pointer[i] == '~' && i + 1 < end) {
        token += pointer[i + 1] == '1' ? '/' : '~';
        ++i;
      } else {
        token += pointer[i];
      }
    }
    cur = cur->get_object().if_contains(token);
    if (cur == nullptr) return nullptr;
    pos = end;
  }
  return cur;
}

std::string StoreKey(const std::string& twin, const std::string& path) {
  return twin + '\x1f' + path;
}

std::optional<std::int64_t> IntMember(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  return std::nullopt;
}

std::string StringMember(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

// The twin document's $metadata entry of the property at `path` (null if absent).
json::object* MetadataEntry(json::object& doc, const std::vector<std::string>& tokens) {
  json::object* level = &doc;
  if (tokens.size() == 2) {
    json::value* comp = doc.if_contains(tokens[0]);
    if (comp == nullptr || !comp->is_object()) return nullptr;
    level = &comp->get_object();
  }
  json::value* meta = level->if_contains("$metadata");
  if (meta == nullptr || !meta->is_object()) return nullptr;
  json::value* entry = meta->get_object().if_contains(tokens.back());
  return entry != nullptr && entry->is_object() ? &entry->get_object() : nullptr;
}

}  // namespace

std::string_view SyncStateName(SyncState s) {
  switch (s) {
    case SyncState::kInSync:
      return "inSync";
    case SyncState::kPending:
      return "pending";
    case SyncState::kFailed:
      return "failed";
    case SyncState::kDiverged:
      return "diverged";
  }
  return "pending";
}

json::object DesiredEntry::ToJson() const {
  json::object o{{"twin", twin},
                 {"path", path},
                 {"value", value},
                 {"version", version},
                 {"correlationId", correlation_id},
                 {"topic", topic},
                 {"state", SyncStateName(state)},
                 {"since", core::FormatRfc3339(since)},
                 {"updated", core::FormatRfc3339(updated)},
                 {"timeoutMs", timeout.count()}};
  if (ack_version) o["ackVersion"] = *ack_version;
  if (ack_code) o["ackCode"] = *ack_code;
  if (!ack_description.empty()) o["ackDescription"] = ack_description;
  if (reported) o["reportedValue"] = *reported;
  return o;
}

std::optional<DesiredEntry> DesiredEntry::FromJson(const json::value& v) {
  if (!v.is_object()) return std::nullopt;
  const json::object& o = v.get_object();
  DesiredEntry e;
  e.twin = StringMember(o, "twin");
  e.path = StringMember(o, "path");
  e.correlation_id = StringMember(o, "correlationId");
  e.topic = StringMember(o, "topic");
  const json::value* value = o.if_contains("value");
  auto version = IntMember(o, "version");
  auto since = core::ParseRfc3339(StringMember(o, "since"));
  auto updated = core::ParseRfc3339(StringMember(o, "updated"));
  std::string state = StringMember(o, "state");
  if (e.twin.empty() || e.path.empty() || value == nullptr || !version || !since || !updated) {
    return std::nullopt;
  }
  e.value = *value;
  e.version = *version;
  e.since = *since;
  e.updated = *updated;
  if (state == "inSync") {
    e.state = SyncState::kInSync;
  } else if (state == "pending") {
    e.state = SyncState::kPending;
  } else if (state == "failed") {
    e.state = SyncState::kFailed;
  } else if (state == "diverged") {
    e.state = SyncState::kDiverged;
  } else {
    return std::nullopt;
  }
  e.ack_version = IntMember(o, "ackVersion");
  if (auto code = IntMember(o, "ackCode")) e.ack_code = static_cast<int>(*code);
  e.ack_description = StringMember(o, "ackDescription");
  if (const json::value* r = o.if_contains("reportedValue")) e.reported = *r;
  if (auto t = IntMember(o, "timeoutMs"); t && *t > 0) e.timeout = std::chrono::milliseconds(*t);
  return e;
}

DeviceLink::DeviceLink(const model::ModelRepository& models, twin::TwinGraph& graph,
                       MqttIngest* mqtt, DesiredPersistence* persistence, DeviceLinkOptions options)
    : models_(models),
      graph_(graph),
      mqtt_(mqtt),
      persistence_(persistence),
      options_(std::move(options)) {
  if (mqtt_ != nullptr && mqtt_->broker_configured()) {
    std::string id = mqtt_->client_id();
    for (char& c : id) {
      if (c == '+' || c == '#' || c == '/') c = '_';
    }
    response_topic_ = fmt::format("doppel/{}/responses", id);
  }
  std::random_device rd;
  id_prefix_ = fmt::format("{:08x}", rd());
}

DeviceLink::~DeviceLink() { Stop(); }

Status DeviceLink::Load() {
  if (persistence_ == nullptr) return {};
  std::vector<std::string> bad;
  std::vector<DesiredEntry> loaded;
  Status s = persistence_->LoadAll([&](std::string_view key, std::string_view doc) {
    auto v = core::ParseJson(doc);
    auto e = v.ok() ? DesiredEntry::FromJson(*v) : std::nullopt;
    if (!e) {
      bad.emplace_back(key);
      return;
    }
    loaded.push_back(std::move(*e));
  });
  if (!s.ok()) return s;
  std::lock_guard lock(state_mu_);
  for (DesiredEntry& e : loaded) {
    Key key{e.twin, e.path};
    if (!e.correlation_id.empty()) by_correlation_[e.correlation_id] = key;
    entries_[key] = std::move(e);
  }
  if (bad.empty()) return {};
  return Status("STORE_CORRUPT", fmt::format("{} stored desired entries are unreadable (first: "
                                             "'{}')",
                                             bad.size(), bad.front()));
}

Status DeviceLink::Start() {
  {
    std::lock_guard lock(q_mu_);
    if (started_) return {};
    started_ = true;
  }
  if (mqtt_ != nullptr && mqtt_->broker_configured()) {
    if (Status s = mqtt_->AddSubscription(response_topic_, 1); !s.ok()) return s;
    MqttIngestHooks hooks;
    hooks.intercept = [this](const MqttMessage& m) -> bool {
      if (m.topic == response_topic_) {
        Post([this, m] { HandleResponse(m); });
        return true;
      }
      for (const MappingPtr& mp : mqtt_->mappings()) {
        const OutboundRoutes* out = mp->outbound();
        if (out != nullptr && out->desired && out->desired->ack_pattern &&
            out->desired->ack_pattern->Match(m.topic)) {
          Post([this, m] { HandleAck(m); });
          return true;
        }
      }
      return false;
    };
    hooks.matched = [this](const MappingPtr& m, std::string_view topic, const std::string& twin) {
      std::vector<std::string_view> caps;
      if (!m->topic().Match(topic, &caps)) return;
      const auto& names = m->topic().capture_names();
      CaptureValues values;
      for (std::size_t i = 0; i < names.size() && i < caps.size(); ++i) {
        values[names[i]] = std::string(caps[i]);
      }
      std::lock_guard lock(routes_mu_);
      captures_[Key{twin, m->id()}] = std::move(values);
    };
    mqtt_->SetHooks(std::move(hooks));
  }
  {
    std::lock_guard lock(wake_->mu);
    wake_->link = this;
  }
  // Without a broker no entry can be made; only loaded ones need the feed (reported values,
  // deleted twins). Then every write of the graph need not pass through this link.
  bool has_entries = false;
  {
    std::lock_guard lock(state_mu_);
    has_entries = !entries_.empty();
  }
  if (has_entries || (mqtt_ != nullptr && mqtt_->broker_configured())) feed_ = SubscribeFeed();
  {
    // Loaded pending entries get a fresh timeout.
    std::lock_guard lock(state_mu_);
    for (const auto& [key, e] : entries_) {
      if (e.state == SyncState::kPending)
        AddTimer(e.timeout, TimerKind::kDesired, e.correlation_id);
    }
  }
  worker_ = std::thread([this] { Run(); });
  return {};
}

std::shared_ptr<twin::Subscription> DeviceLink::SubscribeFeed() {
  return graph_.feed().Subscribe(options_.feed_capacity, [wake = wake_] {
    std::lock_guard wake_lock(wake->mu);
    if (wake->link == nullptr) return;
    std::lock_guard lock(wake->link->q_mu_);
    wake->link->feed_ready_ = true;
    wake->link->q_cv_.notify_one();
  });
}

void DeviceLink::Stop() {
  {
    std::lock_guard lock(q_mu_);
    if (!started_ || stopping_) return;
  }
  if (mqtt_ != nullptr && mqtt_->broker_configured()) mqtt_->SetHooks({});
  {
    // A desired value's graph write calls back into this link: wait for those in flight.
    std::unique_lock lock(q_mu_);
    q_cv_.wait(lock, [this] { return graph_writes_ == 0; });
    stopping_ = true;
  }
  {
    std::lock_guard lock(wake_->mu);
    wake_->link = nullptr;
  }
  q_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (feed_) graph_.feed().Unsubscribe(feed_);
  std::unordered_map<std::string, PendingCommand> waiting;
  {
    std::lock_guard lock(state_mu_);
    waiting.swap(commands_);
  }
  for (auto& [id, p] : waiting) {
    p.done(Status("SHUTTING_DOWN", "the server is stopping; the command's outcome is unknown"));
  }
}

void DeviceLink::Post(std::function<void()> task) {
  {
    std::lock_guard lock(q_mu_);
    if (!stopping_ && started_) {
      tasks_.push_back(std::move(task));
      q_cv_.notify_one();
      return;
    }
  }
  task();  // not running (tests without Start, or shutting down): run here
}

void DeviceLink::AddTimer(std::chrono::milliseconds after, TimerKind kind,
                          std::string correlation_id) {
  std::lock_guard lock(q_mu_);
  timers_.emplace(std::chrono::steady_clock::now() + after, Timer{kind, std::move(correlation_id)});
  q_cv_.notify_one();
}

void DeviceLink::Run() {
  std::unique_lock lock(q_mu_);
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<Timer> due;
    while (!timers_.empty() && timers_.begin()->first <= now) {
      due.push_back(std::move(timers_.begin()->second));
      timers_.erase(timers_.begin());
    }
    std::deque<std::function<void()>> tasks;
    tasks.swap(tasks_);
    const bool feed = std::exchange(feed_ready_, false);
    if (due.empty() && tasks.empty() && !feed) {
      if (stopping_) break;
      if (timers_.empty()) {
        q_cv_.wait(lock);
      } else {
        q_cv_.wait_until(lock, timers_.begin()->first);
      }
      continue;
    }
    lock.unlock();
    for (auto& t : tasks) t();
    if (feed) DrainFeed();
    for (const Timer& t : due) FireTimer(t);
    lock.lock();
  }
}

std::string DeviceLink::NewCorrelationId(char kind) {
  std::lock_guard lock(state_mu_);
  return fmt::format("{}-{}-{}", kind, id_prefix_, ++next_id_);
}

void DeviceLink::Persist(const DesiredEntry& e) {
  if (persistence_ != nullptr &&
      !persistence_->Save(StoreKey(e.twin, e.path), json::serialize(e.ToJson())).ok()) {
    std::lock_guard lock(state_mu_);
    ++stats_.persist_errors;
  }
  if (options_.on_divergence) {
    std::int64_t diverged = 0;
    {
      std::lock_guard lock(state_mu_);
      for (auto it = entries_.lower_bound(Key{e.twin, ""});
           it != entries_.end() && it->first.first == e.twin; ++it) {
        diverged += it->second.state == SyncState::kDiverged ? 1 : 0;
      }
    }
    options_.on_divergence(e.twin, diverged);
  }
}

core::Result<DeviceLink::Route> DeviceLink::FindRoute(const std::string& twin,
                                                      const model::ResolvedInterface& model,
                                                      bool desired,
                                                      const std::string& command) const {
  const char* member = desired ? "desired" : "commands";
  bool any = false;
  std::string missing, missing_mapping, missing_topic;
  const std::vector<MappingPtr> mappings = mqtt_->mappings();
  // Pass 0: mappings that mapped a message of this twin; pass 1: twin templates read backwards.
  for (int pass = 0; pass < 2; ++pass) {
    for (const MappingPtr& m : mappings) {
      const OutboundRoutes* out = m->outbound();
      if (out == nullptr) continue;
      const TopicTemplate* tpl = nullptr;
      std::chrono::milliseconds timeout{0};
      if (desired && out->desired) {
        tpl = &out->desired->topic;
        timeout = out->desired->timeout;
      } else if (!desired && out->commands) {
        tpl = &out->commands->topic;
        timeout = out->commands->timeout;
      }
      if (tpl == nullptr) continue;
      any = true;
      CaptureValues values;
      if (pass == 0) {
        std::lock_guard lock(routes_mu_);
        auto it = captures_.find(Key{twin, m->id()});
        if (it == captures_.end()) continue;
        values = it->second;
      } else {
        if (!out->twin || (!m->model().empty() && !model.IsA(m->model()))) continue;
        auto reversed = out->twin->Match(twin);
        if (!reversed) continue;  // this mapping's twins are named otherwise
        values = std::move(*reversed);
      }
      if (!desired) values["command"] = command;
      auto topic = tpl->Fill(values);
      if (topic.ok()) {
        if (Status s = ValidateTopicName(*topic); !s.ok()) {
          return Status("DEVICE_NO_ROUTE",
                        fmt::format("twin '{}': mapping '{}' gives topic '{}', which cannot be "
                                    "published to: {}",
                                    twin, m->id(), *topic, s.message()));
        }
        return Route{std::move(*topic), timeout};
      }
      if (missing.empty()) {
        missing = topic.status().message();
        missing_mapping = m->id();
        missing_topic = tpl->text();
      }
    }
  }
  if (!any) {
    return Status("DEVICE_NO_ROUTE",
                  fmt::format("twin '{}': no mapping has a '{}' member (PUT /mappings/{{id}})",
                              twin, member));
  }
  if (missing.empty()) {
    return Status("DEVICE_NO_ROUTE",
                  fmt::format("twin '{}': no mapping with a '{}' member maps this twin (no "
                              "message for it arrived, and no twin template matches its id)",
                              twin, member));
  }
  return Status("DEVICE_NO_ROUTE",
                fmt::format("twin '{}': mapping '{}' needs capture '{}' for its {} topic '{}', "
                            "and no message for this twin has arrived through it yet",
                            twin, missing_mapping, missing, member, missing_topic));
}

// ---- desired values ---------------------------------------------------------------------------

void DeviceLink::SetDesired(std::string twin, std::string path, json::value value,
                            DesiredDone done) {
  twin::TwinPtr t = graph_.FindTwin(twin);
  if (!t) return done(twin::TwinNotFound(twin));
  auto model = models_.Resolve(t->model);
  if (!model.ok()) return done(model.status());
  const std::vector<std::string> tokens = SplitPath(path);
  const model::ResolvedInterface* iface = model->get();
  auto unknown = [&](const std::string& why) {
    done(Status("DESIRED_UNKNOWN_ELEMENT",
                fmt::format("twin '{}' ({}) has no {}", twin, t->model, why)));
  };
  if (tokens.size() > 2 || tokens.front().empty() || tokens.back().empty()) {
    return unknown(fmt::format("property at '{}' (a path is 'name' or 'component/name')", path));
  }
  if (tokens.size() == 2) {
    const model::ResolvedContent* rc = iface->Find(tokens[0]);
    if (rc == nullptr || rc->content->kind != model::ContentKind::kComponent ||
        iface->ComponentInterface(tokens[0]) == nullptr) {
      return unknown(fmt::format("component '{}'", tokens[0]));
    }
    iface = iface->ComponentInterface(tokens[0]);
  }
  const model::ResolvedContent* rc = iface->Find(tokens.back());
  if (rc == nullptr) return unknown(fmt::format("property '{}'", path));
  const model::Content& c = *rc->content;
  if (c.kind != model::ContentKind::kProperty || !c.writable) {
    return done(Status(
        "DESIRED_NOT_WRITABLE",
        fmt::format("'{}' of {} is a {}{}: only a writable Property has a desired value", path,
                    iface->id(), model::ContentKindName(c.kind),
                    c.kind == model::ContentKind::kProperty ? " that is not writable" : "")));
  }
  if (c.schema.schema != nullptr) {
    model::ValueErrors errors;
    model::ValidateValue(*c.schema.schema, value, "", &errors);
    if (!errors.empty()) {
      Status s("DESIRED_WRONG_TYPE",
               fmt::format("the desired value of '{}' does not conform to its schema: {}", path,
                           errors.front().message()),
               errors.front().pointer());
      return done(std::move(s).WithDetails(std::move(errors)));
    }
  }
  if (mqtt_ == nullptr || !mqtt_->broker_configured()) {
    return done(Status("DEVICE_OFFLINE",
                       "no MQTT broker is configured (doppel serve --mqtt host:port), so desired "
                       "values cannot reach a device"));
  }
  auto route = FindRoute(twin, **model, true, {});
  if (!route.ok()) return done(route.status());

  const std::string pointer = PointerOf(path);
  std::string meta_path =
      tokens.size() == 2
          ? fmt::format("/{}/$metadata/{}/desiredValue", core::EscapePointerToken(tokens[0]),
                        core::EscapePointerToken(tokens[1]))
          : fmt::format("/$metadata/{}/desiredValue", core::EscapePointerToken(tokens[0]));
  json::array patch{json::object{{"op", "add"}, {"path", meta_path}, {"value", value}}};
  DesiredEntry entry;
  entry.twin = twin;
  entry.path = path;
  entry.value = std::move(value);
  entry.topic = route->topic;
  entry.timeout = route->timeout;
  {
    std::lock_guard lock(q_mu_);
    ++graph_writes_;
  }
  graph_.PatchTwin(twin, std::move(patch), {},
                   [this, entry = std::move(entry), tokens,
                    done = std::move(done)](core::Result<twin::TwinPtr> r) mutable {
                     if (r.ok()) {
                       json::object doc = (*r)->doc;
                       if (json::object* meta = MetadataEntry(doc, tokens)) {
                         entry.version = IntMember(*meta, "desiredVersion").value_or(0);
                       }
                       Post([this, entry = std::move(entry), done = std::move(done)]() mutable {
                         Created(std::move(entry), done);
                       });
                     } else {
                       done(r.status());
                     }
                     std::lock_guard lock(q_mu_);
                     if (--graph_writes_ == 0) q_cv_.notify_all();
                   });
}

void DeviceLink::Created(DesiredEntry entry, const DesiredDone& done) {
  const Key key{entry.twin, entry.path};
  entry.correlation_id = NewCorrelationId('d');
  entry.state = SyncState::kPending;
  entry.since = entry.updated = Clock::now();
  {
    std::lock_guard lock(state_mu_);
    if (auto it = entries_.find(key); it != entries_.end()) {
      const std::string& old = it->second.correlation_id;
      by_correlation_.erase(old);
      if (superseded_.insert(old).second) superseded_order_.push_back(old);
      while (superseded_order_.size() > kSupersededKept) {
        superseded_.erase(superseded_order_.front());
        superseded_order_.pop_front();
      }
    }
    entries_[key] = entry;
    by_correlation_[entry.correlation_id] = key;
  }
  Persist(entry);
  json::object payload{{"correlationId", entry.correlation_id},
                       {"path", PointerOf(entry.path)},
                       {"value", entry.value}};
  auto published = mqtt_->Publish(entry.topic, json::serialize(payload), 1);
  if (!published.ok()) {
    {
      std::lock_guard lock(state_mu_);
      DesiredEntry& e = entries_[key];
      if (e.correlation_id == entry.correlation_id) {
        e.state = SyncState::kFailed;
        e.ack_description = "not sent: " + published.status().ToString();
        e.updated = Clock::now();
        entry = e;
      }
    }
    Persist(entry);
    return done(Status("DEVICE_OFFLINE", fmt::format("the desired value was stored but could not "
                                                     "be published to '{}': {}",
                                                     entry.topic, published.status().ToString())));
  }
  {
    std::lock_guard lock(state_mu_);
    ++stats_.desired_sent;
  }
  AddTimer(entry.timeout, TimerKind::kDesired, entry.correlation_id);
  done(std::move(entry));
}

void DeviceLink::HandleAck(const MqttMessage& m) {
  auto v = core::ParseJson(m.payload);
  const json::object* o = v.ok() && v->is_object() ? &v->get_object() : nullptr;
  const std::string correlation = o != nullptr ? StringMember(*o, "correlationId") : "";
  const std::string status = o != nullptr ? StringMember(*o, "status") : "";
  DesiredEntry copy;
  {
    std::lock_guard lock(state_mu_);
    auto it = by_correlation_.find(correlation);
    if (it == by_correlation_.end() || (status != "applied" && status != "rejected")) {
      ++(superseded_.contains(correlation) ? stats_.acks_superseded : stats_.acks_unknown);
      return;
    }
    DesiredEntry& e = entries_[it->second];
    e.ack_version = e.version;
    e.updated = Clock::now();
    if (status == "applied") {
      e.state = SyncState::kInSync;
      e.ack_code = 200;
      e.ack_description = "applied";
      e.reported.reset();
    } else {
      e.state = SyncState::kFailed;
      e.ack_code = 400;
      std::string error = StringMember(*o, "error");
      e.ack_description = error.empty() ? "rejected" : error;
    }
    ++stats_.acks;
    copy = e;
  }
  Persist(copy);
}

void DeviceLink::Reported(const std::string& twin, const std::string& path, const json::value& v) {
  DesiredEntry copy;
  {
    std::lock_guard lock(state_mu_);
    auto it = entries_.find(Key{twin, path});
    if (it == entries_.end()) return;
    DesiredEntry& e = it->second;
    bool changed = false;
    if (SameValue(v, e.value)) {
      if (e.state != SyncState::kInSync) {
        if (e.state != SyncState::kDiverged) {
          e.ack_code = 200;
          e.ack_version = e.version;
          e.ack_description = "reported";
          ++stats_.reported_settled;
        }
        e.state = SyncState::kInSync;
        e.reported.reset();
        changed = true;
      }
    } else if (e.state == SyncState::kInSync ||
               (e.state == SyncState::kDiverged && !(e.reported && *e.reported == v))) {
      if (e.state == SyncState::kInSync) ++stats_.diverged;
      e.state = SyncState::kDiverged;
      e.reported = v;
      changed = true;
    }
    if (!changed) return;
    e.updated = Clock::now();
    copy = e;
  }
  Persist(copy);
}

void DeviceLink::DrainFeed() {
  std::vector<twin::ChangeEventPtr> events;
  if (!feed_) return;
  if (!feed_->Drain(&events)) {
    // Overflowed: the events before it are still in `events`; resubscribe for the rest.
    graph_.feed().Unsubscribe(feed_);
    feed_ = SubscribeFeed();
    std::lock_guard lock(state_mu_);
    ++stats_.feed_overflows;
  }
  for (const twin::ChangeEventPtr& e : events) {
    // The entries (path, pointer) of this twin.
    std::vector<std::pair<std::string, std::string>> watched;
    {
      std::lock_guard lock(state_mu_);
      for (auto it = entries_.lower_bound(Key{e->twin_id, ""});
           it != entries_.end() && it->first.first == e->twin_id; ++it) {
        watched.emplace_back(it->first.second, PointerOf(it->first.second));
      }
    }
    if (watched.empty()) continue;
    switch (e->kind) {
      case twin::ChangeKind::kTwinDeleted: {
        for (const auto& [path, pointer] : watched) {
          {
            std::lock_guard lock(state_mu_);
            auto it = entries_.find(Key{e->twin_id, path});
            if (it == entries_.end()) continue;
            by_correlation_.erase(it->second.correlation_id);
            entries_.erase(it);
          }
          if (persistence_ != nullptr) (void)persistence_->Delete(StoreKey(e->twin_id, path));
        }
        break;
      }
      case twin::ChangeKind::kTwinCreated:
      case twin::ChangeKind::kTwinReplaced:
        for (const auto& [path, pointer] : watched) {
          if (const json::value* v = At(e->data, pointer)) Reported(e->twin_id, path, *v);
        }
        break;
      case twin::ChangeKind::kTwinPatched: {
        if (!e->patch.is_array()) break;
        for (const json::value& op : e->patch.get_array()) {
          if (!op.is_object()) continue;
          const json::object& o = op.get_object();
          const std::string kind = StringMember(o, "op");
          const json::value* value = o.if_contains("value");
          if ((kind != "add" && kind != "replace") || value == nullptr) continue;
          const std::string target = StringMember(o, "path");
          for (const auto& [path, pointer] : watched) {
            if (target == pointer) {
              Reported(e->twin_id, path, *value);
            } else if (pointer.starts_with(target + "/")) {
              if (const json::value* v = At(*value, pointer.substr(target.size()))) {
                Reported(e->twin_id, path, *v);
              }
            }
          }
        }
        break;
      }
      default:
        break;
    }
  }
}

void DeviceLink::FireTimer(const Timer& t) {
  if (t.kind == TimerKind::kCommand) {
    PendingCommand p;
    {
      std::lock_guard lock(state_mu_);
      auto it = commands_.find(t.correlation_id);
      if (it == commands_.end()) return;  // answered
      p = std::move(it->second);
      commands_.erase(it);
      ++stats_.command_timeouts;
    }
    p.done(Status(
        "COMMAND_TIMEOUT",
        fmt::format("twin '{}': no response to command '{}' within the timeout", p.twin, p.name)));
    return;
  }
  DesiredEntry copy;
  {
    std::lock_guard lock(state_mu_);
    auto it = by_correlation_.find(t.correlation_id);
    if (it == by_correlation_.end()) return;
    DesiredEntry& e = entries_[it->second];
    if (e.state != SyncState::kPending) return;
    e.state = SyncState::kFailed;
    e.ack_code = 408;
    e.ack_version = e.version;
    e.ack_description = fmt::format("timeout: no acknowledgement within {} ms", e.timeout.count());
    e.updated = Clock::now();
    ++stats_.desired_timeouts;
    copy = e;
  }
  Persist(copy);
}

std::vector<DesiredEntry> DeviceLink::Desired(std::string_view twin) const {
  std::vector<DesiredEntry> out;
  std::lock_guard lock(state_mu_);
  for (auto it = entries_.lower_bound(Key{std::string(twin), ""});
       it != entries_.end() && it->first.first == twin; ++it) {
    out.push_back(it->second);
  }
  return out;
}

bool DeviceLink::HasDesired(std::string_view twin) const {
  std::lock_guard lock(state_mu_);
  auto it = entries_.lower_bound(Key{std::string(twin), ""});
  return it != entries_.end() && it->first.first == twin;
}

json::object DeviceLink::Decorate(json::object doc) const {
  const json::value* id = doc.if_contains("$dtId");
  if (id == nullptr || !id->is_string()) return doc;
  const std::string twin(id->get_string());
  std::lock_guard lock(state_mu_);
  for (auto it = entries_.lower_bound(Key{twin, ""});
       it != entries_.end() && it->first.first == twin; ++it) {
    const DesiredEntry& e = it->second;
    json::object* meta = MetadataEntry(doc, SplitPath(e.path));
    if (meta == nullptr || IntMember(*meta, "desiredVersion") != e.version) continue;
    if (e.ack_version) (*meta)["ackVersion"] = *e.ack_version;
    if (e.ack_code) (*meta)["ackCode"] = *e.ack_code;
    if (!e.ack_description.empty()) (*meta)["ackDescription"] = e.ack_description;
    (*meta)["syncState"] = SyncStateName(e.state);
    if (e.state == SyncState::kPending) (*meta)["pendingSince"] = core::FormatRfc3339(e.since);
  }
  return doc;
}

DeviceLinkStats DeviceLink::stats() const {
  std::lock_guard lock(state_mu_);
  return stats_;
}

// ---- commands ---------------------------------------------------------------------------------

void DeviceLink::Invoke(std::string twin, std::string component, std::string name,
                        const json::value& request,
                        std::optional<std::chrono::milliseconds> timeout, CommandDone done) {
  twin::TwinPtr t = graph_.FindTwin(twin);
  if (!t) return done(twin::TwinNotFound(twin));
  auto model = models_.Resolve(t->model);
  if (!model.ok()) return done(model.status());
  const model::ResolvedInterface* iface = model->get();
  if (!component.empty()) {
    const model::ResolvedContent* rc = iface->Find(component);
    if (rc == nullptr || rc->content->kind != model::ContentKind::kComponent ||
        iface->ComponentInterface(component) == nullptr) {
      return done(Status("COMMAND_UNKNOWN", fmt::format("twin '{}' ({}) has no component '{}'",
                                                        twin, t->model, component)));
    }
    iface = iface->ComponentInterface(component);
  }
  const model::ResolvedContent* rc = iface->Find(name);
  if (rc == nullptr || rc->content->kind != model::ContentKind::kCommand) {
    return done(
        Status("COMMAND_UNKNOWN", fmt::format("{} has no Command '{}'", iface->id(), name)));
  }
  model::ValueErrors errors = model::ValidateCommandRequest(*iface, name, request);
  if (!errors.empty()) {
    Status s("COMMAND_BAD_REQUEST",
             fmt::format("the request of command '{}' does not conform: {}", name,
                         errors.front().message()),
             errors.front().pointer());
    return done(std::move(s).WithDetails(std::move(errors)));
  }
  if (mqtt_ == nullptr || !mqtt_->broker_configured()) {
    return done(Status("DEVICE_OFFLINE",
                       "no MQTT broker is configured (doppel serve --mqtt host:port), so commands "
                       "cannot reach a device"));
  }
  auto route = FindRoute(twin, **model, false, component.empty() ? name : component + "*" + name);
  if (!route.ok()) return done(route.status());

  PendingCommand p;
  p.done = std::move(done);
  p.twin = twin;
  p.name = component.empty() ? name : component + "/" + name;
  p.model = *model;
  if (const auto& resp = rc->content->response) {
    p.has_response = true;
    p.response_schema = resp->schema.schema;
    p.response_nullable = resp->nullable;
  }
  const std::string correlation = NewCorrelationId('c');
  {
    std::lock_guard lock(state_mu_);
    commands_[correlation] = std::move(p);
  }
  MqttProperties props;
  props.response_topic = response_topic_;
  props.correlation_data = correlation;
  props.content_type = "application/json";
  const std::string payload = request.is_null() ? std::string() : json::serialize(request);
  auto published = mqtt_->Publish(route->topic, payload, 1, props);
  if (!published.ok()) {
    PendingCommand failed;
    {
      std::lock_guard lock(state_mu_);
      auto it = commands_.find(correlation);
      if (it == commands_.end()) return;
      failed = std::move(it->second);
      commands_.erase(it);
    }
    return failed.done(
        Status("DEVICE_OFFLINE", fmt::format("the command could not be published to '{}': {}",
                                             route->topic, published.status().ToString())));
  }
  {
    std::lock_guard lock(state_mu_);
    ++stats_.commands_sent;
  }
  AddTimer(timeout.value_or(route->timeout), TimerKind::kCommand, correlation);
}

void DeviceLink::HandleResponse(const MqttMessage& m) {
  PendingCommand p;
  {
    std::lock_guard lock(state_mu_);
    auto it = m.properties.correlation_data ? commands_.find(*m.properties.correlation_data)
                                            : commands_.end();
    if (it == commands_.end()) {
      ++stats_.responses_unknown;
      return;
    }
    p = std::move(it->second);
    commands_.erase(it);
    ++stats_.command_responses;
  }
  int status = 200;
  for (const auto& [key, value] : m.properties.user_properties) {
    if (key != "status") continue;
    int parsed = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
    if (ec != std::errc() || end != value.data() + value.size() || parsed < 100 || parsed > 599) {
      return p.done(Status("COMMAND_BAD_RESPONSE",
                           fmt::format("command '{}': the device answered with status '{}', "
                                       "which is not an HTTP status",
                                       p.name, value)));
    }
    status = parsed;
  }
  json::value payload;
  bool payload_json = true;
  if (!m.payload.empty()) {
    auto parsed = core::ParseJson(m.payload);
    if (parsed.ok()) {
      payload = std::move(*parsed);
    } else {
      payload_json = false;
    }
  }
  if (status != 200) {
    CommandResponse r;
    r.status = status;
    r.payload = payload;
    if (payload.is_object() && payload.get_object().contains("error") &&
        payload.get_object().at("error").is_string()) {
      r.error = std::string(payload.get_object().at("error").get_string());
    } else {
      r.error = m.payload.empty() ? fmt::format("status {}", status) : m.payload;
    }
    return p.done(std::move(r));
  }
  if (!payload_json) {
    return p.done(
        Status("COMMAND_BAD_RESPONSE", fmt::format("command '{}': the response is not JSON: {}",
                                                   p.name, m.payload.substr(0, 200))));
  }
  model::ValueErrors errors;
  if (p.has_response) {
    if (payload.is_null()) {
      if (!p.response_nullable) {
        errors.emplace_back("VALUE_TYPE_MISMATCH",
                            fmt::format("command '{}' must answer with a value", p.name));
      }
    } else if (p.response_schema != nullptr) {
      model::ValidateValue(*p.response_schema, payload, "", &errors);
    }
  }
  if (!errors.empty()) {
    Status s("COMMAND_BAD_RESPONSE",
             fmt::format("command '{}': the device's response does not conform to the response "
                         "schema: {}",
                         p.name, errors.front().message()),
             errors.front().pointer());
    return p.done(std::move(s).WithDetails(std::move(errors)));
  }
  CommandResponse r;
  r.status = 200;
  r.payload = std::move(payload);
  p.done(std::move(r));
}

}  // namespace doppel::sync
