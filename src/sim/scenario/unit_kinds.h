// doppel::sim::scenario — the unit kinds a scenario's "units" may use:
//   {"kind": "ode", "model": "<registered name>"}             a built-in or registered model
//   {"kind": "ode", "definition": {...}}                      a declarative model
//                    optional "solver": "cvode" | "arkode", "rtol", "atol"   (sim/ode/ode.h)
//   {"kind": "des", "machines": 3}                            the production line (sim/des);
//                    optional "model": "production_line" (the default) | "hospital_flow"
//   {"kind": "des", "model": "hospital_flow"}                 the emergency department (sim/des)
//   {"kind": "fmu", "file": "controller.fmu"}                 an FMI 2.0/3.0 co-simulation FMU
//                    from the configured FMU folder only (a file name, no path): loading an FMU
//                    runs its code in this process, so an API client must not name any file
// Errors: SCENARIO_INVALID (the spec's shape, with its pointer), SCENARIO_UNKNOWN_KIND ("fmu"
// without a folder), and the kinds' own codes (SIM_UNKNOWN_MODEL, SIM_EXPR_SYNTAX, FMI_*, ...).
#pragma once

#include <filesystem>
#include <optional>

#include "sim/scenario/scenario.h"

namespace doppel::sim::scenario {

struct UnitKindOptions {
  std::optional<std::filesystem::path> fmu_dir;  // "fmu" units are refused without it
};

UnitKinds DefaultUnitKinds(const UnitKindOptions& options = {});

}  // namespace doppel::sim::scenario
