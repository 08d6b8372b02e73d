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
//   operand    = literal | path;   literal = 'str' | "str" | [-]number | true | false | null
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
//   INVALID_CONTINUATION the token is damaged or belongs to another query
//
// Not supported (QUERY_UNSUPPORTED): ORDER BY, GROUP BY, DISTINCT, LIMIT/OFFSET, aggregates
// other than COUNT() (AVG, SUM, MIN, MAX), subqueries, more than one MATCH, MATCH with JOIN,
// JOIN or MATCH with FROM RELATIONSHIPS, more than 5 JOINs, more than 5 hops in a MATCH
// condition, a relationship variable on a multi-hop condition, more than 10 MATCH conditions.
//
// Thread-safety: a Query is immutable after Parse; Execute and Explain may run concurrently.
#pragma once

#include <boost/json/array.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "twin/graph_view.h"

namespace doppel::twin::query {

namespace internal {
struct BoundQuery;
}

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
