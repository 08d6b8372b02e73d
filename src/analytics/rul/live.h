// doppel::analytics — live remaining useful life on twins (library doppel_rul_live). The manual.
//
// What it does
//   LiveRul watches every reading ingest accepts (sync::IngestOptions::observe, like the anomaly
//   monitor). For twins of the engine model (options.model_id, by default
//   dtmi:doppel:example:turbofan:Engine;1, examples/models/turbofan/Engine.json) it assembles the
//   readings into cycles; each complete cycle is appended to the twin's sensor history, the RUL
//   model (rul_model.h) predicts the remaining useful life after it, and the prediction is written
//   to the twin through the twin graph's normal write path, so it shows on
//   GET /digitaltwins/{id}, in property history and on the change feed:
//     remainingUsefulLife           predicted cycles left (the model's capped scale)
//     rulLow80, rulHigh80           ~80% prediction interval
//     rulLow95, rulHigh95           ~95% prediction interval
//   one JSON Patch per prediction, $metadata sourceTime = the cycle's source time, `only_newer`
//   (a late prediction never replaces a newer one). The latest prediction of every twin, with its
//   top risk factors (SHAP, per sensor), is kept in memory for GET /digitaltwins/{id}/rul.
//
// When a cycle is complete
//   A cycle is the readings of one twin with one source time (one line of InfluxDB line protocol:
//   `engine,twin=engine-1 s1=...,s2=...,...,cycle=31i <time>`). It is complete when it holds the
//   integer `cycle` and every sensor the model uses ("s2", "s3", ... from the model's manifest);
//   other elements (the settings, constant sensors) are ignored. The order of readings within a
//   cycle does not matter; up to 16 incomplete cycles per twin wait for their missing readings
//   (the oldest is dropped, counted as `partial`). A complete cycle whose number is
//   * the last one + 1 (or the first seen): appended;
//   * equal to the last one (a redelivery): ignored (`duplicates`);
//   * below the last one: a new life (engine replaced, replay restarted): the history is reset
//     to this cycle (`resets`);
//   * more than one above: appended, with the gap counted (`gaps`): the model's windows treat
//     the readings as consecutive cycles.
//   A twin needs the model's longest window (30 cycles for the shipped configurations) before
//   the first prediction. At most `max_cycles` cycles are kept per twin (the oldest go): the
//   model's EWMA features run over the whole history, so predictions of longer-lived twins
//   differ a little from RulModel::Predict over the full history (FD001 engines live ≤ 362
//   cycles; the default keeps 1000).
//
// Threads and cost
//   Observe runs on ingest's thread and only files readings: a string comparison, a hash lookup
//   (and, for a twin's first reading, a twin lookup for its model) under one mutex. Predictions
//   (0.2 ms without SHAP, 3–30 ms with it, rul_model.h) run on LiveRul's own worker thread. Its
//   queue holds at most one job per twin — a twin already queued when its next cycle completes is
//   predicted once, at its newest cycle (the earlier job is dropped, counted as `coalesced`) — and
//   at most `max_queue` twins (beyond that the oldest queued twin is dropped, `dropped`).
//   Every method may be called from any thread.
//
// Errors of a prediction or of its twin write are counted (`failed`) and the last one is kept
// (Stats().last_error); ingest is never affected.
//
// How to use it
//   auto model = rul::RulModel::Load("rul-model");
//   LiveRul live(std::move(*model), {.graph = &graph, .models = &models, .history = history});
//   io.observe = live.Observer();            // compose with others: [a, b](r) { a(r); b(r); }
//   live.Latest("engine-1")                  // the latest prediction, or nullopt
//   live.WaitIdle();                         // tests: every queued prediction written
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "analytics/rul/rul_model.h"

namespace doppel::twin {
class TwinGraph;
}
namespace doppel::model {
class ModelRepository;
}
namespace doppel::tsdb {
class HistoryStore;
}
namespace doppel::sync {
struct Reading;
}

namespace doppel::analytics {

struct LiveRulOptions {
  twin::TwinGraph* graph = nullptr;  // required: twins are looked up and written here
  // With `history`: the written RUL Properties are appended to history too (graph writes made
  // outside the API do not reach it by themselves; sync/write_history.h).
  const model::ModelRepository* models = nullptr;
  tsdb::HistoryStore* history = nullptr;
  // Twins of this model ($metadata.$model exactly) are followed; empty: every twin that sends
  // the cycle element (its model must then have the RUL Properties for the write to succeed).
  std::string model_id = "dtmi:doppel:example:turbofan:Engine;1";
  std::string cycle_element = "cycle";
  int top_factors = 5;               // risk factors kept per prediction
  std::size_t max_cycles = 1000;     // per twin
  std::size_t max_queue = 10000;     // twins waiting for a prediction
  std::filesystem::path model_path;  // for the API (where the model was loaded from)
};

struct LiveRulPrediction {
  std::string twin;
  int cycle = 0;
  std::chrono::system_clock::time_point source_time;  // the cycle's
  std::chrono::system_clock::time_point predicted_at;
  std::size_t cycles_seen = 0;  // cycles in the twin's history the prediction used
  analytics::rul::RulPrediction prediction;
};

struct LiveRulStats {
  std::uint64_t readings = 0;  // readings of followed twins' cycle and model sensors
  std::uint64_t cycles = 0;    // complete cycles appended
  std::uint64_t duplicates = 0, resets = 0, gaps = 0, partial = 0;
  std::uint64_t predictions = 0;  // written to the twin
  std::uint64_t coalesced = 0, dropped = 0, failed = 0;
  std::uint64_t queued = 0;  // twins waiting now
  std::size_t twins = 0;     // followed twins
  std::string last_error;
};

class LiveRul {
 public:
  LiveRul(analytics::rul::RulModel model, LiveRulOptions options);
  ~LiveRul();  // Stop()
  LiveRul(const LiveRul&) = delete;
  LiveRul& operator=(const LiveRul&) = delete;

  // One reading ingest accepted (see the top comment). Cheap; never blocks on a prediction.
  void Observe(const sync::Reading& reading);
  // Observe as ingest's observer. The LiveRul must outlive the Ingestor.
  std::function<void(const sync::Reading&)> Observer();

  // The latest prediction written for `twin`; nullopt before the first.
  std::optional<LiveRulPrediction> Latest(std::string_view twin) const;
  // {twin, rul, intervals [{level, low, high}], cycle, at, predictedAt, cycles, base,
  //  factors [{sensor, contribution}], model {path, trainedOn {engines, samples}, cvRmse, rulCap}}
  boost::json::value ToJson(const LiveRulPrediction& p) const;
  LiveRulStats Stats() const;
  // Forgets a twin's history and prediction (a deleted twin).
  void Forget(std::string_view twin);

  // Returns when no prediction is queued or running and every twin write (and its history
  // append) has completed.
  void WaitIdle();
  // Finishes the queued predictions, then stops the worker; later cycles are not predicted.
  // Idempotent.
  void Stop();

  const analytics::rul::RulModel& model() const { return model_; }
  const LiveRulOptions& options() const { return options_; }

 private:
  struct TwinState;
  TwinState* StateOf(std::string_view twin);  // under mu_; null: not followed
  void Complete(TwinState& s, int cycle, std::chrono::system_clock::time_point t);
  void Enqueue(const std::string& twin);  // under mu_
  void Work();
  void Predict(const std::string& twin);
  void Fail(std::string error);

  analytics::rul::RulModel model_;
  LiveRulOptions options_;
  std::vector<std::string> sensors_;  // "s2", ... the model's

  mutable std::mutex mu_;
  std::condition_variable cv_;       // work queued, or stopping
  std::condition_variable idle_cv_;  // queue drained and nothing in flight
  std::unordered_map<std::string, std::unique_ptr<TwinState>> twins_;
  std::deque<std::string> queue_;
  bool busy_ = false;          // the worker is predicting
  std::size_t in_flight_ = 0;  // twin writes (and history appends) not completed
  bool stopping_ = false;
  LiveRulStats stats_;
  std::thread worker_;
};

}  // namespace doppel::analytics
