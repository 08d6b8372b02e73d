#include "sim/scenario/kpi.h"

#include <fmt/format.h>
#include <muParser.h>

#include <algorithm>
#include <cmath>
#include <regex>

namespace doppel::sim::scenario {

using core::Result;
using core::Status;

namespace {

Status KpiError(std::string_view text, const std::string& why) {
  return Status("SCENARIO_KPI", fmt::format("KPI '{}': {}", std::string(text), why));
}

double Aggregate(int agg, const std::vector<double>& t, const std::vector<double>& v,
                 double threshold) {
  const std::size_t n = v.size();
  if (n == 0) return std::nan("");
  switch (agg) {
    case 0:
      return *std::min_element(v.begin(), v.end());
    case 1:
      return *std::max_element(v.begin(), v.end());
    case 2: {
      double s = 0;
      for (double x : v) s += x;
      return s / static_cast<double>(n);
    }
    case 3:
      return v.front();
    case 4:
      return v.back();
    case 5: {
      double mean = 0;
      for (double x : v) mean += x;
      mean /= static_cast<double>(n);
      double ss = 0;
      for (double x : v) ss += (x - mean) * (x - mean);
      return n > 1 ? std::sqrt(ss / static_cast<double>(n - 1)) : 0.0;
    }
    case 6: {
      double s = 0;
      for (std::size_t i = 1; i < n; ++i) s += 0.5 * (v[i] + v[i - 1]) * (t[i] - t[i - 1]);
      return s;
    }
    default: {  // time above threshold, linear between points
      double s = 0;
      for (std::size_t i = 1; i < n; ++i) {
        const double a = v[i - 1] - threshold, b = v[i] - threshold, dt = t[i] - t[i - 1];
        if (a > 0 && b > 0) {
          s += dt;
        } else if (a > 0 || b > 0) {
          s += dt * std::max(a, b) / std::abs(b - a);  // the part above the crossing
        }
      }
      return s;
    }
  }
}

}  // namespace

Result<KpiExpression> KpiExpression::Parse(std::string_view text) {
  KpiExpression k;
  k.text_ = std::string(text);
  // agg(unit.variable) or time_above(unit.variable, number); variable names may hold dots and
  // brackets (FMI), not parentheses or commas.
  static const std::regex kAgg(
      R"((min|max|mean|first|last|std|integral|time_above)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*\.[A-Za-z0-9_.\[\]]+)\s*(?:,\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*)?\))");
  std::string out;
  auto begin = k.text_.cbegin();
  for (std::sregex_iterator it(k.text_.begin(), k.text_.end(), kAgg), end; it != end; ++it) {
    const std::smatch& m = *it;
    const std::string name = m[1].str();
    static const char* kNames[] = {"min",  "max", "mean",     "first",
                                   "last", "std", "integral", "time_above"};
    const auto agg = static_cast<Agg>(std::find(std::begin(kNames), std::end(kNames), name) -
                                      std::begin(kNames));
    const bool has_threshold = m[3].matched;
    if ((agg == Agg::kTimeAbove) != has_threshold) {
      return KpiError(text, agg == Agg::kTimeAbove
                                ? "time_above needs a threshold: time_above(unit.var, 85)"
                                : name + " takes one variable");
    }
    Term term{agg, m[2].str(), has_threshold ? std::stod(m[3].str()) : 0.0};
    out.append(begin, m[0].first);
    out += fmt::format("_k{}", k.terms_.size());
    begin = m[0].second;
    if (std::find(k.variables_.begin(), k.variables_.end(), term.variable) == k.variables_.end()) {
      k.variables_.push_back(term.variable);
    }
    k.terms_.push_back(std::move(term));
  }
  out.append(begin, k.text_.cend());
  k.rewritten_ = out;
  // Syntax check now, with every term at 1.
  std::vector<double> values(k.terms_.size(), 1.0);
  try {
    mu::Parser p;
    for (std::size_t i = 0; i < values.size(); ++i) p.DefineVar(fmt::format("_k{}", i), &values[i]);
    p.SetExpr(k.rewritten_);
    (void)p.Eval();
  } catch (const mu::Parser::exception_type& e) {
    const std::string& tok = e.GetToken();
    if (e.GetCode() == mu::ecUNASSIGNABLE_TOKEN || e.GetCode() == mu::ecUNEXPECTED_VAR) {
      return KpiError(text, fmt::format("'{}' is not an aggregate of a recorded variable (use "
                                        "min/max/mean/first/last/std/integral(unit.var) or "
                                        "time_above(unit.var, threshold))",
                                        tok));
    }
    return KpiError(text, e.GetMsg());
  }
  if (k.terms_.empty()) return KpiError(text, "it aggregates no variable");
  return k;
}

Result<double> KpiExpression::Evaluate(const Recording& r) const {
  std::vector<double> values(terms_.size());
  for (std::size_t i = 0; i < terms_.size(); ++i) {
    const std::vector<double>* col = r.Column(terms_[i].variable);
    if (col == nullptr) return KpiError(text_, "'" + terms_[i].variable + "' was not recorded");
    values[i] = Aggregate(static_cast<int>(terms_[i].agg), r.time, *col, terms_[i].threshold);
  }
  try {
    mu::Parser p;
    for (std::size_t i = 0; i < values.size(); ++i) p.DefineVar(fmt::format("_k{}", i), &values[i]);
    p.SetExpr(rewritten_);
    return p.Eval();
  } catch (const mu::Parser::exception_type& e) {
    return KpiError(text_, e.GetMsg());
  }
}

}  // namespace doppel::sim::scenario
