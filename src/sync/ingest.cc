#include "sync/ingest.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/json.hpp>
#include <utility>

#include "core/json.h"
#include "core/time.h"
#include "model/value_validator.h"
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

// The Property or Telemetry `element` names in `iface`, or null.
const model::Content* ElementOf(const model::ResolvedInterface& iface, std::string_view element) {
  const model::ResolvedInterface* level = &iface;
  std::size_t slash = element.find('/');
  if (slash != std::string_view::npos) {
    level = iface.ComponentInterface(element.substr(0, slash));
    if (level == nullptr) return nullptr;
    element = element.substr(slash + 1);
    if (element.find('/') != std::string_view::npos) return nullptr;
  }
  const model::ResolvedContent* rc = level->Find(element);
  if (rc == nullptr) return nullptr;
  const model::Content* c = rc->content;
  return c->kind == model::ContentKind::kProperty || c->kind == model::ContentKind::kTelemetry
             ? c
             : nullptr;
}

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

}  // namespace

Ingestor::Ingestor(const model::ModelRepository& models, twin::TwinGraph& graph,
                   IngestOptions options)
    : models_(models), graph_(graph), options_(std::move(options)) {}

void Ingestor::Reject(const Reading& r, Status error) {
  std::lock_guard lock(mu_);
  ++stats_.rejected[error.code()];
  dead_.push_back(
      {Clock::now(), r.twin, r.element, r.origin, core::Abbreviate(r.value), std::move(error)});
  while (dead_.size() > options_.dead_letters) dead_.pop_front();
}

void Ingestor::Submit(std::vector<Reading> readings, std::function<void(IngestOutcome)> done) {
  const Clock::time_point now = Clock::now();
  auto batch = std::make_shared<Batch>();
  batch->done = std::move(done);
  auto reject = [&](std::size_t i, Status s) {
    Reject(readings[i], s);
    batch->out.rejected.push_back({i, std::move(s)});
  };
  // Property readings to write, by twin and source time: each group is one patch.
  std::map<std::pair<std::string, Clock::time_point>, std::vector<std::size_t>> groups;
  // The property's sourceTime when the reading was checked (tells duplicates from late ones).
  std::vector<std::optional<Clock::time_point>> seen(readings.size());
  std::size_t telemetry = 0;
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
    twin::TwinPtr tw = graph_.FindTwin(r.twin);
    if (!tw) {
      reject(i, Status("INGEST_UNKNOWN_TWIN", fmt::format("no twin '{}'", r.twin)));
      continue;
    }
    auto iface = models_.Resolve(tw->model);
    if (!iface.ok()) {
      reject(i, Status("INGEST_WRITE_FAILED", iface.status().ToString()));
      continue;
    }
    const model::Content* element = ElementOf(**iface, r.element);
    if (element == nullptr) {
      reject(i, Status("INGEST_UNKNOWN_ELEMENT",
                       fmt::format("model '{}' of twin '{}' has no Property or Telemetry '{}'",
                                   tw->model, r.twin, r.element)));
      continue;
    }
    model::ValueErrors errors = model::ValidateElementValue(**iface, r.element, r.value);
    if (!errors.empty()) {
      std::string why = errors.front().message();
      if (errors.size() > 1) why += fmt::format(" (and {} more)", errors.size() - 1);
      reject(i, Status("INGEST_WRONG_TYPE",
                       fmt::format("{} for '{}' of twin '{}': {}", core::Abbreviate(r.value),
                                   r.element, r.twin, why)));
      continue;
    }
    if (options_.history) options_.history(r);
    if (element->kind == model::ContentKind::kTelemetry) {
      ++telemetry;
      continue;
    }
    seen[i] = twin::PropertySourceTime(*tw, PointerOf(r.element));
    groups[{r.twin, t}].push_back(i);
  }
  batch->out.telemetry = telemetry;
  batch->out.accepted = readings.size() - batch->out.rejected.size();
  {
    std::lock_guard lock(mu_);
    stats_.received += readings.size();
    stats_.telemetry += telemetry;
  }

  auto shared = std::make_shared<std::vector<Reading>>(std::move(readings));
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
        [this, batch, shared, seen_shared, indexes = indexes,
         t = key.second](const core::Result<twin::TwinPtr>& result) {
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
