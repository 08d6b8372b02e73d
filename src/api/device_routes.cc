// Desired values and commands over HTTP (sync/device_link.h has the protocol and the states).
//
//   PUT  /digitaltwins/{id}/desired/{name}                    body: the desired value (JSON).
//   PUT  /digitaltwins/{id}/desired/{component}/{name}        202 {"path","value","version",
//                                                             "correlationId","state":"pending",
//                                                             "since", ...}
//   GET  /digitaltwins/{id}/desired                           every desired entry with its state
//   POST /digitaltwins/{id}/commands/{name}                   body: the request payload (may be
//   POST /digitaltwins/{id}/components/{c}/commands/{name}    empty for a command without one);
//                                                             ?timeoutMs=; 200 {"status":200,
//                                                             "payload":...}
//
// The sync fields also appear in the twin's $metadata on GET /digitaltwins/{id} (DecoratedTwin).
// Errors: DESIRED_*, COMMAND_*, DEVICE_NO_ROUTE, DEVICE_OFFLINE, BAD_TIMEOUT, TWIN_NOT_FOUND;
// COMMAND_FAILED carries the device's status.
#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>
#include <string>

#include "api/problem.h"
#include "api/routes.h"
#include "core/json.h"
#include "store/store.h"
#include "sync/device_link.h"

namespace doppel::api {

namespace json = boost::json;
using core::Status;

namespace {

constexpr std::string_view kPrefix = "ds/";

class StoreDesiredPersistence : public sync::DesiredPersistence {
 public:
  explicit StoreDesiredPersistence(store::Store& store) : store_(store) {}
  Status LoadAll(const std::function<void(std::string_view, std::string_view)>& fn) override {
    return store_.Scan(kPrefix, [&](std::string_view key, std::string_view value) {
      fn(key.substr(kPrefix.size()), value);
    });
  }
  Status Save(std::string_view key, std::string_view document) override {
    return store_.Put(std::string(kPrefix) + std::string(key), document);
  }
  Status Delete(std::string_view key) override {
    return store_.Delete(std::string(kPrefix) + std::string(key));
  }

 private:
  store::Store& store_;
};

}  // namespace

struct DeviceRoutesState {
  std::unique_ptr<sync::DesiredPersistence> persistence;
  std::unique_ptr<sync::DeviceLink> link;
};

std::optional<json::object> DecoratedTwin(const RouteContext& ctx, const twin::Twin& t) {
  if (!ctx.device || !ctx.device->link) return std::nullopt;
  if (!ctx.device->link->HasDesired(t.id)) return std::nullopt;
  return ctx.device->link->Decorate(t.doc);
}

void RegisterDeviceRoutes(const AddRoute& add, RouteContext& ctx) {
  auto state = std::make_shared<DeviceRoutesState>();
  if (ctx.services.store != nullptr) {
    state->persistence = std::make_unique<StoreDesiredPersistence>(*ctx.services.store);
  }
  // Without services.mqtt the mapping routes keep mappings without a broker: offline anyway.
  sync::MqttIngest* mqtt = ctx.services.mqtt;
  sync::DeviceLinkOptions options;
  if (sync::SyncTracker* tracker = ctx.sync) {  // destroyed after the link (routes.h)
    options.on_divergence = [tracker](const std::string& twin, std::int64_t diverged) {
      tracker->SetDivergence(twin, diverged);
    };
  }
  state->link = std::make_unique<sync::DeviceLink>(*ctx.services.models, *ctx.services.graph, mqtt,
                                                   state->persistence.get(), options);
  (void)state->link->Load();  // unreadable records are skipped
  (void)state->link->Start();
  ctx.device = state;
  RouteContext* c = &ctx;
  sync::DeviceLink* link = state->link.get();

  auto set_desired = [c, link](Request& req, const Respond& respond, std::string path) {
    auto body = JsonBody(req, *c, "a JSON body (the desired value)");
    if (!body.ok()) return respond(Problem(body.status(), req));
    link->SetDesired(req.params[0], std::move(path), std::move(*body),
                     [respond, req](core::Result<sync::DesiredEntry> r) {
                       if (!r.ok()) return respond(Problem(r.status(), req));
                       respond(Reply::Json(202, r->ToJson()));
                     });
  };
  add(
      "PUT", "/digitaltwins/{id}/desired/{name}", Role::kWriter,
      "Set the desired value of a writable property: stored as $metadata.<name>.desiredValue and "
      "published to the device (202, sync state pending until the device acknowledges)",
      "json",
      [set_desired](Request& req, const Respond& respond) {
        set_desired(req, respond, req.params[1]);
      },
      false);
  add(
      "PUT", "/digitaltwins/{id}/desired/{component}/{name}", Role::kWriter,
      "Set the desired value of a writable property of a component", "json",
      [set_desired](Request& req, const Respond& respond) {
        set_desired(req, respond, req.params[1] + "/" + req.params[2]);
      },
      false);
  add(
      "GET", "/digitaltwins/{id}/desired", Role::kReader,
      "Every desired value of the twin with its sync state (inSync, pending, failed, diverged) "
      "and the device's acknowledgement",
      "",
      [c, link](Request& req, const Respond& respond) {
        if (!c->services.graph->FindTwin(req.params[0])) {
          return respond(Problem(twin::TwinNotFound(req.params[0]), req));
        }
        json::array items;
        for (const auto& e : link->Desired(req.params[0])) items.push_back(e.ToJson());
        respond(Reply::Json(200, json::object{{"value", std::move(items)}, {"nextLink", nullptr}}));
      },
      false);

  auto invoke = [c, link](Request& req, const Respond& respond, std::string component,
                          std::string name) {
    std::optional<std::chrono::milliseconds> timeout;
    if (const std::string* t = req.Query("timeoutMs")) {
      std::int64_t ms = 0;
      auto [end, ec] = std::from_chars(t->data(), t->data() + t->size(), ms);
      if (ec != std::errc() || end != t->data() + t->size() || ms < 1 || ms > 86400000) {
        return respond(Problem(
            Status("BAD_TIMEOUT", fmt::format("timeoutMs '{}' is not an integer 1..86400000", *t)),
            req));
      }
      timeout = std::chrono::milliseconds(ms);
    }
    auto body = JsonBody(req, *c, "a JSON body", json::value(nullptr));
    if (!body.ok()) return respond(Problem(body.status(), req));
    link->Invoke(req.params[0], std::move(component), std::move(name), *body, timeout,
                 [respond, req](core::Result<sync::CommandResponse> r) {
                   if (!r.ok()) return respond(Problem(r.status(), req));
                   if (r->status == 200) {
                     return respond(
                         Reply::Json(200, json::object{{"status", 200}, {"payload", r->payload}}));
                   }
                   // The device refused: its status (4xx/5xx) and its error as a problem.
                   const unsigned status = r->status >= 400 && r->status <= 599
                                               ? static_cast<unsigned>(r->status)
                                               : 502;
                   Status s("COMMAND_FAILED",
                            fmt::format("the device answered {}: {}", r->status, r->error));
                   json::value problem = ProblemJson(s, status, req.path);
                   problem.get_object()["deviceStatus"] = r->status;
                   problem.get_object()["devicePayload"] = r->payload;
                   Reply rep = Reply::Json(status, problem);
                   rep.content_type = "application/problem+json";
                   respond(std::move(rep));
                 });
  };
  add(
      "POST", "/digitaltwins/{id}/commands/{name}", Role::kWriter,
      "Invoke a DTDL Command on the device (MQTT 5 request/response; body: the request payload; "
      "?timeoutMs): 200 {status, payload}, or the device's status with COMMAND_FAILED",
      "json",
      [invoke](Request& req, const Respond& respond) { invoke(req, respond, "", req.params[1]); },
      false);
  add(
      "POST", "/digitaltwins/{id}/components/{component}/commands/{name}", Role::kWriter,
      "Invoke a Command of a component on the device", "json",
      [invoke](Request& req, const Respond& respond) {
        invoke(req, respond, req.params[1], req.params[2]);
      },
      false);
}

std::string DeviceMetrics(const RouteContext& ctx) {
  if (!ctx.device || !ctx.device->link) return {};
  const sync::DeviceLinkStats s = ctx.device->link->stats();
  std::string out =
      "# HELP doppel_device_messages_total Desired values, acks and commands exchanged with "
      "devices, by kind.\n"
      "# TYPE doppel_device_messages_total counter\n";
  for (const auto& [kind, n] :
       {std::pair<const char*, std::uint64_t>{"desired_sent", s.desired_sent},
        {"ack", s.acks},
        {"ack_superseded", s.acks_superseded},
        {"ack_unknown", s.acks_unknown},
        {"desired_timeout", s.desired_timeouts},
        {"reported_settled", s.reported_settled},
        {"diverged", s.diverged},
        {"command_sent", s.commands_sent},
        {"command_response", s.command_responses},
        {"command_timeout", s.command_timeouts},
        {"response_unknown", s.responses_unknown}}) {
    out += fmt::format("doppel_device_messages_total{{kind=\"{}\"}} {}\n", kind, n);
  }
  return out;
}

}  // namespace doppel::api
