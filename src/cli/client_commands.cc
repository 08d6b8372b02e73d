// `doppel twin get|put|patch|delete`, `doppel query`, `doppel import`, `doppel history export`,
// `doppel forecast`:
// clients of a running server (--server / $DOPPEL_SERVER, --key / $DOPPEL_KEY).
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include "api/router.h"
#include "cli/commands.h"
#include "cli/http_client.h"
#include "cli/progress.h"
#include "core/json.h"
#include "core/time.h"

namespace doppel::cli {
namespace {

namespace json = boost::json;

struct ClientArgs {
  std::string server;
  std::string key;
};

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// A JSON argument: inline JSON, "@file", or "-" for stdin.
core::Result<std::string> ReadJsonArg(const std::string& arg) {
  if (arg == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  if (arg.starts_with("@")) {
    std::ifstream in(arg.substr(1), std::ios::binary);
    if (!in) return core::Status("FILE_NOT_FOUND", fmt::format("cannot read {}", arg.substr(1)));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  return arg;
}

int Print(const core::Result<HttpResponse>& r) {
  if (!r.ok()) {
    fmt::print(stderr, "{}\n", r.status().ToString());
    return 1;
  }
  if (r->status >= 400) return PrintProblem(*r);
  if (!r->body.empty()) {
    auto v = core::ParseJson(r->body);
    fmt::print("{}\n", v.ok() ? json::serialize(*v) : r->body);
  } else if (auto it = r->headers.find("etag"); it != r->headers.end()) {
    fmt::print(stderr, "ok, etag {}\n", it->second);
  }
  return 0;
}

std::string TwinPath(const std::string& id) { return "/digitaltwins/" + api::PercentEncode(id); }

int RunQuery(const ClientArgs& c, const std::string& query, std::size_t limit) {
  HttpClient http(c.server, c.key);
  std::string token;
  std::size_t rows = 0;
  do {
    json::object body{{"query", query}};
    if (!token.empty()) body["continuationToken"] = token;
    auto r = http.Request("POST", "/query", json::serialize(body));
    if (!r.ok() || r->status >= 400) return Print(r);
    auto v = core::ParseJson(r->body);
    if (!v.ok() || !v->is_object()) {
      fmt::print(stderr, "unexpected response: {}\n", r->body);
      return 1;
    }
    for (const auto& row : v->at("value").as_array()) {
      fmt::print("{}\n", json::serialize(row));
      if (++rows >= limit) return 0;
    }
    const auto* t = v->get_object().if_contains("continuationToken");
    token = t && t->is_string() ? std::string(t->get_string()) : "";
  } while (!token.empty());
  fmt::print(stderr, "{} row(s)\n", rows);
  return 0;
}

int RunImport(const ClientArgs& c, const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    fmt::print(stderr, "cannot read {}\n", file);
    return 1;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  HttpClient http(c.server, c.key);
  auto r = http.Request("POST", "/import", ss.str(), "application/x-ndjson");
  if (!r.ok() || r->status >= 400) return Print(r);
  auto job = core::ParseJson(r->body);
  std::string id(job->at("id").as_string());
  Progress progress("importing " + file, /*force=*/false);
  for (;;) {
    auto s = http.Request("GET", "/import/" + id);
    if (!s.ok() || s->status >= 400) return Print(s);
    auto v = core::ParseJson(s->body);
    const auto& o = v->get_object();
    const auto& imp = o.at("imported").as_object();
    std::size_t done = static_cast<std::size_t>(
        imp.at("models").to_number<double>() + imp.at("twins").to_number<double>() +
        imp.at("relationships").to_number<double>() + o.at("errorCount").to_number<double>());
    std::size_t lines = static_cast<std::size_t>(o.at("lines").to_number<double>());
    progress.Update(done, std::max(done, lines));
    if (o.at("status") != "running") {
      progress.Finish();
      fmt::print("import {}: {} — {} models, {} twins, {} relationships, {} errors\n", id,
                 json::serialize(o.at("status")), json::serialize(imp.at("models")),
                 json::serialize(imp.at("twins")), json::serialize(imp.at("relationships")),
                 json::serialize(o.at("errorCount")));
      for (const auto& e : o.at("errors").as_array()) {
        fmt::print(stderr, "{}:{}: {}: {}\n", file, json::serialize(e.at("line")),
                   e.at("code").as_string(), e.at("message").as_string());
      }
      return o.at("status") == "succeeded" ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

struct ExportArgs {
  std::string twin;
  std::vector<std::string> paths;  // empty: every series of the twin
  std::string from, to, out, epoch;
};

// Appends `v` as a CSV field.
void CsvAppend(std::string* out, const json::value& v) {
  if (v.is_string()) {
    std::string_view s = v.get_string();
    if (s.find_first_of(",\"\n\r") == std::string_view::npos) {
      out->append(s);
      return;
    }
    out->push_back('"');
    for (char ch : s) {
      if (ch == '"') out->push_back('"');
      out->push_back(ch);
    }
    out->push_back('"');
    return;
  }
  if (v.is_null()) {
    out->append("NaN");
    return;
  }
  if (v.is_double()) {
    out->append(fmt::format("{}", v.get_double()));  // shortest round-trip, not "5E-1"
    return;
  }
  out->append(json::serialize(v));
}

// `doppel history export`: every point of the twin's series (or of --path ones) as CSV
// (twin,path,time,value), read page by page with a time cursor, with progress on stderr.
int RunHistoryExport(const ClientArgs& c, const ExportArgs& a) {
  HttpClient http(c.server, c.key);
  const std::string base = TwinPath(a.twin) + "/history";
  auto listing = http.Request("GET", base);
  if (!listing.ok()) {
    fmt::print(stderr, "{}\n", listing.status().ToString());
    return 1;
  }
  if (listing->status >= 400) return PrintProblem(*listing);
  auto list = core::ParseJson(listing->body);
  if (!list.ok()) {
    fmt::print(stderr, "unexpected answer from the server: {}\n", list.status().ToString());
    return 1;
  }
  std::vector<std::string> paths = a.paths;
  std::size_t total = 0;
  for (const auto& s : list->at("series").as_array()) {
    const std::string path(s.at("path").as_string());
    if (a.paths.empty()) paths.push_back(path);
    if (a.paths.empty() || std::find(a.paths.begin(), a.paths.end(), path) != a.paths.end()) {
      total += s.at("points").to_number<std::size_t>();
    }
  }
  std::ofstream file;
  if (!a.out.empty() && a.out != "-") {
    file.open(a.out, std::ios::binary | std::ios::trunc);
    if (!file) {
      fmt::print(stderr, "cannot write {}\n", a.out);
      return 1;
    }
  }
  std::ostream& out = file.is_open() ? file : std::cout;
  out << "twin,path,time,value\n";
  Progress progress(fmt::format("exporting {} series of {}", paths.size(), a.twin));
  std::size_t done = 0;
  constexpr std::size_t kPage = 100000;
  for (const std::string& path : paths) {
    std::string from = a.from;
    std::size_t skip = 0;  // points at the cursor time already written (equal timestamps)
    while (true) {
      std::string target = fmt::format("{}/{}?epoch=ns&limit={}", base, path, kPage);
      if (!from.empty()) target += "&from=" + api::PercentEncode(from);
      if (!a.to.empty()) target += "&to=" + api::PercentEncode(a.to);
      auto r = http.Request("GET", target);
      if (!r.ok()) {
        fmt::print(stderr, "{}\n", r.status().ToString());
        return 1;
      }
      if (r->status >= 400) return PrintProblem(*r);
      auto page = core::ParseJson(r->body);
      if (!page.ok()) {
        fmt::print(stderr, "unexpected answer from the server: {}\n", page.status().ToString());
        return 1;
      }
      const auto& points = page->at("points").as_array();
      std::string chunk;
      std::int64_t last_t = 0;
      std::size_t at_last = 0;
      for (std::size_t i = 0; i < points.size(); ++i) {
        if (i < skip) continue;
        const auto& p = points[i].as_array();
        const auto t = p[0].to_number<std::int64_t>();
        CsvAppend(&chunk, json::value(a.twin));
        chunk.push_back(',');
        CsvAppend(&chunk, json::value(path));
        chunk.push_back(',');
        if (a.epoch == "ns") {
          chunk += std::to_string(t);
        } else {
          chunk += core::FormatRfc3339(std::chrono::system_clock::time_point(
              std::chrono::duration_cast<std::chrono::system_clock::duration>(
                  std::chrono::nanoseconds(t))));
        }
        chunk.push_back(',');
        CsvAppend(&chunk, p[1]);
        chunk.push_back('\n');
        ++done;
      }
      for (const auto& pt : points) {
        const auto t = pt.as_array()[0].to_number<std::int64_t>();
        if (t != last_t) at_last = 0;
        last_t = t;
        ++at_last;
      }
      out << chunk;
      progress.Update(done, std::max(total, done));
      if (!page->at("truncated").as_bool() || points.empty()) break;
      if (at_last == points.size()) {  // a whole page at one timestamp: the cursor cannot move
        fmt::print(stderr, "\n{}: more than {} points at one timestamp; stopping this series\n",
                   path, kPage);
        break;
      }
      // Next page from the last time written, skipping the points at that time already out.
      from = std::to_string(last_t);
      skip = at_last;
    }
  }
  progress.Finish();
  out.flush();
  if (!out) {
    fmt::print(stderr, "writing the CSV failed\n");
    return 1;
  }
  fmt::print(stderr, "{} points of {} series exported\n", done, paths.size());
  return 0;
}

std::atomic<bool> g_interrupted{false};

// POST /scenarios/{id}/runs, then polls the run with a progress line until it ends; Ctrl-C
// cancels it on the server. Prints the run (series cut to max_points rows). Exit 0 when it
// succeeded, 1 when it failed, 130 when cancelled.
int RunScenario(const ClientArgs& c, const std::string& id, int max_points) {
  HttpClient http(c.server, c.key);
  auto started = http.Request("POST", "/scenarios/" + api::PercentEncode(id) + "/runs");
  if (!started.ok() || started->status != 202) return Print(started);
  const std::string location = started->headers["location"];
  g_interrupted = false;
  auto previous = std::signal(SIGINT, [](int) { g_interrupted = true; });
  Progress progress("scenario " + id);
  bool cancel_sent = false;
  core::Result<HttpResponse> last = core::Status("INTERNAL", "no answer");
  std::string status = "running";
  while (status == "running") {
    if (g_interrupted && !cancel_sent) {
      (void)http.Request("POST", location + "/cancel");
      cancel_sent = true;
    }
    last = http.Request("GET", fmt::format("{}?maxPoints={}", location, max_points));
    if (!last.ok() || last->status != 200) break;
    auto v = core::ParseJson(last->body);
    if (!v.ok() || !v->is_object()) break;
    status = std::string(v->at("status").as_string());
    progress.Update(static_cast<std::size_t>(v->at("progress").to_number<double>() * 1000), 1000);
    if (status == "running") std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  progress.Finish();
  std::signal(SIGINT, previous);
  const int rc = Print(last);
  if (rc != 0) return rc;
  return status == "succeeded" ? 0 : status == "cancelled" ? 130 : 1;
}

struct ForecastArgs {
  std::string twin, path, step = "1m", history, family = "auto", levels;
  int horizon = 30;
  bool json = false;
};

// `doppel forecast`: GET /digitaltwins/{id}/forecast/{path}, printed as a table (time, mean, one
// low/high pair per level) under the chosen model and its backtest, or as the server's JSON.
int RunForecast(const ClientArgs& c, const ForecastArgs& a) {
  std::string path;  // each segment encoded: "component/name" stays two segments
  for (std::size_t b = 0; b <= a.path.size();) {
    const std::size_t e = std::min(a.path.find('/', b), a.path.size());
    path += (b == 0 ? "" : "/") + api::PercentEncode(a.path.substr(b, e - b));
    b = e + 1;
  }
  std::string target = fmt::format("{}/forecast/{}?step={}&horizon={}&family={}", TwinPath(a.twin),
                                   path, api::PercentEncode(a.step), a.horizon,
                                   api::PercentEncode(a.family));
  if (!a.history.empty()) target += "&history=" + api::PercentEncode(a.history);
  if (!a.levels.empty()) target += "&levels=" + api::PercentEncode(a.levels);
  HttpClient http(c.server, c.key);
  auto r = http.Request("GET", target);
  if (a.json || !r.ok() || r->status != 200) return Print(r);
  auto v = core::ParseJson(r->body);
  if (!v.ok() || !v->is_object()) return Print(r);
  const json::object& f = v->get_object();
  const json::object& info = f.at("info").as_object();
  const json::object& model = f.at("model").as_object();
  fmt::print("{} {} every {}: {} ({}), model version {}{}\n", a.twin, a.path,
             f.at("step").as_string(), info.at("family").as_string(),
             info.at("description").as_string(), model.at("version").to_number<std::int64_t>(),
             model.at("trainedNow").as_bool() ? ", trained now" : "");
  for (const json::value& fam : f.at("backtest").at("families").as_array()) {
    const json::object& o = fam.as_object();
    if (o.contains("skipped")) {
      fmt::print("  backtest {:<22} skipped: {}\n", o.at("family").as_string(),
                 o.at("skipped").as_string());
      continue;
    }
    std::string cov;
    for (const json::value& cv : o.at("coverage").as_array()) {
      cov += fmt::format(" {:.0f}%:{:.1f}%", cv.at("level").to_number<double>() * 100,
                         cv.at("coverage").to_number<double>() * 100);
    }
    fmt::print("  backtest {:<22} MAE {:.4g}  RMSE {:.4g}  coverage{}\n",
               o.at("family").as_string(), o.at("mae").to_number<double>(),
               o.at("rmse").to_number<double>(), cov);
  }
  std::string head = fmt::format("{:<25} {:>12}", "time", "mean");
  const json::array& points = f.at("points").as_array();
  if (!points.empty()) {
    for (const json::value& iv : points[0].at("intervals").as_array()) {
      const double l = iv.at("level").to_number<double>() * 100;
      head += fmt::format(" {:>12} {:>12}", fmt::format("low {:.0f}%", l),
                          fmt::format("high {:.0f}%", l));
    }
  }
  fmt::print("{}\n", head);
  for (const json::value& p : points) {
    std::string line = fmt::format("{:<25} {:>12.6g}", p.at("time").as_string(),
                                   p.at("mean").to_number<double>());
    for (const json::value& iv : p.at("intervals").as_array()) {
      line += fmt::format(" {:>12.6g} {:>12.6g}", iv.at("low").to_number<double>(),
                          iv.at("high").to_number<double>());
    }
    fmt::print("{}\n", line);
  }
  return 0;
}

}  // namespace

void AddClientCommands(CLI::App& app, int* exit_code) {
  auto c = std::make_shared<ClientArgs>();
  c->server = EnvOr("DOPPEL_SERVER", "http://127.0.0.1:8080");
  c->key = EnvOr("DOPPEL_KEY", "");
  auto add_client_options = [c](CLI::App* cmd) {
    cmd->add_option("--server", c->server, "Server URL (or $DOPPEL_SERVER)")->capture_default_str();
    cmd->add_option("--key", c->key, "API key (or $DOPPEL_KEY)");
  };

  auto* twin = app.add_subcommand("twin", "Read and write twins on a running server");
  twin->require_subcommand(1);
  auto id = std::make_shared<std::string>();
  auto body = std::make_shared<std::string>();
  auto if_match = std::make_shared<std::string>();

  auto* get = twin->add_subcommand("get", "Print a twin");
  get->add_option("id", *id)->required();
  add_client_options(get);
  get->callback([=] {
    HttpClient http(c->server, c->key);
    *exit_code = Print(http.Request("GET", TwinPath(*id)));
  });
  auto* put = twin->add_subcommand("put", "Create or replace a twin from JSON, @file or -");
  put->add_option("id", *id)->required();
  add_client_options(put);
  put->add_option("json", *body, "The twin")->required();
  put->add_option("--if-match", *if_match, "Only if the twin has this etag");
  put->callback([=] {
    auto text = ReadJsonArg(*body);
    if (!text.ok()) {
      fmt::print(stderr, "{}\n", text.status().ToString());
      *exit_code = 1;
      return;
    }
    std::map<std::string, std::string> h;
    if (!if_match->empty()) h["If-Match"] = *if_match;
    HttpClient http(c->server, c->key);
    *exit_code = Print(http.Request("PUT", TwinPath(*id), *text, "application/json", h));
  });
  auto* patch = twin->add_subcommand("patch", "Apply a JSON Patch (RFC 6902) to a twin");
  patch->add_option("id", *id)->required();
  add_client_options(patch);
  patch->add_option("patch", *body, "The patch: JSON, @file or -")->required();
  patch->add_option("--if-match", *if_match, "Only if the twin has this etag");
  patch->callback([=] {
    auto text = ReadJsonArg(*body);
    if (!text.ok()) {
      fmt::print(stderr, "{}\n", text.status().ToString());
      *exit_code = 1;
      return;
    }
    std::map<std::string, std::string> h;
    if (!if_match->empty()) h["If-Match"] = *if_match;
    HttpClient http(c->server, c->key);
    *exit_code =
        Print(http.Request("PATCH", TwinPath(*id), *text, "application/json-patch+json", h));
  });
  auto* del = twin->add_subcommand("delete", "Delete a twin");
  del->add_option("id", *id)->required();
  add_client_options(del);
  del->add_option("--if-match", *if_match, "Only if the twin has this etag");
  del->callback([=] {
    std::map<std::string, std::string> h;
    if (!if_match->empty()) h["If-Match"] = *if_match;
    HttpClient http(c->server, c->key);
    *exit_code = Print(http.Request("DELETE", TwinPath(*id), "", "", h));
  });

  auto* query = app.add_subcommand("query", "Run a twin query; prints one JSON row per line");
  add_client_options(query);
  auto text = std::make_shared<std::string>();
  auto limit = std::make_shared<std::size_t>(std::numeric_limits<std::size_t>::max());
  query->add_option("query", *text, "SELECT ... FROM DIGITALTWINS ...")->required();
  query->add_option("--limit", *limit, "Stop after this many rows");
  query->callback([=] { *exit_code = RunQuery(*c, *text, *limit); });

  auto* import = app.add_subcommand("import",
                                    "Bulk-import an NDJSON file (models, twins, "
                                    "relationships) with progress");
  add_client_options(import);
  auto file = std::make_shared<std::string>();
  import->add_option("file", *file)->required();
  import->callback([=] { *exit_code = RunImport(*c, *file);
});

auto* history = app.add_subcommand("history", "Property history of a running server");
history->require_subcommand(1);
auto ex = std::make_shared<ExportArgs>();
auto* exp = history->add_subcommand(
    "export", "Write a twin's history (every series, or --path ones) as CSV, with progress");
add_client_options(exp);
exp->add_option("twin", ex->twin)->required();
exp->add_option("--path", ex->paths, "A Property/Telemetry path (repeatable; default: all)");
exp->add_option("--from", ex->from, "RFC 3339, ns since the epoch, or now-<duration>");
exp->add_option("--to", ex->to, "Same forms as --from");
exp->add_option("--out", ex->out, "CSV file (default: standard output)");
exp->add_option("--epoch", ex->epoch, "ns: times as nanoseconds instead of RFC 3339")
    ->check(CLI::IsMember({"", "ns"}));
exp->callback([=] { *exit_code = RunHistoryExport(*c, *ex); });

auto fa = std::make_shared<ForecastArgs>();
auto* forecast = app.add_subcommand(
    "forecast", "Forecast a twin's numeric Property or Telemetry with prediction intervals");
add_client_options(forecast);
forecast->add_option("twin", fa->twin)->required();
forecast->add_option("path", fa->path, "The element, or component/element")->required();
forecast->add_option("--step", fa->step, "Step of the forecast (history means)")
    ->capture_default_str();
forecast->add_option("--horizon", fa->horizon, "Steps ahead")->capture_default_str();
forecast->add_option("--history", fa->history, "History to train on (default: 500 steps)");
forecast->add_option("--family", fa->family,
                     "auto, seasonal_naive, exponential_smoothing, autoregressive or xgboost")
    ->capture_default_str();
forecast->add_option("--levels", fa->levels, "Interval levels, e.g. 0.8,0.95");
forecast->add_flag("--json", fa->json, "Print the server's JSON answer");
forecast->callback([=] { *exit_code = RunForecast(*c, *fa); });

auto* scenario = app.add_subcommand("scenario", "What-if scenarios on a running server");
scenario->require_subcommand(1);
auto sid = std::make_shared<std::string>();
auto sbody = std::make_shared<std::string>();
auto* sput = scenario->add_subcommand("put", "Store a scenario definition (JSON, @file or -)");
add_client_options(sput);
sput->add_option("id", *sid)->required();
sput->add_option("json", *sbody, "The definition (docs/scenarios.md)")->required();
sput->callback([=] {
  auto text = ReadJsonArg(*sbody);
  if (!text.ok()) {
    fmt::print(stderr, "{}\n", text.status().ToString());
    *exit_code = 1;
    return;
  }
  HttpClient http(c->server, c->key);
  *exit_code = Print(http.Request("PUT", "/scenarios/" + api::PercentEncode(*sid), *text));
});
auto* srun = scenario->add_subcommand(
    "run", "Run a stored scenario with progress (Ctrl-C cancels it); prints the result");
add_client_options(srun);
srun->add_option("id", *sid)->required();
auto max_points = std::make_shared<int>(200);
srun->add_option("--max-points", *max_points, "Rows of the recorded series to print")
    ->capture_default_str();
srun->callback([=] { *exit_code = RunScenario(*c, *sid, *max_points); });
auto runs = std::make_shared<std::vector<std::string>>();
auto objective = std::make_shared<std::string>();
auto maximize = std::make_shared<bool>(false);
auto* scmp = scenario->add_subcommand(
    "compare", "Compare finished runs (<id>/<runId>, the first is the baseline) by a KPI");
add_client_options(scmp);
scmp->add_option("runs", *runs, "Runs as <id>/<runId>")->required()->expected(2, -1);
scmp->add_option("--objective", *objective, "The KPI to rank by")->required();
scmp->add_flag("--maximize", *maximize, "Larger is better (default: smaller)");
scmp->callback([=] {
  std::string list;
  for (const std::string& r : *runs) list += (list.empty() ? "" : ",") + api::PercentEncode(r);
  HttpClient http(c->server, c->key);
  *exit_code = Print(http.Request(
      "GET", fmt::format("/scenario-comparison?runs={}&objective={}&direction={}", list,
                         api::PercentEncode(*objective), *maximize ? "maximize" : "minimize")));
});
}  // namespace doppel::cli

}  // namespace doppel::cli
