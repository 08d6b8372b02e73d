// doppel::twin::query — internal: text to a checked, bound query.
#pragma once

#include <string_view>

#include "core/status.h"
#include "twin/query/ast.h"

namespace doppel::twin::query::internal {

// Lexes, parses and binds `text` (names resolved to collections, semantic rules checked).
// Errors: QUERY_SYNTAX, QUERY_INVALID, QUERY_UNSUPPORTED, each with "line L, column C".
core::Result<BoundQuery> Parse(std::string_view text);

}  // namespace doppel::twin::query::internal
