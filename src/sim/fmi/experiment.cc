#include "sim/fmi/experiment.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace doppel::sim::fmi {
namespace {

std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

core::Result<ExperimentPlan> PlanExperiment(const FmuUnit& unit, const ExperimentOptions& options) {
  const DefaultExperiment& de = unit.description().experiment;
  ExperimentPlan plan;
  plan.start = options.start_time.value_or(de.start_time.value_or(0.0));
  plan.stop = options.stop_time.value_or(de.stop_time.value_or(plan.start + 1.0));
  if (!(plan.stop >= plan.start)) {
    return core::Status("FMI_BAD_EXPERIMENT",
                        fmt::format("stop time {} is before start time {}", plan.stop, plan.start));
  }
  plan.step = options.step_size.value_or(de.step_size.value_or((plan.stop - plan.start) / 500));
  if (plan.stop == plan.start) return plan;
  if (!(plan.step > 0) || !std::isfinite(plan.step)) {
    return core::Status("FMI_BAD_EXPERIMENT",
                        fmt::format("the step size {} is not positive", plan.step));
  }
  // A whole number of steps when the interval is (nearly) a multiple of the step, so that 0.1
  // steps over [0, 1] are 10 steps and not 11 with a last one of 1e-16.
  double n = (plan.stop - plan.start) / plan.step;
  double whole = std::round(n);
  plan.steps = static_cast<std::size_t>(
      std::abs(n - whole) < 1e-9 * std::max(1.0, n) ? whole : std::ceil(n));
  return plan;
}

core::Result<Value> ParseValue(const Unit& unit, std::size_t index, const std::string& text) {
  const Variable& var = unit.variables().at(index);
  auto wrong = [&](const char* what) {
    return core::Status("SIM_WRONG_TYPE",
                        fmt::format("'{}' is not {} (variable '{}')", text, what, var.name));
  };
  switch (var.type) {
    case ValueType::kReal: {
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size()) return wrong("a real number");
      return Value(v);
    }
    case ValueType::kInteger: {
      std::int64_t v = 0;
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
        return wrong("an integer");
      }
      return Value(v);
    }
    case ValueType::kBoolean:
      if (text == "true" || text == "1") return Value(true);
      if (text == "false" || text == "0") return Value(false);
      return wrong("a boolean (true, false, 1, 0)");
    case ValueType::kString:
      return Value(text);
  }
  return wrong("a value");
}

std::vector<std::size_t> OutputIndices(const Unit& unit) {
  std::vector<std::size_t> out;
  const auto& vars = unit.variables();
  for (std::size_t i = 0; i < vars.size(); ++i) {
    if (vars[i].causality == Causality::kOutput) out.push_back(i);
  }
  return out;
}

core::Status RunExperiment(
    FmuUnit& unit, const ExperimentOptions& options,
    const std::function<core::Status(double, const std::vector<Value>&)>& row) {
  auto plan = PlanExperiment(unit, options);
  if (!plan.ok()) return plan.status();
  for (const auto& [name, text] : options.start_values) {
    auto index = unit.Find(name);
    if (!index.ok()) return index.status();
    auto value = ParseValue(unit, *index, text);
    if (!value.ok()) return value.status();
    if (auto s = unit.Set(*index, *value); !s.ok()) return s;
  }
  const bool variable_step =
      unit.description().co_simulation->can_handle_variable_communication_step_size;
  // A fixed-step FMU gets whole steps only; the stop time it is told is where they end.
  double end = variable_step ? plan->stop : plan->start + plan->steps * plan->step;
  unit.SetExperiment(unit.description().experiment.tolerance, end);
  if (auto s = unit.Initialize(plan->start); !s.ok()) return s;

  const std::vector<std::size_t> columns = OutputIndices(unit);
  std::vector<Value> values(columns.size());
  auto emit = [&](double t) -> core::Status {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      auto v = unit.Get(columns[c]);
      if (!v.ok()) return v.status();
      values[c] = std::move(*v);
    }
    return row(t, values);
  };
  if (auto s = emit(plan->start); !s.ok()) return s;
  double t = plan->start;
  for (std::size_t i = 1; i <= plan->steps; ++i) {
    double next = plan->start + static_cast<double>(i) * plan->step;
    if (variable_step && next > plan->stop) next = plan->stop;
    auto outcome = unit.Step(t, next - t);
    if (!outcome.ok()) return outcome.status();
    if (auto s = emit(outcome->time_reached); !s.ok()) return s;
    if (options.progress) options.progress(i, plan->steps);
    if (outcome->terminate) break;
    t = next;
  }
  return unit.Terminate();
}

std::string CsvHeader(const Unit& unit, const std::vector<std::size_t>& columns) {
  std::string out = "time";
  for (std::size_t c : columns) out += "," + CsvField(unit.variables()[c].name);
  return out;
}

std::string CsvRow(double time, const std::vector<Value>& values) {
  std::string out = fmt::format("{}", time);
  for (const auto& v : values) {
    out += ',';
    if (const auto* d = std::get_if<double>(&v)) {
      out += fmt::format("{}", *d);
    } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
      out += fmt::format("{}", *i);
    } else if (const auto* b = std::get_if<bool>(&v)) {
      out += *b ? '1' : '0';
    } else {
      out += CsvField(std::get<std::string>(v));
    }
  }
  return out;
}

}  // namespace doppel::sim::fmi
