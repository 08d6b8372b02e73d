#include "twin/query/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <unordered_set>
#include <utility>

namespace doppel::twin::query::internal {
namespace {

std::vector<const Expr*> Conjuncts(const Expr* where) {
  std::vector<const Expr*> out;
  if (!where) return out;
  if (where->kind == Expr::Kind::kAnd) {
    for (const auto& k : where->kids) out.push_back(k.get());
  } else {
    out.push_back(where);
  }
  return out;
}

bool IsPath(const Operand& o, int coll, std::initializer_list<std::string_view> path) {
  if (o.is_literal || o.is_history() || o.coll != coll || o.path.size() != path.size()) {
    return false;
  }
  std::size_t i = 0;
  for (std::string_view seg : path) {
    if (o.path[i++] != seg) return false;
  }
  return true;
}

// For "<path> = literal" (either side) returns the literal, else nullptr.
const json::value* EqLiteral(const Expr& e, const std::function<bool(const Operand&)>& is_key) {
  if (e.kind != Expr::Kind::kCompare || e.op != CmpOp::kEq) return nullptr;
  if (is_key(e.args[0]) && e.args[1].is_literal) return &e.args[1].literal;
  if (is_key(e.args[1]) && e.args[0].is_literal) return &e.args[0].literal;
  return nullptr;
}

void AppendUnique(std::vector<std::string>* out, std::unordered_set<std::string>* seen,
                  std::string_view s) {
  if (seen->emplace(s).second) out->emplace_back(s);
}

// The only values a string-valued key can take for `e` to be true, when `e` says so exactly
// (key = 'x', key IN [...], and ORs of those); nullopt when `e` does not bound the key.
std::optional<std::vector<std::string>> ExtractKeyValues(
    const Expr& e, const std::function<bool(const Operand&)>& is_key) {
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  switch (e.kind) {
    case Expr::Kind::kCompare: {
      const json::value* v = EqLiteral(e, is_key);
      if (!v) return std::nullopt;
      if (v->is_string()) AppendUnique(&out, &seen, v->get_string());
      return out;  // a non-string literal matches nothing
    }
    case Expr::Kind::kIn:
      if (e.negated || !is_key(e.args[0])) return std::nullopt;
      for (const auto& v : e.list) {
        if (v.is_string()) AppendUnique(&out, &seen, v.get_string());
      }
      return out;
    case Expr::Kind::kOr:
      for (const auto& k : e.kids) {
        auto sub = ExtractKeyValues(*k, is_key);
        if (!sub) return std::nullopt;
        for (const auto& s : *sub) AppendUnique(&out, &seen, s);
      }
      return out;
    case Expr::Kind::kAnd:
      for (const auto& k : e.kids) {
        if (auto sub = ExtractKeyValues(*k, is_key)) return sub;
      }
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

std::optional<std::vector<std::string>> ExtractIds(const Expr& e, int coll,
                                                   std::string_view field) {
  return ExtractKeyValues(e, [&](const Operand& o) { return IsPath(o, coll, {field}); });
}

// Every model IS_OF_MODEL `e` accepts (the model itself, and unless exact every model that
// extends it), computed once per plan.
const std::unordered_set<std::string>& ModelSet(const Expr& e, const GraphView& graph, Plan* plan) {
  auto& slot = plan->model_sets[e.model_slot];
  if (slot) return *slot;
  slot.emplace();
  slot->insert(e.model);
  if (!e.exact) {
    auto all = graph.models().List();
    if (all.ok()) {
      for (const auto& info : *all) {
        if (info.resolved && info.resolved->IsA(e.model)) slot->insert(info.id);
      }
    }
  }
  return *slot;
}

// Models a twin of `coll` must have for `e` to be true (IS_OF_MODEL, $metadata.$model = / IN).
std::optional<std::vector<std::string>> ExtractModels(const Expr& e, int coll,
                                                      const GraphView& graph, Plan* plan) {
  if (e.kind == Expr::Kind::kFunc && e.func == Func::kIsOfModel && e.args[0].coll == coll) {
    const auto& set = ModelSet(e, graph, plan);
    return std::vector<std::string>(set.begin(), set.end());
  }
  auto is_model = [&](const Operand& o) { return IsPath(o, coll, {"$metadata", "$model"}); };
  if (e.kind == Expr::Kind::kCompare || e.kind == Expr::Kind::kIn) {
    return ExtractKeyValues(e, is_model);
  }
  if (e.kind == Expr::Kind::kOr) {
    std::vector<std::string> out;
    std::unordered_set<std::string> seen;
    for (const auto& k : e.kids) {
      auto sub = ExtractModels(*k, coll, graph, plan);
      if (!sub) return std::nullopt;
      for (const auto& s : *sub) AppendUnique(&out, &seen, s);
    }
    return out;
  }
  if (e.kind == Expr::Kind::kAnd) {
    for (const auto& k : e.kids) {
      if (auto sub = ExtractModels(*k, coll, graph, plan)) return sub;
    }
  }
  return std::nullopt;
}

bool IsIndexableProperty(const Operand& o) {
  return !o.is_literal && !o.is_history() && o.path.size() == 1 && !o.path[0].empty() &&
         o.path[0][0] != '$';
}

bool IsIndexableValue(const json::value& v) {
  return v.is_string() || v.is_number() || v.is_bool();
}

// "coll.prop = literal" or "coll.prop IN [...]" on a top-level, non-system property.
struct PropertyFilter {
  int coll = -1;
  std::string property;
  std::vector<json::value> values;
};

std::optional<PropertyFilter> ExtractPropertyFilter(const Expr& e, const BoundQuery& q) {
  auto twin_prop = [&](const Operand& o) {
    return IsIndexableProperty(o) && q.colls[o.coll].is_twin;
  };
  PropertyFilter f;
  if (e.kind == Expr::Kind::kCompare && e.op == CmpOp::kEq) {
    for (int side = 0; side < 2; ++side) {
      const Operand& key = e.args[side];
      const Operand& val = e.args[1 - side];
      if (twin_prop(key) && val.is_literal && IsIndexableValue(val.literal)) {
        f.coll = key.coll;
        f.property = key.path[0];
        f.values.push_back(val.literal);
        return f;
      }
    }
  } else if (e.kind == Expr::Kind::kIn && !e.negated && twin_prop(e.args[0])) {
    f.coll = e.args[0].coll;
    f.property = e.args[0].path[0];
    for (const auto& v : e.list) {
      if (IsIndexableValue(v)) f.values.push_back(v);
    }
    return f;
  }
  return std::nullopt;
}

std::string CollName(const BoundQuery& q, int c) {
  const std::string& n = q.colls[c].name;
  return n.empty() ? "" : n;
}

std::string Qualified(const BoundQuery& q, int c, std::string_view field) {
  std::string n = CollName(q, c);
  return n.empty() ? std::string(field) : fmt::format("{}.{}", n, field);
}

std::string NodeName(const BoundQuery& q, int c) {
  std::string n = CollName(q, c);
  return n.empty() ? "()" : n;
}

std::string DescribeStep(const BoundQuery& q, const ExpandStep& s) {
  const Edge& e = q.edges[s.edge];
  std::string inner;
  if (e.rel >= 0) inner += q.colls[e.rel].name;
  if (!e.names.empty()) {
    inner += ":";
    for (std::size_t i = 0; i < e.names.size(); ++i) inner += (i ? "|" : "") + e.names[i];
  }
  if (e.min_hops != 1 || e.max_hops != 1) {
    inner += e.min_hops == e.max_hops ? fmt::format(" {} hops", e.min_hops)
                                      : fmt::format(" {}-{} hops", e.min_hops, e.max_hops);
  }
  // Written from the side the step starts at.
  Edge::Dir d = e.dir;
  if (!s.forward && d != Edge::Dir::kBoth) {
    d = d == Edge::Dir::kLeftToRight ? Edge::Dir::kRightToLeft : Edge::Dir::kLeftToRight;
  }
  const char* l = d == Edge::Dir::kRightToLeft ? "<-" : "-";
  const char* r = d == Edge::Dir::kLeftToRight ? "->" : "-";
  return fmt::format("{}({}{}[{}]{}{})", s.to_bound ? "Check" : "Expand", NodeName(q, s.from), l,
                     inner, r, NodeName(q, s.to));
}

std::string DescribeRoot(const BoundQuery& q, const RootAccess& r) {
  using K = RootAccess::Kind;
  switch (r.kind) {
    case K::kIdSeek:
      return fmt::format("IndexSeek({})", Qualified(q, r.coll, "$dtId"));
    case K::kPropertyIndex:
      return fmt::format("PropertyIndex({})", Qualified(q, r.coll, r.property));
    case K::kModelIndex: {
      std::string models;
      for (std::size_t i = 0; i < r.models.size(); ++i) {
        models += (i ? ", " : "") + r.models[i];
      }
      std::string n = CollName(q, r.coll);
      return fmt::format("ModelIndex({}{})", n.empty() ? "" : n + ": ", models);
    }
    case K::kTwinScan: {
      std::string n = CollName(q, r.coll);
      return fmt::format("Scan({})", n.empty() ? "twins" : n);
    }
    case K::kRelBySource:
      return fmt::format("IndexSeek({})", Qualified(q, r.coll, "$sourceId"));
    case K::kRelByTarget:
      return fmt::format("IndexSeek({})", Qualified(q, r.coll, "$targetId"));
    case K::kRelScan: {
      std::string n = CollName(q, r.coll);
      return fmt::format("Scan({})", n.empty() ? "relationships" : n);
    }
  }
  return "";
}

RootAccess ChooseTwinRoot(const BoundQuery& q, const GraphView& graph,
                          const std::vector<const Expr*>& conjuncts, Plan* plan) {
  RootAccess r;
  // 1. $dtId known: direct lookups.
  for (std::size_t c = 0; c < q.colls.size(); ++c) {
    if (!q.colls[c].is_twin) continue;
    for (const Expr* e : conjuncts) {
      if (auto ids = ExtractIds(*e, static_cast<int>(c), "$dtId")) {
        r.kind = RootAccess::Kind::kIdSeek;
        r.coll = static_cast<int>(c);
        r.ids = std::move(*ids);
        return r;
      }
    }
  }
  // 2. Equality on an indexed top-level property.
  for (const Expr* e : conjuncts) {
    auto f = ExtractPropertyFilter(*e, q);
    if (!f) continue;
    std::vector<TwinPtr> twins;
    std::unordered_set<const Twin*> seen;
    bool indexed = true;
    for (const auto& v : f->values) {
      auto found = graph.TwinsWithProperty(f->property, v);
      if (!found) {
        indexed = false;
        break;
      }
      for (auto& t : *found) {
        if (t && seen.insert(t.get()).second) twins.push_back(std::move(t));
      }
    }
    if (!indexed) continue;
    r.kind = RootAccess::Kind::kPropertyIndex;
    r.coll = f->coll;
    r.property = f->property;
    r.twins = std::move(twins);
    return r;
  }
  // 3. Model known: the model index.
  for (std::size_t c = 0; c < q.colls.size(); ++c) {
    if (!q.colls[c].is_twin) continue;
    for (const Expr* e : conjuncts) {
      if (auto models = ExtractModels(*e, static_cast<int>(c), graph, plan)) {
        r.kind = RootAccess::Kind::kModelIndex;
        r.coll = static_cast<int>(c);
        r.models = std::move(*models);
        std::sort(r.models.begin(), r.models.end());  // a stable plan text
        return r;
      }
    }
  }
  // 4. Everything.
  r.kind = RootAccess::Kind::kTwinScan;
  r.coll = 0;
  return r;
}

RootAccess ChooseRelationshipRoot(const std::vector<const Expr*>& conjuncts) {
  RootAccess r;
  r.coll = 0;
  for (const Expr* e : conjuncts) {
    if (auto ids = ExtractIds(*e, 0, "$sourceId")) {
      r.kind = RootAccess::Kind::kRelBySource;
      r.ids = std::move(*ids);
      return r;
    }
  }
  for (const Expr* e : conjuncts) {
    if (auto ids = ExtractIds(*e, 0, "$targetId")) {
      r.kind = RootAccess::Kind::kRelByTarget;
      r.ids = std::move(*ids);
      return r;
    }
  }
  r.kind = RootAccess::Kind::kRelScan;
  return r;
}

}  // namespace

Plan MakePlan(const BoundQuery& q, const GraphView& graph) {
  Plan plan;
  plan.model_sets.resize(static_cast<std::size_t>(q.model_slots));
  std::vector<const Expr*> conjuncts = Conjuncts(q.where.get());

  // Tell the graph which properties are filtered on, whether or not an index serves them now,
  // so it can decide to build one.
  for (const Expr* e : conjuncts) {
    if (auto f = ExtractPropertyFilter(*e, q)) graph.NoteFilteredProperty(f->property);
  }

  plan.root = q.from_relationships ? ChooseRelationshipRoot(conjuncts)
                                   : ChooseTwinRoot(q, graph, conjuncts, &plan);

  // Expansion order: repeatedly take the first relationship condition touching a bound twin.
  std::vector<std::uint64_t> bound_after;
  std::uint64_t bound = std::uint64_t{1} << plan.root.coll;
  bound_after.push_back(bound);
  std::vector<bool> used(q.edges.size(), false);
  for (std::size_t n = 0; n < q.edges.size(); ++n) {
    bool progressed = false;
    for (std::size_t i = 0; i < q.edges.size() && !progressed; ++i) {
      if (used[i]) continue;
      const Edge& e = q.edges[i];
      bool l = bound & (std::uint64_t{1} << e.left);
      bool r = bound & (std::uint64_t{1} << e.right);
      if (!l && !r) continue;
      ExpandStep s;
      s.edge = static_cast<int>(i);
      s.forward = l;
      s.from = l ? e.left : e.right;
      s.to = l ? e.right : e.left;
      s.to_bound = l && r;
      bound |= (std::uint64_t{1} << s.to);
      if (e.rel >= 0) bound |= std::uint64_t{1} << e.rel;
      plan.steps.push_back(s);
      bound_after.push_back(bound);
      used[i] = true;
      progressed = true;
    }
    if (!progressed) break;  // cannot happen: patterns are connected
  }

  plan.filters.resize(plan.steps.size() + 1);
  for (const Expr* e : conjuncts) {
    std::size_t level = bound_after.size() - 1;
    for (std::size_t l = 0; l < bound_after.size(); ++l) {
      if ((e->coll_mask & ~bound_after[l]) == 0) {
        level = l;
        break;
      }
    }
    plan.filters[level].push_back(e);
  }
  // History aggregates are the costly conditions: each level checks them last, so they are read
  // only for rows that passed everything else.
  for (auto& level : plan.filters) {
    std::stable_partition(level.begin(), level.end(),
                          [](const Expr* e) { return !e->has_history; });
  }

  std::string& x = plan.explain;
  x = DescribeRoot(q, plan.root);
  if (!plan.filters[0].empty()) x += " -> Filter";
  for (std::size_t i = 0; i < plan.steps.size(); ++i) {
    x += " -> " + DescribeStep(q, plan.steps[i]);
    if (!plan.filters[i + 1].empty()) x += " -> Filter";
  }
  if (q.top) x += fmt::format(" -> Top({})", *q.top);
  x += q.count ? " -> Count" : " -> Project";
  return plan;
}

}  // namespace doppel::twin::query::internal
