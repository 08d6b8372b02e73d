// doppel::twin::query — internal: choosing how to find the rows of a bound query.
//
// A plan is one access path for a first ("root") collection, then one expansion step per
// relationship condition, each reaching a new collection through the graph's adjacency lists.
// Every WHERE conjunct is evaluated at the first step where all the collections it reads are
// bound, so a selective condition on the root prunes before any expansion happens.
#pragma once

#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "twin/graph_view.h"
#include "twin/query/ast.h"

namespace doppel::twin::query::internal {

struct RootAccess {
  enum class Kind {
    kIdSeek,         // FindTwin for each $dtId
    kPropertyIndex,  // TwinsWithProperty (fetched while planning)
    kModelIndex,     // TwinsOfModels over a model and everything extending it
    kTwinScan,       // ForEachTwin
    kRelBySource,    // FROM RELATIONSHIPS with $sourceId known: Outgoing
    kRelByTarget,    // FROM RELATIONSHIPS with $targetId known: Incoming
    kRelScan,        // FROM RELATIONSHIPS: Outgoing of every twin
  };
  Kind kind = Kind::kTwinScan;
  int coll = 0;
  std::vector<std::string> ids;
  std::vector<std::string> models;
  std::string property;
  std::vector<TwinPtr> twins;
};

struct ExpandStep {
  int edge = -1;
  bool forward = true;  // traversing from the edge's left collection to its right one
  int from = -1;
  int to = -1;
  bool to_bound = false;  // both ends already bound: only check that they are connected
};

struct Plan {
  RootAccess root;
  std::vector<ExpandStep> steps;
  // filters[0] run once the root is bound, filters[i + 1] after steps[i].
  std::vector<std::vector<const Expr*>> filters;
  // By Expr::model_slot: the models an IS_OF_MODEL accepts, when the planner needed the full
  // set (for the model index). Otherwise the executor asks the repository per distinct model
  // it meets, which avoids listing every model for a query that seeks by $dtId.
  std::vector<std::optional<std::unordered_set<std::string>>> model_sets;
  std::string explain;
};

// Plans `q` against `graph` (reads the model repository; may call NoteFilteredProperty and
// TwinsWithProperty). `q` must outlive the plan.
Plan MakePlan(const BoundQuery& q, const GraphView& graph);

}  // namespace doppel::twin::query::internal
