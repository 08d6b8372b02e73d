// doppel::sync — ingest: readings from the physical side, validated and applied to twins.
//
// What it does
//   A Reading says "twin T's element E had value V at source time S". Ingestor::Submit checks
//   every reading against the twin and its resolved model, rejects what is wrong (counted by
//   reason, the last ones kept in a bounded dead-letter list), and applies the rest through the
//   twin graph's normal write path: one JSON Patch per twin and source time, with $metadata
//   sourceTime set and `only_newer`, so a twin's current value always follows source time.
//   Nothing rejected changes a twin. HTTP front ends: POST /write (InfluxDB line protocol) and
//   POST /ingest (JSON) in api/routes.cc; MQTT comes next.
//
// How to use it
//   Ingestor ingest(models, graph);
//   ingest.Submit({{"m1", "temperature", 71.5, source_time, "POST /ingest #0"}},
//                 [](IngestOutcome o) { ... o.applied, o.rejected ... });
//
// Rules (each rejection has a stable code; docs/ingest-errors.md)
//   INGEST_UNKNOWN_TWIN       no twin with that id
//   INGEST_UNKNOWN_ELEMENT    the twin's model has no Property or Telemetry with that name
//                             ("name", or "component/name" inside a Component)
//   INGEST_WRONG_TYPE         the value does not match the element's schema (message says how)
//   INGEST_FUTURE_TIME        source time more than `max_future` ahead of this server's clock
//   INGEST_TOO_OLD            source time more than `max_age` behind it
//   INGEST_WRITE_FAILED       the twin graph refused the write (the graph's code and message)
//   Not rejections, but counted and reported:
//     duplicate     a Property reading whose source time equals the one the twin already has
//                   (idempotent: re-sending a batch changes nothing)
//     out of order  a Property reading older than the twin's current one: accepted (history
//                   will keep it) but the current value stays the newer one
//     telemetry     accepted; Telemetry is not twin state (as in Azure Digital Twins) — it goes
//                   to history only
//     superseded    a Property reading for which the same batch has a newer one: history keeps
//                   it, the twin only gets the newest (a batch of 5,000 lines for 10 twins is 10
//                   twin writes, not 5,000)
//   History: every accepted reading is appended to the history store (when one is set) before
//   any twin is written, so what `done` acknowledges is in history; a reading history refuses
//   (its value type changed with the twin's model, or the disk failed) is rejected as
//   INGEST_WRITE_FAILED and changes no twin. History values follow the element's schema:
//   double/float → float64, integer/long → int64, boolean, string-like (string, date, time,
//   dateTime, duration, string enums) → string, anything complex → its JSON text.
//   Sync quality: with options.sync set, every rejection (by twin and code) and every accepted
//   reading's outcome, source time and applied time go to the SyncTracker (sync_quality.h).
//   Source times are kept at microsecond resolution (the twin's $metadata resolution); a
//   reading without one takes the arrival time.
//
// Thread-safety: Submit may be called from any thread and does not wait for the disk; `done`
// runs on a shard thread, the history committer's, or the caller's (when nothing needs writing).
// Stats and DeadLetters are safe from any thread.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/model_repository.h"
#include "tsdb/history.h"
#include "twin/twin_graph.h"

namespace doppel::sync {

using Clock = std::chrono::system_clock;
class SyncTracker;  // sync_quality.h

struct Reading {
  std::string twin;
  std::string element;  // "temperature", or "component/name"
  boost::json::value value;
  std::optional<Clock::time_point> source_time;  // absent: arrival time
  std::string origin;  // where it came from, for dead letters ("POST /write line 3")
};

struct Rejection {
  std::size_t index = 0;  // position in the submitted batch
  core::Status error;     // INGEST_* code and message
};

struct IngestOutcome {
  std::size_t accepted = 0;      // everything not rejected
  std::size_t applied = 0;       // Property readings that are now the twin's current value
  std::size_t duplicates = 0;    // Property readings the twin already had
  std::size_t out_of_order = 0;  // Property readings older than the twin's current one
  std::size_t telemetry = 0;     // Telemetry readings (history only)
  std::size_t superseded = 0;    // Property readings a newer one of the same batch replaced
  std::vector<Rejection> rejected;
};

struct DeadLetter {
  Clock::time_point at;
  std::string twin, element, origin;
  std::string value;  // abbreviated JSON
  core::Status error;
};

struct IngestStats {
  std::uint64_t received = 0, applied = 0, duplicates = 0, out_of_order = 0, telemetry = 0;
  std::uint64_t superseded = 0;
  std::map<std::string, std::uint64_t> rejected;  // by code
};

struct IngestOptions {
  std::chrono::seconds max_future{300};
  std::chrono::seconds max_age{7 * 24 * 3600};
  std::size_t dead_letters = 1000;  // kept, newest last
  // Where every accepted reading goes (Properties and Telemetry), before any twin changes.
  // Null: no history.
  tsdb::HistoryStore* history = nullptr;
  // Told the outcome of every reading (lag, freshness, rejections by twin; sync_quality.h).
  // Null: none.
  SyncTracker* sync = nullptr;
  // Told every accepted reading history kept, in batch order, after history has it and before
  // any twin write, on the thread that completes the history append: keep it cheap (anomaly
  // detection, analytics/anomaly/anomaly.h). Empty: none.
  std::function<void(const Reading&)> observe;
};

class Ingestor {
 public:
  Ingestor(const model::ModelRepository& models, twin::TwinGraph& graph,
           IngestOptions options = {});
  Ingestor(const Ingestor&) = delete;
  Ingestor& operator=(const Ingestor&) = delete;

  void Submit(std::vector<Reading> readings, std::function<void(IngestOutcome)> done);

  IngestStats Stats() const;
  std::vector<DeadLetter> DeadLetters() const;

 private:
  struct SubmitState;
  void Reject(const Reading& r, core::Status error);
  void WriteTwins(const std::shared_ptr<SubmitState>& state, std::vector<core::Status> stored);

  const model::ModelRepository& models_;
  twin::TwinGraph& graph_;
  IngestOptions options_;
  mutable std::mutex mu_;
  IngestStats stats_;
  std::deque<DeadLetter> dead_;
};

}  // namespace doppel::sync
