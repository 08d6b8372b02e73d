// doppel::twin — read access to the twin graph, as the query engine and analytics see it.
//
// Every method is safe to call from any thread while writes go on. Each returned twin or
// relationship is one complete committed version (never half-applied). A sequence of calls is
// not one atomic snapshot across shards: a query sees every write acknowledged before it
// started, and possibly some that commit while it runs.
#pragma once

#include <boost/json/value.hpp>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/model_repository.h"
#include "twin/twin_types.h"

namespace doppel::twin {

class GraphView {
 public:
  virtual ~GraphView() = default;

  virtual const model::ModelRepository& models() const = 0;

  // nullptr if there is no such twin.
  virtual TwinPtr FindTwin(std::string_view id) const = 0;

  // Calls fn for every twin until it returns false.
  virtual void ForEachTwin(const std::function<bool(const TwinPtr&)>& fn) const = 0;

  virtual std::size_t TwinCount() const = 0;

  // Twins whose $model is exactly one of `model_ids` (index lookup, no scan).
  virtual std::vector<TwinPtr> TwinsOfModels(std::span<const std::string> model_ids) const = 0;

  // Relationships from `source`, optionally only those named `name` (empty = all).
  virtual std::vector<RelationshipPtr> Outgoing(std::string_view source,
                                                std::string_view name = {}) const = 0;

  // Relationships whose target is `target`.
  virtual std::vector<RelationshipPtr> Incoming(std::string_view target) const = 0;

  // Twins whose top-level property `property` equals `value`, when a property index exists for
  // it (nullopt otherwise; the caller then scans). Indexes are created on demand by
  // NoteFilteredProperty once a property is filtered on often.
  virtual std::optional<std::vector<TwinPtr>> TwinsWithProperty(
      std::string_view property, const boost::json::value& value) const {
    (void)property;
    (void)value;
    return std::nullopt;
  }

  // Tells the graph a query filtered on equality of top-level `property`; the graph may decide
  // to build and maintain an index for it.
  virtual void NoteFilteredProperty(std::string_view property) const { (void)property; }
};

}  // namespace doppel::twin
