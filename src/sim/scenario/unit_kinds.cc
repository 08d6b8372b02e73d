#include "sim/scenario/unit_kinds.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "core/json.h"
#include "sim/des/des.h"
#include "sim/fmi/fmu.h"
#include "sim/ode/ode.h"

namespace doppel::sim::scenario {

namespace json = boost::json;
using core::PointerAppend;
using core::Result;
using core::Status;

namespace {

Status Invalid(const UnitSpec& spec, std::string_view member, const std::string& why) {
  return Status("SCENARIO_INVALID", why,  // the scenario prefixes the unit's name
                member.empty() ? spec.pointer : PointerAppend(spec.pointer, member));
}

Status OnlyMembers(const UnitSpec& spec, std::initializer_list<std::string_view> allowed) {
  const std::set<std::string_view> names(allowed);
  for (const auto& kv : spec.spec) {
    if (kv.key() != "kind" && !names.contains(kv.key())) {
      return Invalid(
          spec, kv.key(),
          fmt::format("unknown member '{}' for kind '{}'", std::string(kv.key()), spec.kind));
    }
  }
  return {};
}

Result<std::unique_ptr<Unit>> BuildOde(const UnitSpec& spec) {
  if (Status s = OnlyMembers(spec, {"model", "definition", "solver", "rtol", "atol"}); !s.ok()) {
    return s;
  }
  const json::value* model = spec.spec.if_contains("model");
  const json::value* definition = spec.spec.if_contains("definition");
  if ((model == nullptr) == (definition == nullptr)) {
    return Invalid(spec, "",
                   "an ode unit has either \"model\" (a registered name) or "
                   "\"definition\" (a declarative model)");
  }
  Result<std::unique_ptr<ode::OdeModel>> m = Status("SCENARIO_INVALID", "");
  if (model != nullptr) {
    if (!model->is_string()) return Invalid(spec, "model", "expected a model name");
    m = ode::ModelRegistry::Create(std::string_view(model->get_string()));
    if (!m.ok()) {
      std::string names;
      for (const std::string& n : ode::ModelRegistry::Names())
        names += (names.empty() ? "" : ", ") + n;
      return Status(m.status().code(), m.status().message() + " (registered: " + names + ")",
                    PointerAppend(spec.pointer, "model"));
    }
  } else {
    auto def = ode::ModelDefinitionFromJson(*definition);
    if (!def.ok()) {
      return Status(def.status().code(), def.status().message(),
                    PointerAppend(spec.pointer, "definition") + def.status().pointer());
    }
    m = ode::Instantiate(*def);
    if (!m.ok()) return m.status();
  }
  ode::SolverOptions options;
  if (const json::value* solver = spec.spec.if_contains("solver")) {
    if (!solver->is_string() ||
        (solver->get_string() != "cvode" && solver->get_string() != "arkode")) {
      return Invalid(spec, "solver", "expected \"cvode\" (stiff, BDF) or \"arkode\" (explicit RK)");
    }
    options.solver =
        solver->get_string() == "cvode" ? ode::SolverKind::kCvodeBdf : ode::SolverKind::kArkodeErk;
  }
  for (const char* name : {"rtol", "atol"}) {
    if (const json::value* v = spec.spec.if_contains(name)) {
      if (!v->is_number() || !(v->to_number<double>() > 0) ||
          !std::isfinite(v->to_number<double>())) {
        return Invalid(spec, name, "expected a positive number");
      }
      (std::string_view(name) == "rtol" ? options.rtol : options.atol) = v->to_number<double>();
    }
  }
  auto unit = ode::OdeUnit::Create(std::move(*m), options);
  if (!unit.ok()) return unit.status();
  return std::unique_ptr<Unit>(std::move(*unit));
}

// "model": "production_line" (the default, with "machines") or "hospital_flow" (no members).
Result<std::unique_ptr<Unit>> BuildDes(const UnitSpec& spec) {
  std::string model = "production_line";
  if (const json::value* m = spec.spec.if_contains("model")) {
    if (!m->is_string() ||
        (m->get_string() != "production_line" && m->get_string() != "hospital_flow")) {
      return Invalid(spec, "model", "expected \"production_line\" or \"hospital_flow\"");
    }
    model = std::string(m->get_string());
  }
  if (model == "hospital_flow") {
    if (Status s = OnlyMembers(spec, {"model"}); !s.ok()) return s;
    auto unit = des::HospitalFlowUnit::Create();
    if (!unit.ok()) return unit.status();
    return std::unique_ptr<Unit>(std::move(*unit));
  }
  if (Status s = OnlyMembers(spec, {"model", "machines"}); !s.ok()) return s;
  const json::value* machines = spec.spec.if_contains("machines");
  if (machines == nullptr || !machines->is_int64() || machines->get_int64() < 1) {
    return Invalid(spec, "machines", "expected the number of machines (an integer >= 1)");
  }
  auto unit = des::ProductionLineUnit::Create(static_cast<std::size_t>(machines->get_int64()));
  if (!unit.ok()) return unit.status();
  return std::unique_ptr<Unit>(std::move(*unit));
}

Result<std::unique_ptr<Unit>> BuildFmu(const UnitSpec& spec, const std::filesystem::path& dir) {
  if (Status s = OnlyMembers(spec, {"file"}); !s.ok()) return s;
  const json::value* file = spec.spec.if_contains("file");
  if (file == nullptr || !file->is_string()) {
    return Invalid(spec, "file", "expected the FMU's file name");
  }
  const std::string name(file->get_string());
  if (name.empty() || name.find('/') != std::string::npos || name.find('\\') != std::string::npos ||
      name == "." || name == "..") {
    return Invalid(spec, "file", "a file name in the FMU folder, without a path");
  }
  auto unit = fmi::OpenFmu((dir / name).string());
  if (!unit.ok()) {
    return Status(unit.status().code(), unit.status().message(),
                  PointerAppend(spec.pointer, "file"));
  }
  return std::unique_ptr<Unit>(std::move(*unit));
}

}  // namespace

UnitKinds DefaultUnitKinds(const UnitKindOptions& options) {
  UnitKinds kinds;
  kinds["ode"] = BuildOde;
  kinds["des"] = BuildDes;
  if (options.fmu_dir) {
    kinds["fmu"] = [dir = *options.fmu_dir](const UnitSpec& spec) { return BuildFmu(spec, dir); };
  }
  return kinds;
}

}  // namespace doppel::sim::scenario
