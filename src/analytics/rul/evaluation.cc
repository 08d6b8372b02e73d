// RUL evaluation metrics (declared in rul_model.h): the two numbers C-MAPSS results are
// compared by (see ../shared/data/cmapss/README.md, "Standard evaluation").
#include <cmath>

#include "analytics/rul/rul_model.h"

namespace doppel::analytics::rul {

double Rmse(std::span<const double> predicted, std::span<const double> truth) {
  double sum = 0;
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    const double d = predicted[i] - truth[i];
    sum += d * d;
  }
  return std::sqrt(sum / static_cast<double>(predicted.size()));
}

double Phm08Score(std::span<const double> predicted, std::span<const double> truth) {
  double score = 0;
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    const double d = predicted[i] - truth[i];
    score += d < 0 ? std::exp(-d / 13) - 1 : std::exp(d / 10) - 1;
  }
  return score;
}

}  // namespace doppel::analytics::rul
