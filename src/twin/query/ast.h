// doppel::twin::query — internal: tokens, the syntax tree and the bound (checked) query.
//
// The parser builds a BoundQuery straight away: every path is resolved to a collection slot
// and a property path while parsing finishes, so the executor never looks names up by string
// per row. Nothing here depends on a graph; plans (planner.h) do.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace doppel::twin::query::internal {

namespace json = boost::json;

// 1-based line and column (columns count Unicode code points).
struct Pos {
  int line = 1;
  int column = 1;
};

enum class TokenKind {
  kIdent,        // name or keyword
  kQuotedIdent,  // [[name]]: never a keyword
  kString,       // '...' or "...", unescaped
  kNumber,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kDot,
  kDotDot,
  kStar,
  kColon,
  kPipe,
  kMinus,
  kEq,
  kNe,  // != or <>
  kLt,
  kLe,
  kGt,
  kGe,
  kEnd,
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;    // identifier/string contents, or the source spelling
  json::value number;  // kNumber: int64 or double
  Pos pos;
};

enum class CmpOp { kEq, kNe, kLt, kLe, kGt, kGe };

enum class Func {
  kStartsWith,
  kEndsWith,
  kContains,
  kArrayContains,
  kIsOfModel,
  kIsDefined,
  kIsNull,
  kIsBool,
  kIsNumber,
  kIsString,
  kIsObject,
  kIsPrimitive,
};

// A history aggregate over a recent window: MEAN(T.p, '5m') and its siblings.
enum class HistAgg { kNone, kMean, kMin, kMax, kSum, kCount, kLast, kP50, kP95, kP99 };

// The aggregate's name for QueryOptions::history_aggregate ("mean", "count", "p99", ...).
inline std::string_view HistAggName(HistAgg a) {
  switch (a) {
    case HistAgg::kMean:
      return "mean";
    case HistAgg::kMin:
      return "min";
    case HistAgg::kMax:
      return "max";
    case HistAgg::kSum:
      return "sum";
    case HistAgg::kCount:
      return "count";
    case HistAgg::kLast:
      return "last";
    case HistAgg::kP50:
      return "p50";
    case HistAgg::kP95:
      return "p95";
    case HistAgg::kP99:
      return "p99";
    case HistAgg::kNone:
      break;
  }
  return "";
}

// A value in an expression: a literal, a path into a collection's document, or a history
// aggregate of a twin's property. `path` empty means the collection itself (the whole twin or
// relationship).
struct Operand {
  bool is_literal = false;
  json::value literal;
  int coll = -1;
  std::vector<std::string> path;
  Pos pos;
  // A history aggregate (agg != kNone): the value is `agg` over the points of the twin's series
  // `history_path` ("temp", "comp/prop") in the `window_ns` before the query started; `path`
  // still names the property, and the operand is never a key the planner can use.
  HistAgg agg = HistAgg::kNone;
  std::int64_t window_ns = 0;
  std::string history_path;
  int hist_slot = -1;  // index of the executor's per-aggregate memo (BoundQuery::history_slots)

  bool is_history() const { return agg != HistAgg::kNone; }
};

struct Expr {
  enum class Kind { kAnd, kOr, kNot, kCompare, kIn, kFunc, kTruthy, kConst };
  Kind kind = Kind::kConst;
  Pos pos;
  std::vector<std::unique_ptr<Expr>> kids;  // kAnd/kOr: 2+, kNot: 1
  CmpOp op = CmpOp::kEq;                    // kCompare
  bool negated = false;                     // kIn: NIN / NOT IN
  std::vector<Operand> args;                // kCompare: 2; kIn/kTruthy: 1; kFunc: arguments
  std::vector<json::value> list;            // kIn
  Func func = Func::kIsDefined;             // kFunc
  // IS_OF_MODEL: the model, whether only that exact model counts, and the index of the model
  // set the plan computes for it (Plan::model_sets).
  std::string model;
  bool exact = false;
  int model_slot = -1;
  bool const_value = false;     // kConst
  std::uint64_t coll_mask = 0;  // collections the expression reads
  bool has_history = false;     // reads a history aggregate (costly: evaluated last)
};

struct Collection {
  std::string name;  // empty when anonymous
  bool is_twin = true;
  Pos pos;
};

// One relationship condition between two twin collections: a JOIN or a MATCH segment.
struct Edge {
  enum class Dir { kLeftToRight, kRightToLeft, kBoth };
  int left = -1;
  int right = -1;
  Dir dir = Dir::kLeftToRight;
  std::vector<std::string> names;  // empty: any relationship name
  int rel = -1;                    // relationship collection, or -1
  int min_hops = 1;                // inclusive
  int max_hops = 1;                // inclusive
  // Whether a step yields each reached twin once (MATCH without a relationship variable, or
  // variable hops) rather than one row per relationship (JOIN, MATCH with a variable).
  bool distinct_targets = false;
  Pos pos;
};

struct SelectItem {
  enum class Kind { kCollection, kProperty };
  Kind kind = Kind::kCollection;
  Operand ref;
  std::string key;  // output key
};

struct BoundQuery {
  std::string text;
  bool from_relationships = false;
  bool has_match = false;
  bool has_join = false;
  std::vector<Collection> colls;
  std::vector<Edge> edges;
  bool select_star = false;
  bool count = false;
  std::string count_key = "COUNT";
  std::optional<std::int64_t> top;
  std::vector<SelectItem> items;
  std::unique_ptr<Expr> where;
  int model_slots = 0;
  int history_slots = 0;  // history aggregates in WHERE
  Pos first_history_pos;  // where the first one is written (for QUERY_HISTORY_UNAVAILABLE)
};

}  // namespace doppel::twin::query::internal
