// doppel::twin::query — internal: running a plan and producing one page of rows.
#pragma once

#include <boost/json/array.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "twin/graph_view.h"
#include "twin/query/ast.h"
#include "twin/query/planner.h"
#include "twin/query/query.h"

namespace doppel::twin::query::internal {

struct ExecRequest {
  std::size_t offset = 0;  // rows to skip (earlier pages)
  std::size_t page_size = 100;
  std::chrono::steady_clock::time_point deadline;
  std::int64_t now_ns = 0;                      // history windows end here
  const HistoryAggregateFn* history = nullptr;  // set when the query has history aggregates
};

struct ExecResult {
  boost::json::array items;
  bool more = false;  // a row exists after this page
};

// Runs `plan` for `q`. QUERY_TIMEOUT once `deadline` passes; an error of the history seam as
// it is.
core::Result<ExecResult> Execute(const GraphView& graph, const BoundQuery& q, const Plan& plan,
                                 const ExecRequest& request);

}  // namespace doppel::twin::query::internal
