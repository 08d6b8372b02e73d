// Sync quality over HTTP (sync/sync_quality.h).
//
//   GET /sync                      overall numbers and a per-twin summary list;
//                                  ?state=fresh|stale|unknown filters, ?orderBy=twin (default)
//                                  |age|lag|completeness|rejected sorts (worst first for all but
//                                  twin), ?limit= (default 1000) caps the list
//   GET /digitaltwins/{id}/sync    one twin's numbers (a twin without sync data: state
//                                  "unknown", nulls and zeros); TWIN_NOT_FOUND (404)
//   GET /digitaltwins/{id}?includeSync=true   the twin with the same object as `$sync`
//   /metrics                       doppel_sync_* (SyncMetrics below): overall only, no per-twin
//                                  labels (their number would grow with the twins)
// Errors: INVALID_PARAMETER (400) for a bad state, orderBy or limit.
#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <string>

#include "api/problem.h"
#include "api/routes.h"
#include "sync/sync_quality.h"

namespace doppel::api {

namespace json = boost::json;
using core::Status;

namespace {

// Prometheus text format: label values escape backslash, double quote and newline.
std::string EscapeLabel(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char ch : v) {
    if (ch == '\\') {
      out += "\\\\";
    } else if (ch == '"') {
      out += "\\\"";
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out;
}

// A sample value: Go-style floats, NaN for "no data" (the Prometheus convention for an empty
// summary quantile).
std::string Num(std::optional<double> v) {
  if (!v || std::isnan(*v)) return "NaN";
  return fmt::format("{}", *v);
}

}  // namespace

json::value TwinSyncJson(const RouteContext& ctx, const std::string& twin) {
  if (ctx.sync == nullptr) return nullptr;
  std::optional<sync::TwinSync> s = ctx.sync->Twin(twin);
  if (!s) {
    s.emplace();
    s->twin = twin;
  }
  return s->ToJson(ctx.sync->options());
}

std::string SyncMetrics(const RouteContext& ctx) {
  if (ctx.sync == nullptr) return {};
  const sync::SyncSummary s = ctx.sync->Overall();
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  family("doppel_sync_lag_seconds", "summary",
         "End-to-end lag of ingested readings, source time to applied; quantiles over the last "
         "1-2 lag windows, sum and count since start.");
  auto p50 = s.lag_p50_ms ? std::optional<double>(*s.lag_p50_ms / 1000) : std::nullopt;
  auto p99 = s.lag_p99_ms ? std::optional<double>(*s.lag_p99_ms / 1000) : std::nullopt;
  out += fmt::format("doppel_sync_lag_seconds{{quantile=\"0.5\"}} {}\n", Num(p50));
  out += fmt::format("doppel_sync_lag_seconds{{quantile=\"0.99\"}} {}\n", Num(p99));
  out += fmt::format("doppel_sync_lag_seconds_sum {}\n", Num(s.lag_sum_seconds));
  out += fmt::format("doppel_sync_lag_seconds_count {}\n", s.lag_count);
  family("doppel_sync_twins", "gauge", "Twins tracked by sync quality, by freshness state.");
  for (const auto& [state, n] : {std::pair<const char*, std::size_t>{"fresh", s.fresh},
                                 {"stale", s.stale},
                                 {"unknown", s.unknown}}) {
    out += fmt::format("doppel_sync_twins{{state=\"{}\"}} {}\n", state, n);
  }
  family("doppel_sync_readings_total", "counter",
         "Readings seen by sync quality (HTTP and MQTT ingest), by outcome.");
  const sync::SyncCounters& c = s.counters;
  for (const auto& [outcome, n] : {std::pair<const char*, std::uint64_t>{"applied", c.applied},
                                   {"telemetry", c.telemetry},
                                   {"superseded", c.superseded},
                                   {"out_of_order", c.out_of_order},
                                   {"duplicate", c.duplicates},
                                   {"rejected", c.rejected}}) {
    out += fmt::format("doppel_sync_readings_total{{outcome=\"{}\"}} {}\n", outcome, n);
  }
  family("doppel_sync_rejected_total", "counter",
         "Rejected readings and messages (ingest and mapping, flood protection included), by "
         "reason (error code).");
  for (const auto& [code, n] : c.rejected_by_code) {
    out += fmt::format("doppel_sync_rejected_total{{reason=\"{}\"}} {}\n", EscapeLabel(code), n);
  }
  family("doppel_sync_clock_skew_total", "counter",
         "Readings whose source time was after the time they were applied (device clock ahead).");
  out += fmt::format("doppel_sync_clock_skew_total {}\n", c.clock_skew);
  family("doppel_sync_completeness_ratio", "gauge",
         "Samples received / expected over the completeness window, all twins with an expected "
         "interval (NaN: none).");
  out += fmt::format("doppel_sync_completeness_ratio {}\n", Num(s.completeness));
  family("doppel_sync_oldest_age_seconds", "gauge",
         "Age of the newest reading of the least fresh twin (NaN: no twin with a known state).");
  out += fmt::format(
      "doppel_sync_oldest_age_seconds {}\n",
      Num(s.oldest_age ? std::optional<double>(static_cast<double>(s.oldest_age->count()) / 1000)
                       : std::nullopt));
  family("doppel_sync_divergence", "gauge",
         "Desired/reported divergence summed over twins (as reported to sync quality).");
  out += fmt::format("doppel_sync_divergence {}\n", s.divergence);
  return out;
}

void RegisterSyncRoutes(const AddRoute& add, RouteContext& ctx) {
  RouteContext* c = &ctx;
  add(
      "GET", "/sync", Role::kReader,
      "Sync quality: overall and per twin (?state=fresh|stale|unknown, "
      "?orderBy=twin|age|lag|completeness|rejected, ?limit=)",
      "",
      [c](Request& req, const Respond& respond) {
        std::optional<sync::FreshState> state;
        if (const std::string* s = req.Query("state")) {
          state = sync::ParseFreshState(*s);
          if (!state) {
            return respond(
                Problem(Status("INVALID_PARAMETER", "state must be fresh, stale or unknown"), req));
          }
        }
        std::string order = "twin";
        if (const std::string* o = req.Query("orderBy")) order = *o;
        if (order != "twin" && order != "age" && order != "lag" && order != "completeness" &&
            order != "rejected") {
          return respond(Problem(Status("INVALID_PARAMETER",
                                        "orderBy must be twin, age, lag, completeness or "
                                        "rejected"),
                                 req));
        }
        std::size_t limit = 1000;
        if (const std::string* l = req.Query("limit")) {
          auto [end, ec] = std::from_chars(l->data(), l->data() + l->size(), limit);
          if (ec != std::errc() || end != l->data() + l->size()) {
            return respond(
                Problem(Status("INVALID_PARAMETER", "limit must be a non-negative integer"), req));
          }
        }
        std::vector<sync::TwinSync> twins = c->sync->Twins(state);
        // Worst first; unknowns (nulls) last; ties by twin id (Twins() is sorted by id).
        auto key = [&](const sync::TwinSync& t) -> std::optional<double> {
          if (order == "age") {
            return t.age ? std::optional<double>(static_cast<double>(t.age->count()))
                         : std::nullopt;
          }
          if (order == "lag") return t.lag_p99_ms;
          if (order == "completeness") {
            return t.completeness ? std::optional<double>(-*t.completeness) : std::nullopt;
          }
          return static_cast<double>(t.counters.rejected);
        };
        if (order != "twin") {
          std::stable_sort(twins.begin(), twins.end(),
                           [&](const sync::TwinSync& a, const sync::TwinSync& b) {
                             auto ka = key(a), kb = key(b);
                             if (!kb) return ka.has_value();
                             if (!ka) return false;
                             return *ka > *kb;
                           });
        }
        const sync::SyncOptions& options = c->sync->options();
        json::array items;
        for (std::size_t i = 0; i < twins.size() && i < limit; ++i) {
          items.push_back(twins[i].ToJson(options));
        }
        respond(Reply::Json(200, json::object{{"overall", c->sync->Overall().ToJson(options)},
                                              {"count", twins.size()},
                                              {"value", std::move(items)}}));
      },
      false);
  add("GET", "/digitaltwins/{id}/sync", Role::kReader,
      "A twin's sync quality: lag, freshness, completeness, rejections, divergence", "",
      TwinJsonHandler(ctx, TwinSyncJson), false);
}

}  // namespace doppel::api
