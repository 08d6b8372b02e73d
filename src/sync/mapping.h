// doppel::sync — mappings: how an MQTT (or HTTP) message becomes readings of twin elements.
//
// What it does
//   A mapping is a JSON document saying "messages on topics like this carry these values of
//   that twin". Mapping::Parse validates one (reporting every problem at once) and compiles it;
//   Mapping::Apply turns one message into sync::Readings (ingest.h) for the Ingestor, plus
//   per-field rejections. MappingSet holds the mappings of a server and finds those that match a
//   topic. Applying is cheap: topic, templates, JSON pointers and unit conversions are compiled at
//   save time; a message costs one topic match, one payload parse and a lookup per field.
//
// How to use it
//   auto m = Mapping::Parse(document, &models);      // models may be null if no `model` is given
//   if (!m.ok()) return m.status();                  // MAPPING_*; every problem in details()
//   set.Put(std::move(*m));
//   client.Subscribe(m->subscription_filter(), m->qos());
//   for (auto& mapping : set.Match(topic)) {         // on each MQTT message
//     auto out = mapping->Apply(topic, payload, Clock::now());
//     ingestor.Submit(std::move(out->readings), ...);  // out->rejected: dead letters
//   }
//
// The document
//   {
//     "id": "plant-telemetry",                         [A-Za-z0-9_.-]{1,64}
//     "description": "...",                            optional, free text
//     "topic": "plant/{line}/{machine}/telemetry",     topic pattern (below)
//     "twin": "m-{machine}",                           twin id template (below)
//     "format": "json",                                json (default), number, line-protocol
//     "model": "dtmi:...;1",                           optional: check elements and units now
//     "fields": [ {                                    one entry per value taken from a message
//        "pointer": "/temp",                           json: RFC 6901 pointer into the payload
//        "field": "temp",                              line-protocol: the field key
//        "element": "motorTemperature/temperature",   element template ("name" or "comp/name");
//                                                      line-protocol: defaults to the field key
//        "unit": "degreeFahrenheit",                   optional: the unit the device sends
//        "targetUnit": "degreeCelsius",                optional: the element's unit (only when
//                                                      the model cannot say it)
//        "min": -50, "max": 400,                       optional: accepted range, in the target
//                                                      unit (checked after conversion)
//        "optional": true                              json/line-protocol: absent value is skipped
//     } ],
//     "timestamp": {"pointer": "/ts", "format": "rfc3339", "optional": false},   json only
//     "measurement": "machine",                        line-protocol only: take only these lines
//     "precision": "ms",                               line-protocol only: n|ns|u|us|ms|s|m|h
//     "qos": 1,                                        subscription QoS, 0 or 1 (default 1)
//     "desired": {"topic": "...", "ackTopic": "...", "timeoutMs": 30000},   optional: where
//     "commands": {"topic": ".../{command}", "timeoutMs": 10000}            desired values and
//                                                      commands go (device_route.h, device_link.h)
//     "expectedIntervalMs": 1000,                      optional: how often the twins of this
//                                                      mapping report (freshness, completeness;
//                                                      sync_quality.h). Default: inferred
//     "maxRatePerTopic": 100, "burstPerTopic": 200,    optional: flood protection, messages per
//                                                      second per topic and burst (mqtt_ingest.h)
//     "maxPayloadBytes": 65536                         optional: larger messages are rejected
//   }
//   Members not listed here are errors (a typo must not silently do nothing).
//
// Topic patterns (MQTT 3.1.1 §4.7, with named captures)
//   Levels are split at '/'. A level is a literal, `+` (any one level), `{name}` (any one level,
//   captured as `name`; [A-Za-z_][A-Za-z0-9_]*), or `#` (any number of levels, including none:
//   `a/#` matches `a`; last level only). A level may not mix `{..}`, `+` or `#` with other text.
//   Empty levels are allowed and significant (`a//b` has three levels, `+` matches an empty
//   level), as in MQTT. The subscription filter is the pattern with each `{name}` as `+`.
//   A topic starting with '$' (e.g. `$SYS/...`) is not matched by a pattern whose first level is
//   a wildcard (`+`, `{name}`, `#`). Topics containing `+` or `#`, and the empty topic, match
//   nothing (they are not topic names).
//
// Templates (`twin`, `element`)
//   Literal text with placeholders: `{name}` is the value of capture `name` of the topic;
//   `{tag:NAME}` (line-protocol only) is the value of the line's tag NAME. '{' and '}' are
//   otherwise not allowed. A mapping with a template `element` cannot be checked against the
//   model at save time (the Ingestor still checks every reading).
//
// Formats
//   json           The payload is one JSON document (core::ParseJson limits). Each field's
//                  pointer selects a value; any JSON value is taken as it is (the Ingestor checks
//                  it against the model). A missing value or JSON null is a rejection of that
//                  field (MAPPING_PAYLOAD), or, with "optional": true, skipped and counted. A
//                  payload that is not JSON, or is a scalar while a field has a non-empty pointer,
//                  rejects the whole message (one rejection, `field` empty).
//   number         The payload is one number in text ("21.5", "-3", "1e3", surrounding white
//                  space ignored; no NaN, Inf, hex or '+'), or `true`/`false`. Exactly one field,
//                  without pointer. Integers that fit int64 stay integers.
//   line-protocol  InfluxDB 1.x line protocol (line_protocol.h), one or more lines. Lines whose
//                  measurement differs from `measurement` (when given) are skipped and counted.
//                  Each field names a field key; without `fields`, every field key of a line maps
//                  to the element of that name. The line's timestamp (in `precision`, default ns)
//                  is the source time. A bad line, or a line without a tag the twin template
//                  needs, is one rejection (`field` empty; a tag an element template needs
//                  rejects that field); the other lines are still mapped.
//
// Units and ranges
//   `unit` is what the device sends; the target unit is the element's DTDL `unit` in `model`, or
//   `targetUnit` when the model has none or is not given (a `unit` without a target unit is an
//   error: a conversion that silently does not happen is worse than none). Conversion (units.h)
//   applies to numbers; the result is a double, except that a value keeps its JSON type when the
//   conversion is the identity, and a converted value for an integer/long element (per `model`)
//   is rounded to the nearest integer. `min`/`max` are in the target unit. A field with a unit or
//   a range takes only numbers (a string or boolean there is MAPPING_PAYLOAD).
//
// Timestamps (json)
//   rfc3339   string, any offset (core::ParseRfc3339), years 1678..2261
//   unix-s    number of seconds since 1970 (may have a fraction); unix-ms, unix-us, unix-ns alike
//   Without `timestamp` every reading gets the arrival time. A missing (unless "optional": true)
//   or bad timestamp rejects the whole message (MAPPING_TIMESTAMP).
//
// Error codes (stable). Validation (Parse) reports each problem as a detail with a JSON pointer
// into the mapping document; the returned status has the common code of all problems (or
// MAPPING_INVALID when they differ), the first problem's pointer and a summary message.
//   MAPPING_INVALID    not an object, unknown member, missing or mistyped member, bad id, bad
//                      JSON pointer, member not allowed for the format, min > max, the same
//                      element mapped twice, not JSON at all (Parse from text)
//   MAPPING_TOPIC      bad topic pattern: mixed level, `#` not last, bad or duplicate capture
//   MAPPING_TEMPLATE   a template with an unknown capture, `{tag:..}` outside line-protocol,
//                      bad placeholder syntax or a stray brace
//   MAPPING_ELEMENT    `model` unknown; element not a Property/Telemetry of the model (including
//                      "component/name"); unit, targetUnit, min or max on a non-numeric element
//   MAPPING_UNIT       unknown or unconvertible unit, no target unit, targetUnit contradicting
//                      the model, units of different quantities (units.h)
// Per message (Apply: MappingRejection::error; the pointer is the field's pointer or "")
//   MAPPING_PAYLOAD    not JSON / not a number / value missing or null / not a number where a
//                      unit or range needs one / bad line-protocol line (its LP_ code in the
//                      message) / missing tag
//   MAPPING_RANGE      value outside min..max after conversion, or not finite after conversion
//   MAPPING_TIMESTAMP  timestamp missing, of the wrong type, malformed or out of range
//   MAPPING_NO_MATCH   (the Result of Apply) the topic does not match the mapping
//
// Thread-safety: a Mapping is immutable after Parse; Apply may run on any number of threads.
// MappingSet is safe from any thread.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "model/model_repository.h"
#include "sync/device_route.h"
#include "sync/ingest.h"

namespace doppel::sync {

// A compiled MQTT topic pattern with named captures (rules above).
class TopicPattern {
 public:
  // Error: MAPPING_TOPIC (pointer "/topic"); every problem in details().
  static core::Result<TopicPattern> Compile(std::string_view pattern);

  const std::string& pattern() const { return pattern_; }
  // The MQTT subscription filter: each `{name}` becomes `+`.
  const std::string& subscription_filter() const { return filter_; }
  // Capture names in pattern order.
  const std::vector<std::string>& capture_names() const { return capture_names_; }
  // Index of capture `name` in capture_names(), or nullopt.
  std::optional<std::size_t> CaptureIndex(std::string_view name) const;

  // True if `topic` matches; then *captures (if not null) holds the captured levels, in
  // capture_names() order, as views into `topic`.
  bool Match(std::string_view topic, std::vector<std::string_view>* captures = nullptr) const;

 private:
  enum class Level : unsigned char { kLiteral, kPlus, kCapture, kHash };
  struct Part {
    Level kind;
    std::string text;  // literal text
  };
  std::string pattern_;
  std::string filter_;
  std::vector<Part> parts_;
  std::vector<std::string> capture_names_;
};

enum class PayloadFormat { kJson, kNumber, kLineProtocol };

// A rejection of one field of a message, or of the whole message (or one line of it).
struct MappingRejection {
  std::optional<std::size_t> field;  // index in the mapping's `fields`; empty: whole message/line
  std::string twin;                  // when known
  std::string element;               // when known
  std::string origin;                // like Reading::origin
  std::string value;                 // the offending value or payload, abbreviated
  core::Status error;                // MAPPING_PAYLOAD, MAPPING_RANGE or MAPPING_TIMESTAMP
};

// What one message became.
struct MappedMessage {
  std::vector<Reading> readings;
  std::vector<MappingRejection> rejected;
  std::size_t skipped_fields = 0;  // optional fields without a value
  std::size_t skipped_lines = 0;   // line-protocol lines of another measurement
};

class Mapping {
 public:
  // Validates and compiles a mapping document. `models` is needed when the document names a
  // `model` (without it: MAPPING_ELEMENT). Error codes above; every problem in details().
  static core::Result<Mapping> Parse(const boost::json::value& document,
                                     const model::ModelRepository* models);
  // The same from JSON text (MAPPING_INVALID if it is not JSON).
  static core::Result<Mapping> Parse(std::string_view json_text,
                                     const model::ModelRepository* models);

  const std::string& id() const;
  const TopicPattern& topic() const;
  const std::string& subscription_filter() const { return topic().subscription_filter(); }
  PayloadFormat format() const;
  int qos() const;
  const std::string& model() const;  // "" when none
  // The document as given to Parse (to store it and to show it back).
  const boost::json::value& document() const;
  // The `desired` / `commands` members (device_route.h); null when the mapping has neither.
  const OutboundRoutes* outbound() const;
  // Sync quality and flood protection members; nullopt when not given (mqtt_ingest.h).
  std::optional<std::chrono::milliseconds> expected_interval() const;
  std::optional<double> max_rate_per_topic() const;
  std::optional<double> burst_per_topic() const;
  std::optional<std::size_t> max_payload_bytes() const;
  // The twin a message on `topic` is for, from the topic alone (no payload parsed): nullopt if
  // the topic does not match or the twin template needs a line-protocol tag.
  std::optional<std::string> TwinOfTopic(std::string_view topic) const;

  bool Matches(std::string_view topic) const;

  // Maps one message that arrived on `topic` at `arrival`. Readings' origins read
  // "<source> <topic> field <pointer>" (json), "<source> <topic>" (number) or
  // "<source> <topic> line <n> field <key>" (line-protocol). Error: MAPPING_NO_MATCH if `topic`
  // does not match; everything wrong with the payload is a rejection in the result.
  core::Result<MappedMessage> Apply(std::string_view topic, std::string_view payload,
                                    Clock::time_point arrival,
                                    std::string_view source = "mqtt") const;

 private:
  struct Compiled;
  explicit Mapping(std::shared_ptr<const Compiled> c) : c_(std::move(c)) {}
  std::shared_ptr<const Compiled> c_;
};

using MappingPtr = std::shared_ptr<const Mapping>;

// The mappings of a server, by id. Thread-safe; readers never wait for a slow writer: Match and
// List work on an immutable snapshot.
class MappingSet {
 public:
  // Adds `mapping`, replacing the one with the same id. Returns the replaced one (or null).
  MappingPtr Put(Mapping mapping);
  // Removes mapping `id`. Returns it (or null if there was none).
  MappingPtr Remove(std::string_view id);
  MappingPtr Get(std::string_view id) const;
  // All mappings, by id.
  std::vector<MappingPtr> List() const;
  // The mappings whose topic pattern matches `topic`, by id.
  std::vector<MappingPtr> Match(std::string_view topic) const;
  // The distinct subscription filters with the highest QoS any mapping asks for each.
  std::vector<std::pair<std::string, int>> Subscriptions() const;
  std::size_t size() const;

 private:
  using Snapshot = std::vector<MappingPtr>;  // sorted by id
  std::shared_ptr<const Snapshot> Current() const;

  mutable std::shared_mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_ = std::make_shared<Snapshot>();
};

}  // namespace doppel::sync
