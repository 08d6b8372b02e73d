#include "sim/co_simulation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>

namespace doppel::sim {

using core::Result;
using core::Status;

namespace {

bool Numeric(ValueType t) { return t != ValueType::kString; }

double AsDouble(const Value& v) {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* b = std::get_if<bool>(&v)) return *b ? 1.0 : 0.0;
  return std::nan("");
}

}  // namespace

Result<PortRef> ParsePortRef(std::string_view text) {
  const auto dot = text.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == text.size()) {
    return Status("SIM_UNKNOWN_VARIABLE",
                  fmt::format("'{}' is not 'unit.variable'", std::string(text)));
  }
  return PortRef{std::string(text.substr(0, dot)), std::string(text.substr(dot + 1))};
}

const std::vector<double>* Recording::Column(std::string_view name) const {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return &columns[i];
  }
  return nullptr;
}

Status CoSimulation::Prefixed(const std::string& unit, const Status& s) {
  return Status(s.code(), fmt::format("unit '{}': {}", unit, s.message()), s.pointer());
}

Status CoSimulation::AddUnit(std::string name, std::unique_ptr<Unit> unit) {
  if (initialized_) return Status("SIM_BAD_STATE", "units are added before Initialize");
  if (name.empty() || name.find('.') != std::string::npos) {
    return Status("SIM_BAD_CONNECTION",
                  fmt::format("unit name '{}' must be non-empty and without '.'", name));
  }
  for (const Slot& s : slots_) {
    if (s.name == name) {
      return Status("SIM_DUPLICATE_UNIT", fmt::format("a unit named '{}' exists already", name));
    }
  }
  slots_.push_back({std::move(name), std::move(unit), {}});
  return {};
}

Result<CoSimulation::Resolved> CoSimulation::Resolve(const PortRef& p) const {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].name != p.unit) continue;
    auto v = slots_[i].unit->Find(p.variable);
    if (!v.ok()) return Prefixed(p.unit, v.status());
    return Resolved{i, *v};
  }
  return Status("SIM_UNKNOWN_UNIT",
                fmt::format("no unit named '{}' (in '{}')", p.unit, p.ToString()));
}

Status CoSimulation::Connect(const Connection& c) {
  if (initialized_) return Status("SIM_BAD_STATE", "connections are made before Initialize");
  auto from = Resolve(c.from);
  if (!from.ok()) return from.status();
  auto to = Resolve(c.to);
  if (!to.ok()) return to.status();
  const Variable& src = slots_[from->unit].unit->variables()[from->var];
  const Variable& dst = slots_[to->unit].unit->variables()[to->var];
  const std::string what = fmt::format("{} -> {}", c.from.ToString(), c.to.ToString());
  if (dst.causality != Causality::kInput) {
    return Status("SIM_BAD_CONNECTION",
                  fmt::format("{}: '{}' is not an input", what, c.to.ToString()));
  }
  if (src.causality == Causality::kInput || src.causality == Causality::kParameter) {
    return Status("SIM_BAD_CONNECTION", fmt::format("{}: '{}' is not an output, state or local",
                                                    what, c.from.ToString()));
  }
  if (src.type != dst.type) {
    return Status("SIM_BAD_CONNECTION", fmt::format("{}: the types differ", what));
  }
  if (from->unit == to->unit) {
    return Status("SIM_BAD_CONNECTION", fmt::format("{}: a unit cannot feed itself", what));
  }
  for (const Slot::In& in : slots_[to->unit].inputs) {
    if (in.to_var == to->var) {
      return Status("SIM_BAD_CONNECTION",
                    fmt::format("{}: '{}' is connected already", what, c.to.ToString()));
    }
  }
  slots_[to->unit].inputs.push_back({from->unit, from->var, to->var});
  return {};
}

Status CoSimulation::Set(const PortRef& p, const Value& v) {
  auto r = Resolve(p);
  if (!r.ok()) return r.status();
  for (const Slot::In& in : slots_[r->unit].inputs) {
    if (in.to_var == r->var) {
      return Status("SIM_BAD_STATE",
                    fmt::format("'{}' is fed by a connection; it cannot be set", p.ToString()));
    }
  }
  if (Status s = slots_[r->unit].unit->Set(r->var, v); !s.ok()) return Prefixed(p.unit, s);
  return {};
}

Result<Value> CoSimulation::Get(const PortRef& p) const {
  auto r = Resolve(p);
  if (!r.ok()) return r.status();
  auto v = slots_[r->unit].unit->Get(r->var);
  if (!v.ok()) return Prefixed(p.unit, v.status());
  return v;
}

Status CoSimulation::Record(const PortRef& p) {
  if (initialized_)
    return Status("SIM_BAD_STATE", "recorded variables are chosen before Initialize");
  auto r = Resolve(p);
  if (!r.ok()) return r.status();
  if (!Numeric(slots_[r->unit].unit->variables()[r->var].type)) {
    return Status("SIM_WRONG_TYPE",
                  fmt::format("'{}' is a string: only numbers are recorded", p.ToString()));
  }
  const std::string name = p.ToString();
  if (std::find(recording_.names.begin(), recording_.names.end(), name) != recording_.names.end()) {
    return {};
  }
  recorded_.push_back(*r);
  recording_.names.push_back(name);
  recording_.columns.emplace_back();
  return {};
}

Status CoSimulation::Initialize(double t0) {
  if (initialized_) return Status("SIM_BAD_STATE", "Initialize was called already");
  if (!std::isfinite(t0)) return Status("SIM_BAD_STEP", "the start time is not finite");
  // Evaluation order: depth-first topological sort over feedthrough edges; a back edge is a loop.
  const std::size_t n = slots_.size();
  std::vector<std::vector<std::pair<std::size_t, std::size_t>>> needs(n);  // unit -> (src, var)
  for (std::size_t u = 0; u < n; ++u) {
    for (const Slot::In& in : slots_[u].inputs) {
      // A state is the unit's memory: it never follows an input instantly, whatever the unit
      // says of its outputs.
      const Unit& src = *slots_[in.from_unit].unit;
      if (src.variables()[in.from_var].causality != Causality::kState &&
          src.HasDirectFeedthrough(in.from_var)) {
        needs[u].emplace_back(in.from_unit, in.from_var);
      }
    }
  }
  enum class Mark { kNone, kVisiting, kDone };
  std::vector<Mark> mark(n, Mark::kNone);
  std::vector<std::size_t> stack;
  order_.clear();
  Status loop;
  std::function<bool(std::size_t)> visit = [&](std::size_t u) {
    if (mark[u] == Mark::kDone) return true;
    if (mark[u] == Mark::kVisiting) {
      std::string cycle;
      auto at = std::find(stack.begin(), stack.end(), u);
      for (auto it = at; it != stack.end(); ++it) cycle += slots_[*it].name + " -> ";
      cycle += slots_[u].name;
      loop = Status("SIM_ALGEBRAIC_LOOP",
                    fmt::format("algebraic loop: {} (each output on it depends directly on an "
                                "input); break it with a unit whose outputs do not",
                                cycle));
      return false;
    }
    mark[u] = Mark::kVisiting;
    stack.push_back(u);
    for (const auto& [src, var] : needs[u]) {
      (void)var;
      if (!visit(src)) return false;
    }
    stack.pop_back();
    mark[u] = Mark::kDone;
    order_.push_back(u);
    return true;
  };
  for (std::size_t u = 0; u < n; ++u) {
    if (!visit(u)) return loop;
  }
  if (hook_) {
    if (Status st = hook_(t0); !st.ok()) return st;
  }
  for (Slot& s : slots_) {
    if (Status st = s.unit->Initialize(t0); !st.ok()) return Prefixed(s.name, st);
  }
  initialized_ = true;
  time_ = t0;
  if (Status s = Propagate(); !s.ok()) return s;
  RecordRow();
  return {};
}

Status CoSimulation::Propagate() {
  for (std::size_t u : order_) {
    Slot& s = slots_[u];
    for (const Slot::In& in : s.inputs) {
      auto v = slots_[in.from_unit].unit->Get(in.from_var);
      if (!v.ok()) return Prefixed(slots_[in.from_unit].name, v.status());
      if (Status st = s.unit->Set(in.to_var, *v); !st.ok()) return Prefixed(s.name, st);
    }
  }
  return {};
}

void CoSimulation::RecordRow() {
  recording_.time.push_back(time_);
  for (std::size_t i = 0; i < recorded_.size(); ++i) {
    auto v = slots_[recorded_[i].unit].unit->Get(recorded_[i].var);
    recording_.columns[i].push_back(v.ok() ? AsDouble(*v) : std::nan(""));
  }
}

Status CoSimulation::Step(double dt) {
  if (!initialized_) return Status("SIM_BAD_STATE", "Step before Initialize");
  if (terminated_) return Status("SIM_BAD_STATE", "the simulation was terminated by a unit");
  if (!(dt > 0) || !std::isfinite(dt)) {
    return Status("SIM_BAD_STEP", fmt::format("the communication step {} is not positive", dt));
  }
  double reached = time_ + dt;
  for (Slot& s : slots_) {
    auto out = s.unit->Step(time_, dt);
    if (!out.ok()) return Prefixed(s.name, out.status());
    for (Event& e : out->events) {
      recording_.events.push_back({e.time, s.name + "." + e.name});
    }
    if (out->terminate) {
      terminated_ = true;
      reached = std::min(reached, out->time_reached);
    }
  }
  time_ = reached;
  if (hook_ && !terminated_) {
    if (Status s = hook_(time_); !s.ok()) return s;
  }
  if (Status s = Propagate(); !s.ok()) return s;
  RecordRow();
  return {};
}

std::vector<std::string> CoSimulation::EvaluationOrder() const {
  std::vector<std::string> out;
  out.reserve(order_.size());
  for (std::size_t u : order_) out.push_back(slots_[u].name);
  return out;
}

}  // namespace doppel::sim
