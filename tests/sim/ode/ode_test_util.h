// Helpers shared by the ODE tests: build units, set by name, step with checks.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "sim/ode/ode.h"

namespace doppel::sim::ode::testing {

inline std::unique_ptr<OdeUnit> Builtin(std::string_view name, const SolverOptions& options) {
  auto model = ModelRegistry::Create(name);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  auto unit = OdeUnit::Create(std::move(*model), options);
  EXPECT_TRUE(unit.ok()) << unit.status().ToString();
  return std::move(*unit);
}

inline std::unique_ptr<OdeUnit> FromJson(std::string_view json, const SolverOptions& options) {
  auto def = ParseModelDefinition(json);
  EXPECT_TRUE(def.ok()) << def.status().ToString();
  auto model = Instantiate(*def);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  auto unit = OdeUnit::Create(std::move(*model), options);
  EXPECT_TRUE(unit.ok()) << unit.status().ToString();
  return std::move(*unit);
}

inline void SetReal(Unit& unit, std::string_view name, double v) {
  auto index = unit.Find(name);
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  auto s = unit.Set(*index, v);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

inline double GetReal(const Unit& unit, std::string_view name) {
  auto index = unit.Find(name);
  EXPECT_TRUE(index.ok()) << index.status().ToString();
  if (!index.ok()) return 0;
  auto v = unit.Get(*index);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? std::get<double>(*v) : 0;
}

inline SolverOptions Tight(SolverKind kind) {
  SolverOptions o;
  o.solver = kind;
  o.rtol = 1e-11;
  o.atol = 1e-13;
  return o;
}

}  // namespace doppel::sim::ode::testing
