#include "sync/ingest.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/json.hpp>
#include <unordered_map>
#include <utility>

#include "core/json.h"
#include "core/time.h"
#include "model/value_validator.h"
#include "sync/element_path.h"
#include "sync/sync_quality.h"
#include "twin/twin_document.h"

namespace doppel::sync {

namespace json = boost::json;
using core::Status;

namespace {

// "name" -> "/name", "component/name" -> "/component/name" (tokens escaped).
std::string PointerOf(std::string_view element) {
  std::string out;
  std::size_t start = 0;
  while (true) {
    std::size_t end = element.find('/', start);
    out += '/';
    out += core::EscapePointerToken(element.substr(start, end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

}  // namespace

Ingestor::Ingestor(const model::ModelRepository& models, twin::TwinGraph& graph,
                   IngestOptions options)
    : models_(models), graph_(graph), options_(std::move(options)) {}

void Ingestor::Reject(const Reading& r, Status error) {
  if (options_.sync != nullptr) options_.sync->RecordRejected(r.twin, error.code());
  std::lock_guard lock(mu_);
  ++stats_.rejected[error.code()];
  dead_.push_back(
      {Clock::now(), r.twin, r.element, r.origin, core::Abbreviate(r.value), std::move(error)});
  while (dead_.size() > options_.dead_letters) dead_.pop_front();
}

namespace {

struct TwinInfo {
  twin::TwinPtr twin;
  model::ResolvedPtr iface;
  core::Status error;
};

}  // namespace

// Shared by a Submit call's steps: validation, the history append, the twin writes.
namespace ingest_internal {

// The state of one Submit call, shared by the writes it starts.
struct Batch {
  std::mutex mu;
  IngestOutcome out;
  std::atomic<std::size_t> pending{1};  // writes in flight + 1 for the submitting thread
  std::function<void(IngestOutcome)> done;

  void Finish() {
    if (pending.fetch_sub(1) == 1) done(std::move(out));
  }
};

// Accepted readings: index, element, and for Properties the sourceTime the twin had.
struct Accepted {
  std::size_t index;
  const model::Content* element;
  std::optional<Clock::time_point> seen;
};

}  // namespace ingest_internal

struct Ingestor::SubmitState {
  std::vector<Reading> readings;
  std::vector<ingest_internal::Accepted> accepted;
  std::vector<tsdb::Sample> samples;  // views into readings
  std::shared_ptr<ingest_internal::Batch> batch;
};

using ingest_internal::Accepted;
using ingest_internal::Batch;

void Ingestor::Submit(std::vector<Reading> readings, std::function<void(IngestOutcome)> done) {
  const Clock::time_point now = Clock::now();
  auto batch = std::make_shared<Batch>();
  batch->done = std::move(done);
  auto reject = [&](std::size_t i, Status s) {
    Reject(readings[i], s);
    batch->out.rejected.push_back({i, std::move(s)});
  };
  // Twins and their models, looked up once per batch.
  std::unordered_map<std::string, TwinInfo> twins;
  auto state = std::make_shared<SubmitState>();
  std::vector<Accepted>& accepted = state->accepted;
  accepted.reserve(readings.size());
  for (std::size_t i = 0; i < readings.size(); ++i) {
    Reading& r = readings[i];
    const auto t = std::chrono::floor<std::chrono::microseconds>(r.source_time.value_or(now));
    r.source_time = t;
    if (t > now + options_.max_future) {
      reject(i, Status("INGEST_FUTURE_TIME",
                       fmt::format("source time {} is more than {} s ahead of this server's "
                                   "clock",
                                   core::FormatRfc3339(t), options_.max_future.count())));
      continue;
    }
    if (t < now - options_.max_age) {
      reject(i, Status("INGEST_TOO_OLD",
                       fmt::format("source time {} is more than {} s old", core::FormatRfc3339(t),
                                   options_.max_age.count())));
      continue;
    }
    auto [it, fresh] = twins.try_emplace(r.twin);
    TwinInfo& info = it->second;
    if (fresh) {
      info.twin = graph_.FindTwin(r.twin);
      if (!info.twin) {
        info.error = Status("INGEST_UNKNOWN_TWIN", fmt::format("no twin '{}'", r.twin));
      } else if (auto iface = models_.Resolve(info.twin->model); !iface.ok()) {
        info.error = Status("INGEST_WRITE_FAILED", iface.status().ToString());
      } else {
        info.iface = *iface;
      }
    }
    if (!info.error.ok()) {
      reject(i, info.error);
      continue;
    }
    const model::Content* element = FindElement(*info.iface, r.element);
    if (element == nullptr) {
      reject(i, Status("INGEST_UNKNOWN_ELEMENT",
                       fmt::format("model '{}' of twin '{}' has no Property or Telemetry '{}'",
                                   info.twin->model, r.twin, r.element)));
      continue;
    }
    model::ValueErrors errors = model::ValidateElementValue(*info.iface, r.element, r.value);
    if (!errors.empty()) {
      std::string why = errors.front().message();
      if (errors.size() > 1) why += fmt::format(" (and {} more)", errors.size() - 1);
      reject(i, Status("INGEST_WRONG_TYPE",
                       fmt::format("{} for '{}' of twin '{}': {}", core::Abbreviate(r.value),
                                   r.element, r.twin, why)));
      continue;
    }
    Accepted a{i, element, std::nullopt};
    if (element->kind == model::ContentKind::kProperty) {
      a.seen = twin::PropertySourceTime(*info.twin, PointerOf(r.element));
    }
    accepted.push_back(a);
  }

  // History first: a reading history could not keep is rejected and reaches no twin. The
  // history append is asynchronous (its committer groups the records of concurrent requests
  // into one write and fsync); the twin writes follow in its callback.
  state->readings = std::move(readings);
  state->batch = batch;
  if (options_.history == nullptr || accepted.empty()) {
    WriteTwins(state, {});
    return;
  }
  state->samples.reserve(accepted.size());
  for (const Accepted& a : accepted) {
    const Reading& r = state->readings[a.index];
    state->samples.push_back(
        {r.twin, r.element,
         std::chrono::duration_cast<std::chrono::nanoseconds>(r.source_time->time_since_epoch())
             .count(),
         HistoryValue(*a.element, r.value)});
  }
  options_.history->AppendAsync(state->samples, [this, state](std::vector<Status> stored) {
    WriteTwins(state, std::move(stored));
  });
}

void Ingestor::WriteTwins(const std::shared_ptr<SubmitState>& state, std::vector<Status> stored) {
  std::vector<Reading>& readings = state->readings;
  std::vector<Accepted>& accepted = state->accepted;
  const std::shared_ptr<Batch>& batch = state->batch;
  if (!stored.empty()) {
    if (stored.size() == 1 && accepted.size() != 1) stored.assign(accepted.size(), stored.front());
    std::vector<Accepted> kept;
    std::lock_guard lock(batch->mu);
    for (std::size_t k = 0; k < accepted.size(); ++k) {
      // TSDB_DUPLICATE: history already holds this reading (a redelivery): nothing new for
      // history, and the twin write below is idempotent.
      if (stored[k].ok() || stored[k].code() == "TSDB_DUPLICATE") {
        kept.push_back(accepted[k]);
        continue;
      }
      Status err("INGEST_WRITE_FAILED", fmt::format("history: {}", stored[k].message()));
      Reject(readings[accepted[k].index], err);
      batch->out.rejected.push_back({accepted[k].index, std::move(err)});
    }
    accepted = std::move(kept);
  }
  state->samples.clear();
  if (options_.observe) {
    for (const Accepted& a : accepted) options_.observe(readings[a.index]);
  }
  // Property readings to write: per twin and element only the newest reading of the batch
  // (the others are superseded: history has them, the twin's current value would not); then one
  // patch per twin and source time.
  std::map<std::pair<std::string_view, std::string_view>, std::size_t> newest;  // -> accepted k
  std::size_t telemetry = 0, superseded = 0;
  for (std::size_t k = 0; k < accepted.size(); ++k) {
    const Reading& r = readings[accepted[k].index];
    if (accepted[k].element->kind == model::ContentKind::kTelemetry) {
      ++telemetry;
      continue;
    }
    auto [it, fresh] = newest.try_emplace({r.twin, r.element}, k);
    if (!fresh) {
      ++superseded;
      if (*readings[accepted[it->second].index].source_time <= *r.source_time) it->second = k;
    }
  }
  std::map<std::pair<std::string, Clock::time_point>, std::vector<std::size_t>> groups;
  std::vector<std::optional<Clock::time_point>> seen(readings.size());
  for (const auto& [key, k] : newest) {
    const Reading& r = readings[accepted[k].index];
    seen[accepted[k].index] = accepted[k].seen;
    groups[{r.twin, *r.source_time}].push_back(accepted[k].index);
  }
  if (options_.sync != nullptr) {
    // Telemetry and superseded readings are done now (in history); runs of one twin's readings
    // are recorded together.
    std::vector<bool> newest_of_twin(accepted.size(), false);
    for (const auto& [key, k] : newest) newest_of_twin[k] = true;
    std::vector<Observation> obs;
    std::string_view twin;
    const Clock::time_point applied = Clock::now();
    for (std::size_t k = 0; k < accepted.size(); ++k) {
      const bool is_telemetry = accepted[k].element->kind == model::ContentKind::kTelemetry;
      if (!is_telemetry && newest_of_twin[k]) continue;
      const Reading& r = readings[accepted[k].index];
      if (r.twin != twin && !obs.empty()) {
        options_.sync->Record(twin, obs, applied);
        obs.clear();
      }
      twin = r.twin;
      obs.push_back({is_telemetry ? ReadingOutcome::kTelemetry : ReadingOutcome::kSuperseded,
                     *r.source_time});
    }
    if (!obs.empty()) options_.sync->Record(twin, obs, applied);
  }
  batch->out.telemetry = telemetry;
  batch->out.superseded = superseded;
  batch->out.accepted = readings.size() - batch->out.rejected.size();
  {
    std::lock_guard lock(mu_);
    stats_.received += readings.size();
    stats_.telemetry += telemetry;
    stats_.superseded += superseded;
  }

  std::shared_ptr<std::vector<Reading>> shared(state, &state->readings);
  auto seen_shared = std::make_shared<decltype(seen)>(std::move(seen));
  for (auto& [key, indexes] : groups) {
    json::array patch;
    for (std::size_t i : indexes) {
      patch.push_back(json::object{
          {"op", "add"}, {"path", PointerOf((*shared)[i].element)}, {"value", (*shared)[i].value}});
    }
    twin::WriteContext ctx;
    ctx.source_time = key.second;
    ctx.only_newer = true;
    batch->pending.fetch_add(1);
    graph_.PatchTwin(
        key.first, std::move(patch), {},
        [this, batch, shared, seen_shared, indexes = indexes, t = key.second,
         key_twin = key.first](const core::Result<twin::TwinPtr>& result) {
          std::size_t applied = 0, duplicates = 0, late = 0;
          std::vector<std::pair<std::size_t, Status>> failed;
          for (std::size_t i : indexes) {
            const Reading& r = (*shared)[i];
            if (!result.ok()) {
              failed.emplace_back(
                  i, Status("INGEST_WRITE_FAILED",
                            fmt::format("twin '{}': {}", r.twin, result.status().ToString())));
              continue;
            }
            auto now_at = twin::PropertySourceTime(**result, PointerOf(r.element));
            const auto& before = (*seen_shared)[i];
            if (before && *before == t) {
              ++duplicates;
            } else if (now_at && *now_at == t) {
              ++applied;
            } else {
              ++late;
            }
          }
          for (auto& [i, s] : failed) Reject((*shared)[i], s);
          if (options_.sync != nullptr && result.ok()) {
            // One group: one twin, one source time.
            std::vector<Observation> obs;
            obs.reserve(indexes.size());
            obs.insert(obs.end(), applied, {ReadingOutcome::kApplied, t});
            obs.insert(obs.end(), duplicates, {ReadingOutcome::kDuplicate, t});
            obs.insert(obs.end(), late, {ReadingOutcome::kOutOfOrder, t});
            options_.sync->Record(key_twin, obs, Clock::now());
          }
          {
            std::lock_guard lock(mu_);
            stats_.applied += applied;
            stats_.duplicates += duplicates;
            stats_.out_of_order += late;
          }
          {
            std::lock_guard lock(batch->mu);
            batch->out.applied += applied;
            batch->out.duplicates += duplicates;
            batch->out.out_of_order += late;
            batch->out.accepted -= failed.size();
            for (auto& f : failed) batch->out.rejected.push_back({f.first, std::move(f.second)});
          }
          batch->Finish();
        },
        ctx);
  }
  batch->Finish();
}

IngestStats Ingestor::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::vector<DeadLetter> Ingestor::DeadLetters() const {
  std::lock_guard lock(mu_);
  return {dead_.begin(), dead_.end()};
}

}  // namespace doppel::sync
