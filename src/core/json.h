// doppel::core — JSON input with limits, and JSON Pointer (RFC 6901) helpers.
//
// Every JSON document that enters doppel from outside goes through ParseJson, which enforces a
// size and nesting limit before building anything, strips a UTF-8 byte-order mark, rejects
// invalid UTF-8, and reports syntax errors with line and column.
#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace doppel::core {

namespace json = boost::json;

struct JsonLimits {
  std::size_t max_bytes = 32u << 20;  // whole document
  std::size_t max_depth = 64;         // nesting of arrays/objects
};

// Error codes: JSON_TOO_LARGE, JSON_TOO_DEEP, JSON_SYNTAX (message has line:column).
Result<json::value> ParseJson(std::string_view text, const JsonLimits& limits = {});

// Returns `text` without a leading UTF-8 BOM (EF BB BF).
std::string_view StripUtf8Bom(std::string_view text);

// Escapes one reference token for a JSON Pointer: '~' -> "~0", '/' -> "~1".
std::string EscapePointerToken(std::string_view token);

// Appends "/token" (escaped) to `pointer`.
std::string PointerAppend(std::string_view pointer, std::string_view token);
std::string PointerAppend(std::string_view pointer, std::size_t index);

// Number of Unicode code points in UTF-8 `s` (DTDL's length limits count characters, not bytes).
std::size_t Utf8Length(std::string_view s);

// Short human name of a JSON value's kind: "string", "number", "object", ...
std::string_view KindName(const json::value& v);

// Serializes for messages, truncated to `max_chars` with "..." appended when cut.
std::string Abbreviate(const json::value& v, std::size_t max_chars = 60);

}  // namespace doppel::core
