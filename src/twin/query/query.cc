#include "twin/query/query.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "core/json.h"
#include "twin/query/ast.h"
#include "twin/query/executor.h"
#include "twin/query/lexer.h"
#include "twin/query/parser.h"
#include "twin/query/planner.h"

namespace doppel::twin::query {
namespace {

constexpr std::string_view kTokenVersion = "dq1";

std::uint64_t Fnv1a(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                 (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    if (i + 1 < in.size()) out += kB64[(v >> 6) & 63];
  }
  return out;
}

bool Base64UrlDecode(std::string_view in, std::string* out) {
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = std::find(kB64, kB64 + 64, c);
    if (p == kB64 + 64) return false;
    acc = (acc << 6) | static_cast<unsigned>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return true;
}

// "dq1.<query hash hex>.<offset>", base64url without padding.
std::string MakeToken(std::string_view text, std::size_t offset) {
  return Base64UrlEncode(fmt::format("{}.{:016x}.{}", kTokenVersion, Fnv1a(text), offset));
}

core::Result<std::size_t> ReadToken(std::string_view token, std::string_view text) {
  auto bad = [](const char* why) {
    return core::Status("INVALID_CONTINUATION", fmt::format("continuation token {}", why));
  };
  std::string raw;
  if (token.size() > 256 || !Base64UrlDecode(token, &raw)) return bad("is malformed");
  std::string_view s = raw;
  auto dot1 = s.find('.');
  auto dot2 = dot1 == std::string_view::npos ? dot1 : s.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || s.substr(0, dot1) != kTokenVersion) {
    return bad("is malformed");
  }
  if (s.substr(dot1 + 1, dot2 - dot1 - 1) != fmt::format("{:016x}", Fnv1a(text))) {
    return bad("belongs to a different query; send the same query text with its token");
  }
  std::string_view num = s.substr(dot2 + 1);
  std::size_t offset = 0;
  auto r = std::from_chars(num.data(), num.data() + num.size(), offset);
  if (num.empty() || r.ec != std::errc() || r.ptr != num.data() + num.size()) {
    return bad("is malformed");
  }
  return offset;
}

}  // namespace

Query::Query(std::unique_ptr<internal::BoundQuery> q) : q_(std::move(q)) {}
Query::Query(Query&&) noexcept = default;
Query& Query::operator=(Query&&) noexcept = default;
Query::~Query() = default;

const std::string& Query::text() const { return q_->text; }

core::Result<Query> Query::Parse(std::string_view text, const QueryOptions& options) {
  // Checked before lexing so an oversized text costs nothing more than counting.
  std::size_t length = core::Utf8Length(text);
  if (length > options.max_query_length) {
    return core::Status("QUERY_TOO_LONG",
                        fmt::format("the query is {} characters long; at most {} are accepted",
                                    length, options.max_query_length));
  }
  auto bound = internal::Parse(text);
  if (!bound.ok()) return bound.status();
  return Query(std::make_unique<internal::BoundQuery>(std::move(*bound)));
}

core::Result<QueryPage> Query::Execute(const GraphView& graph, const QueryOptions& options) const {
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  std::size_t offset = 0;
  if (!options.continuation_token.empty()) {
    auto o = ReadToken(options.continuation_token, q_->text);
    if (!o.ok()) return o.status();
    offset = *o;
  }
  std::size_t page_size = options.page_size == 0
                              ? QueryOptions::kDefaultPageSize
                              : std::min(options.page_size, QueryOptions::kMaxPageSize);
  internal::ExecRequest req{offset, page_size, deadline};
  if (q_->history_slots > 0) {
    if (!options.history_aggregate) {
      return core::Status(
          "QUERY_HISTORY_UNAVAILABLE",
          fmt::format("{}: history aggregates need the history store, which is not available "
                      "here",
                      internal::FormatPos(q_->first_history_pos)));
    }
    req.history = &options.history_aggregate;
    req.now_ns = options.now_ns != 0 ? options.now_ns
                                     : std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count();
  }
  internal::Plan plan = internal::MakePlan(*q_, graph);
  auto r = internal::Execute(graph, *q_, plan, req);
  if (!r.ok()) return r.status();
  QueryPage page;
  page.items = std::move(r->items);
  if (r->more) page.continuation_token = MakeToken(q_->text, offset + page.items.size());
  return page;
}

std::string Query::Explain(const GraphView& graph) const {
  return internal::MakePlan(*q_, graph).explain;
}

core::Result<QueryPage> RunQuery(const GraphView& graph, std::string_view text,
                                 const QueryOptions& options) {
  auto q = Query::Parse(text, options);
  if (!q.ok()) return q.status();
  return q->Execute(graph, options);
}

}  // namespace doppel::twin::query
