#include "analytics/rul/live.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <limits>
#include <map>

#include "core/time.h"
#include "sync/ingest.h"
#include "sync/write_history.h"
#include "twin/twin_document.h"
#include "twin/twin_graph.h"

namespace doppel::analytics {

namespace json = boost::json;
using Clock = std::chrono::system_clock;

namespace {

// Incomplete cycles kept per twin, waiting for their missing readings.
constexpr std::size_t kMaxPending = 16;

const char* const kProperties[] = {"remainingUsefulLife", "rulLow80", "rulHigh80", "rulLow95",
                                   "rulHigh95"};

// The integer a JSON number holds, if it holds one ≥ 1 that fits an int.
std::optional<int> CycleOf(const json::value& v) {
  double d = 0;
  if (v.is_int64()) {
    d = static_cast<double>(v.get_int64());
  } else if (v.is_uint64()) {
    d = static_cast<double>(v.get_uint64());
  } else if (v.is_double()) {
    d = v.get_double();
  } else {
    return std::nullopt;
  }
  if (!(d >= 1 && d <= std::numeric_limits<int>::max()) || d != std::floor(d)) return std::nullopt;
  return static_cast<int>(d);
}

}  // namespace

struct LiveRul::TwinState {
  std::string id;
  bool followed = false;
  struct Pending {
    std::optional<int> cycle;
    std::vector<double> values;  // per model sensor; NaN: not yet
    std::size_t missing = 0;     // sensors still NaN
  };
  std::map<Clock::time_point, Pending> pending;
  rul::EngineHistory history;  // model sensors only; history.cycle = last_cycle
  std::size_t length = 0;
  int last_cycle = 0;  // 0: none yet
  Clock::time_point last_time;
  bool queued = false;
  std::optional<LiveRulPrediction> latest;
};

LiveRul::LiveRul(rul::RulModel model, LiveRulOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  for (int s : model_.info().sensors) sensors_.push_back(fmt::format("s{}", s));
  options_.max_cycles =
      std::max(options_.max_cycles, static_cast<std::size_t>(model_.info().windows.back()));
  options_.max_queue = std::max<std::size_t>(options_.max_queue, 1);
  worker_ = std::thread([this] { Work(); });
}

LiveRul::~LiveRul() { Stop(); }

std::function<void(const sync::Reading&)> LiveRul::Observer() {
  return [this](const sync::Reading& r) { Observe(r); };
}

LiveRul::TwinState* LiveRul::StateOf(std::string_view twin) {
  auto it = twins_.find(std::string(twin));
  if (it == twins_.end()) {
    auto s = std::make_unique<TwinState>();
    s->id = std::string(twin);
    if (options_.model_id.empty()) {
      s->followed = true;
    } else if (options_.graph != nullptr) {
      twin::TwinPtr t = options_.graph->FindTwin(twin);
      s->followed = t && t->model == options_.model_id;
    }
    if (s->followed) ++stats_.twins;
    it = twins_.emplace(s->id, std::move(s)).first;
  }
  return it->second->followed ? it->second.get() : nullptr;
}

void LiveRul::Observe(const sync::Reading& r) {
  if (!r.source_time) return;            // ingest always sets it
  std::size_t sensor = sensors_.size();  // sensors_.size(): the cycle element
  std::optional<int> cycle;
  double value = 0;
  if (r.element == options_.cycle_element) {
    cycle = CycleOf(r.value);
    if (!cycle) return;
  } else {
    sensor = static_cast<std::size_t>(std::find(sensors_.begin(), sensors_.end(), r.element) -
                                      sensors_.begin());
    if (sensor == sensors_.size() || !r.value.is_number()) return;
    value = r.value.to_number<double>();
    if (!std::isfinite(value)) return;
  }
  std::lock_guard lock(mu_);
  TwinState* s = StateOf(r.twin);
  if (s == nullptr) return;
  ++stats_.readings;
  const Clock::time_point t = *r.source_time;
  auto [it, inserted] = s->pending.try_emplace(t);
  TwinState::Pending& p = it->second;
  if (inserted) {
    p.values.assign(sensors_.size(), std::numeric_limits<double>::quiet_NaN());
    p.missing = sensors_.size();
  }
  if (cycle) {
    p.cycle = cycle;
  } else {
    if (std::isnan(p.values[sensor])) --p.missing;
    p.values[sensor] = value;
  }
  if (p.cycle && p.missing == 0) {
    const int c = *p.cycle;
    std::vector<double> values = std::move(p.values);
    s->pending.erase(it);
    // Older incomplete cycles will not be completed by later readings in practice: one line is
    // one batch. They stay until pushed out by kMaxPending.
    if (s->last_cycle != 0 && c == s->last_cycle) {
      ++stats_.duplicates;
      return;
    }
    if (s->last_cycle != 0 && c < s->last_cycle) {
      ++stats_.resets;
      s->history.sensors.clear();
      s->length = 0;
    } else if (s->last_cycle != 0 && c > s->last_cycle + 1) {
      ++stats_.gaps;
    }
    for (std::size_t i = 0; i < sensors_.size(); ++i) {
      std::vector<double>& series = s->history.sensors[sensors_[i]];
      series.push_back(values[i]);
      if (series.size() > options_.max_cycles) series.erase(series.begin());
    }
    s->length = std::min(s->length + 1, options_.max_cycles);
    s->last_cycle = c;
    s->last_time = t;
    s->history.cycle = std::max(c, static_cast<int>(s->length));
    ++stats_.cycles;
    if (s->length >= static_cast<std::size_t>(model_.info().windows.back())) Enqueue(s->id);
    return;
  }
  if (s->pending.size() > kMaxPending) {
    s->pending.erase(s->pending.begin());
    ++stats_.partial;
  }
}

void LiveRul::Enqueue(const std::string& twin) {
  TwinState& s = *twins_.at(twin);
  if (s.queued) {
    ++stats_.coalesced;  // predicted once, at its newest cycle
    return;
  }
  if (stopping_) return;
  if (queue_.size() >= options_.max_queue) {
    auto old = twins_.find(queue_.front());
    if (old != twins_.end()) old->second->queued = false;
    queue_.pop_front();
    ++stats_.dropped;
  }
  queue_.push_back(twin);
  s.queued = true;
  cv_.notify_one();
}

void LiveRul::Work() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and drained
    std::string twin = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    Predict(twin);
    lock.lock();
    busy_ = false;
    if (queue_.empty() && in_flight_ == 0) idle_cv_.notify_all();
  }
}

void LiveRul::Fail(std::string error) {
  std::lock_guard lock(mu_);
  ++stats_.failed;
  stats_.last_error = std::move(error);
}

void LiveRul::Predict(const std::string& twin) {
  // A snapshot of the twin's history at its newest cycle.
  rul::EngineHistory engine;
  LiveRulPrediction out;
  {
    std::lock_guard lock(mu_);
    auto it = twins_.find(twin);
    if (it == twins_.end()) return;  // forgotten
    TwinState& s = *it->second;
    s.queued = false;
    engine = s.history;
    engine.id = twin;
    out.twin = twin;
    out.cycle = s.last_cycle;
    out.source_time = s.last_time;
    out.cycles_seen = s.length;
  }
  auto p = model_.Predict(engine, rul::PredictOptions{.top_factors = options_.top_factors});
  if (!p.ok()) return Fail(fmt::format("twin '{}': {}", twin, p.status().ToString()));
  out.prediction = std::move(*p);
  out.predicted_at = Clock::now();

  const rul::RulPrediction& pr = out.prediction;
  const double values[] = {pr.rul, pr.interval80.low, pr.interval80.high, pr.interval95.low,
                           pr.interval95.high};
  json::array patch;
  for (std::size_t i = 0; i < std::size(kProperties); ++i) {
    patch.push_back(json::object{
        {"op", "add"}, {"path", std::string("/") + kProperties[i]}, {"value", values[i]}});
  }
  twin::WriteContext ctx;
  ctx.source_time = out.source_time;
  ctx.only_newer = true;
  {
    std::lock_guard lock(mu_);
    ++in_flight_;
  }
  auto finish = [this] {
    std::lock_guard lock(mu_);
    --in_flight_;
    if (in_flight_ == 0 && queue_.empty() && !busy_) idle_cv_.notify_all();
  };
  options_.graph->PatchTwin(
      twin, std::move(patch), {},
      [this, out = std::move(out), finish](const core::Result<twin::TwinPtr>& result) mutable {
        if (!result.ok()) {
          Fail(fmt::format("twin '{}': {}", out.twin, result.status().ToString()));
          return finish();
        }
        // only_newer: nothing was written when the twin holds a newer prediction.
        const auto at = twin::PropertySourceTime(**result, "/remainingUsefulLife");
        const bool written = at && *at == out.source_time;
        {
          std::lock_guard lock(mu_);
          auto it = twins_.find(out.twin);
          if (written) ++stats_.predictions;
          if (written && it != twins_.end() &&
              (!it->second->latest || it->second->latest->source_time <= out.source_time)) {
            it->second->latest = std::move(out);
          }
        }
        if (!written || options_.history == nullptr || options_.models == nullptr) {
          return finish();
        }
        sync::RecordTwinWrite(*options_.history, *options_.models, *result,
                              [this, finish, id = (*result)->id](const core::Status& s) {
                                if (!s.ok())
                                  Fail(fmt::format("twin '{}': history: {}", id, s.ToString()));
                                finish();
                              });
      },
      ctx);
}

std::optional<LiveRulPrediction> LiveRul::Latest(std::string_view twin) const {
  std::lock_guard lock(mu_);
  auto it = twins_.find(std::string(twin));
  if (it == twins_.end()) return std::nullopt;
  return it->second->latest;
}

json::value LiveRul::ToJson(const LiveRulPrediction& p) const {
  const rul::RulPrediction& r = p.prediction;
  json::array factors;
  for (const rul::RiskFactor& f : r.factors) {
    factors.push_back(json::object{{"sensor", f.sensor}, {"contribution", f.contribution}});
  }
  const rul::ModelInfo& info = model_.info();
  return json::object{
      {"twin", p.twin},
      {"rul", r.rul},
      {"intervals",
       json::array{
           json::object{{"level", 0.8}, {"low", r.interval80.low}, {"high", r.interval80.high}},
           json::object{{"level", 0.95}, {"low", r.interval95.low}, {"high", r.interval95.high}}}},
      {"cycle", p.cycle},
      {"at", core::FormatRfc3339(p.source_time)},
      {"predictedAt", core::FormatRfc3339(p.predicted_at)},
      {"cycles", p.cycles_seen},
      {"base", r.base},
      {"factors", std::move(factors)},
      {"model",
       json::object{{"path", options_.model_path.string()},
                    {"trainedOn", json::object{{"engines", info.units}, {"samples", info.samples}}},
                    {"cvRmse", info.cv_rmse},
                    {"rulCap", info.rul_cap},
                    {"features", info.features.size()}}}};
}

LiveRulStats LiveRul::Stats() const {
  std::lock_guard lock(mu_);
  LiveRulStats s = stats_;
  s.queued = queue_.size();
  return s;
}

void LiveRul::Forget(std::string_view twin) {
  std::lock_guard lock(mu_);
  auto it = twins_.find(std::string(twin));
  if (it == twins_.end()) return;
  if (it->second->followed) --stats_.twins;
  twins_.erase(it);  // a queued job finds no state and is skipped
}

void LiveRul::WaitIdle() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return queue_.empty() && !busy_ && in_flight_ == 0; });
}

void LiveRul::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  WaitIdle();
}

}  // namespace doppel::analytics
