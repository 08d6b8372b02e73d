#include "sim/fmi/model_description.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <map>
#include <pugixml.hpp>

namespace doppel::sim::fmi {
namespace {

constexpr char kBad[] = "FMI_BAD_MODEL_DESCRIPTION";

struct TypeEntry {
  std::string_view fmi2;  // empty: not an FMI 2 element
  std::string_view fmi3;
  FmiType type;
};

constexpr TypeEntry kTypes[] = {
    {"", "Float32", FmiType::kFloat32},
    {"Real", "Float64", FmiType::kFloat64},
    {"", "Int8", FmiType::kInt8},
    {"", "UInt8", FmiType::kUInt8},
    {"", "Int16", FmiType::kInt16},
    {"", "UInt16", FmiType::kUInt16},
    {"Integer", "Int32", FmiType::kInt32},
    {"", "UInt32", FmiType::kUInt32},
    {"", "Int64", FmiType::kInt64},
    {"", "UInt64", FmiType::kUInt64},
    {"Boolean", "Boolean", FmiType::kBoolean},
    {"String", "String", FmiType::kString},
    {"Enumeration", "Enumeration", FmiType::kEnumeration},
};

std::optional<FmiType> TypeFromElement(std::string_view element, FmiVersion version) {
  for (const auto& entry : kTypes) {
    std::string_view name = version == FmiVersion::kFmi2 ? entry.fmi2 : entry.fmi3;
    if (!name.empty() && element == name) return entry.type;
  }
  return std::nullopt;
}

std::optional<double> ParseDouble(std::string_view text) {
  std::string s(text);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

template <typename T>
std::optional<T> ParseInt(std::string_view text) {
  // xs:int/xs:long allow a leading '+'; from_chars does not.
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  T v{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

std::optional<bool> ParseBool(std::string_view text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  return std::nullopt;
}

// The start value as the variable's type; nullopt when it does not parse. Integers are range-
// checked against their FMI type; a UInt64 above INT64_MAX has no sim::Value and is reported.
std::optional<Value> ParseStart(std::string_view text, FmiType type) {
  switch (type) {
    case FmiType::kFloat32:
    case FmiType::kFloat64: {
      auto v = ParseDouble(text);
      if (!v) return std::nullopt;
      return Value(*v);
    }
    case FmiType::kBoolean: {
      auto v = ParseBool(text);
      if (!v) return std::nullopt;
      return Value(*v);
    }
    case FmiType::kString:
      return Value(std::string(text));
    case FmiType::kUInt64: {
      auto v = ParseInt<std::uint64_t>(text);
      if (!v || *v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return std::nullopt;
      }
      return Value(static_cast<std::int64_t>(*v));
    }
    default: {
      auto v = ParseInt<std::int64_t>(text);
      if (!v) return std::nullopt;
      return Value(*v);
    }
  }
}

// "line L, column C" of a byte offset.
std::string LineColumn(std::string_view text, std::ptrdiff_t offset) {
  offset = std::clamp<std::ptrdiff_t>(offset, 0, static_cast<std::ptrdiff_t>(text.size()));
  std::size_t line = 1, column = 1;
  for (std::ptrdiff_t i = 0; i < offset; ++i) {
    if (text[static_cast<std::size_t>(i)] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return fmt::format("line {}, column {}", line, column);
}

core::Status Bad(std::string_view where, const std::string& message) {
  return {kBad, fmt::format("{}: {}", where, message)};
}

// A boolean attribute with its default; an invalid value is an error.
core::Result<bool> BoolAttribute(const pugi::xml_node& node, const char* name, bool fallback,
                                 std::string_view where) {
  auto attr = node.attribute(name);
  if (!attr) return fallback;
  auto v = ParseBool(attr.value());
  if (!v) {
    return Bad(where,
               fmt::format("<{}> {}=\"{}\" is not a boolean", node.name(), name, attr.value()));
  }
  return *v;
}

core::Result<std::optional<double>> DoubleAttribute(const pugi::xml_node& node, const char* name,
                                                    std::string_view where) {
  auto attr = node.attribute(name);
  if (!attr) return std::optional<double>();
  auto v = ParseDouble(attr.value());
  if (!v) {
    return Bad(where,
               fmt::format("<{}> {}=\"{}\" is not a number", node.name(), name, attr.value()));
  }
  return std::optional<double>(*v);
}

}  // namespace

std::string_view FmiTypeName(FmiType type, FmiVersion version) {
  for (const auto& entry : kTypes) {
    if (entry.type != type) continue;
    std::string_view name = version == FmiVersion::kFmi2 ? entry.fmi2 : entry.fmi3;
    return name.empty() ? entry.fmi3 : name;
  }
  return "?";
}

core::Result<ModelDescription> ParseModelDescription(std::string_view xml, std::string_view where) {
  pugi::xml_document doc;
  pugi::xml_parse_result parsed = doc.load_buffer(xml.data(), xml.size());
  if (!parsed) {
    return Bad(where, fmt::format("{}: malformed XML: {}", LineColumn(xml, parsed.offset),
                                  parsed.description()));
  }
  pugi::xml_node root = doc.child("fmiModelDescription");
  if (!root) return Bad(where, "the root element is not <fmiModelDescription>");

  ModelDescription md;
  md.fmi_version = root.attribute("fmiVersion").value();
  std::string_view v = md.fmi_version;
  if (v == "2.0" || v.starts_with("2.0.")) {
    md.version = FmiVersion::kFmi2;
  } else if (v == "3.0" || v.starts_with("3.0.") || v.starts_with("3.0-")) {
    md.version = FmiVersion::kFmi3;
  } else {
    return core::Status("FMI_UNSUPPORTED_VERSION",
                        fmt::format("{}: fmiVersion \"{}\" is not supported (doppel imports FMI "
                                    "2.0 and 3.0)",
                                    where, md.fmi_version));
  }
  const bool fmi2 = md.version == FmiVersion::kFmi2;
  md.model_name = root.attribute("modelName").value();
  const char* token_attr = fmi2 ? "guid" : "instantiationToken";
  if (!root.attribute(token_attr)) {
    return Bad(where, fmt::format("<fmiModelDescription> has no {} attribute", token_attr));
  }
  md.instantiation_token = root.attribute(token_attr).value();
  md.generation_tool = root.attribute("generationTool").value();
  md.has_model_exchange = static_cast<bool>(root.child("ModelExchange"));

  if (pugi::xml_node cs = root.child("CoSimulation")) {
    CoSimulationCapabilities caps;
    caps.model_identifier = cs.attribute("modelIdentifier").value();
    if (caps.model_identifier.empty()) {
      return Bad(where, "<CoSimulation> has no modelIdentifier");
    }
    auto variable_step = BoolAttribute(cs, "canHandleVariableCommunicationStepSize", false, where);
    if (!variable_step) return variable_step.status();
    caps.can_handle_variable_communication_step_size = *variable_step;
    auto tool = BoolAttribute(cs, "needsExecutionTool", false, where);
    if (!tool) return tool.status();
    caps.needs_execution_tool = *tool;
    auto once = BoolAttribute(cs, "canBeInstantiatedOnlyOncePerProcess", false, where);
    if (!once) return once.status();
    caps.can_be_instantiated_only_once_per_process = *once;
    auto event_mode = BoolAttribute(cs, "hasEventMode", false, where);
    if (!event_mode) return event_mode.status();
    caps.has_event_mode = *event_mode;
    md.co_simulation = std::move(caps);
  }

  if (pugi::xml_node de = root.child("DefaultExperiment")) {
    auto start = DoubleAttribute(de, "startTime", where);
    auto stop = DoubleAttribute(de, "stopTime", where);
    auto tolerance = DoubleAttribute(de, "tolerance", where);
    auto step = DoubleAttribute(de, "stepSize", where);
    for (const auto* r : {&start, &stop, &tolerance, &step}) {
      if (!*r) return r->status();
    }
    md.experiment = {*start, *stop, *tolerance, *step};
  }

  pugi::xml_node vars = root.child("ModelVariables");
  // FMI 2: `derivative` is the 1-based index of a ScalarVariable; FMI 3: a value reference.
  std::vector<std::uint64_t> derivative_targets;
  std::map<std::size_t, std::size_t> fmi2_position_to_variable;  // ScalarVariable index → ours
  std::size_t position = 0;
  for (pugi::xml_node node : vars.children()) {
    if (node.type() != pugi::node_element) continue;
    pugi::xml_node typed = node;  // the element carrying start/unit/derivative
    std::optional<FmiType> type;
    if (fmi2) {
      if (std::string_view(node.name()) != "ScalarVariable") continue;
      ++position;
      for (pugi::xml_node child : node.children()) {
        if (child.type() != pugi::node_element) continue;
        type = TypeFromElement(child.name(), md.version);
        if (type) {
          typed = child;
          break;
        }
      }
    } else {
      ++position;
      type = TypeFromElement(node.name(), md.version);
    }
    ModelVariable var;
    var.name = node.attribute("name").value();
    const std::string label = fmt::format("variable #{} '{}'", position, var.name);
    if (var.name.empty()) return Bad(where, fmt::format("variable #{} has no name", position));
    auto vr = ParseInt<std::uint32_t>(node.attribute("valueReference").value());
    if (!vr) return Bad(where, label + " has no valid valueReference");
    var.value_reference = *vr;
    if (const char* d = typed.attribute("derivative").value(); *d != '\0') {
      auto target = ParseInt<std::uint64_t>(d);
      if (!target) return Bad(where, fmt::format("{}: derivative=\"{}\" is invalid", label, d));
      derivative_targets.push_back(*target);
    }
    var.causality = node.attribute("causality").as_string("local");
    // Binary, Clock, arrays (FMI 3 <Dimension>), the independent variable: not exchangeable.
    if (!type || (!fmi2 && node.child("Dimension")) || var.causality == "independent") {
      ++md.skipped;
      continue;
    }
    var.type = *type;
    const bool real = var.type == FmiType::kFloat32 || var.type == FmiType::kFloat64;
    var.variability = node.attribute("variability").as_string(real ? "continuous" : "discrete");
    var.initial = node.attribute("initial").value();
    var.unit = typed.attribute("unit").value();
    var.description = node.attribute("description").value();
    std::optional<std::string> start_text;
    if (auto s = typed.attribute("start")) {
      start_text = s.value();
    } else if (!fmi2 && var.type == FmiType::kString) {
      if (auto s2 = node.child("Start")) start_text = s2.attribute("value").value();
    }
    if (start_text) {
      var.start = ParseStart(*start_text, var.type);
      if (!var.start && !(var.type == FmiType::kUInt64 && ParseInt<std::uint64_t>(*start_text))) {
        return Bad(where, fmt::format("{}: start=\"{}\" is not a valid {}", label, *start_text,
                                      FmiTypeName(var.type, md.version)));
      }
    }
    if (fmi2) fmi2_position_to_variable[position] = md.variables.size();
    md.variables.push_back(std::move(var));
  }

  for (std::uint64_t target : derivative_targets) {
    if (fmi2) {
      auto it = fmi2_position_to_variable.find(static_cast<std::size_t>(target));
      if (it != fmi2_position_to_variable.end()) md.variables[it->second].is_state = true;
    } else {
      for (auto& var : md.variables) {
        if (var.value_reference == target) var.is_state = true;
      }
    }
  }
  return md;
}

}  // namespace doppel::sim::fmi
