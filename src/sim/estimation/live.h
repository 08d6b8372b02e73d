// doppel::sim::estimation — live estimators: Kalman filters that follow a twin's telemetry as
// it arrives, estimating the states nobody measures and parameters that drift, published as
// virtual properties of the twin with their uncertainty.
//
// Definition (JSON; PUT /estimators/{id}):
//   {"twin": "machine-1",
//    "filter": "ukf",                                   // or "ekf" (default "ukf")
//    "model": {"states": {"T": {"start": 40, "der": "(P - h * (T - Ta)) / C"}},
//              "parameters": {"h": 10, "C": 5000, "Ta": 20}, "inputs": {"P": 0}},
//    "inputs": {"P": "power"},                          // model input <- twin element (held)
//    "measurement": {"path": "temperature", "of": "T", "stddev": 0.5},
//    "estimate": {"h": {"stddev": 3, "drift": 0.01}},   // parameters that may drift
//    "states": {"T": {"stddev": 5, "noise": 0.05}}}     // optional: initial sd, process noise
//   * "model" is the declarative ODE form (docs/sim-models.md): every expression checked.
//   * "measurement.of" names a state or an output of the model: what the telemetry element
//     "path" measures, with measurement noise "stddev" (> 0).
//   * "estimate" turns parameters into random-walk states: their start is the parameter's value,
//     "stddev" (> 0) the initial uncertainty, "drift" (>= 0) how fast they may move (standard
//     deviation per sqrt(second)).
//   * "states": per model state the initial standard deviation (default 1) and the process
//     noise per sqrt(second) (default 1e-3 × max(1, |start|)).
//   * "inputs": model input -> a numeric element of the twin; until a reading arrives the input
//     keeps the model's start value.
//   Errors name the member: ESTIMATOR_INVALID (shape, unknown names, non-positive noise),
//   and the model's SIM_* codes with pointers under /model.
//
// Running: Observe(reading) is called for every accepted reading (ingest's observe hook). A
// reading of an input element sets that input; a reading of the measured element advances the
// filter from the previous measurement's source time (Predict with the inputs held, RK4
// substeps of at most 1 s) and folds the reading in (Update). The first measurement only
// updates. Readings older than the last measurement are ignored (counted). Filter state is in
// memory: after a restart an estimator starts again from its definition.
//
// Published: Snapshot(id) / ForTwin(twin): per estimated quantity (model states and estimated
// parameters) its mean and standard deviation, the measurement's last innovation and normalized
// innovation squared (NIS, averages 1 when the noise settings are right), updates, ignored
// readings and the last source time. The API shows them at GET /estimators/{id}, GET
// /digitaltwins/{id}/estimates and as `$estimates` (GET /digitaltwins/{id}?includeEstimates=true).
//
// Threads: every method may be called from any thread; each estimator has its own mutex.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace doppel::sync {
struct Reading;
}

namespace doppel::sim::estimation {

// A parsed and checked estimator definition.
struct EstimatorDefinition;
core::Result<std::shared_ptr<const EstimatorDefinition>> ParseEstimator(
    const boost::json::value& json);
const std::string& EstimatorTwin(const EstimatorDefinition& d);

class LiveEstimators {
 public:
  LiveEstimators();
  ~LiveEstimators();
  LiveEstimators(const LiveEstimators&) = delete;
  LiveEstimators& operator=(const LiveEstimators&) = delete;

  // Adds or replaces estimator `id` (a replaced one starts again). The definition is parsed and
  // a filter built from it; errors leave the previous one running.
  core::Status Put(const std::string& id, const boost::json::value& definition);
  bool Delete(const std::string& id);
  // The stored definition of `id`.
  std::optional<boost::json::value> Definition(const std::string& id) const;

  void Observe(const sync::Reading& reading);

  // The estimator's state as JSON: {"id", "twin", "filter", "time", "updates", "ignored",
  // "nis", "innovation", "estimates": {name: {"value", "stddev", "kind": "state"|"parameter"}}}.
  std::optional<boost::json::value> Snapshot(const std::string& id) const;
  std::vector<std::string> Ids() const;
  // {id: snapshot} of the twin's estimators.
  boost::json::object ForTwin(const std::string& twin) const;

 private:
  struct Live;
  mutable std::mutex mu_;  // the map; each Live has its own lock
  std::map<std::string, std::shared_ptr<Live>> live_;
};

}  // namespace doppel::sim::estimation
