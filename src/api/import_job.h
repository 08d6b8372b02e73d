// doppel::api — bulk import jobs (POST /import).
//
// The body is NDJSON in the Azure Digital Twins import format: section headers
//   {"Section": "Header"}          then one object of metadata (optional)
//   {"Section": "Models"}          then one DTDL Interface per line
//   {"Section": "Twins"}           then one twin per line ($dtId, $metadata.$model, properties)
//   {"Section": "Relationships"}   then one relationship per line ($sourceId, $relationshipId,
//                                  $targetId, $relationshipName, properties)
// Sections are processed in file order, streaming: a line is parsed while the twin graph's
// shards commit the ones before it (bounded concurrency), and each section's writes finish
// before the next section starts. A Models section is added as one batch before the first line
// after it. Every line that fails is reported with its line number and error;
// the other lines are still imported (a job is not a transaction).
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "model/model_repository.h"
#include "twin/twin_graph.h"

namespace doppel::api {

struct ImportLineError {
  std::size_t line = 0;
  core::Status error;
};

struct ImportJob {
  std::string id;
  std::string status = "running";  // running | succeeded | partiallySucceeded | failed
  std::chrono::system_clock::time_point created;
  std::chrono::system_clock::time_point finished;
  std::size_t lines = 0;
  std::size_t models = 0, twins = 0, relationships = 0;  // imported
  std::vector<ImportLineError> errors;                   // capped at 1000
  std::size_t error_count = 0;

  boost::json::value ToJson() const;
};

class ImportJobs {
 public:
  ImportJobs(model::ModelRepository& models, twin::TwinGraph& graph);
  ~ImportJobs();

  // Starts a job on its own thread; returns its id. `allow_models` is false for callers who
  // may not change models (writer keys): a Models section is then refused line by line.
  std::string Start(std::string ndjson, bool allow_models = true);
  std::optional<ImportJob> Get(const std::string& id) const;
  std::vector<ImportJob> List() const;
  // Waits for running jobs to finish.
  void Stop();

  // Runs an import synchronously (used by Start's thread, and by the CLI for offline imports).
  static void Run(model::ModelRepository& models, twin::TwinGraph& graph, std::string_view ndjson,
                  bool allow_models, ImportJob* job, std::mutex* mu);

 private:
  model::ModelRepository& models_;
  twin::TwinGraph& graph_;
  mutable std::mutex mu_;
  std::map<std::string, ImportJob> jobs_;
  std::vector<std::thread> threads_;
  std::atomic<std::uint64_t> next_{1};
};

}  // namespace doppel::api
