// doppel::sim::scenario — KPI expressions: a number computed from a run's recorded series.
//
// Syntax: an arithmetic expression (muParser: + - * / ^, parentheses, min/max of numbers, abs,
// sqrt, exp, log, if-then-else `a > b ? x : y`, …) whose operands are numbers and aggregates of
// recorded variables:
//   min(unit.var)  max(unit.var)  mean(unit.var)  first(unit.var)  last(unit.var)
//   std(unit.var)  integral(unit.var)   (trapezoid over time, in the variable's unit × seconds)
//   time_above(unit.var, threshold)     (seconds the series spends above the threshold,
//                                        linear between communication points)
// e.g. "integral(motor.P) / 3600000" (kWh), "max(motor.T) - 80", "time_above(motor.T, 85) / 60".
// A bare variable outside an aggregate is an error (which value would it be?).
//
// Error code: SCENARIO_KPI (syntax, an unknown or unrecorded variable, a bare variable), with
// the expression and muParser's message.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "sim/co_simulation.h"

namespace doppel::sim::scenario {

class KpiExpression {
 public:
  // Parses `text`; the variables it aggregates are in variables() (to be recorded).
  static core::Result<KpiExpression> Parse(std::string_view text);
  const std::vector<std::string>& variables() const { return variables_; }
  // The value over `r` (which must record every variable of variables()).
  core::Result<double> Evaluate(const Recording& r) const;
  const std::string& text() const { return text_; }

 private:
  enum class Agg { kMin, kMax, kMean, kFirst, kLast, kStd, kIntegral, kTimeAbove };
  struct Term {
    Agg agg;
    std::string variable;
    double threshold = 0;  // time_above
  };
  std::string text_;
  std::string rewritten_;  // aggregates replaced by _k0, _k1, …
  std::vector<Term> terms_;
  std::vector<std::string> variables_;
};

}  // namespace doppel::sim::scenario
