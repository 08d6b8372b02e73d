// doppel::model — does a JSON value conform to a DTDL schema?
//
// Used by the twin graph on every write (properties, components, relationship properties),
// by ingest for telemetry, and by the command path for request/response payloads. Reports every
// problem with a stable code and a JSON pointer relative to the value.
//
// Formats: integer = signed 32-bit, long = signed 64-bit, float = IEEE single (finite),
// double = any JSON number; date = RFC 3339 full-date, time = RFC 3339 full-time (offset
// required), dateTime = RFC 3339 date-time, duration = ISO 8601 (PnYnMnWnDTnHnMnS);
// geospatial = GeoJSON geometry objects (RFC 7946).
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/elements.h"
#include "model/resolver.h"

namespace doppel::model {

using ValueErrors = std::vector<core::Status>;

// Appends to `out` every way `value` fails `schema`. Pointers are `pointer` + the path inside.
void ValidateValue(const Schema& schema, const boost::json::value& value,
                   const std::string& pointer, ValueErrors* out);

// Validates a value for Property or Telemetry `path` of `iface`: "name", or "component/name"
// for an element of a Component. VALUE_UNKNOWN_ELEMENT if there is no such element.
ValueErrors ValidateElementValue(const ResolvedInterface& iface, std::string_view path,
                                 const boost::json::value& value);

// Validates the request payload of Command `name` (null = no payload).
ValueErrors ValidateCommandRequest(const ResolvedInterface& iface, std::string_view name,
                                   const boost::json::value& request);

// Format checks, exposed for ingest and tests.
bool IsValidDate(std::string_view s);
bool IsValidTime(std::string_view s);
bool IsValidDateTime(std::string_view s);
bool IsValidDuration(std::string_view s);

}  // namespace doppel::model
