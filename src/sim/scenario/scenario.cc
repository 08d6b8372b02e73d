#include "sim/scenario/scenario.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <set>
#include <span>
#include <type_traits>

#include "core/json.h"
#include "core/time.h"

namespace doppel::sim::scenario {

namespace json = boost::json;
using core::PointerAppend;
using core::Result;
using core::Status;

namespace {

Status Invalid(const std::string& pointer, const std::string& why) {
  return Status("SCENARIO_INVALID", why, pointer);
}

// Seconds from a number or a duration string ("90s", "2h").
Result<double> Seconds(const json::value& v, const std::string& pointer, bool allow_zero) {
  double s = 0;
  if (v.is_number()) {
    s = v.to_number<double>();
  } else if (v.is_string()) {
    auto ns = core::ParseDurationNs(std::string_view(v.get_string()));
    if (!ns) return Invalid(pointer, "not a duration (seconds, or e.g. \"90s\", \"2h\")");
    s = static_cast<double>(*ns) / 1e9;
  } else {
    return Invalid(pointer, "expected seconds (a number) or a duration string");
  }
  if (!std::isfinite(s) || s < 0 || (!allow_zero && s == 0)) {
    return Invalid(pointer,
                   allow_zero ? "must be a finite number >= 0" : "must be a finite number > 0");
  }
  return s;
}

Result<PortRef> Port(const json::value& v, const std::string& pointer) {
  if (!v.is_string()) return Invalid(pointer, "expected \"unit.variable\"");
  auto p = ParsePortRef(std::string_view(v.get_string()));
  if (!p.ok()) return Invalid(pointer, p.status().message());
  return *p;
}

Result<PortRef> PortKey(std::string_view key, const std::string& pointer) {
  auto p = ParsePortRef(key);
  if (!p.ok()) return Invalid(pointer, p.status().message());
  return *p;
}

Result<const json::object*> Object(const json::value& v, const std::string& pointer) {
  if (!v.is_object()) return Invalid(pointer, "expected an object");
  return &v.get_object();
}

Result<std::vector<double>> Numbers(const json::value& v, const std::string& pointer) {
  if (!v.is_array()) return Invalid(pointer, "expected an array of numbers");
  std::vector<double> out;
  for (std::size_t i = 0; i < v.get_array().size(); ++i) {
    const json::value& x = v.get_array()[i];
    if (!x.is_number() || !std::isfinite(x.to_number<double>())) {
      return Invalid(PointerAppend(pointer, i), "expected a finite number");
    }
    out.push_back(x.to_number<double>());
  }
  return out;
}

// One of the montecarlo distributions: {"normal": {"mean", "sd"}}, {"lognormal": {"mean",
// "sd"}}, {"uniform": {"min", "max"}}, {"triangular": {"min", "mode", "max"}},
// {"empirical": [values]} (the history form is EmpiricalFromHistory's).
Result<montecarlo::ParameterDistribution> Distribution(const json::value& v,
                                                       const std::string& pointer) {
  if (!v.is_object() || v.get_object().size() != 1) {
    return Invalid(pointer,
                   "expected one of {\"normal\": {mean, sd}}, {\"lognormal\": {mean, sd}}, "
                   "{\"uniform\": {min, max}}, {\"triangular\": {min, mode, max}}, "
                   "{\"empirical\": [values]}");
  }
  const json::key_value_pair& only = *v.get_object().begin();
  const std::string_view kind = only.key();
  const json::value& args = only.value();
  const std::string at = PointerAppend(pointer, kind);
  auto arg = [&](const char* name) -> Result<double> {
    const json::value* x = args.is_object() ? args.get_object().if_contains(name) : nullptr;
    if (x == nullptr || !x->is_number()) {
      return Invalid(PointerAppend(at, name), fmt::format("expected the number '{}'", name));
    }
    return x->to_number<double>();
  };
  Result<montecarlo::ParameterDistribution> d = Status("SCENARIO_INVALID", "", at);
  if (kind == "normal" || kind == "lognormal") {
    auto m = arg("mean");
    if (!m.ok()) return m.status();
    auto s = arg("sd");
    if (!s.ok()) return s.status();
    d = kind == "normal" ? montecarlo::ParameterDistribution::Normal(*m, *s)
                         : montecarlo::ParameterDistribution::Lognormal(*m, *s);
  } else if (kind == "uniform") {
    auto lo = arg("min");
    if (!lo.ok()) return lo.status();
    auto hi = arg("max");
    if (!hi.ok()) return hi.status();
    d = montecarlo::ParameterDistribution::Uniform(*lo, *hi);
  } else if (kind == "triangular") {
    auto lo = arg("min");
    if (!lo.ok()) return lo.status();
    auto mode = arg("mode");
    if (!mode.ok()) return mode.status();
    auto hi = arg("max");
    if (!hi.ok()) return hi.status();
    d = montecarlo::ParameterDistribution::Triangular(*lo, *mode, *hi);
  } else if (kind == "empirical") {  // the {twin, path, from, to} form: EmpiricalFromHistory
    auto xs = Numbers(args, at);
    if (!xs.ok()) return xs.status();
    d = montecarlo::ParameterDistribution::Empirical(std::move(*xs));
  } else {
    return Invalid(at, fmt::format("unknown distribution '{}'", std::string(kind)));
  }
  if (!d.ok()) return Invalid(at, d.status().message());
  return d;
}

// {"empirical": {"twin", "path", "from", "to"}}: times as RFC 3339, ns since the epoch, or
// now-<duration> (to: default now). nullopt when `v` is another distribution.
Result<std::optional<HistorySample>> EmpiricalFromHistory(const json::value& v,
                                                          const std::string& pointer) {
  const json::object* o = v.if_object();
  if (o == nullptr || o->size() != 1 || !o->contains("empirical") ||
      !o->at("empirical").is_object()) {
    return std::optional<HistorySample>();
  }
  const std::string at = PointerAppend(pointer, "empirical");
  const json::object& a = o->at("empirical").get_object();
  for (const auto& kv : a) {
    if (kv.key() != "twin" && kv.key() != "path" && kv.key() != "from" && kv.key() != "to") {
      return Invalid(PointerAppend(at, kv.key()),
                     "unknown member: an empirical distribution from history has twin, path, "
                     "from and to");
    }
  }
  HistorySample h;
  for (const char* name : {"twin", "path"}) {
    const json::value* x = a.if_contains(name);
    if (x == nullptr || !x->is_string() || x->get_string().empty()) {
      return Invalid(PointerAppend(at, name), fmt::format("expected the {} (a string)", name));
    }
    (std::string_view(name) == "twin" ? h.twin : h.path) = std::string(x->get_string());
  }
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  auto time = [&](const char* name, const char* fallback) -> Result<std::int64_t> {
    const json::value* x = a.if_contains(name);
    std::string text = fallback != nullptr ? fallback : "";
    if (x != nullptr) {
      if (!x->is_string()) return Invalid(PointerAppend(at, name), "expected a time (a string)");
      text = std::string(x->get_string());
    } else if (fallback == nullptr) {
      return Invalid(PointerAppend(at, name), "missing: e.g. \"now-7d\" or an RFC 3339 time");
    }
    auto t = core::ParseTimeArgNs(text, now);
    if (!t) {
      return Invalid(PointerAppend(at, name),
                     "not a time: RFC 3339, ns since the epoch, or now-<duration>");
    }
    return *t;
  };
  auto from = time("from", nullptr);
  if (!from.ok()) return from.status();
  auto to = time("to", "now");
  if (!to.ok()) return to.status();
  if (*from > *to) return Invalid(at, "from is after to");
  h.from_ns = *from;
  h.to_ns = *to;
  return std::optional<HistorySample>(std::move(h));
}

// A JSON value as a value of the variable's type.
Result<Value> ToValue(const json::value& v, ValueType type, const std::string& what) {
  switch (type) {
    case ValueType::kReal:
      if (v.is_number()) {
        const double d = v.to_number<double>();
        if (!std::isfinite(d)) break;
        return Value(d);
      }
      break;
    case ValueType::kInteger:
      if (v.is_int64()) return Value(v.get_int64());
      if (v.is_uint64() && v.get_uint64() <= INT64_MAX) {
        return Value(static_cast<std::int64_t>(v.get_uint64()));
      }
      if (v.is_double() && std::nearbyint(v.get_double()) == v.get_double() &&
          std::abs(v.get_double()) < 9e15) {
        return Value(static_cast<std::int64_t>(v.get_double()));
      }
      break;
    case ValueType::kBoolean:
      if (v.is_bool()) return Value(v.get_bool());
      break;
    case ValueType::kString:
      if (v.is_string()) return Value(std::string(v.get_string()));
      break;
  }
  static const char* kNames[] = {"a finite number", "an integer", "a boolean", "a string"};
  return Status("SIM_WRONG_TYPE", fmt::format("{}: expected {}, got {}", what,
                                              kNames[static_cast<int>(type)], core::Abbreviate(v)));
}

Status SetJson(CoSimulation& sim, const PortRef& p, const json::value& v, const std::string& what) {
  auto cur = sim.Get(p);  // resolves the variable (and says which does not exist)
  if (!cur.ok()) return Status(cur.status().code(), what + ": " + cur.status().message());
  const ValueType type = static_cast<ValueType>(cur->index());
  auto value = ToValue(v, type, what + " " + p.ToString());
  if (!value.ok()) return value.status();
  if (Status s = sim.Set(p, *value); !s.ok()) {
    return Status(s.code(), what + ": " + s.message());
  }
  return {};
}

}  // namespace

double InputSeries::At(double t) const {
  if (times.empty()) return std::nan("");
  if (t <= times.front()) return values.front();
  if (t >= times.back()) return values.back();
  const auto it = std::upper_bound(times.begin(), times.end(), t);
  const std::size_t i = static_cast<std::size_t>(it - times.begin());  // times[i-1] <= t < times[i]
  if (!linear) return values[i - 1];
  const double f = (t - times[i - 1]) / (times[i] - times[i - 1]);
  return values[i - 1] + f * (values[i] - values[i - 1]);
}

Result<ScenarioDefinition> ParseScenario(const json::value& json) {
  if (!json.is_object()) return Invalid("", "a scenario is a JSON object");
  const json::object& o = json.get_object();
  static const std::set<std::string, std::less<>> kMembers = {
      "name",   "units",       "bindings", "at",         "connections", "parameters",
      "inputs", "events",      "start",    "horizon",    "step",        "record",
      "kpis",   "uncertainty", "id",       "description"};
  for (const auto& [k, v] : o) {
    (void)v;
    if (!kMembers.contains(k)) {
      return Invalid(PointerAppend("", k), fmt::format("unknown member '{}'", std::string(k)));
    }
  }
  ScenarioDefinition def;
  if (const json::value* v = o.if_contains("name")) {
    if (!v->is_string()) return Invalid("/name", "expected a string");
    def.name = std::string(v->get_string());
  }
  // units
  const json::value* units = o.if_contains("units");
  if (units == nullptr || !units->is_object() || units->get_object().empty()) {
    return Invalid("/units", "expected an object of units, at least one");
  }
  for (const auto& [name, spec] : units->get_object()) {
    const std::string at = PointerAppend("/units", name);
    if (name.empty() || std::string_view(name).find('.') != std::string_view::npos) {
      return Invalid(at, "a unit name is not empty and has no '.'");
    }
    if (!spec.is_object()) return Invalid(at, "expected an object with \"kind\"");
    const json::value* kind = spec.get_object().if_contains("kind");
    if (kind == nullptr || !kind->is_string()) {
      return Invalid(PointerAppend(at, "kind"), "expected the unit's kind (a string)");
    }
    def.units.push_back(
        {std::string(name), std::string(kind->get_string()), spec.get_object(), at});
  }
  // bindings
  if (const json::value* v = o.if_contains("bindings")) {
    if (!v->is_array()) return Invalid("/bindings", "expected an array");
    for (std::size_t i = 0; i < v->get_array().size(); ++i) {
      const std::string at = PointerAppend("/bindings", i);
      auto b = Object(v->get_array()[i], at);
      if (!b.ok()) return b.status();
      const json::value* var = (*b)->if_contains("variable");
      const json::value* twin = (*b)->if_contains("twin");
      const json::value* path = (*b)->if_contains("path");
      if (var == nullptr) return Invalid(PointerAppend(at, "variable"), "missing");
      auto p = Port(*var, PointerAppend(at, "variable"));
      if (!p.ok()) return p.status();
      if (twin == nullptr || !twin->is_string() || twin->get_string().empty()) {
        return Invalid(PointerAppend(at, "twin"), "expected a twin id");
      }
      if (path == nullptr || !path->is_string() || path->get_string().empty()) {
        return Invalid(PointerAppend(at, "path"), "expected a property path");
      }
      def.bindings.push_back(
          {*p, std::string(twin->get_string()), std::string(path->get_string())});
    }
  }
  if (const json::value* v = o.if_contains("at")) {
    auto t = v->is_string() ? core::ParseRfc3339(std::string_view(v->get_string())) : std::nullopt;
    if (!t) return Invalid("/at", "expected an RFC 3339 date-time");
    def.at_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t->time_since_epoch()).count();
  }
  // connections
  if (const json::value* v = o.if_contains("connections")) {
    if (!v->is_array()) return Invalid("/connections", "expected an array");
    for (std::size_t i = 0; i < v->get_array().size(); ++i) {
      const std::string at = PointerAppend("/connections", i);
      auto c = Object(v->get_array()[i], at);
      if (!c.ok()) return c.status();
      const json::value* from = (*c)->if_contains("from");
      const json::value* to = (*c)->if_contains("to");
      if (from == nullptr) return Invalid(PointerAppend(at, "from"), "missing");
      if (to == nullptr) return Invalid(PointerAppend(at, "to"), "missing");
      auto f = Port(*from, PointerAppend(at, "from"));
      if (!f.ok()) return f.status();
      auto t = Port(*to, PointerAppend(at, "to"));
      if (!t.ok()) return t.status();
      def.connections.push_back({*f, *t});
    }
  }
  if (const json::value* v = o.if_contains("parameters")) {
    auto p = Object(*v, "/parameters");
    if (!p.ok()) return p.status();
    for (const auto& [k, x] : **p) {
      auto port = PortKey(k, PointerAppend("/parameters", k));
      if (!port.ok()) return port.status();
      def.parameters.emplace_back(*port, x);
    }
  }
  // time
  const json::value* horizon = o.if_contains("horizon");
  const json::value* step = o.if_contains("step");
  if (horizon == nullptr) return Invalid("/horizon", "missing: how long to simulate");
  if (step == nullptr) return Invalid("/step", "missing: the communication step");
  auto h = Seconds(*horizon, "/horizon", false);
  if (!h.ok()) return h.status();
  auto s = Seconds(*step, "/step", false);
  if (!s.ok()) return s.status();
  def.horizon = *h;
  def.step = *s;
  if (def.horizon / def.step > 1e7) {
    return Invalid("/step", "more than 10,000,000 communication steps: make the step larger");
  }
  if (const json::value* v = o.if_contains("start")) {
    if (!v->is_number() || !std::isfinite(v->to_number<double>())) {
      return Invalid("/start", "expected a finite number (seconds)");
    }
    def.start = v->to_number<double>();
  }
  // inputs
  if (const json::value* v = o.if_contains("inputs")) {
    auto in = Object(*v, "/inputs");
    if (!in.ok()) return in.status();
    for (const auto& [k, x] : **in) {
      const std::string at = PointerAppend("/inputs", k);
      auto port = PortKey(k, at);
      if (!port.ok()) return port.status();
      auto series = Object(x, at);
      if (!series.ok()) return series.status();
      const json::value* times = (*series)->if_contains("times");
      const json::value* values = (*series)->if_contains("values");
      if (times == nullptr) return Invalid(PointerAppend(at, "times"), "missing");
      if (values == nullptr) return Invalid(PointerAppend(at, "values"), "missing");
      auto ts = Numbers(*times, PointerAppend(at, "times"));
      if (!ts.ok()) return ts.status();
      auto vs = Numbers(*values, PointerAppend(at, "values"));
      if (!vs.ok()) return vs.status();
      if (ts->empty() || ts->size() != vs->size()) {
        return Invalid(at, "times and values must be non-empty and of the same length");
      }
      for (std::size_t i = 1; i < ts->size(); ++i) {
        if ((*ts)[i] <= (*ts)[i - 1]) {
          return Invalid(PointerAppend(PointerAppend(at, "times"), i), "times must increase");
        }
      }
      bool linear = false;
      if (const json::value* interp = (*series)->if_contains("interpolation")) {
        if (!interp->is_string() ||
            (interp->get_string() != "step" && interp->get_string() != "linear")) {
          return Invalid(PointerAppend(at, "interpolation"), "expected \"step\" or \"linear\"");
        }
        linear = interp->get_string() == "linear";
      }
      def.inputs.push_back({*port, std::move(*ts), std::move(*vs), linear});
    }
  }
  // events
  if (const json::value* v = o.if_contains("events")) {
    if (!v->is_array()) return Invalid("/events", "expected an array");
    for (std::size_t i = 0; i < v->get_array().size(); ++i) {
      const std::string at = PointerAppend("/events", i);
      auto e = Object(v->get_array()[i], at);
      if (!e.ok()) return e.status();
      InjectedEvent ev;
      const json::value* when = (*e)->if_contains("at");
      if (when == nullptr) return Invalid(PointerAppend(at, "at"), "missing: when (seconds)");
      auto t = Seconds(*when, PointerAppend(at, "at"), true);
      if (!t.ok()) return t.status();
      ev.at = *t;
      if (const json::value* n = (*e)->if_contains("name"); n != nullptr && n->is_string()) {
        ev.name = std::string(n->get_string());
      }
      const json::value* set = (*e)->if_contains("set");
      if (set == nullptr || !set->is_object() || set->get_object().empty()) {
        return Invalid(PointerAppend(at, "set"), "expected an object of variable: value");
      }
      for (const auto& [k, x] : set->get_object()) {
        auto port = PortKey(k, PointerAppend(PointerAppend(at, "set"), k));
        if (!port.ok()) return port.status();
        ev.set.emplace_back(*port, x);
      }
      def.events.push_back(std::move(ev));
    }
    std::stable_sort(def.events.begin(), def.events.end(),
                     [](const InjectedEvent& a, const InjectedEvent& b) { return a.at < b.at; });
  }
  if (const json::value* v = o.if_contains("record")) {
    if (!v->is_array()) return Invalid("/record", "expected an array of \"unit.variable\"");
    for (std::size_t i = 0; i < v->get_array().size(); ++i) {
      auto p = Port(v->get_array()[i], PointerAppend("/record", i));
      if (!p.ok()) return p.status();
      def.record.push_back(*p);
    }
  }
  if (const json::value* v = o.if_contains("kpis")) {
    auto k = Object(*v, "/kpis");
    if (!k.ok()) return k.status();
    for (const auto& [name, x] : **k) {
      const std::string at = PointerAppend("/kpis", name);
      if (!x.is_string()) return Invalid(at, "expected an expression (a string)");
      auto e = KpiExpression::Parse(std::string_view(x.get_string()));
      if (!e.ok()) return Status(e.status().code(), e.status().message(), at);
      def.kpis.emplace_back(std::string(name), std::move(*e));
    }
  }
  if (def.record.empty() && def.kpis.empty()) {
    return Invalid("/record", "nothing to record and no KPI: the run would tell nothing");
  }
  if (const json::value* v = o.if_contains("uncertainty")) {
    auto u = Object(*v, "/uncertainty");
    if (!u.ok()) return u.status();
    const json::value* runs = (*u)->if_contains("runs");
    if (runs == nullptr || !runs->is_int64() || runs->get_int64() < 2 ||
        runs->get_int64() > 1'000'000) {
      return Invalid("/uncertainty/runs", "expected an integer from 2 to 1,000,000");
    }
    def.runs = static_cast<std::size_t>(runs->get_int64());
    if (const json::value* seed = (*u)->if_contains("seed")) {
      if (!seed->is_int64() || seed->get_int64() < 0) {
        return Invalid("/uncertainty/seed", "expected a non-negative integer");
      }
      def.seed = static_cast<std::uint64_t>(seed->get_int64());
    }
    const json::value* params = (*u)->if_contains("parameters");
    if (params == nullptr || !params->is_object() || params->get_object().empty()) {
      return Invalid("/uncertainty/parameters", "expected an object of variable: distribution");
    }
    for (const auto& [k, x] : params->get_object()) {
      const std::string at = PointerAppend("/uncertainty/parameters", k);
      auto port = PortKey(k, at);
      if (!port.ok()) return port.status();
      auto h = EmpiricalFromHistory(x, at);
      if (!h.ok()) return h.status();
      if (*h) {
        // A placeholder until ResolveHistory reads the values.
        def.uncertain.push_back(
            {*port, *montecarlo::ParameterDistribution::Constant(0), std::move(*h), at});
        continue;
      }
      auto d = Distribution(x, at);
      if (!d.ok()) return d.status();
      def.uncertain.push_back({*port, std::move(*d), std::nullopt, at});
    }
    if (def.kpis.empty()) {
      return Invalid("/kpis", "a Monte Carlo summarizes KPIs: define at least one");
    }
  }
  return def;
}

namespace {

// A built co-simulation: units added and connected, values set, variables recorded,
// not initialized (inputs and events at the start are applied by Simulate first).
// run_seed (Monte Carlo runs): a unit with an integer parameter "seed" that the definition does
// not set gets run_seed + its index, so that a stochastic unit (DES) varies from run to run too.
Result<std::unique_ptr<CoSimulation>> Build(const ScenarioDefinition& def, const UnitKinds& kinds,
                                            const std::vector<std::pair<PortRef, Value>>& bound,
                                            std::span<const double> draws,
                                            std::optional<std::uint64_t> run_seed = std::nullopt) {
  auto sim = std::make_unique<CoSimulation>();
  for (std::size_t ui = 0; ui < def.units.size(); ++ui) {
    const UnitSpec& u = def.units[ui];
    auto it = kinds.find(u.kind);
    if (it == kinds.end()) {
      std::string known;
      for (const auto& [k, b] : kinds) {
        (void)b;
        known += (known.empty() ? "" : ", ") + k;
      }
      return Status("SCENARIO_UNKNOWN_KIND",
                    fmt::format("unit '{}': unknown kind '{}' (known: {})", u.name, u.kind, known),
                    PointerAppend(u.pointer, "kind"));
    }
    auto unit = it->second(u);
    if (!unit.ok()) {
      const std::string& at = unit.status().pointer();
      return Status(unit.status().code(),
                    fmt::format("unit '{}': {}", u.name, unit.status().message()),
                    at.starts_with(u.pointer) ? at : u.pointer);
    }
    if (run_seed) {
      auto seed = (*unit)->Find("seed");
      const bool set_by_definition = std::any_of(
          def.parameters.begin(), def.parameters.end(),
          [&](const auto& p) { return p.first.unit == u.name && p.first.variable == "seed"; });
      if (seed.ok() && !set_by_definition &&
          (*unit)->variables()[*seed].type == ValueType::kInteger &&
          (*unit)->variables()[*seed].causality == Causality::kParameter) {
        const auto value = static_cast<std::int64_t>((*run_seed + ui) & 0x7fffffffffffffffULL);
        if (Status st = (*unit)->Set(*seed, Value(value)); !st.ok()) return st;
      }
    }
    if (Status s = sim->AddUnit(u.name, std::move(*unit)); !s.ok()) return s;
  }
  for (std::size_t i = 0; i < def.connections.size(); ++i) {
    if (Status s = sim->Connect(def.connections[i]); !s.ok()) {
      return Status(s.code(), s.message(), PointerAppend("/connections", i));
    }
  }
  for (const auto& [port, value] : bound) {
    if (Status s = sim->Set(port, value); !s.ok()) return s;
  }
  for (const auto& [port, v] : def.parameters) {
    if (Status s = SetJson(*sim, port, v, "parameter"); !s.ok()) {
      return Status(s.code(), s.message(), PointerAppend("/parameters", port.ToString()));
    }
  }
  for (std::size_t i = 0; i < draws.size(); ++i) {
    const PortRef& port = def.uncertain[i].variable;
    if (Status s = SetJson(*sim, port, json::value(draws[i]), "uncertain parameter"); !s.ok()) {
      return Status(s.code(), s.message(),
                    PointerAppend("/uncertainty/parameters", port.ToString()));
    }
  }
  for (const PortRef& p : def.record) {
    if (Status s = sim->Record(p); !s.ok()) return s;
  }
  for (const auto& [name, kpi] : def.kpis) {
    for (const std::string& var : kpi.variables()) {
      auto p = ParsePortRef(var);
      if (!p.ok()) return p.status();
      if (Status s = sim->Record(*p); !s.ok()) {
        return Status(s.code(), fmt::format("KPI '{}': {}", name, s.message()),
                      PointerAppend("/kpis", name));
      }
    }
  }
  return sim;
}

// Sets the inputs at t and fires the events due by t (from *next_event on).
Status ApplyAt(CoSimulation& sim, const ScenarioDefinition& def, double t,
               std::size_t* next_event) {
  for (std::size_t i = 0; i < def.inputs.size(); ++i) {
    const InputSeries& in = def.inputs[i];
    if (Status s = SetJson(sim, in.variable, json::value(in.At(t - def.start)), "input"); !s.ok()) {
      return Status(s.code(), s.message(), PointerAppend("/inputs", in.variable.ToString()));
    }
  }
  const double eps = def.step * 1e-9;
  while (*next_event < def.events.size() && def.start + def.events[*next_event].at <= t + eps) {
    const InjectedEvent& ev = def.events[*next_event];
    for (const auto& [port, v] : ev.set) {
      if (Status s = SetJson(sim, port, v, "event"); !s.ok()) {
        return Status(s.code(), s.message(), PointerAppend("/events", *next_event));
      }
    }
    ++*next_event;
  }
  return {};
}

// Initializes and runs to the horizon. progress(fraction) every ~1% of the steps.
Status Simulate(CoSimulation& sim, const ScenarioDefinition& def, const std::atomic<bool>* cancel,
                const std::function<void(double)>& progress) {
  std::size_t next_event = 0;
  sim.SetCommunicationHook([&](double t) { return ApplyAt(sim, def, t, &next_event); });
  if (Status s = sim.Initialize(def.start); !s.ok()) return s;
  const double end = def.start + def.horizon;
  const auto steps = static_cast<std::size_t>(std::ceil(def.horizon / def.step - 1e-9));
  const std::size_t every = std::max<std::size_t>(1, steps / 100);
  for (std::size_t k = 0; k < steps && !sim.terminated(); ++k) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
      return Status("SCENARIO_CANCELLED", "the run was cancelled");
    }
    const double t = sim.time();
    const double dt = std::min(def.step, end - t);
    if (dt <= def.step * 1e-9) break;
    if (Status s = sim.Step(dt); !s.ok()) return s;
    if (progress && (k + 1) % every == 0) progress(static_cast<double>(k + 1) / steps);
  }
  return {};
}

Result<std::vector<std::pair<PortRef, Value>>> ReadBindings(const ScenarioDefinition& def,
                                                            const BindingSource& source) {
  std::vector<std::pair<PortRef, Value>> out;
  if (def.bindings.empty()) return out;
  if (!source) {
    return Status("SCENARIO_BINDING",
                  "this scenario binds twin properties, but no twin source "
                  "is available here");
  }
  for (std::size_t i = 0; i < def.bindings.size(); ++i) {
    const Binding& b = def.bindings[i];
    auto v = source(b, def.at_ns);
    if (!v.ok()) {
      return Status("SCENARIO_BINDING",
                    fmt::format("{} <- twin '{}' path '{}': {}", b.variable.ToString(), b.twin,
                                b.path, v.status().message()),
                    PointerAppend("/bindings", i));
    }
    // Numbers keep their JSON form; the type is checked against the variable when set.
    Value value;
    if (v->is_bool()) {
      value = v->get_bool();
    } else if (v->is_int64()) {
      value = v->get_int64();
    } else if (v->is_number()) {
      value = v->to_number<double>();
    } else if (v->is_string()) {
      value = std::string(v->get_string());
    } else {
      return Status("SCENARIO_BINDING",
                    fmt::format("{} <- twin '{}' path '{}': the value {} is not a number, "
                                "boolean or string",
                                b.variable.ToString(), b.twin, b.path, core::Abbreviate(*v)),
                    PointerAppend("/bindings", i));
    }
    out.emplace_back(b.variable, std::move(value));
  }
  return out;
}

// Integer-typed JSON from the twin may feed a real variable: convert by the variable's type.
Result<std::vector<std::pair<PortRef, Value>>> Typed(std::vector<std::pair<PortRef, Value>> bound,
                                                     const ScenarioDefinition& def,
                                                     const UnitKinds& kinds) {
  if (bound.empty()) return bound;
  auto probe = Build(def, kinds, {}, {});
  if (!probe.ok()) return probe.status();
  for (std::size_t i = 0; i < bound.size(); ++i) {
    auto& [port, value] = bound[i];
    auto cur = (*probe)->Get(port);
    if (!cur.ok()) {
      return Status(cur.status().code(), cur.status().message(), PointerAppend("/bindings", i));
    }
    if (cur->index() == value.index()) continue;
    json::value j = std::visit(
        [](const auto& x) -> json::value {
          if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::string>) {
            return json::value(std::string_view(x));
          } else {
            return json::value(x);
          }
        },
        value);
    auto converted = ToValue(j, static_cast<ValueType>(cur->index()), "binding " + port.ToString());
    if (!converted.ok()) {
      return Status("SCENARIO_BINDING", converted.status().message(),
                    PointerAppend("/bindings", i));
    }
    value = std::move(*converted);
  }
  return bound;
}

Result<std::vector<double>> Kpis(const ScenarioDefinition& def, const Recording& r) {
  std::vector<double> out;
  for (const auto& [name, kpi] : def.kpis) {
    auto v = kpi.Evaluate(r);
    if (!v.ok()) return Status(v.status().code(), v.status().message(), "/kpis/" + name);
    out.push_back(*v);
  }
  return out;
}

}  // namespace

// The definition with its empirical distributions from history filled in.
Result<ScenarioDefinition> ResolveHistory(const ScenarioDefinition& def,
                                          const HistorySource& history) {
  ScenarioDefinition out = def;
  for (UncertainParameter& u : out.uncertain) {
    if (!u.from_history) continue;
    const HistorySample& h = *u.from_history;
    if (!history) {
      return Status("SCENARIO_HISTORY",
                    "an empirical distribution from history needs the "
                    "history store, which is not available here",
                    u.pointer);
    }
    auto values = history(h);
    if (!values.ok()) {
      return Status(
          "SCENARIO_HISTORY",
          fmt::format("twin '{}' path '{}': {}", h.twin, h.path, values.status().message()),
          u.pointer);
    }
    std::erase_if(*values, [](double x) { return !std::isfinite(x); });
    if (values->size() < 2) {
      return Status("SCENARIO_HISTORY",
                    fmt::format("twin '{}' path '{}' has {} finite value(s) in that range; an "
                                "empirical distribution needs at least 2",
                                h.twin, h.path, values->size()),
                    u.pointer);
    }
    auto d = montecarlo::ParameterDistribution::Empirical(std::move(*values));
    if (!d.ok()) return Status("SCENARIO_HISTORY", d.status().message(), u.pointer);
    u.distribution = std::move(*d);
  }
  return out;
}

Status ValidateScenario(const ScenarioDefinition& def_in, const UnitKinds& kinds,
                        const BindingSource& bindings, const HistorySource& history) {
  auto resolved = ResolveHistory(def_in, history);
  if (!resolved.ok()) return resolved.status();
  const ScenarioDefinition& def = *resolved;
  auto bound = ReadBindings(def, bindings);
  if (!bound.ok()) return bound.status();
  auto typed = Typed(std::move(*bound), def, kinds);
  if (!typed.ok()) return typed.status();
  auto sim = Build(def, kinds, *typed, {});
  if (!sim.ok()) return sim.status();
  std::size_t next_event = 0;
  (*sim)->SetCommunicationHook([&](double t) { return ApplyAt(**sim, def, t, &next_event); });
  // Every event's variables must exist and take the value (checked on a throwaway copy).
  auto probe = Build(def, kinds, *typed, {});
  if (!probe.ok()) return probe.status();
  for (std::size_t i = 0; i < def.events.size(); ++i) {
    for (const auto& [port, v] : def.events[i].set) {
      if (Status s = SetJson(**probe, port, v, "event"); !s.ok()) {
        return Status(s.code(), s.message(), PointerAppend("/events", i));
      }
    }
  }
  return (*sim)->Initialize(def.start);
}

Result<ScenarioResult> RunScenario(const ScenarioDefinition& def_in, const UnitKinds& kinds,
                                   const BindingSource& bindings, const RunControl& control,
                                   const HistorySource& history) {
  auto resolved = ResolveHistory(def_in, history);
  if (!resolved.ok()) return resolved.status();
  const ScenarioDefinition& def = *resolved;
  auto bound = ReadBindings(def, bindings);
  if (!bound.ok()) return bound.status();
  auto typed = Typed(std::move(*bound), def, kinds);
  if (!typed.ok()) return typed.status();
  const double base_share = def.runs > 0 ? 0.1 : 1.0;
  std::mutex progress_mu;
  auto report = [&](double f, const std::string& what) {
    if (!control.progress) return;
    std::lock_guard lock(progress_mu);
    control.progress(f, what);
  };
  ScenarioResult result;
  result.name = def.name;
  result.seed = def.seed;
  {
    auto sim = Build(def, kinds, *typed, {});
    if (!sim.ok()) return sim.status();
    if (Status s = Simulate(**sim, def, control.cancel,
                            [&](double f) { report(f * base_share, "base run"); });
        !s.ok()) {
      return s;
    }
    result.recording = (*sim)->recording();
  }
  auto base = Kpis(def, result.recording);
  if (!base.ok()) return base.status();
  for (std::size_t i = 0; i < def.kpis.size(); ++i) {
    if (!std::isfinite((*base)[i])) {
      return Status("SCENARIO_NON_FINITE",
                    fmt::format("KPI '{}' of the base run is {}", def.kpis[i].first, (*base)[i]),
                    "/kpis/" + def.kpis[i].first);
    }
    result.kpis.push_back({def.kpis[i].first, (*base)[i], std::nullopt});
  }
  if (def.runs == 0) return result;

  std::vector<montecarlo::Parameter> params;
  for (const UncertainParameter& u : def.uncertain) {
    params.push_back({u.variable.ToString(), u.distribution});
  }
  // Every run's outputs: its KPIs, then each recorded variable at the band times (the base
  // run's, at most kMaxBandPoints of its rows): montecarlo::Run's quantiles of those outputs
  // are the bands.
  const Recording& rec = result.recording;
  std::vector<double> band_times;
  if (!rec.time.empty()) {
    const std::size_t rows = rec.time.size();
    // At most kMaxBandOutputs values per run over every variable, at least 2 times each.
    const std::size_t per_variable =
        std::max<std::size_t>(2, kMaxBandOutputs / std::max<std::size_t>(1, rec.names.size()));
    const std::size_t n = std::min({rows, kMaxBandPoints, per_variable});
    for (std::size_t j = 0; j < n; ++j) {
      band_times.push_back(rec.time[n == 1 ? 0 : j * (rows - 1) / (n - 1)]);
    }
  }
  std::vector<std::string> names;
  for (const auto& [name, kpi] : def.kpis) names.push_back(name);
  for (const std::string& v : rec.names) {
    for (double t : band_times) names.push_back(fmt::format("{}@{}", v, t));
  }
  const std::size_t n_kpis = def.kpis.size();
  montecarlo::Options opt;
  opt.runs = def.runs;
  opt.threads = std::max<std::size_t>(1, control.threads);
  opt.seed = def.seed;
  opt.quantiles = {0.05, 0.25, 0.5, 0.75, 0.95};
  opt.cancel = control.cancel;
  opt.keep_runs = true;
  opt.progress = [&](std::size_t done, std::size_t total) {
    report(base_share + (1 - base_share) * static_cast<double>(done) / static_cast<double>(total),
           fmt::format("Monte Carlo run {} of {}", done, total));
  };
  auto mc = montecarlo::Run(
      params, names,
      [&](const montecarlo::RunInput& in) -> Result<std::vector<double>> {
        auto sim = Build(def, kinds, *typed, in.parameters, in.seed);
        if (!sim.ok()) return sim.status();
        if (Status s = Simulate(**sim, def, control.cancel, {}); !s.ok()) return s;
        const Recording& r = (*sim)->recording();
        auto out = Kpis(def, r);
        if (!out.ok()) return out;
        for (const std::string& v : rec.names) {
          const std::vector<double>* col = r.Column(v);
          for (double t : band_times) {
            // The last row at or before t.
            auto it = std::upper_bound(r.time.begin(), r.time.end(), t);
            const bool have = col != nullptr && it != r.time.begin();
            out->push_back(have ? (*col)[static_cast<std::size_t>(it - r.time.begin()) - 1]
                                : std::nan(""));
          }
        }
        return out;
      },
      opt);
  if (!mc.ok()) return mc.status();
  if (mc->cancelled) return Status("SCENARIO_CANCELLED", "the run was cancelled");
  result.runs_requested = mc->runs_requested;
  result.runs_completed = mc->runs_completed;
  result.runs_failed = mc->runs_failed;
  result.first_failure = mc->first_failure;
  result.kpi_runs.assign(n_kpis, std::vector<double>(def.runs, std::nan("")));
  for (std::size_t r = 0; r < mc->results.size(); ++r) {
    for (std::size_t k = 0; k < n_kpis && k < mc->results[r].size(); ++k) {
      result.kpi_runs[k][r] = mc->results[r][k];
    }
  }
  for (std::size_t k = 0; k < n_kpis; ++k) {
    const montecarlo::OutputSummary& o = mc->outputs[k];
    KpiSpread s;
    s.runs = o.finite;
    s.non_finite = o.non_finite;
    s.mean = o.mean;
    s.stddev = o.stddev;
    if (o.quantiles.size() == 5) {
      s.p5 = o.quantiles[0];
      s.p50 = o.quantiles[2];
      s.p95 = o.quantiles[4];
    }
    s.histogram_lo = o.histogram.lo;
    s.histogram_hi = o.histogram.hi;
    s.histogram = o.histogram.counts;
    result.kpis[k].spread = s;
  }
  for (std::size_t v = 0; v < rec.names.size(); ++v) {
    TimeBand b;
    b.name = rec.names[v];
    b.time = band_times;
    for (std::size_t j = 0; j < band_times.size(); ++j) {
      const montecarlo::OutputSummary& o = mc->outputs[n_kpis + v * band_times.size() + j];
      const bool have = o.finite > 0 && o.quantiles.size() == 5;
      const double nan = std::nan("");
      b.p5.push_back(have ? o.quantiles[0] : nan);
      b.p25.push_back(have ? o.quantiles[1] : nan);
      b.p50.push_back(have ? o.quantiles[2] : nan);
      b.p75.push_back(have ? o.quantiles[3] : nan);
      b.p95.push_back(have ? o.quantiles[4] : nan);
      b.mean.push_back(have ? o.mean : nan);
      b.runs.push_back(o.finite);
    }
    result.bands.push_back(std::move(b));
  }
  return result;
}

Result<Recommendation> Recommend(
    const std::vector<std::pair<std::string, const ScenarioResult*>>& results,
    const std::string& objective, bool minimize) {
  if (results.size() < 2) {
    return Status("SCENARIO_INVALID", "compare at least two results (the first is the baseline)");
  }
  auto kpi_index = [&](const ScenarioResult& r) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < r.kpis.size(); ++i) {
      if (r.kpis[i].name == objective) return i;
    }
    return std::nullopt;
  };
  for (const auto& [name, r] : results) {
    if (!kpi_index(*r)) {
      return Status("SCENARIO_INVALID",
                    fmt::format("result '{}' has no KPI '{}'", name, objective));
    }
  }
  const ScenarioResult& base = *results[0].second;
  const std::size_t bk = *kpi_index(base);
  auto value_of = [&](const ScenarioResult& r, std::size_t k) {
    return r.kpis[k].spread ? r.kpis[k].spread->mean : r.kpis[k].value;
  };
  const double base_value = value_of(base, bk);
  const double scale = std::abs(base_value) > 0 ? std::abs(base_value) : 1.0;
  Recommendation rec;
  for (const auto& [name, r] : results) {
    const std::size_t k = *kpi_index(*r);
    Ranked row;
    row.scenario = name;
    row.value = value_of(*r, k);
    row.change_pct = (row.value - base_value) / scale * 100;
    if (r != &base && r->kpis[k].spread && base.kpis[bk].spread) {
      const auto& a = r->kpi_runs[k];
      const auto& b = base.kpi_runs[bk];
      // Same seed and runs: run i of both drew the same parameter values (common random
      // numbers), so the run-by-run differences carry the uncertainty of the change.
      if (r->seed == base.seed && a.size() == b.size()) {
        double sum = 0, sum2 = 0;
        std::size_t n = 0;
        for (std::size_t i = 0; i < a.size(); ++i) {
          if (!std::isfinite(a[i]) || !std::isfinite(b[i])) continue;
          const double d = (a[i] - b[i]) / scale * 100;
          sum += d;
          sum2 += d * d;
          ++n;
        }
        if (n >= 2) {
          const double mean = sum / static_cast<double>(n);
          const double var = std::max(
              0.0, (sum2 - static_cast<double>(n) * mean * mean) / static_cast<double>(n - 1));
          row.change_pct = mean;
          row.plus_minus_pct = 1.96 * std::sqrt(var / static_cast<double>(n));
          row.paired = true;
        }
      } else {
        const KpiSpread& sa = *r->kpis[k].spread;
        const KpiSpread& sb = *base.kpis[bk].spread;
        if (sa.runs >= 2 && sb.runs >= 2) {
          row.plus_minus_pct = 1.96 *
                               std::sqrt(sa.stddev * sa.stddev / static_cast<double>(sa.runs) +
                                         sb.stddev * sb.stddev / static_cast<double>(sb.runs)) /
                               scale * 100;
        }
      }
    }
    rec.ranking.push_back(row);
  }
  std::stable_sort(rec.ranking.begin(), rec.ranking.end(), [&](const Ranked& a, const Ranked& b) {
    return minimize ? a.value < b.value : a.value > b.value;
  });
  rec.best = rec.ranking.front().scenario;
  const Ranked& best = rec.ranking.front();
  if (best.scenario == results[0].first) {
    rec.text = fmt::format("keep {}: no alternative {} {} ({} {:.4g})", best.scenario,
                           minimize ? "lowers" : "raises", objective, objective, best.value);
  } else {
    const double pct = std::abs(best.change_pct);
    const std::string verb = best.change_pct < 0 ? "cuts" : "raises";
    std::string uncertainty;
    if (best.plus_minus_pct > 0) {
      uncertainty = fmt::format(" ± {:.1f}%", best.plus_minus_pct);
    }
    std::string basis = best.plus_minus_pct > 0
                            ? (best.paired ? " (95% confidence, paired Monte Carlo runs)"
                                           : " (95% confidence, independent Monte Carlo runs)")
                            : " (single runs: no uncertainty given; add an \"uncertainty\" block)";
    const bool significant = best.plus_minus_pct == 0 || pct > best.plus_minus_pct;
    rec.text = fmt::format("{} {} {} {:.1f}%{} vs {}{}{}", best.scenario, verb, objective, pct,
                           uncertainty, results[0].first, basis,
                           significant ? "" : "; the difference is within the uncertainty");
  }
  return rec;
}

}  // namespace doppel::sim::scenario
