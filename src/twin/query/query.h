// doppel::twin::query — the twin query language: the component's manual.
//
// What it does
//   Runs Azure Digital Twins (ADT) style queries over a GraphView and returns ADT-shaped rows,
//   one page at a time. Behaviour follows the ADT query language reference (SELECT, FROM,
//   MATCH, JOIN, WHERE, functions, operators); differences are listed under "Not supported".
//
// How to use it
//   auto q = Query::Parse("SELECT T FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:x:Room;1')");
//   if (!q.ok()) return q.status();          // QUERY_SYNTAX etc., with line and column
//   QueryOptions opts;
//   do {
//     auto page = q->Execute(graph, opts);
//     if (!page.ok()) return page.status();
//     for (auto& row : page->items) ...;
//     opts.continuation_token = page->continuation_token;
//   } while (!opts.continuation_token.empty());
//   // or, for one page: RunQuery(graph, text, opts)
//   std::string plan = q->Explain(graph);    // "IndexSeek(T.$dtId) -> Filter -> Project"
//
// Grammar (keywords are case-insensitive; names and values are case-sensitive)
//   query      = SELECT [TOP '(' int ')'] projection FROM source [WHERE condition]
//   projection = '*' | COUNT '(' ')' [AS name] | item {',' item}
//                (SELECT TOP(n) FROM ... means SELECT TOP(n) * FROM ...)
//   item       = path [AS name]
//   path       = name {'.' anyname}      e.g. T, T.temp, T.comp.prop, T.$dtId, T.$metadata.$model
//   source     = DIGITALTWINS [name] [match | join {join}]      (at most 5 JOINs)
//              | RELATIONSHIPS [name]
//   join       = JOIN name RELATED name '.' relationshipName [name]
//   match      = MATCH node {edge node}
//   node       = '(' [name] ')'
//   edge       = '-' '[' rel ']' '->'  |  '<-' '[' rel ']' '-'  |  '-' '[' rel ']' '-'
//   rel        = [variable] [':' relName {'|' relName}] ['*' hops]
//              | relName {'|' relName} ['*' hops]        (a name followed by '|' or '*')
//   hops       = n            exactly n hops
//              | [a] '..' b   more than a (default 0) and at most b hops (ADT: a is excluded)
//   condition  = or;  or = and {OR and};  and = not {AND not};  not = NOT not | primary
//   primary    = '(' condition ')' | function | operand [cmp operand | [NOT] IN list | NIN list]
//   cmp        = '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
//   list       = '[' [literal {',' literal}] ']'
//   operand    = literal | path | aggregate
//   literal    = 'str' | "str" | [-]number | true | false | null
//   aggregate  = agg '(' path ',' 'window' ')'      e.g. MEAN(T.spindleSpeed, '5m')
//   agg        = MEAN | MIN | MAX | SUM | COUNT_OF | LAST | P50 | P95 | P99
//   window     = a duration string: <integer><unit> pairs, units ns us ms s m h d w
//                ('90s', '5m', '1h30m', '1d'); more than 0 and at most 366 days
//                An aggregate is only valid in WHERE, as a side of a comparison (cmp, with a
//                number, a path or another aggregate) or the left side of [NOT] IN / NIN a list
//                of numbers; its path names a twin collection's property or telemetry.
//   function   = STARTSWITH(a, b) | ENDSWITH(a, b) | CONTAINS(a, b) | ARRAY_CONTAINS(arr, v)
//              | IS_OF_MODEL([twin,] 'dtmi' [, exact]) | IS_DEFINED(p) | IS_NULL(p)
//              | IS_BOOL(p) | IS_NUMBER(p) | IS_STRING(p) | IS_OBJECT(p) | IS_PRIMITIVE(p)
//              (STARTS_WITH / ENDS_WITH are accepted too)
//   A name that is a reserved word (ADT's list: SELECT, FROM, COUNT, GROUP, ...; and JOIN,
//   MATCH, RELATED, DIGITALTWINS, RELATIONSHIPS, NIN) is written [[name]] unless it follows '.'.
//   With a single collection, a path may leave out the collection: `WHERE temp > 5`.
//   A bare operand as a condition (`WHERE T.enabled`) is true when the value is boolean true.
//
// Semantics
//   - Comparing values of different types, or a missing value, is undefined: the row does not
//     match, and NOT of undefined is still undefined (use IS_DEFINED / IS_NULL). Numbers
//     compare numerically; strings ordinally (byte-wise); true/false/null/objects only with
//     = and !=. `x IN [...]` is true when x equals a member; NIN is its negation.
//   - IS_OF_MODEL accepts the model and every model extending it (exact: only the model).
//   - History aggregates: MEAN(T.p, '5m') is the mean of the points of the twin's history series
//     for p ("p"; T.comp.p reads series "comp/p") with now - window <= t <= now, where now is
//     read once when Execute starts (every row of a page sees the same window; each page reads
//     the clock again). MIN, MAX, SUM, P50/P95/P99 (linear interpolation), LAST (the newest
//     point) and COUNT_OF (how many points) likewise; bool points count as 0/1. The value is a
//     number and compares numerically. No points in the window (or no series, or a string LAST)
//     is undefined, like a missing property; except COUNT_OF, which is 0. They are evaluated
//     lazily, at most once per row (consecutive rows of one twin share the answer), after
//     every cheaper condition of the same AND/OR (the planner never uses them to find twins),
//     so narrow the query (IS_OF_MODEL, $dtId) to keep history reads few. They need
//     QueryOptions::history_aggregate.
//   - JOIN: one row per relationship; no outer-join rows. MATCH: a condition with a
//     relationship variable gives one row per relationship; without one (or with hops) it
//     gives each twin reached once per starting row. A path never reuses a relationship.
//     Direction '-' (no arrow) follows relationships both ways.
//   - Unlike ADT, JOIN and MATCH do not require a $dtId condition; without one the planner
//     starts from the most selective index it has, or scans.
//
// Result shapes (ADT)
//   SELECT * (one collection)              -> the twin (or relationship) document
//   SELECT * with MATCH                    -> {"<name>": doc, ...} for every named twin and
//                                             relationship variable
//   SELECT T / SELECT T, R                 -> {"T": doc} / {"T": doc, "R": doc}
//   SELECT T.a, R.b AS x                   -> {"a": v, "x": v}; a missing property is left out
//   SELECT COUNT()                         -> one row {"COUNT": n}
//   Mixed items combine: SELECT T, CT.name -> {"T": doc, "name": v}.
//
// Paging
//   Each Execute returns at most page_size rows (1..1000, default 100) and, when more rows
//   exist, a continuation token to pass back with the *same query text*. Tokens are stateless
//   (they encode the query's hash and a row offset): each page re-runs the query and skips the
//   rows of earlier pages, so pages are NOT a snapshot — a write between two pages can make a
//   row appear twice or be skipped. The graph must enumerate unchanged data in a stable order.
//   A token from another query, or a damaged one, is INVALID_CONTINUATION. TOP(n) bounds the
//   total over all pages. COUNT() is always one page.
//
// Planning (see Explain)
//   The first collection is found by, in order of preference: $dtId = / IN (FindTwin:
//   "IndexSeek(T.$dtId)"), equality or IN on a top-level property that the graph indexes
//   ("PropertyIndex(T.p)"; the planner calls NoteFilteredProperty for every such filter so the
//   graph can decide to index it), IS_OF_MODEL or $metadata.$model (TwinsOfModels over the
//   model and its descendants: "ModelIndex(...)"), else a full scan ("Scan(T)"). ORs of such
//   conditions on one key are unioned. MATCH and JOIN then expand through Outgoing/Incoming
//   from the bound side ("Expand(T-[:contains]->R)"); each WHERE conjunct is applied as soon
//   as the collections it reads are bound ("Filter").
//
// Errors (core::Status code; every syntax and semantic message starts "line L, column C: ")
//   QUERY_SYNTAX        not the grammar above; says what was expected and what was found
//   QUERY_TOO_LONG      the text is longer than max_query_length characters
//   QUERY_UNSUPPORTED   recognized but not supported (see below)
//   QUERY_INVALID       well-formed but meaningless: unknown collection, duplicate name,
//                       COUNT() with other projections, SELECT * with JOIN, TOP(0), empty hop
//                       range, IS_OF_MODEL without a collection when there are several, ...
//   QUERY_TIMEOUT       execution took longer than the timeout
//   QUERY_HISTORY_UNAVAILABLE  the query uses a history aggregate and no history_aggregate
//                       seam is set (position of the first aggregate); an error the seam
//                       returns stops the query with that error
//   INVALID_CONTINUATION the token is damaged or belongs to another query
//
// Not supported (QUERY_UNSUPPORTED): ORDER BY, GROUP BY, DISTINCT, LIMIT/OFFSET, aggregates over
// rows other than COUNT() (AVG; SUM, MIN and MAX exist only as history aggregates), history
// aggregates in SELECT, history windows over 366 days, subqueries, more than one MATCH, MATCH
// with JOIN, JOIN or MATCH with FROM RELATIONSHIPS, more than 5 JOINs, more than 5 hops in a
// MATCH condition, a relationship variable on a multi-hop condition, more than 10 MATCH
// conditions.
//
// Thread-safety: a Query is immutable after Parse; Execute and Explain may run concurrently.
#pragma once

#include <boost/json/array.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "twin/graph_view.h"

namespace doppel::twin::query {

namespace internal {
struct BoundQuery;
}

// One history aggregate a query needs for one twin (see "History aggregates" above).
struct HistoryAggregateRequest {
  std::string_view twin;     // $dtId
  std::string_view path;     // "temperature", or "component/property"
  std::string_view agg;      // "mean", "min", "max", "sum", "count", "last", "p50", "p95", "p99"
  std::int64_t from_ns = 0;  // from_ns <= t <= to_ns, nanoseconds since the epoch
  std::int64_t to_ns = 0;
};

// The aggregate as a number (bool points as 0/1), or nullopt when the series has no points in
// the range (or none at all, or its last value is a string). An error stops the query with it.
using HistoryAggregateFn =
    std::function<core::Result<std::optional<double>>(const HistoryAggregateRequest&)>;

struct QueryOptions {
  static constexpr std::size_t kDefaultPageSize = 100;
  static constexpr std::size_t kMaxPageSize = 1000;

  // Rows per page: 0 means the default; larger than kMaxPageSize is capped.
  std::size_t page_size = kDefaultPageSize;
  // Empty for the first page; then the previous page's token.
  std::string continuation_token;
  // Characters (Unicode code points) of query text accepted.
  std::size_t max_query_length = 8000;
  // Wall-clock budget for one Execute; checked while rows are produced.
  std::chrono::milliseconds timeout{10'000};
  // Answers history aggregates (MEAN(T.p, '5m') ...), called on the thread running Execute when
  // a row needs one (consecutive rows of one twin are asked once). Empty: a query using one
  // fails with QUERY_HISTORY_UNAVAILABLE.
  HistoryAggregateFn history_aggregate;
  // "now" for history windows, nanoseconds since the epoch; 0: the system clock, read once at
  // the start of each Execute (so every row of a page sees the same window).
  std::int64_t now_ns = 0;
};

struct QueryPage {
  boost::json::array items;
  std::string continuation_token;  // empty when this is the last page
};

class Query {
 public:
  // Parses and checks `text`. QUERY_TOO_LONG, QUERY_SYNTAX, QUERY_INVALID, QUERY_UNSUPPORTED.
  static core::Result<Query> Parse(std::string_view text, const QueryOptions& options = {});

  Query(Query&&) noexcept;
  Query& operator=(Query&&) noexcept;
  ~Query();

  // One page of results (options.page_size, options.continuation_token, options.timeout).
  core::Result<QueryPage> Execute(const GraphView& graph, const QueryOptions& options = {}) const;

  // The plan Execute would use now, e.g. "IndexSeek(T.$dtId) -> Filter -> Project".
  std::string Explain(const GraphView& graph) const;

  const std::string& text() const;

 private:
  explicit Query(std::unique_ptr<internal::BoundQuery> q);
  std::unique_ptr<internal::BoundQuery> q_;
};

// Parse + Execute in one call.
core::Result<QueryPage> RunQuery(const GraphView& graph, std::string_view text,
                                 const QueryOptions& options = {});

}  // namespace doppel::twin::query
