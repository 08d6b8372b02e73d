// doppel::analytics::forecast — the model families behind Forecaster (internal to
// doppel_forecast; forecast.h describes what each does).
//
// A Model is fitted on a series prefix (index 0 is the training data's t0) and then forecasts
// from any origin of a longer series with its parameters fixed, reading only the values before
// that origin — which is what the rolling-origin backtest needs. After Fit it also remembers its
// state at the end of the fitted data, so ForecastEnd needs only the last Memory() values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "analytics/forecast/forecast.h"
#include "core/json.h"
#include "core/status.h"

namespace doppel::analytics::forecast::internal {

namespace json = core::json;

// What every family knows of the series besides its values.
struct Context {
  std::int64_t t0_ms = 0;
  std::int64_t step_ms = 1;
  int season = 1;  // m; 1: none
  const ForecastOptions* options = nullptr;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual Family family() const = 0;
  // The fewest values Fit accepts.
  virtual std::size_t MinFit() const = 0;
  // Estimates the parameters on y (y[0] is at ctx.t0_ms) and keeps the state at its end.
  // REQUIRES: y.size() >= MinFit(), finite values.
  virtual core::Status Fit(std::span<const double> y) = 0;
  // For each origin o (ascending, MinFit() <= o <= y.size()), the forecasts of times o..o+h−1
  // from y[0..o) only, with the fitted parameters: out[i·h + k].
  virtual core::Result<std::vector<double>> Forecast(std::span<const double> y,
                                                     std::span<const std::size_t> origins,
                                                     int h) const = 0;
  // How many of the last fitted values ForecastEnd reads.
  virtual std::size_t Memory() const = 0;
  // The forecast of h steps after the fitted data, whose length was `n`; tail = its last
  // Memory() values.
  virtual core::Result<std::vector<double>> ForecastEnd(std::span<const double> tail, std::size_t n,
                                                        int h) const = 0;
  virtual std::string Describe() const = 0;
  virtual std::vector<std::pair<std::string, double>> Parameters() const = 0;
  // Parameters and state (exact: doubles as decimal strings, see EncodeDouble).
  virtual json::object Save() const = 0;
  // The inverse of Save; FORECAST_MODEL_IO naming the field.
  virtual core::Status Load(const json::object& o) = 0;
};

std::unique_ptr<Model> MakeModel(Family family, const Context& ctx);

// Doubles in JSON as the shortest decimal string that reads back to the same bits.
json::string EncodeDouble(double v);
json::array EncodeDoubles(std::span<const double> v);
// FORECAST_MODEL_IO "<field>: ..." when absent or malformed.
core::Status DecodeDouble(const json::object& o, std::string_view field, double* out);
core::Status DecodeDoubles(const json::object& o, std::string_view field, std::vector<double>* out);
core::Status ModelIo(std::string_view field, std::string_view what);

std::string Base64Encode(std::span<const unsigned char> bytes);
// false on a character outside the alphabet or bad padding.
bool Base64Decode(std::string_view text, std::vector<unsigned char>* out);

// Minimizes f over R^d from x0 (Nelder-Mead, initial simplex steps `step`); returns the best
// point. Deterministic; stops after max_evals evaluations or when the simplex's values agree to
// a relative 1e−8.
std::vector<double> NelderMead(const std::function<double(const std::vector<double>&)>& f,
                               const std::vector<double>& x0, double step, int max_evals);

}  // namespace doppel::analytics::forecast::internal
