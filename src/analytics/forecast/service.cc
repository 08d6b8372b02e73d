#include "analytics/forecast/service.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <limits>

#include "core/time.h"
#include "store/store.h"
#include "tsdb/history.h"

namespace doppel::analytics::forecast {
namespace json = boost::json;
using core::Result;
using core::Status;

namespace {
constexpr char kSep = '\x1f';
constexpr std::int64_t kNsPerMs = 1'000'000;

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

// "1h", "15m", "30s", "250ms": the largest unit that divides the step.
std::string StepName(std::int64_t ns) {
  for (const auto& [unit, n] : {std::pair<const char*, std::int64_t>{"d", 86'400'000'000'000},
                                {"h", 3'600'000'000'000},
                                {"m", 60'000'000'000},
                                {"s", 1'000'000'000},
                                {"ms", 1'000'000}}) {
    if (ns % n == 0) return fmt::format("{}{}", ns / n, unit);
  }
  return fmt::format("{}ns", ns);
}

std::string Iso(std::int64_t ns) {
  return core::FormatRfc3339(std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(ns))));
}

json::array Doubles(const std::vector<double>& v) {
  json::array a;
  a.reserve(v.size());
  for (double d : v) a.push_back(std::isfinite(d) ? json::value(d) : json::value(nullptr));
  return a;
}

std::vector<double> DoublesOf(const json::value* v) {
  std::vector<double> out;
  if (v == nullptr || !v->is_array()) return out;
  for (const json::value& x : v->get_array()) {
    out.push_back(x.is_number() ? x.to_number<double>() : std::nan(""));
  }
  return out;
}

std::string ModelKey(const ModelVersion& m) {
  return fmt::format("fc/m/{}{}{}{}{}{}{:010}", m.twin, kSep, m.path, kSep, m.step_ns, kSep,
                     m.version);
}

json::object ReportJson(const BacktestReport& r) {
  json::array fams;
  for (const FamilyScore& f : r.families) {
    json::object o{{"family", FamilyName(f.family)}};
    if (!f.skipped.empty()) {
      o["skipped"] = f.skipped;
    } else {
      json::array cov;
      for (const LevelCoverage& c : f.coverage) {
        cov.push_back(
            json::object{{"level", c.level}, {"coverage", c.coverage}, {"counted", c.counted}});
      }
      o["description"] = f.description;
      o["mae"] = f.mae;
      o["rmse"] = f.rmse;
      o["mape"] = f.mape ? json::value(*f.mape) : json::value(nullptr);
      o["smape"] = f.smape;
      o["coverage"] = std::move(cov);
      o["forecasts"] = f.forecasts;
    }
    fams.push_back(std::move(o));
  }
  return json::object{{"horizon", r.horizon},
                      {"origins", r.origins},
                      {"refits", r.refits},
                      {"chosen", FamilyName(r.chosen)},
                      {"families", std::move(fams)}};
}

json::object InfoJson(const ForecasterInfo& i) {
  json::object params;
  for (const auto& [k, v] : i.parameters) {
    if (std::isfinite(v)) params[k] = v;
  }
  return json::object{{"family", FamilyName(i.family)},
                      {"description", i.description},
                      {"season", i.season},
                      {"seasonSource", i.season_source},
                      {"trainingValues", i.length},
                      {"interpolated", i.interpolated},
                      {"constant", i.constant},
                      {"trainSeconds", i.train_seconds},
                      {"parameters", std::move(params)}};
}

json::value ModelToJson(const ModelVersion& m) {
  return json::object{{"twin", m.twin},
                      {"path", m.path},
                      {"stepNs", m.step_ns},
                      {"version", m.version},
                      {"trainedAtNs", m.trained_at_ns},
                      {"dataEndNs", m.data_end_ns},
                      {"horizon", m.horizon},
                      {"levels", Doubles(m.levels)},
                      {"familyChoice", m.family_choice},
                      {"model", m.model}};
}

// Members of a stored document: a missing or mistyped one reads as empty or 0.
struct Fields {
  const json::object& o;
  std::string Str(const char* k) const {
    const json::value* x = o.if_contains(k);
    return x != nullptr && x->is_string() ? std::string(x->get_string()) : std::string();
  }
  std::int64_t I64(const char* k) const {
    const json::value* x = o.if_contains(k);
    if (x == nullptr) return 0;
    if (x->is_int64()) return x->get_int64();
    if (x->is_uint64()) return static_cast<std::int64_t>(x->get_uint64());
    return 0;
  }
};

std::optional<ModelVersion> ModelFromJson(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& o = v.get_object();
  const Fields f{o};
  ModelVersion m;
  m.twin = f.Str("twin");
  m.path = f.Str("path");
  m.step_ns = f.I64("stepNs");
  m.version = static_cast<std::uint64_t>(f.I64("version"));
  m.trained_at_ns = f.I64("trainedAtNs");
  m.data_end_ns = f.I64("dataEndNs");
  m.horizon = static_cast<int>(f.I64("horizon"));
  m.levels = DoublesOf(o.if_contains("levels"));
  m.family_choice = f.Str("familyChoice");
  m.model = f.Str("model");
  if (m.twin.empty() || m.step_ns <= 0 || m.model.empty()) return std::nullopt;
  return m;
}

std::string ScheduleKey(std::string_view twin, std::string_view path) {
  return fmt::format("fc/r/{}{}{}", twin, kSep, path);
}

json::value ScheduleToStored(const RetrainSchedule& s) {
  const ForecastRequest& r = s.request;
  return json::object{{"twin", r.twin},
                      {"path", r.path},
                      {"stepNs", r.step_ns},
                      {"horizon", r.horizon},
                      {"historyNs", r.history_ns},
                      {"levels", Doubles(r.levels)},
                      {"family", r.family ? FamilyName(*r.family) : "auto"},
                      {"everyNs", s.every_ns},
                      {"createdNs", s.created_ns},
                      {"nextRunNs", s.next_run_ns},
                      {"lastRunNs", s.last_run_ns},
                      {"lastResult", s.last_result},
                      {"lastError", s.last_error},
                      {"lastVersion", s.last_version},
                      {"trained", s.trained},
                      {"skipped", s.skipped},
                      {"failed", s.failed}};
}

std::optional<RetrainSchedule> ScheduleFromStored(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& o = v.get_object();
  const Fields f{o};
  RetrainSchedule s;
  s.request.twin = f.Str("twin");
  s.request.path = f.Str("path");
  s.request.step_ns = f.I64("stepNs");
  s.request.horizon = static_cast<int>(f.I64("horizon"));
  s.request.history_ns = f.I64("historyNs");
  s.request.levels = DoublesOf(o.if_contains("levels"));
  if (const std::string name = f.Str("family"); name != "auto") {
    auto family = ParseFamily(name);
    if (!family.ok()) return std::nullopt;
    s.request.family = *family;
  }
  s.every_ns = f.I64("everyNs");
  s.created_ns = f.I64("createdNs");
  s.next_run_ns = f.I64("nextRunNs");
  s.last_run_ns = f.I64("lastRunNs");
  s.last_result = f.Str("lastResult");
  s.last_error = f.Str("lastError");
  s.last_version = static_cast<std::uint64_t>(f.I64("lastVersion"));
  s.trained = static_cast<std::uint64_t>(f.I64("trained"));
  s.skipped = static_cast<std::uint64_t>(f.I64("skipped"));
  s.failed = static_cast<std::uint64_t>(f.I64("failed"));
  if (s.request.twin.empty() || s.request.step_ns <= 0 || s.every_ns <= 0) return std::nullopt;
  return s;
}
}  // namespace

json::value RetrainSchedule::ToJson() const {
  json::object o{
      {"twin", request.twin},
      {"path", request.path},
      {"every", StepName(every_ns)},
      {"step", StepName(request.step_ns)},
      {"horizon", request.horizon},
      {"history",
       request.history_ns > 0 ? json::value(StepName(request.history_ns)) : json::value(nullptr)},
      {"levels", Doubles(request.levels)},
      {"family", request.family ? FamilyName(*request.family) : "auto"},
      {"created", Iso(created_ns)},
      {"nextRun", Iso(next_run_ns)},
      {"lastRun", last_run_ns > 0 ? json::value(Iso(last_run_ns)) : json::value(nullptr)},
      {"lastResult", last_result.empty() ? json::value(nullptr) : json::value(last_result)},
      {"lastError", last_error.empty() ? json::value(nullptr) : json::value(last_error)},
      {"lastVersion", last_version > 0 ? json::value(last_version) : json::value(nullptr)},
      {"runs", json::object{{"trained", trained}, {"skipped", skipped}, {"failed", failed}}}};
  return o;
}

// A served forecast waiting for its actuals.
struct ForecastService::Pending {
  std::string twin, path, family;
  std::int64_t start_ns = 0, step_ns = 0;
  std::vector<double> mean;
  std::vector<std::pair<double, std::pair<std::vector<double>, std::vector<double>>>> bands;
  std::size_t next = 0;  // first step not yet compared

  json::value ToJson() const {
    json::array b;
    for (const auto& [level, lh] : bands) {
      b.push_back(
          json::object{{"level", level}, {"low", Doubles(lh.first)}, {"high", Doubles(lh.second)}});
    }
    return json::object{{"twin", twin},          {"path", path},      {"family", family},
                        {"startNs", start_ns},   {"stepNs", step_ns}, {"mean", Doubles(mean)},
                        {"bands", std::move(b)}, {"next", next}};
  }
};

struct ForecastService::Window {
  Series series;
  std::int64_t end_ns = 0;  // exclusive end of the last complete bucket
};

json::value ModelVersion::Summary() const {
  json::object o{{"twin", twin},
                 {"path", path},
                 {"step", StepName(step_ns)},
                 {"version", version},
                 {"trainedAt", Iso(trained_at_ns)},
                 {"dataEnd", Iso(data_end_ns)},
                 {"horizon", horizon},
                 {"levels", Doubles(levels)},
                 {"familyChoice", family_choice}};
  if (auto f = Forecaster::FromJson(model); f.ok()) {
    o["info"] = InfoJson(f->info());
    o["backtest"] = ReportJson(f->report());
  }
  return o;
}

json::value ServedForecast::ToJson() const {
  json::array points;
  for (std::size_t k = 0; k < forecast.mean.size(); ++k) {
    json::object p{
        {"time",
         Iso((forecast.start_ms + static_cast<std::int64_t>(k) * forecast.step_ms) * kNsPerMs)},
        {"mean",
         std::isfinite(forecast.mean[k]) ? json::value(forecast.mean[k]) : json::value(nullptr)}};
    json::array intervals;
    for (const Band& b : forecast.bands) {
      intervals.push_back(json::object{{"level", b.level}, {"low", b.low[k]}, {"high", b.high[k]}});
    }
    p["intervals"] = std::move(intervals);
    points.push_back(std::move(p));
  }
  json::array calibrated;
  for (const Band& b : forecast.bands) {
    calibrated.push_back(json::object{{"level", b.level}, {"calibrated", b.calibrated}});
  }
  return json::object{{"id", id},
                      {"twin", model.twin},
                      {"path", model.path},
                      {"step", StepName(model.step_ns)},
                      {"start", Iso(forecast.start_ms * kNsPerMs)},
                      {"model", json::object{{"version", model.version},
                                             {"trainedAt", Iso(model.trained_at_ns)},
                                             {"dataEnd", Iso(model.data_end_ns)},
                                             {"trainedNow", trained}}},
                      {"info", InfoJson(info)},
                      {"backtest", ReportJson(report)},
                      {"levels", std::move(calibrated)},
                      {"points", std::move(points)}};
}

json::value AccuracyStats::ToJson() const {
  json::object o{{"n", n}};
  const double nd = static_cast<double>(n);
  o["mae"] = n > 0 ? json::value(abs_sum / nd) : json::value(nullptr);
  o["rmse"] = n > 0 ? json::value(std::sqrt(sq_sum / nd)) : json::value(nullptr);
  o["bias"] = n > 0 ? json::value(err_sum / nd) : json::value(nullptr);
  json::array cov;
  for (const auto& [level, c] : counted) {
    auto it = covered.find(level);
    const std::uint64_t in = it == covered.end() ? 0 : it->second;
    cov.push_back(
        json::object{{"level", level},
                     {"coverage", c > 0 ? static_cast<double>(in) / static_cast<double>(c) : 0.0},
                     {"counted", c}});
  }
  o["coverage"] = std::move(cov);
  return o;
}

json::value AccuracyReport::ToJson(std::optional<std::string> twin) const {
  json::object fam, tw;
  if (!twin) {
    for (const auto& [f, s] : by_family) fam[f] = s.ToJson();
  }
  json::array twins;
  for (const auto& [key, s] : by_twin) {
    if (twin && key.first != *twin) continue;
    json::object o = s.ToJson().as_object();
    o.emplace("twin", key.first);
    o.emplace("family", key.second);
    twins.push_back(std::move(o));
  }
  json::object out{{"twins", std::move(twins)}, {"pending", pending}};
  if (!twin) out["families"] = std::move(fam);
  return out;
}

ForecastService::ForecastService(ForecastServiceOptions options) : options_(std::move(options)) {
  if (!options_.now_ns) {
    options_.now_ns = [] {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
}

ForecastService::~ForecastService() {
  {
    std::lock_guard lock(work_mu_);
    stop_ = true;
    jobs_.clear();  // their requests are answered by nobody: the server is stopping
  }
  work_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

bool ForecastService::Submit(std::function<void()> job) {
  if (!worker_.joinable()) {
    job();
    return true;
  }
  {
    std::lock_guard lock(work_mu_);
    if (stop_ || jobs_.size() >= options_.max_queued) return false;
    jobs_.push_back(std::move(job));
  }
  work_cv_.notify_one();
  return true;
}

void ForecastService::WorkerLoop() {
  std::unique_lock lock(work_mu_);
  while (!stop_) {
    if (!jobs_.empty()) {
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
      continue;
    }
    lock.unlock();
    RunDueSchedules();
    std::int64_t next = std::numeric_limits<std::int64_t>::max();
    {
      std::lock_guard m(mu_);
      for (const auto& [key, sc] : schedules_) next = std::min(next, sc.next_run_ns);
    }
    lock.lock();
    if (stop_ || !jobs_.empty()) continue;
    // At most a second: schedules set meanwhile, or a clock that is not the system's (tests),
    // are seen within it.
    const std::int64_t wait_ns =
        std::clamp<std::int64_t>(next - options_.now_ns(), 1'000'000, 1'000'000'000);
    work_cv_.wait_for(lock, std::chrono::nanoseconds(wait_ns));
  }
}

Result<std::unique_ptr<ForecastService>> ForecastService::Open(ForecastServiceOptions options) {
  if (options.history == nullptr) {
    return Status("FORECAST_BAD_OPTIONS", "the forecast service needs a history store");
  }
  auto s = std::make_unique<ForecastService>(std::move(options));
  if (store::Store* st = s->options_.store) {
    Status scanned = st->Scan("fc/", [&](std::string_view key, std::string_view value) {
      if (key.starts_with("fc/m/")) {
        if (auto m = ModelFromJson(value)) {
          s->models_[{m->twin, m->path, m->step_ns}].push_back(std::move(*m));
        }
      } else if (key.starts_with("fc/s/")) {
        boost::system::error_code ec;
        json::value v = json::parse(value, ec);
        if (ec || !v.is_object()) return;
        const json::object& o = v.get_object();
        Pending p;
        p.twin = json::value_to<std::string>(o.at("twin"));
        p.path = json::value_to<std::string>(o.at("path"));
        p.family = json::value_to<std::string>(o.at("family"));
        p.start_ns = o.at("startNs").to_number<std::int64_t>();
        p.step_ns = o.at("stepNs").to_number<std::int64_t>();
        p.mean = DoublesOf(o.if_contains("mean"));
        p.next = o.at("next").to_number<std::size_t>();
        for (const json::value& b : o.at("bands").as_array()) {
          p.bands.emplace_back(b.at("level").to_number<double>(),
                               std::make_pair(DoublesOf(b.as_object().if_contains("low")),
                                              DoublesOf(b.as_object().if_contains("high"))));
        }
        s->pending_[std::string(key.substr(5))] = std::move(p);
      } else if (key.starts_with("fc/r/")) {
        if (auto sc = ScheduleFromStored(value)) {
          sc->generation = ++s->schedule_generation_;
          s->schedules_[{sc->request.twin, sc->request.path}] = std::move(*sc);
        }
      } else if (key.starts_with("fc/a/")) {
        const std::string_view rest = key.substr(5);
        const std::size_t sep = rest.find(kSep);
        boost::system::error_code ec;
        json::value v = json::parse(value, ec);
        if (sep == std::string_view::npos || ec || !v.is_object()) return;
        const json::object& o = v.get_object();
        AccuracyStats a;
        a.n = o.at("n").to_number<std::uint64_t>();
        a.abs_sum = o.at("abs").to_number<double>();
        a.sq_sum = o.at("sq").to_number<double>();
        a.err_sum = o.at("err").to_number<double>();
        for (const json::value& c : o.at("levels").as_array()) {
          const double level = c.at("level").to_number<double>();
          a.covered[level] = c.at("covered").to_number<std::uint64_t>();
          a.counted[level] = c.at("counted").to_number<std::uint64_t>();
        }
        s->accuracy_
            .by_twin[{std::string(rest.substr(sep + 1)), std::string(rest.substr(0, sep))}] =
            std::move(a);
      }
    });
    if (!scanned.ok()) return scanned;
    for (const auto& [key, a] : s->accuracy_.by_twin) {
      AccuracyStats& f = s->accuracy_.by_family[key.second];
      f.n += a.n;
      f.abs_sum += a.abs_sum;
      f.sq_sum += a.sq_sum;
      f.err_sum += a.err_sum;
      for (const auto& [l, c] : a.covered) f.covered[l] += c;
      for (const auto& [l, c] : a.counted) f.counted[l] += c;
    }
    for (const auto& [id, p] : s->pending_) {
      (void)p;
      s->next_served_ =
          std::max<std::uint64_t>(s->next_served_, std::stoull(id.substr(id.rfind('-') + 1)) + 1);
    }
  }
  if (s->options_.worker) s->worker_ = std::thread([p = s.get()] { p->WorkerLoop(); });
  return s;
}

namespace {
// The request's own options, before any data is looked at.
Status CheckOptions(const ForecastRequest& r) {
  if (r.step_ns < 1'000'000 || r.step_ns % 1'000'000 != 0) {
    return Status("FORECAST_BAD_OPTIONS", "step must be a whole number of milliseconds, >= 1ms");
  }
  if (r.history_ns < 0) return Status("FORECAST_BAD_OPTIONS", "history must not be negative");
  const std::int64_t history = r.history_ns > 0 ? r.history_ns : 500 * r.step_ns;
  if (history / r.step_ns > 100'000) {
    return Status("FORECAST_BAD_OPTIONS",
                  fmt::format("history covers {} steps; at most 100000", history / r.step_ns));
  }
  if (r.horizon < 1) return Status("FORECAST_BAD_OPTIONS", "horizon must be at least 1 step");
  if (r.levels.empty()) return Status("FORECAST_BAD_OPTIONS", "at least one interval level");
  for (double l : r.levels) {
    if (!(l > 0 && l < 1)) {
      return Status("FORECAST_BAD_OPTIONS", fmt::format("level {} is not in (0, 1)", l));
    }
  }
  return Status::Ok();
}
}  // namespace

Result<ForecastService::Window> ForecastService::DataWindow(const ForecastRequest& r) const {
  if (Status s = CheckOptions(r); !s.ok()) return s;
  const std::int64_t history = r.history_ns > 0 ? r.history_ns : 500 * r.step_ns;
  tsdb::SeriesRef ref{r.twin, r.path};
  std::optional<tsdb::SeriesInfo> info = options_.history->Info(ref);
  if (!info || info->points == 0) {
    return Status("FORECAST_NO_DATA",
                  fmt::format("twin '{}' has no history of '{}'", r.twin, r.path));
  }
  if (info->type != tsdb::ValueType::kFloat64 && info->type != tsdb::ValueType::kInt64) {
    return Status("FORECAST_BAD_OPTIONS",
                  fmt::format("'{}' of twin '{}' is not numeric", r.path, r.twin));
  }
  // The bucket of the newest point is complete once the clock is past its end.
  std::int64_t end = FloorDiv(info->last_t_ns, r.step_ns) * r.step_ns;
  if (options_.now_ns() >= end + r.step_ns) end += r.step_ns;
  const std::int64_t from = std::max(end - FloorDiv(history, r.step_ns) * r.step_ns,
                                     FloorDiv(info->first_t_ns, r.step_ns) * r.step_ns);
  if (from >= end) {
    return Status("FORECAST_NO_DATA", fmt::format("'{}' of twin '{}' has no complete {} bucket yet",
                                                  r.path, r.twin, StepName(r.step_ns)));
  }
  tsdb::RangeQuery q;
  q.from_ns = from;
  q.to_ns = end - 1;
  q.step_ns = r.step_ns;
  q.agg = tsdb::Agg::kMean;
  auto buckets = options_.history->Aggregate(ref, q);
  if (!buckets.ok()) return buckets.status();
  Window w;
  w.end_ns = end;
  w.series.t0_ms = from / kNsPerMs;
  w.series.step_ms = r.step_ns / kNsPerMs;
  w.series.values.assign(static_cast<std::size_t>((end - from) / r.step_ns), std::nan(""));
  for (const tsdb::Bucket& b : *buckets) {
    const std::int64_t i = (b.t_ns - from) / r.step_ns;
    if (b.count == 0 || i < 0 || i >= static_cast<std::int64_t>(w.series.values.size())) continue;
    if (const double* d = std::get_if<double>(&b.value)) {
      w.series.values[static_cast<std::size_t>(i)] = *d;
    }
  }
  return w;
}

Result<ModelVersion> ForecastService::Fit(const ForecastRequest& r, const Window& w) {
  ForecastOptions fo;
  fo.horizon = r.horizon;
  fo.levels = r.levels;
  if (r.family) fo.families = {*r.family};
  auto f = Forecaster::Fit(w.series, fo);
  if (!f.ok()) return f.status();
  ModelVersion m;
  m.twin = r.twin;
  m.path = r.path;
  m.step_ns = r.step_ns;
  m.trained_at_ns = options_.now_ns();
  m.data_end_ns = w.end_ns;
  m.horizon = r.horizon;
  m.levels = r.levels;
  m.family_choice = r.family ? std::string(FamilyName(*r.family)) : "auto";
  m.model = f->ToJson();
  std::vector<std::string> drop;
  {
    std::lock_guard lock(mu_);
    auto& versions = models_[{r.twin, r.path, r.step_ns}];
    m.version = versions.empty() ? 1 : versions.back().version + 1;
    if (options_.store != nullptr) {
      if (Status s = options_.store->Put(ModelKey(m), json::serialize(ModelToJson(m))); !s.ok()) {
        return s;
      }
    }
    versions.push_back(m);
    while (versions.size() > options_.keep_versions) {
      drop.push_back(ModelKey(versions.front()));
      versions.erase(versions.begin());
    }
  }
  if (options_.store != nullptr) {
    for (const std::string& k : drop) (void)options_.store->Delete(k);
  }
  return m;
}

Result<ModelVersion> ForecastService::Train(const ForecastRequest& r) {
  auto w = DataWindow(r);
  if (!w.ok()) return w.status();
  return Fit(r, *w);
}

std::optional<ModelVersion> ForecastService::CurrentModel(const ForecastRequest& r,
                                                          std::int64_t end_ns) const {
  const std::string choice = r.family ? std::string(FamilyName(*r.family)) : "auto";
  std::lock_guard lock(mu_);
  auto it = models_.find({r.twin, r.path, r.step_ns});
  if (it == models_.end() || it->second.empty()) return std::nullopt;
  const ModelVersion& m = it->second.back();
  if (m.data_end_ns != end_ns || m.horizon < r.horizon || m.levels != r.levels ||
      m.family_choice != choice) {
    return std::nullopt;
  }
  return m;
}

Result<ServedForecast> ForecastService::Serve(const ForecastRequest& r) {
  Evaluate();
  ServedForecast out;
  if (!r.refit) {
    std::optional<ModelVersion> newest;
    {
      std::lock_guard lock(mu_);
      auto it = models_.find({r.twin, r.path, r.step_ns});
      if (it != models_.end() && !it->second.empty()) newest = it->second.back();
    }
    if (!newest) {
      return Status("FORECAST_NO_MODEL",
                    fmt::format("no model of '{}' of twin '{}' at step {}; ask without "
                                "refit=false to train one",
                                r.path, r.twin, StepName(r.step_ns)));
    }
    out.model = *newest;
  } else {
    auto w = DataWindow(r);
    if (!w.ok()) return w.status();
    if (auto current = CurrentModel(r, w->end_ns)) {
      out.model = std::move(*current);
    } else {
      auto m = Fit(r, *w);
      if (!m.ok()) return m.status();
      out.model = std::move(*m);
      out.trained = true;
    }
  }
  auto f = Forecaster::FromJson(out.model.model);
  if (!f.ok()) return f.status();
  auto fc = f->Predict(std::min(r.horizon, out.model.horizon));
  if (!fc.ok()) return fc.status();
  out.forecast = std::move(*fc);
  out.info = f->info();
  out.report = f->report();

  Pending p;
  p.twin = r.twin;
  p.path = r.path;
  p.family = std::string(FamilyName(out.info.family));
  p.start_ns = out.forecast.start_ms * kNsPerMs;
  p.step_ns = r.step_ns;
  p.mean = out.forecast.mean;
  for (const Band& b : out.forecast.bands)
    p.bands.emplace_back(b.level, std::make_pair(b.low, b.high));
  std::lock_guard lock(mu_);
  out.id = fmt::format("{}-{}", options_.now_ns(), next_served_++);
  if (options_.store != nullptr) {
    if (Status s = options_.store->Put("fc/s/" + out.id, json::serialize(p.ToJson())); !s.ok()) {
      return s;
    }
  }
  pending_[out.id] = std::move(p);
  return out;
}

std::vector<ModelVersion> ForecastService::Models(std::string_view twin) const {
  std::vector<ModelVersion> out;
  std::lock_guard lock(mu_);
  for (const auto& [key, versions] : models_) {
    if (std::get<0>(key) != twin) continue;
    out.insert(out.end(), versions.rbegin(), versions.rend());
  }
  return out;
}

void ForecastService::SaveAccuracy(const std::string& family, const std::string& twin) {
  if (options_.store == nullptr) return;
  const AccuracyStats& a = accuracy_.by_twin[{twin, family}];
  json::array levels;
  for (const auto& [level, c] : a.counted) {
    levels.push_back(json::object{{"level", level},
                                  {"counted", c},
                                  {"covered", a.covered.count(level) ? a.covered.at(level) : 0}});
  }
  (void)options_.store->Put(fmt::format("fc/a/{}{}{}", family, kSep, twin),
                            json::serialize(json::object{{"n", a.n},
                                                         {"abs", a.abs_sum},
                                                         {"sq", a.sq_sum},
                                                         {"err", a.err_sum},
                                                         {"levels", std::move(levels)}}));
}

void ForecastService::Evaluate() {
  const std::int64_t now = options_.now_ns();
  const std::int64_t grace =
      std::chrono::duration_cast<std::chrono::nanoseconds>(options_.grace).count();
  std::lock_guard lock(mu_);
  std::vector<std::string> finished;
  for (auto& [id, p] : pending_) {
    tsdb::SeriesRef ref{p.twin, p.path};
    std::optional<tsdb::SeriesInfo> info = options_.history->Info(ref);
    const std::size_t before = p.next;
    bool changed = false;
    while (p.next < p.mean.size()) {
      const std::int64_t b0 = p.start_ns + static_cast<std::int64_t>(p.next) * p.step_ns;
      const std::int64_t b1 = b0 + p.step_ns;
      const bool complete = (info && info->last_t_ns >= b1) || now >= b1 + grace;
      if (!complete) break;
      tsdb::RangeQuery q;
      q.from_ns = b0;
      q.to_ns = b1 - 1;
      q.step_ns = 0;
      q.agg = tsdb::Agg::kMean;
      auto buckets = options_.history->Aggregate(ref, q);
      if (buckets.ok() && !buckets->empty() && buckets->front().count > 0) {
        if (const double* actual = std::get_if<double>(&buckets->front().value)) {
          const double e = p.mean[p.next] - *actual;
          for (AccuracyStats* a :
               {&accuracy_.by_twin[{p.twin, p.family}], &accuracy_.by_family[p.family]}) {
            ++a->n;
            a->abs_sum += std::abs(e);
            a->sq_sum += e * e;
            a->err_sum += e;
            for (const auto& [level, lh] : p.bands) {
              ++a->counted[level];
              if (*actual >= lh.first[p.next] && *actual <= lh.second[p.next]) ++a->covered[level];
            }
          }
          changed = true;
        }
      }
      ++p.next;
    }
    const std::int64_t horizon_end =
        p.start_ns + static_cast<std::int64_t>(p.mean.size()) * p.step_ns;
    if (p.next >= p.mean.size() || now >= horizon_end + grace) {
      finished.push_back(id);
    } else if (p.next != before && options_.store != nullptr) {
      (void)options_.store->Put("fc/s/" + id, json::serialize(p.ToJson()));
    }
    if (changed) SaveAccuracy(p.family, p.twin);
  }
  for (const std::string& id : finished) {
    pending_.erase(id);
    if (options_.store != nullptr) (void)options_.store->Delete("fc/s/" + id);
  }
  accuracy_.pending = pending_.size();
}

AccuracyReport ForecastService::Accuracy() {
  Evaluate();
  std::lock_guard lock(mu_);
  return accuracy_;
}

void ForecastService::Forget(std::string_view twin) {
  std::vector<std::string> keys;
  std::lock_guard lock(mu_);
  for (auto it = models_.begin(); it != models_.end();) {
    if (std::get<0>(it->first) == twin) {
      for (const ModelVersion& m : it->second) keys.push_back(ModelKey(m));
      it = models_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.twin == twin) {
      keys.push_back("fc/s/" + it->first);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = schedules_.begin(); it != schedules_.end();) {
    if (it->first.first == twin) {
      keys.push_back(ScheduleKey(it->first.first, it->first.second));
      it = schedules_.erase(it);
    } else {
      ++it;
    }
  }
  totals_.schedules = schedules_.size();
  if (options_.store != nullptr) {
    for (const std::string& k : keys) (void)options_.store->Delete(k);
  }
}

void ForecastService::SaveSchedule(const RetrainSchedule& s) {
  if (options_.store == nullptr) return;
  (void)options_.store->Put(ScheduleKey(s.request.twin, s.request.path),
                            json::serialize(ScheduleToStored(s)));
}

Result<RetrainSchedule> ForecastService::SetSchedule(const ForecastRequest& request,
                                                     std::chrono::nanoseconds every) {
  if (every < std::chrono::seconds(1)) {
    return Status("FORECAST_BAD_OPTIONS", "a retraining schedule runs at most once a second");
  }
  if (Status s = CheckOptions(request); !s.ok()) return s;
  RetrainSchedule s;
  s.request = request;
  s.request.refit = true;
  s.every_ns = every.count();
  s.created_ns = options_.now_ns();
  s.next_run_ns = s.created_ns + s.every_ns;
  {
    std::lock_guard lock(mu_);
    if (options_.store != nullptr) {
      if (Status st = options_.store->Put(ScheduleKey(request.twin, request.path),
                                          json::serialize(ScheduleToStored(s)));
          !st.ok()) {
        return st;
      }
    }
    s.generation = ++schedule_generation_;
    schedules_[{request.twin, request.path}] = s;
    totals_.schedules = schedules_.size();
  }
  work_cv_.notify_all();  // the worker may sleep past the new due time
  return s;
}

std::vector<RetrainSchedule> ForecastService::Schedules(
    std::optional<std::string_view> twin) const {
  std::vector<RetrainSchedule> out;
  std::lock_guard lock(mu_);
  for (const auto& [key, s] : schedules_) {
    if (!twin || key.first == *twin) out.push_back(s);
  }
  return out;
}

Status ForecastService::DeleteSchedule(std::string_view twin, std::string_view path) {
  std::lock_guard lock(mu_);
  auto it = schedules_.find({std::string(twin), std::string(path)});
  if (it == schedules_.end()) {
    return Status("FORECAST_SCHEDULE_NOT_FOUND",
                  fmt::format("twin '{}' has no retraining schedule for '{}'", twin, path));
  }
  if (options_.store != nullptr) {
    if (Status s = options_.store->Delete(ScheduleKey(twin, path)); !s.ok()) return s;
  }
  schedules_.erase(it);
  totals_.schedules = schedules_.size();
  return Status::Ok();
}

std::size_t ForecastService::RunDueSchedules() {
  const std::int64_t now = options_.now_ns();
  std::vector<RetrainSchedule> due;
  {
    std::lock_guard lock(mu_);
    for (auto& [key, s] : schedules_) {
      if (s.next_run_ns > now) continue;
      due.push_back(s);
      // The next due time after now, on the schedule's grid (a missed period is not made up).
      const std::int64_t behind = (now - s.next_run_ns) / s.every_ns + 1;
      s.next_run_ns += behind * s.every_ns;
    }
  }
  for (RetrainSchedule& s : due) {
    std::string result, error;
    std::uint64_t version = 0;
    auto w = DataWindow(s.request);
    if (!w.ok()) {
      result = "failed";
      error = fmt::format("{}: {}", w.status().code(), w.status().message());
    } else if (auto current = CurrentModel(s.request, w->end_ns)) {
      result = "skipped";
      version = current->version;
    } else if (auto m = Fit(s.request, *w); !m.ok()) {
      result = "failed";
      error = fmt::format("{}: {}", m.status().code(), m.status().message());
    } else {
      result = "trained";
      version = m->version;
    }
    std::lock_guard lock(mu_);
    ++(result == "trained"   ? totals_.trained
       : result == "skipped" ? totals_.skipped
                             : totals_.failed);
    auto it = schedules_.find({s.request.twin, s.request.path});
    // Deleted or replaced while it ran: the run counts, the schedule is not brought back.
    if (it == schedules_.end() || it->second.generation != s.generation) continue;
    RetrainSchedule& live = it->second;
    live.last_run_ns = now;
    live.last_result = result;
    if (!error.empty()) live.last_error = error;
    if (version > 0) live.last_version = version;
    ++(result == "trained" ? live.trained : result == "skipped" ? live.skipped : live.failed);
    SaveSchedule(live);
  }
  return due.size();
}

RetrainTotals ForecastService::Totals() const {
  RetrainTotals t;
  {
    std::lock_guard lock(mu_);
    t = totals_;
  }
  std::lock_guard lock(work_mu_);
  t.queued = jobs_.size();
  return t;
}

}  // namespace doppel::analytics::forecast
