// Scenarios over HTTP (sim/scenario/scenario.h): definitions, runs as jobs, comparisons.
//
//   PUT    /scenarios/{id}                       store a definition (checked against the units
//                                                and the twins it binds: nothing is stored when
//                                                it fails) → 200 with the definition
//   GET    /scenarios, /scenarios/{id}           definitions
//   DELETE /scenarios/{id}                       the definition and its runs (running ones are
//                                                cancelled) → 204
//   POST   /scenarios/{id}/runs                  start a run (base run + Monte Carlo) → 202
//                                                with the run (status "running", progress),
//                                                Location: /scenarios/{id}/runs/{runId}
//   GET    /scenarios/{id}/runs                  its runs (summaries)
//   GET    /scenarios/{id}/runs/{runId}          status, progress, KPIs (with Monte Carlo
//                                                spread), the recorded series (?maxPoints=,
//                                                default 2000: every k-th row, first and last
//                                                kept), events, error; with Monte Carlo runs,
//                                                `monteCarlo.bands`: every recorded variable's
//                                                p5/p25/p50/p75/p95 and mean across the runs
//                                                over time (sc::TimeBand, <= 200 times)
//   POST   /scenarios/{id}/runs/{runId}/cancel   → 202; the run ends "cancelled", no result
//   GET    /scenarios/{id}/runs/{runId}/history/{variable}   a succeeded run's recorded variable
//                                                from the history store (history_routes.cc)
//   GET    /scenario-comparison?runs=<id>/<runId>,<id>/<runId>[,…]&objective=<kpi>
//          [&direction=minimize|maximize]        KPI table against the first run (the
//                                                baseline) and the recommendation
// Definitions and succeeded or failed runs are stored (`sc/d/<id>`, `sc/r/<id>\x1f<runId>`) and
// loaded at start; cancelled runs and a run still going at shutdown (cancelled) are not.
// A succeeded run's recorded variables also go to the history store, under the run's namespace
// (RunHistoryTwin, shown as `$run/<id>/<runId>`: one series per variable), at the run's creation
// time plus the simulated seconds since the scenario's start, so that they are queried, aggregated
// and exported like twin history; deleting the scenario deletes them.
// Errors: SCENARIO_INVALID / SCENARIO_KPI / SCENARIO_UNKNOWN_KIND / SCENARIO_BINDING /
// SCENARIO_HISTORY / SIM_*
// (400, with the JSON pointer), SCENARIO_NOT_FOUND / SCENARIO_RUN_NOT_FOUND (404),
// SCENARIO_RUN_NOT_FINISHED (409: compared before it succeeded), SCENARIO_TOO_MANY_RUNS (429),
// INVALID_PARAMETER (400).
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/problem.h"
#include "api/routes.h"
#include "core/json.h"
#include "core/time.h"
#include "sim/scenario/scenario.h"
#include "sim/scenario/unit_kinds.h"
#include "store/store.h"
#include "tsdb/history.h"

namespace doppel::api {

namespace json = boost::json;
using core::Status;
namespace sc = sim::scenario;

namespace {

constexpr std::size_t kMaxRunning = 4;
constexpr char kSep = '\x1f';

std::string Now() { return core::FormatRfc3339(std::chrono::system_clock::now()); }

double Finite(double v) { return std::isfinite(v) ? v : 0.0; }

json::value Number(double v) {
  if (std::isfinite(v)) return v;
  return nullptr;
}

json::object KpisJson(const sc::ScenarioResult& r) {
  json::object kpis;
  for (const sc::KpiResult& k : r.kpis) {
    json::object o{{"value", Number(k.value)}};
    if (k.spread) {
      o["spread"] =
          json::object{{"runs", k.spread->runs},         {"nonFinite", k.spread->non_finite},
                       {"mean", Number(k.spread->mean)}, {"stddev", Number(k.spread->stddev)},
                       {"p5", Number(k.spread->p5)},     {"p50", Number(k.spread->p50)},
                       {"p95", Number(k.spread->p95)}};
      json::array counts;
      for (std::uint64_t n : k.spread->histogram) counts.push_back(n);
      o["spread"].as_object()["histogram"] = json::object{{"lo", Number(k.spread->histogram_lo)},
                                                          {"hi", Number(k.spread->histogram_hi)},
                                                          {"counts", std::move(counts)}};
    }
    kpis[k.name] = std::move(o);
  }
  return kpis;
}

// Everything a finished run answers (and stores). Series are kept whole here; GET decimates.
json::object ResultJson(const sc::ScenarioResult& r) {
  json::object out;
  out["kpis"] = KpisJson(r);
  json::object series;
  json::array time;
  for (double t : r.recording.time) time.push_back(t);
  series["time"] = std::move(time);
  for (std::size_t i = 0; i < r.recording.names.size(); ++i) {
    json::array col;
    for (double v : r.recording.columns[i]) col.push_back(Number(v));
    series[r.recording.names[i]] = std::move(col);
  }
  out["series"] = std::move(series);
  json::array events;
  for (const sim::Event& e : r.recording.events) {
    events.push_back(json::object{{"time", e.time}, {"name", e.name}});
  }
  out["events"] = std::move(events);
  if (r.runs_requested > 0) {
    json::object mc{{"runs", r.runs_requested},
                    {"completed", r.runs_completed},
                    {"failed", r.runs_failed},
                    {"seed", r.seed}};
    if (!r.first_failure.ok()) {
      mc["firstFailure"] =
          json::object{{"code", r.first_failure.code()}, {"message", r.first_failure.message()}};
    }
    json::object runs;
    for (std::size_t k = 0; k < r.kpis.size() && k < r.kpi_runs.size(); ++k) {
      json::array a;
      for (double v : r.kpi_runs[k]) a.push_back(Number(v));
      runs[r.kpis[k].name] = std::move(a);
    }
    mc["kpiRuns"] = std::move(runs);
    json::array bands;
    for (const sc::TimeBand& b : r.bands) {
      auto numbers = [](const std::vector<double>& v) {
        json::array a;
        for (double x : v) a.push_back(Number(x));
        return a;
      };
      json::array counts;
      for (std::size_t n : b.runs) counts.push_back(n);
      bands.push_back(json::object{{"variable", b.name},
                                   {"time", numbers(b.time)},
                                   {"p5", numbers(b.p5)},
                                   {"p25", numbers(b.p25)},
                                   {"p50", numbers(b.p50)},
                                   {"p75", numbers(b.p75)},
                                   {"p95", numbers(b.p95)},
                                   {"mean", numbers(b.mean)},
                                   {"runs", std::move(counts)}});
    }
    mc["bands"] = std::move(bands);
    out["monteCarlo"] = std::move(mc);
  }
  return out;
}

// What Recommend needs, back from a stored result.
sc::ScenarioResult ResultFromJson(const std::string& name, const json::object& o) {
  sc::ScenarioResult r;
  r.name = name;
  const json::object* kpis = o.contains("kpis") ? o.at("kpis").if_object() : nullptr;
  const json::object* mc = o.contains("monteCarlo") ? o.at("monteCarlo").if_object() : nullptr;
  if (mc != nullptr && mc->contains("seed")) r.seed = mc->at("seed").to_number<std::uint64_t>();
  if (kpis == nullptr) return r;
  for (const auto& kv : *kpis) {
    sc::KpiResult k;
    k.name = std::string(kv.key());
    const json::object& ko = kv.value().as_object();
    k.value = ko.at("value").is_number() ? ko.at("value").to_number<double>() : std::nan("");
    if (const json::value* s = ko.if_contains("spread")) {
      sc::KpiSpread sp;
      auto num = [&](const char* n) {
        const json::value& v = s->as_object().at(n);
        return v.is_number() ? v.to_number<double>() : std::nan("");
      };
      sp.runs = s->as_object().at("runs").to_number<std::size_t>();
      sp.mean = num("mean");
      sp.stddev = num("stddev");
      sp.p5 = num("p5");
      sp.p50 = num("p50");
      sp.p95 = num("p95");
      k.spread = sp;
      std::vector<double> runs;
      if (mc != nullptr && mc->contains("kpiRuns")) {
        if (const json::value* a = mc->at("kpiRuns").as_object().if_contains(k.name)) {
          for (const json::value& v : a->as_array()) {
            runs.push_back(v.is_number() ? v.to_number<double>() : std::nan(""));
          }
        }
      }
      r.kpi_runs.push_back(std::move(runs));
    }
    r.kpis.push_back(std::move(k));
  }
  return r;
}

struct ScenarioRun {
  std::string scenario, id;
  std::string status = "running";  // running | succeeded | failed | cancelled
  double progress = 0;
  std::string stage = "starting";
  std::string created, finished;
  std::atomic<bool> cancel{false};
  Status error;
  json::object result;  // when succeeded

  json::object Summary() const {
    json::object o{{"id", id},         {"scenario", scenario},
                   {"status", status}, {"progress", Finite(progress)},
                   {"stage", stage},   {"created", created}};
    if (!finished.empty()) o["finished"] = finished;
    if (!error.ok()) {
      json::object e{{"code", error.code()}, {"message", error.message()}};
      if (!error.pointer().empty()) e["pointer"] = error.pointer();
      o["error"] = std::move(e);
    }
    return o;
  }
};

}  // namespace

std::string RunHistoryTwin(std::string_view scenario, std::string_view run) {
  return fmt::format("\x1frun\x1f{}\x1f{}", scenario, run);
}

namespace {

// Appends the run's recording to history under RunHistoryTwin, at `created_ns` plus the
// simulated seconds since the first row; non-finite values are left out. Answers what the run's
// result says about it: {"twin", "series", "points"} or {"error"}.
json::value RecordToHistory(tsdb::HistoryStore& h, const ScenarioRun& run,
                            const sim::Recording& rec, std::int64_t created_ns) {
  const std::string twin = RunHistoryTwin(run.scenario, run.id);
  const std::string shown = fmt::format("$run/{}/{}", run.scenario, run.id);
  std::vector<tsdb::Sample> samples;
  const double t0 = rec.time.empty() ? 0 : rec.time.front();
  for (std::size_t i = 0; i < rec.names.size(); ++i) {
    for (std::size_t row = 0; row < rec.time.size() && row < rec.columns[i].size(); ++row) {
      const double v = rec.columns[i][row];
      if (!std::isfinite(v)) continue;
      const auto dt = static_cast<std::int64_t>(std::llround((rec.time[row] - t0) * 1e9));
      samples.push_back({twin, rec.names[i], created_ns + dt, v});
    }
  }
  std::vector<Status> st = h.Append(samples);
  if (!st.empty()) {
    for (const Status& e : st) {
      if (!e.ok()) return json::object{{"namespace", shown}, {"error", e.ToString()}};
    }
  }
  return json::object{
      {"namespace", shown},
      {"series", rec.names.size()},
      {"points", samples.size()},
      {"query", fmt::format("/scenarios/{}/runs/{}/history/<variable>", run.scenario, run.id)}};
}

}  // namespace

struct ScenarioRoutesState {
  std::mutex mu;
  std::map<std::string, json::value> definitions;
  std::map<std::string, std::shared_ptr<ScenarioRun>> runs;  // key: scenario \x1f run id
  // A thread per run; joined once its run has ended (Reap) or at shutdown.
  std::vector<std::pair<std::shared_ptr<ScenarioRun>, std::thread>> threads;
  std::uint64_t next_run = 1;
  std::map<std::string, std::uint64_t> finished;  // by status, for /metrics
  sc::UnitKinds kinds;
  sc::BindingSource bindings;
  sc::HistorySource history;
  store::Store* store = nullptr;
  tsdb::HistoryStore* tsdb = nullptr;  // recorded variables of succeeded runs (may be null)
  std::size_t threads_per_run = 1;

  ~ScenarioRoutesState() {
    {
      std::lock_guard lock(mu);
      for (auto& [k, r] : runs) {
        (void)k;
        r->cancel = true;
      }
    }
    for (auto& [run, t] : threads) {
      (void)run;
      t.join();
    }
  }

  // Joins the threads of ended runs. REQUIRES: mu held. Safe: a run's thread sets its final
  // status as its last use of mu, so it never waits for mu once its status is not "running".
  void Reap() {
    std::erase_if(threads, [](auto& entry) {
      if (entry.first->status == "running") return false;
      entry.second.join();
      return true;
    });
  }

  std::size_t Running() const {
    std::size_t n = 0;
    for (const auto& [k, r] : runs) {
      (void)k;
      if (r->status == "running") ++n;
    }
    return n;
  }

  void Persist(const ScenarioRun& r) {
    if (store == nullptr) return;
    json::object o = r.Summary();
    o["result"] = r.result;
    (void)store->Put("sc/r/" + r.scenario + kSep + r.id, json::serialize(o));
  }
};

namespace {

// The twin's value at a path ("name" or "component/name"), now or from history at a time.
// The numeric values of a twin's property history in a range (booleans as 0/1), at most the
// newest 1,000,000.
core::Result<std::vector<double>> HistoryValues(const RouteContext& ctx,
                                                const sc::HistorySample& h) {
  if (ctx.services.history == nullptr) {
    return Status("HISTORY_DISABLED", "the history store is off");
  }
  tsdb::RangeQuery q;
  q.from_ns = h.from_ns;
  q.to_ns = h.to_ns;
  q.limit = 1'000'000;
  q.latest = true;
  auto pts = ctx.services.history->Read({h.twin, h.path}, q);
  if (!pts.ok()) return pts.status();
  std::vector<double> out;
  out.reserve(pts->size());
  for (const tsdb::Point& p : *pts) {
    if (const auto* d = std::get_if<double>(&p.value)) {
      out.push_back(*d);
    } else if (const auto* i = std::get_if<std::int64_t>(&p.value)) {
      out.push_back(static_cast<double>(*i));
    } else if (const auto* b = std::get_if<bool>(&p.value)) {
      out.push_back(*b ? 1.0 : 0.0);
    } else {
      return Status("SCENARIO_HISTORY", "the property holds strings, not numbers");
    }
  }
  return out;
}

core::Result<json::value> TwinValue(const RouteContext& ctx, const sc::Binding& b,
                                    std::optional<std::int64_t> at_ns) {
  if (at_ns) {
    if (ctx.services.history == nullptr) {
      return Status("HISTORY_DISABLED", "\"at\" needs the history store, which is off");
    }
    tsdb::RangeQuery q;
    q.to_ns = *at_ns;
    q.limit = 1;
    q.latest = true;
    auto pts = ctx.services.history->Read({b.twin, b.path}, q);
    if (!pts.ok()) return pts.status();
    if (pts->empty()) {
      return Status("SCENARIO_BINDING", "history has no value at or before that time");
    }
    return std::visit(
        [](const auto& v) -> json::value {
          if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string>) {
            return json::value(std::string_view(v));
          } else {
            return json::value(v);
          }
        },
        pts->back().value);
  }
  twin::TwinPtr t = ctx.services.graph->FindTwin(b.twin);
  if (!t) return twin::TwinNotFound(b.twin);
  const json::object* at = &t->doc;
  std::string_view path = b.path;
  while (true) {
    const auto slash = path.find('/');
    const std::string_view name = path.substr(0, slash);
    const json::value* v = at->if_contains(name);
    if (v == nullptr) {
      return Status("SCENARIO_BINDING",
                    fmt::format("twin '{}' has no value at '{}'", b.twin, b.path));
    }
    if (slash == std::string_view::npos) return *v;
    if (!v->is_object()) {
      return Status("SCENARIO_BINDING",
                    fmt::format("twin '{}': '{}' is not a component", b.twin, std::string(name)));
    }
    at = &v->get_object();
    path.remove_prefix(slash + 1);
  }
}

// Every k-th row of the series (first and last kept) so that at most max_points remain.
json::object Decimated(const json::object& series, std::size_t max_points) {
  const json::array* time = series.contains("time") ? series.at("time").if_array() : nullptr;
  if (time == nullptr || time->size() <= max_points || max_points < 2) return series;
  const std::size_t n = time->size();
  const std::size_t k = std::max<std::size_t>(1, (n - 1 + max_points - 2) / (max_points - 1));
  json::object out;
  for (const auto& kv : series) {
    const json::array& a = kv.value().as_array();
    json::array d;
    for (std::size_t i = 0; i < n; i += k) d.push_back(a[i]);
    if ((n - 1) % k != 0) d.push_back(a[n - 1]);
    out[kv.key()] = std::move(d);
  }
  return out;
}

json::object RunJson(const ScenarioRun& r, std::size_t max_points) {
  json::object o = r.Summary();
  if (r.status == "succeeded") {
    json::object res = r.result;
    if (res.contains("series")) res["series"] = Decimated(res.at("series").as_object(), max_points);
    if (res.contains("monteCarlo")) res["monteCarlo"].as_object().erase("kpiRuns");
    o["result"] = std::move(res);
  }
  return o;
}

}  // namespace

void RegisterScenarioRoutes(const AddRoute& add_route, RouteContext& ctx) {
  auto add = [&add_route](std::string method, std::string path, Role role, std::string summary,
                          std::string body, std::function<void(Request&, const Respond&)> h) {
    add_route(std::move(method), std::move(path), role, std::move(summary), std::move(body),
              std::move(h), false);
  };
  auto state = std::make_shared<ScenarioRoutesState>();
  ctx.scenarios = state;
  ScenarioRoutesState* s = state.get();
  RouteContext* c = &ctx;
  sc::UnitKindOptions kind_options;
  if (!ctx.options->fmu_dir.empty()) kind_options.fmu_dir = ctx.options->fmu_dir;
  s->kinds = sc::DefaultUnitKinds(kind_options);
  s->bindings = [c](const sc::Binding& b, std::optional<std::int64_t> at) {
    return TwinValue(*c, b, at);
  };
  s->history = [c](const sc::HistorySample& h) { return HistoryValues(*c, h); };
  s->store = ctx.services.store;
  s->tsdb = ctx.services.history;
  s->threads_per_run = std::max(1u, std::thread::hardware_concurrency());
  if (s->store != nullptr) {
    (void)s->store->Scan("sc/", [&](std::string_view key, std::string_view value) {
      auto v = core::ParseJson(value);
      if (!v.ok() || !v->is_object()) return true;
      if (key.starts_with("sc/d/")) {
        s->definitions[std::string(key.substr(5))] = std::move(*v);
      } else if (key.starts_with("sc/r/")) {
        auto run = std::make_shared<ScenarioRun>();
        const json::object& o = v->as_object();
        run->scenario = std::string(o.at("scenario").as_string());
        run->id = std::string(o.at("id").as_string());
        run->status = std::string(o.at("status").as_string());
        run->progress = o.at("progress").to_number<double>();
        run->stage = std::string(o.at("stage").as_string());
        run->created = std::string(o.at("created").as_string());
        if (o.contains("finished")) run->finished = std::string(o.at("finished").as_string());
        if (const json::value* e = o.if_contains("error")) {
          run->error = Status(std::string(e->at("code").as_string()),
                              std::string(e->at("message").as_string()));
        }
        if (const json::value* r = o.if_contains("result"); r != nullptr && r->is_object()) {
          run->result = r->get_object();
        }
        const std::string id = run->id;
        if (id.starts_with("run-")) {
          std::uint64_t n = 0;
          std::from_chars(id.data() + 4, id.data() + id.size(), n);
          s->next_run = std::max(s->next_run, n + 1);
        }
        s->runs[run->scenario + kSep + id] = std::move(run);
      }
      return true;
    });
  }

  auto not_found = [](const std::string& id) {
    return Status("SCENARIO_NOT_FOUND", fmt::format("no scenario '{}'", id));
  };

  add("PUT", "/scenarios/{id}", Role::kWriter,
      "Store a scenario definition (checked against its units and bindings)", "json",
      [c, s](Request& req, const Respond& respond) {
        const std::string& id = req.params[0];
        auto body = JsonBody(req, *c, "a scenario definition");
        if (!body.ok()) return respond(Problem(body.status(), req));
        if (body->is_object()) {
          if (const json::value* bid = body->as_object().if_contains("id");
              bid != nullptr && (!bid->is_string() || bid->get_string() != id)) {
            return respond(Problem(
                Status("SCENARIO_INVALID", "the body's id differs from the one in the path", "/id"),
                req));
          }
        }
        auto def = sc::ParseScenario(*body);
        if (!def.ok()) return respond(Problem(def.status(), req));
        if (Status v = sc::ValidateScenario(*def, s->kinds, s->bindings, s->history); !v.ok()) {
          return respond(Problem(v, req));
        }
        body->as_object()["id"] = id;
        if (s->store != nullptr) {
          if (Status st = s->store->Put("sc/d/" + id, json::serialize(*body)); !st.ok()) {
            return respond(Problem(st, req));
          }
        }
        std::lock_guard lock(s->mu);
        s->definitions[id] = *body;
        respond(Reply::Json(200, *body));
      });

  add("GET", "/scenarios", Role::kReader, "Scenario definitions", "",
      [s](Request&, const Respond& respond) {
        json::array out;
        std::lock_guard lock(s->mu);
        for (const auto& [id, d] : s->definitions) {
          (void)id;
          out.push_back(d);
        }
        respond(Reply::Json(200, json::object{{"value", std::move(out)}}));
      });

  add("GET", "/scenarios/{id}", Role::kReader, "A scenario definition", "",
      [s, not_found](Request& req, const Respond& respond) {
        std::lock_guard lock(s->mu);
        auto it = s->definitions.find(req.params[0]);
        if (it == s->definitions.end()) return respond(Problem(not_found(req.params[0]), req));
        respond(Reply::Json(200, it->second));
      });

  add("DELETE", "/scenarios/{id}", Role::kWriter, "Delete a scenario and its runs", "",
      [s, not_found](Request& req, const Respond& respond) {
        const std::string& id = req.params[0];
        std::lock_guard lock(s->mu);
        if (!s->definitions.erase(id)) return respond(Problem(not_found(id), req));
        const std::string prefix = id + kSep;
        for (auto it = s->runs.lower_bound(prefix);
             it != s->runs.end() && it->first.starts_with(prefix);) {
          it->second->cancel = true;
          if (s->tsdb != nullptr) (void)s->tsdb->DeleteTwin(RunHistoryTwin(id, it->second->id));
          it = s->runs.erase(it);
        }
        if (s->store != nullptr) {
          (void)s->store->Delete("sc/d/" + id);
          std::vector<std::string> keys;
          (void)s->store->Scan("sc/r/" + prefix, [&](std::string_view k, std::string_view) {
            keys.emplace_back(k);
            return true;
          });
          for (const std::string& k : keys) (void)s->store->Delete(k);
        }
        respond(Reply::Empty(204));
      });

  add("POST", "/scenarios/{id}/runs", Role::kWriter,
      "Run a scenario (base run and Monte Carlo) as a job", "",
      [c, s, not_found](Request& req, const Respond& respond) {
        const std::string& id = req.params[0];
        std::unique_lock lock(s->mu);
        auto it = s->definitions.find(id);
        if (it == s->definitions.end()) return respond(Problem(not_found(id), req));
        if (s->Running() >= kMaxRunning) {
          return respond(
              Problem(Status("SCENARIO_TOO_MANY_RUNS",
                             fmt::format("{} runs are going; wait for one to end", kMaxRunning)),
                      req));
        }
        auto def = sc::ParseScenario(it->second);
        if (!def.ok()) return respond(Problem(def.status(), req));
        auto run = std::make_shared<ScenarioRun>();
        run->scenario = id;
        run->id = fmt::format("run-{}", s->next_run++);
        run->created = Now();
        const std::int64_t created_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count();
        s->runs[id + kSep + run->id] = run;
        json::object answer = run->Summary();
        s->Reap();
        s->threads.emplace_back(run, [s, run, created_ns, def = std::move(*def)] {
          sc::RunControl control;
          control.cancel = &run->cancel;
          control.threads = s->threads_per_run;
          control.progress = [&](double f, const std::string& what) {
            std::lock_guard l(s->mu);
            run->progress = f;
            run->stage = what;
          };
          auto result = sc::RunScenario(def, s->kinds, s->bindings, control, s->history);
          json::object res;
          if (result.ok()) res = ResultJson(*result);
          std::lock_guard l(s->mu);
          run->finished = Now();
          if (result.ok()) {
            run->status = "succeeded";
            run->progress = 1;
            run->stage = "done";
            run->result = std::move(res);
          } else if (result.status().code() == "SCENARIO_CANCELLED") {
            run->status = "cancelled";
            run->stage = "cancelled";
          } else {
            run->status = "failed";
            run->stage = "failed";
            run->error = result.status();
          }
          ++s->finished[run->status];
          // Succeeded and failed runs are stored; cancelled ones live in memory only, and the
          // runs of a deleted scenario not at all.
          if (s->runs.contains(run->scenario + kSep + run->id) && run->status != "cancelled") {
            if (result.ok() && s->tsdb != nullptr) {
              run->result["history"] =
                  RecordToHistory(*s->tsdb, *run, result->recording, created_ns);
            }
            s->Persist(*run);
          }
        });
        lock.unlock();
        Reply r = Reply::Json(202, answer);
        r.headers.emplace_back(
            "Location", fmt::format("/scenarios/{}/runs/{}", id, answer.at("id").as_string()));
        (void)c;
        respond(std::move(r));
      });

  add("GET", "/scenarios/{id}/runs", Role::kReader, "A scenario's runs (summaries)", "",
      [s, not_found](Request& req, const Respond& respond) {
        const std::string& id = req.params[0];
        std::lock_guard lock(s->mu);
        if (!s->definitions.contains(id)) return respond(Problem(not_found(id), req));
        json::array out;
        const std::string prefix = id + kSep;
        for (auto it = s->runs.lower_bound(prefix);
             it != s->runs.end() && it->first.starts_with(prefix); ++it) {
          out.push_back(it->second->Summary());
        }
        respond(Reply::Json(200, json::object{{"value", std::move(out)}}));
      });

  auto find_run = [s](const std::string& id,
                      const std::string& run) -> core::Result<std::shared_ptr<ScenarioRun>> {
    auto it = s->runs.find(id + kSep + run);
    if (it == s->runs.end()) {
      return Status("SCENARIO_RUN_NOT_FOUND",
                    fmt::format("scenario '{}' has no run '{}'", id, run));
    }
    return it->second;
  };

  add("GET", "/scenarios/{id}/runs/{runId}", Role::kReader,
      "A run: status, progress, KPIs, series (?maxPoints=)", "",
      [s, find_run](Request& req, const Respond& respond) {
        std::size_t max_points = 2000;
        if (const std::string* m = req.Query("maxPoints")) {
          auto [end, ec] = std::from_chars(m->data(), m->data() + m->size(), max_points);
          if (ec != std::errc() || end != m->data() + m->size() || max_points < 2) {
            return respond(Problem(
                Status("INVALID_PARAMETER", "maxPoints must be an integer of at least 2"), req));
          }
        }
        std::lock_guard lock(s->mu);
        auto run = find_run(req.params[0], req.params[1]);
        if (!run.ok()) return respond(Problem(run.status(), req));
        respond(Reply::Json(200, RunJson(**run, max_points)));
      });

  add("POST", "/scenarios/{id}/runs/{runId}/cancel", Role::kWriter, "Cancel a run", "",
      [s, find_run](Request& req, const Respond& respond) {
        std::lock_guard lock(s->mu);
        auto run = find_run(req.params[0], req.params[1]);
        if (!run.ok()) return respond(Problem(run.status(), req));
        (*run)->cancel = true;
        respond(Reply::Json(202, (*run)->Summary()));
      });

  add("GET", "/scenario-comparison", Role::kReader,
      "Compare runs (?runs=<id>/<runId>,...&objective=<kpi>&direction=minimize|maximize): KPI "
      "table against the first, and a recommendation",
      "", [s, find_run](Request& req, const Respond& respond) {
        const std::string* runs = req.Query("runs");
        const std::string* objective = req.Query("objective");
        if (runs == nullptr || objective == nullptr) {
          return respond(Problem(Status("INVALID_PARAMETER",
                                        "runs (<id>/<runId>, comma-separated) and objective "
                                        "(a KPI name) are required"),
                                 req));
        }
        bool minimize = true;
        if (const std::string* d = req.Query("direction")) {
          if (*d != "minimize" && *d != "maximize") {
            return respond(Problem(
                Status("INVALID_PARAMETER", "direction must be minimize or maximize"), req));
          }
          minimize = *d == "minimize";
        }
        std::vector<std::pair<std::string, sc::ScenarioResult>> results;
        {
          std::lock_guard lock(s->mu);
          std::string_view rest = *runs;
          while (!rest.empty()) {
            const auto comma = rest.find(',');
            const std::string_view item = rest.substr(0, comma);
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            const auto slash = item.find('/');
            if (slash == std::string_view::npos) {
              return respond(
                  Problem(Status("INVALID_PARAMETER",
                                 fmt::format("'{}' is not <scenario>/<runId>", std::string(item))),
                          req));
            }
            auto run =
                find_run(std::string(item.substr(0, slash)), std::string(item.substr(slash + 1)));
            if (!run.ok()) return respond(Problem(run.status(), req));
            if ((*run)->status != "succeeded") {
              return respond(Problem(Status("SCENARIO_RUN_NOT_FINISHED",
                                            fmt::format("run '{}' is {}, not succeeded",
                                                        std::string(item), (*run)->status)),
                                     req));
            }
            results.emplace_back(std::string(item),
                                 ResultFromJson(std::string(item), (*run)->result));
          }
        }
        std::vector<std::pair<std::string, const sc::ScenarioResult*>> refs;
        refs.reserve(results.size());
        for (const auto& [name, r] : results) refs.emplace_back(name, &r);
        auto rec = sc::Recommend(refs, *objective, minimize);
        if (!rec.ok()) return respond(Problem(rec.status(), req));
        // KPI table: every KPI of the baseline, each run's value and change vs the baseline.
        json::array table;
        const sc::ScenarioResult& base = results.front().second;
        for (const sc::KpiResult& bk : base.kpis) {
          json::object row{{"kpi", bk.name}};
          const double bv = bk.spread ? bk.spread->mean : bk.value;
          json::object values;
          for (const auto& [name, r] : results) {
            for (const sc::KpiResult& k : r.kpis) {
              if (k.name != bk.name) continue;
              const double v = k.spread ? k.spread->mean : k.value;
              json::object cell{{"value", Number(v)}};
              if (bv != 0) cell["changePct"] = Number((v - bv) / std::abs(bv) * 100);
              if (k.spread) {
                cell["p5"] = Number(k.spread->p5);
                cell["p95"] = Number(k.spread->p95);
              }
              values[name] = std::move(cell);
            }
          }
          row["runs"] = std::move(values);
          table.push_back(std::move(row));
        }
        json::array ranking;
        for (const sc::Ranked& r : rec->ranking) {
          ranking.push_back(json::object{{"run", r.scenario},
                                         {"value", Number(r.value)},
                                         {"changePct", Number(r.change_pct)},
                                         {"plusMinusPct", Number(r.plus_minus_pct)},
                                         {"paired", r.paired}});
        }
        respond(Reply::Json(200, json::object{{"baseline", results.front().first},
                                              {"objective", *objective},
                                              {"direction", minimize ? "minimize" : "maximize"},
                                              {"kpis", std::move(table)},
                                              {"ranking", std::move(ranking)},
                                              {"best", rec->best},
                                              {"recommendation", rec->text}}));
      });
}

std::string ScenarioMetrics(const RouteContext& ctx) {
  if (!ctx.scenarios) return {};
  ScenarioRoutesState& s = *ctx.scenarios;
  std::lock_guard lock(s.mu);
  std::string out =
      "# HELP doppel_scenario_runs_running Scenario runs going now.\n"
      "# TYPE doppel_scenario_runs_running gauge\n";
  out += fmt::format("doppel_scenario_runs_running {}\n", s.Running());
  out +=
      "# HELP doppel_scenario_runs_total Scenario runs ended in this process, by status.\n"
      "# TYPE doppel_scenario_runs_total counter\n";
  for (const char* status : {"succeeded", "failed", "cancelled"}) {
    auto it = s.finished.find(status);
    out += fmt::format("doppel_scenario_runs_total{{status=\"{}\"}} {}\n", status,
                       it == s.finished.end() ? 0 : it->second);
  }
  return out;
}

}  // namespace doppel::api
