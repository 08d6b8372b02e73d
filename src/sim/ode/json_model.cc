// The declarative model form: JSON with muParser expressions (format in docs/sim-models.md).
//
// Parsing resolves everything once: names (one namespace for states, parameters, inputs and
// outputs, plus the time `t`), every expression compiled against that namespace, the order in
// which outputs are evaluated (outputs may use outputs; cycles are refused). An instance then
// binds one muParser per expression to its own value array laid out as
//   [t][states...][parameters...][inputs...][outputs...]
// and copies the solver's point into that array before evaluating. muParser throws; every call
// into it is inside a try here.
#include <fmt/format.h>
#include <muParser.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "sim/ode/ode.h"

namespace doppel::sim::ode {

namespace json = core::json;

struct Expression {
  std::string text;
  std::string pointer;
  std::vector<std::size_t> uses;  // symbol indices
};

class ModelDefinition {
 public:
  ModelInfo info;
  std::vector<std::string> symbols;  // t, states, parameters, inputs, outputs
  std::vector<Expression> derivatives;
  std::vector<Expression> outputs;
  std::vector<std::size_t> output_order;  // dependencies first
  struct EventDef {
    Expression when;
    std::vector<std::pair<std::size_t, Expression>> sets;  // state index, new value
  };
  std::vector<EventDef> events;
  bool derivatives_use_outputs = false;
  bool events_use_outputs = false;

  std::size_t first_output() const {
    return 1 + info.states.size() + info.parameters.size() + info.inputs.size();
  }
};

namespace {

using core::PointerAppend;
using core::Status;

// Names muParser gives a meaning (functions, constants) and the time.
constexpr std::array<std::string_view, 29> kReserved = {
    "t",     "sin",   "cos",   "tan",  "asin",  "acos", "atan", "sinh", "cosh", "tanh",
    "asinh", "acosh", "atanh", "log2", "log10", "log",  "ln",   "exp",  "sqrt", "sign",
    "rint",  "abs",   "min",   "max",  "sum",   "avg",  "_pi",  "_e",   "pi"};

Status BadDefinition(std::string message, std::string pointer) {
  return {"SIM_BAD_DEFINITION", std::move(message), std::move(pointer)};
}

bool IsIdentifier(std::string_view s) {
  if (s.empty() || (std::isalpha(static_cast<unsigned char>(s[0])) == 0 && s[0] != '_')) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

// Where `name` first occurs as a whole identifier in `text` (for messages), or npos.
std::size_t FindIdentifier(std::string_view text, std::string_view name) {
  auto is_ident = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  };
  for (std::size_t pos = text.find(name); pos != std::string_view::npos;
       pos = text.find(name, pos + 1)) {
    const bool left = pos == 0 || !is_ident(text[pos - 1]);
    const bool right = pos + name.size() >= text.size() || !is_ident(text[pos + name.size()]);
    if (left && right) return pos;
  }
  return std::string_view::npos;
}

Status CheckMembers(const json::object& o, std::initializer_list<std::string_view> allowed,
                    const std::string& pointer) {
  for (const auto& kv : o) {
    if (std::find(allowed.begin(), allowed.end(), kv.key()) == allowed.end()) {
      return BadDefinition(fmt::format("unknown member '{}'", std::string_view(kv.key())),
                           PointerAppend(pointer, kv.key()));
    }
  }
  return {};
}

core::Result<double> Number(const json::value& v, const std::string& pointer) {
  if (!v.is_number()) {
    return BadDefinition(fmt::format("expected a number, got {}", core::KindName(v)), pointer);
  }
  const double d = v.to_number<double>();
  if (!std::isfinite(d)) {
    return Status("SIM_NON_FINITE", fmt::format("{} is not a finite number", core::Abbreviate(v)),
                  pointer);
  }
  return d;
}

core::Result<std::string> String(const json::value& v, const std::string& pointer) {
  if (!v.is_string()) {
    return BadDefinition(fmt::format("expected a string, got {}", core::KindName(v)), pointer);
  }
  return std::string(v.get_string());
}

class Builder {
 public:
  core::Result<std::shared_ptr<const ModelDefinition>> Build(const json::value& root) {
    def_ = std::make_shared<ModelDefinition>();
    if (!root.is_object()) return BadDefinition("a model definition is a JSON object", "");
    const json::object& o = root.get_object();
    if (auto s = CheckMembers(
            o, {"name", "description", "states", "parameters", "inputs", "outputs", "events"}, "");
        !s.ok()) {
      return s;
    }
    for (std::string_view key : {"name", "description"}) {
      if (const auto* v = o.if_contains(key); v != nullptr && !v->is_string()) {
        return BadDefinition("expected a string", PointerAppend("", key));
      }
    }
    // Pass 1: every name, so expressions may use names declared further down.
    const auto* states = o.if_contains("states");
    if (states == nullptr || !states->is_object() || states->get_object().empty()) {
      return BadDefinition("\"states\" must be an object with at least one state", "/states");
    }
    if (auto s = States(states->get_object()); !s.ok()) return s;
    if (auto s = Values(o, "parameters", "value", def_->info.parameters); !s.ok()) return s;
    if (auto s = Values(o, "inputs", "start", def_->info.inputs); !s.ok()) return s;
    if (auto s = Outputs(o); !s.ok()) return s;
    if (auto s = Events(o); !s.ok()) return s;
    // Pass 2: compile every expression against the whole namespace.
    def_->symbols.emplace_back("t");
    for (const auto* vars :
         {&def_->info.states, &def_->info.parameters, &def_->info.inputs, &def_->info.outputs}) {
      for (const auto& v : *vars) def_->symbols.push_back(v.name);
    }
    const std::size_t y0 = def_->first_output();
    auto uses_output = [&](const Expression& e) {
      return std::any_of(e.uses.begin(), e.uses.end(), [&](std::size_t i) { return i >= y0; });
    };
    for (auto& e : def_->derivatives) {
      if (auto s = Compile(e); !s.ok()) return s;
      def_->derivatives_use_outputs |= uses_output(e);
    }
    for (auto& e : def_->outputs) {
      if (auto s = Compile(e); !s.ok()) return s;
    }
    for (auto& ev : def_->events) {
      if (auto s = Compile(ev.when); !s.ok()) return s;
      def_->events_use_outputs |= uses_output(ev.when);
      for (auto& [state, e] : ev.sets) {
        if (auto s = Compile(e); !s.ok()) return s;
        def_->events_use_outputs |= uses_output(e);
      }
    }
    if (auto s = OrderOutputs(); !s.ok()) return s;
    return std::shared_ptr<const ModelDefinition>(std::move(def_));
  }

 private:
  Status Declare(const std::string& name, const std::string& pointer) {
    if (!IsIdentifier(name)) {
      return {"SIM_BAD_NAME",
              fmt::format(
                  "'{}' is not a name: use letters, digits and _, not starting with a digit", name),
              pointer};
    }
    if (std::find(kReserved.begin(), kReserved.end(), name) != kReserved.end()) {
      return {"SIM_BAD_NAME",
              fmt::format("'{}' is reserved (the time or a muParser function or constant)", name),
              pointer};
    }
    auto [it, inserted] = declared_.emplace(name, pointer);
    if (!inserted) {
      return {"SIM_DUPLICATE_NAME", fmt::format("'{}' is already defined at {}", name, it->second),
              pointer};
    }
    return {};
  }

  Status States(const json::object& states) {
    for (const auto& kv : states) {
      const std::string name(kv.key());
      const std::string ptr = PointerAppend("/states", name);
      if (auto s = Declare(name, ptr); !s.ok()) return s;
      if (!kv.value().is_object()) {
        return BadDefinition("a state is an object with \"der\" (and \"start\", \"unit\")", ptr);
      }
      const json::object& st = kv.value().get_object();
      if (auto s = CheckMembers(st, {"start", "der", "unit", "description"}, ptr); !s.ok()) {
        return s;
      }
      ModelVariable var{name, 0, {}, {}};
      if (const auto* v = st.if_contains("start")) {
        auto start = Number(*v, PointerAppend(ptr, "start"));
        if (!start.ok()) return start.status();
        var.start = *start;
      }
      if (auto s = Texts(st, ptr, var); !s.ok()) return s;
      const auto* der = st.if_contains("der");
      if (der == nullptr) {
        return {"SIM_MISSING_DER", fmt::format("state '{}' has no \"der\" expression", name), ptr};
      }
      auto text = String(*der, PointerAppend(ptr, "der"));
      if (!text.ok()) return text.status();
      def_->derivatives.push_back(Expression{*text, PointerAppend(ptr, "der"), {}});
      def_->info.states.push_back(std::move(var));
    }
    return {};
  }

  static Status Texts(const json::object& o, const std::string& ptr, ModelVariable& var) {
    for (auto [key, field] : {std::pair{"unit", &var.unit}, {"description", &var.description}}) {
      if (const auto* v = o.if_contains(key)) {
        auto text = String(*v, PointerAppend(ptr, key));
        if (!text.ok()) return text.status();
        *field = *text;
      }
    }
    return {};
  }

  // "parameters" and "inputs": name -> number, or name -> {<value_key>: number, unit, ...}.
  Status Values(const json::object& root, std::string_view section, std::string_view value_key,
                std::vector<ModelVariable>& out) {
    const auto* sec = root.if_contains(section);
    if (sec == nullptr) return {};
    const std::string sec_ptr = PointerAppend("", section);
    if (!sec->is_object()) return BadDefinition("expected an object", sec_ptr);
    for (const auto& kv : sec->get_object()) {
      const std::string name(kv.key());
      const std::string ptr = PointerAppend(sec_ptr, name);
      if (auto s = Declare(name, ptr); !s.ok()) return s;
      ModelVariable var{name, 0, {}, {}};
      if (kv.value().is_object()) {
        const json::object& vo = kv.value().get_object();
        if (auto s = CheckMembers(vo, {value_key, "unit", "description"}, ptr); !s.ok()) return s;
        const auto* v = vo.if_contains(value_key);
        if (v == nullptr) {
          return BadDefinition(fmt::format("'{}' needs \"{}\"", name, value_key), ptr);
        }
        auto d = Number(*v, PointerAppend(ptr, value_key));
        if (!d.ok()) return d.status();
        var.start = *d;
        if (auto s = Texts(vo, ptr, var); !s.ok()) return s;
      } else {
        auto d = Number(kv.value(), ptr);
        if (!d.ok()) return d.status();
        var.start = *d;
      }
      out.push_back(std::move(var));
    }
    return {};
  }

  Status Outputs(const json::object& root) {
    const auto* sec = root.if_contains("outputs");
    if (sec == nullptr) return {};
    if (!sec->is_object()) return BadDefinition("expected an object", "/outputs");
    for (const auto& kv : sec->get_object()) {
      const std::string name(kv.key());
      const std::string ptr = PointerAppend("/outputs", name);
      if (auto s = Declare(name, ptr); !s.ok()) return s;
      ModelVariable var{name, 0, {}, {}};
      Expression e;
      if (kv.value().is_object()) {
        const json::object& vo = kv.value().get_object();
        if (auto s = CheckMembers(vo, {"expr", "unit", "description"}, ptr); !s.ok()) return s;
        const auto* v = vo.if_contains("expr");
        if (v == nullptr) return BadDefinition(fmt::format("'{}' needs \"expr\"", name), ptr);
        auto text = String(*v, PointerAppend(ptr, "expr"));
        if (!text.ok()) return text.status();
        e = Expression{*text, PointerAppend(ptr, "expr"), {}};
        if (auto s = Texts(vo, ptr, var); !s.ok()) return s;
      } else {
        auto text = String(kv.value(), ptr);
        if (!text.ok()) return text.status();
        e = Expression{*text, ptr, {}};
      }
      def_->outputs.push_back(std::move(e));
      def_->info.outputs.push_back(std::move(var));
    }
    return {};
  }

  Status Events(const json::object& root) {
    const auto* sec = root.if_contains("events");
    if (sec == nullptr) return {};
    if (!sec->is_array()) return BadDefinition("expected an array", "/events");
    std::map<std::string, std::string> names;
    std::size_t index = 0;
    for (const auto& ev : sec->get_array()) {
      const std::string ptr = PointerAppend("/events", index++);
      if (!ev.is_object()) return BadDefinition("an event is an object", ptr);
      const json::object& eo = ev.get_object();
      if (auto s = CheckMembers(eo, {"name", "when", "direction", "set"}, ptr); !s.ok()) return s;
      ModelEvent info{fmt::format("event{}", index - 1), Crossing::kEither};
      if (const auto* v = eo.if_contains("name")) {
        auto name = String(*v, PointerAppend(ptr, "name"));
        if (!name.ok()) return name.status();
        if (name->empty()) return {"SIM_BAD_NAME", "an event name is not empty", ptr + "/name"};
        info.name = *name;
      }
      if (auto [it, inserted] = names.emplace(info.name, ptr); !inserted) {
        return {"SIM_DUPLICATE_NAME",
                fmt::format("event '{}' is already defined at {}", info.name, it->second),
                PointerAppend(ptr, "name")};
      }
      if (const auto* v = eo.if_contains("direction")) {
        auto dir = String(*v, PointerAppend(ptr, "direction"));
        if (!dir.ok()) return dir.status();
        if (*dir == "rising") {
          info.crossing = Crossing::kRising;
        } else if (*dir == "falling") {
          info.crossing = Crossing::kFalling;
        } else if (*dir != "either") {
          return BadDefinition(
              fmt::format("direction is \"rising\", \"falling\" or \"either\", not \"{}\"", *dir),
              PointerAppend(ptr, "direction"));
        }
      }
      ModelDefinition::EventDef def;
      const auto* when = eo.if_contains("when");
      if (when == nullptr) return BadDefinition("an event needs \"when\"", ptr);
      auto when_text = String(*when, PointerAppend(ptr, "when"));
      if (!when_text.ok()) return when_text.status();
      def.when = Expression{*when_text, PointerAppend(ptr, "when"), {}};
      if (const auto* set = eo.if_contains("set")) {
        const std::string set_ptr = PointerAppend(ptr, "set");
        if (!set->is_object()) return BadDefinition("expected an object", set_ptr);
        for (const auto& kv : set->get_object()) {
          const std::string target(kv.key());
          const std::string target_ptr = PointerAppend(set_ptr, target);
          const auto& st = def_->info.states;
          auto it = std::find_if(st.begin(), st.end(),
                                 [&](const ModelVariable& v) { return v.name == target; });
          if (it == st.end()) {
            return {"SIM_BAD_EVENT_TARGET",
                    fmt::format("an event can only set states; '{}' is not a state", target),
                    target_ptr};
          }
          auto text = String(kv.value(), target_ptr);
          if (!text.ok()) return text.status();
          def.sets.emplace_back(static_cast<std::size_t>(it - st.begin()),
                                Expression{*text, target_ptr, {}});
        }
      }
      def_->events.push_back(std::move(def));
      def_->info.events.push_back(std::move(info));
    }
    return {};
  }

  // Compiles `e` against every symbol; fills e.uses.
  Status Compile(Expression& e) const {
    const auto& symbols = def_->symbols;
    std::vector<double> dummy(symbols.size(), 1.0);
    try {
      mu::Parser parser;
      for (std::size_t i = 0; i < symbols.size(); ++i) parser.DefineVar(symbols[i], &dummy[i]);
      parser.SetExpr(e.text);
      // GetUsedVar parses the whole expression and lists every variable, defined or not.
      const auto used = parser.GetUsedVar();
      for (const auto& [name, ptr] : used) {
        auto it = std::find(symbols.begin(), symbols.end(), name);
        if (it == symbols.end()) {
          const std::size_t pos = FindIdentifier(e.text, name);
          return {"SIM_UNKNOWN_SYMBOL",
                  fmt::format("'{}' at position {} of \"{}\" is not a state, parameter, input, "
                              "output or t",
                              name, pos == std::string::npos ? 0 : pos, e.text),
                  e.pointer};
        }
        e.uses.push_back(static_cast<std::size_t>(it - symbols.begin()));
      }
      (void)parser.Eval();  // the full compile, with every name bound
    } catch (const mu::Parser::exception_type& err) {
      return {"SIM_EXPR_SYNTAX",
              fmt::format("\"{}\": {} (position {})", e.text, err.GetMsg(), err.GetPos()),
              e.pointer};
    } catch (const std::exception& err) {
      return {"SIM_EXPR_SYNTAX", fmt::format("\"{}\": {}", e.text, err.what()), e.pointer};
    }
    return {};
  }

  // Evaluation order of outputs (depth first, dependencies first); SIM_CYCLIC_OUTPUTS on a cycle.
  Status OrderOutputs() {
    const std::size_t y0 = def_->first_output();
    const std::size_t n = def_->outputs.size();
    enum Mark : char { kNew, kOpen, kDone };
    std::vector<Mark> mark(n, kNew);
    std::vector<std::size_t> path;
    std::function<Status(std::size_t)> visit = [&](std::size_t i) -> Status {
      if (mark[i] == kDone) return {};
      if (mark[i] == kOpen) {
        auto from = std::find(path.begin(), path.end(), i);
        std::string cycle;
        for (auto it = from; it != path.end(); ++it) cycle += def_->info.outputs[*it].name + " -> ";
        cycle += def_->info.outputs[i].name;
        return {"SIM_CYCLIC_OUTPUTS", fmt::format("outputs depend on each other: {}", cycle),
                def_->outputs[i].pointer};
      }
      mark[i] = kOpen;
      path.push_back(i);
      for (std::size_t u : def_->outputs[i].uses) {
        if (u < y0) continue;
        if (auto s = visit(u - y0); !s.ok()) return s;
      }
      path.pop_back();
      mark[i] = kDone;
      def_->output_order.push_back(i);
      return {};
    };
    for (std::size_t i = 0; i < n; ++i) {
      if (auto s = visit(i); !s.ok()) return s;
    }
    return {};
  }

  std::shared_ptr<ModelDefinition> def_;
  std::map<std::string, std::string> declared_;  // name -> pointer of its declaration
};

class JsonModel final : public OdeModel {
 public:
  explicit JsonModel(std::shared_ptr<const ModelDefinition> def)
      : def_(std::move(def)), values_(def_->symbols.size(), 0.0) {
    auto make = [&](const Expression& e) {
      auto p = std::make_unique<mu::Parser>();
      for (std::size_t i = 0; i < def_->symbols.size(); ++i) {
        p->DefineVar(def_->symbols[i], &values_[i]);
      }
      p->SetExpr(e.text);
      return p;
    };
    for (const auto& e : def_->derivatives) derivatives_.push_back(make(e));
    for (const auto& e : def_->outputs) outputs_.push_back(make(e));
    for (const auto& ev : def_->events) {
      when_.push_back(make(ev.when));
      auto& sets = sets_.emplace_back();
      for (const auto& [state, e] : ev.sets) sets.push_back(make(e));
    }
  }

  const ModelInfo& info() const override { return def_->info; }

  bool Derivatives(const ModelPoint& at, std::span<double> dx) override {
    try {
      Load(at);
      if (def_->derivatives_use_outputs) ComputeOutputs();
      for (std::size_t i = 0; i < derivatives_.size(); ++i) dx[i] = derivatives_[i]->Eval();
      return true;
    } catch (...) {
      return false;
    }
  }

  bool Outputs(const ModelPoint& at, std::span<double> y) override {
    try {
      Load(at);
      ComputeOutputs();
      const std::size_t y0 = def_->first_output();
      std::copy(values_.begin() + static_cast<std::ptrdiff_t>(y0), values_.end(), y.begin());
      return true;
    } catch (...) {
      return false;
    }
  }

  bool EventIndicators(const ModelPoint& at, std::span<double> g) override {
    try {
      Load(at);
      if (def_->events_use_outputs) ComputeOutputs();
      for (std::size_t i = 0; i < when_.size(); ++i) g[i] = when_[i]->Eval();
      return true;
    } catch (...) {
      return false;
    }
  }

  bool OnEvent(std::size_t index, const ModelPoint& at, std::span<double> x) override {
    try {
      Load(at);
      if (def_->events_use_outputs) ComputeOutputs();
      // Every new value from the values before the event, then assign them all.
      const auto& sets = def_->events[index].sets;
      std::vector<double> next(sets.size());
      for (std::size_t i = 0; i < sets.size(); ++i) next[i] = sets_[index][i]->Eval();
      for (std::size_t i = 0; i < sets.size(); ++i) x[sets[i].first] = next[i];
      return true;
    } catch (...) {
      return false;
    }
  }

 private:
  void Load(const ModelPoint& at) {
    auto out = values_.begin();
    *out++ = at.t;
    out = std::copy(at.x.begin(), at.x.end(), out);
    out = std::copy(at.p.begin(), at.p.end(), out);
    std::copy(at.u.begin(), at.u.end(), out);
  }

  void ComputeOutputs() {
    const std::size_t y0 = def_->first_output();
    for (std::size_t i : def_->output_order) values_[y0 + i] = outputs_[i]->Eval();
  }

  std::shared_ptr<const ModelDefinition> def_;
  std::vector<double> values_;  // muParser holds pointers into it: never resized
  std::vector<std::unique_ptr<mu::Parser>> derivatives_, outputs_, when_;
  std::vector<std::vector<std::unique_ptr<mu::Parser>>> sets_;
};

}  // namespace

core::Result<std::shared_ptr<const ModelDefinition>> ModelDefinitionFromJson(const json::value& v) {
  return Builder().Build(v);
}

core::Result<std::shared_ptr<const ModelDefinition>> ParseModelDefinition(std::string_view text) {
  auto v = core::ParseJson(text);
  if (!v.ok()) return v.status();
  return ModelDefinitionFromJson(*v);
}

const ModelInfo& DefinitionInfo(const ModelDefinition& definition) { return definition.info; }

core::Result<std::unique_ptr<OdeModel>> Instantiate(
    std::shared_ptr<const ModelDefinition> definition) {
  if (definition == nullptr) return core::Status("SIM_BAD_DEFINITION", "no definition given");
  try {
    return std::unique_ptr<OdeModel>(std::make_unique<JsonModel>(std::move(definition)));
  } catch (const std::exception& e) {
    return core::Status("SIM_BAD_DEFINITION", fmt::format("cannot instantiate: {}", e.what()));
  }
}

ModelFactory DefinitionFactory(std::shared_ptr<const ModelDefinition> definition) {
  return [definition = std::move(definition)] { return Instantiate(definition); };
}

}  // namespace doppel::sim::ode
