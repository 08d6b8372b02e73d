// doppel::twin — the data side: twins and relationships as the graph stores them.
//
// Both are immutable once published and shared as shared_ptr<const ...>; a write makes a new
// version. `doc` is the exact JSON shape the REST API returns (Azure Digital Twins' shape):
//
//   twin:         {"$dtId", "$etag", "$metadata": {"$model", "$lastUpdateTime",
//                   "<prop>": {"lastUpdateTime", "sourceTime"?, "desiredValue"?,
//                              "desiredVersion"?, "desiredTime"?}},
//                  "<prop>": value, ...,
//                  "<component>": {"$metadata": {...same per-property entries...}, "<prop>": v}}
//   relationship: {"$relationshipId", "$etag", "$sourceId", "$targetId", "$relationshipName",
//                  "<prop>": value, ...}
//
// For a writable property the value in the twin is the *reported* value; the desired value, when
// one is pending, lives in its $metadata entry (desiredValue, desiredVersion, desiredTime).
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <memory>
#include <string>

namespace doppel::twin {

struct Twin {
  std::string id;
  std::string model;
  std::string etag;       // W/"<hex seq>"
  std::uint64_t seq = 0;  // global write sequence number of this version
  boost::json::object doc;
};
using TwinPtr = std::shared_ptr<const Twin>;

struct Relationship {
  std::string id;
  std::string source;
  std::string target;
  std::string name;
  std::string etag;
  std::uint64_t seq = 0;
  boost::json::object doc;
};
using RelationshipPtr = std::shared_ptr<const Relationship>;

}  // namespace doppel::twin
