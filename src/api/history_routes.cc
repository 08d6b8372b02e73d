// Property history over HTTP: raw points, aggregates, several series at once, JSON or CSV.
//
//   GET  /digitaltwins/{id}/history                      the twin's series (no ?paths), or the
//                                                        series ?paths=a,b,comp/c names
//   GET  /digitaltwins/{id}/history/{name}               one series
//   GET  /digitaltwins/{id}/history/{component}/{name}   one series inside a component
//   POST /history/query   {"series":[{"twin","path"}...], "from", "to", "step", "agg", ...}
//
// Parameters (query string, or the same names in the POST body):
//   from, to   RFC 3339, nanoseconds since the epoch, "now", "now-1h" or "-1h" (default: all)
//   step, agg  aggregate into buckets of `step` (e.g. 1m) with agg = mean|min|max|last|count|
//              sum|p50|p95|p99 (agg alone: one bucket over the range; step alone: mean)
//   limit      raw points at most (default 100000; the answer says "truncated": true if more)
//   latest     the newest N raw points of the range
//   epoch      ns|us|ms|s: times as numbers in that unit instead of RFC 3339 strings
//   format     json (default) | csv ("twin,path,time,value[,count]" rows)
// Errors: TWIN_NOT_FOUND, HISTORY_UNKNOWN_ELEMENT (the model has no such Property/Telemetry),
// HISTORY_BAD_QUERY (a parameter, naming it), TSDB_CHUNK_CORRUPT, HISTORY_DISABLED.
#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "api/routes.h"
#include "core/json.h"
#include "core/time.h"
#include "sync/element_path.h"
#include "tsdb/history.h"

namespace doppel::api {

namespace json = boost::json;
using core::Status;

namespace {

constexpr std::size_t kDefaultLimit = 100000;

struct HistoryParams {
  tsdb::RangeQuery q;
  bool aggregate = false;
  std::string step_text;
  std::string epoch;  // "" = RFC 3339
  bool csv = false;
};

Status BadQuery(std::string_view name, std::string_view value, std::string_view why) {
  return Status("HISTORY_BAD_QUERY", fmt::format("{} '{}': {}", name, value, why));
}

// Reads the parameters through `get` (query string or JSON body).
core::Result<HistoryParams> ParseParams(
    const std::function<std::optional<std::string>(std::string_view)>& get) {
  HistoryParams p;
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  for (const char* name : {"from", "to"}) {
    if (auto v = get(name)) {
      auto t = core::ParseTimeArgNs(*v, now);
      if (!t) {
        return BadQuery(name, *v,
                        "expected RFC 3339, nanoseconds since the epoch, now, or now-<duration>");
      }
      (std::string_view(name) == "from" ? p.q.from_ns : p.q.to_ns) = *t;
    }
  }
  if (p.q.from_ns > p.q.to_ns) return Status("HISTORY_BAD_QUERY", "from is after to");
  if (auto v = get("step")) {
    auto d = core::ParseDurationNs(*v);
    if (!d || *d <= 0) return BadQuery("step", *v, "expected a positive duration like 10s, 1m, 1h");
    p.q.step_ns = *d;
    p.step_text = *v;
    p.aggregate = true;
  }
  if (auto v = get("agg")) {
    auto a = tsdb::ParseAgg(*v);
    if (!a)
      return BadQuery("agg", *v, "expected mean, min, max, last, count, sum, p50, p95 or p99");
    p.q.agg = *a;
    p.aggregate = true;
  }
  p.q.limit = kDefaultLimit;
  for (const char* name : {"limit", "latest"}) {
    if (auto v = get(name)) {
      std::size_t n = 0;
      const std::string& text = *v;
      const char* const last = text.data() + text.size();
      auto [end, ec] = std::from_chars(text.data(), last, n);
      if (ec != std::errc() || end != last || n == 0) {
        return BadQuery(name, *v, "expected a positive integer");
      }
      p.q.limit = n;
      if (std::string_view(name) == "latest") p.q.latest = true;
    }
  }
  if (auto v = get("epoch")) {
    if (*v != "ns" && *v != "us" && *v != "ms" && *v != "s") {
      return BadQuery("epoch", *v, "expected ns, us, ms or s");
    }
    p.epoch = *v;
  }
  if (auto v = get("format")) {
    if (*v != "json" && *v != "csv") return BadQuery("format", *v, "expected json or csv");
    p.csv = *v == "csv";
  }
  return p;
}

json::value TimeJson(std::int64_t t, const std::string& epoch) {
  if (epoch.empty()) {
    return json::value(core::FormatRfc3339(std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(t)))));
  }
  const std::int64_t div = epoch == "ns"   ? 1
                           : epoch == "us" ? 1000
                           : epoch == "ms" ? 1'000'000
                                           : 1'000'000'000;
  if (t % div == 0) return json::value(t / div);
  return json::value(static_cast<double>(t) / static_cast<double>(div));
}

json::value ValueJson(const tsdb::Value& v) {
  switch (v.index()) {
    case 0: {
      const double d = std::get<double>(v);
      return std::isfinite(d) ? json::value(d) : json::value(nullptr);  // JSON has no NaN/Inf
    }
    case 1:
      return json::value(std::get<std::int64_t>(v));
    case 2:
      return json::value(std::get<bool>(v));
    default:
      return json::value(std::get<std::string>(v));
  }
}

std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"') out += '"';
    out += ch;
  }
  out += '"';
  return out;
}

std::string CsvValue(const tsdb::Value& v) {
  switch (v.index()) {
    case 0: {
      const double d = std::get<double>(v);
      return std::isnan(d) ? std::string("NaN") : fmt::format("{}", d);
    }
    case 1:
      return std::to_string(std::get<std::int64_t>(v));
    case 2:
      return std::get<bool>(v) ? "true" : "false";
    default:
      return CsvField(std::get<std::string>(v));
  }
}

std::string CsvTime(std::int64_t t, const std::string& epoch) {
  json::value j = TimeJson(t, epoch);
  return j.is_string() ? std::string(j.get_string()) : json::serialize(j);
}

Status ReadSeries(const RouteContext& c, const std::string& key, const std::string& shown,
                  const std::string& path, const HistoryParams& p, json::array* out,
                  std::string* csv);

// Checks the twin and the element, then reads one series into `out` (JSON) or `csv`.
Status QuerySeries(const RouteContext& c, const std::string& twin, const std::string& path,
                   const HistoryParams& p, json::array* out, std::string* csv) {
  twin::TwinPtr t = c.services.graph->FindTwin(twin);
  if (!t) return twin::TwinNotFound(twin);
  auto iface = c.services.models->Resolve(t->model);
  if (!iface.ok() || sync::FindElement(**iface, path) == nullptr) {
    return Status("HISTORY_UNKNOWN_ELEMENT",
                  fmt::format("model '{}' of twin '{}' has no Property or Telemetry '{}'", t->model,
                              twin, path));
  }
  return ReadSeries(c, twin, twin, path, p, out, csv);
}

// Reads series (key, path) of the history store into `out` (JSON) or `csv`, naming it `shown`.
Status ReadSeries(const RouteContext& c, const std::string& key, const std::string& shown,
                  const std::string& path, const HistoryParams& p, json::array* out,
                  std::string* csv) {
  const std::string& twin = shown;
  tsdb::HistoryStore& h = *c.services.history;
  const tsdb::SeriesRef ref{key, path};
  auto info = h.Info(ref);
  json::object series{{"twin", twin},
                      {"path", path},
                      {"type", info ? std::string(tsdb::ValueTypeName(info->type)) : "none"}};
  json::array points;
  bool truncated = false;
  if (p.aggregate) {
    series["agg"] = std::string(tsdb::AggName(p.q.agg));
    if (!p.step_text.empty()) series["step"] = p.step_text;
    if (info) {
      auto buckets = h.Aggregate(ref, p.q);
      if (!buckets.ok()) {
        return buckets.status().code() == "TSDB_BAD_QUERY"
                   ? Status("HISTORY_BAD_QUERY", buckets.status().message())
                   : buckets.status();
      }
      for (const tsdb::Bucket& b : *buckets) {
        if (csv != nullptr) {
          *csv += fmt::format("{},{},{},{},{}\n", CsvField(twin), CsvField(path),
                              CsvTime(b.t_ns, p.epoch), CsvValue(b.value), b.count);
        } else {
          points.push_back(json::array{TimeJson(b.t_ns, p.epoch), ValueJson(b.value), b.count});
        }
      }
    }
  } else if (info) {
    tsdb::RangeQuery q = p.q;
    if (!q.latest) ++q.limit;  // one more tells whether there is more
    auto pts = h.Read(ref, q);
    if (!pts.ok()) return pts.status();
    if (!p.q.latest && pts->size() > p.q.limit) {
      pts->pop_back();
      truncated = true;
    }
    for (const tsdb::Point& pt : *pts) {
      if (csv != nullptr) {
        *csv += fmt::format("{},{},{},{}\n", CsvField(twin), CsvField(path),
                            CsvTime(pt.t_ns, p.epoch), CsvValue(pt.value));
      } else {
        points.push_back(json::array{TimeJson(pt.t_ns, p.epoch), ValueJson(pt.value)});
      }
    }
  }
  if (csv == nullptr) {
    series["points"] = std::move(points);
    series["truncated"] = truncated;
    out->push_back(std::move(series));
  }
  return {};
}

std::vector<std::string> SplitPaths(std::string_view s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = s.find(',', start);
    std::string_view part =
        s.substr(start, comma == std::string_view::npos ? s.npos : comma - start);
    if (!part.empty()) out.emplace_back(part);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

// Runs the series queries (`read`: QuerySeries unless given) and answers (one object for a
// single-series route, else {"series"}).
using SeriesReader = std::function<Status(const std::string& twin, const std::string& path,
                                          json::array* out, std::string* csv)>;
void Answer(const RouteContext& c, const Request& req, const Respond& respond,
            const std::vector<std::pair<std::string, std::string>>& series, const HistoryParams& p,
            bool single, const SeriesReader& read = {}) {
  json::array out;
  std::string csv;
  if (p.csv) csv = p.aggregate ? "twin,path,time,value,count\n" : "twin,path,time,value\n";
  for (const auto& [twin, path] : series) {
    Status s = read ? read(twin, path, &out, p.csv ? &csv : nullptr)
                    : QuerySeries(c, twin, path, p, &out, p.csv ? &csv : nullptr);
    if (!s.ok()) return respond(Problem(s, req));
  }
  if (p.csv) {
    Reply r;
    r.status = 200;
    r.content_type = "text/csv; charset=utf-8";
    r.body = std::move(csv);
    return respond(std::move(r));
  }
  if (single && out.size() == 1) return respond(Reply::Json(200, out[0]));
  respond(Reply::Json(200, json::object{{"series", std::move(out)}}));
}

std::optional<std::string> FromQuery(const Request& req, std::string_view name) {
  const std::string* v = req.Query(name);
  return v ? std::optional<std::string>(*v) : std::nullopt;
}

}  // namespace

void RegisterHistoryRoutes(const AddRoute& add, RouteContext& ctx) {
  RouteContext* c = &ctx;
  auto disabled = [c](const Request& req, const Respond& respond) {
    if (c->services.history != nullptr) return false;
    respond(Problem(Status("HISTORY_DISABLED", "this server keeps no history"), req));
    return true;
  };
  auto get_series = [c, disabled](Request& req, const Respond& respond, std::string path) {
    if (disabled(req, respond)) return;
    auto p = ParseParams([&](std::string_view n) { return FromQuery(req, n); });
    if (!p.ok()) return respond(Problem(p.status(), req));
    Answer(*c, req, respond, {{req.params[0], std::move(path)}}, *p, true);
  };

  add(
      "GET", "/digitaltwins/{id}/history", Role::kReader,
      "The twin's history series, or with ?paths=a,b the points/aggregates of those series", "",
      [c, disabled](Request& req, const Respond& respond) {
        if (disabled(req, respond)) return;
        if (const std::string* paths = req.Query("paths")) {
          auto p = ParseParams([&](std::string_view n) { return FromQuery(req, n); });
          if (!p.ok()) return respond(Problem(p.status(), req));
          std::vector<std::pair<std::string, std::string>> series;
          for (std::string& path : SplitPaths(*paths)) series.emplace_back(req.params[0], path);
          if (series.empty()) {
            return respond(Problem(BadQuery("paths", *paths, "names no element"), req));
          }
          return Answer(*c, req, respond, series, *p, false);
        }
        if (!c->services.graph->FindTwin(req.params[0])) {
          return respond(Problem(twin::TwinNotFound(req.params[0]), req));
        }
        json::array items;
        for (const tsdb::SeriesInfo& s : c->services.history->ListSeries(req.params[0])) {
          json::object o{{"path", s.path},
                         {"type", std::string(tsdb::ValueTypeName(s.type))},
                         {"points", s.points},
                         {"chunks", s.chunks},
                         {"bytes", s.bytes}};
          if (s.points > 0) {
            o["first"] = TimeJson(s.first_t_ns, "");
            o["last"] = TimeJson(s.last_t_ns, "");
          }
          items.push_back(std::move(o));
        }
        respond(
            Reply::Json(200, json::object{{"twin", req.params[0]}, {"series", std::move(items)}}));
      },
      false);
  add(
      "GET", "/digitaltwins/{id}/history/{name}", Role::kReader,
      "History of a Property or Telemetry: raw points (?from&to&limit&latest) or aggregates "
      "(?step&agg), JSON or CSV",
      "",
      [get_series](Request& req, const Respond& respond) {
        get_series(req, respond, req.params[1]);
      },
      false);
  add(
      "GET", "/digitaltwins/{id}/history/{component}/{name}", Role::kReader,
      "History of a Property or Telemetry of a component", "",
      [get_series](Request& req, const Respond& respond) {
        get_series(req, respond, req.params[1] + "/" + req.params[2]);
      },
      false);
  add(
      "GET", "/scenarios/{id}/runs/{runId}/history/{name}", Role::kReader,
      "A succeeded scenario run's recorded variable: raw points or aggregates (as twin history)",
      "",
      [c, disabled](Request& req, const Respond& respond) {
        if (disabled(req, respond)) return;
        auto p = ParseParams([&](std::string_view n) { return FromQuery(req, n); });
        if (!p.ok()) return respond(Problem(p.status(), req));
        const std::string key = RunHistoryTwin(req.params[0], req.params[1]);
        const std::string shown = fmt::format("$run/{}/{}", req.params[0], req.params[1]);
        if (!c->services.history->Info({key, req.params[2]})) {
          return respond(Problem(
              Status("HISTORY_UNKNOWN_ELEMENT",
                     fmt::format("run '{}' of scenario '{}' recorded no '{}' in history (a "
                                 "succeeded run records its scenario's \"record\" variables)",
                                 req.params[1], req.params[0], req.params[2])),
              req));
        }
        Answer(*c, req, respond, {{shown, req.params[2]}}, *p, true,
               [&](const std::string&, const std::string& path, json::array* out,
                   std::string* csv) { return ReadSeries(*c, key, shown, path, *p, out, csv); });
      },
      false);
  add(
      "POST", "/history/query", Role::kReader,
      "History of several series of several twins in one request (same parameters in the body)",
      "json",
      [c, disabled](Request& req, const Respond& respond) {
        if (disabled(req, respond)) return;
        core::JsonLimits limits;
        limits.max_bytes = c->options->max_body_bytes;
        auto body = core::ParseJson(req.body, limits);
        if (!body.ok() || !body->is_object()) {
          return respond(Problem(Status("INVALID_BODY", body.ok() ? "the body must be a JSON object"
                                                                  : body.status().message()),
                                 req));
        }
        const json::object& o = body->get_object();
        auto p = ParseParams([&](std::string_view n) -> std::optional<std::string> {
          const json::value* v = o.if_contains(n);
          if (v == nullptr || v->is_null()) return std::nullopt;
          if (v->is_string()) return std::string(v->get_string());
          return json::serialize(*v);
        });
        if (!p.ok()) return respond(Problem(p.status(), req));
        const json::value* list = o.if_contains("series");
        if (list == nullptr || !list->is_array() || list->get_array().empty()) {
          return respond(Problem(Status("INVALID_BODY",
                                        "'series' must be a non-empty array of "
                                        "{\"twin\", \"path\"}",
                                        "/series"),
                                 req));
        }
        std::vector<std::pair<std::string, std::string>> series;
        for (std::size_t i = 0; i < list->get_array().size(); ++i) {
          const json::value& e = list->get_array()[i];
          const json::value* tw = e.is_object() ? e.get_object().if_contains("twin") : nullptr;
          const json::value* pa = e.is_object() ? e.get_object().if_contains("path") : nullptr;
          if (tw == nullptr || pa == nullptr || !tw->is_string() || !pa->is_string()) {
            return respond(
                Problem(Status("INVALID_BODY", "each series needs string members 'twin' and 'path'",
                               fmt::format("/series/{}", i)),
                        req));
          }
          series.emplace_back(std::string(tw->get_string()), std::string(pa->get_string()));
        }
        Answer(*c, req, respond, series, *p, false);
      },
      false);
}

std::string HistoryMetrics(const RouteContext& ctx) {
  if (ctx.services.history == nullptr) return {};
  const tsdb::HistoryStats st = ctx.services.history->Stats();
  std::string out;
  auto one = [&](const char* name, const char* type, const char* help, std::uint64_t v) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, v);
  };
  one("doppel_history_series", "gauge", "History series (one per twin and element).", st.series);
  one("doppel_history_points", "gauge", "Points in history.", st.points);
  out +=
      "# HELP doppel_history_memory_bytes History bytes held in memory, by part.\n"
      "# TYPE doppel_history_memory_bytes gauge\n";
  out += fmt::format("doppel_history_memory_bytes{{part=\"chunks\"}} {}\n", st.chunk_bytes);
  out += fmt::format("doppel_history_memory_bytes{{part=\"heads\"}} {}\n", st.head_bytes);
  out += fmt::format("doppel_history_memory_bytes{{part=\"rollups\"}} {}\n", st.rollup_bytes);
  one("doppel_history_wal_bytes", "gauge",
      "Write-ahead record bytes not yet folded into chunks by a checkpoint.", st.wal_bytes);
  one("doppel_history_appended_total", "counter", "Points appended since start.", st.appended);
  one("doppel_history_late_total", "counter",
      "Points older than their series' newest (merged or kept as late chunks).", st.late);
  out +=
      "# HELP doppel_history_dropped_total Points not stored, by reason.\n"
      "# TYPE doppel_history_dropped_total counter\n";
  out += fmt::format("doppel_history_dropped_total{{reason=\"duplicate\"}} {}\n", st.duplicates);
  out += fmt::format("doppel_history_dropped_total{{reason=\"type_mismatch\"}} {}\n",
                     st.type_mismatches);
  one("doppel_history_checkpoints_total", "counter", "History checkpoints since start.",
      st.checkpoints);
  one("doppel_history_corrupt_chunks", "gauge",
      "Damaged chunks found at start (their series answer TSDB_CHUNK_CORRUPT).", st.corrupt_chunks);
  return out;
}

}  // namespace doppel::api
