// doppel::twin::query — internal: splitting query text into tokens.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "twin/query/ast.h"

namespace doppel::twin::query::internal {

// Tokens of `text`, ending with one kEnd token. QUERY_SYNTAX (with line and column) on an
// unterminated string or escaped name, a malformed number or an unexpected character.
core::Result<std::vector<Token>> Lex(std::string_view text);

// "line L, column C"
std::string FormatPos(const Pos& pos);

// How a token reads in an error message: "'WHERE'", "string 'abc'", "end of query".
std::string Describe(const Token& token);

}  // namespace doppel::twin::query::internal
