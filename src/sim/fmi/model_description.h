// doppel::sim::fmi — modelDescription.xml, read into plain data (FMI 2.0 and 3.0).
//
// Only what a co-simulation importer needs is kept. Variables doppel cannot exchange through
// sim::Unit (FMI 3 arrays, Binary, Clock, the independent variable) are counted in `skipped`, not
// listed. Internal to sim/fmi (and its tests and benchmark); the public manual is fmu.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "sim/unit.h"

namespace doppel::sim::fmi {

enum class FmiVersion { kFmi2, kFmi3 };

// The FMI type of a variable. FMI 2's Real is kFloat64, its Integer kInt32.
enum class FmiType {
  kFloat32,
  kFloat64,
  kInt8,
  kUInt8,
  kInt16,
  kUInt16,
  kInt32,
  kUInt32,
  kInt64,
  kUInt64,
  kBoolean,
  kString,
  kEnumeration,
};

// The element name of a type as the version writes it ("Real" / "Float64", ...).
std::string_view FmiTypeName(FmiType type, FmiVersion version);

struct ModelVariable {
  std::string name;
  std::uint32_t value_reference = 0;
  FmiType type = FmiType::kFloat64;
  std::string causality = "local";  // as written: parameter, input, output, local, ...
  std::string variability;          // as written or the standard's default
  std::string initial;              // as written, empty when absent
  std::optional<Value> start;       // typed: double, int64 (all integer kinds), bool, string
  std::string unit;
  std::string description;
  bool is_state = false;  // some variable's `derivative` attribute points at it
};

struct CoSimulationCapabilities {
  std::string model_identifier;
  bool can_handle_variable_communication_step_size = false;
  bool needs_execution_tool = false;
  bool can_be_instantiated_only_once_per_process = false;
  bool has_event_mode = false;  // FMI 3
};

struct DefaultExperiment {
  std::optional<double> start_time;
  std::optional<double> stop_time;
  std::optional<double> tolerance;
  std::optional<double> step_size;
};

struct ModelDescription {
  FmiVersion version = FmiVersion::kFmi2;
  std::string fmi_version;  // the attribute as written, e.g. "2.0", "3.0.1"
  std::string model_name;
  std::string instantiation_token;  // FMI 2 guid, FMI 3 instantiationToken
  std::string generation_tool;
  bool has_model_exchange = false;
  std::optional<CoSimulationCapabilities> co_simulation;
  DefaultExperiment experiment;
  std::vector<ModelVariable> variables;
  std::size_t skipped = 0;  // variables not exposed (see the top comment)
};

// Parses a modelDescription.xml. Errors:
//   FMI_BAD_MODEL_DESCRIPTION  malformed XML ("line L, column C: ..."), not an
//                              fmiModelDescription, a required attribute missing or invalid, a
//                              start value that does not parse as the variable's type;
//   FMI_UNSUPPORTED_VERSION    fmiVersion other than 2.0.x / 3.0.x.
// `where` names the document in messages.
core::Result<ModelDescription> ParseModelDescription(
    std::string_view xml, std::string_view where = "modelDescription.xml");

}  // namespace doppel::sim::fmi
