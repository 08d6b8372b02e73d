// Random variates from std::mt19937_64 by our own formulas, so a seed gives the same numbers with
// every standard library.
#include <fmt/format.h>

#include <cmath>
#include <numbers>

#include "sim/des/des.h"

namespace doppel::sim::des {

std::uint64_t StreamSeed(std::uint64_t seed, std::uint64_t index) {
  // SplitMix64 (Steele, Lea, Flood 2014) of the (index + 1)-th state after `seed`.
  std::uint64_t z = seed + (index + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double RandomStream::Exponential(double mean) { return -mean * std::log(Uniform01()); }

double RandomStream::Normal(double mean, double sd) {
  const double u1 = Uniform01();
  const double u2 = Uniform01();
  return mean + sd * std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
}

double RandomStream::Triangular(double lo, double mode, double hi) {
  const double u = Uniform01();
  const double width = hi - lo;
  if (width <= 0) return lo;
  if (u < (mode - lo) / width) return lo + std::sqrt(u * width * (mode - lo));
  return hi - std::sqrt((1 - u) * width * (hi - mode));
}

namespace {

core::Status Finite(std::initializer_list<double> values) {
  for (double v : values) {
    if (!std::isfinite(v)) {
      return {"SIM_NON_FINITE", fmt::format("distribution parameter {} is not finite", v)};
    }
  }
  return {};
}

core::Status Bad(std::string message) { return {"SIM_BAD_PARAMETER", std::move(message)}; }

}  // namespace

core::Result<Distribution> Distribution::Constant(double value) {
  if (auto s = Finite({value}); !s.ok()) return s;
  if (value < 0) return Bad(fmt::format("a duration cannot be negative ({})", value));
  return Distribution(Kind::kConstant, value, 0, 0);
}

core::Result<Distribution> Distribution::Exponential(double mean) {
  if (auto s = Finite({mean}); !s.ok()) return s;
  if (mean <= 0) return Bad(fmt::format("an exponential mean must be positive ({})", mean));
  return Distribution(Kind::kExponential, mean, 0, 0);
}

core::Result<Distribution> Distribution::Uniform(double lo, double hi) {
  if (auto s = Finite({lo, hi}); !s.ok()) return s;
  if (lo < 0 || lo > hi) return Bad(fmt::format("uniform needs 0 <= lo <= hi ({}, {})", lo, hi));
  return Distribution(Kind::kUniform, lo, hi, 0);
}

core::Result<Distribution> Distribution::Triangular(double lo, double mode, double hi) {
  if (auto s = Finite({lo, mode, hi}); !s.ok()) return s;
  if (lo < 0 || mode < lo || hi < mode) {
    return Bad(fmt::format("triangular needs 0 <= lo <= mode <= hi ({}, {}, {})", lo, mode, hi));
  }
  return Distribution(Kind::kTriangular, lo, mode, hi);
}

core::Result<Distribution> Distribution::Lognormal(double mean, double sd) {
  if (auto s = Finite({mean, sd}); !s.ok()) return s;
  if (mean <= 0 || sd < 0) {
    return Bad(fmt::format("lognormal needs mean > 0 and sd >= 0 ({}, {})", mean, sd));
  }
  // The underlying normal: sigma^2 = ln(1 + cv^2), mu = ln(mean) - sigma^2 / 2.
  const double s2 = std::log1p((sd / mean) * (sd / mean));
  return Distribution(Kind::kLognormal, std::log(mean) - s2 / 2, std::sqrt(s2), mean);
}

core::Result<Distribution> Distribution::WithMeanAndCv(double mean, double cv) {
  if (auto s = Finite({mean, cv}); !s.ok()) return s;
  if (mean <= 0 || cv < 0) {
    return Bad(fmt::format("needs mean > 0 and cv >= 0 ({}, {})", mean, cv));
  }
  if (cv == 0) return Constant(mean);
  if (cv == 1) return Exponential(mean);
  return Lognormal(mean, cv * mean);
}

double Distribution::Sample(RandomStream& rng) const {
  switch (kind_) {
    case Kind::kConstant:
      return a_;
    case Kind::kExponential:
      return rng.Exponential(a_);
    case Kind::kUniform:
      return a_ + (b_ - a_) * rng.Uniform01();
    case Kind::kTriangular:
      return rng.Triangular(a_, b_, c_);
    case Kind::kLognormal:
      return std::exp(rng.Normal(a_, b_));
  }
  return a_;
}

double Distribution::mean() const {
  switch (kind_) {
    case Kind::kConstant:
    case Kind::kExponential:
      return a_;
    case Kind::kUniform:
      return (a_ + b_) / 2;
    case Kind::kTriangular:
      return (a_ + b_ + c_) / 3;
    case Kind::kLognormal:
      return c_;
  }
  return a_;
}

}  // namespace doppel::sim::des
