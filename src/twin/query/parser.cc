#include "twin/query/parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json/serialize.hpp>
#include <set>
#include <string_view>

#include "core/time.h"
#include "twin/query/lexer.h"

namespace doppel::twin::query::internal {
namespace {

constexpr int kMaxJoins = 5;  // ADT's documented JOIN depth
constexpr int kMaxHops = 5;   // per MATCH segment; bounds the path enumeration
constexpr int kMaxMatchSegments = 10;
constexpr std::size_t kMaxCollections = 63;  // collection masks are 64-bit

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 32);
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 32);
    if (x != y) return false;
  }
  return true;
}

// ADT's reserved words plus the clause words of this grammar that would otherwise read as
// a collection name (JOIN, MATCH, RELATED, DIGITALTWINS, RELATIONSHIPS, NIN): none can be a
// bare collection or property name (escape as [[name]]). Names after a '.' are never keywords.
constexpr std::array<std::string_view, 43> kReserved = {
    "ALL",          "AND",           "AS",         "ASC",          "AVG",
    "BY",           "COUNT",         "DESC",       "DEVICES_JOBS", "DEVICES_MODULES",
    "DEVICES",      "ENDS_WITH",     "FALSE",      "FROM",         "GROUP",
    "IN",           "IS_BOOL",       "IS_DEFINED", "IS_NULL",      "IS_NUMBER",
    "IS_OBJECT",    "IS_PRIMITIVE",  "IS_STRING",  "MAX",          "MIN",
    "NOT",          "NOT_IN",        "NULL",       "OR",           "ORDER",
    "SELECT",       "STARTS_WITH",   "SUM",        "TOP",          "TRUE",
    "WHERE",        "IS_OF_MODEL",   "JOIN",       "MATCH",        "RELATED",
    "DIGITALTWINS", "RELATIONSHIPS", "NIN",
};

bool IsReserved(std::string_view word) {
  return std::any_of(kReserved.begin(), kReserved.end(),
                     [&](std::string_view r) { return IEquals(word, r); });
}

struct FuncInfo {
  std::string_view name;
  Func func;
  int arity;  // -1: IS_OF_MODEL's own rules
};

constexpr std::array<FuncInfo, 14> kFuncs = {{
    {"STARTSWITH", Func::kStartsWith, 2},
    {"STARTS_WITH", Func::kStartsWith, 2},
    {"ENDSWITH", Func::kEndsWith, 2},
    {"ENDS_WITH", Func::kEndsWith, 2},
    {"CONTAINS", Func::kContains, 2},
    {"ARRAY_CONTAINS", Func::kArrayContains, 2},
    {"IS_OF_MODEL", Func::kIsOfModel, -1},
    {"IS_DEFINED", Func::kIsDefined, 1},
    {"IS_NULL", Func::kIsNull, 1},
    {"IS_BOOL", Func::kIsBool, 1},
    {"IS_NUMBER", Func::kIsNumber, 1},
    {"IS_STRING", Func::kIsString, 1},
    {"IS_OBJECT", Func::kIsObject, 1},
    {"IS_PRIMITIVE", Func::kIsPrimitive, 1},
}};

// History aggregates: NAME(path, 'window'). COUNT is SELECT COUNT(), so the count is COUNT_OF.
struct AggInfo {
  std::string_view name;
  HistAgg agg;
};

constexpr std::array<AggInfo, 9> kAggs = {{
    {"MEAN", HistAgg::kMean},
    {"MIN", HistAgg::kMin},
    {"MAX", HistAgg::kMax},
    {"SUM", HistAgg::kSum},
    {"COUNT_OF", HistAgg::kCount},
    {"LAST", HistAgg::kLast},
    {"P50", HistAgg::kP50},
    {"P95", HistAgg::kP95},
    {"P99", HistAgg::kP99},
}};

const AggInfo* FindAgg(std::string_view name) {
  for (const auto& a : kAggs) {
    if (IEquals(name, a.name)) return &a;
  }
  return nullptr;
}

constexpr std::int64_t kNsPerDay = std::int64_t{86'400} * 1'000'000'000;
constexpr std::int64_t kMaxWindowDays = 366;

// Words that are functions elsewhere (Cosmos DB SQL, ADT's aggregate list) but not supported.
constexpr std::array<std::string_view, 12> kUnsupportedFuncs = {
    "AVG",    "SUM",      "MIN",       "MAX",    "LOWER", "UPPER",
    "LENGTH", "IS_ARRAY", "SUBSTRING", "CONCAT", "ABS",   "ROUND",
};

// A path as written (before names are resolved to collections).
struct RawPath {
  std::vector<std::string> segments;
  bool first_quoted = false;
  Pos pos;
};

struct RawItem {
  RawPath path;
  std::string alias;
  Pos pos;
};

class Parser {
 public:
  Parser(std::vector<Token> tokens, std::string_view text) : t_(std::move(tokens)) {
    q_.text = std::string(text);
  }

  core::Result<BoundQuery> Run() {
    core::Status st = ParseQuery();
    if (!st.ok()) return st;
    st = Bind();
    if (!st.ok()) return st;
    return std::move(q_);
  }

 private:
  // ---- token helpers ----

  const Token& Cur() const { return t_[p_]; }
  const Token& PeekTok(std::size_t ahead = 1) const {
    return t_[std::min(p_ + ahead, t_.size() - 1)];
  }
  bool At(TokenKind k) const { return Cur().kind == k; }
  static bool IsKw(const Token& t, std::string_view kw) {
    return t.kind == TokenKind::kIdent && IEquals(t.text, kw);
  }
  bool AtKw(std::string_view kw) const { return IsKw(Cur(), kw); }
  void Next() {
    if (p_ + 1 < t_.size()) ++p_;
  }
  bool AcceptKw(std::string_view kw) {
    if (!AtKw(kw)) return false;
    Next();
    return true;
  }
  bool Accept(TokenKind k) {
    if (!At(k)) return false;
    Next();
    return true;
  }

  static core::Status Err(const char* code, const Pos& pos, const std::string& what) {
    return core::Status(code, FormatPos(pos) + ": " + what);
  }
  core::Status Expected(const std::string& what) const {
    return Err("QUERY_SYNTAX", Cur().pos,
               fmt::format("expected {}, found {}", what, Describe(Cur())));
  }
  core::Status Unsupported(const Pos& pos, const std::string& what) const {
    return Err("QUERY_UNSUPPORTED", pos, what);
  }
  core::Status Invalid(const Pos& pos, const std::string& what) const {
    return Err("QUERY_INVALID", pos, what);
  }

  // "expected X, found keyword 'Y'", with a hint to escape Y when it could be a name.
  core::Status FoundKeyword(const std::string& what) const {
    static constexpr std::array<std::string_view, 12> kClause = {
        "SELECT", "FROM",  "WHERE",   "AND", "OR", "NOT",
        "JOIN",   "MATCH", "RELATED", "AS",  "IN", "NIN"};
    bool clause = std::any_of(kClause.begin(), kClause.end(),
                              [&](std::string_view k) { return IEquals(Cur().text, k); });
    std::string msg = fmt::format("expected {}, found keyword '{}'", what, Cur().text);
    if (!clause) msg += fmt::format(" (escape a name that is a keyword as [[{}]])", Cur().text);
    return Err("QUERY_SYNTAX", Cur().pos, msg);
  }

  core::Status ExpectTok(TokenKind k, const char* what) {
    if (!At(k)) return Expected(what);
    Next();
    return {};
  }
  core::Status ExpectKw(std::string_view kw) {
    if (!AtKw(kw)) return Expected(std::string(kw));
    Next();
    return {};
  }

  // A bare name: an identifier that is not a keyword, or an escaped [[name]].
  bool AtName() const {
    return At(TokenKind::kQuotedIdent) || (At(TokenKind::kIdent) && !IsReserved(Cur().text));
  }
  core::Status ExpectName(const char* what, std::string* out, Pos* pos = nullptr) {
    if (!AtName()) {
      if (At(TokenKind::kIdent)) return FoundKeyword(what);
      return Expected(what);
    }
    if (pos) *pos = Cur().pos;
    *out = Cur().text;
    Next();
    return {};
  }

  // ---- grammar ----

  core::Status ParseQuery() {
    if (!AtKw("SELECT")) return Expected("SELECT");
    Next();
    if (AtKw("DISTINCT")) return Unsupported(Cur().pos, "SELECT DISTINCT is not supported");
    if (AtKw("TOP")) {
      Next();
      if (auto st = ExpectTok(TokenKind::kLParen, "'(' after TOP"); !st.ok()) return st;
      if (!At(TokenKind::kNumber)) return Expected("a number of rows in TOP(...)");
      if (!Cur().number.is_int64()) {
        return Invalid(Cur().pos, fmt::format("TOP needs a whole number, found {}", Cur().text));
      }
      std::int64_t n = Cur().number.as_int64();
      if (n <= 0) return Invalid(Cur().pos, "TOP needs a number greater than 0");
      q_.top = n;
      Next();
      if (auto st = ExpectTok(TokenKind::kRParen, "')' after the TOP count"); !st.ok()) return st;
    }
    if (q_.top && AtKw("FROM")) {
      select_star_ = true;  // SELECT TOP(n) FROM ... means every column
    } else {
      if (auto st = ParseSelectList(); !st.ok()) return st;
    }
    if (!AtKw("FROM")) return Expected(raw_items_.empty() ? "FROM" : "',' or FROM");
    Next();
    if (auto st = ParseFrom(); !st.ok()) return st;
    if (AtKw("WHERE")) {
      Next();
      auto e = ParseOr();
      if (!e.ok()) return e.status();
      q_.where = std::move(*e);
    }
    if (AtKw("ORDER") || AtKw("GROUP")) {
      return Unsupported(Cur().pos, fmt::format("{} BY is not supported", Cur().text));
    }
    if (AtKw("LIMIT") || AtKw("OFFSET") || AtKw("HAVING")) {
      return Unsupported(Cur().pos,
                         fmt::format("{} is not supported; use TOP(n) and paging", Cur().text));
    }
    if (!At(TokenKind::kEnd)) {
      if (AtKw("JOIN") || AtKw("MATCH")) {
        return Err("QUERY_SYNTAX", Cur().pos, fmt::format("{} must come before WHERE", Cur().text));
      }
      return Expected(q_.where ? "AND, OR or end of query" : "WHERE or end of query");
    }
    return {};
  }

  core::Status ParseSelectList() {
    if (Accept(TokenKind::kStar)) {
      select_star_ = true;
      if (At(TokenKind::kComma)) {
        return Invalid(Cur().pos, "SELECT * cannot be combined with other projections");
      }
      return {};
    }
    for (;;) {
      Pos item_pos = Cur().pos;
      if (AtKw("COUNT") && PeekTok().kind == TokenKind::kLParen) {
        Next();
        Next();
        if (auto st = ExpectTok(TokenKind::kRParen, "')': COUNT() takes no arguments"); !st.ok()) {
          return st;
        }
        if (!raw_items_.empty() || count_) {
          return Invalid(item_pos, "COUNT() cannot be combined with other projections");
        }
        count_ = true;
        count_pos_ = item_pos;
        if (AcceptKw("AS")) {
          if (auto st = ExpectName("a column name after AS", &q_.count_key); !st.ok()) return st;
        }
      } else if (At(TokenKind::kIdent) && PeekTok().kind == TokenKind::kLParen) {
        if (const AggInfo* agg = FindAgg(Cur().text)) {
          return Unsupported(item_pos,
                             fmt::format("{}(...) is a history aggregate; it is not supported in "
                                         "SELECT, only in WHERE conditions such as "
                                         "WHERE {}(T.temperature, '5m') > 20",
                                         agg->name, agg->name));
        }
        if (IsUnsupportedFunc(Cur().text)) {
          return Unsupported(item_pos, fmt::format("{}() is not supported", Cur().text));
        }
        return Invalid(item_pos, fmt::format("'{}(' cannot be projected; SELECT takes *, "
                                             "collections, properties or COUNT()",
                                             Cur().text));
      } else {
        if (count_) return Invalid(item_pos, "COUNT() cannot be combined with other projections");
        RawItem item;
        item.pos = item_pos;
        if (auto st =
                ParsePath("a projection (*, a collection, a property or COUNT())", &item.path);
            !st.ok()) {
          return st;
        }
        if (AcceptKw("AS")) {
          if (auto st = ExpectName("a column name after AS", &item.alias); !st.ok()) return st;
        }
        raw_items_.push_back(std::move(item));
      }
      if (At(TokenKind::kStar)) {
        return Invalid(Cur().pos, "SELECT * cannot be combined with other projections");
      }
      if (!Accept(TokenKind::kComma)) return {};
    }
  }

  static bool IsUnsupportedFunc(std::string_view name) {
    return std::any_of(kUnsupportedFuncs.begin(), kUnsupportedFuncs.end(),
                       [&](std::string_view f) { return IEquals(name, f); });
  }

  // name {'.' anyname}
  core::Status ParsePath(const char* what, RawPath* out) {
    out->pos = Cur().pos;
    out->first_quoted = At(TokenKind::kQuotedIdent);
    std::string first;
    if (auto st = ExpectName(what, &first); !st.ok()) return st;
    out->segments.push_back(std::move(first));
    while (At(TokenKind::kDot)) {
      Next();
      if (!At(TokenKind::kIdent) && !At(TokenKind::kQuotedIdent)) {
        return Expected("a property name after '.'");
      }
      out->segments.push_back(Cur().text);
      Next();
    }
    return {};
  }

  int AddCollection(std::string name, bool is_twin, const Pos& pos) {
    q_.colls.push_back(Collection{std::move(name), is_twin, pos});
    return static_cast<int>(q_.colls.size()) - 1;
  }

  int FindCollection(std::string_view name) const {
    if (name.empty()) return -1;
    for (std::size_t i = 0; i < q_.colls.size(); ++i) {
      if (q_.colls[i].name == name) return static_cast<int>(i);
    }
    return -1;
  }

  core::Status DefineCollection(const std::string& name, bool is_twin, const Pos& pos, int* out) {
    if (FindCollection(name) >= 0) {
      return Invalid(pos, fmt::format("collection name '{}' is already used", name));
    }
    if (q_.colls.size() >= kMaxCollections) return Unsupported(pos, "too many collections");
    *out = AddCollection(name, is_twin, pos);
    return {};
  }

  core::Status ParseFrom() {
    if (At(TokenKind::kLParen)) {
      return Unsupported(Cur().pos, "subqueries in FROM are not supported");
    }
    bool twins = AtKw("DIGITALTWINS");
    if (!twins && !AtKw("RELATIONSHIPS")) return Expected("DIGITALTWINS or RELATIONSHIPS");
    Pos from_pos = Cur().pos;
    Next();
    q_.from_relationships = !twins;
    std::string alias;
    Pos alias_pos = Cur().pos;
    if (AtName()) {
      alias = Cur().text;
      Next();
    } else if (At(TokenKind::kIdent) && !AtKw("WHERE") && !AtKw("JOIN") && !AtKw("MATCH") &&
               !AtKw("ORDER") && !AtKw("GROUP")) {
      return ExpectName("a collection name, JOIN, MATCH or WHERE", &alias);
    }
    from_alias_pos_ = alias_pos;
    if (!alias.empty()) {
      AddCollection(alias, twins, alias_pos);
    }
    bool seen_match = false;
    int joins = 0;
    while (AtKw("JOIN") || AtKw("MATCH")) {
      Pos kw_pos = Cur().pos;
      if (q_.from_relationships) {
        return Unsupported(
            kw_pos, fmt::format("FROM RELATIONSHIPS cannot be combined with {}", Cur().text));
      }
      if (AtKw("MATCH")) {
        if (seen_match) return Unsupported(kw_pos, "only one MATCH clause is supported");
        if (joins > 0) return Unsupported(kw_pos, "MATCH cannot be combined with JOIN");
        seen_match = true;
        Next();
        if (auto st = ParseMatch(alias); !st.ok()) return st;
      } else {
        if (seen_match) return Unsupported(kw_pos, "JOIN cannot be combined with MATCH");
        if (++joins > kMaxJoins) {
          return Unsupported(kw_pos, fmt::format("at most {} JOINs are supported", kMaxJoins));
        }
        Next();
        if (auto st = ParseJoin(); !st.ok()) return st;
      }
    }
    q_.has_match = seen_match;
    q_.has_join = joins > 0;
    if (q_.colls.empty()) AddCollection("", twins, from_pos);  // anonymous single collection
    return {};
  }

  // JOIN target RELATED source.relName [relAlias]
  core::Status ParseJoin() {
    std::string target;
    Pos target_pos;
    if (auto st = ExpectName("the joined collection's name", &target, &target_pos); !st.ok()) {
      return st;
    }
    if (auto st = ExpectKw("RELATED"); !st.ok()) return st;
    std::string source;
    Pos source_pos;
    if (auto st = ExpectName("a twin collection name after RELATED", &source, &source_pos);
        !st.ok()) {
      return st;
    }
    if (auto st = ExpectTok(TokenKind::kDot, "'.' and a relationship name"); !st.ok()) return st;
    if (!At(TokenKind::kIdent) && !At(TokenKind::kQuotedIdent)) {
      return Expected("a relationship name");
    }
    std::string rel_name = Cur().text;
    Next();
    int src = FindCollection(source);
    if (src < 0) {
      return Invalid(source_pos, fmt::format("unknown collection '{}' in RELATED", source));
    }
    if (!q_.colls[src].is_twin) {
      return Invalid(source_pos,
                     fmt::format("'{}' is a relationship collection; RELATED needs twins", source));
    }
    Edge e;
    e.pos = source_pos;
    e.left = src;
    e.dir = Edge::Dir::kLeftToRight;
    e.names.push_back(std::move(rel_name));
    if (auto st = DefineCollection(target, true, target_pos, &e.right); !st.ok()) return st;
    if (AtName()) {
      Pos rel_pos = Cur().pos;
      std::string rel_alias = Cur().text;
      Next();
      if (auto st = DefineCollection(rel_alias, false, rel_pos, &e.rel); !st.ok()) return st;
    }
    q_.edges.push_back(std::move(e));
    return {};
  }

  core::Status ParseMatchNode(int* out) {
    if (auto st = ExpectTok(TokenKind::kLParen, "'(' starting a twin pattern"); !st.ok()) {
      return st;
    }
    if (At(TokenKind::kRParen)) {
      if (q_.colls.size() >= kMaxCollections) return Unsupported(Cur().pos, "too many collections");
      *out = AddCollection("", true, Cur().pos);
      Next();
      return {};
    }
    std::string name;
    Pos pos;
    if (auto st = ExpectName("a twin name or ')'", &name, &pos); !st.ok()) return st;
    int existing = FindCollection(name);
    if (existing >= 0) {
      if (!q_.colls[existing].is_twin) {
        return Invalid(pos, fmt::format("'{}' already names a relationship", name));
      }
      *out = existing;
    } else {
      if (q_.colls.size() >= kMaxCollections) return Unsupported(pos, "too many collections");
      *out = AddCollection(name, true, pos);
    }
    match_nodes_.insert(*out);
    return ExpectTok(TokenKind::kRParen, "')' closing the twin pattern");
  }

  core::Status ParseMatch(const std::string& from_alias) {
    int node = -1;
    if (auto st = ParseMatchNode(&node); !st.ok()) return st;
    int segments = 0;
    while (At(TokenKind::kMinus) || At(TokenKind::kLt)) {
      Pos seg_pos = Cur().pos;
      if (++segments > kMaxMatchSegments) {
        return Unsupported(seg_pos, fmt::format("at most {} relationship conditions are "
                                                "supported in MATCH",
                                                kMaxMatchSegments));
      }
      Edge e;
      e.pos = seg_pos;
      e.left = node;
      bool points_left = false;
      if (Accept(TokenKind::kLt)) {
        points_left = true;
        if (auto st = ExpectTok(TokenKind::kMinus, "'-' after '<'"); !st.ok()) return st;
      } else {
        Next();  // '-'
      }
      if (auto st = ExpectTok(TokenKind::kLBracket, "'[' starting a relationship condition");
          !st.ok()) {
        return st;
      }
      if (auto st = ParseRelCondition(&e); !st.ok()) return st;
      if (auto st = ExpectTok(TokenKind::kRBracket, "']' closing the relationship condition");
          !st.ok()) {
        return st;
      }
      if (auto st = ExpectTok(TokenKind::kMinus, "'-' after ']'"); !st.ok()) return st;
      if (At(TokenKind::kGt)) {
        if (points_left) {
          return Err("QUERY_SYNTAX", Cur().pos,
                     "a relationship condition cannot point both ways; chain two conditions");
        }
        Next();
        e.dir = Edge::Dir::kLeftToRight;
      } else {
        e.dir = points_left ? Edge::Dir::kRightToLeft : Edge::Dir::kBoth;
      }
      if (auto st = ParseMatchNode(&e.right); !st.ok()) return st;
      node = e.right;
      q_.edges.push_back(std::move(e));
    }
    if (!from_alias.empty() && !match_nodes_.contains(0)) {
      return Invalid(from_alias_pos_, fmt::format("collection '{}' is not part of the MATCH "
                                                  "pattern",
                                                  from_alias));
    }
    return {};
  }

  // [variable] [':' name {'|' name}] ['*' hops]   (also: name '|' name ... without ':')
  core::Status ParseRelCondition(Edge* e) {
    std::string variable;
    Pos var_pos = Cur().pos;
    if (AtName()) {
      TokenKind after = PeekTok().kind;
      if (after == TokenKind::kPipe || after == TokenKind::kStar) {
        // "[has|includes*..3]": names written without the leading ':'.
        if (auto st = ParseRelNames(e); !st.ok()) return st;
      } else {
        variable = Cur().text;
        Next();
      }
    } else if (At(TokenKind::kIdent)) {
      return ExpectName("a relationship variable, ':', '*' or ']'", &variable);
    }
    if (Accept(TokenKind::kColon)) {
      if (!e->names.empty()) return Expected("']'");
      if (auto st = ParseRelNames(e); !st.ok()) return st;
    }
    bool hops_given = false;
    Pos hops_pos = Cur().pos;
    if (Accept(TokenKind::kStar)) {
      hops_given = true;
      std::optional<std::int64_t> lo, hi;
      if (At(TokenKind::kNumber)) {
        if (!Cur().number.is_int64()) return Expected("a whole number of hops");
        lo = Cur().number.as_int64();
        Next();
      }
      if (Accept(TokenKind::kDotDot)) {
        if (!At(TokenKind::kNumber) || !Cur().number.is_int64()) {
          return Expected("the largest number of hops after '..'");
        }
        hi = Cur().number.as_int64();
        Next();
        // ADT: in "*a..b" the lower limit is excluded and the upper one included.
        e->min_hops = static_cast<int>(std::min<std::int64_t>(lo.value_or(0), 1000)) + 1;
        if (*hi > kMaxHops) {
          return Unsupported(hops_pos, fmt::format("at most {} hops are supported", kMaxHops));
        }
        e->max_hops = static_cast<int>(*hi);
      } else {
        if (!lo) return Expected("a number of hops after '*'");
        if (*lo > kMaxHops) {
          return Unsupported(hops_pos, fmt::format("at most {} hops are supported", kMaxHops));
        }
        e->min_hops = e->max_hops = static_cast<int>(*lo);
      }
      if (e->max_hops < 1 || e->min_hops > e->max_hops) {
        return Invalid(hops_pos, "the hop range is empty (in '*a..b' a is excluded, b included)");
      }
    }
    if (!variable.empty()) {
      if (hops_given && !(e->min_hops == 1 && e->max_hops == 1)) {
        return Unsupported(var_pos, "a relationship variable is only supported on a single hop");
      }
      if (auto st = DefineCollection(variable, false, var_pos, &e->rel); !st.ok()) return st;
    }
    e->distinct_targets = e->rel < 0;
    return {};
  }

  core::Status ParseRelNames(Edge* e) {
    for (;;) {
      if (!At(TokenKind::kIdent) && !At(TokenKind::kQuotedIdent)) {
        return Expected("a relationship name");
      }
      e->names.push_back(Cur().text);
      Next();
      if (!Accept(TokenKind::kPipe)) return {};
    }
  }

  // ---- WHERE ----

  using ExprResult = core::Result<std::unique_ptr<Expr>>;

  static std::unique_ptr<Expr> MakeBinary(Expr::Kind kind, std::unique_ptr<Expr> a,
                                          std::unique_ptr<Expr> b) {
    // Flatten chains so a long AND list is one node (the planner reads its children).
    if (a->kind == kind) {
      a->kids.push_back(std::move(b));
      return a;
    }
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = a->pos;
    e->kids.push_back(std::move(a));
    e->kids.push_back(std::move(b));
    return e;
  }

  ExprResult ParseOr() {
    auto left = ParseAnd();
    if (!left.ok()) return left;
    std::unique_ptr<Expr> e = std::move(*left);
    while (AcceptKw("OR")) {
      auto right = ParseAnd();
      if (!right.ok()) return right;
      e = MakeBinary(Expr::Kind::kOr, std::move(e), std::move(*right));
    }
    return e;
  }

  ExprResult ParseAnd() {
    auto left = ParseNot();
    if (!left.ok()) return left;
    std::unique_ptr<Expr> e = std::move(*left);
    while (AcceptKw("AND")) {
      auto right = ParseNot();
      if (!right.ok()) return right;
      e = MakeBinary(Expr::Kind::kAnd, std::move(e), std::move(*right));
    }
    return e;
  }

  ExprResult ParseNot() {
    if (AtKw("NOT")) {
      Pos pos = Cur().pos;
      Next();
      auto inner = ParseNot();
      if (!inner.ok()) return inner;
      auto e = std::make_unique<Expr>();
      e->kind = Expr::Kind::kNot;
      e->pos = pos;
      e->kids.push_back(std::move(*inner));
      return e;
    }
    return ParsePrimary();
  }

  bool AtLiteral() const {
    return At(TokenKind::kString) || At(TokenKind::kNumber) ||
           (At(TokenKind::kMinus) && PeekTok().kind == TokenKind::kNumber) || AtKw("TRUE") ||
           AtKw("FALSE") || AtKw("NULL");
  }

  core::Status ParseLiteral(json::value* out) {
    if (At(TokenKind::kString)) {
      *out = json::string(Cur().text);
    } else if (At(TokenKind::kNumber)) {
      *out = Cur().number;
    } else if (At(TokenKind::kMinus) && PeekTok().kind == TokenKind::kNumber) {
      Next();
      const json::value& n = Cur().number;
      if (n.is_int64()) {
        *out = -n.as_int64();
      } else {
        *out = -n.as_double();
      }
    } else if (AtKw("TRUE")) {
      *out = true;
    } else if (AtKw("FALSE")) {
      *out = false;
    } else if (AtKw("NULL")) {
      *out = nullptr;
    } else {
      return Expected("a value (a string, number, true, false or null)");
    }
    Next();
    return {};
  }

  bool AtAggregate() const {
    return At(TokenKind::kIdent) && PeekTok().kind == TokenKind::kLParen &&
           FindAgg(Cur().text) != nullptr;
  }

  core::Status ParseOperand(Operand* out, const char* what) {
    out->pos = Cur().pos;
    if (AtAggregate()) return ParseAggregate(out);
    if (AtLiteral()) {
      out->is_literal = true;
      return ParseLiteral(&out->literal);
    }
    if (!AtName()) {
      if (At(TokenKind::kIdent)) return FoundKeyword(what);
      return Expected(what);
    }
    RawPath path;
    if (auto st = ParsePath(what, &path); !st.ok()) return st;
    out->path.clear();
    out->coll = -2 - static_cast<int>(pending_.size());  // resolved in Bind()
    pending_.push_back(std::move(path));
    return {};
  }

  // NAME '(' path ',' 'window' ')': a history aggregate operand.
  core::Status ParseAggregate(Operand* out) {
    const AggInfo& info = *FindAgg(Cur().text);
    out->pos = Cur().pos;
    Next();  // name
    Next();  // '('
    const std::string arity = fmt::format(
        "{} takes 2 arguments: a property path and a window such as '5m' (e.g. {}(T.temperature, "
        "'1h'))",
        info.name, info.name);
    if (At(TokenKind::kRParen)) return Invalid(Cur().pos, arity);
    if (AtLiteral() || AtAggregate()) {
      return Invalid(Cur().pos, fmt::format("{}'s first argument must be a property path such as "
                                            "T.temperature or T.component.property",
                                            info.name));
    }
    if (!AtName()) {
      if (At(TokenKind::kIdent)) return FoundKeyword("a property path");
      return Expected("a property path");
    }
    RawPath path;
    if (auto st = ParsePath("a property path", &path); !st.ok()) return st;
    if (!Accept(TokenKind::kComma)) {
      if (At(TokenKind::kRParen)) return Invalid(Cur().pos, arity);
      return Expected(fmt::format("',' and a window such as '5m' in {}(...)", info.name));
    }
    if (!At(TokenKind::kString)) {
      if (AtLiteral()) {
        return Invalid(Cur().pos,
                       fmt::format("{}'s window must be a duration string such as '90s', '5m', "
                                   "'1h' or '1d'",
                                   info.name));
      }
      return Expected("a window string such as '5m'");
    }
    const Token& w = Cur();
    std::optional<std::int64_t> window = core::ParseDurationNs(w.text);
    if (!window) {
      return Invalid(w.pos, fmt::format("bad window '{}': expected a duration such as '90s', "
                                        "'5m', '1h', '1d' or '1h30m'",
                                        w.text));
    }
    if (*window <= 0) return Invalid(w.pos, fmt::format("the window '{}' is empty", w.text));
    if (*window > kMaxWindowDays * kNsPerDay) {
      return Unsupported(w.pos, fmt::format("the window '{}' is longer than {} days; longer "
                                            "windows are not supported",
                                            w.text, kMaxWindowDays));
    }
    Next();
    if (At(TokenKind::kComma)) return Invalid(Cur().pos, arity);
    if (auto st = ExpectTok(TokenKind::kRParen, "')' closing the aggregate"); !st.ok()) return st;
    out->agg = info.agg;
    out->window_ns = *window;
    out->hist_slot = q_.history_slots++;
    if (out->hist_slot == 0) q_.first_history_pos = out->pos;
    out->coll = -2 - static_cast<int>(pending_.size());  // resolved in Bind()
    pending_.push_back(std::move(path));
    return {};
  }

  static std::optional<CmpOp> CmpOf(TokenKind k) {
    switch (k) {
      case TokenKind::kEq:
        return CmpOp::kEq;
      case TokenKind::kNe:
        return CmpOp::kNe;
      case TokenKind::kLt:
        return CmpOp::kLt;
      case TokenKind::kLe:
        return CmpOp::kLe;
      case TokenKind::kGt:
        return CmpOp::kGt;
      case TokenKind::kGe:
        return CmpOp::kGe;
      default:
        return std::nullopt;
    }
  }

  ExprResult ParsePrimary() {
    Pos pos = Cur().pos;
    if (Accept(TokenKind::kLParen)) {
      auto inner = ParseOr();
      if (!inner.ok()) return inner;
      if (auto st = ExpectTok(TokenKind::kRParen, "')'"); !st.ok()) return st;
      return inner;
    }
    if (At(TokenKind::kIdent) && PeekTok().kind == TokenKind::kLParen && !AtAggregate()) {
      return ParseFunction();
    }
    if (At(TokenKind::kEnd)) return Expected("a condition");
    auto e = std::make_unique<Expr>();
    e->pos = pos;
    Operand left;
    if (auto st = ParseOperand(&left, "a condition"); !st.ok()) return st;
    if (auto op = CmpOf(Cur().kind)) {
      Next();
      Operand right;
      if (auto st = ParseOperand(&right, "a value to compare with"); !st.ok()) return st;
      e->kind = Expr::Kind::kCompare;
      e->op = *op;
      e->args.push_back(std::move(left));
      e->args.push_back(std::move(right));
      return e;
    }
    bool negated = false;
    if (AtKw("NOT") && IsKw(PeekTok(), "IN")) {
      Next();
      negated = true;
    } else if (AtKw("NIN") || AtKw("NOT_IN")) {
      negated = true;
    } else if (!AtKw("IN")) {
      // A bare value is a condition when it is the boolean true.
      e->kind = Expr::Kind::kTruthy;
      e->args.push_back(std::move(left));
      return e;
    }
    Next();
    e->kind = Expr::Kind::kIn;
    e->negated = negated;
    e->args.push_back(std::move(left));
    if (auto st = ExpectTok(TokenKind::kLBracket, "'[' starting the list of values"); !st.ok()) {
      return st;
    }
    if (!At(TokenKind::kRBracket)) {
      for (;;) {
        json::value v;
        if (auto st = ParseLiteral(&v); !st.ok()) return st;
        e->list.push_back(std::move(v));
        if (!Accept(TokenKind::kComma)) break;
      }
    }
    if (auto st = ExpectTok(TokenKind::kRBracket, "',' or ']'"); !st.ok()) return st;
    return e;
  }

  ExprResult ParseFunction() {
    Pos pos = Cur().pos;
    std::string name = Cur().text;
    const FuncInfo* info = nullptr;
    for (const auto& f : kFuncs) {
      if (IEquals(name, f.name)) info = &f;
    }
    if (!info) {
      if (IEquals(name, "AVG")) {
        return Unsupported(pos,
                           "AVG() is not supported; for the mean of a twin's history over a "
                           "recent window write MEAN(T.property, '5m')");
      }
      if (IEquals(name, "COUNT")) {
        return Unsupported(pos,
                           "COUNT() is not supported in WHERE; to count a twin's history "
                           "points over a recent window write COUNT_OF(T.property, '5m')");
      }
      if (IsUnsupportedFunc(name)) {
        return Unsupported(pos, fmt::format("{}() is not supported in WHERE", name));
      }
      return Invalid(pos, fmt::format("unknown function '{}'", name));
    }
    Next();  // name
    Next();  // '('
    auto e = std::make_unique<Expr>();
    e->kind = Expr::Kind::kFunc;
    e->func = info->func;
    e->pos = pos;
    if (info->func == Func::kIsOfModel) {
      if (auto st = ParseIsOfModelArgs(e.get()); !st.ok()) return st;
    } else {
      for (int i = 0; i < info->arity; ++i) {
        if (i > 0) {
          if (!Accept(TokenKind::kComma)) {
            return Invalid(Cur().pos, fmt::format("{} takes {} arguments", name, info->arity));
          }
        }
        Operand a;
        if (auto st = ParseOperand(&a, "an argument"); !st.ok()) return st;
        e->args.push_back(std::move(a));
      }
      if (At(TokenKind::kComma)) {
        return Invalid(Cur().pos, fmt::format("{} takes {} argument{}", name, info->arity,
                                              info->arity == 1 ? "" : "s"));
      }
    }
    if (auto st = ExpectTok(TokenKind::kRParen, "')' closing the function call"); !st.ok()) {
      return st;
    }
    return e;
  }

  // IS_OF_MODEL([collection,] 'dtmi' [, exact])
  core::Status ParseIsOfModelArgs(Expr* e) {
    if (!At(TokenKind::kString)) {
      Operand coll;
      if (auto st = ParseOperand(&coll, "a twin collection or a model id"); !st.ok()) return st;
      if (coll.is_literal) return Invalid(coll.pos, "IS_OF_MODEL needs a model id string");
      e->args.push_back(std::move(coll));
      if (auto st = ExpectTok(TokenKind::kComma, "',' and a model id"); !st.ok()) return st;
    }
    if (!At(TokenKind::kString)) return Expected("a model id string");
    e->model = Cur().text;
    Next();
    if (Accept(TokenKind::kComma)) {
      if (!AtKw("exact")) return Expected("exact");
      e->exact = true;
      Next();
    }
    e->model_slot = q_.model_slots++;
    return {};
  }

  // ---- binding ----

  // Resolves a written path: "<collection>.<path>", or "<path>" of the only collection.
  core::Status ResolvePath(const RawPath& raw, Operand* out) {
    out->pos = raw.pos;
    int c = FindCollection(raw.segments[0]);
    if (c >= 0) {
      out->coll = c;
      out->path.assign(raw.segments.begin() + 1, raw.segments.end());
      return {};
    }
    if (q_.colls.size() == 1 && !q_.has_match && !q_.has_join) {
      out->coll = 0;
      out->path = raw.segments;
      return {};
    }
    return Invalid(raw.pos,
                   fmt::format("unknown collection '{}'{}", raw.segments[0], KnownCollections()));
  }

  std::string KnownCollections() const {
    std::string names;
    for (const auto& c : q_.colls) {
      if (c.name.empty()) continue;
      names += (names.empty() ? "" : ", ") + c.name;
    }
    return names.empty() ? "" : " (known: " + names + ")";
  }

  core::Status BindOperand(Operand* o) {
    if (o->is_literal || o->coll > -2) return {};
    Pos pos = o->pos;
    auto st = ResolvePath(pending_[static_cast<std::size_t>(-2 - o->coll)], o);
    if (o->is_history()) o->pos = pos;  // an aggregate is where its name is
    return st;
  }

  static std::string_view AggWord(HistAgg agg) {
    for (const auto& a : kAggs) {
      if (a.agg == agg) return a.name;
    }
    return "";
  }

  // A history aggregate's own rules: a property of a twin collection, used in a comparison.
  core::Status BindHistory(const Expr& e, Operand* a) {
    std::string_view word = AggWord(a->agg);
    const Collection& c = q_.colls[a->coll];
    if (!c.is_twin) {
      return Invalid(a->pos, fmt::format("{}(...) reads a twin's history; '{}' is a relationship",
                                         word, c.name));
    }
    if (a->path.empty()) {
      return Invalid(a->pos, fmt::format("{}(...) needs a property of '{}', such as {}.temperature",
                                         word, c.name, c.name.empty() ? "T" : c.name));
    }
    a->history_path.clear();
    for (const auto& seg : a->path) {
      if (seg.empty() || seg[0] == '$') {
        return Invalid(a->pos, fmt::format("{}(...) needs a property or telemetry name; '{}' has "
                                           "no history",
                                           word, seg));
      }
      if (!a->history_path.empty()) a->history_path += '/';
      a->history_path += seg;
    }
    if (e.kind != Expr::Kind::kCompare && e.kind != Expr::Kind::kIn) {
      return Invalid(a->pos, fmt::format("{}(...) is a number from the twin's history; use it in a "
                                         "comparison such as {}(T.temperature, '5m') > 20",
                                         word, word));
    }
    auto is_number = [](const json::value& v) { return v.is_number(); };
    if (e.kind == Expr::Kind::kCompare) {
      const Operand& other = &e.args[0] == a ? e.args[1] : e.args[0];
      if (other.is_literal && !is_number(other.literal)) {
        return Invalid(other.pos, fmt::format("{}(...) is a number; compare it with a number, "
                                              "found {}",
                                              word, json::serialize(other.literal)));
      }
    } else if (!std::all_of(e.list.begin(), e.list.end(), is_number)) {
      return Invalid(a->pos, fmt::format("{}(...) is a number; the list must hold numbers", word));
    }
    return {};
  }

  core::Status BindExpr(Expr* e) {
    for (auto& k : e->kids) {
      if (auto st = BindExpr(k.get()); !st.ok()) return st;
      e->coll_mask |= k->coll_mask;
      e->has_history = e->has_history || k->has_history;
    }
    // Cheap conditions first: AND and OR are order-independent (also in three-valued logic),
    // and their evaluation stops early, so history aggregates often are never read.
    if (e->kind == Expr::Kind::kAnd || e->kind == Expr::Kind::kOr) {
      std::stable_partition(e->kids.begin(), e->kids.end(),
                            [](const std::unique_ptr<Expr>& k) { return !k->has_history; });
    }
    for (auto& a : e->args) {
      if (auto st = BindOperand(&a); !st.ok()) return st;
      if (!a.is_literal) e->coll_mask |= std::uint64_t{1} << a.coll;
      if (a.is_history()) {
        if (auto st = BindHistory(*e, &a); !st.ok()) return st;
        e->has_history = true;
      }
    }
    switch (e->kind) {
      case Expr::Kind::kCompare:
      case Expr::Kind::kIn:
        for (const auto& a : e->args) {
          if (!a.is_literal && a.path.empty()) {
            return Invalid(a.pos, fmt::format("'{}' is a whole collection; compare one of its "
                                              "properties",
                                              q_.colls[a.coll].name));
          }
        }
        break;
      case Expr::Kind::kFunc:
        if (e->func == Func::kIsOfModel) return BindIsOfModel(e);
        break;
      default:
        break;
    }
    return {};
  }

  core::Status BindIsOfModel(Expr* e) {
    if (q_.from_relationships) {
      return Invalid(e->pos, "IS_OF_MODEL applies to twins, not relationships");
    }
    if (e->args.empty()) {
      int twin = -1, twins = 0;
      for (std::size_t i = 0; i < q_.colls.size(); ++i) {
        if (q_.colls[i].is_twin) {
          ++twins;
          twin = static_cast<int>(i);
        }
      }
      if (twins != 1) {
        return Invalid(e->pos,
                       "IS_OF_MODEL needs a twin collection as its first argument when "
                       "the query has several collections");
      }
      Operand o;
      o.coll = twin;
      o.pos = e->pos;
      e->args.push_back(std::move(o));
      e->coll_mask |= std::uint64_t{1} << twin;
      return {};
    }
    const Operand& a = e->args[0];
    if (!a.path.empty()) {
      return Invalid(a.pos, "IS_OF_MODEL's first argument must be a twin collection name");
    }
    if (!q_.colls[a.coll].is_twin) {
      return Invalid(a.pos, fmt::format("'{}' is a relationship; IS_OF_MODEL applies to twins",
                                        q_.colls[a.coll].name));
    }
    return {};
  }

  core::Status Bind() {
    q_.select_star = select_star_;
    q_.count = count_;
    if (q_.count && q_.top) return Invalid(count_pos_, "TOP cannot be combined with COUNT()");
    if (q_.select_star && q_.has_join) {
      return Invalid(t_[0].pos, "SELECT * is not valid with JOIN; select the collections by name");
    }
    std::set<std::string> keys;
    for (auto& raw : raw_items_) {
      SelectItem item;
      Operand o;
      if (auto st = ResolvePath(raw.path, &o); !st.ok()) return st;
      if (o.path.empty()) {
        item.kind = SelectItem::Kind::kCollection;
        item.key = raw.alias.empty() ? q_.colls[o.coll].name : raw.alias;
      } else {
        item.kind = SelectItem::Kind::kProperty;
        item.key = raw.alias.empty() ? o.path.back() : raw.alias;
      }
      item.ref = std::move(o);
      if (!keys.insert(item.key).second) {
        return Invalid(raw.pos, fmt::format("two projections are both named '{}'; rename one "
                                            "with AS",
                                            item.key));
      }
      q_.items.push_back(std::move(item));
    }
    if (q_.where) {
      if (auto st = BindExpr(q_.where.get()); !st.ok()) return st;
    }
    return {};
  }

  std::vector<Token> t_;
  std::size_t p_ = 0;
  BoundQuery q_;
  bool select_star_ = false;
  bool count_ = false;
  Pos count_pos_;
  Pos from_alias_pos_;
  std::vector<RawItem> raw_items_;
  std::set<int> match_nodes_;
  std::vector<RawPath> pending_;  // WHERE paths awaiting Bind(), by -2 - Operand::coll
};

}  // namespace

core::Result<BoundQuery> Parse(std::string_view text) {
  auto tokens = Lex(text);
  if (!tokens.ok()) return tokens.status();
  return Parser(std::move(*tokens), text).Run();
}

}  // namespace doppel::twin::query::internal
