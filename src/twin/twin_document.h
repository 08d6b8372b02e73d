// doppel::twin — twin and relationship documents: validation against models, and the
// server-managed parts ($etag, $metadata times, desired-value versions).
//
// The *user view* of a twin is what a client may write: properties, components, and $metadata
// holding $model and, per writable property, an optional {"desiredValue": v}. The *stored*
// document adds $dtId, $etag, $lastUpdateTime and per-property lastUpdateTime/sourceTime and
// desiredVersion/desiredTime. JSON Patch is applied to the user view, so clients can neither
// forge server-managed fields nor see them disappear.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/resolver.h"
#include "twin/twin_types.h"

namespace doppel::twin {

// Twin and relationship ids: 1..128 bytes of UTF-8 without control characters.
core::Status CheckId(std::string_view id, std::string_view what);

std::string EtagOf(std::uint64_t seq);                 // W/"<hex>"
std::optional<std::uint64_t> SeqOfEtag(std::string_view etag);

// Every violation of `doc` (a user view) against `iface`, as VALUE_* / INVALID_METADATA
// statuses with JSON pointers. `top_level` is false for a component's object.
std::vector<core::Status> ValidateTwinContent(const model::ResolvedInterface& iface,
                                              const boost::json::object& doc, bool top_level,
                                              const std::string& pointer = "");

// The user view of a stored twin: what a client may write. Every writable property (of the twin
// and of its components) has a $metadata entry — {} or {"desiredValue": v} — so that a patch can
// add a first desired value at /$metadata/<prop>/desiredValue.
boost::json::object UserView(const Twin& twin, const model::ResolvedInterface& iface);

// Which properties a write touched: "*" for all; "name" when a patch path has one token (a
// whole property or component); "first/second" for longer paths (a property of a component, or
// a member inside a top-level Object/Map property); "$desired/<prop>" for desired values.
// `test` operations and the `from` of `copy` only read, so they touch nothing.
using Touched = std::set<std::string>;
Touched TouchedByPatch(const boost::json::value& patch);

// The sourceTime recorded in `twin`'s $metadata for the property at JSON pointer `pointer`
// ("/p", or "/component/p"); nullopt when there is none.
std::optional<std::chrono::system_clock::time_point> PropertySourceTime(const Twin& twin,
                                                                        std::string_view pointer);

// Builds the stored document from a validated user view.
boost::json::object BuildStoredDoc(const std::string& id, std::uint64_t seq,
                                   const boost::json::object& user, const Twin* previous,
                                   const model::ResolvedInterface& iface, const Touched& touched,
                                   std::chrono::system_clock::time_point now,
                                   std::optional<std::chrono::system_clock::time_point> source);

// Validates a relationship body for (source twin, rel id) and returns the stored document.
// `target_model` resolves the target twin's model. `existing_same_name` is how many other
// relationships named like this one the source already has.
core::Result<boost::json::object> BuildRelationshipDoc(
    const std::string& source_id, const std::string& rel_id, std::uint64_t seq,
    const boost::json::object& body, const model::ResolvedInterface& source_model,
    const TwinPtr& target, const model::ResolvedInterface* target_model,
    std::size_t existing_same_name);

// The user view of a relationship (no $etag).
boost::json::object RelationshipUserView(const Relationship& r);

}  // namespace doppel::twin
