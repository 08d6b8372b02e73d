#include "twin/query/executor.h"

#include <fmt/format.h>

#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace doppel::twin::query::internal {
namespace {

// Three-valued logic: a condition over a missing or differently-typed value is undefined, and
// only kTrue keeps a row (as in ADT and Cosmos DB SQL).
enum class Tri { kFalse, kTrue, kUndefined };

Tri Of(bool b) { return b ? Tri::kTrue : Tri::kFalse; }

bool IsNumber(const json::value& v) { return v.is_int64() || v.is_uint64() || v.is_double(); }

bool IsPrimitive(const json::value& v) {
  return v.is_string() || IsNumber(v) || v.is_bool() || v.is_null();
}

// <0, 0, >0. REQUIRES: both numbers.
int CompareNumbers(const json::value& a, const json::value& b) {
  if (a.is_int64() && b.is_int64()) {
    auto x = a.get_int64(), y = b.get_int64();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_uint64() && b.is_uint64()) {
    auto x = a.get_uint64(), y = b.get_uint64();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  double x = a.to_number<double>(), y = b.to_number<double>();
  return x < y ? -1 : x > y ? 1 : 0;
}

Tri ByOrder(int c, CmpOp op) {
  switch (op) {
    case CmpOp::kEq:
      return Of(c == 0);
    case CmpOp::kNe:
      return Of(c != 0);
    case CmpOp::kLt:
      return Of(c < 0);
    case CmpOp::kLe:
      return Of(c <= 0);
    case CmpOp::kGt:
      return Of(c > 0);
    case CmpOp::kGe:
      return Of(c >= 0);
  }
  return Tri::kUndefined;
}

Tri Compare(const json::value& a, const json::value& b, CmpOp op) {
  if (IsNumber(a) && IsNumber(b)) return ByOrder(CompareNumbers(a, b), op);
  if (a.is_string() && b.is_string()) {
    int c = std::string_view(a.get_string()).compare(std::string_view(b.get_string()));
    return ByOrder(c, op);
  }
  bool equality = op == CmpOp::kEq || op == CmpOp::kNe;
  if (a.kind() != b.kind() || !equality) return Tri::kUndefined;
  // Same kind, not ordered: booleans, nulls, objects and arrays compare for (in)equality.
  bool eq = a == b;
  return Of(op == CmpOp::kEq ? eq : !eq);
}

bool SameTypeClass(const json::value& a, const json::value& b) {
  return (IsNumber(a) && IsNumber(b)) || a.kind() == b.kind();
}

class Executor {
 public:
  Executor(const GraphView& graph, const BoundQuery& q, const Plan& plan,
           const ExecRequest& request)
      : g_(graph),
        q_(q),
        plan_(plan),
        req_(request),
        row_(q.colls.size()),
        model_memo_(static_cast<std::size_t>(q.model_slots)),
        history_memo_(static_cast<std::size_t>(q.history_slots)) {}

  core::Result<ExecResult> Run() {
    RunRoot();
    if (!error_.ok()) return error_;
    if (timed_out_) {
      return core::Status("QUERY_TIMEOUT",
                          "the query did not finish within its time limit; add conditions that "
                          "narrow it (a $dtId, IS_OF_MODEL) or raise the timeout");
    }
    if (q_.count) {
      json::object o;
      o[q_.count_key] = count_;
      result_.items.clear();
      if (req_.offset == 0) result_.items.push_back(std::move(o));
      result_.more = false;
    }
    return std::move(result_);
  }

 private:
  struct Slot {
    const Twin* twin = nullptr;
    const Relationship* rel = nullptr;
    const json::object* doc = nullptr;
  };

  // Counts work and checks the clock on the first unit and every 256th after it; false once
  // the query must stop.
  bool Tick() {
    if ((work_++ & 255) == 0 && std::chrono::steady_clock::now() >= req_.deadline) {
      timed_out_ = true;
      stop_ = true;
    }
    return !stop_;
  }

  void BindTwin(int coll, const Twin* t) { row_[coll] = Slot{t, nullptr, &t->doc}; }
  void BindRel(int coll, const Relationship* r) { row_[coll] = Slot{nullptr, r, &r->doc}; }

  void VisitRootTwin(const TwinPtr& t) {
    if (!t || !Tick()) return;
    BindTwin(plan_.root.coll, t.get());
    Level(0);
  }

  void VisitRootRel(const RelationshipPtr& r) {
    if (!r || !Tick()) return;
    BindRel(plan_.root.coll, r.get());
    Level(0);
  }

  void RunRoot() {
    const RootAccess& r = plan_.root;
    using K = RootAccess::Kind;
    switch (r.kind) {
      case K::kIdSeek:
        for (const auto& id : r.ids) {
          if (stop_) break;
          VisitRootTwin(g_.FindTwin(id));
        }
        break;
      case K::kPropertyIndex:
        for (const auto& t : r.twins) {
          if (stop_) break;
          VisitRootTwin(t);
        }
        break;
      case K::kModelIndex: {
        std::vector<TwinPtr> twins = g_.TwinsOfModels(r.models);
        for (const auto& t : twins) {
          if (stop_) break;
          VisitRootTwin(t);
        }
        break;
      }
      case K::kTwinScan:
        g_.ForEachTwin([&](const TwinPtr& t) {
          VisitRootTwin(t);
          return !stop_;
        });
        break;
      case K::kRelBySource:
      case K::kRelByTarget:
        for (const auto& id : r.ids) {
          if (stop_) break;
          auto rels = r.kind == K::kRelBySource ? g_.Outgoing(id) : g_.Incoming(id);
          for (const auto& rel : rels) {
            if (stop_) break;
            VisitRootRel(rel);
          }
        }
        break;
      case K::kRelScan:
        g_.ForEachTwin([&](const TwinPtr& t) {
          if (!t || !Tick()) return !stop_;
          for (const auto& rel : g_.Outgoing(t->id)) {
            if (stop_) break;
            VisitRootRel(rel);
          }
          return !stop_;
        });
        break;
    }
  }

  // Rows bound through plan level `level`: filter, then expand further or emit.
  void Level(std::size_t level) {
    for (const Expr* f : plan_.filters[level]) {
      if (Eval(*f) != Tri::kTrue) return;
    }
    if (level == plan_.steps.size()) {
      Emit();
      return;
    }
    Expand(plan_.steps[level], level + 1);
  }

  // Direction of one hop as seen from the twin the step starts at.
  Edge::Dir HopDir(const Edge& e, bool forward) const {
    if (forward || e.dir == Edge::Dir::kBoth) return e.dir;
    return e.dir == Edge::Dir::kLeftToRight ? Edge::Dir::kRightToLeft : Edge::Dir::kLeftToRight;
  }

  static bool NameOk(const Edge& e, const Relationship& r) {
    if (e.names.empty()) return true;
    for (const auto& n : e.names) {
      if (n == r.name) return true;
    }
    return false;
  }

  // Calls fn(relationship, id of the twin at its other end) for each relationship of `from`
  // matching the edge's names in direction `d`. Stops early when fn returns false.
  template <typename Fn>
  void ForEachAdjacent(std::string_view from, const Edge& e, Edge::Dir d, Fn&& fn) {
    if (d == Edge::Dir::kLeftToRight || d == Edge::Dir::kBoth) {
      std::string_view name = e.names.size() == 1 ? std::string_view(e.names[0]) : "";
      auto rels = g_.Outgoing(from, name);
      for (const auto& r : rels) {
        if (!r || !NameOk(e, *r)) continue;
        if (!fn(r, std::string_view(r->target))) return;
      }
    }
    if (d == Edge::Dir::kRightToLeft || d == Edge::Dir::kBoth) {
      auto rels = g_.Incoming(from);
      for (const auto& r : rels) {
        if (!r || !NameOk(e, *r)) continue;
        // A self-relationship was already seen as outgoing.
        if (d == Edge::Dir::kBoth && r->source == r->target) continue;
        if (!fn(r, std::string_view(r->source))) return;
      }
    }
  }

  // Twins reachable from `start` in [min_hops, max_hops] hops, never using one relationship
  // twice on a path; each reported once, in discovery order.
  void Walk(std::string_view node, int depth, const Edge& e, Edge::Dir d,
            std::vector<const Relationship*>* used, std::unordered_set<std::string>* seen,
            std::vector<std::string>* out) {
    if (depth >= e.min_hops && seen->emplace(node).second) out->emplace_back(node);
    if (depth == e.max_hops) return;
    ForEachAdjacent(node, e, d, [&](const RelationshipPtr& r, std::string_view other) {
      if (!Tick()) return false;
      for (const Relationship* u : *used) {
        if (u == r.get()) return true;
      }
      used->push_back(r.get());
      Walk(other, depth + 1, e, d, used, seen, out);
      used->pop_back();
      return !stop_;
    });
  }

  void Expand(const ExpandStep& s, std::size_t next) {
    const Edge& e = q_.edges[s.edge];
    const Twin* from = row_[s.from].twin;
    Edge::Dir d = HopDir(e, s.forward);
    if (!e.distinct_targets) {
      // One row per relationship (JOIN, or MATCH with a relationship variable).
      ForEachAdjacent(from->id, e, d, [&](const RelationshipPtr& r, std::string_view other) {
        if (!Tick()) return false;
        TwinPtr keep;
        if (s.to_bound) {
          if (row_[s.to].twin->id != other) return true;
        } else {
          keep = g_.FindTwin(other);
          if (!keep) return true;  // dangling relationship
          BindTwin(s.to, keep.get());
        }
        if (e.rel >= 0) BindRel(e.rel, r.get());
        Level(next);
        return !stop_;
      });
      return;
    }
    std::vector<const Relationship*> used;
    std::unordered_set<std::string> seen;
    std::vector<std::string> reached;
    Walk(from->id, 0, e, d, &used, &seen, &reached);
    if (s.to_bound) {
      if (!stop_ && seen.contains(row_[s.to].twin->id)) Level(next);
      return;
    }
    for (const auto& id : reached) {
      if (stop_ || !Tick()) return;
      TwinPtr t = g_.FindTwin(id);
      if (!t) continue;
      BindTwin(s.to, t.get());
      Level(next);
    }
  }

  void Emit() {
    if (q_.count) {
      ++count_;
      return;
    }
    std::uint64_t index = matched_++;
    if (q_.top && index >= static_cast<std::uint64_t>(*q_.top)) {
      stop_ = true;
      return;
    }
    if (index < req_.offset) return;
    if (result_.items.size() >= req_.page_size) {
      result_.more = true;
      stop_ = true;
      return;
    }
    result_.items.push_back(Project());
    if (q_.top && matched_ >= static_cast<std::uint64_t>(*q_.top)) stop_ = true;
  }

  json::value Project() const {
    if (q_.select_star) {
      if (!q_.has_match) return json::value(*row_[0].doc);
      json::object o;
      for (std::size_t c = 0; c < q_.colls.size(); ++c) {
        if (q_.colls[c].name.empty() || !row_[c].doc) continue;
        o.emplace(q_.colls[c].name, *row_[c].doc);
      }
      return o;
    }
    json::object o;
    o.reserve(q_.items.size());
    for (const auto& item : q_.items) {
      const Slot& slot = row_[item.ref.coll];
      if (!slot.doc) continue;
      if (item.kind == SelectItem::Kind::kCollection) {
        o.emplace(item.key, *slot.doc);
      } else if (const json::value* v = Lookup(slot, item.ref.path)) {
        o.emplace(item.key, *v);  // a missing property is left out, as ADT does
      }
    }
    return o;
  }

  static const json::value* Lookup(const Slot& slot, const std::vector<std::string>& path) {
    if (!slot.doc || path.empty()) return nullptr;
    const json::value* v = slot.doc->if_contains(path[0]);
    for (std::size_t i = 1; v && i < path.size(); ++i) {
      const json::object* o = v->if_object();
      v = o ? o->if_contains(path[i]) : nullptr;
    }
    return v;
  }

  // The value of an operand; nullptr when undefined (or a whole collection).
  const json::value* Value(const Operand& o) {
    if (o.is_literal) return &o.literal;
    if (o.is_history()) return History(o);
    return Lookup(row_[o.coll], o.path);
  }

  // A history aggregate of the row's twin, asked of the seam once per twin in a row (the memo
  // keeps the last twin's answer per aggregate). nullptr when undefined (no points).
  const json::value* History(const Operand& o) {
    const Twin* t = row_[o.coll].twin;
    if (!t || stop_ || !req_.history) return nullptr;
    HistoryMemo& m = history_memo_[o.hist_slot];
    if (m.valid && m.twin == t->id) return m.defined ? &m.value : nullptr;
    // An aggregate may decode many points: check the clock before every one.
    if (std::chrono::steady_clock::now() >= req_.deadline) {
      timed_out_ = true;
      stop_ = true;
      return nullptr;
    }
    HistoryAggregateRequest r;
    r.twin = t->id;
    r.path = o.history_path;
    r.agg = HistAggName(o.agg);
    r.from_ns = req_.now_ns - o.window_ns;
    r.to_ns = req_.now_ns;
    auto v = (*req_.history)(r);
    if (!v.ok()) {
      error_ = v.status();
      stop_ = true;
      return nullptr;
    }
    m.valid = true;
    m.twin = t->id;
    m.defined = false;
    if (v->has_value()) {
      double x = **v;
      m.defined = !std::isnan(x);  // NaN compares with nothing
      m.value = x;
    } else if (o.agg == HistAgg::kCount) {
      m.defined = true;  // no points: a count of 0, as in SQL
      m.value = 0;
    }
    return m.defined ? &m.value : nullptr;
  }

  static bool Whole(const Operand& o) { return !o.is_literal && o.path.empty(); }

  Tri Eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kAnd: {
        Tri r = Tri::kTrue;
        for (const auto& k : e.kids) {
          Tri x = Eval(*k);
          if (x == Tri::kFalse) return Tri::kFalse;
          if (x == Tri::kUndefined) r = Tri::kUndefined;
        }
        return r;
      }
      case Expr::Kind::kOr: {
        Tri r = Tri::kFalse;
        for (const auto& k : e.kids) {
          Tri x = Eval(*k);
          if (x == Tri::kTrue) return Tri::kTrue;
          if (x == Tri::kUndefined) r = Tri::kUndefined;
        }
        return r;
      }
      case Expr::Kind::kNot: {
        Tri x = Eval(*e.kids[0]);
        return x == Tri::kUndefined ? x : Of(x == Tri::kFalse);
      }
      case Expr::Kind::kConst:
        return Of(e.const_value);
      case Expr::Kind::kTruthy: {
        const json::value* v = Value(e.args[0]);
        if (!v || !v->is_bool()) return Tri::kUndefined;
        return Of(v->get_bool());
      }
      case Expr::Kind::kCompare: {
        const json::value* a = Value(e.args[0]);
        const json::value* b = Value(e.args[1]);
        if (!a || !b) return Tri::kUndefined;
        return Compare(*a, *b, e.op);
      }
      case Expr::Kind::kIn: {
        const json::value* a = Value(e.args[0]);
        if (!a) return Tri::kUndefined;
        bool comparable = false;
        for (const auto& x : e.list) {
          if (!SameTypeClass(*a, x)) continue;
          comparable = true;
          if (Compare(*a, x, CmpOp::kEq) == Tri::kTrue) return Of(!e.negated);
        }
        return comparable ? Of(e.negated) : Tri::kUndefined;
      }
      case Expr::Kind::kFunc:
        return EvalFunc(e);
    }
    return Tri::kUndefined;
  }

  Tri EvalFunc(const Expr& e) {
    switch (e.func) {
      case Func::kIsOfModel: {
        const Twin* t = row_[e.args[0].coll].twin;
        if (!t) return Tri::kFalse;
        return Of(IsOfModel(e, t->model));
      }
      case Func::kStartsWith:
      case Func::kEndsWith:
      case Func::kContains: {
        const json::value* a = Value(e.args[0]);
        const json::value* b = Value(e.args[1]);
        if (!a || !b || !a->is_string() || !b->is_string()) return Tri::kUndefined;
        std::string_view s = a->get_string(), p = b->get_string();
        if (e.func == Func::kStartsWith) return Of(s.starts_with(p));
        if (e.func == Func::kEndsWith) return Of(s.ends_with(p));
        return Of(s.find(p) != std::string_view::npos);
      }
      case Func::kArrayContains: {
        const json::value* a = Value(e.args[0]);
        const json::value* b = Value(e.args[1]);
        if (!a || !b || !a->is_array()) return Tri::kUndefined;
        for (const auto& x : a->get_array()) {
          if (Compare(x, *b, CmpOp::kEq) == Tri::kTrue) return Tri::kTrue;
        }
        return Tri::kFalse;
      }
      default:
        break;
    }
    // Type checks: always defined (false for a missing value).
    const Operand& o = e.args[0];
    if (Whole(o)) {
      bool bound = row_[o.coll].doc != nullptr;
      return Of(bound && (e.func == Func::kIsDefined || e.func == Func::kIsObject));
    }
    const json::value* v = Value(o);
    if (!v) return Tri::kFalse;
    switch (e.func) {
      case Func::kIsDefined:
        return Tri::kTrue;
      case Func::kIsNull:
        return Of(v->is_null());
      case Func::kIsBool:
        return Of(v->is_bool());
      case Func::kIsNumber:
        return Of(IsNumber(*v));
      case Func::kIsString:
        return Of(v->is_string());
      case Func::kIsObject:
        return Of(v->is_object());
      case Func::kIsPrimitive:
        return Of(IsPrimitive(*v));
      default:
        return Tri::kUndefined;
    }
  }

  bool IsOfModel(const Expr& e, const std::string& model) const {
    if (model == e.model) return true;
    if (e.exact) return false;
    if (const auto& set = plan_.model_sets[e.model_slot]) return set->contains(model);
    auto& memo = model_memo_[e.model_slot];
    auto it = memo.find(model);
    if (it != memo.end()) return it->second;
    auto resolved = g_.models().Resolve(model);
    bool is_a = resolved.ok() && (*resolved)->IsA(e.model);
    memo.emplace(model, is_a);
    return is_a;
  }

  const GraphView& g_;
  const BoundQuery& q_;
  const Plan& plan_;
  const ExecRequest& req_;
  std::vector<Slot> row_;
  // Per IS_OF_MODEL: whether a twin's model is (or extends) it, per model met so far.
  mutable std::vector<std::unordered_map<std::string, bool>> model_memo_;
  struct HistoryMemo {
    bool valid = false;
    std::string twin;
    bool defined = false;
    json::value value;
  };
  std::vector<HistoryMemo> history_memo_;  // by Operand::hist_slot
  core::Status error_;
  ExecResult result_;
  std::uint64_t work_ = 0;
  std::uint64_t matched_ = 0;
  std::uint64_t count_ = 0;
  bool stop_ = false;
  bool timed_out_ = false;
};

}  // namespace

core::Result<ExecResult> Execute(const GraphView& graph, const BoundQuery& q, const Plan& plan,
                                 const ExecRequest& request) {
  return Executor(graph, q, plan, request).Run();
}

}  // namespace doppel::twin::query::internal
