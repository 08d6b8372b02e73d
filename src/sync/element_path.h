// doppel::sync — finding the element a reading names in a resolved model.
//
// Readings (ingest.h) and mappings (mapping.h) name an element as "name" or "component/name":
// a Property or Telemetry of the Interface, or of the Interface of one of its Components (one
// level; DTDL Components do not nest). Shared by both so they agree on what a path means.
#pragma once

#include <boost/json/value.hpp>
#include <string_view>

#include "model/elements.h"
#include "model/resolver.h"
#include "tsdb/chunk.h"

namespace doppel::sync {

// The Property or Telemetry `path` names in `iface` ("name" or "component/name"), or null (no
// such element, or it is a Command, Relationship or Component).
const model::Content* FindElement(const model::ResolvedInterface& iface, std::string_view path);

// The history value of `v` (already valid for `element`), by the element's schema:
// double/float → float64 (a JSON integer too), integer/long → int64, boolean, string-like (string,
// date, time, dateTime, duration, string enums) → string, anything else (objects, arrays, maps,
// geospatial) → its JSON text. Ingest and the API's twin writes agree through it.
tsdb::Value HistoryValue(const model::Content& element, const boost::json::value& v);

}  // namespace doppel::sync
