// doppel::model — JSON views of models for the API and the CLI.
#pragma once

#include <boost/json/value.hpp>

#include "model/diagnostic.h"
#include "model/elements.h"
#include "model/resolver.h"

namespace doppel::model {

// {"code","message","document","pointer","dtmi","severity"}
boost::json::value DiagnosticToJson(const Diagnostic& d);

// A schema as DTDL-like JSON: a primitive term string, or an object for complex schemas.
boost::json::value SchemaToJson(const Schema& s);

// The resolved view: {"@id", "dtdlVersion", "displayName", "extends" (closure),
// "contents": [{"name", "@type", "definedIn", "schema", "writable", ...}],
// "components": {name: <resolved view>}}.
boost::json::value ResolvedToJson(const ResolvedInterface& r);

}  // namespace doppel::model
