// doppel::sync — finding the element a reading names in a resolved model.
//
// Readings (ingest.h) and mappings (mapping.h) name an element as "name" or "component/name":
// a Property or Telemetry of the Interface, or of the Interface of one of its Components (one
// level; DTDL Components do not nest). Shared by both so they agree on what a path means.
#pragma once

#include <string_view>

#include "model/elements.h"
#include "model/resolver.h"

namespace doppel::sync {

// The Property or Telemetry `path` names in `iface` ("name" or "component/name"), or null (no
// such element, or it is a Command, Relationship or Component).
const model::Content* FindElement(const model::ResolvedInterface& iface, std::string_view path);

}  // namespace doppel::sync
