#include "core/json.h"

#include <fmt/format.h>

// Boost.JSON is compiled into doppel_core (header-only mode) so that sanitizer and fuzzer builds
// instrument it too; no libboost_json is linked.
#include <boost/json/src.hpp>

namespace doppel::core {

std::string_view StripUtf8Bom(std::string_view text) {
  if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xEF &&
      static_cast<unsigned char>(text[1]) == 0xBB && static_cast<unsigned char>(text[2]) == 0xBF) {
    text.remove_prefix(3);
  }
  return text;
}

namespace {

// 1-based line and column of byte `offset` in `text`.
std::pair<std::size_t, std::size_t> LineColumn(std::string_view text, std::size_t offset) {
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

}  // namespace

Result<json::value> ParseJson(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Status("JSON_TOO_LARGE",
                  fmt::format("document is {} bytes; the limit is {} bytes", text.size(),
                              limits.max_bytes));
  }
  text = StripUtf8Bom(text);
  json::parse_options opts;
  opts.max_depth = limits.max_depth;
  json::stream_parser parser({}, opts);
  boost::system::error_code ec;
  std::size_t consumed = parser.write_some(text.data(), text.size(), ec);
  if (!ec) {
    if (consumed < text.size()) {
      ec = json::error::extra_data;
    } else {
      parser.finish(ec);
      consumed = text.size();
    }
  }
  if (ec) {
    auto [line, col] = LineColumn(text, consumed);
    if (ec == json::error::too_deep) {
      return Status("JSON_TOO_DEEP",
                    fmt::format("nesting deeper than {} levels at line {}, column {}",
                                limits.max_depth, line, col));
    }
    if (text.empty()) return Status("JSON_SYNTAX", "document is empty");
    return Status("JSON_SYNTAX",
                  fmt::format("{} at line {}, column {}", ec.message(), line, col));
  }
  return parser.release();
}

std::string EscapePointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string PointerAppend(std::string_view pointer, std::string_view token) {
  std::string out(pointer);
  out += '/';
  out += EscapePointerToken(token);
  return out;
}

std::string PointerAppend(std::string_view pointer, std::size_t index) {
  return fmt::format("{}/{}", pointer, index);
}

std::size_t Utf8Length(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string_view KindName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "number";
    case json::kind::string: return "string";
    case json::kind::array: return "array";
    case json::kind::object: return "object";
  }
  return "unknown";
}

std::string Abbreviate(const json::value& v, std::size_t max_chars) {
  std::string s = json::serialize(v);
  if (s.size() > max_chars) {
    s.resize(max_chars);
    s += "...";
  }
  return s;
}

}  // namespace doppel::core
