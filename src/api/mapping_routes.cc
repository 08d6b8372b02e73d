// MQTT mappings over HTTP (sync/mqtt_ingest.h, sync/mapping.h).
//
//   GET    /mappings        every mapping with its stats, and the broker connection
//   PUT    /mappings/{id}   create or replace (body: the mapping document; its `id` may be left
//                           out, else it must equal the path's). 201 new, 200 replaced. Invalid:
//                           400 with every problem and its JSON pointer in `errors`.
//   GET    /mappings/{id}   the document, stats and the newest dead letters
//   DELETE /mappings/{id}   204; the topic filter is unsubscribed unless another mapping needs it
//
// Without a broker (`doppel serve` without --mqtt) mappings are still validated and stored;
// they apply once the server runs with --mqtt. Errors: MAPPING_* (400), MAPPING_ID_MISMATCH
// (400), MAPPING_NOT_FOUND (404), STORE_IO (503).
#include <fmt/format.h>

#include <boost/json.hpp>
#include <string>

#include "api/routes.h"
#include "core/json.h"
#include "core/time.h"
#include "store/store.h"
#include "sync/mqtt_ingest.h"

namespace doppel::api {

namespace json = boost::json;
using core::Status;

namespace {

constexpr std::string_view kPrefix = "mp/";

class StorePersistence : public sync::MappingPersistence {
 public:
  explicit StorePersistence(store::Store& store) : store_(store) {}
  Status LoadAll(const std::function<void(std::string_view, std::string_view)>& fn) override {
    return store_.Scan(kPrefix, [&](std::string_view key, std::string_view value) {
      fn(key.substr(kPrefix.size()), value);
    });
  }
  Status Save(std::string_view id, std::string_view document) override {
    return store_.Put(std::string(kPrefix) + std::string(id), document);
  }
  Status Delete(std::string_view id) override {
    return store_.Delete(std::string(kPrefix) + std::string(id));
  }

 private:
  store::Store& store_;
};

const char* FormatName(sync::PayloadFormat f) {
  switch (f) {
    case sync::PayloadFormat::kJson:
      return "json";
    case sync::PayloadFormat::kNumber:
      return "number";
    case sync::PayloadFormat::kLineProtocol:
      return "line-protocol";
  }
  return "json";
}

json::object StatsJson(const sync::MappingStats& s) {
  json::object rejected;
  std::uint64_t total = 0;
  for (const auto& [code, n] : s.rejected) {
    rejected[code] = n;
    total += n;
  }
  return json::object{
      {"messages", s.messages},
      {"readings", s.readings},
      {"rejectedTotal", total},
      {"rejected", std::move(rejected)},
      {"lastMessage",
       s.last_message ? json::value(core::FormatRfc3339(*s.last_message)) : json::value()}};
}

json::object MappingJson(const sync::MappingInfo& info, bool with_dead_letters) {
  const sync::Mapping& m = *info.mapping;
  json::object o{{"id", m.id()},
                 {"topic", m.topic().pattern()},
                 {"subscription", m.subscription_filter()},
                 {"format", FormatName(m.format())},
                 {"qos", m.qos()},
                 {"document", m.document()},
                 {"stats", StatsJson(info.stats)}};
  if (with_dead_letters) {
    json::array letters;
    for (const auto& d : info.dead_letters) {
      letters.push_back(json::object{{"time", core::FormatRfc3339(d.at)},
                                     {"topic", d.topic},
                                     {"twin", d.twin},
                                     {"element", d.element},
                                     {"value", d.value},
                                     {"code", d.error.code()},
                                     {"message", d.error.message()}});
    }
    o["deadLetters"] = std::move(letters);
  }
  return o;
}

}  // namespace

std::unique_ptr<sync::MappingPersistence> StoreMappingPersistence(store::Store& store) {
  return std::make_unique<StorePersistence>(store);
}

struct MappingRoutesState {
  sync::MqttIngest* mqtt = nullptr;  // services.mqtt, or `owned`
  std::unique_ptr<sync::MappingPersistence> persistence;
  std::unique_ptr<sync::MqttIngest> owned;  // no broker: mappings are only kept
};

void RegisterMappingRoutes(const AddRoute& add, RouteContext& ctx) {
  auto state = std::make_shared<MappingRoutesState>();
  state->mqtt = ctx.services.mqtt;
  if (state->mqtt == nullptr) {
    if (ctx.services.store != nullptr) {
      state->persistence = StoreMappingPersistence(*ctx.services.store);
    }
    state->owned = std::make_unique<sync::MqttIngest>(*ctx.services.models, *ctx.ingest,
                                                      state->persistence.get());
    (void)state->owned->Load();  // a mapping whose model is gone is skipped (serve reports it)
    state->mqtt = state->owned.get();
  }
  ctx.mappings = state;
  RouteContext* c = &ctx;
  sync::MqttIngest* mqtt = state->mqtt;

  add(
      "GET", "/mappings", Role::kReader,
      "MQTT mappings with their stats (messages, readings, rejected by code), and the broker "
      "connection",
      "",
      [mqtt](Request&, const Respond& respond) {
        json::array items;
        for (const auto& info : mqtt->List()) items.push_back(MappingJson(info, false));
        json::object broker{{"configured", mqtt->broker_configured()},
                            {"connected", mqtt->connected()},
                            {"clientId", mqtt->client_id()},
                            {"unmatchedMessages", mqtt->unmatched()}};
        respond(Reply::Json(200, json::object{{"value", std::move(items)},
                                              {"nextLink", nullptr},
                                              {"mqtt", std::move(broker)}}));
      },
      false);

  add(
      "PUT", "/mappings/{id}", Role::kAdmin,
      "Create or replace an MQTT mapping (body: the mapping document, see sync/mapping.h; 201 "
      "created, 200 replaced, 400 with every problem and its pointer)",
      "json",
      [c, mqtt](Request& req, const Respond& respond) {
        auto body = JsonBody(req, *c, "a mapping document");
        if (!body.ok()) return respond(Problem(body.status(), req));
        auto created = mqtt->Put(*body, req.params[0]);
        if (!created.ok()) return respond(Problem(created.status(), req));
        auto info = mqtt->Get(req.params[0]);
        if (!info.ok()) return respond(Problem(info.status(), req));  // removed meanwhile
        respond(Reply::Json(*created ? 201 : 200, MappingJson(*info, false)));
      },
      false);

  add(
      "GET", "/mappings/{id}", Role::kReader,
      "An MQTT mapping: its document, stats and newest dead letters", "",
      [mqtt](Request& req, const Respond& respond) {
        auto info = mqtt->Get(req.params[0]);
        if (!info.ok()) return respond(Problem(info.status(), req));
        respond(Reply::Json(200, MappingJson(*info, true)));
      },
      false);

  add(
      "DELETE", "/mappings/{id}", Role::kAdmin,
      "Delete an MQTT mapping (its topic is unsubscribed unless another mapping needs it)", "",
      [mqtt](Request& req, const Respond& respond) {
        if (Status s = mqtt->Remove(req.params[0]); !s.ok()) return respond(Problem(s, req));
        respond(Reply::Empty(204));
      },
      false);
}

std::string MappingMetrics(const RouteContext& ctx) {
  if (!ctx.mappings || ctx.mappings->mqtt == nullptr) return {};
  const sync::MqttIngest& mqtt = *ctx.mappings->mqtt;
  std::string out;
  out += fmt::format(
      "# HELP doppel_mqtt_connected 1 while connected to the MQTT broker.\n"
      "# TYPE doppel_mqtt_connected gauge\ndoppel_mqtt_connected {}\n",
      mqtt.connected() ? 1 : 0);
  out += fmt::format(
      "# HELP doppel_mqtt_unmatched_total MQTT messages no mapping matched.\n"
      "# TYPE doppel_mqtt_unmatched_total counter\ndoppel_mqtt_unmatched_total {}\n",
      mqtt.unmatched());
  const auto infos = mqtt.List();
  out +=
      "# HELP doppel_mqtt_messages_total MQTT messages a mapping matched, by mapping.\n"
      "# TYPE doppel_mqtt_messages_total counter\n";
  for (const auto& i : infos) {
    out += fmt::format("doppel_mqtt_messages_total{{mapping=\"{}\"}} {}\n", i.mapping->id(),
                       i.stats.messages);
  }
  out +=
      "# HELP doppel_mqtt_readings_total Readings from MQTT accepted by ingest, by mapping.\n"
      "# TYPE doppel_mqtt_readings_total counter\n";
  for (const auto& i : infos) {
    out += fmt::format("doppel_mqtt_readings_total{{mapping=\"{}\"}} {}\n", i.mapping->id(),
                       i.stats.readings);
  }
  out +=
      "# HELP doppel_mqtt_rejected_total MQTT values rejected, by mapping and error code.\n"
      "# TYPE doppel_mqtt_rejected_total counter\n";
  for (const auto& i : infos) {
    for (const auto& [code, n] : i.stats.rejected) {
      out += fmt::format("doppel_mqtt_rejected_total{{mapping=\"{}\",code=\"{}\"}} {}\n",
                         i.mapping->id(), code, n);
    }
  }
  return out;
}

}  // namespace doppel::api
